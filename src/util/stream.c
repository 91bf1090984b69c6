/* stream.c - file-descriptor readers and writers for the stream callbacks. */
#include "util/stream.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "util/mem.h"

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

int mem_reader_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err)
{
	(void)err;
	MemReader *m = ctx;
	size_t n = m->len - m->pos < cap ? m->len - m->pos : cap;
	memcpy(buf, (const unsigned char *)m->buf + m->pos, n);
	m->pos += n;
	*got = n;
	return 0;
}

int mem_writer_write(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	MemWriter *m = ctx;
	if (len > m->max - m->len)
		return ws_error(err, WS_CORRUPT, "%s is larger than %zu bytes", m->what ? m->what : "data",
				m->max);
	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		while (cap < m->len + len)
			cap *= 2;
		m->buf = xrealloc(m->buf, cap);
		m->cap = cap;
	}
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	return 0;
}
