/*
 * prune.h - walship prune: retention, run from cron.
 *
 * The design and formats behind it: src/cmd/README.md, "prune".
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
