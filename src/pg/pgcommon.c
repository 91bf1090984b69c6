/*
 * pgcommon.c - postgresql-common clusters (see pgcommon.h).
 */
#include "pg/pgcommon.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/pgconf.h"
#include "util/mem.h"

/* Where the symbolic link dir/name points (malloc'd), or NULL when it is none. */
static char *link_target(const char *dir, const char *name)
{
	char *link = xasprintf("%s/%s", dir, name);
	char target[PATH_MAX];
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	free(link);
	if (n <= 0)
		return NULL;
	target[n] = '\0';
	return xstrdup(target);
}

/* Where postgresql-common's PgCommon.pm finds the data directory: data_directory, else the pgdata link. */
static char *data_dir_of(const char *conf_dir, const char *conf)
{
	char *value = NULL;
	WsError e;
	ws_error_clear(&e);
	if (pgconf_file_value(conf, "data_directory", &value, &e) == 0 && value != NULL && value[0] != '\0')
		return value;
	free(value);
	return link_target(conf_dir, "pgdata");
}

static bool same_dir(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];
	if (realpath(a, ra) != NULL && realpath(b, rb) != NULL)
		return strcmp(ra, rb) == 0;
	return strcmp(a, b) == 0;
}

/* Fill c for etc/version/name if it is a cluster (its postgresql.conf names a data directory). */
static bool cluster_load(const char *etc, const char *version, const char *name, PgCommonCluster *c)
{
	memset(c, 0, sizeof(*c));
	c->conf_dir = xasprintf("%s/%s/%s", etc, version, name);
	c->conf = xasprintf("%s/postgresql.conf", c->conf_dir);
	c->data_dir = access(c->conf, R_OK) == 0 ? data_dir_of(c->conf_dir, c->conf) : NULL;
	if (c->data_dir == NULL) {
		pgcommon_cluster_free(c);
		return false;
	}
	c->version = xstrdup(version);
	c->name = xstrdup(name);
	c->log_file = link_target(c->conf_dir, "log");
	if (c->log_file == NULL)
		c->log_file = xasprintf("/var/log/postgresql/postgresql-%s-%s.log", version, name);
	return true;
}

static bool entry_ok(const struct dirent *d)
{
	return d->d_name[0] != '.' && strchr(d->d_name, '/') == NULL;
}

int pgcommon_cluster_of(const char *etc, const char *pgdata, PgCommonCluster *out)
{
	DIR *vd = opendir(etc);
	struct dirent *v;
	int found = 0;

	memset(out, 0, sizeof(*out));
	if (vd == NULL)
		return 0;
	while (!found && (v = readdir(vd)) != NULL) {
		if (!entry_ok(v))
			continue;
		char *vdir = xasprintf("%s/%s", etc, v->d_name);
		DIR *cd = opendir(vdir);
		struct dirent *c;
		while (cd != NULL && !found && (c = readdir(cd)) != NULL) {
			if (!entry_ok(c) || !cluster_load(etc, v->d_name, c->d_name, out))
				continue;
			if (same_dir(out->data_dir, pgdata))
				found = 1;
			else
				pgcommon_cluster_free(out);
		}
		if (cd != NULL)
			closedir(cd);
		free(vdir);
	}
	closedir(vd);
	return found;
}

int pgcommon_cluster_named(const char *etc, const char *spec, PgCommonCluster *out, WsError *err)
{
	const char *slash = strchr(spec, '/');
	memset(out, 0, sizeof(*out));
	if (slash == NULL || slash == spec || slash[1] == '\0' || strchr(slash + 1, '/') != NULL ||
	    strstr(spec, "..") != NULL) {
		ws_error(err, WS_USAGE, "invalid cluster \"%s\"", spec);
		ws_error_hint(err, "Name it as pg_lsclusters shows it: VERSION/NAME, for example 15/main.");
		return WS_USAGE;
	}
	char *version = xstrndup(spec, (size_t)(slash - spec));
	bool ok = cluster_load(etc, version, slash + 1, out);
	free(version);
	if (!ok) {
		ws_error(err, WS_USAGE, "no cluster %s: %s/%s/postgresql.conf names no data directory", spec,
			 etc, spec);
		ws_error_hint(err, "pg_lsclusters lists the clusters of this machine.");
		return WS_USAGE;
	}
	return 0;
}

void pgcommon_cluster_free(PgCommonCluster *c)
{
	free(c->version);
	free(c->name);
	free(c->conf_dir);
	free(c->conf);
	free(c->data_dir);
	free(c->log_file);
	memset(c, 0, sizeof(*c));
}
