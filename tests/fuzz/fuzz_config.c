/*
 * fuzz_config.c - the configuration file (util/config.c), read by every
 * program at start: /etc/walship/walship.conf, --config or $WALSHIP_CONFIG.
 *
 * Input: the text of a configuration file.  What parses must mean the same
 * when each value is written back as one quoted line per key, and the
 * numeric keys must read as numbers or fail cleanly.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/config.h"
#include "util/mem.h"

static Config *parse(const char *text, size_t len, int *rc)
{
	Config *cfg = config_new();
	char *buf = xmalloc(len + 1);
	bool secret = false;
	WsError err;
	memcpy(buf, text, len);
	*rc = config_parse_text(cfg, "fuzz.conf", buf, len, &secret, &err);
	free(buf);
	return cfg;
}

/*
 * Each value the file set, as one line: in double quotes, else in single
 * quotes, else (it holds both, so it was not quoted) as it is right after
 * "=", which an unquoted value can be: no blank at either end, no quote
 * first, no "#" after a blank.
 */
static char *write_back(const Config *cfg)
{
	char *text = xstrdup("");
	for (const ConfigKey *k = config_keys(); k->name != NULL; k++) {
		const char *v = config_get(cfg, k->name);
		if (v == NULL || strcmp(config_source(cfg, k->name), "default") == 0)
			continue;
		FUZZ_CHECK(strchr(v, '\n') == NULL && v[0] != '\0');
		const char *q = strchr(v, '"') == NULL ? "\"" : strchr(v, '\'') == NULL ? "'" : "";
		if (q[0] == '\0') {
			size_t n = strlen(v);
			FUZZ_CHECK(strchr(" \t\r\f\v\"'", v[0]) == NULL &&
				   strchr(" \t\r\f\v", v[n - 1]) == NULL);
			for (size_t i = 1; i < n; i++)
				FUZZ_CHECK(v[i] != '#' || strchr(" \t\r\f\v", v[i - 1]) == NULL);
		}
		/* No blank after "=" before an unquoted value: one starting with "#" would read as a comment.
		 */
		char *next = xasprintf("%s%s%s%s%s%s\n", text, k->name, q[0] ? " = " : "=", q, v, q);
		free(text);
		text = next;
	}
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const numbers[] = {"compress-level", "io-timeout",     "push-parallel",
					      "fetch-ahead",    "spool-max-size", "s3-part-size"};
	int rc;
	Config *cfg = parse((const char *)data, size, &rc);
	if (rc == 0) {
		char *text = write_back(cfg);
		Config *again = parse(text, strlen(text), &rc);
		FUZZ_CHECK(rc == 0);
		for (const ConfigKey *k = config_keys(); k->name != NULL; k++) {
			const char *a = config_get(cfg, k->name), *b = config_get(again, k->name);
			FUZZ_CHECK((a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0));
		}
		for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
			long v;
			WsError err;
			if (config_get_int(cfg, numbers[i], -1000000, 1000000, &v, &err) == 0)
				FUZZ_CHECK(v >= -1000000 && v <= 1000000);
		}
		config_free(again);
		free(text);
	}
	config_free(cfg);
	return 0;
}
