/*
 * history.c - reading timeline history files and walking a timeline's
 * history the way PostgreSQL's recovery does.
 *
 * Follows src/backend/access/transam/timeline.c (readTimeLineHistory,
 * tliOfPointInHistory, tliInHistory) and xlogrecovery.c (XLogFileReadAnyTLI,
 * whose begin-segment check exists since PostgreSQL 13); the segment choice
 * was checked against a real PostgreSQL 15 recovery (test_history.c).
 * PostgreSQL keeps the list newest first with InvalidXLogRecPtr (0) for an
 * open begin or end; here the path is oldest first, begin 0 and end
 * UINT64_MAX standing for the open ends.
 *
 * The parser is stricter than PostgreSQL's sscanf("%u\t%X/%X"), which also
 * takes signs, "0x", overlong numbers and text glued to the LSN: a history
 * file decides which WAL a rebuild restores, so one PostgreSQL would not have
 * written is refused rather than guessed at.
 */
#include "pg/history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/lsn.h"
#include "pg/walname.h"
#include "util/mem.h"

static bool is_space(char c)
{
	/* isspace() in the C locale, which PostgreSQL's comment check and sscanf use. */
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Fill err for line lineno of tli's history file, showing the line. */
static int bad_line(WsError *err, uint32_t tli, int lineno, const char *line, size_t len, const char *what,
		    const char *detail)
{
	char shown[WALNAME_ESCAPE_MAX + 8];

	walname_escape(line, len, shown, sizeof(shown));
	ws_error(err, WS_CORRUPT, "%s in history file \"%08X.history\", line %d: \"%s\"", what, tli, lineno,
		 shown);
	ws_error_detail(err, "%s", detail);
	return WS_CORRUPT;
}

/*
 * Parse "TLI<white space>LSN[<white space>reason]" from a line without its
 * '\n'.  false if it is not that.
 */
static bool parse_line(const char *line, size_t len, uint32_t *tli, uint64_t *lsn)
{
	size_t i = 0, start;
	uint64_t v = 0;
	char lsn_text[LSN_STR_MAX];

	while (i < len && is_space(line[i]))
		i++;
	start = i;
	while (i < len && line[i] >= '0' && line[i] <= '9') {
		v = v * 10 + (uint64_t)(line[i] - '0');
		if (v > UINT32_MAX)
			return false;
		i++;
	}
	if (i == start || i == len || !is_space(line[i]))
		return false;
	*tli = (uint32_t)v;

	while (i < len && is_space(line[i]))
		i++;
	start = i;
	while (i < len && !is_space(line[i]))
		i++;
	if (i - start >= sizeof(lsn_text))
		return false;
	memcpy(lsn_text, line + start, i - start);
	lsn_text[i - start] = '\0';
	/* The rest of the line is the reason, which PostgreSQL ignores too. */
	return lsn_parse(lsn_text, lsn, NULL) == 0;
}

int history_parse(const char *text, size_t len, uint32_t tli, TimelinePath **out, WsError *err)
{
	TimelinePath *p = NULL;
	int cap = 0;
	int lineno = 0;
	uint64_t prev_end = 0;
	int rc = 0;
	size_t pos = 0;

	*out = NULL;
	if (tli == 0)
		return ws_error(err, WS_USAGE, "invalid timeline ID 0");
	if (memchr(text, '\0', len) != NULL) {
		ws_error(err, WS_CORRUPT, "history file \"%08X.history\" contains a NUL byte", tli);
		ws_error_detail(err, "A history file is text written by PostgreSQL.");
		return WS_CORRUPT;
	}

	p = xcalloc(1, sizeof(*p));
	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t line_len = nl ? (size_t)(nl - line) : len - pos;
		size_t i = 0;
		uint32_t ptli;
		uint64_t lsn;

		pos += line_len + (nl ? 1 : 0);
		lineno++;
		while (i < line_len && is_space(line[i]))
			i++;
		if (i == line_len || line[i] == '#')
			continue;

		if (!parse_line(line, line_len, &ptli, &lsn)) {
			rc = bad_line(err, tli, lineno, line, line_len, "syntax error",
				      "Expected a parent timeline ID, a tab, a switch point LSN such as "
				      "\"0/3000028\" and optionally a tab and a reason.");
			goto done;
		}
		if (ptli == 0) {
			rc = bad_line(err, tli, lineno, line, line_len, "invalid data",
				      "Timeline IDs start at 1.");
			goto done;
		}
		if (p->n > 0 && ptli <= p->e[p->n - 1].tli) {
			rc = bad_line(err, tli, lineno, line, line_len, "invalid data",
				      "Timeline IDs must be in increasing sequence.");
			goto done;
		}
		if (ptli >= tli) {
			rc = bad_line(err, tli, lineno, line, line_len, "invalid data",
				      "Timeline IDs must be less than the child timeline's ID.");
			goto done;
		}
		if (lsn == 0 || lsn == UINT64_MAX) {
			rc = bad_line(err, tli, lineno, line, line_len, "invalid data",
				      "A switch point cannot be 0/0 or FFFFFFFF/FFFFFFFF.");
			goto done;
		}
		if (lsn < prev_end) {
			rc = bad_line(err, tli, lineno, line, line_len, "invalid data",
				      "Switch points must not go backwards.");
			goto done;
		}

		/* Keep one slot free for the timeline itself. */
		if (p->n + 1 >= cap) {
			cap = cap ? cap * 2 : 8;
			p->e = xrealloc(p->e, (size_t)cap * sizeof(*p->e));
		}
		p->e[p->n].tli = ptli;
		p->e[p->n].begin = prev_end;
		p->e[p->n].end = lsn;
		prev_end = lsn;
		p->n++;
	}

	if (p->n == 0) {
		ws_error(err, WS_CORRUPT, "history file \"%08X.history\" has no timeline switch", tli);
		ws_error_detail(err, "PostgreSQL writes at least one line into a history file.");
		rc = WS_CORRUPT;
		goto done;
	}
	p->e[p->n].tli = tli;
	p->e[p->n].begin = prev_end;
	p->e[p->n].end = UINT64_MAX;
	p->n++;
	*out = p;
	p = NULL;

done:
	history_free(p);
	return rc;
}

TimelinePath *history_single(uint32_t tli)
{
	TimelinePath *p = xmalloc(sizeof(*p));

	p->n = 1;
	p->e = xmalloc(sizeof(*p->e));
	p->e[0].tli = tli;
	p->e[0].begin = 0;
	p->e[0].end = UINT64_MAX;
	return p;
}

void history_free(TimelinePath *p)
{
	if (p == NULL)
		return;
	free(p->e);
	free(p);
}

uint32_t history_tli_of_lsn(const TimelinePath *p, uint64_t lsn)
{
	for (int i = 0; i < p->n; i++) {
		const TimelineEntry *t = &p->e[i];
		/* The last end is open: UINT64_MAX itself is on it, as with PostgreSQL's invalid end. */
		if (t->begin <= lsn && (lsn < t->end || i == p->n - 1))
			return t->tli;
	}
	return 0;
}

bool history_contains(const TimelinePath *p, uint32_t tli)
{
	for (int i = 0; i < p->n; i++)
		if (p->e[i].tli == tli)
			return true;
	return false;
}

int history_segments(const TimelinePath *p, uint64_t start_lsn, uint64_t end_lsn, uint32_t seg_size,
		     int (*fn)(void *ctx, uint32_t tli, uint64_t segno), void *ctx)
{
	uint64_t last;

	if (p == NULL || p->n < 1 || end_lsn == UINT64_MAX || start_lsn > end_lsn ||
	    !wal_segsize_valid(seg_size))
		return WS_USAGE;

	last = lsn_segno(end_lsn, seg_size);
	for (uint64_t segno = lsn_segno(start_lsn, seg_size);; segno++) {
		int j = p->n - 1;
		int rc;

		/* Newest first, as XLogFileReadAnyTLI scans expectedTLEs; the oldest always qualifies. */
		while (j > 0 && lsn_segno(p->e[j].begin, seg_size) > segno)
			j--;
		rc = fn(ctx, p->e[j].tli, segno);
		if (rc != 0)
			return rc;
		if (segno == last)
			break;
	}
	return 0;
}
