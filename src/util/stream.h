/*
 * stream.h - the two callback shapes data flows through: a reader the consumer
 * pulls from, a writer the producer pushes to.  Buffers are the caller's and
 * fixed in size: nothing in walship holds a whole file in memory.
 */
#ifndef WALSHIP_UTIL_STREAM_H
#define WALSHIP_UTIL_STREAM_H

#include <stddef.h>

#include "util/error.h"

/* Fill up to cap bytes; *got = 0 means end of stream.  0 or a negative WsStatus. */
typedef int (*WsReader)(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err);

/* Consume all len bytes.  0 or a negative WsStatus. */
typedef int (*WsWriter)(void *ctx, const unsigned char *buf, size_t len, WsError *err);

/* A reader over a file descriptor (ctx is a pointer to the int fd); what names it in errors. */
typedef struct FdReader {
	int fd;
	const char *what;
} FdReader;
int fd_reader_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err);

typedef struct FdWriter {
	int fd;
	const char *what;
} FdWriter;
int fd_writer_write(void *ctx, const unsigned char *buf, size_t len, WsError *err);

/* A reader over a memory buffer. */
typedef struct MemReader {
	const void *buf;
	size_t len;
	size_t pos;
} MemReader;
int mem_reader_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err);

/*
 * A writer collecting into a growing malloc'd buffer (buf, len; free buf),
 * refusing more than max bytes with WS_CORRUPT naming what.
 */
typedef struct MemWriter {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
	const char *what;
} MemWriter;
int mem_writer_write(void *ctx, const unsigned char *buf, size_t len, WsError *err);

#endif
