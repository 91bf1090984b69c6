/*
 * test_pgconf.c - PostgreSQL configuration lines as the server reads them
 * (names, '=', quoted values with '' and backslash escapes, comments, what
 * is a syntax error), and postgresql-common clusters found by their data
 * directory or by VERSION/NAME in a made-up /etc/postgresql.
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
#include "pg/pgconf.h"

static void expect_setting(const char *line, const char *name, const char *value)
{
	PgConfLine l;
	if (pgconf_line(line, strlen(line), &l) != PGCONF_SETTING)
		fail_msg("\"%s\" did not parse as a setting", line);
	assert_string_equal(l.name, name);
	assert_string_equal(l.value, value);
	pgconf_line_free(&l);
}

static void expect_kind(const char *line, PgConfKind kind)
{
	PgConfLine l;
	if (pgconf_line(line, strlen(line), &l) != kind)
		fail_msg("\"%s\" is not of kind %d", line, (int)kind);
	pgconf_line_free(&l);
}

static void test_lines_read_as_the_server_reads_them(void **state)
{
	(void)state;
	expect_setting("port = 5432", "port", "5432");
	expect_setting("  port=5433 # the second", "port", "5433");
	expect_setting("shared_buffers 128MB", "shared_buffers", "128MB");
	expect_setting("data_directory = '/var/lib/postgresql/15/main'\t\t# use data in another directory",
		       "data_directory", "/var/lib/postgresql/15/main");
	expect_setting("include_dir 'conf.d'", "include_dir", "conf.d");
	expect_setting("archive_command = 'cp %p /a''b/%f'", "archive_command", "cp %p /a'b/%f");
	expect_setting("x.y = 'tab\\there\\\\ \\101'", "x.y", "tab\there\\ A");
	expect_setting("empty = ''", "empty", "");
	expect_kind("", PGCONF_EMPTY);
	expect_kind("   # port = 1", PGCONF_EMPTY);
	expect_kind("#data_directory = 'ConfigDir'", PGCONF_EMPTY);
	expect_kind("port = ", PGCONF_BAD);
	expect_kind("port = 'unterminated", PGCONF_BAD);
	expect_kind("port = 1 2", PGCONF_BAD);
	expect_kind("9port = 1", PGCONF_BAD);
	expect_kind("= 1", PGCONF_BAD);
}

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
		cmocka_unit_test(test_lines_read_as_the_server_reads_them),
		cmocka_unit_test(test_clusters_found_by_data_directory_and_by_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
