/*
 * init.c - walship init: the only command that creates a repository, so that
 * an unmounted volume is never mistaken for a new, empty archive.
 */
#include "cmd/init.h"

#include <inttypes.h>
#include <stdio.h>

#include "cmd/cluster.h"
#include "repo/repo.h"

int cmd_init(const Config *cfg, const char *pgdata, WsError *err)
{
	ClusterInfo ci;
	Repo *repo = NULL;
	int rc = cluster_read(pgdata, &ci, err);
	if (rc != 0)
		return rc;
	rc = repo_create(cfg, ci.control.sysid, ci.pg_major, ci.control.seg_size, &repo, err);
	if (rc != 0)
		return rc;
	const RepoMeta *meta = repo_meta(repo);
	const RepoEpoch *e = repo_meta_newest(meta);
	char v[16], s[32];
	printf("initialised repository \"%s\" (%s)\n", repo_display(repo), meta->uuid);
	printf("epoch \"%s\": system identifier %" PRIu64 ", PostgreSQL %s, %s WAL segments\n", e->id,
	       e->sysid, pg_major_str(e->pg_major, v, sizeof(v)),
	       cluster_size_str(e->seg_size, s, sizeof(s)));
	repo_free(repo);
	return 0;
}
