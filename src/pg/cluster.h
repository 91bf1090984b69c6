/*
 * cluster.h - the data directory a hook runs in, and the repository epoch
 * that belongs to it.
 *
 * Memory: cluster_size_str writes into and returns the caller's buf.
 */
#ifndef WALSHIP_PG_CLUSTER_H
#define WALSHIP_PG_CLUSTER_H

#include "pg/pgcontrol.h"
#include "repo/meta.h"
#include "util/error.h"

typedef struct ClusterInfo {
	PgControl control;
	int pg_major;
} ClusterInfo;

/* Read pgdata's global/pg_control and PG_VERSION. */
int cluster_read(const char *pgdata, ClusterInfo *out, WsError *err);

/*
 * The epoch pushes go to: the newest, which must match the cluster's system
 * identifier, major version and segment size.  WS_FATAL with a hint otherwise
 * (another cluster's repository, or a pg_upgrade without walship upgrade).
 */
int cluster_push_epoch(const RepoMeta *meta, const ClusterInfo *ci, const char *repo, const RepoEpoch **out,
		       WsError *err);

/*
 * The epoch fetches read from: epoch_id if given (it must exist and be of
 * the cluster's system identifier and segment size), else the newest epoch
 * with the cluster's system identifier.  WS_FATAL when the repository holds
 * no epoch of this cluster.
 */
int cluster_fetch_epoch(const RepoMeta *meta, const ClusterInfo *ci, const char *epoch_id, const char *repo,
			const RepoEpoch **out, WsError *err);

/* "16 MiB" style size for messages. */
const char *cluster_size_str(uint64_t bytes, char *buf, size_t size);

#endif
