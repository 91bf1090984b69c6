/* fsutil.c - POSIX file helpers that retry on EINTR and make files and directories durable. */
#include "util/fsutil.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/mem.h"

/* glibc declares close_range from 2.34 (with _GNU_SOURCE). */
#if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34)
#define FS_HAVE_CLOSE_RANGE 1
#endif

int fs_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t fs_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int fs_fsync_dir(const char *path, WsError *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not open directory \"%s\"", path);
	if (fsync(fd) != 0 && errno != EINVAL) {
		int e = errno;
		close(fd);
		return ws_error_errno(err, WS_FATAL, e, "could not fsync directory \"%s\"", path);
	}
	close(fd);
	return 0;
}

int fs_mkdir_durable(const char *path, mode_t mode, bool *created, WsError *err)
{
	struct stat st;
	if (created)
		*created = false;
	if (stat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return ws_error(err, WS_FATAL, "\"%s\" exists but is not a directory", path);
		return 0;
	}
	if (errno != ENOENT)
		return ws_error_errno(err, WS_FATAL, errno, "could not stat \"%s\"", path);

	char *parent = fs_dirname(path);
	int rc = 0;
	if (strcmp(parent, path) != 0)
		rc = fs_mkdir_durable(parent, mode, NULL, err);
	if (rc == 0) {
		if (mkdir(path, mode ? mode : 0750) != 0 && errno != EEXIST)
			rc = ws_error_errno(err, WS_FATAL, errno, "could not create directory \"%s\"", path);
		else {
			/* The new entry lives in the parent: make it durable there. */
			rc = fs_fsync_dir(parent, err);
			if (rc == 0 && created)
				*created = true;
		}
	}
	free(parent);
	return rc;
}

int fs_read_small(const char *path, size_t max, char **out, size_t *len, WsError *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ws_error_errno(err, errno == ENOENT ? WS_NOT_FOUND : WS_FATAL, errno,
				      "could not open file \"%s\"", path);
	char *buf = xmalloc(max + 1);
	ssize_t n = fs_read_full(fd, buf, max + 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		free(buf);
		return ws_error_errno(err, WS_FATAL, e, "could not read file \"%s\"", path);
	}
	if ((size_t)n > max) {
		free(buf);
		return ws_error(err, WS_FATAL, "file \"%s\" is larger than %zu bytes", path, max);
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = (size_t)n;
	return 0;
}

char *fs_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return xstrdup(".");
	while (slash > path && slash[-1] == '/')
		slash--;
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

const char *fs_basename(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

int fs_set_owner(int fd, const char *path, uid_t uid, gid_t gid, WsError *err)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not stat file \"%s\"", path);
	if (st.st_uid == uid && st.st_gid == gid)
		return 0;
	if (fchown(fd, uid, gid) != 0) {
		/* Only the owner matters to PostgreSQL; a group we are not in is not worth failing for. */
		if (st.st_uid == uid && geteuid() != 0)
			return 0;
		ws_error_errno(err, WS_FATAL, errno, "could not change owner of file \"%s\"", path);
		ws_error_hint(err, "Run as the data directory's owner or as root.");
		return WS_FATAL;
	}
	return 0;
}

int fs_write_file(const char *path, const void *data, size_t len, const FsFileOpts *o, WsError *err)
{
	char *dir = fs_dirname(path);
	char *tmp = xasprintf("%s/.%s.walship.XXXXXX", dir, fs_basename(path));
	int slot = -1, rc = 0;
	int fd = cleanup_create(tmp, O_WRONLY | O_CLOEXEC, 0600, &slot);

	if (fd < 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not create temporary file for \"%s\"", path);
		free(tmp);
		tmp = NULL;
		goto done;
	}
	if (fchmod(fd, o->mode) != 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not set mode of file \"%s\"", tmp);
		goto done;
	}
	if (o->chown && (rc = fs_set_owner(fd, tmp, o->uid, o->gid, err)) != 0)
		goto done;
	if (fs_write_all(fd, data, len) != 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not write file \"%s\"", tmp);
		goto done;
	}
	if (o->durable && fsync(fd) != 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not fsync file \"%s\"", tmp);
		goto done;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = ws_error_errno(err, WS_FATAL, errno, "could not close file \"%s\"", tmp);
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not rename \"%s\" to \"%s\"", tmp, path);
		goto done;
	}
	free(tmp);
	tmp = NULL;
	if (o->durable)
		rc = fs_fsync_dir(dir, err);
done:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL)
		(void)unlink(tmp);
	cleanup_unregister(slot);
	free(tmp);
	free(dir);
	return rc;
}

int fs_remove_contents(int dfd, const char *path, WsError *err)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int rc = 0;

	if (d == NULL) {
		close(dfd);
		return ws_error_errno(err, WS_FATAL, errno, "could not read directory \"%s\"", path);
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *sub = xasprintf("%s/%s", path, de->d_name);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = ws_error_errno(err, WS_FATAL, errno, "could not stat \"%s\"", sub);
		} else if (S_ISDIR(st.st_mode)) {
			int fd =
				openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				rc = ws_error_errno(err, WS_FATAL, errno, "could not open directory \"%s\"",
						    sub);
			else if ((rc = fs_remove_contents(fd, sub, err)) == 0 &&
				 unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) != 0)
				rc = ws_error_errno(err, WS_FATAL, errno, "could not remove directory \"%s\"",
						    sub);
		} else if (unlinkat(dirfd(d), de->d_name, 0) != 0) {
			rc = ws_error_errno(err, WS_FATAL, errno, "could not remove \"%s\"", sub);
		}
		free(sub);
		if (rc != 0)
			break;
	}
	closedir(d);
	return rc;
}

int fs_dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int empty = 1;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

char *fs_resolve(const char *path)
{
	char *r = realpath(path, NULL);
	if (r != NULL || errno != ENOENT)
		return r;
	char *parent = fs_dirname(path);
	char *base = NULL;
	if (strcmp(parent, path) != 0 && (base = fs_resolve(parent)) != NULL) {
		const char *last = fs_basename(path);
		char *full = xasprintf("%s%s%s", base, strcmp(base, "/") == 0 ? "" : "/", last);
		free(base);
		base = full;
	}
	free(parent);
	return base;
}

bool fs_path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int fs_dir_names(const char *dir, char ***names, int *n, WsError *err)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return ws_error_errno(err, errno == ENOENT || errno == ENOTDIR ? WS_NOT_FOUND : WS_FATAL,
				      errno, "could not open directory \"%s\"", dir);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		*names = xrealloc(*names, (size_t)(*n + 1) * sizeof(**names));
		(*names)[(*n)++] = xstrdup(de->d_name);
	}
	closedir(d);
	return 0;
}

char *fs_first_missing(const char *path)
{
	struct stat st;
	if (lstat(path, &st) == 0)
		return NULL;
	char *p = xstrdup(path);
	for (char *slash = strchr(p + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (lstat(p, &st) != 0)
			return p;
		*slash = '/';
	}
	return p;
}

int fs_chown_tree(const char *path, uid_t uid, gid_t gid, WsError *err)
{
	struct stat st;
	if (lstat(path, &st) != 0 || lchown(path, uid, gid) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not change the owner of \"%s\"", path);
	if (!S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(path);
	if (d == NULL)
		return ws_error_errno(err, WS_FATAL, errno, "could not open directory \"%s\"", path);
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *child = xasprintf("%s/%s", path, e->d_name);
		rc = fs_chown_tree(child, uid, gid, err);
		free(child);
	}
	closedir(d);
	return rc;
}

#ifdef WALSHIP_TESTING
int fs_close_from_test_fallback;
#endif

/*
 * close_range(2): glibc declares it from 2.34; before, the system call is
 * made by number where the kernel headers know it.  -1 with ENOSYS where
 * neither (and from kernels before 5.9).
 */
static int close_range_call(unsigned first, unsigned last)
{
#ifdef WALSHIP_TESTING
	if (fs_close_from_test_fallback > 0) {
		errno = ENOSYS;
		return -1;
	}
#endif
#if defined(FS_HAVE_CLOSE_RANGE)
	return close_range(first, last, 0);
#elif defined(SYS_close_range)
	return (int)syscall(SYS_close_range, first, last, 0);
#else
	(void)first;
	(void)last;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * Close what /proc/self/fd lists from lowfd up, but keep and the listing's
 * own descriptor; false without /proc.
 */
static bool close_listed(int lowfd, int keep)
{
#ifdef WALSHIP_TESTING
	if (fs_close_from_test_fallback > 1)
		return false;
#endif
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return false;
	int self = dirfd(d);
	struct dirent *de;
	/* Closing while reading is safe here: the kernel lists /proc/self/fd by descriptor number. */
	while ((de = readdir(d)) != NULL) {
		char *end = NULL;
		long fd = strtol(de->d_name, &end, 10);
		if (end == de->d_name || *end != '\0' || fd < lowfd || fd > INT_MAX)
			continue;
		if (fd != keep && fd != self)
			(void)close((int)fd);
	}
	closedir(d);
	return true;
}

void fs_close_from(int lowfd, int keep)
{
	if (keep < lowfd)
		keep = -1;
	if (keep < 0) {
		if (close_range_call((unsigned)lowfd, ~0U) == 0)
			return;
	} else if ((keep == lowfd || close_range_call((unsigned)lowfd, (unsigned)keep - 1) == 0) &&
		   close_range_call((unsigned)keep + 1, ~0U) == 0) {
		return;
	}
	if (close_listed(lowfd, keep))
		return;
	long max = sysconf(_SC_OPEN_MAX);
	for (long fd = lowfd; fd < (max > 0 ? max : 1024); fd++)
		if (fd != keep)
			(void)close((int)fd);
}
