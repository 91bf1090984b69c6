/*
 * fuzz_pgconf.c - a configuration file a backup kept from the source cluster
 * (or one given with --config-from), read line by line (pg/pgconf.c) and
 * sanitised for a rebuilt copy (cmd/rebuild_config.c).
 *
 * Input: the text of a postgresql.conf.  Every file it includes (include,
 * include_if_exists, each *.conf of an include_dir) is the same text again,
 * so includes nest until the depth limit.  Whatever the input, the sanitiser
 * must either refuse it or give back files in which every line parses and no
 * live line sets data_directory, external_pid_file, hba_file or ident_file,
 * and every include directive points inside the copy.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd/rebuild_config.h"
#include "fuzz.h"
#include "pg/pgconf.h"
#include "util/mem.h"

#define COPY "/srv/copy"

static const char *input;
static int reads; /* a file with k include lines nests k^10 times: the harness stops earlier */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

static int same_read(void *ctx, const char *path, char **text, size_t *len, WsError *err)
{
	(void)ctx;
	if (++reads > 64)
		return ws_error(err, WS_NOT_FOUND, "no \"%s\"", path);
	*text = xstrdup(input);
	*len = strlen(input);
	return 0;
}

static int one_list(void *ctx, const char *dir, char ***names, int *n, WsError *err)
{
	(void)ctx;
	(void)dir;
	(void)err;
	*names = xmalloc(sizeof(**names));
	(*names)[0] = xstrdup("a.conf");
	*n = 1;
	return 0;
}

static void check_file(const RebuildConfFile *f)
{
	if (f->text == NULL)
		return;
	for (size_t pos = 0; pos < f->len;) {
		const char *nl = memchr(f->text + pos, '\n', f->len - pos);
		size_t n = nl ? (size_t)(nl - (f->text + pos)) : f->len - pos;
		PgConfLine l;
		PgConfKind k = pgconf_parse_line(f->text + pos, n, &l);
		FUZZ_CHECK(k != PGCONF_ERROR);
		if (k == PGCONF_SETTING) {
			FUZZ_CHECK(!pgconf_name_is(l.name, "data_directory"));
			FUZZ_CHECK(!pgconf_name_is(l.name, "external_pid_file"));
			FUZZ_CHECK(!pgconf_name_is(l.name, "hba_file"));
			FUZZ_CHECK(!pgconf_name_is(l.name, "ident_file"));
			if (pgconf_name_is(l.name, "include") || pgconf_name_is(l.name, "include_dir") ||
			    pgconf_name_is(l.name, "include_if_exists"))
				FUZZ_CHECK(strncmp(l.value, COPY "/", strlen(COPY) + 1) == 0);
		}
		pgconf_line_clear(&l);
		pos += n + (nl ? 1 : 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	RebuildConfSource src = {same_read, one_list, NULL, true};
	RebuildConf c;
	WsError err;
	input = text;
	reads = 0;
	ws_error_clear(&err);
	if (rebuild_conf_sanitise("/etc/postgresql/15/main/postgresql.conf", text, strlen(text),
				  "/var/lib/postgresql/15/main", "/etc/postgresql/15/main", COPY, &src, &c,
				  &err) == 0)
		for (int i = 0; i < c.nfiles; i++)
			check_file(&c.files[i]);
	rebuild_conf_free(&c);
	free(text);
	return 0;
}
