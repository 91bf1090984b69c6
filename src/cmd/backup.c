/*
 * backup.c - walship backup: BASE_BACKUP over a replication connection, each
 * archive streamed straight into the repository (no local copy), then a wait
 * until the backup's WAL is archived and verified, then manifest.json.
 *
 * Why in this order: a backup is restorable only once every WAL file from
 * its start to its stop is in the repository, and manifest.json is what
 * marks a backup as usable, so it is written last.  A run that fails removes
 * the objects it stored: without manifest.json nothing would ever read them.
 */
#include "cmd/backup.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/backup_config.h"
#include "pg/archcheck.h"
#include "pg/basebackup.h"
#include "pg/cluster.h"
#include "pg/history.h"
#include "pg/pgmajor.h"
#include "pg/pqconn.h"
#include "pg/walname.h"
#include "pg/walpage.h"
#include "repo/backupmeta.h"
#include "repo/keys.h"
#include "repo/lock.h"
#include "repo/repo.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

/* How often the repository is asked again for a WAL file that is not there yet. */
#define WAL_POLL_S 0.5
/* How often a wait for WAL says what it waits for and what pg_stat_archiver says. */
#define WAL_PROGRESS_S 5.0

/* ---- progress on a terminal ---- */

typedef struct Progress {
	bool on;
	uint64_t total; /* the server's estimate, 0 if none */
	double start;
	double last;
	bool shown; /* a progress line is on the screen */
} Progress;

static const char *duration_str(double s, char *buf, size_t size)
{
	long t = (long)(s + 0.5);
	if (s < 59.95)
		snprintf(buf, size, "%.1f s", s);
	else if (t < 3600)
		snprintf(buf, size, "%ld min %02ld s", t / 60, t % 60);
	else
		snprintf(buf, size, "%ld h %02ld min", t / 3600, t / 60 % 60);
	return buf;
}

/* One line, rewritten in place at most four times a second (always when final). */
static void progress_show(Progress *p, uint64_t done, bool final)
{
	char d[32], t[32], r[32], e[32];
	double now = clock_now();
	if (!p->on || (!final && now - p->last < 0.25))
		return;
	p->last = now;
	double elapsed = now - p->start;
	double rate = elapsed > 0 ? (double)done / elapsed : 0;
	fmt_size(done, d, sizeof(d));
	fmt_size((uint64_t)rate, r, sizeof(r));
	if (p->total > 0) {
		uint64_t pct = done >= p->total ? 100 : done * 100 / p->total;
		if (done < p->total && rate > 0)
			duration_str((double)(p->total - done) / rate, e, sizeof(e));
		else
			duration_str(0, e, sizeof(e));
		fprintf(stderr, "\r%s of %s (%" PRIu64 "%%), %s/s, %s left\033[K", d,
			fmt_size(p->total, t, sizeof(t)), pct, r, e);
	} else {
		fprintf(stderr, "\r%s, %s/s\033[K", d, r);
	}
	p->shown = true;
}

/* End the progress line before anything else is printed. */
static void progress_break(Progress *p)
{
	if (p->shown) {
		fputc('\n', stderr);
		p->shown = false;
	}
}

/* ---- the server ---- */

typedef struct BackupConn {
	PqConn *conn;
	Progress *progress;
} BackupConn;

/* The server's warnings (checksum failures name file and block) in walship's format. */
static void notice_receiver(void *arg, const char *sev, const char *msg)
{
	BackupConn *c = arg;
	bool warning = sev != NULL && strcmp(sev, "WARNING") == 0;
	if (warning || log_get_level() >= LOG_LEVEL_INFO)
		progress_break(c->progress);
	if (warning)
		log_warning("server: %s", msg);
	else
		log_info("server: %s", msg);
}

#define BACKUP_ROLE_HINT                                                                                     \
	"The user needs the REPLICATION attribute (or to be a superuser) and a \"replication\" line in "     \
	"pg_hba.conf."

static int connect_server(const char *dbname, BackupConn *c, WsError *err)
{
	int rc = pq_connect(dbname, true, "walship", BACKUP_ROLE_HINT, &c->conn, err);
	if (rc == 0)
		pq_set_notice(c->conn, notice_receiver, c);
	return rc;
}

typedef struct ServerInfo {
	int version; /* server_version_num */
	int major;
	uint64_t sysid;
	uint32_t seg_size;
	uint32_t tli; /* the timeline it writes, from IDENTIFY_SYSTEM */
} ServerInfo;

static int identify_server(PqConn *conn, ServerInfo *si, WsError *err)
{
	PqRow *res;
	int rc;
	char *end;

	si->version = pq_server_version(conn);
	if (si->version < 100000) {
		ws_error(err, WS_FATAL,
			 "the server's PostgreSQL version %d is not supported by walship backup",
			 si->version);
		ws_error_hint(err, "walship backup needs PostgreSQL 10 or later.");
		return WS_FATAL;
	}
	si->major = pg_major_of_version_num(si->version);
	if (si->major > PG_MAJOR_NEWEST) {
		/* pg_basebackup does the same: a newer server may answer in a shape not known here. */
		ws_error(err, WS_FATAL, "the server's PostgreSQL %d is newer than this walship supports (17)",
			 si->version / 10000);
		ws_error_hint(err, "Upgrade walship.");
		return WS_FATAL;
	}

	if ((rc = pq_query_row(conn, "IDENTIFY_SYSTEM", 3, false, &res, err)) != 0)
		return rc;
	const char *s = pq_row_value(res, 0);
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v == 0) {
		ws_error(err, WS_FATAL, "unexpected system identifier \"%.64s\" from the server", s);
		pq_row_free(res);
		return WS_FATAL;
	}
	si->sysid = (uint64_t)v;
	unsigned long tli = strtoul(pq_row_value(res, 1), &end, 10);
	si->tli = *end == '\0' && tli <= UINT32_MAX ? (uint32_t)tli : 0;
	pq_row_free(res);

	if ((rc = pq_query_row(conn, "SHOW wal_segment_size", 1, false, &res, err)) != 0)
		return rc;
	uint64_t seg;
	s = pq_row_value(res, 0);
	if (pg_size_parse(s, &seg) != 0 || seg > UINT32_MAX || !wal_segsize_valid((uint32_t)seg)) {
		ws_error(err, WS_FATAL, "unexpected wal_segment_size \"%.64s\" from the server", s);
		pq_row_free(res);
		return WS_FATAL;
	}
	si->seg_size = (uint32_t)seg;
	pq_row_free(res);
	return 0;
}

/* ---- is the server archiving into this repository? ---- */

typedef struct Findings {
	int failed;
	WsError last; /* the latest failure: the others are printed as they come */
} Findings;

static void on_finding(void *arg, ArchFinding kind, const WsError *e)
{
	Findings *f = arg;
	if (kind == ARCH_OK)
		log_debug("%s", e->msg);
	else if (kind == ARCH_SKIPPED)
		log_debug("skipped: %s", e->msg);
	else if (kind == ARCH_WARNING)
		log_report_warning(e);
	else {
		if (f->failed++ > 0)
			log_report(&f->last);
		f->last = *e;
	}
}

/*
 * walship check's archive settings checks (pg/archcheck.h), and its check of
 * the current timeline's history file, before anything is stored: a backup
 * whose WAL cannot arrive would only wait out --wal-timeout.  Its failures
 * fail the backup, its warnings are warnings.  *sql: a plain connection kept
 * for pg_stat_archiver (NULL when the role may not have one: the checks then
 * run over the replication connection, without pg_settings).
 */
static int check_archiving(const Config *cfg, const char *dbname, PqConn *repl, Repo *repo,
			   const RepoEpoch *epoch, uint32_t tli, PqConn **sql, WsError *err)
{
	Findings f = {0};
	WsError e;
	bool archiving;

	ws_error_clear(&e);
	if (pq_connect(dbname, false, "walship", BACKUP_ROLE_HINT, sql, &e) != 0) {
		log_info("archive settings are read over the replication connection: %s", e.msg);
	} else {
		PqRow *res = NULL;
		if (pq_query_row(*sql, "SELECT pg_is_in_recovery()", 1, false, &res, &e) == 0) {
			bool standby = strcmp(pq_row_value(res, 0), "t") == 0;
			pq_row_free(res);
			if (standby) {
				log_info("the server is a standby: its archive settings are not checked");
				return 0;
			}
		}
	}
	ArchCheck ac = {*sql ? *sql : repl, config_get(cfg, "repo"), "walship backup", on_finding, &f};
	ws_error_clear(&e);
	if (archcheck_settings(&ac, &archiving, &e) != 0) {
		ws_error_prefix(&e, "could not check the server's archive settings");
		log_report_warning(&e);
	}
	/* A history file that was never archived would be waited for until --wal-timeout, too. */
	int rc;
	if (f.failed == 0 && (rc = archcheck_history(&ac, repo, epoch, tli, err)) != 0)
		return rc;
	if (f.failed == 0)
		return 0;
	*err = f.last;
	if (err->detail[0] == '\0')
		ws_error_detail(err,
				"walship backup checks this before it starts: the backup's WAL would never "
				"reach the repository.");
	return WS_FATAL;
}

/* ---- the repository side ---- */

static int any_key(void *ctx, const char *key, const StoreStat *st, WsError *err)
{
	(void)key, (void)st, (void)err;
	*(bool *)ctx = true;
	return 1; /* one is enough: stop listing */
}

/* The first free id for time t: t's id, else "-2", "-3", ... */
static int choose_id(Repo *repo, const char *epoch, time_t t, char id[BACKUP_ID_MAX], WsError *err)
{
	char dir[STORE_KEY_MAX];
	for (int n = 1; n < 1000; n++) {
		bool used = false;
		backup_id_format((int64_t)t, n, id);
		if (backup_key_dir(epoch, id, dir, sizeof(dir)) != 0)
			return ws_error(err, WS_FATAL, "repository key for backup \"%s\" is too long", id);
		int rc = store_list(repo_store(repo), dir, any_key, &used, err);
		if (rc < 0)
			return rc;
		if (!used)
			return 0;
	}
	return ws_error(err, WS_FATAL, "too many backups started at %s", id);
}

/* The keys this run stored, to take back if it fails. */
typedef struct Written {
	char **keys;
	int n;
} Written;

static void written_add(Written *w, const char *key)
{
	w->keys = xrealloc(w->keys, (size_t)(w->n + 1) * sizeof(char *));
	w->keys[w->n++] = xstrdup(key);
}

static void written_remove_all(Repo *repo, Written *w, const char *id)
{
	int left = 0;
	for (int i = 0; i < w->n; i++) {
		WsError e;
		ws_error_clear(&e);
		if (store_remove(repo_store(repo), w->keys[i], &e) != 0 && e.cls != WS_NOT_FOUND) {
			log_report_warning(&e);
			left++;
		}
	}
	if (left > 0)
		log_warning("%d objects of the failed backup \"%s\" are left in the repository", left, id);
	else if (w->n > 0)
		log_info("removed the %d objects of the failed backup \"%s\"", w->n, id);
}

static void written_free(Written *w)
{
	for (int i = 0; i < w->n; i++)
		free(w->keys[i]);
	free(w->keys);
}

typedef struct StreamReader {
	BbStream *bs;
	Progress *progress;
} StreamReader;

static int stream_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err)
{
	StreamReader *r = ctx;
	int rc = bb_stream_read(r->bs, buf, cap, got, err);
	if (rc == 0 && *got > 0)
		progress_show(r->progress, bb_stream_bytes(r->bs), false);
	return rc;
}

/* Every part of the stream into an object, recorded in meta. */
static int store_parts(Repo *repo, BbStream *bs, BackupMeta *meta, Written *w, Progress *progress,
		       WsError *err)
{
	StreamReader rd = {bs, progress};
	char key[STORE_KEY_MAX];
	BbPart part;
	int rc;

	while ((rc = bb_stream_next(bs, &part, err)) == 1) {
		ObjInfo info;
		if (backup_key(meta->epoch, meta->id, part.name, key, sizeof(key)) != 0)
			return ws_error(err, WS_FATAL, "repository key for \"%s\" is too long", part.name);
		rc = repo_put_object(repo, key, stream_read, &rd, OBJ_SIZE_UNKNOWN, true, &info, err);
		if (rc != 0) {
			if (strstr(err->msg, part.name) == NULL)
				ws_error_prefix(err, "could not store \"%s\" of the backup", part.name);
			return rc;
		}
		written_add(w, key);
		BackupObject *obj;
		if (part.kind == BB_PART_ARCHIVE) {
			const BbTablespace *t = part.tablespace;
			obj = &backup_meta_add_tablespace(meta, t->is_base, t->oid, t->location)->obj;
		} else {
			meta->has_manifest = true;
			obj = &meta->manifest;
			snprintf(obj->name, sizeof(obj->name), "%s", part.name);
		}
		obj->size = info.content_size;
		obj->stored_size = info.stored_size;
		memcpy(obj->sha256, info.sha256, 32);
		log_debug("stored \"%s\" (%" PRIu64 " bytes, %" PRIu64 " stored)", key, info.content_size,
			  info.stored_size);
	}
	return rc;
}

/* ---- waiting for the WAL ---- */

typedef struct HeadSink {
	unsigned char head[WAL_LONG_HEADER_SIZE];
	size_t have;
} HeadSink;

static int head_write(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	(void)err;
	HeadSink *h = ctx;
	size_t k = sizeof(h->head) - h->have;
	if (k > len)
		k = len;
	memcpy(h->head + h->have, buf, k);
	h->have += k;
	return 0;
}

/* The WAL file read whole and verified: object checks, size and, for segments, page header. */
static int verify_wal(Repo *repo, const BackupMeta *m, const RepoEpoch *epoch, const WalName *name,
		      WsError *err)
{
	char key[STORE_KEY_MAX];
	HeadSink head = {.have = 0};
	ObjInfo info;
	bool segment = name->kind == WAL_SEGMENT;

	if (repo_key_wal(epoch, name, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "repository key for \"%s\" is too long", name->name);
	int rc = repo_get_object(repo, key, segment ? m->seg_size : HISTORY_FILE_MAX, head_write, &head,
				 &info, err);
	if (rc != 0)
		return rc;
	if (!segment)
		return 0;
	if (info.content_size != m->seg_size)
		return ws_error(err, WS_CORRUPT,
				"WAL file \"%s\" in the repository has %" PRIu64 " bytes, expected %" PRIu32,
				name->name, info.content_size, m->seg_size);
	return wal_page_check(head.head, head.have, m->pg_major, m->sysid, m->seg_size,
			      walname_segno(name, m->seg_size), name->name, err);
}

/*
 * Said every WAL_PROGRESS_S while waiting for a WAL file: which, for how long,
 * and what pg_stat_archiver says (a warning when archiving is failing).
 */
static void wait_progress(PqConn *sql, const char *wal, double waited, long timeout)
{
	char archived[160] = "(none)", failed[160] = "";
	ArchiverStat st;
	WsError e;

	ws_error_clear(&e);
	if (sql == NULL || archcheck_archiver(sql, &st, &e) != 0) {
		if (log_get_level() >= LOG_LEVEL_WARNING)
			fprintf(stderr,
				"%s: waiting %.0f s of %ld for WAL file \"%s\" (pg_stat_archiver: %s)\n",
				log_progname(), waited, timeout, wal,
				sql == NULL ? "not readable over a replication connection" : e.msg);
		return;
	}
	if (st.last_archived_wal[0])
		snprintf(archived, sizeof(archived), "\"%s\" at %s", st.last_archived_wal,
			 st.last_archived_time);
	if (st.last_failed_wal[0])
		snprintf(failed, sizeof(failed), ", last_failed_wal \"%s\" at %s", st.last_failed_wal,
			 st.last_failed_time);
	if (st.failing)
		log_warning(
			"waiting %.0f s of %ld for WAL file \"%s\": archiving is failing: pg_stat_archiver: "
			"failed_count %s%s, last_archived_wal %s (the server log has archive_command's "
			"messages)",
			waited, timeout, wal, st.failed_count, failed, archived);
	else if (log_get_level() >= LOG_LEVEL_WARNING)
		fprintf(stderr,
			"%s: waiting %.0f s of %ld for WAL file \"%s\": pg_stat_archiver: "
			"last_archived_wal %s, failed_count %s%s\n",
			log_progname(), waited, timeout, wal, archived, st.failed_count, failed);
}

/*
 * Every WAL file the backup needs, in order (the timeline's history file
 * first when it is not 1), until each is in the repository and verified.
 * The timeout runs from the last file found, so a long range that keeps
 * arriving is never cut short.
 */
static int wait_for_wal(Repo *repo, PqConn *sql, const BackupMeta *m, const RepoEpoch *epoch, long timeout,
			WsError *err)
{
	uint64_t first = m->start_lsn / m->seg_size;
	uint64_t last = (m->stop_lsn - 1) / m->seg_size;
	double deadline = clock_now() + (double)timeout;
	bool history = m->timeline > 1;
	int rc = 0;

	for (uint64_t segno = first; segno <= last;) {
		char text[WAL_NAME_MAX];
		WalName name;
		if (history)
			snprintf(text, sizeof(text), "%08" PRIX32 ".history", m->timeline);
		else
			wal_segment_name(m->timeline, segno, m->seg_size, text);
		if ((rc = walname_parse(text, &name, err)) != 0)
			return rc;
		bool waiting = false;
		double since = 0, said = 0;
		for (;;) {
			rc = verify_wal(repo, m, epoch, &name, err);
			if (rc == 0)
				break;
			if (rc != WS_NOT_FOUND && rc != WS_TRANSIENT) {
				ws_error_prefix(err, "WAL file \"%s\" needed by the backup is not usable",
						name.name);
				return rc;
			}
			if (clock_now() >= deadline) {
				ws_error(err, WS_FATAL,
					 "WAL file \"%s\" needed by the backup did not reach repository "
					 "\"%s\" within "
					 "%ld seconds",
					 name.name, repo_display(repo), timeout);
				ws_error_detail(
					err,
					"The backup needs every WAL file from %s to %s; without them it "
					"cannot be restored and is not kept.",
					m->start_wal, m->stop_wal);
				ws_error_hint(
					err,
					"Check that archive_command stores WAL with walship-push in this "
					"repository (see pg_stat_archiver and the server log), or wait "
					"longer with --wal-timeout.");
				return WS_FATAL;
			}
			if (!waiting) {
				log_info("waiting for WAL file \"%s\" to be archived", name.name);
				since = said = clock_now();
				waiting = true;
			} else if (clock_now() - said >= WAL_PROGRESS_S) {
				said = clock_now();
				wait_progress(sql, name.name, said - since, timeout);
			}
			clock_sleep(WAL_POLL_S);
		}
		log_debug("WAL file \"%s\" is archived and verified", name.name);
		deadline = clock_now() + (double)timeout;
		if (history)
			history = false;
		else
			segno++;
	}
	return 0;
}

/* ---- the command ---- */

static int write_manifest(Repo *repo, const BackupMeta *m, WsError *err)
{
	char key[STORE_KEY_MAX];
	char *json = backup_meta_serialize(m, err);
	if (json == NULL)
		return WS_FATAL;
	if (backup_key(m->epoch, m->id, BACKUP_META_NAME, key, sizeof(key)) != 0) {
		free(json);
		return ws_error(err, WS_FATAL, "repository key for the backup's %s is too long",
				BACKUP_META_NAME);
	}
	MemReader src = {json, strlen(json), 0};
	int rc;
	/* Plain JSON to read by hand, except where everything must be encrypted and authenticated. */
	if (repo_encrypted(repo))
		rc = repo_put_object(repo, key, mem_reader_read, &src, src.len, true, NULL, err);
	else
		rc = store_put(repo_store(repo), key, mem_reader_read, &src, true, err);
	free(json);
	return rc;
}

/* backup "ID" complete: SIZE, stored SIZE, DURATION */
static void print_summary(const BackupMeta *meta, double took)
{
	uint64_t size = meta->has_manifest ? meta->manifest.size : 0;
	uint64_t stored = meta->has_manifest ? meta->manifest.stored_size : 0;
	char s1[32], s2[32], d[32];
	for (int i = 0; i < meta->n_tablespaces; i++) {
		size += meta->tablespaces[i].obj.size;
		stored += meta->tablespaces[i].obj.stored_size;
	}
	printf("backup \"%s\" complete: %s, stored %s, %s\n", meta->id, fmt_size(size, s1, sizeof(s1)),
	       fmt_size(stored, s2, sizeof(s2)), duration_str(took, d, sizeof(d)));
	fflush(stdout);
}

/*
 * The backup's id and what manifest.json says of the server; then the
 * configuration outside the data directory, stored first (base.tar does not
 * hold it) and counted in written so that a failure removes it.
 */
static int begin_meta(Repo *repo, const BackupOptions *opt, const RepoEpoch *epoch, const ServerInfo *si,
		      BackupMeta *meta, Written *written, WsError *err)
{
	time_t start = time(NULL);
	int rc;

	snprintf(meta->epoch, sizeof(meta->epoch), "%s", epoch->id);
	if ((rc = choose_id(repo, epoch->id, start, meta->id, err)) != 0)
		return rc;
	meta->label = xasprintf("walship backup %s", meta->id);
	meta->sysid = si->sysid;
	meta->server_version_num = si->version;
	meta->pg_major = si->major;
	meta->seg_size = si->seg_size;
	clock_utc_iso((int64_t)start, meta->start_time);

	bool config_stored = false;
	rc = backup_config_save(repo, opt->dbname, si->sysid, meta, &config_stored, err);
	if (config_stored) {
		char key[STORE_KEY_MAX];
		if (backup_key(meta->epoch, meta->id, BACKUP_CONFIG_OBJECT, key, sizeof(key)) == 0)
			written_add(written, key);
	}
	return rc;
}

int cmd_backup(const Config *cfg, const BackupOptions *opt, WsError *err)
{
	BackupConn conn = {0};
	PqConn *sql = NULL; /* a plain connection beside the replication one: pg_stat_archiver */
	Progress progress = {0};
	Repo *repo = NULL;
	RepoLock *lock = NULL;
	BbStream *bs = NULL;
	BackupMeta *meta = backup_meta_new();
	Written written = {0};
	ServerInfo si;
	ClusterInfo ci;
	const RepoEpoch *epoch;
	char *command = NULL;
	bool quiet = log_get_level() <= LOG_LEVEL_ERROR;
	double start_mono = clock_now();
	uint32_t stop_tli;
	int rc;

	conn.progress = &progress;
	if ((rc = repo_open(cfg, &repo, err)) != 0)
		goto done;
	/* A prune must not remove the WAL this backup waits for, nor take it for an interrupted one. */
	if ((rc = repo_lock_acquire(repo, cfg, "backup", &lock, err)) != 0)
		goto done;
	if ((rc = connect_server(opt->dbname, &conn, err)) != 0)
		goto done;
	if ((rc = identify_server(conn.conn, &si, err)) != 0)
		goto done;

	/* The server must be the cluster the repository archives (the newest epoch, as for pushes). */
	memset(&ci, 0, sizeof(ci));
	ci.control.sysid = si.sysid;
	ci.control.seg_size = si.seg_size;
	ci.pg_major = si.major;
	if ((rc = cluster_push_epoch(repo_meta(repo), &ci, repo_display(repo), &epoch, err)) != 0)
		goto done;
	if ((rc = check_archiving(cfg, opt->dbname, conn.conn, repo, epoch, si.tli, &sql, err)) != 0)
		goto done;

	if ((rc = begin_meta(repo, opt, epoch, &si, meta, &written, err)) != 0)
		goto done;

	command = bb_command(si.version, meta->label, true);
	log_info("starting backup \"%s\" of the server (PostgreSQL %d, system identifier %" PRIu64 ")",
		 meta->id, si.version / 10000, si.sysid);
	log_debug("sending %s", command);
	if ((rc = pq_send_query(conn.conn, command, "BASE_BACKUP", err)) != 0)
		goto done;
	bs = bb_stream_new(&pq_bb_ops, conn.conn, si.version, true);
	if ((rc = bb_stream_start(bs, err)) != 0)
		goto done;
	meta->start_lsn = bb_stream_start_lsn(bs);
	meta->timeline = bb_stream_start_tli(bs);

	progress.on = !quiet && isatty(STDERR_FILENO);
	progress.total = bb_stream_estimate(bs);
	progress.start = progress.last = clock_now();
	rc = store_parts(repo, bs, meta, &written, &progress, err);
	progress_show(&progress, bb_stream_bytes(bs), true);
	progress_break(&progress);
	if (rc != 0)
		goto done;

	if ((rc = bb_stream_finish(bs, &meta->stop_lsn, &stop_tli, err)) != 0)
		goto done;
	clock_utc_iso((int64_t)time(NULL), meta->stop_time);
	pq_close(conn.conn);
	conn.conn = NULL;
	if (stop_tli != meta->timeline) {
		rc = ws_error(err, WS_FATAL,
			      "the server's timeline changed from %" PRIu32 " to %" PRIu32
			      " during the backup",
			      meta->timeline, stop_tli);
		ws_error_hint(err, "The server was promoted while the backup ran: take a new backup.");
		goto done;
	}
	backup_meta_set_wal_names(meta);
	log_info("backup \"%s\" streamed; waiting for WAL files %s to %s", meta->id, meta->start_wal,
		 meta->stop_wal);

	if ((rc = wait_for_wal(repo, sql, meta, epoch, opt->wal_timeout, err)) != 0)
		goto done;
	if ((rc = write_manifest(repo, meta, err)) != 0)
		goto done;

	if (!quiet)
		print_summary(meta, clock_now() - start_mono);
done:
	if (rc != 0 && repo != NULL) {
		/* Close first: the server then ends its side of the backup. */
		pq_close(conn.conn);
		conn.conn = NULL;
		written_remove_all(repo, &written, meta->id);
	}
	written_free(&written);
	bb_stream_free(bs);
	pq_close(conn.conn);
	pq_close(sql);
	free(command);
	backup_meta_free(meta);
	repo_lock_release(lock);
	repo_free(repo);
	return rc;
}
