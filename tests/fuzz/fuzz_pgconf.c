/*
 * fuzz_pgconf.c - PostgreSQL configuration lines (pg/pgconf.c): the lines of
 * /etc/postgresql/V/N/postgresql.conf that rebuild reads to find a Debian
 * cluster's data directory.
 *
 * Input: a configuration file's text.  Checked beyond the sanitizers: a
 * setting has a name of letters, digits, '_' and '.', starting with a letter
 * or '_'; its value, quoted as rebuild writes values (recoveryconf_quote) and
 * read again, is the same (for values without a line break, which a quoted
 * string cannot hold).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pg/pgconf.h"
#include "pg/recoveryconf.h"
#include "util/mem.h"

static void check_line(const char *p, size_t n)
{
	PgConfLine l, again;
	if (pgconf_line(p, n, &l) != PGCONF_SETTING) {
		pgconf_line_free(&l);
		return;
	}
	FUZZ_CHECK(l.name[0] != '\0' && (isalpha((unsigned char)l.name[0]) || l.name[0] == '_'));
	for (const char *c = l.name; *c; c++)
		FUZZ_CHECK(isalnum((unsigned char)*c) || *c == '_' || *c == '.');
	if (strchr(l.value, '\n') == NULL && strchr(l.value, '\r') == NULL) {
		char *q = recoveryconf_quote(l.value);
		char *line = xasprintf("%s = %s", l.name, q);
		FUZZ_CHECK(pgconf_line(line, strlen(line), &again) == PGCONF_SETTING);
		FUZZ_CHECK(strcmp(again.name, l.name) == 0 && strcmp(again.value, l.value) == 0);
		pgconf_line_free(&again);
		free(line);
		free(q);
	}
	pgconf_line_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
		check_line(p, n);
		p += n + (eol != NULL);
	}
	return 0;
}
