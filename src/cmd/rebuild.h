/*
 * rebuild.h - walship rebuild: a data directory recreated from a backup in the
 * repository, with the recovery settings that replay the archived WAL up to a
 * target, optionally started and watched until recovery has reached it.
 */
#ifndef WALSHIP_CMD_REBUILD_H
#define WALSHIP_CMD_REBUILD_H

#include <stdbool.h>
#include <stdint.h>

#include "pg/recoveryconf.h"
#include "util/config.h"
#include "util/error.h"

/*
 * How long a rebuild's lease keeps its backup and WAL from walship prune after
 * walship rebuild exits, unless --lease says otherwise: a week, so that a copy
 * rebuilt before a weekend and started after it still finds its WAL, while an
 * abandoned one does not hold the archive back for long.
 */
#define REBUILD_LEASE_DEFAULT (7 * 86400L)
/* The longest --lease (repo/lock.h's REPO_LEASE_MAX). */
#define REBUILD_LEASE_MAX (366 * 86400L)

/* "YYYY-MM-DD HH:MM:SS.ffffff+00" and its terminator. */
#define REBUILD_TIME_MAX 40

typedef struct RebuildOptions {
	const char *pgdata;
	const char *backup_id; /* NULL or "latest": chosen from the target */
	RecoveryTargetKind target;
	const char *target_value; /* as given: time, LSN, xid or name */
	bool target_exclusive;
	const char *target_timeline; /* NULL: latest */
	const char *target_action;   /* NULL: PostgreSQL's default (pause) */
	bool standby;
	const char *primary_conninfo;
	const char *archive;               /* NULL, "off" or "keep" */
	const char *const *tablespace_map; /* "OID=DIR" entries */
	int n_tablespace_map;
	const char *config_from; /* postgresql.conf to copy when the backup has none */
	const char *config_path; /* the walship configuration file restore_command must read, or NULL */
	bool start;
	int port; /* 0: the one in postgresql.conf */
	bool force;
	bool dry_run;
	int64_t lease; /* seconds the lease outlives walship rebuild (REBUILD_LEASE_DEFAULT); 0: no lease */
} RebuildOptions;

/*
 * Parse a recovery_target_time value that has an explicit zone:
 * "YYYY-MM-DD HH:MM[:SS[.fraction]]" (or 'T' between date and time) followed,
 * with or without a space, by "Z", "UTC", "GMT" or an offset "+HH", "+HHMM",
 * "+HH:MM" (or '-').  *secs gets the UTC seconds since 1970, *usec the
 * microseconds (fraction digits past the sixth are refused), and out the same
 * instant as "YYYY-MM-DD HH:MM:SS[.fraction]+00".  WS_USAGE for anything
 * else, with a hint when only the zone is missing (PostgreSQL would read the
 * time in the server's zone).
 */
int rebuild_parse_time(const char *s, int64_t *secs, int *usec, char out[REBUILD_TIME_MAX], WsError *err);

/*
 * walship rebuild: choose the backup and timeline, prove the target
 * reachable from the repository, then (unless dry_run) fill pgdata and write
 * the recovery settings; with start, run the server and wait for the outcome.
 */
int cmd_rebuild(const Config *cfg, const RebuildOptions *opt, WsError *err);

#endif
