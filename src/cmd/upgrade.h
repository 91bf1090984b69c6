/*
 * upgrade.h - walship upgrade: a new repository epoch after pg_upgrade.
 */
#ifndef WALSHIP_CMD_UPGRADE_H
#define WALSHIP_CMD_UPGRADE_H

#include "util/config.h"
#include "util/error.h"

/*
 * Add an epoch for the cluster in pgdata (new system identifier, major
 * version, WAL segment size), so that its pushes are accepted and go to
 * <epoch>/wal beside the old cluster's.  Nothing to do when the newest epoch
 * is already this cluster's; refused when an older epoch is (going back) or
 * the major version is older than the newest epoch's.
 */
int cmd_upgrade(const Config *cfg, const char *pgdata, WsError *err);

#endif
