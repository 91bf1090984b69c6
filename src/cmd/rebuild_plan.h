/*
 * rebuild_plan.h - walship rebuild's plan: which backup, which timeline, and
 * the proof from the repository that recovery can reach the target, made
 * before anything is written (cmd/rebuild.c writes and starts).
 */
#ifndef WALSHIP_CMD_REBUILD_PLAN_H
#define WALSHIP_CMD_REBUILD_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "pg/history.h"
#include "pg/recoveryconf.h"
#include "repo/backupmeta.h"
#include "repo/catalog.h"
#include "repo/repo.h"
#include "util/error.h"

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
	const char *archive; /* NULL (off for a copy, kept in place or for a standby), "off", "keep" */
	const char *const *tablespace_map; /* "OID=DIR" entries */
	int n_tablespace_map;
	const char *config_from; /* postgresql.conf to copy when the backup has none */
	const char *config_path; /* the walship configuration file restore_command must read, or NULL */
	bool start;
	int port; /* 0: the one in postgresql.conf */
	bool force;
	bool dry_run;
	int64_t lease; /* seconds the lease outlives walship rebuild (REBUILD_LEASE_DEFAULT); 0: no lease */
	bool recovery_ended; /* --recovery-ended: only remove the recovery targets (recovery_end_command) */
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

typedef struct RebuildPlan {
	const BackupMeta *b;
	uint32_t tli; /* the target timeline */
	const TimelinePath *path;
	const CatalogWindow *w;
	uint64_t end_lsn; /* end of the WAL recovery can read from b along tli */
	uint32_t end_tli;
	uint64_t end_segno;
	uint64_t last_lsn; /* the last position recovery needs: the LSN target, the end, or b's stop */
	bool gap_after;    /* WAL exists past end_lsn that a hole makes unreachable */
	uint64_t gap_segno;
	uint32_t gap_tli;
	char time_value[REBUILD_TIME_MAX];
	int64_t time_secs;
	uint64_t target_lsn;
	char timeline_value[16];
} RebuildPlan;

/*
 * The checks recovery_settings_write would make, done before anything is
 * written, for an epoch of major version pg_major: WS_USAGE for a value or a
 * combination of options that cannot work.  Fills the target's parsed value.
 */
int rebuild_plan_check_target(const RebuildOptions *o, int pg_major, RebuildPlan *pl, WsError *err);

/*
 * Choose the backup (by id, or the newest that ends before the target) and
 * the timeline, and prove the target reachable from the repository's WAL
 * along it; refusals name what can be reached.
 */
int rebuild_plan_choose(const CatalogEpoch *s, const RebuildOptions *o, RebuildPlan *pl, WsError *err);

/*
 * Whether PostgreSQL pg_major (90600 for 9.6, 150000 for 15: pgmajor.h) ends
 * recovery at the end of the WAL it can read as if a time, xid or
 * restore-point target had been reached, and promotes: 12 and older.  13 and
 * later stop with "recovery ended before configured recovery target was
 * reached".
 */
bool rebuild_promotes_at_end_of_wal(int pg_major);

/*
 * The decision for a target past the end of the archive, before anything is
 * written.  last_wal is the last WAL file recovery can read, last_stored when
 * the repository stored it (seconds since 1970): no commit in the archive is
 * later.  When rebuild_promotes_at_end_of_wal(pg_major): a time target
 * (target_secs, target_text as written) after last_stored is refused
 * (WS_USAGE, err filled); an xid or restore-point target, which the archive
 * cannot place, gives 1 with err holding a warning to print.  0 otherwise
 * (newer versions fail by themselves; other kinds are checked elsewhere).
 */
int rebuild_target_end_check(int pg_major, RecoveryTargetKind target, const char *target_text,
			     int64_t target_secs, const char *last_wal, int64_t last_stored, WsError *err);

/*
 * rebuild_target_end_check for the plan on repo (a stat of the last WAL
 * object when it applies); a warning is printed here.
 */
int rebuild_plan_check_end(Repo *repo, const CatalogEpoch *s, const RebuildOptions *o, const RebuildPlan *pl,
			   WsError *err);

/* The plan, as walship rebuild prints it (also for --dry-run). */
void rebuild_plan_print(const CatalogEpoch *s, const RebuildOptions *o, const RebuildPlan *pl);

#endif
