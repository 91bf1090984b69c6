/*
 * pgconf.c - PostgreSQL configuration lines (see pgconf.h).
 */
#include "pg/pgconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/fsutil.h"
#include "util/mem.h"

#define PGCONF_FILE_MAX (16 * 1024 * 1024)

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '.';
}

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' || *p == '\v'))
		p++;
	return p;
}

/* A quoted value at p (on its opening quote): its text into *out; the position after it, or NULL. */
static const char *quoted(const char *p, const char *end, char **out)
{
	char *v = xmalloc((size_t)(end - p) + 1);
	size_t n = 0;
	for (p++; p < end; p++) {
		if (*p == '\'' && p + 1 < end && p[1] == '\'') {
			v[n++] = '\'';
			p++;
		} else if (*p == '\'') {
			v[n] = '\0';
			*out = v;
			return p + 1;
		} else if (*p == '\\' && p + 1 < end) {
			char c = *++p;
			if (c >= '0' && c <= '7') {
				int o = 0;
				for (int k = 0; k < 3 && p < end && *p >= '0' && *p <= '7'; k++, p++)
					o = o * 8 + (*p - '0');
				p--;
				v[n++] = (char)o;
			} else {
				v[n++] = c == 'b'   ? '\b'
					 : c == 'f' ? '\f'
					 : c == 'n' ? '\n'
					 : c == 'r' ? '\r'
					 : c == 't' ? '\t'
						    : c;
			}
		} else {
			v[n++] = *p;
		}
	}
	free(v);
	return NULL;
}

PgConfKind pgconf_line(const char *line, size_t len, PgConfLine *out)
{
	const char *end = line + len;
	const char *p = skip_space(line, end);

	memset(out, 0, sizeof(*out));
	if (p == end || *p == '#' || *p == '\n')
		return out->kind = PGCONF_EMPTY;
	const char *name = p;
	while (p < end && name_char(*p))
		p++;
	if (p == name || !(isalpha((unsigned char)*name) || *name == '_'))
		return out->kind = PGCONF_BAD;
	size_t nlen = (size_t)(p - name);
	p = skip_space(p, end);
	if (p < end && *p == '=')
		p = skip_space(p + 1, end);
	char *value = NULL;
	if (p < end && *p == '\'') {
		p = quoted(p, end, &value);
		if (p == NULL)
			return out->kind = PGCONF_BAD;
	} else {
		const char *v = p;
		while (p < end && *p != '#' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			p++;
		if (p == v)
			return out->kind = PGCONF_BAD;
		value = xstrndup(v, (size_t)(p - v));
	}
	p = skip_space(p, end);
	if (p < end && *p != '#' && *p != '\n') {
		free(value);
		return out->kind = PGCONF_BAD;
	}
	out->name = xstrndup(name, nlen);
	out->value = value;
	return out->kind = PGCONF_SETTING;
}

void pgconf_line_free(PgConfLine *l)
{
	free(l->name);
	free(l->value);
	memset(l, 0, sizeof(*l));
}

bool pgconf_name_is(const PgConfLine *l, const char *name)
{
	return l->kind == PGCONF_SETTING && strcasecmp(l->name, name) == 0;
}

int pgconf_file_value(const char *file, const char *name, char **value, WsError *err)
{
	char *text = NULL;
	size_t len;
	int rc;

	*value = NULL;
	if ((rc = fs_read_small(file, PGCONF_FILE_MAX, &text, &len, err)) != 0)
		return rc;
	for (const char *p = text, *end = text + len; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
		PgConfLine l;
		if (pgconf_line(p, n, &l) == PGCONF_SETTING && pgconf_name_is(&l, name)) {
			free(*value);
			*value = l.value;
			l.value = NULL;
		}
		pgconf_line_free(&l);
		p += n + (eol != NULL);
	}
	free(text);
	return 0;
}
