/*
 * fsutil.h - small POSIX file helpers: full reads and writes that retry on
 * EINTR, fsync of files and directories, durable directory creation.
 *
 * Memory: fs_read_small's *out and fs_dirname's result are malloc'd: the
 * caller frees them.  fs_basename's result points into its argument.
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

/* Read a small file (< max bytes) into a NUL-terminated buffer. */
int fs_read_small(const char *path, size_t max, char **out, size_t *len, WsError *err);

/* The directory part of path ("." if none). */
char *fs_dirname(const char *path);
/* The last component of path (pointer into path). */
const char *fs_basename(const char *path);

#endif
