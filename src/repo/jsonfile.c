/* jsonfile.c - the checks every walship JSON file gets before its fields are read. */
#include "repo/jsonfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pg/pgcontrol.h"
#include "pg/pgmajor.h"
#include "util/cleanup.h"
#include "util/mem.h"

int json_file_load(const JsonFileKind *kind, const char *json, size_t len, json_t **root, int *format,
		   WsError *err)
{
	json_error_t jerr;
	json_t *r = NULL, *v;

	*root = NULL;
	if (len > kind->max)
		return ws_error(err, WS_CORRUPT, "%s: it has %zu bytes, more than %zu", kind->invalid, len,
				kind->max);
	r = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (r == NULL)
		return ws_error(err, WS_CORRUPT, "%s: %s at line %d, column %d", kind->invalid, jerr.text,
				jerr.line, jerr.column);
	if (!json_is_object(r)) {
		json_decref(r);
		return ws_error(err, WS_CORRUPT, "%s: not a JSON object", kind->invalid);
	}
	/* The format first: a newer one may have changed everything else. */
	v = json_object_get(r, "format");
	if (v == NULL || !json_is_integer(v) || json_integer_value(v) < 1) {
		json_decref(r);
		return ws_error(err, WS_CORRUPT, "%s: \"format\" is %s", kind->invalid,
				v == NULL ? "missing" : "not a positive integer");
	}
	if (json_integer_value(v) > kind->max_format) {
		json_int_t f = json_integer_value(v);
		json_decref(r);
		ws_error(err, WS_FATAL,
			 "%s has format %" JSON_INTEGER_FORMAT ", newer than this walship supports (%d)",
			 kind->newer_what, f, kind->max_format);
		ws_error_hint(err, "Upgrade walship to a version that supports %s %" JSON_INTEGER_FORMAT ".",
			      kind->format_name, f);
		return WS_FATAL;
	}
	*format = (int)json_integer_value(v);
	*root = r;
	return 0;
}

bool json_file_parse_u64(const char *s, uint64_t *out)
{
	if (s[0] < '1' || s[0] > '9')
		return false;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno == ERANGE)
		return false;
	*out = (uint64_t)v;
	return true;
}

bool json_file_parse_pg_major(const char *s, int *out)
{
	char back[16];
	int v;
	if (strcmp(s, "9.6") == 0)
		v = PG_MAJOR_9_6;
	else if (strlen(s) == 2 && s[0] >= '1' && s[0] <= '8' && s[1] >= '0' && s[1] <= '9')
		v = PG_MAJOR((s[0] - '0') * 10 + (s[1] - '0'));
	else
		return false; /* "90" to "99" too: 9.x majors are written with a dot */
	/* Only what is written back the same. */
	if (strcmp(pg_major_str(v, back, sizeof(back)), s) != 0)
		return false;
	*out = v;
	return true;
}

const char *json_file_string(const char *invalid, json_t *obj, const char *key, const char *where,
			     WsError *err)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL) {
		ws_error(err, WS_CORRUPT, "%s: %s\"%s\" is missing", invalid, where, key);
		return NULL;
	}
	if (!json_is_string(v)) {
		ws_error(err, WS_CORRUPT, "%s: %s\"%s\" is not a string", invalid, where, key);
		return NULL;
	}
	return json_string_value(v);
}

char *json_file_dump(const json_t *root, const char *what)
{
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text == NULL)
		cleanup_fatal("out of memory (serializing %s)", what);
	char *out = xasprintf("%s\n", text);
	free(text);
	return out;
}

bool json_file_epoch_id_ok(const char *s)
{
	const char *dash = strrchr(s, '-');
	if (dash == NULL || dash == s || dash[1] == '\0')
		return false;
	for (const char *p = s; p < dash; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			return false;
	for (const char *p = dash + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

bool json_file_utc_time_ok(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
	if (strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return false;
	return true;
}
