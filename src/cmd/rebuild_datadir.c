/*
 * rebuild_datadir.c - walship rebuild's data-directory preparation (see
 * rebuild_datadir.h).
 */
#include "cmd/rebuild_datadir.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/pgmajor.h"
#include "repo/keys.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"

/* ---- the data directory ---- */

/* Refuse while postmaster.pid names a running process (or one we may not signal: someone else's). */
int rebuild_check_postmaster(const char *pgdata, const char *stop_cmd, WsError *err)
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
			ws_error_hint(err, "Stop it first (%s); --force does not override this.", stop_cmd);
			rc = WS_FATAL;
		}
	}
	free(text);
	free(path);
	return rc;
}

/* The owner of what rebuild creates: the data directory's, else the postgres user's (when root). */
void rebuild_choose_owner(const char *pgdata, bool exists, uid_t *uid, gid_t *gid, const char **why)
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
static int rebuild_write_file(const char *dir, const char *name, const char *data, size_t len, uid_t uid,
			      gid_t gid, WsError *err)
{
	FsFileOpts o = {.mode = 0600, .chown = geteuid() == 0, .uid = uid, .gid = gid, .durable = true};
	char *path = xasprintf("%s/%s", dir, name);
	int rc = fs_write_file(path, data, len, &o, err);
	free(path);
	return rc;
}

int rebuild_make_dir_owned(const char *path, uid_t uid, gid_t gid, WsError *err)
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

int rebuild_tablespace_dests(const BackupMeta *b, const RebuildOptions *o, RebuildTablespace **out, int *nout,
			     WsError *err)
{
	RebuildTablespace *d = xcalloc((size_t)(b->n_tablespaces + 1), sizeof(*d));
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
int rebuild_check_tablespace_dirs(const RebuildTablespace *d, int n, WsError *err)
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

static void progress_fn(void *ctx, uint64_t bytes)
{
	RebuildProgress *p = ctx;
	time_t now = time(NULL);
	if (!p->on || now == p->last)
		return;
	p->last = now;
	uint64_t done = p->base + bytes;
	fprintf(stderr, "\r%" PRIu64 " of %" PRIu64 " MiB (%" PRIu64 "%%)\033[K", done >> 20, p->total >> 20,
		p->total ? done * 100 / p->total : 100);
	p->shown = true;
}

int rebuild_extract(Repo *repo, const CatalogEpoch *s, const BackupMeta *b, const BackupTablespaceInfo *t,
		    const char *dest, uid_t uid, gid_t gid, RebuildProgress *pr, Tarx **keep, WsError *err)
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

/* name beside this program, made one shell word; NULL with err filled when it is not there. */
static char *program_word(const char *name, WsError *err)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0 || (size_t)n >= sizeof(exe) - 1) {
		ws_error_errno(err, WS_FATAL, errno, "could not find where this program is installed");
		return NULL;
	}
	exe[n] = '\0';
	char *dir = fs_dirname(exe);
	char *path = xasprintf("%s/%s", dir, name);
	free(dir);
	char *word = NULL;
	if (access(path, X_OK) != 0) {
		ws_error_errno(err, WS_FATAL, errno, "cannot use \"%s\" in the recovery settings", path);
		ws_error_hint(err, "Install %s in the same directory as walship.", name);
	} else {
		word = cmd_word(path);
	}
	free(path);
	return word;
}

/* "--name=value" as one shell word. */
static char *option_word(const char *name, const char *value)
{
	char *opt = xasprintf("--%s=%s", name, value);
	char *w = cmd_word(opt);
	free(opt);
	return w;
}

/* walship-fetch beside this program, with the same repository and configuration file. */
int rebuild_restore_command(const Config *cfg, const RebuildOptions *o, const char *epoch, char **out,
			    WsError *err)
{
	char *w_fetch = program_word("walship-fetch", err);
	if (w_fetch == NULL)
		return WS_FATAL;
	char *w_repo = option_word("repo", config_get(cfg, "repo"));
	char *w_conf = o->config_path ? option_word("config", o->config_path) : NULL;
	char *w_epoch = option_word("epoch", epoch);
	*out = xasprintf("%s %s%s%s %s --mode=%s %%f %%p", w_fetch, w_conf ? w_conf : "", w_conf ? " " : "",
			 w_repo, w_epoch, o->standby ? "standby" : "recovery");
	free(w_epoch);
	free(w_conf);
	free(w_repo);
	free(w_fetch);
	return 0;
}

int rebuild_end_command(const RebuildOptions *o, char **out, WsError *err)
{
	char *w_walship = program_word("walship", err);
	if (w_walship == NULL)
		return WS_FATAL;
	char *w_conf = o->config_path ? option_word("config", o->config_path) : NULL;
	char *w_pgdata = option_word("pgdata", o->pgdata);
	*out = xasprintf("%s %s%srebuild --recovery-ended %s", w_walship, w_conf ? w_conf : "",
			 w_conf ? " " : "", w_pgdata);
	free(w_pgdata);
	free(w_conf);
	free(w_walship);
	return 0;
}

/* ---- small files ---- */

int rebuild_write_tablespace_map(const char *pgdata, const RebuildTablespace *d, int n, uid_t uid, gid_t gid,
				 WsError *err)
{
	Text t = {0};
	for (int i = 0; i < n; i++) {
		char oid[16];
		snprintf(oid, sizeof(oid), "%" PRIu32 " ", d[i].oid);
		text_str(&t, oid);
		text_str(&t, d[i].dir);
		text_str(&t, "\n");
	}
	int rc = rebuild_write_file(pgdata, "tablespace_map", t.s ? t.s : "", t.len, uid, gid, err);
	free(t.s);
	return rc;
}

int rebuild_remove_if_exists(const char *pgdata, const char *name, WsError *err)
{
	char *p = xasprintf("%s/%s", pgdata, name);
	int rc = 0;
	if (unlink(p) != 0 && errno != ENOENT)
		rc = ws_error_errno(err, WS_FATAL, errno, "could not remove \"%s\"", p);
	free(p);
	return rc;
}
