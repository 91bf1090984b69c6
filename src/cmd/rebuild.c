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

#include <libpq-fe.h>

#include "cmd/rebuild_plan.h"
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

#define PGCONF_MAX     (16 * 1024 * 1024)
#define LOG_TAIL_LINES 20
/* While rebuild waits for recovery, a line every this many seconds says so. */
#define WAIT_NOTE_SECONDS 30
#define LOG_NAME          "walship-rebuild.log"

/* ---- target times ---- */

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int bad_time(const char *s, WsError *err)
{
	ws_error(err, WS_USAGE, "invalid value \"%s\" for --target-time", s);
	ws_error_detail(err, "Use a date, a time and a time zone, e.g. \"2026-11-25 19:11:52.67+00\" or "
			     "\"2026-11-25T19:11:52Z\".");
	return WS_USAGE;
}

int rebuild_parse_time(const char *s, int64_t *secs, int *usec, char out[REBUILD_TIME_MAX], WsError *err)
{
	const char *p = s;
	int y, mo, d, h, mi, sec = 0, us = 0, nfrac = 0, off = 0;
	char frac[8] = "";

	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
		return bad_time(s, err);
	if (*p != ' ' && *p != 'T' && *p != 't')
		return bad_time(s, err);
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
		return bad_time(s, err);
	if (*p == ':') {
		p++;
		if (digits(&p, 2, &sec))
			return bad_time(s, err);
		if (*p == '.') {
			p++;
			while (isdigit((unsigned char)*p)) {
				if (nfrac == 6)
					return bad_time(s, err);
				frac[nfrac++] = *p++;
			}
			if (nfrac == 0)
				return bad_time(s, err);
			frac[nfrac] = '\0';
			for (int i = 0; i < 6; i++)
				us = us * 10 + (i < nfrac ? frac[i] - '0' : 0);
		}
	}
	while (*p == ' ')
		p++;
	if (*p == '\0') {
		ws_error(err, WS_USAGE, "--target-time \"%s\" has no time zone", s);
		ws_error_detail(err, "PostgreSQL would read it in the server's time zone.");
		ws_error_hint(err, "Add one, e.g. \"%s+00\" for UTC.", s);
		return WS_USAGE;
	}
	if (strcmp(p, "Z") == 0 || strcmp(p, "z") == 0 || strcasecmp(p, "UTC") == 0 ||
	    strcasecmp(p, "GMT") == 0) {
		off = 0;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
		if (digits(&p, 2, &oh))
			return bad_time(s, err);
		if (*p == ':')
			p++;
		if (*p != '\0' && digits(&p, 2, &om))
			return bad_time(s, err);
		if (*p != '\0' || oh > 15 || om > 59)
			return bad_time(s, err);
		off = sign * (oh * 3600 + om * 60);
	} else {
		return bad_time(s, err);
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 || y < 1970)
		return bad_time(s, err);

	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	/* timegm normalises 31 February into March: a day that does not exist is refused. */
	if (tm.tm_mday != d || tm.tm_mon != mo - 1)
		return bad_time(s, err);
	t -= off;
	struct tm u;
	gmtime_r(&t, &u);
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%d %H:%M:%S", &u);
	if (nfrac > 0)
		snprintf(out, REBUILD_TIME_MAX, "%s.%s+00", base, frac);
	else
		snprintf(out, REBUILD_TIME_MAX, "%s+00", base);
	*secs = (int64_t)t;
	*usec = us;
	return 0;
}

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
	to.allow_unterminated = pg_base_backup_tar_unterminated(s->epoch->pg_major);
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

static int remove_if_exists(const char *pgdata, const char *name, WsError *err);

/* ---- starting the server and reading the outcome ---- */

typedef enum Want { WANT_PROMOTED, WANT_PAUSED, WANT_SHUTDOWN, WANT_STANDBY } Want;

typedef struct Owner {
	uid_t uid;
	gid_t gid;
	char name[128];
} Owner;

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

/* Run argv as the owner and wait for it; its exit status, or -1 with err filled. */
static int run_as(const Owner *ow, char *const argv[], WsError *err)
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
		if (geteuid() == 0 &&
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

typedef struct PidFile {
	long pid;
	int port;
	char sockdir[1024];
	char listen[256];
} PidFile;

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

/* The last part (up to 256 KiB) of the server log, NUL-terminated; "" if unreadable. */
static char *log_tail_text(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = xcalloc(1, 256 * 1024 + 1);
	if (fd < 0)
		return buf;
	if (fstat(fd, &st) == 0 && st.st_size > 256 * 1024)
		(void)lseek(fd, st.st_size - 256 * 1024, SEEK_SET);
	ssize_t n = fs_read_full(fd, buf, 256 * 1024);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

static void print_log_tail(const char *path)
{
	char *t = log_tail_text(path);
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
static void log_last_line(const char *path, char *buf, size_t size)
{
	char *t = log_tail_text(path);
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
static bool log_find(const char *path, const char *what, char *buf, size_t size)
{
	char *t = log_tail_text(path);
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

static PGconn *connect_as(const Owner *ow, const PidFile *pf)
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
	PGconn *c = PQconnectdbParams(keys, vals, 0);
	if (root && (seteuid(0) != 0 || setegid(0) != 0))
		abort(); /* cannot go on with the wrong identity */
	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* One row of text values (n columns) into vals[i] (size each); false on any error. */
static bool query_row(PGconn *c, const char *sql, int n, char vals[][64])
{
	PGresult *r = PQexec(c, sql);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == n;
	for (int i = 0; ok && i < n; i++)
		snprintf(vals[i], 64, "%s", PQgetisnull(r, 0, i) ? "" : PQgetvalue(r, 0, i));
	PQclear(r);
	return ok;
}

/* Start the server with pg_ctl as the owner, its log in logf. */
static int start_server(const char *pgdata, int pg_major, const RebuildOptions *o, const Owner *ow,
			char *logf, WsError *err)
{
	char *pg_ctl = find_pg_ctl(pg_major);
	char *popt = o->port > 0 ? xasprintf("-p %d", o->port) : NULL;
	char *argv[12];
	int n = 0, rc = 0;

	if (pg_ctl == NULL) {
		char v[16];
		rc = ws_error(err, WS_FATAL, "pg_ctl of PostgreSQL %s not found",
			      pg_major_str(pg_major, v, sizeof(v)));
		ws_error_hint(err, "Install it, or start the server yourself: the data directory is ready.");
		goto done;
	}
	if (ow->uid == 0) {
		rc = ws_error(err, WS_FATAL,
			      "the data directory is owned by root: PostgreSQL will not run as root");
		goto done;
	}
	/* A log copied in with the backup (of a server rebuilt earlier) would answer for this run. */
	if ((rc = remove_if_exists(pgdata, LOG_NAME, err)) != 0)
		goto done;
	argv[n++] = pg_ctl;
	argv[n++] = (char *)"-D";
	argv[n++] = (char *)pgdata;
	argv[n++] = (char *)"-l";
	argv[n++] = logf;
	if (popt != NULL) {
		argv[n++] = (char *)"-o";
		argv[n++] = popt;
	}
	argv[n++] = (char *)"-W";
	argv[n++] = (char *)"start";
	argv[n] = NULL;
	fflush(stdout);
	int st = run_as(ow, argv, err);
	if (st < 0) {
		rc = st;
	} else if (st != 0) {
		print_log_tail(logf);
		rc = ws_error(err, WS_FATAL, "pg_ctl start failed with exit code %d", st);
	}
done:
	free(popt);
	free(pg_ctl);
	return rc;
}

/* The server is gone: shut down at its target as asked (0), or recovery failed. */
static int server_gone(Want want, const RebuildOptions *o, const char *logf, WsError *err)
{
	char line[1024];
	if ((want == WANT_SHUTDOWN || want == WANT_PAUSED) &&
	    log_find(logf, "shutdown at recovery target", line, sizeof(line))) {
		if (log_find(logf, "recovery stopping", line, sizeof(line)))
			printf("%s\n", line);
		printf("recovery reached its target; the server shut down as asked\n");
		return 0;
	}
	print_log_tail(logf);
	if (log_find(logf, "recovery ended before configured recovery target was reached", line,
		     sizeof(line))) {
		ws_error(err, WS_FATAL, "recovery ended before the target was reached");
		ws_error_detail(err, "The WAL in the repository ends before \"%s\".",
				o->target_value ? o->target_value : "the target");
	} else {
		ws_error(err, WS_FATAL, "the server stopped during recovery");
	}
	ws_error_hint(err, "The server log is \"%s\".", logf);
	return WS_FATAL;
}

/*
 * Watch the started server until it does what want says (0, *c connected
 * unless it shut down), or fails.
 */
static int wait_outcome(const char *pgdata, const Owner *ow, Want want, const RebuildOptions *o,
			const char *logf, PGconn **c, PidFile *pf, WsError *err)
{
	bool seen = false;
	char line[1024];
	double t0 = clock_now(), noted = t0;

	for (;;) {
		PidFile now;
		bool have = read_pidfile(pgdata, &now);
		if (have) {
			*pf = now;
			seen = true;
		}
		bool alive = seen && have && (kill((pid_t)pf->pid, 0) == 0 || errno == EPERM);
		/*
		 * A server that fails at once can be gone before its postmaster.pid was
		 * ever seen: an invalid setting (two recovery targets, say) ends the
		 * postmaster with FATAL before it writes one.
		 */
		bool gone = seen ? !alive
				 : log_find(logf, "database system is shut down", line, sizeof(line)) ||
					    log_find(logf, "FATAL:", line, sizeof(line)) ||
					    log_find(logf, "PANIC:", line, sizeof(line));
		if (gone)
			return server_gone(want, o, logf, err);
		/* Recovery may rightly take hours; never silently. */
		if (clock_now() - noted >= WAIT_NOTE_SECONDS) {
			noted = clock_now();
			log_last_line(logf, line, sizeof(line));
			printf("still waiting for the server after %.0f s; its log's last line: %s\n",
			       noted - t0, line[0] ? line : "(none yet)");
			fflush(stdout);
		}
		if (!seen && clock_now() - t0 > 60) {
			print_log_tail(logf);
			return ws_error(err, WS_FATAL, "the server did not start within 60 seconds");
		}
		if (seen && want != WANT_SHUTDOWN && *c == NULL)
			*c = connect_as(ow, pf);
		if (*c != NULL) {
			char v[2][64];
			if (!query_row(
				    *c,
				    "SELECT pg_is_in_recovery()::text, "
				    "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused()::text END",
				    2, v)) {
				PQfinish(*c);
				*c = NULL;
			} else if ((want == WANT_PROMOTED && strcmp(v[0], "false") == 0) ||
				   (want == WANT_PAUSED && strcmp(v[1], "true") == 0) ||
				   (want == WANT_STANDBY && strcmp(v[0], "true") == 0)) {
				return 0;
			} else if (want != WANT_PROMOTED && strcmp(v[0], "false") == 0) {
				return ws_error(err, WS_FATAL,
						"recovery ended and the server was promoted instead of %s",
						want == WANT_STANDBY ? "running as a standby"
								     : "pausing at the target");
			}
		}
		clock_sleep(0.3);
	}
}

/* Where recovery ended (or where the standby is) and where the server listens. */
static void print_outcome(PGconn *c, Want want, const RebuildOptions *o, const RebuildPlan *pl,
			  const char *logf, const PidFile *pf, const char *pgdata)
{
	char v[3][64], line[1024];
	if (want == WANT_PROMOTED &&
	    query_row(c,
		      "SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn()), "
		      "pg_last_xact_replay_timestamp()::text",
		      3, v)) {
		char tli_hex[9];
		snprintf(tli_hex, sizeof(tli_hex), "%.8s", v[1]);
		if (o->target != TARGET_LATEST && log_find(logf, "recovery stopping", line, sizeof(line)))
			printf("%s\n", line);
		printf("recovery ended and the server was promoted: at %s on timeline %" PRIu32
		       ", last replayed transaction at %s\n",
		       v[0], (uint32_t)strtoul(tli_hex, NULL, 16), v[2][0] ? v[2] : "(none)");
	} else if (query_row(c,
			     "SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()::text",
			     2, v)) {
		uint64_t l = 0;
		(void)lsn_parse(v[0], &l, NULL);
		if (want == WANT_PAUSED && log_find(logf, "recovery stopping", line, sizeof(line)))
			printf("%s\n", line);
		printf("%s %s on timeline %" PRIu32 ", last replayed transaction at %s\n",
		       want == WANT_PAUSED ? "recovery reached its target and is paused at"
					   : "the standby is running; replayed up to",
		       v[0], pl->path ? history_tli_of_lsn(pl->path, l) : pl->tli, v[1][0] ? v[1] : "(none)");
	}
	printf("server running: port %d, socket directory \"%s\", data directory \"%s\"\n", pf->port,
	       pf->sockdir, pgdata);
}

/*
 * Start the server and wait for the outcome; *ended tells whether recovery
 * is over (the server was promoted: it will fetch nothing more).
 */
static int start_and_wait(const char *pgdata, int pg_major, const RebuildOptions *o, const RebuildPlan *pl,
			  const Owner *ow, bool *ended, WsError *err)
{
	char *logf = xasprintf("%s/%s", pgdata, LOG_NAME);
	Want want = o->standby                                                           ? WANT_STANDBY
		    : o->target == TARGET_LATEST                                         ? WANT_PROMOTED
		    : o->target_action == NULL || strcmp(o->target_action, "pause") == 0 ? WANT_PAUSED
		    : strcmp(o->target_action, "promote") == 0                           ? WANT_PROMOTED
											 : WANT_SHUTDOWN;
	PGconn *c = NULL;
	PidFile pf;
	int rc;

	memset(&pf, 0, sizeof(pf));
	if ((rc = start_server(pgdata, pg_major, o, ow, logf, err)) != 0)
		goto done;
	log_info("server started, log in \"%s\"; waiting for recovery", logf);
	if ((rc = wait_outcome(pgdata, ow, want, o, logf, &c, &pf, err)) != 0)
		goto done;
	/* Promoted: recovery will fetch nothing more.  Paused or shut down at the target, it may. */
	*ended = want == WANT_PROMOTED;
	if (c != NULL)
		print_outcome(c, want, o, pl, logf, &pf, pgdata);
	/* The targets did their job; left in place they would stop the next start or rebuild. */
	if (want != WANT_STANDBY)
		rc = recovery_targets_clear(pgdata, pg_major, err);
done:
	PQfinish(c);
	free(logf);
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
	Owner ow;
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
	const Owner *ow = &r->ow;
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
	const Owner *ow = &r->ow;
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
	    (!pg_has_recovery_conf(major) && (rc = remove_if_exists(pgdata, "recovery.conf", err)) != 0))
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
	       pg_has_recovery_conf(r.scan.epoch->pg_major) ? "recovery.conf"
	       : o->standby                                 ? "standby.signal"
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
