/*
 * rebuild.c - walship rebuild: recreate a data directory from a backup and the
 * archived WAL.  Everything that can be known from the repository is proven
 * before the data directory is touched (rebuild_plan.c: the backup, the
 * timeline recovery will follow, and that every WAL file from the backup's
 * start to the target is stored); then the backup is extracted, the recovery
 * settings written, and the server optionally started and watched.
 */
#include "cmd/rebuild.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd/rebuild_plan.h"
#include "cmd/rebuild_server.h"
#include "pg/cluster.h"
#include "pg/history.h"
#include "pg/lsn.h"
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

#define PGCONF_MAX (16 * 1024 * 1024)

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

/* ---- the data directory ---- */

/* Refuse while postmaster.pid names a running process (or one we may not signal: someone else's). */
static int check_postmaster(const char *pgdata, WsError *err)
{
	char *path = xasprintf("%s/postmaster.pid", pgdata);
	char *text = NULL;
	size_t len;
	WsError e;
	int rc = 0;

	ws_error_clear(&e);
	if (fs_read_small(path, 64 * 1024, &text, &len, &e) == 0) {
		long pid = strtol(text, NULL, 10);
		if (pid > 0 && pid <= INT32_MAX && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
			ws_error(err, WS_FATAL, "a server is running in data directory \"%s\"", pgdata);
			ws_error_detail(err, "\"%s\" names process %ld, which is alive.", path, pid);
			ws_error_hint(err, "Stop it first (pg_ctl stop); --force does not override this.");
			rc = WS_FATAL;
		}
	}
	free(text);
	free(path);
	return rc;
}

/* The owner of what rebuild creates: the data directory's, else the postgres user's (when root). */
static void choose_owner(const char *pgdata, bool exists, uid_t *uid, gid_t *gid, const char **why)
{
	struct stat st;
	*uid = geteuid();
	*gid = getegid();
	*why = "the current user";
	if (geteuid() != 0)
		return;
	if (exists && stat(pgdata, &st) == 0) {
		*uid = st.st_uid;
		*gid = st.st_gid;
		*why = "the data directory's owner";
		return;
	}
	struct passwd *pw = getpwnam("postgres");
	if (pw != NULL) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
		*why = "the postgres user";
	}
}

/* Write a whole small file (replacing it atomically), owned by uid/gid, mode 0600. */
static int write_file(const char *dir, const char *name, const char *data, size_t len, uid_t uid, gid_t gid,
		      WsError *err)
{
	FsFileOpts o = {.mode = 0600, .chown = geteuid() == 0, .uid = uid, .gid = gid, .durable = true};
	char *path = xasprintf("%s/%s", dir, name);
	int rc = fs_write_file(path, data, len, &o, err);
	free(path);
	return rc;
}

static int make_dir_owned(const char *path, uid_t uid, gid_t gid, WsError *err)
{
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return ws_error(err, WS_FATAL, "\"%s\" exists and is not a directory", path);
		return 0;
	}
	int rc = fs_mkdir_durable(path, 0700, NULL, err);
	if (rc != 0)
		return rc;
	if (geteuid() == 0 && chown(path, uid, gid) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not change the owner of \"%s\"", path);
	if (chmod(path, 0700) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not change the mode of \"%s\"", path);
	return 0;
}

/* ---- tablespaces ---- */

typedef struct TsDest {
	uint32_t oid;
	const char *dir; /* where its tar goes (the original location or the mapped one) */
	bool mapped;
} TsDest;

static int tablespace_dests(const BackupMeta *b, const RebuildOptions *o, TsDest **out, int *nout,
			    WsError *err)
{
	TsDest *d = xcalloc((size_t)(b->n_tablespaces + 1), sizeof(*d));
	int n = 0;

	for (int i = 0; i < o->n_tablespace_map; i++) {
		const char *m = o->tablespace_map[i];
		const char *eq = strchr(m, '=');
		bool found = false;
		char *end;
		unsigned long oid = strtoul(m, &end, 10);
		if (eq == NULL || end != eq || oid == 0 || eq[1] != '/') {
			free(d);
			ws_error(err, WS_USAGE, "invalid value \"%s\" for --tablespace-map", m);
			ws_error_hint(err, "Use OID=DIR with an absolute directory.");
			return WS_USAGE;
		}
		for (int k = 0; k < b->n_tablespaces; k++)
			found = found || (!b->tablespaces[k].is_base && b->tablespaces[k].oid == oid);
		if (!found) {
			free(d);
			return ws_error(err, WS_USAGE, "backup \"%s\" has no tablespace with OID %lu", b->id,
					oid);
		}
	}
	for (int k = 0; k < b->n_tablespaces; k++) {
		const BackupTablespaceInfo *t = &b->tablespaces[k];
		if (t->is_base)
			continue;
		d[n].oid = t->oid;
		d[n].dir = t->location;
		for (int i = 0; i < o->n_tablespace_map; i++) {
			if (strtoul(o->tablespace_map[i], NULL, 10) == t->oid) {
				d[n].dir = strchr(o->tablespace_map[i], '=') + 1;
				d[n].mapped = true;
			}
		}
		n++;
	}
	*out = d;
	*nout = n;
	return 0;
}

/* A tablespace directory must be empty or absent: its old content would mix with the backup's. */
static int check_tablespace_dirs(const TsDest *d, int n, WsError *err)
{
	for (int i = 0; i < n; i++) {
		int e = fs_dir_is_empty(d[i].dir);
		if (e == 0 || (e < 0 && errno != ENOENT)) {
			if (e < 0)
				return ws_error_errno(err, WS_FATAL, errno,
						      "could not read tablespace directory \"%s\"", d[i].dir);
			ws_error(err, WS_FATAL, "tablespace directory \"%s\" (OID %" PRIu32 ") is not empty",
				 d[i].dir, d[i].oid);
			ws_error_hint(err, "Empty it, or give another with --tablespace-map=%" PRIu32 "=DIR.",
				      d[i].oid);
			return WS_FATAL;
		}
	}
	return 0;
}

/* ---- extraction ---- */

typedef struct Progress {
	bool on;
	uint64_t base; /* bytes of the objects already done */
	uint64_t total;
	time_t last;
	bool shown;
} Progress;

static void progress_fn(void *ctx, uint64_t bytes)
{
	Progress *p = ctx;
	time_t now = time(NULL);
	if (!p->on || now == p->last)
		return;
	p->last = now;
	uint64_t done = p->base + bytes;
	fprintf(stderr, "\r%" PRIu64 " of %" PRIu64 " MiB (%" PRIu64 "%%)\033[K", done >> 20, p->total >> 20,
		p->total ? done * 100 / p->total : 100);
	p->shown = true;
}

static int extract(Repo *repo, const CatalogEpoch *s, const BackupMeta *b, const BackupTablespaceInfo *t,
		   const char *dest, uid_t uid, gid_t gid, Progress *pr, Tarx **keep, WsError *err)
{
	static const char *const deferred[] = {"global/pg_control", NULL};
	char key[STORE_KEY_MAX];
	TarxOptions to = {0};
	ObjInfo info;
	int rc;

	if (backup_key(s->epoch->id, b->id, t->obj.name, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "repository key too long");
	to.dest = dest;
	to.deferred = t->is_base ? deferred : NULL;
	to.uid = geteuid() == 0 ? (int)uid : -1;
	to.gid = geteuid() == 0 ? (int)gid : -1;
	to.progress = progress_fn;
	to.progress_ctx = pr;
	to.allow_unterminated = pg_major_before(s->epoch->pg_major, 15);
	Tarx *x = tarx_new(&to);
	rc = repo_get_object(repo, key, t->obj.size, tarx_write, x, &info, err);
	if (rc == 0 && (info.content_size != t->obj.size || memcmp(info.sha256, t->obj.sha256, 32) != 0))
		rc = ws_error(err, WS_CORRUPT, "object \"%s\" is not the one manifest.json describes", key);
	if (rc != 0) {
		ws_error_prefix(err, "could not restore \"%s\"", t->obj.name);
		tarx_free(x);
		return rc;
	}
	pr->base += t->obj.size;
	if (keep != NULL) {
		*keep = x; /* the caller finishes it last: pg_control appears only then */
		return 0;
	}
	rc = tarx_finish(x, err);
	tarx_free(x);
	return rc;
}

/* ---- restore_command ---- */

/* s as one shell word inside restore_command: quoted when needed, '%' doubled for PostgreSQL. */
static char *cmd_word(const char *s)
{
	bool plain = *s != '\0';
	size_t n = 0;
	for (const char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("/._:=@+,-", *p)))
			plain = false;
	char *out = xmalloc(strlen(s) * 5 + 3);
	if (!plain)
		out[n++] = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(out + n, "'\\''", 4);
			n += 4;
		} else if (*p == '%') {
			out[n++] = '%';
			out[n++] = '%';
		} else {
			out[n++] = *p;
		}
	}
	if (!plain)
		out[n++] = '\'';
	out[n] = '\0';
	return out;
}

/* walship-fetch beside this program, with the same repository and configuration file. */
static int restore_command(const Config *cfg, const RebuildOptions *o, const char *epoch, char **out,
			   WsError *err)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0 || (size_t)n >= sizeof(exe) - 1)
		return ws_error_errno(err, WS_FATAL, errno, "could not find where this program is installed");
	exe[n] = '\0';
	char *dir = fs_dirname(exe);
	char *fetch = xasprintf("%s/walship-fetch", dir);
	free(dir);
	if (access(fetch, X_OK) != 0) {
		int e = errno;
		ws_error_errno(err, WS_FATAL, e, "cannot use \"%s\" in restore_command", fetch);
		ws_error_hint(err, "Install walship-fetch in the same directory as walship.");
		free(fetch);
		return WS_FATAL;
	}
	char *w_fetch = cmd_word(fetch);
	char *repo_opt = xasprintf("--repo=%s", config_get(cfg, "repo"));
	char *w_repo = cmd_word(repo_opt);
	char *conf_opt = o->config_path ? xasprintf("--config=%s", o->config_path) : NULL;
	char *w_conf = conf_opt ? cmd_word(conf_opt) : NULL;
	char *epoch_opt = xasprintf("--epoch=%s", epoch);
	char *w_epoch = cmd_word(epoch_opt);
	*out = xasprintf("%s %s%s%s %s --mode=%s %%f %%p", w_fetch, w_conf ? w_conf : "", w_conf ? " " : "",
			 w_repo, w_epoch, o->standby ? "standby" : "recovery");
	free(w_epoch);
	free(epoch_opt);
	free(w_conf);
	free(conf_opt);
	free(w_repo);
	free(repo_opt);
	free(w_fetch);
	free(fetch);
	return 0;
}

/*
 * Start the server and wait for the outcome; *ended tells whether recovery
 * is over (the server was promoted: it will fetch nothing more).
 */
static int start_and_wait(const char *pgdata, int pg_major, const RebuildOptions *o, const RebuildPlan *pl,
			  const RebuildOwner *ow, bool *ended, WsError *err)
{
	RebuildWant want = rebuild_want(o);
	RebuildServer *s = NULL;
	int rc;

	if ((rc = rebuild_server_start(pgdata, pg_major, o->port, ow, &s, err)) != 0)
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

static int copy_config(const char *from, const char *pgdata, uid_t uid, gid_t gid, WsError *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;
	if (from != NULL) {
		if ((rc = fs_read_small(from, PGCONF_MAX, &text, &len, err)) != 0)
			return rc;
	} else {
		/* PostgreSQL starts with an empty file; say where it came from. */
		text = xstrdup("# Written by walship rebuild: the backup had no postgresql.conf (on Debian "
			       "it lives\n"
			       "# in /etc/postgresql).  Every setting has its default; add what this server "
			       "needs.\n");
		len = strlen(text);
	}
	rc = write_file(pgdata, "postgresql.conf", text, len, uid, gid, err);
	free(text);
	return rc;
}

static int write_tablespace_map(const char *pgdata, const TsDest *d, int n, uid_t uid, gid_t gid,
				WsError *err)
{
	char *text = xstrdup("");
	for (int i = 0; i < n; i++) {
		char *next = xasprintf("%s%" PRIu32 " %s\n", text, d[i].oid, d[i].dir);
		free(text);
		text = next;
	}
	int rc = write_file(pgdata, "tablespace_map", text, strlen(text), uid, gid, err);
	free(text);
	return rc;
}

static int remove_if_exists(const char *pgdata, const char *name, WsError *err)
{
	char *p = xasprintf("%s/%s", pgdata, name);
	int rc = 0;
	if (unlink(p) != 0 && errno != ENOENT)
		rc = ws_error_errno(err, WS_FATAL, errno, "could not remove \"%s\"", p);
	free(p);
	return rc;
}

/* One rebuild: what it read, chose and wrote. */
typedef struct Rebuild {
	const Config *cfg;
	const RebuildOptions *o;
	Repo *repo;
	CatalogEpoch scan;
	RebuildPlan pl;
	TsDest *ts;
	int nts;
	Tarx *base;
	char *restore;
	bool exists, empty;
	RebuildOwner ow;
	RepoLock *lease;
	bool complete; /* the data directory can be started: its lease outlives this process */
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
	    (rc = tablespace_dests(r->pl.b, o, &r->ts, &r->nts, err)) != 0)
		return rc;
	if (r->lease == NULL)
		return 0;
	const BackupMeta *b = r->pl.b;
	wal_segment_name(b->timeline, lsn_segno(b->start_lsn, r->scan.epoch->seg_size),
			 r->scan.epoch->seg_size, start_wal);
	return repo_lease_hold(r->lease, r->scan.epoch->id, b->id, r->pl.tli, start_wal, err);
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
		if ((rc = check_postmaster(pgdata, err)) != 0)
			return rc;
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
	if ((rc = check_tablespace_dirs(r->ts, r->nts, err)) != 0 ||
	    (rc = restore_command(r->cfg, o, r->scan.epoch->id, &r->restore, err)) != 0)
		return rc;
	if (o->config_from != NULL && access(o->config_from, R_OK) != 0)
		return ws_error_errno(err, WS_USAGE, errno, "cannot read --config-from file \"%s\"",
				      o->config_from);
	return 0;
}

/* Empty (--force) or create the data directory, owned by whoever the server will run as. */
static int prepare_datadir(Rebuild *r, WsError *err)
{
	const char *pgdata = r->o->pgdata;
	const char *owner_why;
	int rc;

	choose_owner(pgdata, r->exists, &r->ow.uid, &r->ow.gid, &owner_why);
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
	if ((rc = make_dir_owned(pgdata, r->ow.uid, r->ow.gid, err)) != 0)
		return rc;
	if (chmod(pgdata, 0700) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not change the mode of \"%s\"", pgdata);
	/* What earlier rebuilds of this directory held is no longer needed: its content is gone. */
	int dropped = r->lease != NULL ? repo_lease_drop_others(r->lease) : 0;
	if (dropped > 0)
		printf("removed %d lease%s of earlier rebuilds of \"%s\": what they held is no longer "
		       "needed\n",
		       dropped, dropped == 1 ? "" : "s", pgdata);
	/* Segments prefetched for what this directory held before are not for the new cluster. */
	return prefetch_clear_datadir(r->cfg, pgdata, err);
}

/* Tablespaces first, the main directory last (kept open: its pg_control is written last). */
static int extract_all(Rebuild *r, WsError *err)
{
	const BackupMeta *b = r->pl.b;
	const RebuildOwner *ow = &r->ow;
	int rc;

	Progress pr = {.on = log_get_level() >= LOG_LEVEL_WARNING && isatty(STDERR_FILENO)};
	for (int i = 0; i < b->n_tablespaces; i++)
		pr.total += b->tablespaces[i].obj.size;
	for (int i = 0, k = 0; i < b->n_tablespaces; i++) {
		const BackupTablespaceInfo *t = &b->tablespaces[i];
		if (t->is_base)
			continue;
		if ((rc = make_dir_owned(r->ts[k].dir, ow->uid, ow->gid, err)) != 0 ||
		    (rc = extract(r->repo, &r->scan, b, t, r->ts[k].dir, ow->uid, ow->gid, &pr, NULL, err)) !=
			    0)
			return rc;
		k++;
	}
	for (int i = 0; i < b->n_tablespaces; i++)
		if (b->tablespaces[i].is_base &&
		    (rc = extract(r->repo, &r->scan, b, &b->tablespaces[i], r->o->pgdata, ow->uid, ow->gid,
				  &pr, &r->base, err)) != 0)
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
	rc = make_dir_owned(wal, ow->uid, ow->gid, err);
	if (rc == 0)
		rc = make_dir_owned(status, ow->uid, ow->gid, err);
	free(status);
	free(wal);
	if (rc != 0)
		return rc;
	if ((rc = remove_if_exists(pgdata, "recovery.done", err)) != 0 ||
	    (!pg_major_before(major, 12) && (rc = remove_if_exists(pgdata, "recovery.conf", err)) != 0))
		return rc;
	for (int i = 0; i < r->nts; i++) {
		if (r->ts[i].mapped) {
			if ((rc = write_tablespace_map(pgdata, r->ts, r->nts, ow->uid, ow->gid, err)) != 0)
				return rc;
			break;
		}
	}
	char *conf = xasprintf("%s/postgresql.conf", pgdata);
	bool has_conf = access(conf, F_OK) == 0;
	free(conf);
	if (!has_conf && (rc = copy_config(o->config_from, pgdata, ow->uid, ow->gid, err)) != 0)
		return rc;
	if (has_conf && o->config_from != NULL)
		log_warning("the backup has its own postgresql.conf: --config-from=\"%s\" not used",
			    o->config_from);

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
	rs.archive_off = o->archive ? strcmp(o->archive, "off") == 0 : !o->standby;
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
	if (rc != 0)
		(void)unlink(control); /* never leave a directory that looks startable */
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
	char until[32];
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
	repo_lock_time_str((int64_t)time(NULL) + r->o->lease, until);
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
	if ((rc = rebuild_plan_check_target(o, meta->epochs[meta->n_epochs - 1].pg_major, &r.pl, err)) != 0 ||
	    (rc = take_lease(&r, err)) != 0 || (rc = read_plan(&r, err)) != 0 ||
	    (rc = check_datadir(&r, err)) != 0)
		goto done;

	rebuild_plan_print(&r.scan, o, &r.pl);
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
	       pg_major_before(r.scan.epoch->pg_major, 12) ? "recovery.conf"
	       : o->standby                                ? "standby.signal"
							   : "recovery.signal");
	if (!o->start) {
		printf("start it with: pg_ctl -D %s start\n", o->pgdata);
		goto done;
	}
	rc = start_and_wait(o->pgdata, r.scan.epoch->pg_major, o, &r.pl, &r.ow, &ended, err);
done:
	finish_lease(&r, ended);
	fflush(stdout);
	tarx_free(r.base);
	free(r.restore);
	free(r.ts);
	catalog_epoch_free(&r.scan);
	repo_free(r.repo);
	return rc;
}
