/*
 * rebuild_server.c - walship rebuild --start (see rebuild_server.h): pg_ctl
 * as the data directory's owner, then postmaster.pid, the server's log and
 * pg_is_in_recovery() until the server does what the settings ask.
 */
#include "cmd/rebuild_server.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/rebuild_config.h"
#include "pg/history.h"
#include "pg/lsn.h"
#include "pg/pgcontrol.h"
#include "pg/pgcommon.h"
#include "pg/pqconn.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"

#define LOG_TAIL_LINES 20
/* While rebuild waits for recovery, a line every this many seconds says so. */
#define WAIT_NOTE_SECONDS 30
#define LOG_NAME          "walship-rebuild.log"

/* postmaster.pid's fields rebuild reads. */
typedef struct PidFile {
	long pid;
	int port;
	char sockdir[1024];
	char listen[256];
} PidFile;

struct RebuildServer {
	char *pgdata;
	char *logf;
	off_t log_from; /* where this start's lines begin in logf (a Debian cluster's log is appended to) */
	RebuildOwner ow;
	PqConn *conn; /* once the server accepts connections (not while it shuts down at the target) */
	PidFile pf;
};

RebuildWant rebuild_want(const RebuildOptions *o)
{
	return o->standby                                                           ? REBUILD_WANT_STANDBY
	       : o->target == TARGET_LATEST                                         ? REBUILD_WANT_PROMOTED
	       : o->target_action == NULL || strcmp(o->target_action, "pause") == 0 ? REBUILD_WANT_PAUSED
	       : strcmp(o->target_action, "promote") == 0                           ? REBUILD_WANT_PROMOTED
										    : REBUILD_WANT_SHUTDOWN;
}

static char *find_pg_ctl(int pg_major)
{
	char v[16];
	char *p = xasprintf("/usr/lib/postgresql/%s/bin/pg_ctl", pg_major_str(pg_major, v, sizeof(v)));
	if (access(p, X_OK) == 0)
		return p;
	free(p);
	const char *path = getenv("PATH");
	char *copy = xstrdup(path ? path : "/usr/bin:/bin");
	char *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		p = xasprintf("%s/pg_ctl", d);
		if (access(p, X_OK) == 0) {
			free(copy);
			return p;
		}
		free(p);
	}
	free(copy);
	return NULL;
}

/* Run argv as the owner (NULL: as this process) and wait for it; its exit status, or -1 with err filled. */
static int run_as(const RebuildOwner *ow, char *const argv[], WsError *err)
{
	pid_t pid = fork();
	if (pid < 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not fork");
	if (pid == 0) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		/* pg_ctl -W says only "server starting"; errors go to stderr. */
		fd = open("/dev/null", O_WRONLY);
		if (fd >= 0)
			dup2(fd, STDOUT_FILENO);
		if (ow != NULL && geteuid() == 0 &&
		    (initgroups(ow->name, ow->gid) != 0 || setgid(ow->gid) != 0 || setuid(ow->uid) != 0)) {
			fprintf(stderr, "%s: error: could not switch to user \"%s\": %s\n", log_progname(),
				ow->name, strerror(errno));
			_exit(1);
		}
		execv(argv[0], argv);
		fprintf(stderr, "%s: error: could not run \"%s\": %s\n", log_progname(), argv[0],
			strerror(errno));
		_exit(1);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return ws_error_errno(err, WS_FATAL, errno, "could not wait for \"%s\"", argv[0]);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* postmaster.pid: 1 pid, 2 data directory, 3 start time, 4 port, 5 socket directory, 6 listen address. */
static bool read_pidfile(const char *pgdata, PidFile *pf)
{
	char *path = xasprintf("%s/postmaster.pid", pgdata);
	char *text = NULL;
	size_t len;
	bool ok = false;
	memset(pf, 0, sizeof(*pf));
	if (fs_read_small(path, 64 * 1024, &text, &len, NULL) == 0) {
		char *save = NULL, *line;
		int i = 0;
		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
			if (i == 0)
				pf->pid = strtol(line, NULL, 10);
			else if (i == 3)
				pf->port = (int)strtol(line, NULL, 10);
			else if (i == 4)
				snprintf(pf->sockdir, sizeof(pf->sockdir), "%s", line);
			else if (i == 5)
				snprintf(pf->listen, sizeof(pf->listen), "%s", line);
		}
		ok = pf->pid > 0 && i >= 6;
	}
	free(text);
	free(path);
	return ok;
}

/* The last part (up to 256 KiB) of this start's lines in the server log, NUL-terminated; "" if unreadable. */
static char *log_tail_text(const RebuildServer *s)
{
	int fd = open(s->logf, O_RDONLY | O_CLOEXEC);
	off_t log_from = s->log_from;
	struct stat st;
	char *buf = xcalloc(1, 256 * 1024 + 1);
	if (fd < 0)
		return buf;
	if (fstat(fd, &st) == 0) {
		off_t from = st.st_size > 256 * 1024 ? st.st_size - 256 * 1024 : 0;
		(void)lseek(fd, from > log_from ? from : log_from, SEEK_SET);
	}
	ssize_t n = fs_read_full(fd, buf, 256 * 1024);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

static void print_log_tail(const RebuildServer *s)
{
	const char *path = s->logf;
	char *t = log_tail_text(s);
	const char *p = t + strlen(t);
	int lines = 0;
	while (p > t && lines <= LOG_TAIL_LINES)
		if (*--p == '\n' && p[1] != '\0')
			lines++;
	if (*p == '\n')
		p++;
	fflush(stdout);
	fprintf(stderr, "%s: server log \"%s\", last lines:\n", log_progname(), path);
	for (const char *q = p; *q;) {
		const char *e = strchr(q, '\n');
		size_t n = e ? (size_t)(e - q) : strlen(q);
		fprintf(stderr, "  %.*s\n", (int)n, q);
		q += n + (e != NULL);
	}
	free(t);
}

/* The log's last non-empty line into buf ("" when there is none). */
static void log_last_line(const RebuildServer *s, char *buf, size_t size)
{
	char *t = log_tail_text(s);
	size_t n = strlen(t);
	while (n > 0 && t[n - 1] == '\n')
		n--;
	size_t start = n;
	while (start > 0 && t[start - 1] != '\n')
		start--;
	snprintf(buf, size, "%.*s", (int)(n - start), t + start);
	free(t);
}

/* The last line of the log containing what, into buf; false if none. */
static bool log_find(const RebuildServer *s, const char *what, char *buf, size_t size)
{
	char *t = log_tail_text(s);
	char *hit = NULL;
	for (char *p = strstr(t, what); p; p = strstr(p + 1, what))
		hit = p;
	if (hit != NULL) {
		char *start = hit;
		while (start > t && start[-1] != '\n')
			start--;
		char *end = strchr(hit, '\n');
		snprintf(buf, size, "%.*s", (int)(end ? end - start : (long)strlen(start)), start);
	}
	free(t);
	return hit != NULL;
}

static PqConn *connect_as(const RebuildOwner *ow, const PidFile *pf)
{
	char port[16];
	const char *host = pf->sockdir[0] ? pf->sockdir : pf->listen;
	if (strcmp(host, "*") == 0 || host[0] == '\0')
		host = "127.0.0.1";
	snprintf(port, sizeof(port), "%d", pf->port);
	const char *const keys[] = {"host", "port", "dbname", "user", "connect_timeout", "application_name",
				    NULL};
	const char *const vals[] = {host, port, "postgres", ow->name, "5", "walship rebuild", NULL};
	/* Peer authentication reads the effective user at connect time: be the owner for that moment. */
	bool root = geteuid() == 0;
	if (root && (setegid(ow->gid) != 0 || seteuid(ow->uid) != 0)) {
		if (seteuid(0) != 0 || setegid(0) != 0)
			abort();
		return NULL;
	}
	PqConn *c = pq_connect_params(keys, vals);
	if (root && (seteuid(0) != 0 || setegid(0) != 0))
		abort(); /* cannot go on with the wrong identity */
	return c;
}

/* One row of text values (n columns, "" for NULL) into vals[i]; false on any error (the server may be going).
 */
static bool query_row(PqConn *c, const char *sql, int n, char vals[][64])
{
	PqRow *r = NULL;
	WsError ignored;
	ws_error_clear(&ignored);
	bool ok = pq_query_row(c, sql, n, false, &r, &ignored) == 0;
	for (int i = 0; ok && i < n; i++)
		snprintf(vals[i], 64, "%s", pq_row_value(r, i));
	pq_row_free(r);
	return ok;
}

/* pg_ctl -D pgdata -l walship-rebuild.log -o "-c lc_messages=C [-p port]" -W start, as the owner. */
static int start_pg_ctl(RebuildServer *s, int pg_major, int port, WsError *err)
{
	char *pg_ctl = find_pg_ctl(pg_major);
	/* The outcome is read from the log by PostgreSQL's English messages, whatever postgresql.conf says.
	 */
	char *popt = port > 0 ? xasprintf("-c lc_messages=C -p %d", port) : xstrdup("-c lc_messages=C");
	char *argv[12];
	int n = 0, rc = 0;

	s->logf = xasprintf("%s/%s", s->pgdata, LOG_NAME);
	if (pg_ctl == NULL) {
		char v[16];
		rc = ws_error(err, WS_FATAL, "pg_ctl of PostgreSQL %s not found",
			      pg_major_str(pg_major, v, sizeof(v)));
		ws_error_hint(err, "Install it, or start the server yourself: the data directory is ready.");
		goto done;
	}
	/* A server already there would answer for the copy, or make it fail after a long recovery. */
	if ((rc = rebuild_config_check_port(s->pgdata, port, err)) != 0)
		goto done;
	/* A log copied in with the backup (of a server rebuilt earlier) would answer for this run. */
	if (unlink(s->logf) != 0 && errno != ENOENT) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not remove \"%s\"", s->logf);
		goto done;
	}
	argv[n++] = pg_ctl;
	argv[n++] = (char *)"-D";
	argv[n++] = s->pgdata;
	argv[n++] = (char *)"-l";
	argv[n++] = s->logf;
	argv[n++] = (char *)"-o";
	argv[n++] = popt;
	argv[n++] = (char *)"-W";
	argv[n++] = (char *)"start";
	argv[n] = NULL;
	fflush(stdout);
	int st = run_as(&s->ow, argv, err);
	if (st < 0) {
		rc = st;
	} else if (st != 0) {
		print_log_tail(s);
		rc = ws_error(err, WS_FATAL, "pg_ctl start failed with exit code %d", st);
	}
done:
	free(popt);
	free(pg_ctl);
	return rc;
}

/*
 * pg_ctlcluster VERSION NAME start, as this process (as root it goes through
 * systemd where systemd runs the clusters): the cluster's own configuration
 * in /etc and its own log, read from where it ends now.  A server that stops
 * at once makes pg_ctlcluster fail; the wait that follows says why.
 */
static int start_pg_ctlcluster(RebuildServer *s, const PgCommonCluster *deb, int port, WsError *err)
{
	char *popt = port > 0 ? xasprintf("-c port=%d", port) : NULL;
	char *argv[8];
	int n = 0;
	struct stat st;

	s->logf = xstrdup(deb->log_file);
	s->log_from = stat(s->logf, &st) == 0 ? st.st_size : 0;
	argv[n++] = (char *)"/usr/bin/pg_ctlcluster";
	if (popt != NULL) {
		argv[n++] = (char *)"-o";
		argv[n++] = popt;
	}
	argv[n++] = deb->version;
	argv[n++] = deb->name;
	argv[n++] = (char *)"start";
	argv[n] = NULL;
	printf("starting the cluster with: pg_ctlcluster %s %s start%s%s\n", deb->version, deb->name,
	       popt ? " -o " : "", popt ? popt : "");
	fflush(stdout);
	int rc = run_as(NULL, argv, err);
	free(popt);
	if (rc < 0)
		return rc;
	if (rc != 0)
		log_warning("pg_ctlcluster %s %s start failed with exit code %d", deb->version, deb->name,
			    rc);
	return 0;
}

int rebuild_server_start(const char *pgdata, int pg_major, int port, const PgCommonCluster *deb,
			 const RebuildOwner *ow, RebuildServer **out, WsError *err)
{
	RebuildServer *s = xcalloc(1, sizeof(*s));

	*out = s;
	s->pgdata = xstrdup(pgdata);
	s->ow = *ow;
	if (ow->uid == 0) {
		s->logf = xstrdup("(none)");
		return ws_error(err, WS_FATAL,
				"the data directory is owned by root: PostgreSQL will not run as root");
	}
	return deb != NULL ? start_pg_ctlcluster(s, deb, port, err) : start_pg_ctl(s, pg_major, port, err);
}

const char *rebuild_server_log(const RebuildServer *s)
{
	return s->logf;
}

/* Is the server gone before doing what was asked? */
static bool server_gone(const RebuildServer *s, bool seen, bool have)
{
	char line[1024];
	if (seen)
		return !(have && (kill((pid_t)s->pf.pid, 0) == 0 || errno == EPERM));
	/*
	 * A server that fails at once can be gone before its postmaster.pid was
	 * ever seen: an invalid setting (two recovery targets, say) ends the
	 * postmaster with FATAL before it writes one.
	 */
	return log_find(s, "database system is shut down", line, sizeof(line)) ||
	       log_find(s, "FATAL:", line, sizeof(line)) || log_find(s, "PANIC:", line, sizeof(line));
}

/* Why the server is gone: shut down at its target as asked, or recovery failed. */
static RebuildOutcome gone_outcome(const RebuildServer *s, RebuildWant want)
{
	char line[1024];
	if ((want == REBUILD_WANT_SHUTDOWN || want == REBUILD_WANT_PAUSED) &&
	    log_find(s, "shutdown at recovery target", line, sizeof(line)))
		return REBUILD_SHUT_DOWN;
	if (log_find(s, "recovery ended before configured recovery target was reached", line, sizeof(line)))
		return REBUILD_ENDED_EARLY;
	return REBUILD_STOPPED;
}

RebuildOutcome rebuild_server_wait(RebuildServer *s, RebuildWant want)
{
	bool seen = false;
	char line[1024];
	double t0 = clock_now(), noted = t0;

	for (;;) {
		PidFile now;
		bool have = read_pidfile(s->pgdata, &now);
		if (have) {
			s->pf = now;
			seen = true;
		}
		if (server_gone(s, seen, have))
			return gone_outcome(s, want);
		/* Recovery may rightly take hours; never silently. */
		if (clock_now() - noted >= WAIT_NOTE_SECONDS) {
			noted = clock_now();
			log_last_line(s, line, sizeof(line));
			printf("still waiting for the server after %.0f s; its log's last line: %s\n",
			       noted - t0, line[0] ? line : "(none yet)");
			fflush(stdout);
		}
		if (!seen && clock_now() - t0 > 60)
			return REBUILD_NOT_STARTED;
		if (seen && want != REBUILD_WANT_SHUTDOWN && s->conn == NULL)
			s->conn = connect_as(&s->ow, &s->pf);
		if (s->conn != NULL) {
			char v[2][64];
			if (!query_row(
				    s->conn,
				    "SELECT pg_is_in_recovery()::text, "
				    "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused()::text END",
				    2, v)) {
				pq_close(s->conn);
				s->conn = NULL;
			} else if ((want == REBUILD_WANT_PROMOTED && strcmp(v[0], "false") == 0) ||
				   (want == REBUILD_WANT_PAUSED && strcmp(v[1], "true") == 0) ||
				   (want == REBUILD_WANT_STANDBY && strcmp(v[0], "true") == 0)) {
				return REBUILD_REACHED;
			} else if (want != REBUILD_WANT_PROMOTED && strcmp(v[0], "false") == 0) {
				return REBUILD_PROMOTED_INSTEAD;
			}
		}
		clock_sleep(0.3);
	}
}

/* Where recovery ended (or where the standby is) and where the server listens. */
static void print_outcome(const RebuildServer *s, RebuildWant want, const RebuildOptions *o,
			  const RebuildPlan *pl)
{
	PqConn *c = s->conn;
	char v[3][64], line[1024];
	if (want == REBUILD_WANT_PROMOTED &&
	    query_row(c,
		      "SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn()), "
		      "pg_last_xact_replay_timestamp()::text",
		      3, v)) {
		char tli_hex[9];
		snprintf(tli_hex, sizeof(tli_hex), "%.8s", v[1]);
		if (o->target != TARGET_LATEST && log_find(s, "recovery stopping", line, sizeof(line)))
			printf("%s\n", line);
		printf("recovery ended and the server was promoted: at %s on timeline %" PRIu32
		       ", last replayed transaction at %s\n",
		       v[0], (uint32_t)strtoul(tli_hex, NULL, 16), v[2][0] ? v[2] : "(none)");
	} else if (query_row(c,
			     "SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()::text",
			     2, v)) {
		uint64_t l = 0;
		(void)lsn_parse(v[0], &l, NULL);
		if (want == REBUILD_WANT_PAUSED && log_find(s, "recovery stopping", line, sizeof(line)))
			printf("%s\n", line);
		printf("%s %s on timeline %" PRIu32 ", last replayed transaction at %s\n",
		       want == REBUILD_WANT_PAUSED ? "recovery reached its target and is paused at"
						   : "the standby is running; replayed up to",
		       v[0], pl->path ? history_tli_of_lsn(pl->path, l) : pl->tli, v[1][0] ? v[1] : "(none)");
	}
	printf("server running: port %d, socket directory \"%s\", data directory \"%s\"\n", s->pf.port,
	       s->pf.sockdir, s->pgdata);
}

int rebuild_server_report(RebuildServer *s, RebuildWant want, RebuildOutcome out, const RebuildOptions *o,
			  const RebuildPlan *pl, WsError *err)
{
	char line[1024];
	switch (out) {
	case REBUILD_REACHED:
		break;
	case REBUILD_SHUT_DOWN:
		if (log_find(s, "recovery stopping", line, sizeof(line)))
			printf("%s\n", line);
		printf("recovery reached its target; the server shut down as asked\n");
		break;
	case REBUILD_ENDED_EARLY:
		print_log_tail(s);
		ws_error(err, WS_FATAL, "recovery ended before the target was reached");
		if (o->target == TARGET_TIME)
			ws_error_detail(
				err,
				"PostgreSQL stops at the first transaction that ends after \"%s\"; the "
				"timeline it followed has none in the repository (its WAL ends first, "
				"or it branched off before one, as after a point-in-time restore).",
				o->target_value);
		else
			ws_error_detail(err, "The WAL in the repository ends before \"%s\".",
					o->target_value ? o->target_value : "the target");
		ws_error_hint(err,
			      "walship list shows each timeline's end; --target-timeline=N follows another "
			      "timeline. The server log is \"%s\".",
			      s->logf);
		return WS_FATAL;
	case REBUILD_STOPPED:
		print_log_tail(s);
		ws_error(err, WS_FATAL, "the server stopped during recovery");
		ws_error_hint(err, "The server log is \"%s\".", s->logf);
		return WS_FATAL;
	case REBUILD_NOT_STARTED:
		print_log_tail(s);
		return ws_error(err, WS_FATAL, "the server did not start within 60 seconds");
	case REBUILD_PROMOTED_INSTEAD:
		return ws_error(err, WS_FATAL, "recovery ended and the server was promoted instead of %s",
				want == REBUILD_WANT_STANDBY ? "running as a standby"
							     : "pausing at the target");
	}
	/* Shut down at the target while pausing, a connection made before is to a server gone: as before. */
	if (s->conn != NULL)
		print_outcome(s, want, o, pl);
	return 0;
}

void rebuild_server_free(RebuildServer *s)
{
	if (s == NULL)
		return;
	pq_close(s->conn);
	free(s->logf);
	free(s->pgdata);
	free(s);
}
