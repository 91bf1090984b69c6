/*
 * test_pgcommon.c - postgresql-common clusters found by their data directory
 * (data_directory, the last uncommented line; or the pgdata link) or by
 * VERSION/NAME in a made-up /etc/postgresql, and what is refused.  The
 * configuration-line parser itself is tested in test_rebuild_config.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/pgcommon.h"

static char *make_tree(void)
{
	char tmpl[] = "/tmp/walship-pgconf-XXXXXX";
	char *root = mkdtemp(tmpl);
	assert_non_null(root);
	return strdup(root);
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_clusters_found_by_data_directory_and_by_name(void **state)
{
	(void)state;
	char *root = make_tree();
	char path[512], data[512], other[512];
	snprintf(path, sizeof(path), "%s/15", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/15/main", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(data, sizeof(data), "%s/data-main", root);
	assert_int_equal(mkdir(data, 0700), 0);
	snprintf(path, sizeof(path), "%s/15/main/postgresql.conf", root);
	char conf[1024];
	snprintf(conf, sizeof(conf),
		 "#data_directory = '/nowhere'\ndata_directory = '%s'\t# here\nport = 5432\n", data);
	put(path, conf);
	/* a cluster named by its pgdata link, and a directory that is no cluster */
	snprintf(path, sizeof(path), "%s/15/linked", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/15/linked/postgresql.conf", root);
	put(path, "port = 5433\n");
	snprintf(other, sizeof(other), "%s/data-linked", root);
	assert_int_equal(mkdir(other, 0700), 0);
	snprintf(path, sizeof(path), "%s/15/linked/pgdata", root);
	assert_int_equal(symlink(other, path), 0);
	snprintf(path, sizeof(path), "%s/15/empty", root);
	assert_int_equal(mkdir(path, 0755), 0);

	PgCommonCluster c;
	char spelled[600];
	snprintf(spelled, sizeof(spelled), "%s/./data-main", root);
	assert_int_equal(pgcommon_cluster_of(root, spelled, &c), 1);
	assert_string_equal(c.version, "15");
	assert_string_equal(c.name, "main");
	assert_string_equal(c.data_dir, data);
	assert_string_equal(c.log_file, "/var/log/postgresql/postgresql-15-main.log");
	pgcommon_cluster_free(&c);
	assert_int_equal(pgcommon_cluster_of(root, other, &c), 1);
	assert_string_equal(c.name, "linked");
	pgcommon_cluster_free(&c);
	assert_int_equal(pgcommon_cluster_of(root, "/srv/pitr", &c), 0);
	assert_int_equal(pgcommon_cluster_of("/nonexistent-etc", data, &c), 0);

	WsError err;
	ws_error_clear(&err);
	assert_int_equal(pgcommon_cluster_named(root, "15/main", &c, &err), 0);
	assert_string_equal(c.data_dir, data);
	pgcommon_cluster_free(&c);
	ws_error_clear(&err);
	assert_int_equal(pgcommon_cluster_named(root, "15/empty", &c, &err), WS_USAGE);
	assert_non_null(strstr(err.msg, "no cluster 15/empty"));
	ws_error_clear(&err);
	assert_int_equal(pgcommon_cluster_named(root, "main", &c, &err), WS_USAGE);
	ws_error_clear(&err);
	assert_int_equal(pgcommon_cluster_named(root, "../15/main", &c, &err), WS_USAGE);

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clusters_found_by_data_directory_and_by_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
