/*
 * lsn.h - WAL positions (LSNs) in PostgreSQL's text form, and the segments
 * that hold them.
 *
 * The text form is the one pg_lsn and every PostgreSQL message use: two hex
 * numbers of 1 to 8 digits separated by a slash, the high 32 bits first,
 * e.g. "0/3000028" or "16/B374D848".
 */
#ifndef WALSHIP_PG_LSN_H
#define WALSHIP_PG_LSN_H

#include <stdint.h>

#include "util/error.h"

/* "FFFFFFFF/FFFFFFFF" and its terminator. */
#define LSN_STR_MAX 18

/*
 * Parse s as pg_lsn_in does: 1 to 8 hex digits (either case), '/', 1 to 8
 * hex digits, nothing before, between or after (no spaces, signs or "0x").
 * WS_USAGE 'invalid LSN "s"' with a detail showing the form otherwise; *out
 * is left alone then.
 */
int lsn_parse(const char *s, uint64_t *out, WsError *err);

/* "%X/%X" as PostgreSQL prints it: uppercase, no zero padding ("0/3000028"). */
void lsn_format(uint64_t lsn, char buf[LSN_STR_MAX]);

/* Number of the segment holding lsn (seg_size: a valid WAL segment size). */
uint64_t lsn_segno(uint64_t lsn, uint32_t seg_size);

/* First LSN of segment segno (segno * seg_size; the caller keeps it below 2^64). */
uint64_t segno_start_lsn(uint64_t segno, uint32_t seg_size);

#endif
