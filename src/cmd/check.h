/*
 * check.h - walship check: is this running cluster archiving into this
 * repository, for real?
 *
 *   walship check --repo=R [-d CONNSTR] [--timeout=SECONDS]
 *
 * Connects to the server and checks, each with a line "ok: ..." or
 * "failed: ..." plus a hint saying what to change:
 * - archive_mode is on, archive_command calls walship-push with %p %f and
 *   with this repository (pg/archcheck.h: the checks walship backup makes
 *   too), a failure naming the file and line that set it;
 * - the repository belongs to this cluster (system identifier, major
 *   version, segment size of the newest epoch);
 * - a missing key is answered "not found" by the store (S3 without
 *   s3:ListBucket answers 403: restore_command could then never end recovery
 *   normally);
 * - on a timeline past 1, its history file is in the repository's epoch
 *   (PostgreSQL archives it only at the promotion, when archive_mode was on);
 * - then forces a WAL switch (pg_switch_wal) and waits, up to --timeout
 *   (default 60 s), until that file is in the repository.
 * Exit 0 only if all holds, CHECK_EXIT_FAILED when a check failed, 1 when
 * check itself could not run (cannot connect, repository unreadable), 2 on
 * usage errors.
 */
#ifndef WALSHIP_CMD_CHECK_H
#define WALSHIP_CMD_CHECK_H

#include <stdbool.h>

#include "util/config.h"
#include "util/error.h"

#define CHECK_EXIT_FAILED     3
#define CHECK_TIMEOUT_DEFAULT 60

typedef struct CheckOptions {
	const char *dbname; /* -d: libpq connection string or database name; NULL: PG* defaults */
	int timeout;        /* seconds to wait for the switched WAL file; 0 or less: CHECK_TIMEOUT_DEFAULT */
} CheckOptions;

/*
 * 0 when every check holds, CHECK_EXIT_FAILED (positive) when one failed, else a negative WsStatus.
 * The check lines go to stdout ("ok: ..." only above log level "error"; "failed: ..." and
 * "warning: ..." always, each followed by indented "detail:" and "hint:" lines).
 */
int cmd_check(const Config *cfg, const CheckOptions *opt, WsError *err);

#endif
