/*
 * pgconf.h - PostgreSQL's configuration-file syntax (guc-file.l), one line
 * at a time: "name = value" or "name value", a value quoted ('...', with ''
 * or \' for a quote and backslash escapes) or bare, a comment after #, and
 * the include directives (include, include_if_exists, include_dir), which
 * are settings by their syntax.  Names compare without regard to case, as
 * the server compares them.
 *
 * Memory: a PgConfLine owns name and value (pgconf_line_clear).
 */
#ifndef WALSHIP_PG_PGCONF_H
#define WALSHIP_PG_PGCONF_H

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"
#include "util/text.h"

typedef enum PgConfKind {
	PGCONF_BLANK = 0, /* empty, white space or a comment only */
	PGCONF_SETTING,
	PGCONF_ERROR, /* the server would refuse the file at this line */
} PgConfKind;

typedef struct PgConfLine {
	PgConfKind kind;
	char *name;  /* as written */
	char *value; /* unquoted, escapes processed */
	bool quoted;
	const char *error; /* PGCONF_ERROR: what is wrong (static text) */
} PgConfLine;

/* Parse one line (len bytes, no line break) into *out; pgconf_line_clear it after. */
PgConfKind pgconf_parse_line(const char *line, size_t len, PgConfLine *out);

void pgconf_line_clear(PgConfLine *l);

/* Whether name is want, compared as the server compares setting names (ASCII case ignored). */
bool pgconf_name_is(const char *name, const char *want);

/*
 * value as a quoted configuration-file string ('' for ', \\ for \, \n and \r
 * for line breaks, so that it stays on its line), malloc'd.
 */
char *pgconf_quote(const char *value);

/* Appends the line "name = 'value'\n" (value quoted by pgconf_quote) to t. */
void pgconf_setting(Text *t, const char *name, const char *value);

/*
 * The value of the last line of file that sets name (includes are not
 * followed), malloc'd into *value, or NULL when no line sets it.  0, or
 * WS_FATAL when the file cannot be read (err says why).
 */
int pgconf_file_value(const char *file, const char *name, char **value, WsError *err);

#endif
