/* stream.c - file-descriptor readers and writers for the stream callbacks. */
#include "util/stream.h"

#include <errno.h>
#include <unistd.h>

int fd_reader_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err)
{
	FdReader *r = ctx;
	for (;;) {
		ssize_t n = read(r->fd, buf, cap);
		if (n >= 0) {
			*got = (size_t)n;
			return 0;
		}
		if (errno != EINTR)
			return ws_error_errno(err, WS_FATAL, errno, "could not read %s", r->what);
	}
}

int fd_writer_write(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	FdWriter *w = ctx;
	while (len > 0) {
		ssize_t n = write(w->fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ws_error_errno(err, WS_FATAL, errno, "could not write %s", w->what);
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}
