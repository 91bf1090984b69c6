/*
 * history.h - timeline history files and the WAL segments recovery reads
 * along a timeline's history.
 *
 * A history file <tli>.history (timeline.c in PostgreSQL) has one line per
 * ancestor, oldest first:
 *
 *   parentTLI<TAB>switchpoint<TAB>reason
 *
 * where switchpoint is the LSN at which the child of that ancestor began.
 * Lines starting with '#' (after white space) and blank lines are ignored.
 * The timeline itself has no line; it runs from the last switch point on.
 */
#ifndef WALSHIP_PG_HISTORY_H
#define WALSHIP_PG_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* The most walship reads of a history file: real ones are a few hundred bytes per switch. */
#define HISTORY_FILE_MAX (16u * 1024 * 1024)

/*
 * One timeline of a path: it was current for LSNs begin <= lsn < end.
 * begin is 0 for the oldest timeline; end is UINT64_MAX for the newest (the
 * path's target), and otherwise the switch point, which is the next entry's
 * begin.
 */
typedef struct TimelineEntry {
	uint32_t tli;
	uint64_t begin;
	uint64_t end;
} TimelineEntry;

/* The history of one timeline: n >= 1 entries, oldest first, e[n - 1] the timeline itself. */
typedef struct TimelinePath {
	int n;
	TimelineEntry *e;
} TimelinePath;

/*
 * Parse the text of tli's history file (len bytes; need not be
 * NUL-terminated) into *out, as readTimeLineHistory does.  Each line must be
 * a decimal parent TLI (1 or more), white space, an LSN in the form
 * lsn_parse accepts, then the end of the line or white space and a reason
 * (ignored).  Leading white space is allowed; '\r' before '\n' is white space.
 * Refused with WS_CORRUPT, the message naming the file and line number and
 * the detail showing the line: any other line, a TLI not strictly above the
 * previous line's or not below tli, a switch point below the previous line's,
 * a switch point of 0/0 or FFFFFFFF/FFFFFFFF (PostgreSQL writes neither; 0 is
 * its "invalid" LSN), a NUL byte, and a file with no line at all (PostgreSQL
 * never writes one; use history_single for a timeline without history).
 * WS_USAGE if tli is 0.  Free *out with history_free.
 */
int history_parse(const char *text, size_t len, uint32_t tli, TimelinePath **out, WsError *err);

/*
 * The path of a timeline without a history file (timeline 1, or one whose
 * history PostgreSQL did not find): one entry from 0 to UINT64_MAX.
 */
TimelinePath *history_single(uint32_t tli);

void history_free(TimelinePath *p);

/*
 * The timeline on p that was current at lsn, as tliOfPointInHistory: the
 * entry with begin <= lsn < end, so a switch point itself belongs to the
 * newer timeline (the first record of the new timeline starts there).
 * Never 0 for a path from history_parse or history_single.
 */
uint32_t history_tli_of_lsn(const TimelinePath *p, uint64_t lsn);

/* Is tli on p (tliInHistory)? */
bool history_contains(const TimelinePath *p, uint32_t tli);

/*
 * Call fn(ctx, tli, segno) for every segment from the one holding start_lsn
 * to the one holding end_lsn, both included, in order, with the timeline
 * recovery reads that segment from when expectedTLEs is p: as
 * XLogFileReadAnyTLI (PostgreSQL 13 to 17), the newest timeline on p whose
 * begin lies in a segment <= segno (the oldest timeline counts as beginning
 * at segment 0).  So the segment holding a switch point is read from the
 * newer timeline (it holds a copy of the parent's WAL up to the switch
 * point), and one starting exactly at a switch point too.  A timeline's end
 * is not checked: past it, a newer timeline always qualifies first.
 *
 * PostgreSQL falls back to the older timelines on p (never one older than the
 * file read before) when that segment is missing; this gives only the first
 * choice, the one a complete archive serves.
 *
 * Stops at, and returns, the first non-zero value fn returns; 0 when all
 * were called.  WS_USAGE without calling fn when end_lsn is UINT64_MAX (pass
 * the newest position actually wanted), start_lsn > end_lsn, seg_size is not
 * a valid WAL segment size, or p is empty.
 */
int history_segments(const TimelinePath *p, uint64_t start_lsn, uint64_t end_lsn, uint32_t seg_size,
		     int (*fn)(void *ctx, uint32_t tli, uint64_t segno), void *ctx);

#endif
