/*
 * catalog.c - an epoch's backups, WAL and windows (see catalog.h).  The
 * windows follow the segments recovery would actually read
 * (history_segments), so that neither walship list nor walship rebuild ever
 * promises a point that a rebuild from this repository could not reach.
 */
#include "repo/catalog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/cluster.h"
#include "pg/lsn.h"
#include "pg/walname.h"
#include "util/mem.h"

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

static const CatalogTimeline *find_tl(const CatalogTimeline *const *sorted, int n, uint32_t tli)
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
static Seg *path_segments(const TimelinePath *p, const CatalogTimeline *const *sorted, int ntl,
			  uint32_t seg_size, size_t *nout)
{
	Seg *segs = NULL;
	size_t n = 0, cap = 0;

	for (int j = 0; j < p->n; j++) {
		const CatalogTimeline *lt = find_tl(sorted, ntl, p->e[j].tli);
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
	CatalogRange r;
} BackupWindow;

static int bw_cmp(const void *a, const void *b)
{
	const BackupWindow *x = a, *y = b;
	if (x->r.from_lsn != y->r.from_lsn)
		return x->r.from_lsn < y->r.from_lsn ? -1 : 1;
	return x->order - y->order;
}

static void add_unusable(CatalogWindow *w, const BackupMeta *b, uint32_t tli, uint64_t segno)
{
	w->unusable = xrealloc(w->unusable, (size_t)(w->nunusable + 1) * sizeof(*w->unusable));
	CatalogUnusable *u = &w->unusable[w->nunusable++];
	u->backup = b;
	u->missing_tli = tli;
	u->missing_segno = segno;
}

static void window_of(CatalogWindow *w, const CatalogTimeline *lt, const BackupMeta *const *backups, int nb,
		      const CatalogTimeline *const *sorted, int ntl, uint32_t seg_size)
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
		x->r.to_time = 0;
	}

	/* Windows that touch or overlap are one range, starting at the earliest consistent point. */
	if (nbw > 1)
		qsort(bw, (size_t)nbw, sizeof(*bw), bw_cmp);
	w->ranges = xmalloc((size_t)(nbw > 0 ? nbw : 1) * sizeof(*w->ranges));
	for (int i = 0; i < nbw; i++) {
		CatalogRange *cur = w->nranges > 0 ? &w->ranges[w->nranges - 1] : NULL;
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
			CatalogGap *g = &w->gaps[w->ngaps++];
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
	const CatalogTimeline *x = *(const CatalogTimeline *const *)a,
			      *y = *(const CatalogTimeline *const *)b;
	return x->tli < y->tli ? -1 : x->tli > y->tli;
}

int catalog_windows(const BackupMeta *const *backups, int nb, const CatalogTimeline *tls, int ntl,
		    uint32_t seg_size, CatalogWindow **out, int *nout, WsError *err)
{
	const CatalogTimeline **sorted = NULL;
	CatalogWindow *w = NULL;

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

void catalog_windows_free(CatalogWindow *w, int n)
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

/* ---- reading an epoch ---- */

static CatalogEpochTimeline *tl_acc(CatalogEpoch *s, uint32_t tli)
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
	CatalogEpochTimeline *t = &s->tls[s->ntl];
	memset(t, 0, sizeof(*t));
	t->tli = tli;
	s->last = s->ntl++;
	return t;
}

static void unexpected(CatalogEpoch *s, const char *key)
{
	if (s->n_unexpected++ == 0)
		snprintf(s->unexpected, sizeof(s->unexpected), "%s", key);
}

static int wal_key(void *ctx, const char *key, const StoreStat *st, WsError *err)
{
	CatalogEpoch *s = ctx;
	const char *rel = key + s->prefix_len;
	const char *slash = strchr(rel, '/');
	WalName n;

	(void)err;
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
		CatalogEpochTimeline *t = tl_acc(s, n.tli);
		if (t->nsegs == t->cap) {
			t->cap = t->cap ? t->cap * 2 : 256;
			t->segs = xrealloc(t->segs, t->cap * sizeof(*t->segs));
			t->mtimes = xrealloc(t->mtimes, t->cap * sizeof(*t->mtimes));
		}
		t->mtimes[t->nsegs] = st->mtime;
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
	CatalogEpoch *s = ctx;
	const char *rel = key + s->prefix_len;
	const char *slash = strchr(rel, '/');
	char id[BACKUP_ID_MAX];
	CatalogBackupDir *d = NULL;

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
	return id_cmp(((const CatalogBackupDir *)a)->id, ((const CatalogBackupDir *)b)->id);
}

static int u64_find(const void *key, const void *elem)
{
	uint64_t x = *(const uint64_t *)key, y = *(const uint64_t *)elem;
	return x < y ? -1 : x > y;
}

typedef struct SegStamp {
	uint64_t segno;
	int64_t mtime;
} SegStamp;

static int stamp_cmp(const void *a, const void *b)
{
	const SegStamp *x = a, *y = b;
	return x->segno < y->segno ? -1 : x->segno > y->segno;
}

/* t's segments ascending and unique, each with its time; a store lists them in that order already. */
static void sort_segs(CatalogEpochTimeline *t)
{
	bool ordered = true;
	for (size_t j = 1; j < t->nsegs && ordered; j++)
		ordered = t->segs[j] > t->segs[j - 1];
	if (ordered)
		return;
	SegStamp *v = xmalloc(t->nsegs * sizeof(*v));
	for (size_t j = 0; j < t->nsegs; j++)
		v[j] = (SegStamp){t->segs[j], t->mtimes[j]};
	qsort(v, t->nsegs, sizeof(*v), stamp_cmp);
	size_t k = 0;
	for (size_t j = 0; j < t->nsegs; j++) {
		if (k > 0 && v[j].segno == t->segs[k - 1]) {
			if (v[j].mtime > t->mtimes[k - 1])
				t->mtimes[k - 1] = v[j].mtime;
			continue;
		}
		t->segs[k] = v[j].segno;
		t->mtimes[k++] = v[j].mtime;
	}
	t->nsegs = k;
	free(v);
}

/* Each range's to_time: the stored time of its last segment. */
static void stamp_ranges(CatalogEpoch *s)
{
	for (int i = 0; i < s->nw; i++) {
		for (int r = 0; r < s->w[i].nranges; r++) {
			CatalogRange *x = &s->w[i].ranges[r];
			for (int k = 0; k < s->ntl; k++) {
				const CatalogEpochTimeline *t = &s->tls[k];
				if (t->tli != x->to_tli)
					continue;
				const uint64_t *hit =
					bsearch(&x->to_segno, t->segs, t->nsegs, sizeof(*t->segs), u64_find);
				if (hit != NULL)
					x->to_time = t->mtimes[hit - t->segs];
			}
		}
	}
}

static int tlacc_cmp(const void *a, const void *b)
{
	const CatalogEpochTimeline *x = a, *y = b;
	return x->tli < y->tli ? -1 : x->tli > y->tli;
}

void catalog_epoch_free(CatalogEpoch *s)
{
	if (s == NULL)
		return;
	catalog_windows_free(s->w, s->nw);
	free(s->lts);
	for (int i = 0; i < s->ntl; i++) {
		free(s->tls[i].segs);
		free(s->tls[i].mtimes);
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
static void read_backup(Repo *repo, CatalogEpoch *s, const char *id, CatalogProblemFn problem, void *ctx)
{
	const RepoEpoch *ep = s->epoch;
	char key[STORE_KEY_MAX] = "";
	MemWriter mb = {.max = BACKUP_META_MAX, .what = BACKUP_META_NAME};
	CatalogProblem p = {.epoch = ep->id, .backup_id = id, .key = key};
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

static void read_history(Repo *repo, CatalogEpoch *s, CatalogEpochTimeline *t, CatalogProblemFn problem,
			 void *ctx)
{
	char key[STORE_KEY_MAX] = "";
	char what[64];
	MemWriter mb = {.max = HISTORY_FILE_MAX, .what = what};
	CatalogProblem p = {.epoch = s->epoch->id, .tli = t->tli, .key = key};
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

int catalog_scan_epoch(Repo *repo, const RepoEpoch *ep, CatalogProblemFn problem, void *ctx, CatalogEpoch *s,
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
		CatalogEpochTimeline *t = &s->tls[i];
		sort_segs(t);
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
	rc = catalog_windows((const BackupMeta *const *)s->backups, s->nbackups, s->lts, s->ntl, ep->seg_size,
			     &s->w, &s->nw, err);
	if (rc == 0)
		stamp_ranges(s);
	return rc;
}
