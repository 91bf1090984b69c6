/*
 * check.c - walship check: proves, against the running server, that it
 * archives into this repository.
 *
 * Settings are read from the server (what it really runs with, not what a
 * file says), each check prints one line, and every check runs even after a
 * failure so that one run lists everything to change.  The WAL switch comes
 * last and only when everything before it holds: it is the end-to-end proof,
 * and it would only time out otherwise.
 */
#include "cmd/check.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "pg/archcheck.h"
#include "pg/basebackup.h"
#include "pg/cluster.h"
#include "pg/pgmajor.h"
#include "pg/pqconn.h"
#include "pg/walname.h"
#include "repo/keys.h"
#include "repo/repo.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

/* How often the repository is asked again for the switched WAL file. */
#define POLL_S 0.25

/* ---- output: one line per check ---- */

typedef struct CheckRun {
	PqConn *conn;
	int failed;
	const char *repo_url; /* the repo setting, as given */
	const char *repo;     /* as the store shows it */
} CheckRun;

static void print_line(const char *tag, const char *text)
{
	/* One line each: values from the server may hold newlines. */
	fputs(tag, stdout);
	for (const char *p = text; *p; p++)
		putchar(*p == '\n' || *p == '\r' || *p == '\t' ? ' ' : *p);
	putchar('\n');
}

static void say(const char *tag, const WsError *e)
{
	print_line(tag, e->msg);
	if (e->detail[0])
		print_line("  detail: ", e->detail);
	if (e->hint[0])
		print_line("  hint: ", e->hint);
	fflush(stdout);
}

static void say_failed(CheckRun *r, const WsError *e)
{
	r->failed++;
	say("failed: ", e);
}

static void say_warning(const WsError *e)
{
	say("warning: ", e);
}

static void say_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say_ok(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	if (log_get_level() <= LOG_LEVEL_ERROR)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	print_line("ok: ", line);
	fflush(stdout);
}

/* A finding of pg/archcheck's checks as a line. */
static void say_finding(void *arg, ArchFinding kind, const WsError *e)
{
	CheckRun *r = arg;
	if (kind == ARCH_OK) {
		say_ok("%s", e->msg);
	} else if (kind == ARCH_SKIPPED) {
		if (log_get_level() > LOG_LEVEL_ERROR)
			print_line("skipped: ", e->msg);
		fflush(stdout);
	} else if (kind == ARCH_WARNING) {
		say_warning(e);
	} else {
		say_failed(r, e);
	}
}

/* ---- the server ---- */

static int connect_server(const char *dbname, PqConn **out, WsError *err)
{
	return pq_connect(dbname, false, "walship check",
			  "check needs a superuser (or a role allowed to run pg_switch_wal and to read "
			  "archive_command).",
			  out, err);
}

typedef struct Server {
	int version;
	int major;
	uint64_t sysid;
	uint32_t seg_size;
} Server;

static int identify(PqConn *conn, Server *sv, WsError *err)
{
	char v[128], *end;
	int rc;

	sv->version = pq_server_version(conn);
	if (sv->version < 100000) {
		ws_error(err, WS_FATAL, "the server's PostgreSQL version %d is not supported by walship",
			 sv->version);
		ws_error_hint(err, "walship archives PostgreSQL 10 and later.");
		return WS_FATAL;
	}
	sv->major = pg_major_of_version_num(sv->version);

	if ((rc = pq_query_value(conn, "SELECT pg_is_in_recovery()", v, sizeof(v), err)) != 0)
		return rc;
	if (strcmp(v, "t") == 0) {
		ws_error(err, WS_FATAL, "the server is in recovery (a standby)");
		ws_error_detail(
			err, "A standby cannot switch WAL, and with archive_mode = on it archives nothing.");
		ws_error_hint(err, "Run walship check against the primary.");
		return WS_FATAL;
	}

	if ((rc = pq_query_value(conn, "SELECT system_identifier FROM pg_control_system()", v, sizeof(v),
				 err)) != 0)
		return rc;
	errno = 0;
	unsigned long long id = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || end == v || id == 0)
		return ws_error(err, WS_FATAL, "unexpected system identifier \"%.64s\" from the server", v);
	sv->sysid = (uint64_t)id;

	if ((rc = pq_query_value(conn, "SHOW wal_segment_size", v, sizeof(v), err)) != 0)
		return rc;
	uint64_t seg;
	if (pg_size_parse(v, &seg) != 0 || seg > UINT32_MAX || !wal_segsize_valid((uint32_t)seg))
		return ws_error(err, WS_FATAL, "unexpected wal_segment_size \"%.64s\" from the server", v);
	sv->seg_size = (uint32_t)seg;
	return 0;
}

/* ---- the checks ---- */

static void check_epoch(CheckRun *r, const Repo *repo, const Server *sv, const RepoEpoch **epoch)
{
	ClusterInfo ci = {0};
	WsError e;
	char v[16], s[32];

	ws_error_clear(&e);
	ci.control.sysid = sv->sysid;
	ci.control.seg_size = sv->seg_size;
	ci.pg_major = sv->major;
	if (cluster_push_epoch(repo_meta(repo), &ci, r->repo, epoch, &e) != 0) {
		*epoch = NULL;
		/* cluster.c speaks of a data directory: here the cluster is the server. */
		say_failed(r, &e);
		return;
	}
	say_ok("repository \"%s\" belongs to this cluster (epoch \"%s\": system identifier %" PRIu64
	       ", PostgreSQL %s, %s WAL segments)",
	       r->repo, (*epoch)->id, sv->sysid, pg_major_str(sv->major, v, sizeof(v)),
	       cluster_size_str(sv->seg_size, s, sizeof(s)));
}

/* restore_command must be able to tell "not in the archive" from a failure: ask for a key that cannot exist.
 */
static int check_not_found(CheckRun *r, Repo *repo, const RepoEpoch *epoch)
{
	unsigned char rnd[8];
	char hex[17], key[STORE_KEY_MAX];
	StoreStat st;
	WsError e;

	ws_error_clear(&e);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0x5a, sizeof(rnd));
	hex_encode(rnd, sizeof(rnd), hex);
	snprintf(key, sizeof(key), "%s/wal/check-%s", epoch ? epoch->id : repo_meta(repo)->epochs[0].id, hex);
	int rc = store_stat(repo_store(repo), key, &st, &e);
	if (rc == WS_NOT_FOUND) {
		say_ok("repository \"%s\" answers \"not found\" for a missing WAL file", r->repo);
		return 0;
	}
	if (rc == WS_INTERRUPTED) {
		return rc;
	}
	if (rc == 0) {
		ws_error(&e, WS_FATAL, "repository \"%s\" reports a key that cannot exist (\"%s\")", r->repo,
			 key);
		ws_error_hint(
			&e, "Check the repository's storage: walship-fetch relies on \"not found\" answers.");
	} else {
		ws_error_prefix(&e, "repository \"%s\" does not answer \"not found\" for a missing WAL file",
				r->repo);
		if (e.detail[0] == '\0')
			ws_error_detail(
				&e,
				"restore_command must tell a file the archive does not have from a failure; "
				"with this answer recovery could never end normally.");
	}
	say_failed(r, &e);
	return 0;
}

/* What pg_stat_archiver says, as a detail for a file that did not arrive. */
static void archiver_detail(CheckRun *r, const char *wal, WsError *e)
{
	ArchiverStat st;
	WsError ignored;
	ws_error_clear(&ignored);
	if (archcheck_archiver(r->conn, &st, &ignored) != 0) {
		ws_error_detail(e, "pg_stat_archiver could not be read: %s.", ignored.msg);
		return;
	}
	char last[256] = "It has archived nothing since its statistics were reset.";
	if (st.last_archived_wal[0])
		snprintf(last, sizeof(last), "It last archived \"%s\" at %s.", st.last_archived_wal,
			 st.last_archived_time);

	if (st.failing)
		ws_error_detail(
			e,
			"pg_stat_archiver: archive_command has failed %s times, last on \"%s\" at %s. "
			"%s",
			st.failed_count, st.last_failed_wal, st.last_failed_time, last);
	else if (st.last_archived_wal[0] && strncmp(st.last_archived_wal, wal, 24) >= 0)
		ws_error_detail(e,
				"pg_stat_archiver: the server archived \"%s\" at %s, but it is not in this "
				"repository: archive_command stores WAL elsewhere.",
				st.last_archived_wal, st.last_archived_time);
	else
		ws_error_detail(
			e,
			"pg_stat_archiver reports no failure since the last success. %s The archiver may "
			"be behind.",
			last);
}

/* The history file of the timeline the server writes (past 1): recovery along it needs it. */
static int check_history(CheckRun *r, Repo *repo, const RepoEpoch *epoch, ArchCheck *ac, WsError *err)
{
	char wal[64];
	WalName name;
	int rc;

	if (epoch == NULL)
		return 0; /* the repository is not this cluster's: said above */
	if ((rc = pq_query_value(r->conn, "SELECT pg_walfile_name(pg_current_wal_lsn())", wal, sizeof(wal),
				 err)) != 0)
		return rc;
	if (walname_parse(wal, &name, err) != 0 || name.kind != WAL_SEGMENT)
		return ws_error(err, WS_FATAL, "unexpected WAL file name \"%.64s\" from the server", wal);
	return archcheck_history(ac, repo, epoch, name.tli, err);
}

static int check_switch(CheckRun *r, Repo *repo, const RepoEpoch *epoch, int timeout, WsError *err)
{
	char wal[64], key[STORE_KEY_MAX];
	WalName name;
	WsError e;
	int rc;

	ws_error_clear(&e);
	/* A switch on an empty segment does nothing: write a WAL record first, touching no table. */
	char ignored[64];
	if ((rc = pq_query_value(r->conn, "SELECT pg_logical_emit_message(false, 'walship', 'check')",
				 ignored, sizeof(ignored), err)) != 0)
		return rc;
	if ((rc = pq_query_value(r->conn, "SELECT pg_walfile_name(pg_switch_wal())", wal, sizeof(wal),
				 err)) != 0)
		return rc;
	if (walname_parse(wal, &name, err) != 0 || name.kind != WAL_SEGMENT)
		return ws_error(err, WS_FATAL, "unexpected WAL file name \"%.64s\" from the server", wal);
	if (repo_key_wal(epoch, &name, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "repository key for \"%s\" is too long", wal);
	log_info("switched to a new WAL file; waiting for \"%s\" in repository \"%s\"", wal, r->repo);

	double start = clock_now(), deadline = start + timeout;
	for (;;) {
		StoreStat st;
		WsError se;
		ws_error_clear(&se);
		rc = store_stat(repo_store(repo), key, &st, &se);
		if (rc == 0) {
			say_ok("WAL file \"%s\" reached repository \"%s\" %.1f seconds after the switch", wal,
			       r->repo, clock_now() - start);
			return 0;
		}
		if (rc == WS_INTERRUPTED) {
			*err = se;
			return rc;
		}
		if (rc != WS_NOT_FOUND && rc != WS_TRANSIENT) {
			ws_error_prefix(&se, "could not look for WAL file \"%s\" in the repository", wal);
			say_failed(r, &se);
			return 0;
		}
		if (cleanup_interrupted())
			return ws_error(err, WS_INTERRUPTED, "interrupted while waiting for WAL file \"%s\"",
					wal);
		if (clock_now() >= deadline)
			break;
		(void)clock_sleep_interruptible(POLL_S);
	}
	ws_error(&e, WS_FATAL,
		 "WAL file \"%s\" did not reach repository \"%s\" within %d seconds of the switch", wal,
		 r->repo, timeout);
	archiver_detail(r, wal, &e);
	ws_error_hint(&e, "See the server log for walship-push's messages and fix what they report, or wait "
			  "longer with --timeout.");
	say_failed(r, &e);
	return 0;
}

int cmd_check(const Config *cfg, const CheckOptions *opt, WsError *err)
{
	CheckRun r = {0};
	Repo *repo = NULL;
	Server sv = {0};
	const RepoEpoch *epoch = NULL;
	bool archiving = false;
	int timeout = opt->timeout > 0 ? opt->timeout : CHECK_TIMEOUT_DEFAULT;
	int rc;

	r.repo_url = config_get(cfg, "repo");
	if ((rc = connect_server(opt->dbname, &r.conn, err)) != 0)
		goto done;
	if ((rc = identify(r.conn, &sv, err)) != 0)
		goto done;
	if ((rc = repo_open(cfg, &repo, err)) != 0)
		goto done;
	r.repo = repo_display(repo);

	ArchCheck ac = {r.conn, r.repo_url, "walship check", say_finding, &r};
	if ((rc = archcheck_settings(&ac, &archiving, err)) != 0)
		goto done;
	check_epoch(&r, repo, &sv, &epoch);
	if ((rc = check_not_found(&r, repo, epoch)) != 0)
		goto done;
	if ((rc = check_history(&r, repo, epoch, &ac, err)) != 0)
		goto done;

	if (r.failed > 0) {
		if (log_get_level() > LOG_LEVEL_ERROR)
			print_line("skipped: ", "WAL switch (fix the failures above first)");
	} else if ((rc = check_switch(&r, repo, epoch, timeout, err)) != 0) {
		goto done;
	}

	if (r.failed > 0) {
		printf("%d check%s failed\n", r.failed, r.failed == 1 ? "" : "s");
		rc = CHECK_EXIT_FAILED;
	} else if (log_get_level() > LOG_LEVEL_ERROR) {
		printf("all checks passed: the server archives into repository \"%s\"\n", r.repo);
	}
	fflush(stdout);
done:
	repo_free(repo);
	pq_close(r.conn);
	return rc;
}
