/*
 * retention.c - walship prune's rules (see retention.h).  Where a rule is in
 * doubt it keeps: a deleted WAL file cannot be archived again.
 */
#include "repo/retention.h"

#include <stdlib.h>
#include <string.h>

#include "pg/lsn.h"
#include "util/clock.h"
#include "util/mem.h"

int64_t retention_parse_time(const char *iso)
{
	return clock_parse_utc_iso(iso);
}

/* Sequence number of a backup id: 1, or N of "-N". */
static long id_seq(const char *id)
{
	return strlen(id) > 17 && id[16] == '-' ? strtol(id + 17, NULL, 10) : 1;
}

typedef struct Item {
	const BackupMeta *b;
	int index;
	int64_t stop;
} Item;

/* Newest first: by end time, then id (its start time and sequence number). */
static int item_cmp(const void *a, const void *b)
{
	const Item *x = a, *y = b;
	if (x->stop != y->stop)
		return x->stop > y->stop ? -1 : 1;
	int c = strncmp(x->b->id, y->b->id, 16);
	if (c != 0)
		return -c;
	long p = id_seq(x->b->id), q = id_seq(y->b->id);
	return p > q ? -1 : p < q;
}

int retention_select(const BackupMeta *const *backups, int n, int keep_backups, int keep_days, int64_t now,
		     bool *keep, WsError *err)
{
	if (keep_backups < 1)
		return ws_error(err, WS_USAGE, "at least one backup must be kept");
	Item *items = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(*items));
	for (int i = 0; i < n; i++) {
		keep[i] = false;
		items[i].b = backups[i];
		items[i].index = i;
		items[i].stop = retention_parse_time(backups[i]->stop_time);
		if (items[i].stop < 0) {
			int rc = ws_error(err, WS_CORRUPT, "backup \"%s\" has an invalid stop_time \"%s\"",
					  backups[i]->id, backups[i]->stop_time);
			free(items);
			return rc;
		}
	}
	if (n > 1)
		qsort(items, (size_t)n, sizeof(*items), item_cmp);

	int64_t cutoff = keep_days >= 0 ? now - (int64_t)keep_days * 86400 : INT64_MIN;
	bool older_kept = false;
	for (int i = 0; i < n; i++) {
		bool k = i < keep_backups;
		if (keep_days >= 0) {
			if (items[i].stop > cutoff) {
				k = true;
			} else if (!older_kept) {
				/* The newest backup consistent by the window's start: its first point is
				 * covered. */
				k = true;
				older_kept = true;
			}
		}
		keep[items[i].index] = k;
	}
	free(items);
	return 0;
}

static RetentionTimeline *find(RetentionTimeline *tls, int ntl, uint32_t tli)
{
	for (int i = 0; i < ntl; i++)
		if (tls[i].tli == tli)
			return &tls[i];
	return NULL;
}

static void keep_from(RetentionTimeline *t, uint64_t segno)
{
	if (t != NULL && segno < t->keep_from)
		t->keep_from = segno;
}

void retention_wal(RetentionTimeline *tls, int ntl, const BackupMeta *const *kept, int nkept,
		   uint32_t seg_size)
{
	for (int i = 0; i < ntl; i++) {
		RetentionTimeline *t = &tls[i];
		bool unknown = t->path == NULL || (t->tli > 1 && !t->has_history);
		t->keep_from = unknown ? 0 : RETENTION_KEEP_NONE;
	}
	for (int k = 0; k < nkept; k++) {
		const BackupMeta *b = kept[k];
		keep_from(find(tls, ntl, b->timeline), lsn_segno(b->start_lsn, seg_size));

		for (int i = 0; i < ntl; i++) {
			const TimelinePath *p = tls[i].path;
			int at = -1;
			if (p == NULL)
				continue;
			for (int j = 0; j < p->n - 1; j++)
				if (p->e[j].tli == b->timeline)
					at = j;
			/* Recovery from b along this path must reach b's end before leaving b's timeline. */
			if (at < 0 || b->start_lsn < p->e[at].begin || b->stop_lsn > p->e[at].end)
				continue;
			for (int j = at + 1; j < p->n; j++)
				keep_from(find(tls, ntl, p->e[j].tli), lsn_segno(p->e[j].begin, seg_size));
		}
	}
}

bool retention_wal_kept(const RetentionTimeline *tls, int ntl, uint32_t tli, uint64_t segno)
{
	for (int i = 0; i < ntl; i++)
		if (tls[i].tli == tli)
			return segno >= tls[i].keep_from;
	return true;
}
