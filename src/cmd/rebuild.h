/*
 * rebuild.h - walship rebuild: a data directory recreated from a backup in the
 * repository, with the recovery settings that replay the archived WAL up to a
 * target, optionally started and watched until recovery has reached it.
 */
#ifndef WALSHIP_CMD_REBUILD_H
#define WALSHIP_CMD_REBUILD_H

#include <stdbool.h>
#include <stdint.h>

#include "cmd/rebuild_plan.h"
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

/*
 * walship rebuild: choose the backup and timeline, prove the target
 * reachable from the repository, then (unless dry_run) fill pgdata and write
 * the recovery settings; with start, run the server and wait for the outcome.
 */
int cmd_rebuild(const Config *cfg, const RebuildOptions *opt, WsError *err);

/*
 * walship rebuild --recovery-ended --pgdata=DIR, the recovery_end_command a
 * point-in-time rebuild writes (PostgreSQL 12 and later): the server has
 * ended recovery, so the recovery targets leave postgresql.auto.conf
 * (recovery_targets_clear), and a later start or rebuild does not meet them.
 * Reads no repository.
 */
int cmd_rebuild_recovery_ended(const char *pgdata, WsError *err);

#endif
