/* cluster.c - matching a data directory to its repository epoch. */
#include "pg/cluster.h"

#include <inttypes.h>
#include <stdio.h>

int cluster_read(const char *pgdata, ClusterInfo *out, WsError *err)
{
	int rc = pg_control_read(pgdata, &out->control, err);
	if (rc == 0)
		rc = pg_version_read(pgdata, &out->pg_major, err);
	return rc;
}

const char *cluster_size_str(uint64_t bytes, char *buf, size_t size)
{
	if (bytes >= 1024 * 1024 * 1024 && bytes % (1024 * 1024 * 1024) == 0)
		snprintf(buf, size, "%" PRIu64 " GiB", bytes >> 30);
	else if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0)
		snprintf(buf, size, "%" PRIu64 " MiB", bytes >> 20);
	else
		snprintf(buf, size, "%" PRIu64 " bytes", bytes);
	return buf;
}

static void describe(const RepoEpoch *e, uint64_t sysid, int major, uint32_t seg_size, WsError *err)
{
	char v1[16], v2[16], s1[32], s2[32];
	ws_error_detail(
		err,
		"The repository's epoch \"%s\" is system identifier %" PRIu64 ", PostgreSQL %s, %s WAL "
		"segments; this data directory is system identifier %" PRIu64 ", PostgreSQL %s, %s WAL "
		"segments.",
		e->id, e->sysid, pg_major_str(e->pg_major, v1, sizeof(v1)),
		cluster_size_str(e->seg_size, s1, sizeof(s1)), sysid, pg_major_str(major, v2, sizeof(v2)),
		cluster_size_str(seg_size, s2, sizeof(s2)));
}

int cluster_push_epoch(const RepoMeta *meta, const ClusterInfo *ci, const char *repo, const RepoEpoch **out,
		       WsError *err)
{
	const RepoEpoch *e = repo_meta_newest(meta);
	const PgControl *c = &ci->control;
	if (e->sysid == c->sysid && e->pg_major == ci->pg_major && e->seg_size == c->seg_size) {
		*out = e;
		return 0;
	}
	if (e->sysid != c->sysid && repo_meta_find_sysid(meta, c->sysid) != NULL) {
		ws_error(err, WS_FATAL, "repository \"%s\" has moved on to a newer cluster", repo);
		describe(e, c->sysid, ci->pg_major, c->seg_size, err);
		ws_error_hint(err,
			      "This data directory belongs to an older epoch of the repository: archive the "
			      "cluster the repository was upgraded to.");
	} else if (e->sysid != c->sysid) {
		ws_error(err, WS_FATAL, "repository \"%s\" belongs to another cluster", repo);
		describe(e, c->sysid, ci->pg_major, c->seg_size, err);
		ws_error_hint(err,
			      "After pg_upgrade, run \"walship upgrade --repo=%s --pgdata=DIR\" once; "
			      "otherwise point repo at this cluster's own repository.",
			      repo);
	} else {
		ws_error(err, WS_FATAL,
			 "repository \"%s\" does not match this cluster's version or WAL segment size", repo);
		describe(e, c->sysid, ci->pg_major, c->seg_size, err);
		ws_error_hint(err, "After pg_upgrade, run \"walship upgrade --repo=%s --pgdata=DIR\" once.",
			      repo);
	}
	return WS_FATAL;
}

int cluster_fetch_epoch(const RepoMeta *meta, const ClusterInfo *ci, const char *epoch_id, const char *repo,
			const RepoEpoch **out, WsError *err)
{
	const RepoEpoch *e;
	if (epoch_id != NULL) {
		e = repo_meta_find_id(meta, epoch_id);
		if (e == NULL)
			return ws_error(err, WS_FATAL, "repository \"%s\" has no epoch \"%s\"", repo,
					epoch_id);
		/*
		 * An epoch's name says nothing of its cluster (every PostgreSQL 15
		 * repository begins with "15-1"): a wrong volume mounted at the path
		 * must not answer "not found", nor serve another cluster's .history.
		 */
		if (e->sysid != ci->control.sysid || e->seg_size != ci->control.seg_size) {
			ws_error(err, WS_FATAL,
				 "epoch \"%s\" of repository \"%s\" belongs to another cluster", epoch_id,
				 repo);
			describe(e, ci->control.sysid, ci->pg_major, ci->control.seg_size, err);
			ws_error_hint(
				err,
				"Check that repo names this cluster's repository (a wrong volume mounted at "
				"its path?) and that --epoch names this cluster's epoch (walship list).");
			return WS_FATAL;
		}
	} else {
		e = repo_meta_find_sysid(meta, ci->control.sysid);
		if (e == NULL) {
			ws_error(err, WS_FATAL, "repository \"%s\" belongs to another cluster", repo);
			describe(repo_meta_newest(meta), ci->control.sysid, ci->pg_major,
				 ci->control.seg_size, err);
			ws_error_hint(
				err,
				"Set repo to this cluster's repository, or choose an epoch with --epoch.");
			return WS_FATAL;
		}
	}
	*out = e;
	return 0;
}
