/*
 * list.c - walship list: what each epoch holds and, more to the point for an
 * operator, what it can be rebuilt to.  The windows follow the segments
 * recovery would actually read (history_segments), so a listing never
 * promises a point that a rebuild from this repository could not reach.
 */
#include "cmd/list.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "pg/cluster.h"
#include "pg/lsn.h"
#include "pg/pgcontrol.h"
#include "pg/walname.h"
#include "repo/jsonfile.h"
#include "repo/lock.h"
#include "repo/repo.h"
#include "util/log.h"
#include "util/mem.h"

/* Incomplete backups named in the note line before "and N more". */
#define INCOMPLETE_SHOWN 5

/* ---- windows ---- */

/* A segment recovery reads along a path: its number and the timeline it is read from. */
typedef struct Seg {
	uint64_t segno;
	uint32_t tli;
} Seg;

static int choose_fn(void *ctx, uint32_t tli, uint64_t segno)
{
	(void)segno;
	*(uint32_t *)ctx = tli;
	return 0;
}

/* The timeline recovery along p reads segment segno from (0 if p is unusable). */
static uint32_t chosen_tli(const TimelinePath *p, uint64_t segno, uint32_t seg_size)
{
	uint32_t tli = 0;
	uint64_t lsn = segno_start_lsn(segno, seg_size);
	(void)history_segments(p, lsn, lsn, seg_size, choose_fn, &tli);
	return tli;
}

/* End of segment segno: the start of the next one, or the last LSN for the last segment. */
static uint64_t seg_end_lsn(uint64_t segno, uint32_t seg_size)
{
	if (segno >= UINT64_MAX / seg_size)
		return UINT64_MAX;
	return segno_start_lsn(segno + 1, seg_size);
}

static int seg_cmp(const void *a, const void *b)
{
	const Seg *x = a, *y = b;
	return x->segno < y->segno ? -1 : x->segno > y->segno;
}

static const ListTimeline *find_tl(const ListTimeline *const *sorted, int n, uint32_t tli)
{
	int lo = 0, hi = n - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		if (sorted[mid]->tli == tli)
			return sorted[mid];
		if (sorted[mid]->tli < tli)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/* Index of segno in segs (ascending), or -1. */
static long find_seg(const Seg *segs, size_t n, uint64_t segno)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (segs[mid].segno < segno)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && segs[lo].segno == segno ? (long)lo : -1;
}

/*
 * The segments present in the repository that recovery along p reads, in
 * order: those of each timeline on p where history_segments picks that
 * timeline.
 */
static Seg *path_segments(const TimelinePath *p, const ListTimeline *const *sorted, int ntl,
			  uint32_t seg_size, size_t *nout)
{
	Seg *segs = NULL;
	size_t n = 0, cap = 0;

	for (int j = 0; j < p->n; j++) {
		const ListTimeline *lt = find_tl(sorted, ntl, p->e[j].tli);
		if (lt == NULL)
			continue;
		for (size_t k = 0; k < lt->nsegs; k++) {
			if (chosen_tli(p, lt->segs[k], seg_size) != lt->tli)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				segs = xrealloc(segs, cap * sizeof(*segs));
			}
			segs[n].segno = lt->segs[k];
			segs[n].tli = lt->tli;
			n++;
		}
	}
	if (n > 1)
		qsort(segs, n, sizeof(*segs), seg_cmp);
	*nout = n;
	return segs;
}

/* A backup's own window before merging. */
typedef struct BackupWindow {
	int order; /* position in the caller's array, for a stable merge */
	ListRange r;
} BackupWindow;

static int bw_cmp(const void *a, const void *b)
{
	const BackupWindow *x = a, *y = b;
	if (x->r.from_lsn != y->r.from_lsn)
		return x->r.from_lsn < y->r.from_lsn ? -1 : 1;
	return x->order - y->order;
}

static void add_unusable(ListWindow *w, const BackupMeta *b, uint32_t tli, uint64_t segno)
{
	w->unusable = xrealloc(w->unusable, (size_t)(w->nunusable + 1) * sizeof(*w->unusable));
	ListUnusable *u = &w->unusable[w->nunusable++];
	u->backup = b;
	u->missing_tli = tli;
	u->missing_segno = segno;
}

static void window_of(ListWindow *w, const ListTimeline *lt, const BackupMeta *const *backups, int nb,
		      const ListTimeline *const *sorted, int ntl, uint32_t seg_size)
{
	const TimelinePath *p = lt->path;
	size_t nsegs = 0;
	Seg *segs = path_segments(p, sorted, ntl, seg_size, &nsegs);
	size_t *run_end = xmalloc((nsegs ? nsegs : 1) * sizeof(*run_end));
	BackupWindow *bw = xmalloc((size_t)(nb > 0 ? nb : 1) * sizeof(*bw));
	int nbw = 0;

	/* run_end[i]: the index of the last segment of the contiguous run holding segs[i]. */
	for (size_t i = nsegs; i-- > 0;)
		run_end[i] = i + 1 < nsegs && segs[i + 1].segno == segs[i].segno + 1 ? run_end[i + 1] : i;

	for (int i = 0; i < nb; i++) {
		const BackupMeta *b = backups[i];
		const TimelineEntry *e = NULL;

		if (b->seg_size != seg_size)
			continue;
		for (int j = 0; j < p->n; j++)
			if (p->e[j].tli == b->timeline)
				e = &p->e[j];
		/* Past the switch point recovery along p has left b's timeline before b is consistent. */
		if (e == NULL || b->start_lsn < e->begin || b->stop_lsn > e->end)
			continue;

		uint64_t first = lsn_segno(b->start_lsn, seg_size);
		uint64_t last = lsn_segno(b->stop_lsn - 1, seg_size);
		long at = find_seg(segs, nsegs, first);
		if (at < 0) {
			add_unusable(w, b, chosen_tli(p, first, seg_size), first);
			continue;
		}
		const Seg *end = &segs[run_end[at]];
		if (end->segno < last) {
			add_unusable(w, b, chosen_tli(p, end->segno + 1, seg_size), end->segno + 1);
			continue;
		}
		BackupWindow *x = &bw[nbw++];
		x->order = i;
		x->r.from_lsn = b->stop_lsn;
		x->r.from_backup = b;
		x->r.to_lsn = seg_end_lsn(end->segno, seg_size);
		x->r.to_tli = end->tli;
		x->r.to_segno = end->segno;
	}

	/* Windows that touch or overlap are one range, starting at the earliest consistent point. */
	if (nbw > 1)
		qsort(bw, (size_t)nbw, sizeof(*bw), bw_cmp);
	w->ranges = xmalloc((size_t)(nbw > 0 ? nbw : 1) * sizeof(*w->ranges));
	for (int i = 0; i < nbw; i++) {
		ListRange *cur = w->nranges > 0 ? &w->ranges[w->nranges - 1] : NULL;
		if (cur != NULL && bw[i].r.from_lsn <= cur->to_lsn) {
			if (bw[i].r.to_lsn > cur->to_lsn) {
				cur->to_lsn = bw[i].r.to_lsn;
				cur->to_tli = bw[i].r.to_tli;
				cur->to_segno = bw[i].r.to_segno;
			}
			continue;
		}
		w->ranges[w->nranges++] = bw[i].r;
	}

	/* Holes in the WAL after the first range: each one cuts the window short. */
	if (w->nranges > 0) {
		uint64_t from = w->ranges[0].to_segno;
		for (size_t i = 0; i + 1 < nsegs; i++) {
			if (segs[i].segno < from || segs[i + 1].segno == segs[i].segno + 1)
				continue;
			w->gaps = xrealloc(w->gaps, (size_t)(w->ngaps + 1) * sizeof(*w->gaps));
			ListGap *g = &w->gaps[w->ngaps++];
			g->first_segno = segs[i].segno + 1;
			g->count = segs[i + 1].segno - g->first_segno;
			g->tli = chosen_tli(p, g->first_segno, seg_size);
			g->reachable_after = w->ranges[w->nranges - 1].to_segno > g->first_segno;
		}
	}

	free(bw);
	free(run_end);
	free(segs);
}

static int tl_ptr_cmp(const void *a, const void *b)
{
	const ListTimeline *x = *(const ListTimeline *const *)a, *y = *(const ListTimeline *const *)b;
	return x->tli < y->tli ? -1 : x->tli > y->tli;
}

int list_windows(const BackupMeta *const *backups, int nb, const ListTimeline *tls, int ntl,
		 uint32_t seg_size, ListWindow **out, int *nout, WsError *err)
{
	const ListTimeline **sorted = NULL;
	ListWindow *w = NULL;

	*out = NULL;
	*nout = 0;
	if (!wal_segsize_valid(seg_size))
		return ws_error(err, WS_USAGE, "invalid WAL segment size %" PRIu32, seg_size);
	if (ntl <= 0)
		return 0;

	sorted = xmalloc((size_t)ntl * sizeof(*sorted));
	for (int i = 0; i < ntl; i++)
		sorted[i] = &tls[i];
	qsort(sorted, (size_t)ntl, sizeof(*sorted), tl_ptr_cmp);
	for (int i = 1; i < ntl; i++) {
		if (sorted[i]->tli == sorted[i - 1]->tli) {
			uint32_t tli = sorted[i]->tli;
			free(sorted);
			return ws_error(err, WS_USAGE, "timeline %" PRIu32 " is listed twice", tli);
		}
	}

	w = xcalloc((size_t)ntl, sizeof(*w));
	for (int i = 0; i < ntl; i++) {
		w[i].tli = sorted[i]->tli;
		w[i].has_history = sorted[i]->has_history;
		if (sorted[i]->path == NULL) {
			w[i].bad_history = true;
			continue;
		}
		window_of(&w[i], sorted[i], backups, nb, sorted, ntl, seg_size);
	}
	free(sorted);
	*out = w;
	*nout = ntl;
	return 0;
}

void list_windows_free(ListWindow *w, int n)
{
	if (w == NULL)
		return;
	for (int i = 0; i < n; i++) {
		free(w[i].ranges);
		free(w[i].gaps);
		free(w[i].unusable);
	}
	free(w);
}

/* ---- text ---- */

/* "2026-11-25T19:00:04Z" as "2026-11-25 19:00:04". */
static const char *show_time(const char *iso, char buf[32])
{
	snprintf(buf, 32, "%s", iso);
	size_t n = strlen(buf);
	if (n == 20 && buf[10] == 'T' && buf[19] == 'Z') {
		buf[10] = ' ';
		buf[19] = '\0';
	}
	return buf;
}

static void print_range(FILE *f, const ListRange *r, uint32_t seg_size)
{
	char from[LSN_STR_MAX], to[LSN_STR_MAX], name[32], t[32];
	lsn_format(r->from_lsn, from);
	lsn_format(r->to_lsn, to);
	wal_segment_name(r->to_tli, r->to_segno, seg_size, name);
	fprintf(f, "from %s (backup %s, %s) to %s (end of %s)", from, r->from_backup->id,
		show_time(r->from_backup->stop_time, t), to, name);
}

void list_print_window(FILE *f, const ListWindow *w, uint32_t seg_size)
{
	char name[32];

	if (w->bad_history) {
		fprintf(f,
			"  timeline %" PRIu32 ": unknown: history file \"%08" PRIX32
			".history\" could not be read\n",
			w->tli, w->tli);
		return;
	}
	fprintf(f, "  timeline %" PRIu32 ": ", w->tli);
	if (w->nranges == 0) {
		fputs(w->nunusable > 0
			      ? "nothing can be rebuilt: no backup on its history has all the WAL it needs"
			      : "nothing can be rebuilt: no backup was taken on it or on a timeline it "
				"descends from",
		      f);
	} else {
		bool said = false;
		int r = 1, g = 0;
		print_range(f, &w->ranges[0], seg_size);
		/* Ranges and gaps never share a segment: order them by where they lie. */
		while (r < w->nranges || g < w->ngaps) {
			if (g < w->ngaps &&
			    (r >= w->nranges || w->gaps[g].first_segno < w->ranges[r].to_segno)) {
				const ListGap *gap = &w->gaps[g++];
				wal_segment_name(gap->tli, gap->first_segno, seg_size, name);
				fprintf(f, "; gap: %s missing (%" PRIu64 " segment%s)", name, gap->count,
					gap->count == 1 ? "" : "s");
				if (!gap->reachable_after && !said) {
					fputs(", WAL after it is not reachable", f);
					said = true;
				}
			} else {
				fputs("; ", f);
				print_range(f, &w->ranges[r++], seg_size);
			}
		}
	}
	fputc('\n', f);
	if (w->tli > 1 && !w->has_history)
		fprintf(f,
			"  note: timeline %" PRIu32
			" has no history file: only backups taken on timeline %" PRIu32 " count for it\n",
			w->tli, w->tli);
	/* Once, under the backup's own timeline: descendants cannot do better. */
	for (int i = 0; i < w->nunusable; i++) {
		const ListUnusable *u = &w->unusable[i];
		if (u->backup->timeline != w->tli)
			continue;
		wal_segment_name(u->missing_tli, u->missing_segno, seg_size, name);
		fprintf(f, "  backup %s cannot be rebuilt: WAL segment %s is missing\n", u->backup->id, name);
	}
}

/* ---- reading an epoch ---- */

static ListEpochTimeline *tl_acc(ListEpoch *s, uint32_t tli)
{
	if (s->last >= 0 && s->last < s->ntl && s->tls[s->last].tli == tli)
		return &s->tls[s->last];
	for (int i = 0; i < s->ntl; i++) {
		if (s->tls[i].tli == tli) {
			s->last = i;
			return &s->tls[i];
		}
	}
	s->tls = xrealloc(s->tls, (size_t)(s->ntl + 1) * sizeof(*s->tls));
	ListEpochTimeline *t = &s->tls[s->ntl];
	memset(t, 0, sizeof(*t));
	t->tli = tli;
	s->last = s->ntl++;
	return t;
}

static void unexpected(ListEpoch *s, const char *key)
{
	if (s->n_unexpected++ == 0)
		snprintf(s->unexpected, sizeof(s->unexpected), "%s", key);
}

static int wal_key(void *ctx, const char *key, const StoreStat *st, WsError *err)
{
	ListEpoch *s = ctx;
	const char *rel = key + s->prefix_len;
	const char *slash = strchr(rel, '/');
	WalName n;

	(void)st, (void)err;
	if (strchr(rel, '@') != NULL) {
		/* A differing .partial/.backup kept beside the first: recovery never reads it. */
		s->n_variants++;
		return 0;
	}
	if (slash == NULL) {
		if (walname_parse(rel, &n, NULL) == 0 && n.kind == WAL_HISTORY)
			tl_acc(s, n.tli)->has_history = true;
		else
			unexpected(s, key);
		return 0;
	}
	/* Only a file in the directory repo_key_wal names is one fetch can find. */
	if (walname_parse(slash + 1, &n, NULL) != 0 || n.kind == WAL_HISTORY || slash - rel != 16 ||
	    strncmp(rel, slash + 1, 16) != 0) {
		unexpected(s, key);
		return 0;
	}
	switch (n.kind) {
	case WAL_SEGMENT: {
		if (walname_check_segsize(&n, s->epoch->seg_size, NULL) != 0) {
			unexpected(s, key);
			break;
		}
		ListEpochTimeline *t = tl_acc(s, n.tli);
		if (t->nsegs == t->cap) {
			t->cap = t->cap ? t->cap * 2 : 256;
			t->segs = xrealloc(t->segs, t->cap * sizeof(*t->segs));
		}
		t->segs[t->nsegs++] = walname_segno(&n, s->epoch->seg_size);
		break;
	}
	case WAL_PARTIAL:
		s->n_partial++;
		break;
	case WAL_BACKUP:
		s->n_backup_files++;
		break;
	default:
		unexpected(s, key);
		break;
	}
	return 0;
}

static int backup_key_fn(void *ctx, const char *key, const StoreStat *st, WsError *err)
{
	ListEpoch *s = ctx;
	const char *rel = key + s->prefix_len;
	const char *slash = strchr(rel, '/');
	char id[BACKUP_ID_MAX];
	ListBackupDir *d = NULL;

	(void)st, (void)err;
	if (slash == NULL || (size_t)(slash - rel) >= sizeof(id)) {
		unexpected(s, key);
		return 0;
	}
	memcpy(id, rel, (size_t)(slash - rel));
	id[slash - rel] = '\0';
	if (!backup_id_valid(id)) {
		unexpected(s, key);
		return 0;
	}
	/* "X-2/..." sorts before "X/...", so a directory's keys need not be adjacent. */
	for (int i = s->ndirs; i-- > 0;) {
		if (strcmp(s->dirs[i].id, id) == 0) {
			d = &s->dirs[i];
			break;
		}
	}
	if (d == NULL) {
		s->dirs = xrealloc(s->dirs, (size_t)(s->ndirs + 1) * sizeof(*s->dirs));
		d = &s->dirs[s->ndirs++];
		memset(d, 0, sizeof(*d));
		memcpy(d->id, id, sizeof(id));
	}
	if (strcmp(slash + 1, BACKUP_META_NAME) == 0)
		d->has_meta = true;
	return 0;
}

/* The sequence number of an id: 1, or N of "-N". */
static long id_seq(const char *id)
{
	return id[16] == '-' ? strtol(id + 17, NULL, 10) : 1;
}

/* Chronological: by the id's time, then its sequence number (plain strcmp puts "X-2" before "X"). */
static int id_cmp(const char *a, const char *b)
{
	int c = strncmp(a, b, 16);
	if (c != 0)
		return c;
	long x = id_seq(a), y = id_seq(b);
	return x < y ? -1 : x > y;
}

static int backup_ptr_cmp(const void *a, const void *b)
{
	return id_cmp((*(BackupMeta *const *)a)->id, (*(BackupMeta *const *)b)->id);
}

static int dir_cmp(const void *a, const void *b)
{
	return id_cmp(((const ListBackupDir *)a)->id, ((const ListBackupDir *)b)->id);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int tlacc_cmp(const void *a, const void *b)
{
	const ListEpochTimeline *x = a, *y = b;
	return x->tli < y->tli ? -1 : x->tli > y->tli;
}

void list_epoch_free(ListEpoch *s)
{
	if (s == NULL)
		return;
	list_windows_free(s->w, s->nw);
	free(s->lts);
	for (int i = 0; i < s->ntl; i++) {
		free(s->tls[i].segs);
		history_free(s->tls[i].path);
	}
	free(s->tls);
	free(s->dirs);
	for (int i = 0; i < s->nbackups; i++)
		backup_meta_free(s->backups[i]);
	free(s->backups);
	memset(s, 0, sizeof(*s));
}

/* Read and check manifest.json of one backup directory; the caller is told if it is not a valid one of this
 * epoch. */
static void read_backup(Repo *repo, ListEpoch *s, const char *id, ListProblemFn problem, void *ctx)
{
	const RepoEpoch *ep = s->epoch;
	char key[STORE_KEY_MAX] = "";
	MemWriter mb = {.max = BACKUP_META_MAX, .what = BACKUP_META_NAME};
	ListProblem p = {.epoch = ep->id, .backup_id = id, .key = key};
	BackupMeta *meta = NULL;
	WsError e;
	int rc;

	ws_error_clear(&e);
	if (backup_key(ep->id, id, BACKUP_META_NAME, key, sizeof(key)) != 0) {
		ws_error(&e, WS_FATAL, "repository key for backup \"%s\" is too long", id);
		p.key_too_long = true;
		goto fail;
	}
	if (repo_encrypted(repo))
		rc = repo_get_object(repo, key, BACKUP_META_MAX, mem_writer_write, &mb, NULL, &e);
	else
		rc = store_get(repo_store(repo), key, 0, STORE_TO_END, mem_writer_write, &mb, &e);
	if (rc != 0)
		goto fail;
	if ((rc = backup_meta_parse(mb.buf ? mb.buf : "", mb.len, &meta, &e)) != 0)
		goto fail;
	if (strcmp(meta->id, id) != 0 || strcmp(meta->epoch, ep->id) != 0) {
		ws_error(&e, WS_CORRUPT, "manifest.json says it is backup \"%s\" of epoch \"%s\"", meta->id,
			 meta->epoch);
		ws_error_detail(&e, "It is stored as \"%s\".", key);
		p.mismatch = true;
		goto fail;
	}
	if (meta->sysid != ep->sysid || meta->seg_size != ep->seg_size || meta->pg_major != ep->pg_major) {
		char s1[32], s2[32];
		ws_error(&e, WS_CORRUPT, "manifest.json does not match epoch \"%s\"", ep->id);
		ws_error_detail(&e,
				"The backup is of system identifier %" PRIu64
				" with %s WAL segments; the epoch "
				"is system identifier %" PRIu64 " with %s WAL segments.",
				meta->sysid, cluster_size_str(meta->seg_size, s1, sizeof(s1)), ep->sysid,
				cluster_size_str(ep->seg_size, s2, sizeof(s2)));
		p.mismatch = true;
		goto fail;
	}
	s->backups = xrealloc(s->backups, (size_t)(s->nbackups + 1) * sizeof(*s->backups));
	s->backups[s->nbackups++] = meta;
	free(mb.buf);
	return;
fail:
	problem(ctx, &p, &e);
	backup_meta_free(meta);
	free(mb.buf);
}

static void read_history(Repo *repo, ListEpoch *s, ListEpochTimeline *t, ListProblemFn problem, void *ctx)
{
	char key[STORE_KEY_MAX] = "";
	char what[64];
	MemWriter mb = {.max = HISTORY_FILE_MAX, .what = what};
	ListProblem p = {.epoch = s->epoch->id, .tli = t->tli, .key = key};
	WsError e;
	int rc;

	ws_error_clear(&e);
	snprintf(what, sizeof(what), "history file \"%08" PRIX32 ".history\"", t->tli);
	if (str_format(key, sizeof(key), "%s/wal/%08" PRIX32 ".history", s->epoch->id, t->tli) != 0) {
		rc = ws_error(&e, WS_FATAL, "repository key for %s is too long", what);
		p.key_too_long = true;
	} else {
		rc = repo_get_object(repo, key, HISTORY_FILE_MAX, mem_writer_write, &mb, NULL, &e);
	}
	if (rc == 0)
		rc = history_parse(mb.buf ? mb.buf : "", mb.len, t->tli, &t->path, &e);
	if (rc != 0) {
		t->path = NULL;
		t->bad_history = true;
		problem(ctx, &p, &e);
	}
	free(mb.buf);
}

int list_scan_epoch(Repo *repo, const RepoEpoch *ep, ListProblemFn problem, void *ctx, ListEpoch *s,
		    WsError *err)
{
	char prefix[STORE_KEY_MAX];
	int rc;

	memset(s, 0, sizeof(*s));
	s->epoch = ep;
	s->last = -1;

	if (str_format(prefix, sizeof(prefix), "%s/backups/", ep->id) != 0)
		return ws_error(err, WS_FATAL, "repository key for epoch \"%s\" is too long", ep->id);
	s->prefix_len = strlen(prefix);
	if ((rc = store_list(repo_store(repo), prefix, backup_key_fn, s, err)) != 0)
		return rc;
	if (s->ndirs > 1)
		qsort(s->dirs, (size_t)s->ndirs, sizeof(*s->dirs), dir_cmp);
	for (int i = 0; i < s->ndirs; i++)
		if (s->dirs[i].has_meta)
			read_backup(repo, s, s->dirs[i].id, problem, ctx);
	if (s->nbackups > 1)
		qsort(s->backups, (size_t)s->nbackups, sizeof(*s->backups), backup_ptr_cmp);

	snprintf(prefix, sizeof(prefix), "%s/wal/", ep->id);
	s->prefix_len = strlen(prefix);
	if ((rc = store_list(repo_store(repo), prefix, wal_key, s, err)) != 0)
		return rc;

	/* Every timeline a backup is on gets a window, with segments or not. */
	for (int i = 0; i < s->nbackups; i++)
		(void)tl_acc(s, s->backups[i]->timeline);
	if (s->ntl > 1)
		qsort(s->tls, (size_t)s->ntl, sizeof(*s->tls), tlacc_cmp);
	s->last = -1;
	s->lts = xcalloc((size_t)(s->ntl > 0 ? s->ntl : 1), sizeof(*s->lts));
	for (int i = 0; i < s->ntl; i++) {
		ListEpochTimeline *t = &s->tls[i];
		if (t->nsegs > 1) {
			size_t k = 0;
			qsort(t->segs, t->nsegs, sizeof(*t->segs), u64_cmp);
			for (size_t j = 0; j < t->nsegs; j++)
				if (k == 0 || t->segs[j] != t->segs[k - 1])
					t->segs[k++] = t->segs[j];
			t->nsegs = k;
		}
		if (t->has_history)
			read_history(repo, s, t, problem, ctx);
		else
			t->path = history_single(t->tli);
		s->lts[i].tli = t->tli;
		s->lts[i].path = t->path;
		s->lts[i].has_history = t->has_history;
		s->lts[i].segs = t->segs;
		s->lts[i].nsegs = t->nsegs;
	}
	return list_windows((const BackupMeta *const *)s->backups, s->nbackups, s->lts, s->ntl, ep->seg_size,
			    &s->w, &s->nw, err);
}

/* ---- the listing ---- */

/* Problems a listing survives: printed now, counted, and kept for --json. */
typedef struct Problems {
	int n;
	json_t *list;
} Problems;

static void problem(Problems *pr, const WsError *e)
{
	fflush(stdout);
	log_report(e);
	pr->n++;
	json_t *o = json_object();
	json_object_set_new(o, "message", json_string(e->msg));
	if (e->detail[0])
		json_object_set_new(o, "detail", json_string(e->detail));
	if (e->hint[0])
		json_object_set_new(o, "hint", json_string(e->hint));
	json_array_append_new(pr->list, o);
}

static void scan_problem(void *ctx, const ListProblem *p, WsError *e)
{
	if (p->backup_id != NULL)
		ws_error_prefix(e, "backup \"%s\" of epoch \"%s\" is not listed", p->backup_id, p->epoch);
	else
		ws_error_prefix(e, "epoch \"%s\", timeline %" PRIu32, p->epoch, p->tli);
	problem(ctx, e);
}

/* ---- output ---- */

static void backup_sizes(const BackupMeta *b, uint64_t *size, uint64_t *stored)
{
	*size = b->has_manifest ? b->manifest.size : 0;
	*stored = b->has_manifest ? b->manifest.stored_size : 0;
	for (int i = 0; i < b->n_tablespaces; i++) {
		*size += b->tablespaces[i].obj.size;
		*stored += b->tablespaces[i].obj.stored_size;
	}
}

static int max_int(int a, int b)
{
	return a > b ? a : b;
}

enum { NCOL = 8 };

/* One table row: columns padded to their width, three spaces apart, no trailing blanks. */
static void print_row(const char *const *cells, const int *width)
{
	printf("  ");
	for (int c = 0; c < NCOL - 1; c++)
		printf("%-*s   ", width[c], cells[c]);
	printf("%s\n", cells[NCOL - 1]);
}

static void print_backups(const ListEpoch *s)
{
	static const char *const head[NCOL] = {"id",        "start (UTC)", "stop (UTC)", "timeline",
					       "start LSN", "stop LSN",    "size",       "stored"};
	char(*cells)[NCOL][40] = xcalloc((size_t)(s->nbackups > 0 ? s->nbackups : 1), sizeof(*cells));
	int width[NCOL];
	int incomplete = 0;

	for (int c = 0; c < NCOL; c++)
		width[c] = (int)strlen(head[c]);
	for (int i = 0; i < s->nbackups; i++) {
		const BackupMeta *b = s->backups[i];
		uint64_t size, stored;
		char t[32];
		backup_sizes(b, &size, &stored);
		snprintf(cells[i][0], 40, "%s", b->id);
		snprintf(cells[i][1], 40, "%s", show_time(b->start_time, t));
		snprintf(cells[i][2], 40, "%s", show_time(b->stop_time, t));
		snprintf(cells[i][3], 40, "%" PRIu32, b->timeline);
		lsn_format(b->start_lsn, cells[i][4]);
		lsn_format(b->stop_lsn, cells[i][5]);
		fmt_size(size, cells[i][6], 40);
		fmt_size(stored, cells[i][7], 40);
		for (int c = 0; c < NCOL; c++)
			width[c] = max_int(width[c], (int)strlen(cells[i][c]));
	}

	if (s->nbackups == 0) {
		printf("backups (epoch %s): none\n", s->epoch->id);
	} else {
		printf("backups (epoch %s):\n", s->epoch->id);
		print_row(head, width);
		for (int i = 0; i < s->nbackups; i++) {
			const char *row[NCOL];
			for (int c = 0; c < NCOL; c++)
				row[c] = cells[i][c];
			print_row(row, width);
		}
	}
	free(cells);

	for (int i = 0; i < s->ndirs; i++)
		incomplete += !s->dirs[i].has_meta;
	if (incomplete > 0) {
		int shown = 0;
		printf("  note: %d incomplete backup%s without %s (in progress, or failed and not removed):",
		       incomplete, incomplete == 1 ? "" : "s", BACKUP_META_NAME);
		for (int i = 0; i < s->ndirs && shown < INCOMPLETE_SHOWN; i++) {
			if (s->dirs[i].has_meta)
				continue;
			printf("%s %s", shown > 0 ? "," : "", s->dirs[i].id);
			shown++;
		}
		if (incomplete > shown)
			printf(" and %d more", incomplete - shown);
		printf("\n");
	}
}

static void print_wal(const ListEpoch *s)
{
	uint32_t seg_size = s->epoch->seg_size;
	char a[32], b[32];

	bool any = s->n_partial + s->n_backup_files + s->n_variants > 0;
	for (int i = 0; i < s->ntl; i++)
		any = any || s->tls[i].nsegs > 0 || s->tls[i].has_history;
	printf("wal (epoch %s):%s\n", s->epoch->id, any ? "" : " none");
	for (int i = 0; i < s->ntl; i++) {
		const ListEpochTimeline *t = &s->tls[i];
		if (t->nsegs == 0 && !t->has_history)
			continue; /* only there because a backup is: its window line says the rest */
		printf("  timeline %" PRIu32 ": ", t->tli);
		if (t->nsegs == 0) {
			printf("no segments");
		} else {
			wal_segment_name(t->tli, t->segs[0], seg_size, a);
			wal_segment_name(t->tli, t->segs[t->nsegs - 1], seg_size, b);
			if (t->nsegs == 1)
				printf("1 segment, %s", a);
			else
				printf("%zu segments, %s to %s", t->nsegs, a, b);
		}
		printf("%s\n", t->has_history ? ", history file" : "");
	}
	if (s->n_partial + s->n_backup_files + s->n_variants > 0) {
		const char *sep = "";
		printf("  also:");
		if (s->n_partial > 0) {
			printf(" %ld partial segment%s", s->n_partial, s->n_partial == 1 ? "" : "s");
			sep = ",";
		}
		if (s->n_backup_files > 0) {
			printf("%s %ld backup history file%s", sep, s->n_backup_files,
			       s->n_backup_files == 1 ? "" : "s");
			sep = ",";
		}
		if (s->n_variants > 0)
			printf("%s %ld differing cop%s kept beside the first", sep, s->n_variants,
			       s->n_variants == 1 ? "y" : "ies");
		printf("\n");
	}
	if (s->n_unexpected > 0)
		printf("  note: %ld key%s that walship did not write ignored, e.g. \"%s\"\n", s->n_unexpected,
		       s->n_unexpected == 1 ? "" : "s", s->unexpected);
}

static json_t *lsn_json(uint64_t lsn)
{
	char buf[LSN_STR_MAX];
	lsn_format(lsn, buf);
	return json_string(buf);
}

static json_t *seg_json(uint32_t tli, uint64_t segno, uint32_t seg_size)
{
	char buf[32];
	wal_segment_name(tli, segno, seg_size, buf);
	return json_string(buf);
}

static void range_json(json_t *o, const ListRange *r)
{
	json_object_set_new(o, "from_lsn", r ? lsn_json(r->from_lsn) : json_null());
	json_object_set_new(o, "from_backup", r ? json_string(r->from_backup->id) : json_null());
	json_object_set_new(o, "from_time", r ? json_string(r->from_backup->stop_time) : json_null());
}

static void range_end_json(json_t *o, const ListRange *r, uint32_t seg_size)
{
	json_object_set_new(o, "to_lsn", r ? lsn_json(r->to_lsn) : json_null());
	json_object_set_new(o, "to_wal", r ? seg_json(r->to_tli, r->to_segno, seg_size) : json_null());
}

static json_t *window_json(const ListWindow *w, uint32_t seg_size)
{
	json_t *o = json_object();
	json_t *a;

	json_object_set_new(o, "timeline", json_integer(w->tli));
	json_object_set_new(o, "history_file", json_boolean(w->has_history));
	json_object_set_new(o, "history_readable", json_boolean(!w->bad_history));
	range_json(o, w->nranges > 0 ? &w->ranges[0] : NULL);
	range_end_json(o, w->nranges > 0 ? &w->ranges[w->nranges - 1] : NULL, seg_size);
	json_object_set_new(o, "ranges", a = json_array());
	for (int i = 0; i < w->nranges; i++) {
		json_t *r = json_object();
		range_json(r, &w->ranges[i]);
		range_end_json(r, &w->ranges[i], seg_size);
		json_array_append_new(a, r);
	}
	json_object_set_new(o, "gaps", a = json_array());
	for (int i = 0; i < w->ngaps; i++) {
		json_t *g = json_object();
		json_object_set_new(g, "first_missing",
				    seg_json(w->gaps[i].tli, w->gaps[i].first_segno, seg_size));
		json_object_set_new(g, "count", json_integer((json_int_t)w->gaps[i].count));
		json_object_set_new(g, "reachable_after", json_boolean(w->gaps[i].reachable_after));
		json_array_append_new(a, g);
	}
	json_object_set_new(o, "unusable_backups", a = json_array());
	for (int i = 0; i < w->nunusable; i++) {
		json_t *u = json_object();
		json_object_set_new(u, "backup", json_string(w->unusable[i].backup->id));
		json_object_set_new(
			u, "missing_wal",
			seg_json(w->unusable[i].missing_tli, w->unusable[i].missing_segno, seg_size));
		json_array_append_new(a, u);
	}
	return o;
}

/* The manifest as written (all its fields), plus the totals the table shows. */
static json_t *backup_json(const BackupMeta *b)
{
	WsError e;
	uint64_t size, stored;
	char *text = backup_meta_serialize(b, &e);
	json_t *o = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	if (o == NULL) {
		/* It parsed on the way in, so it serializes; keep the listing whole anyway. */
		o = json_object();
		json_object_set_new(o, "id", json_string(b->id));
	}
	backup_sizes(b, &size, &stored);
	json_object_set_new(o, "total_size", json_integer((json_int_t)size));
	json_object_set_new(o, "total_stored_size", json_integer((json_int_t)stored));
	return o;
}

static json_t *epoch_json(const ListEpoch *s, const ListWindow *w, int nw)
{
	const RepoEpoch *ep = s->epoch;
	json_t *o = json_object();
	json_t *a, *wal;
	char buf[32];

	json_object_set_new(o, "id", json_string(ep->id));
	snprintf(buf, sizeof(buf), "%" PRIu64, ep->sysid);
	json_object_set_new(o, "system_identifier", json_string(buf));
	json_object_set_new(o, "pg_major", json_string(pg_major_str(ep->pg_major, buf, sizeof(buf))));
	json_object_set_new(o, "wal_segment_size", json_integer(ep->seg_size));
	json_object_set_new(o, "backups", a = json_array());
	for (int i = 0; i < s->nbackups; i++)
		json_array_append_new(a, backup_json(s->backups[i]));
	json_object_set_new(o, "incomplete_backups", a = json_array());
	for (int i = 0; i < s->ndirs; i++)
		if (!s->dirs[i].has_meta)
			json_array_append_new(a, json_string(s->dirs[i].id));

	json_object_set_new(o, "wal", wal = json_object());
	json_object_set_new(wal, "timelines", a = json_array());
	for (int i = 0; i < s->ntl; i++) {
		const ListEpochTimeline *t = &s->tls[i];
		json_t *x;
		if (t->nsegs == 0 && !t->has_history)
			continue;
		json_array_append_new(a, x = json_object());
		json_object_set_new(x, "timeline", json_integer(t->tli));
		json_object_set_new(x, "segments", json_integer((json_int_t)t->nsegs));
		json_object_set_new(x, "first",
				    t->nsegs ? seg_json(t->tli, t->segs[0], ep->seg_size) : json_null());
		json_object_set_new(x, "last",
				    t->nsegs ? seg_json(t->tli, t->segs[t->nsegs - 1], ep->seg_size)
					     : json_null());
		json_object_set_new(x, "history_file", json_boolean(t->has_history));
	}
	json_object_set_new(wal, "partial_segments", json_integer(s->n_partial));
	json_object_set_new(wal, "backup_history_files", json_integer(s->n_backup_files));
	json_object_set_new(wal, "differing_copies", json_integer(s->n_variants));
	json_object_set_new(wal, "unexpected_keys", json_integer(s->n_unexpected));

	json_object_set_new(o, "timelines", a = json_array());
	for (int i = 0; i < nw; i++)
		json_array_append_new(a, window_json(&w[i], ep->seg_size));
	return o;
}

/* ---- the command ---- */

/* The leases (repo/lock.h): what each keeps from walship prune, and until when. */
static int list_leases(Repo *repo, json_t *root, WsError *err)
{
	RepoLeaseInfo *v = NULL;
	int n = 0;
	int64_t now = (int64_t)time(NULL);
	int rc = repo_leases_read(repo, &v, &n, err);
	if (rc != 0)
		return rc;
	json_t *a = root ? json_array() : NULL;
	if (root == NULL && n > 0)
		printf("leases (walship prune keeps what each holds until it expires):\n");
	for (int i = 0; i < n; i++) {
		char who[4600], what[256];
		if (root != NULL) {
			json_array_append_new(a, repo_lease_json(&v[i], now));
			continue;
		}
		repo_lease_describe(&v[i], who, sizeof(who));
		if (repo_lease_expired(&v[i], now))
			snprintf(what, sizeof(what), "expired: it holds nothing, walship prune removes it");
		else if (v[i].epoch[0] == '\0')
			snprintf(what, sizeof(what), "every backup and all WAL");
		else
			snprintf(what, sizeof(what),
				 "backup %s of epoch %s, timeline %" PRIu32 ", WAL from %s on", v[i].backup,
				 v[i].epoch, v[i].timeline, v[i].start_wal);
		printf("  lease %s: %s: %s\n", v[i].id, who, what);
	}
	if (root != NULL)
		json_object_set_new(root, "leases", a);
	free(v);
	return 0;
}

int cmd_list(const Config *cfg, bool json, WsError *err)
{
	Repo *repo = NULL;
	Problems pr = {0, json_array()};
	json_t *root = NULL, *epochs = NULL;
	int total_backups = 0;
	int rc;

	if ((rc = repo_open(cfg, &repo, err)) != 0)
		goto done;
	const RepoMeta *meta = repo_meta(repo);

	if (json) {
		root = json_object();
		json_object_set_new(root, "repository", json_string(repo_display(repo)));
		json_object_set_new(root, "uuid", json_string(meta->uuid));
		json_object_set_new(root, "epochs", epochs = json_array());
	} else {
		printf("repository \"%s\" (%s), epochs:", repo_display(repo), meta->uuid);
		for (int i = 0; i < meta->n_epochs; i++)
			printf("%s %s", i > 0 ? "," : "", meta->epochs[i].id);
		printf("\n");
	}

	for (int i = 0; i < meta->n_epochs; i++) {
		const RepoEpoch *ep = &meta->epochs[i];
		ListEpoch s;

		rc = list_scan_epoch(repo, ep, scan_problem, &pr, &s, err);
		if (rc == 0) {
			total_backups += s.nbackups;
			if (json) {
				json_array_append_new(epochs, epoch_json(&s, s.w, s.nw));
			} else {
				char v[16], sz[32];
				printf("epoch %s: PostgreSQL %s, system identifier %" PRIu64
				       ", %s WAL segments\n",
				       ep->id, pg_major_str(ep->pg_major, v, sizeof(v)), ep->sysid,
				       cluster_size_str(ep->seg_size, sz, sizeof(sz)));
				print_backups(&s);
				print_wal(&s);
				if (s.nbackups == 0) {
					printf("recoverable (epoch %s): nothing: no complete backup in this "
					       "epoch\n",
					       ep->id);
				} else {
					printf("recoverable (epoch %s):\n", ep->id);
					for (int k = 0; k < s.nw; k++)
						list_print_window(stdout, &s.w[k], ep->seg_size);
				}
			}
		} else {
			ws_error_prefix(err, "could not list epoch \"%s\"", ep->id);
		}
		list_epoch_free(&s);
		if (rc != 0)
			goto done;
	}

	if ((rc = list_leases(repo, root, err)) != 0)
		goto done;
	if (json) {
		json_object_set_new(root, "complete_backups", json_integer(total_backups));
		json_object_set_new(root, "problems", json_incref(pr.list));
		char *text = json_file_dump(root, "the listing");
		fputs(text, stdout);
		free(text);
	} else if (total_backups == 0) {
		printf("no complete backups: nothing can be rebuilt yet\n");
	}
	if (pr.n > 0) {
		rc = ws_error(err, WS_CORRUPT, "%d problem%s found in repository \"%s\"", pr.n,
			      pr.n == 1 ? "" : "s", repo_display(repo));
		ws_error_detail(err, "Everything else was listed.");
	}
done:
	fflush(stdout);
	json_decref(root);
	json_decref(pr.list);
	repo_free(repo);
	return rc;
}
