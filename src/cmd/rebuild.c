/*
 * rebuild.c - walship rebuild: recreate a data directory from a backup and the
 * archived WAL.  Everything that can be known from the repository is proven
 * before the data directory is touched (rebuild_plan.c: the backup, the
 * timeline recovery will follow, and that every WAL file from the backup's
 * start to the target is stored); then the backup is extracted and the
 * recovery settings written (rebuild_datadir.c), and the server optionally
 * started and watched (rebuild_server.c).  This file runs those steps in
 * order and holds the lease.
 */
#include "cmd/rebuild.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "cmd/rebuild_config.h"
#include "cmd/rebuild_datadir.h"
#include "cmd/rebuild_plan.h"
#include "cmd/rebuild_server.h"
#include "pg/lsn.h"
#include "pg/pgcommon.h"
#include "pg/pgcontrol.h"
#include "pg/pgmajor.h"
#include "pg/walname.h"
#include "repo/backupmeta.h"
#include "repo/catalog.h"
#include "repo/lock.h"
#include "repo/repo.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/tarx.h"
#include "wal/prefetch_spool.h"

/* ---- reading an epoch: its backups, its WAL and its timelines (catalog_scan_epoch) ---- */

/* A backup or timeline rebuild cannot use is a warning: rebuild goes on with the others. */
static void scan_problem(void *ctx, const CatalogProblem *p, WsError *e)
{
	(void)ctx;
	if (p->backup_id != NULL) {
		if (p->mismatch) {
			ws_error_clear(e);
			ws_error(e, WS_CORRUPT, "manifest.json does not match where it is stored");
			ws_error_detail(e, "It is stored as \"%s\".", p->key);
		}
		ws_error_prefix(e, "backup \"%s\" is skipped", p->backup_id);
	} else {
		if (p->key_too_long) {
			ws_error_clear(e);
			ws_error(e, WS_FATAL, "repository key too long");
		}
		ws_error_prefix(e, "history file \"%08" PRIX32 ".history\" cannot be used", p->tli);
	}
	log_report_warning(e);
}

/*
 * Start the server and wait for the outcome; *ended tells whether recovery
 * is over (the server was promoted: it will fetch nothing more).
 */
static int start_and_wait(const char *pgdata, int pg_major, const RebuildOptions *o, const RebuildPlan *pl,
			  const PgCommonCluster *deb, const RebuildOwner *ow, bool *ended, WsError *err)
{
	RebuildWant want = rebuild_want(o);
	RebuildServer *s = NULL;
	int rc;

	if ((rc = rebuild_server_start(pgdata, pg_major, o->port, deb, ow, &s, err)) != 0)
		goto done;
	log_info("server started, log in \"%s\"; waiting for recovery", rebuild_server_log(s));
	RebuildOutcome out = rebuild_server_wait(s, want);
	if ((rc = rebuild_server_report(s, want, out, o, pl, err)) != 0)
		goto done;
	/* Promoted: recovery will fetch nothing more.  Paused or shut down at the target, it may. */
	*ended = want == REBUILD_WANT_PROMOTED;
	/* The targets did their job; left in place they would stop the next start or rebuild. */
	if (want != REBUILD_WANT_STANDBY)
		rc = recovery_targets_clear(pgdata, pg_major, err);
done:
	rebuild_server_free(s);
	return rc;
}

/* ---- the command ---- */

/* One rebuild: what it read, chose and wrote. */
typedef struct Rebuild {
	const Config *cfg;
	const RebuildOptions *o;
	Repo *repo;
	CatalogEpoch scan;
	RebuildPlan pl;
	RebuildTablespace *ts;
	int nts;
	Tarx *base;
	char *restore;
	bool exists, empty;
	RebuildOwner ow;
	RepoLock *lease;
	bool complete;       /* the data directory can be started: its lease outlives this process */
	PgCommonCluster deb; /* the Debian cluster whose data directory this is (deb.name NULL: none) */
	bool in_place;    /* the data directory of the backup's own cluster: archiving stays as configured */
	bool archive_off; /* archive_mode = off is written */
	uint64_t old_sysid;         /* the system identifier of what the directory held (0: none) */
	char *stop_cmd, *start_cmd; /* what stops and starts this data directory's server */
	char *end_cmd;              /* recovery_end_command, or NULL */
} Rebuild;

/*
 * The lease that keeps what this rebuild needs from walship prune, taken
 * before the repository is read; then wait for a prune that started before
 * it (it may not have seen the lease), so that what is read stays there.
 */
static int take_lease(Rebuild *r, WsError *err)
{
	int rc;
	if (r->o->dry_run)
		return 0;
	if (r->o->lease == 0) {
		log_info("no lease (--lease=0): walship prune may remove WAL this rebuild needs");
		return 0;
	}
	if ((rc = repo_lease_take(r->repo, r->cfg, r->o->pgdata, &r->lease, err)) != 0)
		return rc;
	return repo_lock_wait(r->repo, "prune", err);
}

/* The epoch, backup and timeline, proven from the repository; the lease narrowed to them. */
static int read_plan(Rebuild *r, WsError *err)
{
	const RebuildOptions *o = r->o;
	const RepoMeta *meta = repo_meta(r->repo);
	char start_wal[32];
	int rc;

	/* The backup's epoch: the one holding --backup=ID, else the newest. */
	for (int i = meta->n_epochs; i-- > 0;) {
		if ((rc = rebuild_plan_check_target(o, meta->epochs[i].pg_major, &r->pl, err)) != 0)
			return rc;
		if ((rc = catalog_scan_epoch(r->repo, &meta->epochs[i], scan_problem, NULL, &r->scan, err)) !=
		    0)
			return rc;
		bool by_id = o->backup_id != NULL && strcmp(o->backup_id, "latest") != 0;
		bool found = !by_id;
		for (int k = 0; by_id && k < r->scan.nbackups; k++)
			found = found || strcmp(r->scan.backups[k]->id, o->backup_id) == 0;
		if (found || i == 0)
			break;
		catalog_epoch_free(&r->scan);
	}
	if ((rc = rebuild_plan_choose(&r->scan, o, &r->pl, err)) != 0 ||
	    (rc = rebuild_plan_check_end(r->repo, &r->scan, o, &r->pl, err)) != 0 ||
	    (rc = rebuild_tablespace_dests(r->pl.b, o, &r->ts, &r->nts, err)) != 0)
		return rc;
	if (r->lease == NULL)
		return 0;
	const BackupMeta *b = r->pl.b;
	wal_segment_name(b->timeline, lsn_segno(b->start_lsn, r->scan.epoch->seg_size),
			 r->scan.epoch->seg_size, start_wal);
	return repo_lease_hold(r->lease, r->scan.epoch->id, b->id, r->pl.tli, start_wal, err);
}

/*
 * Left in an in-place restore's data directory until its pg_control is
 * written: a rebuild that failed after emptying the directory leaves no
 * pg_control, and the next attempt must still know it is in place.  It holds
 * the system identifier.
 */
#define IN_PLACE_MARK "walship-rebuild.in-place"

/* How this data directory's server is stopped and started: pg_ctlcluster for a Debian cluster. */
static void find_cluster(Rebuild *r)
{
	if (pgcommon_cluster_of(PGCOMMON_ETC, r->o->pgdata, &r->deb) == 1) {
		r->stop_cmd = xasprintf("pg_ctlcluster %s %s stop", r->deb.version, r->deb.name);
		r->start_cmd = xasprintf("pg_ctlcluster %s %s start", r->deb.version, r->deb.name);
		printf("\"%s\" is the data directory of Debian cluster %s/%s (configuration in \"%s\")\n",
		       r->o->pgdata, r->deb.version, r->deb.name, r->deb.conf_dir);
	} else {
		r->stop_cmd = xasprintf("pg_ctl -D %s stop", r->o->pgdata);
		r->start_cmd = xasprintf("pg_ctl -D %s start", r->o->pgdata);
	}
}

/*
 * In place or a copy: over the data directory of the backup's own cluster
 * (the same system identifier in the old pg_control, or a Debian cluster's
 * directory with no pg_control left) archiving stays as configured, so that
 * the new timeline reaches the repository; a copy gets archive_mode = off,
 * so that it never archives into the repository of the cluster it copies.
 */
static void decide_in_place(Rebuild *r)
{
	const RebuildOptions *o = r->o;
	r->in_place = r->old_sysid != 0 ? r->old_sysid == r->scan.epoch->sysid : r->deb.name != NULL;
	r->archive_off = o->archive ? strcmp(o->archive, "off") == 0 : !o->standby && !r->in_place;
}

/* The one line that says in place or copy, and what became of archive_mode. */
static void print_in_place(const Rebuild *r)
{
	const RebuildOptions *o = r->o;
	char what[160];
	if (r->in_place)
		snprintf(what, sizeof(what),
			 "in-place restore of this cluster (system identifier %" PRIu64 ")",
			 r->scan.epoch->sysid);
	else if (o->standby)
		snprintf(what, sizeof(what), "a standby");
	else
		snprintf(what, sizeof(what), "a copy%s",
			 r->old_sysid != 0 ? " (the directory held another cluster)" : "");
	if (o->archive != NULL)
		printf("%s: archive_mode %s (--archive=%s)\n", what,
		       r->archive_off ? "= off is written" : "is left as configured", o->archive);
	else if (r->archive_off)
		printf("%s: archive_mode = off is written, so it does not archive into the repository "
		       "(--archive=keep to keep the backup's setting)\n",
		       what);
	else
		printf("%s: archive_mode is left as configured, so %s is archived (--archive=off to turn it "
		       "off)\n",
		       what, o->standby ? "what it writes once promoted" : "the new timeline");
}

/* The system identifier an earlier in-place rebuild of pgdata that failed left in IN_PLACE_MARK, or 0. */
static uint64_t read_in_place_mark(const char *pgdata)
{
	char *path = xasprintf("%s/" IN_PLACE_MARK, pgdata);
	char *text = NULL;
	size_t len;
	WsError ignored;
	uint64_t sysid = 0;
	ws_error_clear(&ignored);
	if (fs_read_small(path, 64, &text, &len, &ignored) == 0)
		sysid = strtoull(text, NULL, 10);
	free(text);
	free(path);
	return sysid;
}

/* The data directory: absent, empty, or (--force) not in use; and what it will be given. */
static int check_datadir(Rebuild *r, WsError *err)
{
	const RebuildOptions *o = r->o;
	const char *pgdata = o->pgdata;
	struct stat st;
	int rc;

	r->empty = true;
	r->exists = lstat(pgdata, &st) == 0;
	if (!r->exists && errno != ENOENT)
		return ws_error_errno(err, WS_FATAL, errno, "could not stat \"%s\"", pgdata);
	if (r->exists) {
		if (stat(pgdata, &st) != 0 || !S_ISDIR(st.st_mode))
			return ws_error(err, WS_FATAL, "\"%s\" exists and is not a directory", pgdata);
		if ((rc = rebuild_check_postmaster(pgdata, r->stop_cmd, err)) != 0)
			return rc;
		PgControl old;
		WsError ignored;
		ws_error_clear(&ignored);
		if (pg_control_read(pgdata, &old, &ignored) == 0)
			r->old_sysid = old.sysid;
		else
			r->old_sysid = read_in_place_mark(pgdata);
		int e = fs_dir_is_empty(pgdata);
		if (e < 0)
			return ws_error_errno(err, WS_FATAL, errno, "could not read directory \"%s\"",
					      pgdata);
		r->empty = e == 1;
		if (!r->empty && !o->force) {
			ws_error(err, WS_FATAL, "data directory \"%s\" is not empty", pgdata);
			ws_error_hint(err,
				      "Use --force to replace what it holds, or choose another directory.");
			return WS_FATAL;
		}
	}
	if ((rc = rebuild_check_tablespace_dirs(r->ts, r->nts, err)) != 0 ||
	    (rc = rebuild_restore_command(r->cfg, o, r->scan.epoch->id, &r->restore, err)) != 0)
		return rc;
	if (o->config_from != NULL && access(o->config_from, R_OK) != 0)
		return ws_error_errno(err, WS_USAGE, errno, "cannot read --config-from file \"%s\"",
				      o->config_from);
	decide_in_place(r);
	return 0;
}

/* Empty (--force) or create the data directory, owned by whoever the server will run as. */
static int prepare_datadir(Rebuild *r, WsError *err)
{
	const char *pgdata = r->o->pgdata;
	const char *owner_why;
	int rc;

	rebuild_choose_owner(pgdata, r->exists, &r->ow.uid, &r->ow.gid, &owner_why);
	struct passwd *pw = getpwuid(r->ow.uid);
	snprintf(r->ow.name, sizeof(r->ow.name), "%s", pw ? pw->pw_name : "postgres");
	log_info("files will belong to user \"%s\" (%s)", r->ow.name, owner_why);
	if (r->exists && !r->empty) {
		int fd = open(pgdata, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return ws_error_errno(err, WS_FATAL, errno, "could not open \"%s\"", pgdata);
		printf("removing the contents of \"%s\" (--force)\n", pgdata);
		if ((rc = fs_remove_contents(fd, pgdata, err)) != 0)
			return rc;
	}
	if ((rc = rebuild_make_dir_owned(pgdata, r->ow.uid, r->ow.gid, err)) != 0)
		return rc;
	if (chmod(pgdata, 0700) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not change the mode of \"%s\"", pgdata);
	/* What earlier rebuilds of this directory held is no longer needed: its content is gone. */
	int dropped = r->lease != NULL ? repo_lease_drop_others(r->lease) : 0;
	if (dropped > 0)
		printf("removed %d lease%s of earlier rebuilds of \"%s\": what they held is no longer "
		       "needed\n",
		       dropped, dropped == 1 ? "" : "s", pgdata);
	if (r->in_place) {
		char mark[32];
		int n = snprintf(mark, sizeof(mark), "%" PRIu64 "\n", r->scan.epoch->sysid);
		FsFileOpts fo = {.mode = 0600,
				 .chown = geteuid() == 0,
				 .uid = r->ow.uid,
				 .gid = r->ow.gid,
				 .durable = true};
		char *path = xasprintf("%s/" IN_PLACE_MARK, pgdata);
		rc = fs_write_file(path, mark, (size_t)n, &fo, err);
		free(path);
		if (rc != 0)
			return rc;
	}
	/* Segments prefetched for what this directory held before are not for the new cluster. */
	return prefetch_clear_datadir(r->cfg, pgdata, err);
}

/* Tablespaces first, the main directory last (kept open: its pg_control is written last). */
static int extract_all(Rebuild *r, WsError *err)
{
	const BackupMeta *b = r->pl.b;
	const RebuildOwner *ow = &r->ow;
	int rc;

	RebuildProgress pr = {.on = log_get_level() >= LOG_LEVEL_WARNING && isatty(STDERR_FILENO)};
	for (int i = 0; i < b->n_tablespaces; i++)
		pr.total += b->tablespaces[i].obj.size;
	for (int i = 0, k = 0; i < b->n_tablespaces; i++) {
		const BackupTablespaceInfo *t = &b->tablespaces[i];
		if (t->is_base)
			continue;
		if ((rc = rebuild_make_dir_owned(r->ts[k].dir, ow->uid, ow->gid, err)) != 0 ||
		    (rc = rebuild_extract(r->repo, &r->scan, b, t, r->ts[k].dir, ow->uid, ow->gid, &pr, NULL,
					  err)) != 0)
			return rc;
		k++;
	}
	for (int i = 0; i < b->n_tablespaces; i++)
		if (b->tablespaces[i].is_base &&
		    (rc = rebuild_extract(r->repo, &r->scan, b, &b->tablespaces[i], r->o->pgdata, ow->uid,
					  ow->gid, &pr, &r->base, err)) != 0)
			return rc;
	if (pr.shown)
		fputc('\n', stderr);
	if (r->base == NULL)
		return ws_error(err, WS_CORRUPT, "backup \"%s\" has no main data directory object", b->id);
	return 0;
}

/* pg_wal, the configuration and the recovery settings; pg_control last. */
static int write_settings(Rebuild *r, WsError *err)
{
	const RebuildOptions *o = r->o;
	const char *pgdata = o->pgdata;
	const RebuildOwner *ow = &r->ow;
	int major = r->scan.epoch->pg_major;
	int rc;

	char *wal = xasprintf("%s/pg_wal", pgdata);
	char *status = xasprintf("%s/pg_wal/archive_status", pgdata);
	rc = rebuild_make_dir_owned(wal, ow->uid, ow->gid, err);
	if (rc == 0)
		rc = rebuild_make_dir_owned(status, ow->uid, ow->gid, err);
	free(status);
	free(wal);
	if (rc != 0)
		return rc;
	if ((rc = rebuild_remove_if_exists(pgdata, "recovery.done", err)) != 0 ||
	    (!pg_has_recovery_conf(major) &&
	     (rc = rebuild_remove_if_exists(pgdata, "recovery.conf", err)) != 0))
		return rc;
	for (int i = 0; i < r->nts; i++) {
		if (r->ts[i].mapped) {
			if ((rc = rebuild_write_tablespace_map(pgdata, r->ts, r->nts, ow->uid, ow->gid,
							       err)) != 0)
				return rc;
			break;
		}
	}
	/* A Debian cluster's configuration is in /etc: one written here would never be read. */
	if ((rc = rebuild_config_write(r->repo, r->scan.epoch->id, r->pl.b, o->config_from, pgdata, ow->uid,
				       ow->gid, r->in_place || r->deb.name != NULL, err)) != 0)
		return rc;

	RecoverySettings rs = {0};
	rs.restore_command = r->restore;
	rs.target = o->target;
	rs.target_value = o->target == TARGET_TIME ? r->pl.time_value : o->target_value;
	rs.target_exclusive = o->target_exclusive;
	/* Explicit: the number proven above, or latest for a standby that must follow promotions. */
	rs.target_timeline =
		o->standby && (o->target_timeline == NULL || strcmp(o->target_timeline, "latest") == 0)
			? "latest"
			: r->pl.timeline_value;
	rs.target_action = o->target_action;
	rs.standby = o->standby;
	rs.primary_conninfo = o->primary_conninfo;
	rs.archive_off = r->archive_off;
	/* The targets must go once recovery has ended, whoever starts the server. */
	if (!o->standby && !pg_has_recovery_conf(major) &&
	    (rc = rebuild_end_command(o, &r->end_cmd, err)) != 0)
		return rc;
	rs.end_command = r->end_cmd;
	if ((rc = recovery_settings_write(pgdata, major, &rs, err)) != 0)
		return rc;
	if ((rc = tarx_finish(r->base, err)) != 0) {
		ws_error_prefix(err, "could not restore \"base.tar\"");
		return rc;
	}
	char *control = xasprintf("%s/global/pg_control", pgdata);
	PgControl pc;
	const RepoEpoch *e = r->scan.epoch;
	if (access(control, F_OK) != 0) {
		rc = ws_error(err, WS_CORRUPT, "backup \"%s\" has no global/pg_control", r->pl.b->id);
	} else if ((rc = pg_control_read(pgdata, &pc, err)) == 0 &&
		   (pc.sysid != e->sysid || pc.seg_size != e->seg_size)) {
		/* restore_command names the epoch: a copy of another cluster would fail at its first fetch.
		 */
		rc = ws_error(err, WS_CORRUPT,
			      "backup \"%s\" holds the pg_control of another cluster than epoch \"%s\"",
			      r->pl.b->id, e->id);
		ws_error_detail(err,
				"Its pg_control says system identifier %" PRIu64 " with %" PRIu32
				"-byte WAL segments; the epoch is system identifier %" PRIu64 " with %" PRIu32
				".",
				pc.sysid, pc.seg_size, e->sysid, e->seg_size);
		ws_error_hint(err,
			      "The backup's objects were replaced: run \"walship verify\", and rebuild from "
			      "another backup (--backup=ID).");
	}
	if (rc != 0) {
		(void)unlink(control); /* never leave a directory that looks startable */
	} else {
		char *mark = xasprintf("%s/" IN_PLACE_MARK, pgdata);
		(void)unlink(mark); /* pg_control says it now */
		free(mark);
	}
	free(control);
	return rc;
}

/* The data directory can be started: keep the lease --lease after this process, also if it is killed. */
static int keep_lease(Rebuild *r, WsError *err)
{
	int rc;
	if (r->lease == NULL)
		return 0;
	if ((rc = repo_lock_check(r->lease, err)) != 0)
		return rc;
	if ((rc = repo_lease_keep_until(r->lease, (int64_t)time(NULL) + r->o->lease, err)) != 0)
		return rc;
	r->complete = true;
	return 0;
}

/*
 * Release the lease once recovery has ended, or when the data directory
 * cannot be started; else leave it in the repository until it expires.
 */
static void finish_lease(Rebuild *r, bool ended)
{
	char until[CLOCK_ISO_MAX];
	if (r->lease == NULL)
		return;
	if (!r->complete || ended) {
		if (ended)
			printf("recovery has ended: lease %s released\n", repo_lease_id(r->lease));
		repo_lock_release(r->lease);
		r->lease = NULL;
		return;
	}
	/* Counted from now: the server is started after walship rebuild exits (or keeps reading). */
	WsError e;
	ws_error_clear(&e);
	if (repo_lease_keep_until(r->lease, (int64_t)time(NULL) + r->o->lease, &e) != 0)
		log_report_warning(&e);
	clock_utc_iso((int64_t)time(NULL) + r->o->lease, until);
	printf("lease %s keeps backup \"%s\" and its WAL from walship prune until %s (--lease)\n",
	       repo_lease_id(r->lease), r->pl.b->id, until);
	repo_lease_leave(r->lease);
	r->lease = NULL;
}
int cmd_rebuild(const Config *cfg, const RebuildOptions *o, WsError *err)
{
	Rebuild r;
	bool ended = false;
	int rc;

	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.o = o;
	if ((rc = repo_open(cfg, &r.repo, err)) != 0)
		goto done;
	/* Usage errors before anything is written to the repository (the lease). */
	const RepoMeta *meta = repo_meta(r.repo);
	if ((rc = rebuild_plan_check_target(o, meta->epochs[meta->n_epochs - 1].pg_major, &r.pl, err)) != 0)
		goto done;
	find_cluster(&r);
	if ((rc = take_lease(&r, err)) != 0 || (rc = read_plan(&r, err)) != 0 ||
	    (rc = check_datadir(&r, err)) != 0)
		goto done;

	rebuild_plan_print(&r.scan, o, &r.pl);
	print_in_place(&r);
	if (o->dry_run) {
		printf("data directory: \"%s\" %s\n", o->pgdata,
		       !r.exists ? "would be created"
		       : r.empty ? "is empty"
				 : "would be emptied (--force)");
		printf("dry run: nothing was written\n");
		goto done;
	}
	if ((rc = prepare_datadir(&r, err)) != 0 || (rc = extract_all(&r, err)) != 0 ||
	    (rc = write_settings(&r, err)) != 0 || (rc = keep_lease(&r, err)) != 0)
		goto done;
	printf("data directory \"%s\" rebuilt from backup \"%s\"; %s written\n", o->pgdata, r.pl.b->id,
	       pg_has_recovery_conf(r.scan.epoch->pg_major) ? "recovery.conf"
	       : o->standby                                 ? "standby.signal"
							    : "recovery.signal");
	if (r.end_cmd != NULL)
		printf("the recovery settings in postgresql.auto.conf are removed when recovery ends "
		       "(recovery_end_command)\n");
	if (!o->start) {
		printf("start it with: %s\n", r.start_cmd);
		goto done;
	}
	rc = start_and_wait(o->pgdata, r.scan.epoch->pg_major, o, &r.pl, r.deb.name ? &r.deb : NULL, &r.ow,
			    &ended, err);
done:
	finish_lease(&r, ended);
	fflush(stdout);
	tarx_free(r.base);
	free(r.end_cmd);
	free(r.stop_cmd);
	free(r.start_cmd);
	pgcommon_cluster_free(&r.deb);
	free(r.restore);
	free(r.ts);
	catalog_epoch_free(&r.scan);
	repo_free(r.repo);
	return rc;
}

int cmd_rebuild_recovery_ended(const char *pgdata, WsError *err)
{
	int major, rc;
	if ((rc = pg_version_read(pgdata, &major, err)) != 0 ||
	    (rc = recovery_targets_clear(pgdata, major, err)) != 0)
		return rc;
	printf("recovery has ended: the recovery target settings walship rebuild wrote are removed from "
	       "\"%s/postgresql.auto.conf\"\n",
	       pgdata);
	return 0;
}
