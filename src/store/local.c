/*
 * local.c - the local-disk store driver.
 *
 * An object is a file under the root directory.  A put writes a temporary
 * file beside the final name, fsyncs it, moves it into place (with
 * RENAME_NOREPLACE, or link()+unlink() where that is unsupported, when the
 * key must not be replaced) and fsyncs its directory and each one above it
 * up to the root: after a crash the key holds either the whole object or
 * nothing.  A key found taken is made durable before it is reported
 * (exists_durably).  Names starting with "." are the driver's temporary files
 * and are never shown as keys.  "Not found" is answered only for a name
 * missing from a directory that is there (store_prove_absent): a file or a
 * dangling symbolic link where a directory should be, or a directory at a
 * key, is an error.
 */
#include "store/driver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/dirwalk.h"
#include "util/fsutil.h"
#include "util/mem.h"

#define LOCAL_BUF_SIZE   (256 * 1024)
#define LOCAL_DIR_MODE   0750
#define LOCAL_FILE_MODE  0640
#define LOCAL_TEMP_TRIES 100
/* Longest part of the final name kept in a temp name, so it stays under NAME_MAX. */
#define LOCAL_TEMP_BASE_MAX 200

typedef struct LocalStore {
	Store base;
	char *root;      /* absolute, without trailing '/' (except for "/" itself) */
	bool force_link; /* test hook: act as if RENAME_NOREPLACE were unsupported */
	/*
	 * Run as root in a repository owned by another user (walship rebuild's
	 * lease, a backup run with sudo): what is created goes to the root
	 * directory's owner, so that the owner's own commands (walship prune) can
	 * still read and remove it.
	 */
	bool chown_new;
	uid_t owner_uid;
	gid_t owner_gid;
} LocalStore;

/* Created as root: hand path (or fd, if >= 0) over to the repository's owner. */
static int give_to_owner(const LocalStore *ls, int fd, const char *path, const char *key, WsError *err);

#ifdef WALSHIP_TESTING
static int force_link_fallback;

void store_local_test_force_link_fallback(int on)
{
	force_link_fallback = on;
}
#endif

static char *local_path(const LocalStore *ls, const char *key)
{
	if (strcmp(ls->root, "/") == 0)
		return xasprintf("/%s", key);
	return xasprintf("%s/%s", ls->root, key);
}

static void hint_for_errno(const char *root, int errnum, WsError *err)
{
	switch (errnum) {
	case ENOSPC:
	case EDQUOT:
		ws_error_hint(err, "Free space (or raise the quota) on the filesystem holding \"%s\".", root);
		break;
	case EACCES:
	case EPERM:
		ws_error_hint(err,
			      "The repository must be readable and writable by the user walship runs as (for "
			      "archive_command and restore_command, the user PostgreSQL runs as).");
		break;
	case EROFS:
		ws_error_hint(err, "The filesystem holding \"%s\" is mounted read-only.", root);
		break;
	case EIO:
		ws_error_hint(err, "Check the system log for errors on the device holding \"%s\".", root);
		break;
	default:
		break;
	}
}

/* "could not <action> "KEY" <prep> repository "R": <strerror>" plus a hint when the operator can act. */
static int local_fail(const LocalStore *ls, int errnum, const char *action, const char *key, const char *prep,
		      WsError *err)
{
	ws_error_errno(err, WS_FATAL, errnum, "could not %s \"%s\" %s repository \"%s\"", action, key, prep,
		       ls->root);
	hint_for_errno(ls->root, errnum, err);
	return WS_FATAL;
}

/*
 * The root must exist and be a searchable directory; checked at open and again
 * whenever something is missing, since "not found" is only an answer when the
 * store itself is there.
 */
static int check_root(const char *root, WsError *err)
{
	struct stat st;
	if (stat(root, &st) != 0) {
		int e = errno;
		if (e == ENOENT) {
			ws_error(err, WS_FATAL, "repository directory \"%s\" does not exist", root);
			ws_error_hint(err,
				      "Create it with walship init, or check that the volume holding it is "
				      "mounted.");
			return WS_FATAL;
		}
		ws_error_errno(err, WS_FATAL, e, "could not access repository directory \"%s\"", root);
		hint_for_errno(root, e, err);
		return WS_FATAL;
	}
	if (!S_ISDIR(st.st_mode))
		return ws_error(err, WS_FATAL, "repository \"%s\" is not a directory", root);
	if (access(root, R_OK | X_OK) != 0) {
		int e = errno;
		ws_error_errno(err, WS_FATAL, e, "could not access repository directory \"%s\"", root);
		hint_for_errno(root, e, err);
		return WS_FATAL;
	}
	return 0;
}

/* StoreLookFn for store_prove_absent: lstat (or stat) below the root. */
static int local_look(void *ctx, const char *rel, bool follow, StoreNode *node, WsError *err)
{
	const LocalStore *ls = ctx;
	struct stat st;
	*node = STORE_NODE_DIR;
	if (rel[0] == '\0')
		return check_root(ls->root, err);

	char *path = local_path(ls, rel);
	int r = follow ? stat(path, &st) : lstat(path, &st);
	int e = errno;
	free(path);
	if (r != 0) {
		/* ENOTDIR: a file higher up is in the way, which the walk up finds. */
		if (e == ENOENT || e == ENOTDIR) {
			*node = STORE_NODE_ABSENT;
			return 0;
		}
		return local_fail(ls, e, "look up", rel, "in", err);
	}
	if (S_ISDIR(st.st_mode))
		*node = STORE_NODE_DIR;
	else if (S_ISREG(st.st_mode))
		*node = STORE_NODE_FILE;
	else if (S_ISLNK(st.st_mode))
		*node = STORE_NODE_LINK;
	else
		*node = STORE_NODE_OTHER;
	return 0;
}

/* After ENOENT or ENOTDIR for key: "not found" only if proven (store_prove_absent). */
static int absent(const LocalStore *ls, const char *key, WsError *err)
{
	return store_prove_absent(key, ls->root, local_look, (void *)ls, err);
}

/*
 * Create the directories of key below the root.  Nothing is fsynced here:
 * every put fsyncs the whole chain of directories once its object is in
 * place (sync_dirs).  The root itself is never created: a missing root (an
 * unmounted volume) must stay an error.
 */
static int make_parents(const LocalStore *ls, const char *key, WsError *err)
{
	char *path = local_path(ls, key);
	char *p = path + strlen(path) - strlen(key);
	int rc = 0;

	while ((p = strchr(p, '/')) != NULL) {
		*p = '\0';
		bool made = mkdir(path, LOCAL_DIR_MODE) == 0;
		if (made) {
			rc = give_to_owner(ls, -1, path, key, err);
		} else if (errno == EEXIST) {
			rc = 0;
		} else if (errno == ENOENT) {
			rc = check_root(ls->root, err);
			if (rc == 0)
				rc = local_fail(ls, ENOENT, "write", key, "to", err);
		} else {
			rc = local_fail(ls, errno, "write", key, "to", err);
		}
		*p++ = '/';
		if (rc != 0)
			break;
	}
	free(path);
	return rc;
}

/*
 * fsync the directory of key and each one above it up to the root: the
 * object's name is durable only once every entry on its path is.  Done by
 * every put, not only by one that created a directory: a directory made by an
 * earlier put that died or failed before its fsyncs is otherwise never synced
 * (fsyncs of directories nothing changed in cost next to nothing).
 */
static int sync_dirs(const LocalStore *ls, const char *key, WsError *err)
{
	char *rel = xstrdup(key);
	int rc = 0;
	for (;;) {
		char *slash = strrchr(rel, '/');
		if (slash != NULL)
			*slash = '\0';
		else
			rel[0] = '\0';
		char *dir = rel[0] != '\0' ? local_path(ls, rel) : xstrdup(ls->root);
		rc = fs_fsync_dir(dir, err);
		free(dir);
		if (rc != 0) {
			if (err != NULL)
				hint_for_errno(ls->root, err->errnum, err);
			break;
		}
		if (rel[0] == '\0')
			break;
	}
	free(rel);
	return rc;
}

/*
 * Create the temp file for key in dir, registered for removal on a signal
 * so that no signal can leave it behind (cleanup_create; full slots or an
 * over-long path give *slot_out = -1: only that protection is lost).
 */
static int open_temp(const LocalStore *ls, const char *key, const char *dir, const char *base, char **tmp_out,
		     int *fd_out, int *slot_out, WsError *err)
{
	bool made_dirs = false;

	for (int i = 0; i < LOCAL_TEMP_TRIES; i++) {
		char suffix[7];
		store_random_name(suffix, sizeof(suffix) - 1);
		char *tmp = xasprintf("%s/.%.*s.tmp.%s", dir, LOCAL_TEMP_BASE_MAX, base, suffix);
		int slot;
		int fd = cleanup_create(tmp, O_WRONLY | O_CLOEXEC, LOCAL_FILE_MODE, &slot);
		if (fd >= 0) {
			int rc = give_to_owner(ls, fd, tmp, key, err);
			if (rc != 0) {
				close(fd);
				unlink(tmp);
				if (slot >= 0)
					cleanup_unregister(slot);
				free(tmp);
				return rc;
			}
			*tmp_out = tmp;
			*fd_out = fd;
			*slot_out = slot;
			return 0;
		}
		int e = errno;
		free(tmp);
		if (e == EEXIST)
			continue;
		if (e == ENOENT && !made_dirs) {
			int rc = make_parents(ls, key, err);
			if (rc != 0)
				return rc;
			made_dirs = true;
			continue;
		}
		if (e == ENOENT) {
			int rc = check_root(ls->root, err);
			if (rc != 0)
				return rc;
		}
		return local_fail(ls, e, "write", key, "to", err);
	}
	return ws_error(err, WS_FATAL,
			"could not write \"%s\" to repository \"%s\": no free temporary file name", key,
			ls->root);
}

static int give_to_owner(const LocalStore *ls, int fd, const char *path, const char *key, WsError *err)
{
	if (!ls->chown_new)
		return 0;
	if ((fd >= 0 ? fchown(fd, ls->owner_uid, ls->owner_gid)
		     : chown(path, ls->owner_uid, ls->owner_gid)) == 0)
		return 0;
	return local_fail(ls, errno, "write", key, "to", err);
}

static int open_object(const LocalStore *ls, const char *key, int *fd_out, WsError *err);

/*
 * A no-overwrite put found key taken: make what is there durable before
 * answering WS_EXISTS, which callers may take for "stored" (an identical WAL
 * file).  The put that placed it may have died, or failed, between its rename
 * and its fsyncs: so fsync the file, its directory, and each directory up to
 * the root (a put creates missing ones, each new entry in its parent).
 */
static int exists_durably(const LocalStore *ls, const char *key, WsError *err)
{
	int fd = -1;
	int rc = open_object(ls, key, &fd, err);
	if (rc == WS_NOT_FOUND) {
		ws_error(err, WS_TRANSIENT, "\"%s\" was removed from repository \"%s\" while it was stored",
			 key, ls->root);
		ws_error_hint(err, "The operation can be tried again.");
		return WS_TRANSIENT;
	}
	if (rc != 0)
		return rc;
	if (fsync(fd) != 0) {
		int e = errno;
		close(fd);
		return local_fail(ls, e, "sync", key, "in", err);
	}
	close(fd);
	rc = sync_dirs(ls, key, err);
	if (rc != 0)
		return rc;
	return ws_error(err, WS_EXISTS, "\"%s\" already exists in repository \"%s\"", key, ls->root);
}

/*
 * Move tmp to path unless path exists, atomically.  *tmp_gone tells whether
 * tmp no longer needs removing.
 */
static int place_no_replace(const LocalStore *ls, const char *key, const char *tmp, const char *path,
			    bool *tmp_gone, WsError *err)
{
	if (!ls->force_link) {
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
			*tmp_gone = true;
			return 0;
		}
		if (errno == EEXIST)
			return exists_durably(ls, key, err);
		if (errno != EINVAL && errno != ENOSYS)
			return local_fail(ls, errno, "write", key, "to", err);
	}

	/* link() never replaces its target either; the temp name then goes away. */
	if (link(tmp, path) != 0) {
		int e = errno;
		if (e == EEXIST)
			return exists_durably(ls, key, err);
		local_fail(ls, e, "write", key, "to", err);
		if (e == EPERM)
			ws_error_hint(
				err,
				"The filesystem holding \"%s\" supports neither RENAME_NOREPLACE nor hard "
				"links, so objects cannot be stored without risk of replacing one.",
				ls->root);
		return WS_FATAL;
	}
	/* The object is in place; a temp name left behind is invisible to list and harmless. */
	if (unlink(tmp) == 0)
		*tmp_gone = true;
	return 0;
}

static int local_put(Store *s, const char *key, WsReader src, void *src_ctx, bool no_overwrite, WsError *err)
{
	LocalStore *ls = (LocalStore *)s;
	char *path = NULL;
	char *dir = NULL;
	char *tmp = NULL;
	unsigned char *buf = NULL;
	int fd = -1;
	int slot = -1;
	int close_rc;
	bool tmp_gone = true;
	int rc = store_key_reserved(key, "local", err);
	if (rc != 0)
		goto done;

	path = local_path(ls, key);
	dir = fs_dirname(path);
	rc = open_temp(ls, key, dir, fs_basename(path), &tmp, &fd, &slot, err);
	if (rc != 0)
		goto done;
	tmp_gone = false;

	buf = xmalloc(LOCAL_BUF_SIZE);
	for (;;) {
		size_t got = 0;
		rc = src(src_ctx, buf, LOCAL_BUF_SIZE, &got, err);
		if (rc != 0)
			goto done;
		if (got == 0)
			break;
		if (fs_write_all(fd, buf, got) != 0) {
			rc = local_fail(ls, errno, "write", key, "to", err);
			goto done;
		}
	}
	if (fsync(fd) != 0) {
		rc = local_fail(ls, errno, "write", key, "to", err);
		goto done;
	}
	close_rc = close(fd);
	fd = -1;
	if (close_rc != 0) {
		rc = local_fail(ls, errno, "write", key, "to", err);
		goto done;
	}

	if (no_overwrite) {
		rc = place_no_replace(ls, key, tmp, path, &tmp_gone, err);
	} else if (rename(tmp, path) == 0) {
		tmp_gone = true;
	} else {
		rc = local_fail(ls, errno, "write", key, "to", err);
	}
	if (rc != 0)
		goto done;

	rc = sync_dirs(ls, key, err);
	/*
	 * The new name may not survive a crash: take a new object back, so that a
	 * failed put leaves nothing (a backup's manifest.json would otherwise name
	 * objects its failed backup removes) and the caller's retry stores it
	 * again.  A replaced object stays: removing it would lose the previous one
	 * too.
	 */
	if (rc != 0 && no_overwrite)
		(void)unlink(path);

done:
	if (fd >= 0)
		close(fd);
	if (!tmp_gone)
		unlink(tmp);
	if (slot >= 0)
		cleanup_unregister(slot);
	free(buf);
	free(tmp);
	free(dir);
	free(path);
	return rc;
}

/* Open an object for reading: NOT_FOUND only when proven absent, FATAL when not a plain file. */
static int open_object(const LocalStore *ls, const char *key, int *fd_out, WsError *err)
{
	struct stat st;
	char *path = local_path(ls, key);
	int rc = 0;

	/* O_NONBLOCK: a FIFO planted at a key must not hang the caller. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT || e == ENOTDIR)
			rc = absent(ls, key, err);
		else if (e == ELOOP)
			rc = ws_error(err, WS_FATAL, "object \"%s\" in repository \"%s\" is a symbolic link",
				      key, ls->root);
		else
			rc = local_fail(ls, e, "read", key, "from", err);
		goto done;
	}
	if (fstat(fd, &st) != 0) {
		rc = local_fail(ls, errno, "read", key, "from", err);
		goto done;
	}
	if (S_ISDIR(st.st_mode))
		rc = store_dir_at_key(key, ls->root, err);
	else if (!S_ISREG(st.st_mode))
		rc = ws_error(err, WS_FATAL, "object \"%s\" in repository \"%s\" is not a regular file", key,
			      ls->root);

done:
	if (rc == 0)
		*fd_out = fd;
	else if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

static int local_get(Store *s, const char *key, uint64_t offset, uint64_t length, WsWriter sink,
		     void *sink_ctx, WsError *err)
{
	LocalStore *ls = (LocalStore *)s;
	unsigned char *buf = NULL;
	uint64_t pos = offset;
	uint64_t left = length;
	int fd = -1;
	int rc = store_key_reserved(key, "local", err);
	if (rc != 0)
		return rc;
	rc = open_object(ls, key, &fd, err);
	if (rc != 0)
		return rc;
	/* An offset off_t cannot hold is past the end of any file. */
	if (offset > (uint64_t)INT64_MAX)
		goto done;

	(void)posix_fadvise(fd, (off_t)offset, 0, POSIX_FADV_SEQUENTIAL);
	buf = xmalloc(LOCAL_BUF_SIZE);
	while (left > 0) {
		size_t want = left < LOCAL_BUF_SIZE ? (size_t)left : LOCAL_BUF_SIZE;
		ssize_t n = pread(fd, buf, want, (off_t)pos);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = local_fail(ls, errno, "read", key, "from", err);
			goto done;
		}
		if (n == 0)
			break;
		rc = sink(sink_ctx, buf, (size_t)n, err);
		if (rc != 0)
			goto done;
		pos += (uint64_t)n;
		left -= (uint64_t)n;
	}

done:
	free(buf);
	close(fd);
	return rc;
}

static int local_stat(Store *s, const char *key, StoreStat *out, WsError *err)
{
	LocalStore *ls = (LocalStore *)s;
	struct stat st;
	int rc = store_key_reserved(key, "local", err);
	if (rc != 0)
		return rc;

	char *path = local_path(ls, key);
	if (lstat(path, &st) != 0) {
		int e = errno;
		if (e == ENOENT || e == ENOTDIR)
			rc = absent(ls, key, err);
		else
			rc = local_fail(ls, e, "stat", key, "in", err);
	} else if (S_ISDIR(st.st_mode)) {
		rc = store_dir_at_key(key, ls->root, err);
	} else if (!S_ISREG(st.st_mode)) {
		rc = ws_error(err, WS_FATAL, "object \"%s\" in repository \"%s\" is not a regular file", key,
			      ls->root);
	} else {
		out->size = (uint64_t)st.st_size;
		out->mtime = (int64_t)st.st_mtim.tv_sec;
	}
	free(path);
	return rc;
}

/* dir_walk's reader: the entries of one directory that can be keys (DirReadFn). */
static int list_dir(void *ctx, const char *key, size_t keylen, const char *filter, DirList *l, WsError *err)
{
	const LocalStore *ls = ((const StoreWalk *)ctx)->driver;
	size_t flen = filter ? strlen(filter) : 0;
	DIR *d = NULL;
	int rc = 0;
	char *path = keylen == 0 ? xstrdup(ls->root) : local_path(ls, key);

	/* The path of a directory key ends in '/'; open() accepts that. */
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		int e = errno;
		/* Absent (or a file, or a symlink, which list skips): nothing under this prefix. */
		if (e == ENOENT || e == ENOTDIR || e == ELOOP)
			rc = check_root(ls->root, err);
		else
			rc = local_fail(ls, e, "list", key, "in", err);
		goto done;
	}
	d = fdopendir(dfd);
	if (d == NULL) {
		rc = local_fail(ls, errno, "list", key, "in", err);
		close(dfd);
		goto done;
	}

	for (;;) {
		struct stat st;
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0)
				rc = local_fail(ls, errno, "list", key, "in", err);
			break;
		}
		const char *name = de->d_name;
		size_t nlen = strlen(name);
		/* Temp files and names no key could have are not objects. */
		if (name[0] == '.' || (filter && strncmp(name, filter, flen) != 0) || !store_name_ok(name) ||
		    keylen + nlen >= STORE_KEY_MAX)
			continue;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT)
				continue; /* removed while we list */
			rc = local_fail(ls, errno, "list", key, "in", err);
			break;
		}
		bool is_dir = S_ISDIR(st.st_mode);
		if ((!S_ISREG(st.st_mode) && !is_dir) || keylen + nlen + is_dir >= STORE_KEY_MAX)
			continue;
		dir_list_add(l, name, is_dir, (uint64_t)st.st_size, (int64_t)st.st_mtim.tv_sec);
	}
done:
	if (d != NULL)
		closedir(d);
	free(path);
	return rc;
}

static int local_list(Store *s, const char *prefix, StoreListFn fn, void *ctx, WsError *err)
{
	LocalStore *ls = (LocalStore *)s;

	/* Nothing is listed inside temp names. */
	if (store_list_in_temp(prefix))
		return check_root(ls->root, err);
	return store_list_walk(prefix, list_dir, ls, fn, ctx, err);
}

static int local_remove(Store *s, const char *key, WsError *err)
{
	LocalStore *ls = (LocalStore *)s;
	int rc = store_key_reserved(key, "local", err);
	if (rc != 0)
		return rc;

	char *path = local_path(ls, key);
	if (unlink(path) != 0) {
		int e = errno;
		if (e == ENOENT || e == ENOTDIR)
			rc = absent(ls, key, err);
		else if (e == EISDIR)
			rc = store_dir_at_key(key, ls->root, err);
		else
			rc = local_fail(ls, e, "remove", key, "from", err);
	} else {
		char *dir = fs_dirname(path);
		rc = fs_fsync_dir(dir, err);
		free(dir);
	}
	free(path);
	return rc;
}

static void local_free(Store *s)
{
	LocalStore *ls = (LocalStore *)s;
	free(ls->base.display);
	free(ls->root);
	free(ls);
}

static const StoreDriver local_driver = {
	.name = "local",
	.put = local_put,
	.get = local_get,
	.stat = local_stat,
	.list = local_list,
	.remove = local_remove,
	.free = local_free,
};

int store_local_open(const char *root, const Config *cfg, int flags, Store **out, WsError *err)
{
	(void)cfg;
	*out = NULL;
	if (root == NULL || root[0] != '/') {
		ws_error(err, WS_USAGE, "repository path must be absolute");
		ws_error_detail(err, "The repository is \"%s\".", root ? root : "");
		return WS_USAGE;
	}

	size_t len = strlen(root);
	while (len > 1 && root[len - 1] == '/')
		len--;
	char *norm = xstrndup(root, len);

	LocalStore *ls = NULL;
	int rc = 0;
	if (flags & STORE_OPEN_CREATE) {
		rc = fs_mkdir_durable(norm, LOCAL_DIR_MODE, NULL, err);
		if (rc != 0) {
			if (err != NULL)
				hint_for_errno(norm, err->errnum, err);
			goto done;
		}
	}
	rc = check_root(norm, err);
	if (rc != 0)
		goto done;

	ls = xcalloc(1, sizeof(*ls));
	ls->base.driver = &local_driver;
	ls->base.display = xstrdup(norm);
	ls->root = norm;
#ifdef WALSHIP_TESTING
	ls->force_link = force_link_fallback != 0;
#endif
	struct stat st;
	if (geteuid() == 0 && stat(norm, &st) == 0 && st.st_uid != 0) {
		ls->chown_new = true;
		ls->owner_uid = st.st_uid;
		ls->owner_gid = st.st_gid;
	}
	norm = NULL;
	*out = &ls->base;

done:
	free(norm);
	return rc;
}
