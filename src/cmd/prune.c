/*
 * prune.c - walship prune: apply the retention rules (repo/retention.h) to a
 * repository, under its lock.
 *
 * Everything is read and planned before the first object is removed, so a
 * listing that fails or a manifest that cannot be read removes nothing.  The
 * removal order keeps the repository consistent at every instant (a kill at
 * any moment leaves a repository whose listed backups are whole): a backup's
 * manifest.json goes first, so it is no longer offered, then its other
 * objects; WAL goes last, once no removed backup is listed any more.
 *
 * Leases (repo/lock.h) are read under the lock, after the epochs: an active
 * one keeps its backup as if retention kept it (and so the WAL recovery from
 * it can follow), or everything while its rebuild has not chosen yet; an
 * expired one holds nothing and is removed.  Each is reported with what it
 * kept that retention alone would have removed.
 */
#include "cmd/prune.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "pg/lsn.h"
#include "pg/walname.h"
#include "repo/catalog.h"
#include "repo/jsonfile.h"
#include "repo/lock.h"
#include "repo/repo.h"
#include "repo/retention.h"
#include "util/log.h"
#include "util/mem.h"

/* An object to remove. */
typedef struct Victim {
	char *key;
	uint64_t size;
} Victim;

typedef struct Victims {
	Victim *v;
	size_t n, cap;
	uint64_t bytes;
} Victims;

/* A backup directory to remove: complete (manifest.json first) or interrupted. */
typedef struct DirPlan {
	char id[BACKUP_ID_MAX];
	const char *epoch;
	bool complete;
	Victims objs; /* manifest.json, if any, first */
} DirPlan;

typedef struct EpochPlan {
	CatalogEpoch s;
	RetentionTimeline *rt;      /* what is kept: retention and leases */
	RetentionTimeline *rt_base; /* what retention alone keeps */
	int nrt;
	int nkept;
	bool in_progress; /* a backup without manifest.json that may still be running */
	Victims wal;
} EpochPlan;

/* What one lease holds back. */
typedef struct LeaseHold {
	const RepoLeaseInfo *l;
	bool expired;
	int ep;                /* its epoch's index in Plan.ep; -1: every epoch */
	bool everything;       /* every backup and all WAL of ep (or of every epoch) */
	int backup;            /* its backup's index in the epoch's backups, or -1 */
	bool saved_backup;     /* retention alone would have removed that backup */
	RetentionTimeline *rt; /* the WAL its backup needs, per timeline of ep */
	size_t wal_held;       /* WAL files it keeps that retention alone would remove */
	uint64_t bytes_held;
	bool removed; /* expired, and removed by this run */
} LeaseHold;

typedef struct Plan {
	EpochPlan *ep;
	int nep;
	DirPlan *dirs;
	int ndirs;
	int manifest_problems;
	RepoLeaseInfo *leases;
	LeaseHold *holds;
	int nleases;
} Plan;

static volatile sig_atomic_t stop_requested;

static void on_stop(int signo)
{
	(void)signo;
	stop_requested = 1;
}

static void victims_add(Victims *vs, const char *key, uint64_t size)
{
	if (vs->n == vs->cap) {
		vs->cap = vs->cap ? vs->cap * 2 : 64;
		vs->v = xrealloc(vs->v, vs->cap * sizeof(*vs->v));
	}
	vs->v[vs->n].key = xstrdup(key);
	vs->v[vs->n].size = size;
	vs->n++;
	vs->bytes += size;
}

static void victims_free(Victims *vs)
{
	for (size_t i = 0; i < vs->n; i++)
		free(vs->v[i].key);
	free(vs->v);
	memset(vs, 0, sizeof(*vs));
}

static void plan_free(Plan *p)
{
	for (int i = 0; i < p->nep; i++) {
		catalog_epoch_free(&p->ep[i].s);
		free(p->ep[i].rt);
		free(p->ep[i].rt_base);
		victims_free(&p->ep[i].wal);
	}
	free(p->ep);
	for (int i = 0; i < p->nleases; i++)
		free(p->holds[i].rt);
	free(p->holds);
	free(p->leases);
	for (int i = 0; i < p->ndirs; i++)
		victims_free(&p->dirs[i].objs);
	free(p->dirs);
}

/* ---- reading ---- */

static void scan_problem(void *ctx, const CatalogProblem *lp, WsError *e)
{
	Plan *p = ctx;
	if (lp->backup_id != NULL) {
		/* Its WAL and its age are unknown: nothing can be decided safely. */
		ws_error_prefix(e, "backup \"%s\" of epoch \"%s\" cannot be read", lp->backup_id, lp->epoch);
		log_report(e);
		p->manifest_problems++;
	} else {
		ws_error_prefix(e, "epoch \"%s\", timeline %" PRIu32, lp->epoch, lp->tli);
		log_report_warning(e);
		log_warning("all WAL of timeline %" PRIu32 " in epoch \"%s\" is kept", lp->tli, lp->epoch);
	}
}

typedef struct DirScan {
	Victims *vs;
	const char *manifest_key;
	int64_t newest;
} DirScan;

static int dir_key(void *ctx, const char *key, const StoreStat *st, WsError *err)
{
	DirScan *d = ctx;
	(void)err;
	if (strcmp(key, d->manifest_key) != 0)
		victims_add(d->vs, key, st->size);
	if (st->mtime > d->newest)
		d->newest = st->mtime;
	return 0;
}

/* The objects of one backup directory, manifest.json first; *newest the latest mtime. */
static int scan_dir(Repo *repo, const char *epoch, const char *id, bool complete, Victims *vs,
		    int64_t *newest, WsError *err)
{
	char dir[STORE_KEY_MAX], mkey[STORE_KEY_MAX];
	DirScan d = {vs, mkey, 0};
	int rc;

	if (backup_key_dir(epoch, id, dir, sizeof(dir)) != 0 ||
	    backup_key(epoch, id, BACKUP_META_NAME, mkey, sizeof(mkey)) != 0)
		return ws_error(err, WS_FATAL, "repository key for backup \"%s\" is too long", id);
	if (complete) {
		StoreStat st;
		if ((rc = store_stat(repo_store(repo), mkey, &st, err)) != 0)
			return rc;
		victims_add(vs, mkey, st.size);
	}
	if ((rc = store_list(repo_store(repo), dir, dir_key, &d, err)) != 0)
		return rc;
	*newest = d.newest;
	return 0;
}

typedef struct WalScan {
	EpochPlan *e;
	int ep; /* e's index */
	Plan *p;
	size_t prefix_len;
	int64_t now;
	int64_t min_age;
} WalScan;

/* A WAL file kept only because of leases: counted for each lease that covers it. */
static void count_held(WalScan *w, uint32_t tli, uint64_t segno, uint64_t size)
{
	for (int i = 0; i < w->p->nleases; i++) {
		LeaseHold *h = &w->p->holds[i];
		if (h->expired || (h->ep >= 0 && h->ep != w->ep))
			continue;
		if (h->everything || retention_wal_kept(h->rt, w->e->nrt, tli, segno)) {
			h->wal_held++;
			h->bytes_held += size;
		}
	}
}

static int wal_key(void *ctx, const char *key, const StoreStat *st, WsError *err)
{
	WalScan *w = ctx;
	const char *rel = key + w->prefix_len;
	const char *slash = strchr(rel, '/');
	char name[WAL_NAME_MAX];
	WalName n;

	(void)err;
	/* History files are kept forever; keys walship did not write are not ours to remove. */
	if (slash == NULL || slash - rel != 16 || strncmp(rel, slash + 1, 16) != 0)
		return 0;
	size_t len = strcspn(slash + 1, "@"); /* a differing copy kept beside the first goes with it */
	if (len >= sizeof(name))
		return 0;
	memcpy(name, slash + 1, len);
	name[len] = '\0';
	if (walname_parse(name, &n, NULL) != 0 || n.kind == WAL_HISTORY ||
	    walname_check_segsize(&n, w->e->s.epoch->seg_size, NULL) != 0)
		return 0;
	if (w->min_age > 0 && w->now - st->mtime < w->min_age)
		return 0;
	uint64_t segno = walname_segno(&n, w->e->s.epoch->seg_size);
	if (retention_wal_kept(w->e->rt, w->e->nrt, n.tli, segno)) {
		if (!retention_wal_kept(w->e->rt_base, w->e->nrt, n.tli, segno))
			count_held(w, n.tli, segno, st->size);
		return 0;
	}
	victims_add(&w->e->wal, key, st->size);
	return 0;
}

/* Read every epoch; *all gets each complete backup, epoch by epoch. */
static int scan_epochs(Repo *repo, Plan *p, const BackupMeta ***all, int *nall, WsError *err)
{
	const RepoMeta *meta = repo_meta(repo);
	int rc;

	p->ep = xcalloc((size_t)meta->n_epochs, sizeof(*p->ep));
	for (int i = 0; i < meta->n_epochs; i++) {
		EpochPlan *e = &p->ep[i];
		p->nep++;
		if ((rc = catalog_scan_epoch(repo, &meta->epochs[i], scan_problem, p, &e->s, err)) != 0) {
			ws_error_prefix(err, "could not list epoch \"%s\"", meta->epochs[i].id);
			ws_error_hint(err, "Nothing was removed.");
			return rc;
		}
		*all = xrealloc(*all, (size_t)(*nall + e->s.nbackups + 1) * sizeof(**all));
		for (int k = 0; k < e->s.nbackups; k++)
			(*all)[(*nall)++] = e->s.backups[k];
	}
	if (p->manifest_problems > 0) {
		rc = ws_error(err, WS_CORRUPT, "%d backup manifest%s of repository \"%s\" could not be read",
			      p->manifest_problems, p->manifest_problems == 1 ? "" : "s", repo_display(repo));
		ws_error_detail(err,
				"Without them the WAL those backups need is unknown.  Nothing was removed.");
		ws_error_hint(err, "Run walship list to see them; repair or remove those backup directories "
				   "by hand, then prune again.");
		return rc;
	}
	if (*nall == 0) {
		rc = ws_error(err, WS_FATAL, "repository \"%s\" holds no complete backup",
			      repo_display(repo));
		ws_error_detail(err,
				"Nothing was removed: without a backup the archived WAL is all there is.");
		ws_error_hint(err, "Take a backup with walship backup first.");
		return rc;
	}
	return 0;
}

/* The leases, and which epoch and backup each holds (read under the lock, after the epochs). */
static int read_leases(Repo *repo, int64_t now, Plan *p, WsError *err)
{
	int rc = repo_leases_read(repo, &p->leases, &p->nleases, err);
	if (rc != 0) {
		ws_error_hint(err, "Nothing was removed.");
		return rc;
	}
	p->holds = xcalloc((size_t)(p->nleases > 0 ? p->nleases : 1), sizeof(*p->holds));
	for (int i = 0; i < p->nleases; i++) {
		LeaseHold *h = &p->holds[i];
		const RepoLeaseInfo *l = &p->leases[i];
		h->l = l;
		h->expired = repo_lease_expired(l, now);
		h->ep = -1;
		h->backup = -1;
		h->everything = true;
		if (!l->parsed && !h->expired)
			log_warning(
				"\"%s\" in repository \"%s\" cannot be read as a lease: every backup and all "
				"WAL are kept until %" PRId64 " seconds after it was written",
				l->key, repo_display(repo), (int64_t)REPO_LEASE_MAX);
		if (h->expired || l->epoch[0] == '\0')
			continue;
		for (int k = 0; k < p->nep; k++)
			if (strcmp(p->ep[k].s.epoch->id, l->epoch) == 0)
				h->ep = k;
		if (h->ep < 0)
			continue; /* an epoch this repository does not have: held as everything */
		const CatalogEpoch *s = &p->ep[h->ep].s;
		for (int k = 0; k < s->nbackups; k++)
			if (strcmp(s->backups[k]->id, l->backup) == 0)
				h->backup = k;
		h->everything = h->backup < 0; /* its backup is gone: all WAL of the epoch is kept */
	}
	return 0;
}

/* Keep what active leases hold: keep[] is indexed like scan_epochs' all, keep_base retention's choice. */
static void apply_lease_backups(Plan *p, bool *keep, const bool *keep_base)
{
	for (int i = 0; i < p->nleases; i++) {
		LeaseHold *h = &p->holds[i];
		if (h->expired)
			continue;
		for (int k = 0, at = 0; k < p->nep; at += p->ep[k].s.nbackups, k++) {
			if (h->ep >= 0 && h->ep != k)
				continue;
			for (int b = 0; b < p->ep[k].s.nbackups; b++) {
				if (h->everything || b == h->backup) {
					keep[at + b] = true;
					if (b == h->backup)
						h->saved_backup = !keep_base[at + b];
				}
			}
		}
	}
}

static RetentionTimeline *timelines_of(const EpochPlan *e, const BackupMeta *const *kept, int nkept)
{
	RetentionTimeline *rt = xcalloc((size_t)(e->nrt > 0 ? e->nrt : 1), sizeof(*rt));
	for (int k = 0; k < e->nrt; k++) {
		rt[k].tli = e->s.tls[k].tli;
		rt[k].path = e->s.tls[k].path;
		rt[k].has_history = e->s.tls[k].has_history;
	}
	retention_wal(rt, e->nrt, kept, nkept, e->s.epoch->seg_size);
	return rt;
}

/* Backups without manifest.json: running (kept, and so is the epoch's WAL) or interrupted (removed). */
static int plan_interrupted(Repo *repo, Plan *p, EpochPlan *e, int64_t now, WsError *err)
{
	for (int k = 0; k < e->s.ndirs; k++) {
		DirPlan d;
		int64_t newest = 0;
		int rc;
		if (e->s.dirs[k].has_meta)
			continue;
		memset(&d, 0, sizeof(d));
		snprintf(d.id, sizeof(d.id), "%s", e->s.dirs[k].id);
		d.epoch = e->s.epoch->id;
		if ((rc = scan_dir(repo, d.epoch, d.id, false, &d.objs, &newest, err)) != 0) {
			victims_free(&d.objs);
			return rc;
		}
		if (now - newest <= repo_lock_expiry()) {
			log_warning("backup \"%s\" of epoch \"%s\" has no %s and was written to %" PRId64
				    " seconds ago: taken as in progress, it and the epoch's WAL are kept",
				    d.id, d.epoch, BACKUP_META_NAME, now - newest);
			e->in_progress = true;
			victims_free(&d.objs);
			continue;
		}
		p->dirs = xrealloc(p->dirs, (size_t)(p->ndirs + 1) * sizeof(*p->dirs));
		p->dirs[p->ndirs++] = d;
	}
	return 0;
}

/* One epoch: the backups to remove, and the WAL kept (with and without leases). */
static int plan_epoch(Repo *repo, Plan *p, int i, const bool *keep, const bool *keep_base, int64_t now,
		      WsError *err)
{
	EpochPlan *e = &p->ep[i];
	const BackupMeta **kept = xmalloc((size_t)(e->s.nbackups + 1) * sizeof(*kept));
	const BackupMeta **kept_base = xmalloc((size_t)(e->s.nbackups + 1) * sizeof(*kept_base));
	int nbase = 0, rc;

	e->nkept = 0;
	for (int k = 0; k < e->s.nbackups; k++) {
		if (keep_base[k])
			kept_base[nbase++] = e->s.backups[k];
		if (keep[k]) {
			kept[e->nkept++] = e->s.backups[k];
			continue;
		}
		p->dirs = xrealloc(p->dirs, (size_t)(p->ndirs + 1) * sizeof(*p->dirs));
		DirPlan *d = &p->dirs[p->ndirs++];
		memset(d, 0, sizeof(*d));
		snprintf(d->id, sizeof(d->id), "%s", e->s.backups[k]->id);
		d->epoch = e->s.epoch->id;
		d->complete = true;
	}
	if ((rc = plan_interrupted(repo, p, e, now, err)) != 0)
		goto done;

	e->nrt = e->s.ntl;
	e->rt = timelines_of(e, kept, e->nkept);
	e->rt_base = timelines_of(e, kept_base, nbase);
	for (int l = 0; l < p->nleases; l++) {
		LeaseHold *h = &p->holds[l];
		if (h->expired || (h->ep >= 0 && h->ep != i))
			continue;
		if (!h->everything) {
			h->rt = timelines_of(e, (const BackupMeta *const *)&e->s.backups[h->backup], 1);
			continue;
		}
		for (int k = 0; k < e->nrt; k++)
			e->rt[k].keep_from = 0;
	}
	/* The newest epoch's WAL may be what the next backup starts from; a running backup needs its WAL. */
	if ((nbase == 0 && i == p->nep - 1) || e->in_progress) {
		for (int k = 0; k < e->nrt; k++)
			e->rt[k].keep_from = e->rt_base[k].keep_from = 0;
	}
done:
	free(kept);
	free(kept_base);
	return rc;
}

static int make_plan(Repo *repo, const PruneOptions *opt, int64_t now, Plan *p, WsError *err)
{
	const BackupMeta **all = NULL;
	bool *keep = NULL, *keep_base = NULL;
	int nall = 0;
	int rc;

	if ((rc = scan_epochs(repo, p, &all, &nall, err)) != 0 || (rc = read_leases(repo, now, p, err)) != 0)
		goto done;
	keep = xcalloc((size_t)nall, sizeof(*keep));
	keep_base = xcalloc((size_t)nall, sizeof(*keep_base));
	if ((rc = retention_select(all, nall, opt->keep_backups, opt->keep_days, now, keep_base, err)) != 0)
		goto done;
	memcpy(keep, keep_base, (size_t)nall * sizeof(*keep));
	apply_lease_backups(p, keep, keep_base);
	for (int i = 0, at = 0; i < p->nep; at += p->ep[i].s.nbackups, i++)
		if ((rc = plan_epoch(repo, p, i, keep + at, keep_base + at, now, err)) != 0)
			goto done;

	/* The objects of each complete backup to remove, and the WAL. */
	for (int i = 0; i < p->ndirs; i++) {
		DirPlan *d = &p->dirs[i];
		int64_t newest;
		if (d->complete && (rc = scan_dir(repo, d->epoch, d->id, true, &d->objs, &newest, err)) != 0)
			goto done;
	}
	for (int i = 0; i < p->nep; i++) {
		EpochPlan *e = &p->ep[i];
		char prefix[STORE_KEY_MAX];
		snprintf(prefix, sizeof(prefix), "%s/wal/", e->s.epoch->id);
		WalScan w = {e, i, p, strlen(prefix), now, opt->min_wal_age};
		if ((rc = store_list(repo_store(repo), prefix, wal_key, &w, err)) != 0) {
			ws_error_prefix(err, "could not list the WAL of epoch \"%s\"", e->s.epoch->id);
			ws_error_hint(err, "Nothing was removed.");
			goto done;
		}
	}
done:
	free(keep);
	free(keep_base);
	free(all);
	return rc;
}

/* ---- removing ---- */

typedef struct Progress {
	int backups;
	size_t wal;
	uint64_t bytes;
} Progress;

static int step_allowed(RepoLock *lock, WsError *err)
{
	if (stop_requested)
		return ws_error(err, WS_INTERRUPTED, "interrupted");
	return lock != NULL ? repo_lock_check(lock, err) : 0;
}

/*
 * Test build only: WALSHIP_TEST_PRUNE_STEP_DELAY=MICROSECONDS before each removal,
 * so that kill tests land inside the removals rather than in the start-up.
 */
static void test_step_delay(void)
{
#ifdef WALSHIP_TESTING
	static long us = -1;
	if (us < 0) {
		const char *s = getenv("WALSHIP_TEST_PRUNE_STEP_DELAY");
		us = s != NULL ? strtol(s, NULL, 10) : 0;
		if (us < 0 || us > 1000000)
			us = 0;
	}
	if (us > 0) {
		struct timespec ts = {0, us * 1000};
		nanosleep(&ts, NULL);
	}
#endif
}

static int remove_key(Repo *repo, const Victim *v, Progress *pr, WsError *err)
{
	test_step_delay();
	int rc = store_remove(repo_store(repo), v->key, err);
	if (rc == WS_NOT_FOUND) {
		ws_error_clear(err);
		return 0; /* gone already (a run killed before): the goal holds */
	}
	if (rc == 0) {
		log_debug("removed \"%s\"", v->key);
		pr->bytes += v->size;
	}
	return rc;
}

static int execute(Repo *repo, RepoLock *lock, Plan *p, Progress *pr, WsError *err)
{
	int rc;
	for (int i = 0; i < p->ndirs; i++) {
		DirPlan *d = &p->dirs[i];
		for (size_t k = 0; k < d->objs.n; k++) {
			if ((rc = step_allowed(lock, err)) != 0 ||
			    (rc = remove_key(repo, &d->objs.v[k], pr, err)) != 0)
				return rc;
		}
		if (d->complete)
			pr->backups++;
		log_info("removed %sbackup \"%s\" of epoch \"%s\"", d->complete ? "" : "interrupted ", d->id,
			 d->epoch);
	}
	for (int i = 0; i < p->nep; i++) {
		Victims *w = &p->ep[i].wal;
		for (size_t k = 0; k < w->n; k++) {
			if ((rc = step_allowed(lock, err)) != 0 ||
			    (rc = remove_key(repo, &w->v[k], pr, err)) != 0)
				return rc;
			pr->wal++;
		}
	}
	for (int i = 0; i < p->nleases; i++) {
		LeaseHold *h = &p->holds[i];
		if (!h->expired)
			continue;
		if ((rc = step_allowed(lock, err)) != 0 || (rc = repo_lease_remove(repo, h->l, err)) < 0)
			return rc;
		h->removed = rc == 0;
	}
	return 0;
}

/* ---- reporting ---- */

/* What a lease held back, as the end of its report line. */
static void hold_text(const Plan *p, const LeaseHold *h, char *buf, size_t size)
{
	char sz[32], wal[96];
	fmt_size(h->bytes_held, sz, sizeof(sz));
	snprintf(wal, sizeof(wal), "%zu WAL file%s (%s) that retention would remove", h->wal_held,
		 h->wal_held == 1 ? "" : "s", sz);
	if (h->everything) {
		snprintf(buf, size, "%s: kept every backup and all WAL%s%s%s, %s",
			 !h->l->parsed         ? "it cannot be read as a lease"
			 : h->l->epoch[0] == 0 ? "its rebuild had not chosen a backup yet"
					       : "its backup is not in the repository",
			 h->ep >= 0 ? " of epoch \"" : "", h->ep >= 0 ? p->ep[h->ep].s.epoch->id : "",
			 h->ep >= 0 ? "\"" : "", wal);
		return;
	}
	snprintf(buf, size,
		 "kept backup \"%s\" of epoch \"%s\"%s and the WAL from %s on along timeline %" PRIu32
		 " (%s)",
		 h->l->backup, h->l->epoch, h->saved_backup ? ", which retention would remove," : "",
		 h->l->start_wal[0] ? h->l->start_wal : "its start", h->l->timeline, wal);
}

static void print_leases(const Plan *p, const PruneOptions *opt)
{
	for (int i = 0; i < p->nleases; i++) {
		const LeaseHold *h = &p->holds[i];
		char who[4600], what[512];
		repo_lease_describe(h->l, who, sizeof(who));
		if (h->expired) {
			printf("%s expired lease %s (%s): it held nothing back\n",
			       opt->dry_run ? "would remove"
			       : h->removed ? "removed"
					    : "ignored",
			       h->l->id, who);
			continue;
		}
		hold_text(p, h, what, sizeof(what));
		printf("lease %s (%s): %s\n", h->l->id, who, what);
	}
}

static json_t *leases_json(const Plan *p, int64_t now)
{
	json_t *a = json_array();
	for (int i = 0; i < p->nleases; i++) {
		const LeaseHold *h = &p->holds[i];
		json_t *o = repo_lease_json(h->l, now);
		json_object_set_new(o, "removed", json_boolean(h->removed));
		json_object_set_new(o, "holds_everything", json_boolean(!h->expired && h->everything));
		json_object_set_new(o, "backup_kept_by_lease", json_boolean(h->saved_backup));
		json_object_set_new(o, "wal_kept_by_lease", json_integer((json_int_t)h->wal_held));
		json_object_set_new(o, "bytes_kept_by_lease", json_integer((json_int_t)h->bytes_held));
		json_array_append_new(a, o);
	}
	return a;
}

static void print_json(const Plan *p, const PruneOptions *opt, uint64_t bytes, size_t wal)
{
	json_t *o = json_object(), *rm = json_array(), *inc = json_array(), *kept = json_array();
	for (int i = 0; i < p->ndirs; i++)
		json_array_append_new(p->dirs[i].complete ? rm : inc, json_string(p->dirs[i].id));
	for (int i = 0; i < p->nep; i++) {
		const CatalogEpoch *s = &p->ep[i].s;
		for (int k = 0; k < s->nbackups; k++) {
			bool removed = false;
			for (int j = 0; j < p->ndirs; j++)
				removed = removed || (p->dirs[j].complete &&
						      strcmp(p->dirs[j].id, s->backups[k]->id) == 0 &&
						      strcmp(p->dirs[j].epoch, s->epoch->id) == 0);
			if (!removed)
				json_array_append_new(kept, json_string(s->backups[k]->id));
		}
	}
	json_object_set_new(o, "dry_run", json_boolean(opt->dry_run));
	json_object_set_new(o, "backups_removed", rm);
	json_object_set_new(o, "incomplete_backups_removed", inc);
	json_object_set_new(o, "wal_removed", json_integer((json_int_t)wal));
	json_object_set_new(o, "bytes_freed", json_integer((json_int_t)bytes));
	json_object_set_new(o, "kept_backups", kept);
	json_object_set_new(o, "leases", leases_json(p, (int64_t)time(NULL)));
	char *text = json_file_dump(o, "the result");
	fputs(text, stdout);
	free(text);
	json_decref(o);
}

/* --dry-run -v: every object the prune would remove, one a line, in the order it removes them. */
static void print_victims(const Plan *p)
{
	char size[32];
	for (int i = 0; i < p->ndirs; i++)
		for (size_t k = 0; k < p->dirs[i].objs.n; k++)
			printf("would remove %s (%s)\n", p->dirs[i].objs.v[k].key,
			       fmt_size(p->dirs[i].objs.v[k].size, size, sizeof(size)));
	for (int i = 0; i < p->nep; i++)
		for (size_t k = 0; k < p->ep[i].wal.n; k++)
			printf("would remove %s (%s)\n", p->ep[i].wal.v[k].key,
			       fmt_size(p->ep[i].wal.v[k].size, size, sizeof(size)));
	for (int i = 0; i < p->nleases; i++)
		if (p->holds[i].expired)
			printf("would remove %s (expired lease)\n", p->holds[i].l->key);
}

static void print_text(const Plan *p, const PruneOptions *opt, uint64_t bytes, size_t wal)
{
	char size[32];
	int nb = 0, ni = 0;
	for (int i = 0; i < p->ndirs; i++) {
		if (p->dirs[i].complete)
			nb++;
		else
			ni++;
	}
	if (opt->dry_run && log_get_level() >= LOG_LEVEL_INFO)
		print_victims(p);
	printf("%s %d backup%s", opt->dry_run ? "would remove" : "removed", nb, nb == 1 ? "" : "s");
	if (nb > 0) {
		const char *sep = " (";
		for (int i = 0; i < p->ndirs; i++) {
			if (!p->dirs[i].complete)
				continue;
			printf("%s%s", sep, p->dirs[i].id);
			sep = ", ";
		}
		printf(")");
	}
	if (ni > 0)
		printf(", %d interrupted backup%s", ni, ni == 1 ? "" : "s");
	printf(", %zu WAL file%s, %s %s\n", wal, wal == 1 ? "" : "s", opt->dry_run ? "freeing" : "freed",
	       fmt_size(bytes, size, sizeof(size)));
	int kept = 0;
	for (int i = 0; i < p->nep; i++)
		kept += p->ep[i].nkept;
	printf("kept %d backup%s\n", kept, kept == 1 ? "" : "s");
	print_leases(p, opt);
}

int cmd_prune(const Config *cfg, const PruneOptions *opt, WsError *err)
{
	Repo *repo = NULL;
	RepoLock *lock = NULL;
	Plan plan;
	Progress pr = {0};
	struct sigaction sa, old_term, old_int;
	bool handlers = false;
	int rc;

	memset(&plan, 0, sizeof(plan));
	if (opt->keep_backups < 1)
		return ws_error(err, WS_USAGE, "--keep-backups must be at least 1");
	if ((rc = repo_open(cfg, &repo, err)) != 0)
		goto done;
	/* A dry run changes nothing, so it runs beside a backup or a prune. */
	if (!opt->dry_run && (rc = repo_lock_acquire(repo, cfg, "prune", &lock, err)) != 0)
		goto done;

	/* SIGTERM (systemd, a shutdown) stops between two removals, and the lock is released. */
	stop_requested = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGINT, &sa, &old_int);
	handlers = true;

	if ((rc = make_plan(repo, opt, (int64_t)time(NULL), &plan, err)) != 0)
		goto done;

	size_t wal = 0;
	uint64_t bytes = 0;
	for (int i = 0; i < plan.nep; i++) {
		wal += plan.ep[i].wal.n;
		bytes += plan.ep[i].wal.bytes;
	}
	for (int i = 0; i < plan.ndirs; i++)
		bytes += plan.dirs[i].objs.bytes;

	if (!opt->dry_run) {
		rc = execute(repo, lock, &plan, &pr, err);
		if (rc != 0) {
			char size[32];
			ws_error_prefix(err, "prune of repository \"%s\" stopped", repo_display(repo));
			ws_error_detail(err,
					"%d backup%s and %zu WAL file%s were removed before that (%s); the "
					"repository is consistent.",
					pr.backups, pr.backups == 1 ? "" : "s", pr.wal,
					pr.wal == 1 ? "" : "s", fmt_size(pr.bytes, size, sizeof(size)));
			if (rc != WS_INTERRUPTED)
				ws_error_hint(err,
					      "Run walship prune again once the cause is fixed: it goes on "
					      "where this run stopped.");
			goto done;
		}
		bytes = pr.bytes;
	}
	if (opt->json)
		print_json(&plan, opt, bytes, wal);
	else if (log_get_level() > LOG_LEVEL_ERROR)
		print_text(&plan, opt, bytes, wal);
	fflush(stdout);
done:
	repo_lock_release(lock);
	if (handlers) {
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGINT, &old_int, NULL);
	}
	plan_free(&plan);
	repo_free(repo);
	return rc;
}
