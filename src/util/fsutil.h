/*
 * fsutil.h - small POSIX file helpers: full reads and writes that retry on
 * EINTR, fsync of files and directories, durable directory creation, whole
 * files replaced in one step, paths resolved and compared.
 *
 * Memory: functions returning char * return malloc'd strings the caller
 * frees; fs_basename returns a pointer into its argument (borrowed).
 */
#ifndef WALSHIP_UTIL_FSUTIL_H
#define WALSHIP_UTIL_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/error.h"

/* write(2) until done; -1 with errno on failure. */
int fs_write_all(int fd, const void *buf, size_t len);
/* read(2) until len bytes or EOF; returns bytes read, -1 with errno on failure. */
ssize_t fs_read_full(int fd, void *buf, size_t len);

/* fsync the directory at path. */
int fs_fsync_dir(const char *path, WsError *err);

/*
 * Create directory path (and missing parents, mode 0750 unless given) and make
 * each new entry durable by fsyncing its parent.  *created (may be NULL) tells
 * whether anything was created.
 */
int fs_mkdir_durable(const char *path, mode_t mode, bool *created, WsError *err);

/*
 * The first component of absolute path that does not exist ("/a/b" when /a is
 * there and /a/b is not), or NULL when path exists: what fs_mkdir_durable
 * would create.
 */
char *fs_first_missing(const char *path);

/* lchown path and, if it is a directory, everything under it (symbolic links are not followed). */
int fs_chown_tree(const char *path, uid_t uid, gid_t gid, WsError *err);

/* Read a small file (< max bytes) into a NUL-terminated buffer. */
int fs_read_small(const char *path, size_t max, char **out, size_t *len, WsError *err);

/* The directory part of path ("." if none). */
char *fs_dirname(const char *path);
/* The last component of path (pointer into path). */
const char *fs_basename(const char *path);

/* How fs_write_file writes a file. */
typedef struct FsFileOpts {
	mode_t mode; /* set with fchmod: the umask does not reduce it */
	bool chown;  /* give the file to uid:gid (see fs_write_file) */
	uid_t uid;
	gid_t gid;
	bool durable; /* fsync the file before, and its directory after, the rename */
} FsFileOpts;

/*
 * Replace path with len bytes of data in one step: a temp file
 * "<dir>/.<name>.walship.XXXXXX" (util/cleanup.h's cleanup_create: a signal
 * never leaves it behind) is written, given its mode and owner, fsynced when
 * durable, and renamed over path; then, when durable, the directory is
 * fsynced.  With chown, a group the caller may not give is no failure when
 * the owner is right and the caller is not root (PostgreSQL only looks at the
 * owner).  0, or WS_FATAL with err filled: path is then as it was and the
 * temp file is gone.
 */
int fs_write_file(const char *path, const void *data, size_t len, const FsFileOpts *o, WsError *err);

/*
 * Give the file open as fd (path names it in messages) to uid:gid unless it
 * has them already; as fs_write_file's chown.
 */
int fs_set_owner(int fd, const char *path, uid_t uid, gid_t gid, WsError *err);

/* Remove everything inside the directory open as dfd (closed here), never following a symbolic link. */
int fs_remove_contents(int dfd, const char *path, WsError *err);

/* 1 if the directory at path is empty, 0 if not, -1 with errno if it cannot be read. */
int fs_dir_is_empty(const char *path);

/*
 * The absolute, symlink-free form of path, which need not exist: the
 * longest existing ancestor is resolved and the rest appended.  malloc'd,
 * or NULL with errno.
 */
char *fs_resolve(const char *path);

/* Whether path is dir or below it (both resolved, as by realpath; dir's trailing slashes aside). */
bool fs_path_within(const char *path, const char *dir);

/*
 * Every name in directory dir, "." and ".." included, in readdir's order:
 * *names (malloc'd, each name too) and *n.  WS_NOT_FOUND when dir does not
 * exist or is not a directory, WS_FATAL for other errors (*n is 0 then).
 */
int fs_dir_names(const char *dir, char ***names, int *n, WsError *err);

/*
 * Close every file descriptor from lowfd up except keep (-1: none), for a
 * process just forked that must not hold its parent's files: close_range(2)
 * (Linux 5.9), else each descriptor /proc/self/fd lists, else every number
 * below the open-files limit.  Errors are ignored: a descriptor that cannot
 * be closed was not open.
 */
void fs_close_from(int lowfd, int keep);

#ifdef WALSHIP_TESTING
/*
 * Test build only: 1 makes fs_close_from act as on a kernel without
 * close_range, 2 also as without /proc, so that the fallbacks are tested here.
 */
extern int fs_close_from_test_fallback;
#endif

#endif
