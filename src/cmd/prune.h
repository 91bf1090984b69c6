/*
 * prune.h - walship prune: retention, run from cron.
 *
 *   walship prune --repo=R --keep-backups=N [--keep-days=D] [--min-wal-age=AGE] [--dry-run] [--json]
 *
 * Keeps the N newest complete backups of the repository, every backup newer
 * than D days and the newest one older than D days (so the whole D-day window
 * stays restorable), and deletes the other complete backups.  WAL is kept as
 * the union, over the kept backups, of each backup's own timeline from its
 * start segment on and every descendant timeline of it from its fork on (read
 * from the .history files).  Everything else on every epoch may go, except:
 * .history files (never deleted), WAL of a timeline whose .history is missing
 * or unreadable, WAL newer than --min-wal-age (by the object's mtime: for
 * standbys fed from the archive), and the objects of a backup in progress
 * (a backup directory without manifest.json newer than the lock's expiry; an
 * older one is an interrupted backup and is removed).  An epoch with no kept
 * backup keeps nothing but its .history files, unless it is the newest epoch
 * (its WAL may still be needed by a backup about to be taken: kept whole).
 *
 * Refuses to delete anything (error, exit 1) when a listing fails, when the
 * repository holds no complete backup, or when a manifest.json cannot be
 * read; says why.  Holds the repository lock (repo/lock.h) for its whole run.
 *
 * Deletion order, so that a kill at any moment leaves a consistent
 * repository: for each backup to remove, its manifest.json first (it is no
 * longer offered), then its other objects; WAL only after every removed
 * backup is gone.
 *
 * Prints a summary (backups and WAL files removed, bytes freed; with
 * --dry-run what would be removed, and nothing is); -q prints only errors;
 * --json one JSON object.  Exit 0 success, 1 failure, 2 usage.
 */
#ifndef WALSHIP_CMD_PRUNE_H
#define WALSHIP_CMD_PRUNE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/config.h"
#include "util/error.h"

typedef struct PruneOptions {
	int keep_backups;    /* --keep-backups=N, at least 1 (required) */
	int keep_days;       /* --keep-days=D, or -1 when not given */
	int64_t min_wal_age; /* --min-wal-age in seconds (0: none) */
	bool dry_run;
	bool json;
} PruneOptions;

int cmd_prune(const Config *cfg, const PruneOptions *opt, WsError *err);

#endif
