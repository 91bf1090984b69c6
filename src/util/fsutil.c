/* fsutil.c - POSIX file helpers that retry on EINTR and make directories durable. */
#include "util/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/mem.h"

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
