/*
 * sink.h - putting a WAL file in place as %p, for walship-fetch and for the
 * prefetch spool: a writer that keeps the first page header of what it
 * writes (for the check once the object is decoded), and the temp file
 * beside %p that is renamed into place only when complete and verified.
 */
#ifndef WALSHIP_WAL_SINK_H
#define WALSHIP_WAL_SINK_H

#include <stdint.h>

#include "pg/walpage.h"
#include "util/error.h"

/* A writer to fd (what names it in errors, borrowed) that keeps the first page header it writes. */
typedef struct WalSink {
	int fd;
	const char *what;
	uint64_t written;
	unsigned char head[WAL_LONG_HEADER_SIZE];
} WalSink;

/* The WsWriter of a WalSink (ctx). */
int wal_sink_write(void *ctx, const unsigned char *buf, size_t len, WsError *err);

/* A temp file beside %p: the rename into place is atomic and never crosses filesystems. */
typedef struct WalTemp {
	char *path; /* "<dir of %p>/.<name of %p>.walship.XXXXXX", owned; NULL once installed */
	int fd;     /* -1 once closed */
	int slot;   /* its util/cleanup.h slot: a signal removes it */
} WalTemp;

#define WAL_TEMP_NONE                                                                                        \
	{                                                                                                    \
		NULL, -1, -1                                                                                 \
	}

/* Create the temp file beside target: 0, or WS_FATAL with err filled (t then holds nothing). */
int wal_temp_open(WalTemp *t, const char *target, WsError *err);

/*
 * Put the complete, verified temp file in place as target: close its fd
 * (always; a write error it reports counts), then rename it with signals
 * held, so that a SIGTERM is answered after it -- exit 200 with no %p, or 0
 * with %p whole, never a complete %p with an exit code saying it failed.
 * 0, or WS_FATAL with the temp file still there for wal_temp_close.
 */
int wal_temp_install(WalTemp *t, const char *target, WsError *err);

/* Close and remove the temp file unless it was installed; forget it.  Safe on WAL_TEMP_NONE and twice. */
void wal_temp_close(WalTemp *t);

#endif
