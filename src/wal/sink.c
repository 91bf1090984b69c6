/* sink.c - writing a WAL file beside %p and renaming it into place (see sink.h). */
#include "wal/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fsutil.h"
#include "util/mem.h"

int wal_sink_write(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	WalSink *s = ctx;
	if (s->written < sizeof(s->head)) {
		size_t n = sizeof(s->head) - (size_t)s->written;
		memcpy(s->head + s->written, buf, n < len ? n : len);
	}
	if (fs_write_all(s->fd, buf, len) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not write %s", s->what);
	s->written += len;
	return 0;
}

int wal_temp_open(WalTemp *t, const char *target, WsError *err)
{
	char *dir = fs_dirname(target);
	t->path = xasprintf("%s/.%s.walship.XXXXXX", dir, fs_basename(target));
	free(dir);
	t->fd = cleanup_create(t->path, O_RDWR | O_CLOEXEC, 0600, &t->slot);
	if (t->fd < 0) {
		int rc = ws_error_errno(err, WS_FATAL, errno, "could not create temporary file \"%s\"",
					t->path);
		free(t->path);
		t->path = NULL;
		return rc;
	}
	return 0;
}

int wal_temp_install(WalTemp *t, const char *target, WsError *err)
{
	int fd = t->fd;
	t->fd = -1;
	if (close(fd) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not write \"%s\"", t->path);
	cleanup_hold();
	if (rename(t->path, target) != 0) {
		int rc = ws_error_errno(err, WS_FATAL, errno, "could not rename \"%s\" to \"%s\"", t->path,
					target);
		cleanup_release();
		return rc;
	}
	cleanup_set_exit_code(0);
	cleanup_release();
	free(t->path);
	t->path = NULL;
	return 0;
}

void wal_temp_close(WalTemp *t)
{
	if (t->fd >= 0)
		close(t->fd);
	if (t->path != NULL)
		(void)unlink(t->path);
	if (t->slot >= 0)
		cleanup_unregister(t->slot);
	free(t->path);
	t->path = NULL;
	t->fd = -1;
	t->slot = -1;
}
