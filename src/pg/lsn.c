/*
 * lsn.c - parsing and printing LSNs exactly as PostgreSQL's pg_lsn type does
 * (pg_lsn_in_internal in src/backend/utils/adt/pg_lsn.c), so that any LSN a
 * user copies from psql or a server log is accepted and nothing else is.
 */
#include "pg/lsn.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "pg/walname.h"

/* Longest hex part pg_lsn_in accepts (MAXPG_LSNCOMPONENT). */
#define LSN_PART_MAX 8

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Read 1 to LSN_PART_MAX hex digits at *p; advance *p past them.  false if none or too many. */
static bool hex_part(const char **p, uint32_t *out)
{
	const char *s = *p;
	uint32_t v = 0;
	size_t n = 0;
	int d;

	while ((d = hex_value(s[n])) >= 0) {
		if (n == LSN_PART_MAX)
			return false;
		v = (v << 4) | (uint32_t)d;
		n++;
	}
	if (n == 0)
		return false;
	*p = s + n;
	*out = v;
	return true;
}

int lsn_parse(const char *s, uint64_t *out, WsError *err)
{
	const char *p = s;
	uint32_t hi, lo;

	if (!hex_part(&p, &hi) || *p++ != '/' || !hex_part(&p, &lo) || *p != '\0') {
		char shown[WALNAME_ESCAPE_MAX + 8];
		walname_escape(s, strlen(s), shown, sizeof(shown));
		ws_error(err, WS_USAGE, "invalid LSN \"%s\"", shown);
		ws_error_detail(err,
				"An LSN is two hexadecimal numbers of up to 8 digits separated by a slash, "
				"as in \"0/3000028\".");
		return WS_USAGE;
	}
	*out = (uint64_t)hi << 32 | lo;
	return 0;
}

void lsn_format(uint64_t lsn, char buf[LSN_STR_MAX])
{
	snprintf(buf, LSN_STR_MAX, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xFFFFFFFFu));
}

uint64_t lsn_segno(uint64_t lsn, uint32_t seg_size)
{
	return lsn / seg_size;
}

uint64_t segno_start_lsn(uint64_t segno, uint32_t seg_size)
{
	return segno * seg_size;
}
