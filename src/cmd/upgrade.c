/*
 * upgrade.c - walship upgrade.  pg_upgrade gives the cluster a new system
 * identifier and restarts it at timeline 1 with no history: its WAL must not
 * mix with the old cluster's (whose 00000002.history it would collide with),
 * and refusing it forever would fill pg_wal.  So the operator adds an epoch,
 * explicitly, once.
 */
#include "cmd/upgrade.h"

#include <inttypes.h>
#include <stdio.h>

#include "pg/cluster.h"
#include "repo/repo.h"

int cmd_upgrade(const Config *cfg, const char *pgdata, WsError *err)
{
	ClusterInfo ci;
	Repo *repo = NULL;
	char v1[16], v2[16], sz[32];
	int rc = cluster_read(pgdata, &ci, err);
	if (rc != 0)
		return rc;
	if ((rc = repo_open(cfg, &repo, err)) != 0)
		return rc;

	const RepoMeta *meta = repo_meta(repo);
	const RepoEpoch *newest = repo_meta_newest(meta);
	const RepoEpoch *mine = repo_meta_find_sysid(meta, ci.control.sysid);
	if (mine == newest && newest->pg_major == ci.pg_major && newest->seg_size == ci.control.seg_size) {
		printf("repository \"%s\" is up to date: epoch \"%s\" is this cluster's\n",
		       repo_display(repo), newest->id);
		goto done;
	}
	if (mine != NULL) {
		rc = ws_error(err, WS_FATAL,
			      "this cluster (system identifier %" PRIu64
			      ") already has epoch \"%s\" in repository "
			      "\"%s\"",
			      ci.control.sysid, mine->id, repo_display(repo));
		ws_error_detail(err,
				"The newest epoch is \"%s\" (system identifier %" PRIu64 ", PostgreSQL %s).",
				newest->id, newest->sysid, pg_major_str(newest->pg_major, v1, sizeof(v1)));
		ws_error_hint(err,
			      "An upgrade adds an epoch for the new cluster; run it with --pgdata set to the "
			      "upgraded cluster's data directory.");
		goto done;
	}
	if (ci.pg_major < newest->pg_major) {
		rc = ws_error(
			err, WS_FATAL,
			"PostgreSQL %s is older than the repository's newest epoch \"%s\" (PostgreSQL %s)",
			pg_major_str(ci.pg_major, v1, sizeof(v1)), newest->id,
			pg_major_str(newest->pg_major, v2, sizeof(v2)));
		ws_error_hint(err,
			      "Check --pgdata: pg_upgrade only goes to the same or a newer major version.");
		goto done;
	}

	/* Adding reallocates the epoch array: keep the old epoch's id. */
	char old_id[sizeof(newest->id)];
	snprintf(old_id, sizeof(old_id), "%s", newest->id);
	const RepoEpoch *added;
	if ((rc = repo_add_epoch(repo, ci.control.sysid, ci.pg_major, ci.control.seg_size, &added, err)) != 0)
		goto done;
	printf("added epoch \"%s\" to repository \"%s\": system identifier %" PRIu64
	       ", PostgreSQL %s, %s WAL "
	       "segments\n",
	       added->id, repo_display(repo), added->sysid, pg_major_str(added->pg_major, v1, sizeof(v1)),
	       cluster_size_str(added->seg_size, sz, sizeof(sz)));
	printf("pushes from this cluster now go to \"%s/wal\"; the old epoch \"%s\" stays readable\n",
	       added->id, old_id);
done:
	repo_free(repo);
	return rc;
}
