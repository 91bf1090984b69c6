/*
 * pgconf.c - one line of a PostgreSQL configuration file, read as the
 * server's lexer (guc-file.l) reads it, so that what walship rewrites is
 * what the server would have applied.
 */
#include "pg/pgconf.h"

#include <stdlib.h>
#include <string.h>

#include "util/fsutil.h"
#include "util/mem.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* guc-file.l's LETTER: ASCII letters, underscore and every byte from 0x80. */
static bool is_letter(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (unsigned char)c >= 0x80;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A bare value: UNQUOTED_STRING, INTEGER, REAL (with units), ID or QUALIFIED_ID. */
static bool is_bare(char c)
{
	return is_letter(c) || is_digit(c) || strchr("-._:/+$", c) != NULL;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool pgconf_name_is(const char *name, const char *want)
{
	for (; *name && *want; name++, want++)
		if (lower(*name) != lower(*want))
			return false;
	return *name == *want;
}

static PgConfKind fail(PgConfLine *out, const char *why)
{
	pgconf_line_clear(out);
	out->kind = PGCONF_ERROR;
	out->error = why;
	return PGCONF_ERROR;
}

/* The quoted string at p (on its opening quote) up to end: *out unescaped, *next after the closing quote. */
static bool parse_quoted(const char *p, const char *end, char **out, const char **next)
{
	char *v = xmalloc((size_t)(end - p) + 1);
	size_t n = 0;

	for (p++; p < end; p++) {
		char c = *p;
		if (c == '\'') {
			if (p + 1 < end && p[1] == '\'') {
				v[n++] = '\'';
				p++;
				continue;
			}
			v[n] = '\0';
			*out = v;
			*next = p + 1;
			return true;
		}
		if (c == '\\' && p + 1 < end) {
			/* GUC_scanstr: \b \f \n \r \t, up to three octal digits, else the byte itself. */
			c = *++p;
			if (c >= '0' && c <= '7') {
				int o = 0;
				for (int k = 0; k < 3 && p < end && *p >= '0' && *p <= '7'; k++, p++)
					o = o * 8 + (*p - '0');
				p--;
				c = (char)o;
			} else {
				const char *from = "bfnrt", *to = "\b\f\n\r\t";
				const char *f = strchr(from, c);
				if (f != NULL && c != '\0')
					c = to[f - from];
			}
		}
		v[n++] = c;
	}
	free(v);
	return false;
}

PgConfKind pgconf_parse_line(const char *line, size_t len, PgConfLine *out)
{
	const char *p = line, *end = line + len;
	memset(out, 0, sizeof(*out));

	while (p < end && is_space(*p))
		p++;
	if (p == end || *p == '#')
		return out->kind = PGCONF_BLANK;
	if (!is_letter(*p))
		return fail(out, "a setting's name must start with a letter or an underscore");
	const char *name = p;
	while (p < end && (is_letter(*p) || is_digit(*p) || *p == '$' || *p == '.'))
		p++;
	out->name = xstrndup(name, (size_t)(p - name));
	while (p < end && is_space(*p))
		p++;
	if (p < end && *p == '=') {
		p++;
		while (p < end && is_space(*p))
			p++;
	}
	if (p == end || *p == '#')
		return fail(out, "the setting has no value");
	if (*p == '\'') {
		if (!parse_quoted(p, end, &out->value, &p))
			return fail(out, "a quoted value is not closed on its line");
		out->quoted = true;
	} else if (is_bare(*p)) {
		const char *v = p;
		while (p < end && is_bare(*p))
			p++;
		out->value = xstrndup(v, (size_t)(p - v));
	} else {
		return fail(out, "the value is neither quoted nor a plain word or number");
	}
	while (p < end && is_space(*p))
		p++;
	if (p < end && *p != '#')
		return fail(out, "more follows the value on the line (quote a value with spaces)");
	return out->kind = PGCONF_SETTING;
}

void pgconf_line_clear(PgConfLine *l)
{
	free(l->name);
	free(l->value);
	memset(l, 0, sizeof(*l));
}

char *pgconf_quote(const char *value)
{
	size_t n = strlen(value), j = 0;
	char *out = xmalloc(2 * n + 3);
	out[j++] = '\'';
	for (size_t i = 0; i < n; i++) {
		/* A line break written as is would end the line: what follows would be a line of its own. */
		if (value[i] == '\n' || value[i] == '\r') {
			out[j++] = '\\';
			out[j++] = value[i] == '\n' ? 'n' : 'r';
			continue;
		}
		if (value[i] == '\'' || value[i] == '\\')
			out[j++] = value[i];
		out[j++] = value[i];
	}
	out[j++] = '\'';
	out[j] = '\0';
	return out;
}

void pgconf_setting(Text *t, const char *name, const char *value)
{
	char *quoted = pgconf_quote(value);
	text_str(t, name);
	text_str(t, " = ");
	text_str(t, quoted);
	text_str(t, "\n");
	free(quoted);
}

int pgconf_file_value(const char *file, const char *name, char **value, WsError *err)
{
	char *text = NULL;
	size_t len;
	int rc;

	*value = NULL;
	if ((rc = fs_read_small(file, 16 * 1024 * 1024, &text, &len, err)) != 0)
		return rc;
	for (const char *p = text, *end = text + len; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
		PgConfLine l;
		if (pgconf_parse_line(p, n, &l) == PGCONF_SETTING && pgconf_name_is(l.name, name)) {
			free(*value);
			*value = l.value;
			l.value = NULL;
		}
		pgconf_line_clear(&l);
		p += n + (eol != NULL);
	}
	free(text);
	return 0;
}
