/*
 * pgcommon.h - clusters of Debian's and Ubuntu's postgresql-common: each is
 * /etc/postgresql/VERSION/NAME (postgresql.conf, pg_hba.conf, pg_ident.conf,
 * conf.d), its data directory named by postgresql.conf's data_directory (or
 * the conf directory's "pgdata" symlink), started and stopped with
 * pg_ctlcluster VERSION NAME, logging to the conf directory's "log" symlink or
 * /var/log/postgresql/postgresql-VERSION-NAME.log.
 *
 * Memory: a PgCommonCluster owns its strings (pgcommon_cluster_free).
 */
#ifndef WALSHIP_PG_PGCOMMON_H
#define WALSHIP_PG_PGCOMMON_H

#include "util/error.h"

#define PGCOMMON_ETC "/etc/postgresql"

typedef struct PgCommonCluster {
	char *version;  /* "15" */
	char *name;     /* "main" */
	char *conf_dir; /* /etc/postgresql/15/main */
	char *conf;     /* its postgresql.conf */
	char *data_dir; /* as the configuration names it */
	char *log_file; /* where pg_ctlcluster sends the server's output */
} PgCommonCluster;

/*
 * The cluster under etc (PGCOMMON_ETC in walship; tests pass another) whose
 * data directory is pgdata (compared as real paths when both exist): 1 and
 * *out filled, or 0 when no cluster there names it (or etc does not exist).
 */
int pgcommon_cluster_of(const char *etc, const char *pgdata, PgCommonCluster *out);

/*
 * The cluster spec names, "VERSION/NAME" as pg_lsclusters shows it (15/main).
 * WS_USAGE when spec is not of that form or no such cluster exists, with a
 * hint to run pg_lsclusters.
 */
int pgcommon_cluster_named(const char *etc, const char *spec, PgCommonCluster *out, WsError *err);

void pgcommon_cluster_free(PgCommonCluster *c);

#endif
