/*
 * retention.h - which backups and which WAL walship prune keeps, computed
 * without a repository (so every rule is unit-tested on plain data).
 *
 * The design and formats behind it: src/repo/README.md, "retention".
 */
#ifndef WALSHIP_REPO_RETENTION_H
#define WALSHIP_REPO_RETENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "pg/history.h"
#include "repo/backupmeta.h"
#include "util/error.h"

/* keep_from: nothing of the timeline is needed. */
#define RETENTION_KEEP_NONE UINT64_MAX

/*
 * Mark keep[i] for each of the n backups (any order, any epochs).  keep_days
 * < 0: not given.  now in seconds since the epoch.  WS_USAGE if keep_backups
 * < 1; WS_CORRUPT if a backup's stop_time does not parse.
 */
int retention_select(const BackupMeta *const *backups, int n, int keep_backups, int keep_days, int64_t now,
		     bool *keep, WsError *err);

/* One timeline of an epoch. */
typedef struct RetentionTimeline {
	uint32_t tli;
	const TimelinePath *path; /* NULL: its history file could not be read */
	bool has_history;         /* a .history file exists (never for timeline 1) */
	uint64_t keep_from;       /* out: segments numbered from here on are kept, or RETENTION_KEEP_NONE */
} RetentionTimeline;

/*
 * Fill keep_from of each timeline for the kept backups of one epoch (all of
 * seg_size).
 */
void retention_wal(RetentionTimeline *tls, int ntl, const BackupMeta *const *kept, int nkept,
		   uint32_t seg_size);

/*
 * Whether segment segno of timeline tli (or a .partial or .backup file named
 * after it) is kept.  A timeline not in tls (it appeared after the scan) is
 * kept.
 */
bool retention_wal_kept(const RetentionTimeline *tls, int ntl, uint32_t tli, uint64_t segno);

/* "YYYY-MM-DDTHH:MM:SSZ" to seconds since the epoch; -1 if it does not parse. */
int64_t retention_parse_time(const char *iso);

#endif
