/*
 * jsonfile.h - loading walship's own JSON files (walship.json, a backup's
 * manifest.json): size cap, syntax, a top-level object, and a "format"
 * number this walship knows, checked the same way for each.
 *
 * Memory: json_file_dump's text is malloc'd (caller frees); json_file_string is borrowed from
 * obj.
 */
#ifndef WALSHIP_REPO_JSONFILE_H
#define WALSHIP_REPO_JSONFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/error.h"

typedef struct JsonFileKind {
	const char *invalid;     /* message prefix: "walship.json of the repository is invalid" */
	size_t max;              /* largest accepted size in bytes */
	int max_format;          /* newest format this walship reads */
	const char *newer_what;  /* "the repository": "... has format N, newer than ..." */
	const char *format_name; /* "repository format": in the hint to upgrade */
} JsonFileKind;

/*
 * Parse json (len bytes) into *root (json_decref it) and *format.  Damage is
 * WS_CORRUPT with kind->invalid as the message prefix; a format newer than
 * kind->max_format is WS_FATAL with a hint to upgrade walship.
 */
int json_file_load(const JsonFileKind *kind, const char *json, size_t len, json_t **root, int *format,
		   WsError *err);

/*
 * The string member key of obj, or NULL with WS_CORRUPT "<invalid>: <where>"key"
 * is missing / is not a string".
 */
const char *json_file_string(const char *invalid, json_t *obj, const char *key, const char *where,
			     WsError *err);

/*
 * root as walship writes its JSON (two-space indent, members in insertion
 * order) plus a final newline.  jansson fails here only when it
 * cannot allocate: then exit as on out of memory (cleanup_fatal), naming what.
 */
char *json_file_dump(const json_t *root, const char *what);

/* A system identifier's text form: decimal digits, no sign, no leading zero, fits 64 bits. */
bool json_file_parse_u64(const char *s, uint64_t *out);

/*
 * A major version's text form: "9.6" (90600) or two digits from "10" (100000;
 * later majors may come), exactly as pg_major_str writes it back ("90" to
 * "99" are refused: 9.x majors are written with a dot).
 */
bool json_file_parse_pg_major(const char *s, int *out);

/* An epoch id: "<major>-<number>", the major of digits and dots ("15", "9.6"), the number of digits. */
bool json_file_epoch_id_ok(const char *s);

/* A UTC time in walship's form, YYYY-MM-DDTHH:MM:SSZ (kept as text: checked for shape only). */
bool json_file_utc_time_ok(const char *s);

#endif
