/*
 * fetch.h - walship-fetch: restore_command.
 */
#ifndef WALSHIP_CMD_FETCH_H
#define WALSHIP_CMD_FETCH_H

#include "pg/recovery.h"
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
 * src/wal/README.md.
 */
int cmd_fetch(const Config *cfg, const FetchRequest *req, FetchMode *mode, WsError *err);

/*
 * The mode a request resolves to, for failures before cmd_fetch runs (a bad
 * configuration must not shut a standby down).
 */
FetchMode fetch_mode_of(const FetchRequest *req);

/* The exit code PostgreSQL must see for a result of cmd_fetch: 0, 1 or 200. */
int fetch_exit_code(int rc, FetchMode mode);

#define FETCH_EXIT_ABORT 200

#endif
