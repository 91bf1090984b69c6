/*
 * pgconf.h - reading PostgreSQL configuration files (postgresql.conf and
 * what it includes) one line at a time, as the server's own parser
 * (guc-file.l) reads them.
 *
 * A line is blank, a comment, or "name [=] value [# comment]".  name is
 * letters, digits, '_' and '.' (custom settings), compared case-blind by the
 * server; value is a quoted string ('...' with '' or \' for a quote and the
 * backslash escapes \b \f \n \r \t and octal), or an unquoted word (a number
 * with its unit, an identifier, a path without spaces).  include,
 * include_if_exists and include_dir are lines of the same shape.
 *
 * Memory: pgconf_line fills out with malloc'd strings (pgconf_line_free).
 */
#ifndef WALSHIP_PG_PGCONF_H
#define WALSHIP_PG_PGCONF_H

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

typedef enum PgConfKind {
	PGCONF_EMPTY = 0, /* blank or comment */
	PGCONF_SETTING,   /* name = value */
	PGCONF_BAD,       /* what the server would refuse as a syntax error */
} PgConfKind;

typedef struct PgConfLine {
	PgConfKind kind;
	char *name;  /* PGCONF_SETTING: as written */
	char *value; /* PGCONF_SETTING: unquoted, escapes processed */
} PgConfLine;

/* Parse one line (len bytes, no newline needed) into out. */
PgConfKind pgconf_line(const char *line, size_t len, PgConfLine *out);

void pgconf_line_free(PgConfLine *l);

/* Whether a setting's name is name, case-blind as the server compares them. */
bool pgconf_name_is(const PgConfLine *l, const char *name);

/*
 * The value of the last line of file that sets name (includes are not
 * followed), malloc'd into *value, or NULL when no line sets it.  0, or
 * WS_FATAL when the file cannot be read (err says why).
 */
int pgconf_file_value(const char *file, const char *name, char **value, WsError *err);

#endif
