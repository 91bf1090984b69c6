/*
 * fetch.h - walship-fetch: restore_command.
 */
#ifndef WALSHIP_CMD_FETCH_H
#define WALSHIP_CMD_FETCH_H

#include <stdint.h>

#include "pg/recovery.h"
#include "pg/walpage.h"
#include "util/config.h"
#include "util/error.h"

typedef struct FetchRequest {
	const char *name; /* %f */
	const char *path; /* %p */
	const char
		*pgdata;   /* NULL: the current directory, or for a frontend tool the parent of %p's pg_wal */
	FetchMode mode;    /* as requested (FETCH_MODE_AUTO unless --mode) */
	const char *epoch; /* --epoch or NULL */
} FetchRequest;

/*
 * Fetch, verify and decompress one WAL file into %p (temp file + rename: %p
 * never exists half-written).  *mode gets the resolved mode (for the exit
 * code).  WS_NOT_FOUND only when walship.json was read, matched this cluster,
 * and the store said the object does not exist.  A segment asked for as
 * RECOVERYXLOG in recovery or standby mode may be served from the prefetch
 * spool (verified as a direct fetch is) and starts the prefetcher: see
 * prefetch.h.
 */
int cmd_fetch(const Config *cfg, const FetchRequest *req, FetchMode *mode, WsError *err);

/*
 * The mode a request resolves to, for failures before cmd_fetch runs (a bad
 * configuration must not shut a standby down).
 */
FetchMode fetch_mode_of(const FetchRequest *req);

/* The exit code PostgreSQL must see for a result of cmd_fetch: 0, 1 or 200. */
int fetch_exit_code(int rc, FetchMode mode);

/*
 * A writer to fd (what names it in errors) that keeps the first page header
 * of what it writes, for the page-header check after the object is decoded
 * (walship-fetch's temp file, the prefetcher's spool file).
 */
typedef struct FetchSink {
	int fd;
	const char *what;
	uint64_t written;
	unsigned char head[WAL_LONG_HEADER_SIZE];
} FetchSink;

int fetch_sink_write(void *ctx, const unsigned char *buf, size_t len, WsError *err);

/*
 * Put a complete, verified temp file in place as %p: close fd (always; its
 * write errors count), then rename tmp to path with signals held, so that a
 * SIGTERM is answered after it -- exit 200 with no %p, or 0 with %p whole,
 * never a complete %p with an exit code saying it failed.  0 (tmp is gone)
 * or WS_FATAL (tmp is still there for the caller to remove).
 */
int fetch_install(int fd, const char *tmp, const char *path, WsError *err);

#define FETCH_EXIT_ABORT 200

#endif
