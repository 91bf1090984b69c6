/*
 * sftp.c - the SFTP store driver, through libssh2: the driver table, opening
 * a handle, and the operations (put, get, stat, list, remove).
 *
 * One SSH connection per handle, opened (host key checked, user
 * authenticated, root proven to exist) in store_sftp_open and reused for
 * every operation; after a lost connection the next operation connects again
 * (sftp_conn.c).  A put writes ".<base>.<random>.tmp" beside the final name,
 * sends fsync@openssh.com, closes, moves it into place and syncs the
 * directories up to the root (sftp_ext.c).  A key a no-overwrite put finds
 * taken gets the same syncs before WS_EXISTS is answered (exists_durably).
 * "No such file" is "not found" only once proven (store_prove_absent):
 * OpenSSH sends that status for ENOTDIR and ELOOP too.
 */
#include "store/driver.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/sftp_conn.h"
#include "store/sftp_ext.h"
#include "store/sftp_session.h"
#include "store/sftp_util.h"
#include "util/fsutil.h"
#include "util/mem.h"

#define SFTP_BUF_SIZE      (256 * 1024)
#define SFTP_DIR_MODE      0750
#define SFTP_FILE_MODE     0640
#define SFTP_TEMP_TRIES    10
#define SFTP_TEMP_BASE_MAX 200
#define SFTP_NAME_MAX      4096

static const char *cfg_get(const Config *cfg, const char *key, const char *def)
{
	const char *v = cfg ? config_get(cfg, key) : NULL;
	return v ? v : def;
}

static char *expand_home(const SftpStore *ss, const char *path)
{
	if (strcmp(path, "~") == 0)
		return xstrdup(ss->home);
	if (strncmp(path, "~/", 2) == 0)
		return xasprintf("%s/%s", ss->home, path + 2);
	return xstrdup(path);
}

/* ---------------------------------------------------------------------------------------------
 * Paths, the root, directories
 */

static char *remote_path(const SftpStore *ss, const char *key)
{
	if (strcmp(ss->root, "/") == 0)
		return xasprintf("/%s", key);
	return xasprintf("%s/%s", ss->root, key);
}

static int root_missing(SftpStore *ss, WsError *err)
{
	ws_error(err, WS_FATAL, "repository directory \"%s\" does not exist on \"%s\"", ss->root, ss->server);
	ws_error_hint(err,
		      "Create it with walship init, check the path in the repository URL, or check that the "
		      "volume holding it is mounted on the server.");
	return WS_FATAL;
}

/* The root must be a directory; checked at open and whenever something is missing. */
static int check_root(SftpStore *ss, WsError *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	if (libssh2_sftp_stat_ex(ss->sftp, ss->root, (unsigned)strlen(ss->root), LIBSSH2_SFTP_STAT, &a) !=
	    0) {
		unsigned long fx = 0;
		int rc = sftp_session_fail(ss, &SFTP_OP_OPEN, ss->root, &fx, err);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE)
			return root_missing(ss, err);
		if (rc == WS_FATAL)
			ws_error(err, WS_FATAL, "could not access repository directory \"%s\" on \"%s\": %s",
				 ss->root, ss->server, sftp_session_fx_text(fx));
		return rc;
	}
	if ((a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && !LIBSSH2_SFTP_S_ISDIR(a.permissions))
		return ws_error(err, WS_FATAL, "repository \"%s\" on \"%s\" is not a directory", ss->root,
				ss->server);
	return 0;
}

/* StoreLookFn for store_prove_absent: SFTP lstat (or stat) below the root. */
static int sftp_look(void *ctx, const char *rel, bool follow, StoreNode *node, WsError *err)
{
	SftpStore *ss = ctx;
	LIBSSH2_SFTP_ATTRIBUTES a;
	*node = STORE_NODE_DIR;
	if (rel[0] == '\0')
		return check_root(ss, err);

	char *path = remote_path(ss, rel);
	int rc = 0;
	if (libssh2_sftp_stat_ex(ss->sftp, path, (unsigned)strlen(path),
				 follow ? LIBSSH2_SFTP_STAT : LIBSSH2_SFTP_LSTAT, &a) != 0) {
		unsigned long fx = 0;
		rc = sftp_session_fail(ss, &SFTP_OP_STAT, rel, &fx, err);
		/* OpenSSH answers ENOTDIR and ELOOP as "no such file" too: the walk up tells them apart. */
		if (fx == LIBSSH2_FX_NO_SUCH_FILE) {
			*node = STORE_NODE_ABSENT;
			rc = 0;
		}
	} else if (!(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS)) {
		*node = STORE_NODE_OTHER;
	} else if (LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
		*node = STORE_NODE_DIR;
	} else if (LIBSSH2_SFTP_S_ISREG(a.permissions)) {
		*node = STORE_NODE_FILE;
	} else if (LIBSSH2_SFTP_S_ISLNK(a.permissions)) {
		*node = STORE_NODE_LINK;
	} else {
		*node = STORE_NODE_OTHER;
	}
	free(path);
	return rc;
}

/* After "no such file" for key: "not found" only if proven (store_prove_absent). */
static int not_found(SftpStore *ss, const char *key, WsError *err)
{
	return store_prove_absent(key, ss->base.display, sftp_look, ss, err);
}

/* lstat: 1 if a directory, 0 if something else, negative (err set) on failure. */
static int is_dir(SftpStore *ss, const char *path, const SftpOp *op, const char *key, WsError *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	if (libssh2_sftp_stat_ex(ss->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT, &a) != 0)
		return sftp_session_fail(ss, op, key, NULL, err);
	return (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a.permissions) ? 1 : 0;
}

/*
 * mkdir path; an existing directory is fine (OpenSSH answers "failure" for
 * EEXIST, so look).  *created tells whether this call made it.
 */
static int make_dir(SftpStore *ss, const char *path, const SftpOp *op, const char *key, bool *created,
		    WsError *err)
{
	*created = false;
	if (libssh2_sftp_mkdir_ex(ss->sftp, path, (unsigned)strlen(path), SFTP_DIR_MODE) == 0) {
		*created = true;
		return 0;
	}
	unsigned long fx = sftp_session_last_fx(ss);
	if (fx == 0)
		return sftp_session_fail(ss, op, key, NULL, err);
	WsError ignored;
	int d = is_dir(ss, path, op, key, &ignored);
	if (d == 1)
		return 0;
	if (d < 0 && ss->sftp == NULL)
		return sftp_session_fail(ss, op, key, NULL, err);
	return sftp_session_status_fail(ss, fx, op, key, err);
}

/*
 * Create the directories of key below the root.  Nothing is synced here: each
 * put syncs the whole chain of directories once its object is in place
 * (sync_dirs).
 */
static int make_parents(SftpStore *ss, const char *key, WsError *err)
{
	char *path = remote_path(ss, key);
	char *p = path + strlen(path) - strlen(key);
	int rc = 0;

	while ((p = strchr(p, '/')) != NULL) {
		bool created = false;
		*p = '\0';
		rc = make_dir(ss, path, &SFTP_OP_WRITE, key, &created, err);
		if (rc != 0 && ss->sftp != NULL && sftp_session_last_fx(ss) == LIBSSH2_FX_NO_SUCH_FILE) {
			WsError rerr;
			if (check_root(ss, &rerr) != 0)
				*err = rerr;
		}
		*p++ = '/';
		if (rc != 0)
			break;
	}
	free(path);
	return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The operations
 */

/*
 * A no-overwrite put found key taken at path (a: its lstat): make what is
 * there durable before answering WS_EXISTS, which callers may take for
 * "stored".  Its writer may have died (or its directory sync failed with the
 * object left in place) between the rename and the directory sync: so
 * fsync@openssh.com for the file, then the directory sync for its directory
 * and each one up to the root (a put creates missing ones).
 */
static int exists_durably(SftpStore *ss, const char *key, const char *path, const LIBSSH2_SFTP_ATTRIBUTES *a,
			  WsError *err)
{
	if (!(a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) || !LIBSSH2_SFTP_S_ISREG(a->permissions)) {
		if ((a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a->permissions))
			return store_dir_at_key(key, ss->base.display, err);
		return ws_error(err, WS_FATAL, "object \"%s\" in repository \"%s\" is not a regular file",
				key, ss->base.display);
	}
	LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(ss->sftp, path, (unsigned)strlen(path),
						      LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
	if (h == NULL)
		return sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
	int rc = sftp_ext_fsync(ss, h, key, err);
	if (ss->session != NULL)
		libssh2_sftp_close_handle(h);
	if (rc != 0)
		return rc;

	rc = sftp_ext_sync_up(ss, path, key, err);
	if (rc != 0)
		return rc;
	return ws_error(err, WS_EXISTS, "\"%s\" already exists in repository \"%s\"", key, ss->base.display);
}

/* What each operation on key checks first: the key's form (no temp names), then the connection. */
static int begin(SftpStore *ss, const char *key, WsError *err)
{
	int rc = store_key_reserved(key, "SFTP", err);
	return rc != 0 ? rc : sftp_conn_ensure(ss, err);
}

/*
 * Create the temp file ".<base>.<random>.tmp" beside path, making the
 * directories of key when they are missing: 0 with *h open, or the error.
 * *tmp (the caller frees it) holds the last name tried.
 */
static int open_temp(SftpStore *ss, const char *key, const char *path, char **tmp, LIBSSH2_SFTP_HANDLE **h,
		     WsError *err)
{
	char *dir = fs_dirname(path);
	bool made_dirs = false;
	int rc = 0;

	*h = NULL;
	for (int i = 0; i < SFTP_TEMP_TRIES; i++) {
		char suffix[9];
		store_random_name(suffix, sizeof(suffix) - 1);
		free(*tmp);
		*tmp = xasprintf("%s/.%.*s.%s.tmp", dir, SFTP_TEMP_BASE_MAX, fs_basename(path), suffix);
		*h = libssh2_sftp_open_ex(ss->sftp, *tmp, (unsigned)strlen(*tmp),
					  LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL,
					  SFTP_FILE_MODE, LIBSSH2_SFTP_OPENFILE);
		if (*h != NULL)
			goto done;
		unsigned long fx = sftp_session_last_fx(ss);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE && !made_dirs) {
			rc = make_parents(ss, key, err);
			if (rc != 0)
				goto done;
			made_dirs = true;
			continue;
		}
		/* OpenSSH answers EEXIST with "failure": only then is another name worth a try. */
		if (fx == LIBSSH2_FX_FAILURE || fx == LIBSSH2_FX_FILE_ALREADY_EXISTS)
			continue;
		rc = sftp_session_fail(ss, &SFTP_OP_WRITE, key, &fx, err);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE) {
			WsError rerr;
			if (check_root(ss, &rerr) != 0)
				*err = rerr;
		}
		goto done;
	}
	rc = sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
done:
	free(dir);
	return rc;
}

/* Stream src into the open file h of key, then fsync@openssh.com. */
static int upload(SftpStore *ss, LIBSSH2_SFTP_HANDLE *h, const char *key, WsReader src, void *src_ctx,
		  WsError *err)
{
	unsigned char *buf = xmalloc(SFTP_BUF_SIZE);
	int rc = 0;

	for (;;) {
		size_t got = 0;
		rc = src(src_ctx, buf, SFTP_BUF_SIZE, &got, err);
		if (rc != 0)
			goto done;
		if (got == 0)
			break;
		/* One call per buffer: libssh2 splits it into pipelined write requests. */
		for (size_t off = 0; off < got;) {
			ssize_t n = libssh2_sftp_write(h, (const char *)buf + off, got - off);
			if (n < 0) {
				rc = sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
				goto done;
			}
			off += (size_t)n;
		}
	}
	rc = sftp_ext_fsync(ss, h, key, err);
done:
	free(buf);
	return rc;
}

/*
 * Move tmp to path without replacing anything: the SFTP v3 rename, which
 * OpenSSH implements as link()+unlink(), never replaces a name that exists.
 * A name taken answers WS_EXISTS once what is there is durable.
 */
static int rename_no_overwrite(SftpStore *ss, const char *key, const char *tmp, const char *path,
			       WsError *err)
{
	if (libssh2_sftp_rename_ex(ss->sftp, tmp, (unsigned)strlen(tmp), path, (unsigned)strlen(path), 0) ==
	    0)
		return 0;
	unsigned long fx = sftp_session_last_fx(ss);
	if (fx == 0)
		return sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
	LIBSSH2_SFTP_ATTRIBUTES a;
	if (libssh2_sftp_stat_ex(ss->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT, &a) == 0)
		return exists_durably(ss, key, path, &a, err);
	if (sftp_session_last_fx(ss) == 0)
		return sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
	return sftp_session_status_fail(ss, fx, &SFTP_OP_WRITE, key, err);
}

static int sftp_put(Store *s, const char *key, WsReader src, void *src_ctx, bool no_overwrite, WsError *err)
{
	SftpStore *ss = (SftpStore *)s;
	char *path = NULL, *tmp = NULL;
	LIBSSH2_SFTP_HANDLE *h = NULL;
	bool tmp_exists = false;
	int rc = begin(ss, key, err);
	if (rc != 0)
		return rc;

	path = remote_path(ss, key);
	rc = open_temp(ss, key, path, &tmp, &h, err);
	if (rc != 0)
		goto done;
	tmp_exists = true;
	rc = upload(ss, h, key, src, src_ctx, err);
	if (rc != 0)
		goto done;
	int crc = libssh2_sftp_close_handle(h);
	h = NULL;
	if (crc != 0) {
		rc = sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
		goto done;
	}

	if (no_overwrite)
		rc = rename_no_overwrite(ss, key, tmp, path, err);
	else
		rc = sftp_ext_posix_rename(ss, tmp, path, key, err);
	if (rc != 0)
		goto done;
	tmp_exists = false;

	rc = sftp_ext_sync_up(ss, path, key, err);
	/*
	 * The name may not survive a crash of the server: take a new object back,
	 * so that the caller's retry puts it again (a retry that still finds it,
	 * because this unlink failed too, syncs it before answering: see
	 * exists_durably).  A replaced object stays: removing it would lose the
	 * previous one too.
	 */
	if (rc != 0 && no_overwrite && ss->sftp != NULL)
		(void)libssh2_sftp_unlink_ex(ss->sftp, path, (unsigned)strlen(path));

done:
	if (h != NULL && ss->session != NULL)
		libssh2_sftp_close_handle(h);
	/* Only while the connection works: after a drop the temp name stays, invisible to list. */
	if (tmp_exists && ss->sftp != NULL)
		(void)libssh2_sftp_unlink_ex(ss->sftp, tmp, (unsigned)strlen(tmp));
	free(tmp);
	free(path);
	return rc;
}

static int sftp_get(Store *s, const char *key, uint64_t offset, uint64_t length, WsWriter sink,
		    void *sink_ctx, WsError *err)
{
	SftpStore *ss = (SftpStore *)s;
	unsigned char *buf = NULL;
	LIBSSH2_SFTP_HANDLE *h = NULL;
	LIBSSH2_SFTP_ATTRIBUTES a;
	uint64_t left = length;
	int rc = begin(ss, key, err);
	if (rc != 0)
		return rc;

	char *path = remote_path(ss, key);
	h = libssh2_sftp_open_ex(ss->sftp, path, (unsigned)strlen(path), LIBSSH2_FXF_READ, 0,
				 LIBSSH2_SFTP_OPENFILE);
	if (h == NULL) {
		unsigned long fx = 0;
		rc = sftp_session_fail(ss, &SFTP_OP_READ, key, &fx, err);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE)
			rc = not_found(ss, key, err);
		goto done;
	}
	if (libssh2_sftp_fstat_ex(h, &a, 0) != 0) {
		rc = sftp_session_fail(ss, &SFTP_OP_READ, key, NULL, err);
		goto done;
	}
	if (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) {
		if (LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
			rc = store_dir_at_key(key, ss->base.display, err);
			goto done;
		}
		if (!LIBSSH2_SFTP_S_ISREG(a.permissions)) {
			rc = ws_error(err, WS_FATAL,
				      "object \"%s\" in repository \"%s\" is not a regular file", key,
				      ss->base.display);
			goto done;
		}
	}
	if ((a.flags & LIBSSH2_SFTP_ATTR_SIZE) && offset >= a.filesize)
		goto done;

	libssh2_sftp_seek64(h, offset);
	buf = xmalloc(SFTP_BUF_SIZE);
	while (left > 0) {
		size_t want = left < SFTP_BUF_SIZE ? (size_t)left : SFTP_BUF_SIZE;
		ssize_t n = libssh2_sftp_read(h, (char *)buf, want);
		if (n < 0) {
			rc = sftp_session_fail(ss, &SFTP_OP_READ, key, NULL, err);
			goto done;
		}
		if (n == 0)
			break;
		rc = sink(sink_ctx, buf, (size_t)n, err);
		if (rc != 0)
			goto done;
		left -= (uint64_t)n;
	}

done:
	if (h != NULL && ss->session != NULL)
		libssh2_sftp_close_handle(h);
	free(buf);
	free(path);
	return rc;
}

static int sftp_stat(Store *s, const char *key, StoreStat *out, WsError *err)
{
	SftpStore *ss = (SftpStore *)s;
	LIBSSH2_SFTP_ATTRIBUTES a;
	int rc = begin(ss, key, err);
	if (rc != 0)
		return rc;

	char *path = remote_path(ss, key);
	if (libssh2_sftp_stat_ex(ss->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT, &a) != 0) {
		unsigned long fx = 0;
		rc = sftp_session_fail(ss, &SFTP_OP_STAT, key, &fx, err);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE)
			rc = not_found(ss, key, err);
	} else if ((a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
		rc = store_dir_at_key(key, ss->base.display, err);
	} else if (!(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) || !LIBSSH2_SFTP_S_ISREG(a.permissions)) {
		rc = ws_error(err, WS_FATAL, "object \"%s\" in repository \"%s\" is not a regular file", key,
			      ss->base.display);
	} else {
		out->size = (a.flags & LIBSSH2_SFTP_ATTR_SIZE) ? a.filesize : 0;
		out->mtime = (a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (int64_t)a.mtime : 0;
	}
	free(path);
	return rc;
}

/* dir_walk's reader: the entries of one remote directory that can be keys (DirReadFn). */
static int list_dir(void *ctx, const char *key, size_t keylen, const char *filter, DirList *l, WsError *err)
{
	SftpStore *ss = ((StoreWalk *)ctx)->driver;
	size_t flen = filter ? strlen(filter) : 0;
	char *name = xmalloc(SFTP_NAME_MAX);
	int rc = 0;
	char *path = keylen == 0 ? xstrdup(ss->root) : remote_path(ss, key);
	const char *what = keylen == 0 ? "/" : key;

	LIBSSH2_SFTP_HANDLE *h =
		libssh2_sftp_open_ex(ss->sftp, path, (unsigned)strlen(path), 0, 0, LIBSSH2_SFTP_OPENDIR);
	if (h == NULL) {
		unsigned long fx = 0;
		rc = sftp_session_fail(ss, &SFTP_OP_LIST, what, &fx, err);
		/* Absent, or not a directory: nothing under this prefix. */
		if (fx == LIBSSH2_FX_NO_SUCH_FILE || fx == LIBSSH2_FX_NOT_A_DIRECTORY ||
		    (fx == LIBSSH2_FX_FAILURE && keylen > 0)) {
			rc = check_root(ss, err);
			if (rc == 0 && err != NULL)
				ws_error_clear(err);
		}
		goto done;
	}
	for (;;) {
		LIBSSH2_SFTP_ATTRIBUTES a;
		int len = libssh2_sftp_readdir_ex(h, name, SFTP_NAME_MAX, NULL, 0, &a);
		if (len < 0) {
			rc = sftp_session_fail(ss, &SFTP_OP_LIST, what, NULL, err);
			goto done;
		}
		if (len == 0)
			break;
		size_t nlen = (size_t)len;
		/* Temp files and names no key could have are not objects. */
		if (name[0] == '.' || (filter && strncmp(name, filter, flen) != 0) || !store_name_ok(name) ||
		    !(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS))
			continue;
		bool d = LIBSSH2_SFTP_S_ISDIR(a.permissions);
		if ((!LIBSSH2_SFTP_S_ISREG(a.permissions) && !d) || keylen + nlen + d >= STORE_KEY_MAX)
			continue;
		dir_list_add(l, name, d, (a.flags & LIBSSH2_SFTP_ATTR_SIZE) ? a.filesize : 0,
			     (a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (int64_t)a.mtime : 0);
	}

done:
	if (h != NULL && ss->session != NULL)
		libssh2_sftp_close_handle(h);
	free(name);
	free(path);
	return rc;
}

static int sftp_list(Store *s, const char *prefix, StoreListFn fn, void *ctx, WsError *err)
{
	SftpStore *ss = (SftpStore *)s;
	int rc = sftp_conn_ensure(ss, err);
	if (rc != 0)
		return rc;

	/* Nothing is listed inside temp names. */
	if (store_list_in_temp(prefix))
		return check_root(ss, err);
	return store_list_walk(prefix, list_dir, ss, fn, ctx, err);
}

static int sftp_remove(Store *s, const char *key, WsError *err)
{
	SftpStore *ss = (SftpStore *)s;
	int rc = begin(ss, key, err);
	if (rc != 0)
		return rc;

	char *path = remote_path(ss, key);
	if (libssh2_sftp_unlink_ex(ss->sftp, path, (unsigned)strlen(path)) != 0) {
		unsigned long fx = 0;
		rc = sftp_session_fail(ss, &SFTP_OP_REMOVE, key, &fx, err);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE) {
			rc = not_found(ss, key, err);
		} else if (fx != 0) {
			/* OpenSSH answers unlink of a directory with "failure": say what is there. */
			WsError ignored;
			if (is_dir(ss, path, &SFTP_OP_REMOVE, key, &ignored) == 1)
				rc = store_dir_at_key(key, ss->base.display, err);
		}
	}
	free(path);
	return rc;
}

static void sftp_free(Store *s)
{
	SftpStore *ss = (SftpStore *)s;
	sftp_session_drop(ss, ss->sftp != NULL);
	if (ss->passphrase != NULL) {
		explicit_bzero(ss->passphrase, strlen(ss->passphrase));
		free(ss->passphrase);
	}
	sftp_url_clear(&ss->url);
	free(ss->user);
	free(ss->server);
	free(ss->home);
	free(ss->known_hosts);
	free(ss->key_file);
	free(ss->base.display);
	free(ss);
}

static const StoreDriver sftp_driver = {
	.name = "sftp",
	.put = sftp_put,
	.get = sftp_get,
	.stat = sftp_stat,
	.list = sftp_list,
	.remove = sftp_remove,
	.free = sftp_free,
};

/* mkdir -p of the root (walship init); each created directory's parent is synced like a put's. */
static int create_root(SftpStore *ss, WsError *err)
{
	char *path = xstrdup(ss->root);
	char **sync = NULL;
	size_t nsync = 0;
	int rc = 0;

	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		bool created = false;
		if (path[1] != '\0') {
			rc = make_dir(ss, path, &SFTP_OP_OPEN, path, &created, err);
			if (rc == WS_FATAL)
				ws_error(err, WS_FATAL,
					 "could not create repository directory \"%s\" on \"%s\": %s", path,
					 ss->server, sftp_session_fx_text(sftp_session_last_fx(ss)));
		}
		if (created) {
			char *parent = fs_dirname(path);
			sftp_strv_add_once(&sync, &nsync, parent);
			free(parent);
		}
		*p = c;
		if (rc != 0 || c == '\0')
			break;
	}
	if (rc == 0)
		rc = sftp_ext_sync_dirs(ss, sync, nsync, ss->root, err);
	sftp_strv_free(sync, nsync);
	free(path);
	return rc;
}

int store_sftp_open(const char *url, const Config *cfg, int flags, Store **out, WsError *err)
{
	SftpStore *ss = xcalloc(1, sizeof(*ss));
	ss->sock = -1;
	ss->base.driver = &sftp_driver;
	*out = NULL;

	int rc = sftp_url_parse(url, &ss->url, err);
	if (rc != 0)
		goto done;
	ss->root = ss->url.path;
	ss->base.display = sftp_url_display(&ss->url);
	ss->server = sftp_server_name(ss->url.host, ss->url.port);

	const char *v = cfg_get(cfg, "sftp-dir-sync", "exec");
	if (strcmp(v, "exec") == 0 || strcmp(v, "off") == 0) {
		ss->dir_sync = strcmp(v, "exec") == 0;
	} else {
		rc = ws_error(err, WS_USAGE, "invalid value \"%s\" for sftp-dir-sync", v);
		ws_error_hint(err, "Use exec (run sync on the server after each put) or off.");
		goto done;
	}
	v = cfg_get(cfg, "sftp-host-key-check", "strict");
	if (strcmp(v, "strict") == 0 || strcmp(v, "accept-new") == 0) {
		ss->accept_new = strcmp(v, "accept-new") == 0;
	} else {
		rc = ws_error(err, WS_USAGE, "invalid value \"%s\" for sftp-host-key-check", v);
		ws_error_hint(err, "Use strict (refuse unknown hosts) or accept-new.");
		goto done;
	}
	if (cfg != NULL) {
		rc = config_get_int(cfg, "io-timeout", 1, 86400, &ss->timeout_s, err);
		if (rc != 0)
			goto done;
	} else {
		ss->timeout_s = 60;
	}

	struct passwd *pw = getpwuid(geteuid());
	if (pw == NULL && (ss->url.user == NULL || cfg_get(cfg, "sftp-known-hosts", "~")[0] == '~')) {
		rc = ws_error(err, WS_FATAL, "could not find the user walship runs as (uid %u)",
			      (unsigned)geteuid());
		goto done;
	}
	ss->user = xstrdup(ss->url.user ? ss->url.user : pw->pw_name);
	ss->home = xstrdup(pw ? pw->pw_dir : "/");
	ss->known_hosts = expand_home(ss, cfg_get(cfg, "sftp-known-hosts", "~/.ssh/known_hosts"));
	v = cfg_get(cfg, "sftp-key-file", NULL);
	if (v != NULL && v[0] != '\0')
		ss->key_file = expand_home(ss, v);
	v = cfg_get(cfg, "sftp-key-passphrase", NULL);
	if (v != NULL)
		ss->passphrase = xstrdup(v);

	rc = sftp_conn_open(ss, err);
	if (rc != 0)
		goto done;
	if (flags & STORE_OPEN_CREATE) {
		rc = create_root(ss, err);
		if (rc != 0)
			goto done;
	}
	rc = check_root(ss, err);

done:
	if (rc != 0) {
		sftp_free(&ss->base);
		return rc;
	}
	*out = &ss->base;
	return 0;
}
