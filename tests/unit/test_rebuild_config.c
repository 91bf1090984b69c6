/*
 * test_rebuild_config.c - PostgreSQL's configuration syntax as pg/pgconf
 * reads it (both forms of a setting, quotes with '' and backslash escapes,
 * comments, the include directives), and the sanitiser that makes a copy's
 * configuration self-contained: every directive kind, the comments that mark
 * each change, and what it refuses with FILE:LINE.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/rebuild_config.h"
#include "pg/pgconf.h"
#include "util/mem.h"

/* ---- the parser ---- */

static void expect_setting(const char *line, const char *name, const char *value, bool quoted)
{
	PgConfLine l;
	PgConfKind k = pgconf_parse_line(line, strlen(line), &l);
	if (k != PGCONF_SETTING)
		fail_msg("\"%s\": not a setting (%s)", line, l.error ? l.error : "blank");
	assert_string_equal(l.name, name);
	assert_string_equal(l.value, value);
	assert_int_equal(l.quoted, quoted);
	pgconf_line_clear(&l);
}

static void expect_kind(const char *line, PgConfKind kind)
{
	PgConfLine l;
	PgConfKind k = pgconf_parse_line(line, strlen(line), &l);
	if (k != kind)
		fail_msg("\"%s\": kind %d, expected %d", line, k, kind);
	pgconf_line_clear(&l);
}

static void test_parse_lines(void **state)
{
	(void)state;
	expect_setting("port = 5432", "port", "5432", false);
	expect_setting("port 5432", "port", "5432", false);
	expect_setting("  port=5432   # the port", "port", "5432", false);
	expect_setting("shared_buffers = 128MB", "shared_buffers", "128MB", false);
	expect_setting("data_directory = '/var/lib/postgresql/15/main'\t# use data in another directory",
		       "data_directory", "/var/lib/postgresql/15/main", true);
	expect_setting("archive_command = 'cp %p ''/x y''/%f'", "archive_command", "cp %p '/x y'/%f", true);
	expect_setting("archive_command = 'a\\'b\\\\c'", "archive_command", "a'b\\c", true);
	expect_setting("x = 'tab\\there'", "x", "tab\there", true);
	expect_setting("x = '\\101'", "x", "A", true);
	expect_setting("x = '# not a comment'", "x", "# not a comment", true);
	expect_setting("x = ''", "x", "", true);
	expect_setting("include_dir 'conf.d'", "include_dir", "conf.d", true);
	expect_setting("include = 'a.conf'", "include", "a.conf", true);
	expect_setting("INCLUDE_IF_EXISTS '/etc/x.conf'", "INCLUDE_IF_EXISTS", "/etc/x.conf", true);
	expect_setting("auto_explain.log_min_duration = -1", "auto_explain.log_min_duration", "-1", false);
	expect_setting("listen_addresses = '*'", "listen_addresses", "*", true);
	expect_setting("x = 1.5e3", "x", "1.5e3", false);
	expect_kind("", PGCONF_BLANK);
	expect_kind("   \t", PGCONF_BLANK);
	expect_kind("# port = 5432", PGCONF_BLANK);
	expect_kind("#data_directory = 'x'", PGCONF_BLANK);
	expect_kind("port =", PGCONF_ERROR);
	expect_kind("x = 'open", PGCONF_ERROR);
	expect_kind("x = a b", PGCONF_ERROR);
	expect_kind("= 5", PGCONF_ERROR);
	expect_kind("9x = 5", PGCONF_ERROR);
	expect_kind("listen_addresses = *", PGCONF_ERROR); /* the server wants it quoted too */
	assert_true(pgconf_name_is("Data_Directory", "data_directory"));
	assert_false(pgconf_name_is("data_directory_x", "data_directory"));
	char *q = pgconf_quote("it's a\\b");
	assert_string_equal(q, "'it''s a\\\\b'");
	free(q);
	/* A line break in a value stays inside the quotes: it cannot start a line of its own. */
	q = pgconf_quote("x\ndata_directory = 'y'");
	assert_string_equal(q, "'x\\ndata_directory = ''y'''");
	free(q);
	expect_setting("x = 'a\\nb'", "x", "a\nb", true);
}

/* ---- the sanitiser, over files in memory ---- */

typedef struct MemFile {
	const char *path;
	const char *text;
} MemFile;

static int mem_read(void *ctx, const char *path, char **text, size_t *len, WsError *err)
{
	for (const MemFile *f = ctx; f->path != NULL; f++) {
		if (strcmp(f->path, path) == 0 && f->text != NULL) {
			*text = xstrdup(f->text);
			*len = strlen(f->text);
			return 0;
		}
	}
	return ws_error(err, WS_NOT_FOUND, "no \"%s\"", path);
}

static int mem_list(void *ctx, const char *dir, char ***names, int *n, WsError *err)
{
	bool found = false;
	*names = NULL;
	*n = 0;
	for (const MemFile *f = ctx; f->path != NULL; f++) {
		size_t k = strlen(dir);
		if (strncmp(f->path, dir, k) == 0 && f->path[k] == '/') {
			found = true;
			if (f->text == NULL)
				continue; /* the directory itself */
			*names = xrealloc(*names, (size_t)(*n + 1) * sizeof(**names));
			(*names)[(*n)++] = xstrdup(f->path + k + 1);
		}
	}
	return found ? 0 : ws_error(err, WS_NOT_FOUND, "no directory \"%s\"", dir);
}

#define ETC  "/etc/postgresql/15/main"
#define DATA "/var/lib/postgresql/15/main"
#define COPY "/srv/copy"

static int sanitise(MemFile *files, bool from_backup, RebuildConf *out, WsError *err)
{
	RebuildConfSource src = {mem_read, mem_list, files, from_backup};
	const char *text = files[0].text;
	ws_error_clear(err);
	return rebuild_conf_sanitise(files[0].path, text, strlen(text), DATA, ETC, COPY, &src, out, err);
}

static const RebuildConfFile *file_of(const RebuildConf *c, const char *rel)
{
	for (int i = 0; i < c->nfiles; i++)
		if (strcmp(c->files[i].rel, rel) == 0)
			return &c->files[i];
	fail_msg("no file \"%s\" in the copy's configuration", rel);
	return NULL;
}

static void assert_has(const char *text, const char *want)
{
	if (strstr(text, want) == NULL)
		fail_msg("expected\n%s\nin\n%s", want, text);
}

static void assert_lacks(const char *text, const char *unwanted)
{
	if (strstr(text, unwanted) != NULL)
		fail_msg("did not expect\n%s\nin\n%s", unwanted, text);
}

/* A Debian postgresql.conf: each line that names the source cluster is removed or rewritten. */
static void test_debian_conf(void **state)
{
	(void)state;
	MemFile files[] = {
		{ETC "/postgresql.conf", "# comment kept\n"
					 "data_directory = '" DATA "'\t\t# use data in another directory\n"
					 "hba_file = '" ETC "/pg_hba.conf'\n"
					 "ident_file '" ETC "/pg_ident.conf'\n"
					 "external_pid_file = '/var/run/postgresql/15-main.pid'\n"
					 "stats_temp_directory = '/var/run/postgresql/15-main.pg_stat_tmp'\n"
					 "port = 5432\n"
					 "ssl_cert_file = '/etc/ssl/certs/ssl-cert-snakeoil.pem'\n"
					 "log_directory = '" DATA "/log'\n"
					 "include_dir = 'conf.d'\n"
					 "include_if_exists 'absent.conf'\n"
					 "include 'extra.conf'   # more\n"},
		{ETC "/conf.d", NULL},
		{ETC "/conf.d/b.conf", "work_mem = 8MB\n"},
		{ETC "/conf.d/a.conf", "shared_buffers = 1GB\n"},
		{ETC "/conf.d/.hidden.conf", "x = 1\n"},
		{ETC "/conf.d/notes.txt", "x = 1\n"},
		{ETC "/extra.conf", "max_connections = 7\n"},
		{NULL, NULL},
	};
	RebuildConf c = {0};
	WsError err;
	int rc = sanitise(files, false, &c, &err);
	if (rc != 0)
		fail_msg("refused: %s", err.msg);
	const char *t = c.files[0].text;
	assert_string_equal(c.files[0].rel, "postgresql.conf");
	assert_true(strncmp(t, "# walship rebuild: written from \"" ETC "/postgresql.conf\"; 9 lines changed",
			    60) == 0);
	assert_has(t, "# comment kept\n");
	assert_has(t, "# walship rebuild: removed (the copy's data directory is where it is started): "
		      "data_directory = '" DATA "'\t\t# use data in another directory\n");
	assert_has(t,
		   "# walship rebuild: removed (the copy has its own file beside postgresql.conf): hba_file");
	assert_has(
		t,
		"# walship rebuild: removed (the copy has its own file beside postgresql.conf): ident_file");
	assert_has(t, "# walship rebuild: removed (it names the source cluster's file): external_pid_file");
	assert_has(t,
		   "# walship rebuild: removed (it names the source cluster's file): stats_temp_directory");
	assert_has(t, "\nport = 5432\n");
	assert_has(t, "\nssl_cert_file = '/etc/ssl/certs/ssl-cert-snakeoil.pem'\n");
	assert_has(t, "log_directory = '" COPY "/log'\n");
	assert_has(t, "\ninclude_dir = '" COPY "/conf.d'\n");
	assert_has(t,
		   "# walship rebuild: removed (the file does not exist): include_if_exists 'absent.conf'\n");
	assert_has(t, "\ninclude = '" COPY "/extra.conf'\n");
	assert_lacks(t, "\ndata_directory");
	assert_lacks(t, "\nexternal_pid_file");
	assert_string_equal(c.hba_file, ETC "/pg_hba.conf");
	assert_string_equal(c.ident_file, ETC "/pg_ident.conf");
	/* The included files, in the order PostgreSQL reads them; unchanged ones byte for byte. */
	assert_null(file_of(&c, "conf.d")->text);
	assert_string_equal(file_of(&c, "conf.d/a.conf")->text, "shared_buffers = 1GB\n");
	assert_string_equal(file_of(&c, "conf.d/b.conf")->text, "work_mem = 8MB\n");
	assert_string_equal(file_of(&c, "extra.conf")->text, "max_connections = 7\n");
	assert_int_equal(c.nfiles, 5);
	assert_int_equal(c.nwarnings, 0);
	rebuild_conf_free(&c);
}

/* Nothing to change: the file comes through byte for byte, without a final newline added. */
static void test_unchanged_is_byte_for_byte(void **state)
{
	(void)state;
	MemFile files[] = {{"/home/me/my.conf", "shared_buffers = 17MB\n# x\nlisten_addresses = ''"},
			   {NULL, NULL}};
	RebuildConf c = {0};
	WsError err;
	assert_int_equal(sanitise(files, false, &c, &err), 0);
	assert_int_equal(c.nchanges, 0);
	assert_string_equal(c.files[0].text, files[0].text);
	assert_int_equal(c.files[0].len, strlen(files[0].text));
	rebuild_conf_free(&c);
}

/* Includes inside included files are followed and rewritten there too; a name taken gets another. */
static void test_nested_includes(void **state)
{
	(void)state;
	MemFile files[] = {
		{ETC "/postgresql.conf", "include 'a/x.conf'\ninclude '/opt/pg/x.conf'\n"},
		{ETC "/a/x.conf", "include = '../y.conf'\nexternal_pid_file = '/run/x.pid'\n"},
		{ETC "/y.conf", "work_mem = 1MB\n"},
		{"/opt/pg/x.conf", "# other x\n"},
		{NULL, NULL},
	};
	RebuildConf c = {0};
	WsError err;
	int rc = sanitise(files, false, &c, &err);
	if (rc != 0)
		fail_msg("refused: %s", err.msg);
	assert_has(c.files[0].text, "\ninclude = '" COPY "/x.conf'\n");
	assert_has(c.files[0].text, "\ninclude = '" COPY "/walship-2-x.conf'\n");
	const char *x = file_of(&c, "x.conf")->text;
	assert_has(x, "\ninclude = '" COPY "/y.conf'\n");
	assert_has(x, "# walship rebuild: removed (it names the source cluster's file): external_pid_file");
	assert_string_equal(file_of(&c, "walship-2-x.conf")->text, "# other x\n");
	rebuild_conf_free(&c);
}

static void expect_refused(const char *conf, bool from_backup, const char *words)
{
	MemFile files[] = {{"/home/me/my.conf", conf}, {ETC "/conf.d/a.conf", "x = 1\n"}, {NULL, NULL}};
	RebuildConf c = {0};
	WsError err;
	int rc = sanitise(files, from_backup, &c, &err);
	if (rc != WS_FATAL)
		fail_msg("\"%s\" was not refused", conf);
	if (strstr(err.msg, words) == NULL)
		fail_msg("\"%s\": message \"%s\" does not say \"%s\"", conf, err.msg, words);
	rebuild_conf_free(&c);
}

static void test_refused(void **state)
{
	(void)state;
	expect_refused("a = 1\ninclude 'nowhere.conf'\n", false,
		       "/home/me/my.conf:2: include names \"/home/me/nowhere.conf\", which does not exist");
	expect_refused("include_dir '/srv/none'\n", false,
		       "/home/me/my.conf:1: include_dir names \"/srv/none\", which is not a directory here");
	expect_refused(
		"ssl_key_file = '" ETC "/server.key'\n", false,
		"/home/me/my.conf:1: ssl_key_file points into the source cluster's configuration directory");
	expect_refused("archive_command = 'cp " DATA "/x %p'\n", true,
		       "/home/me/my.conf:1: archive_command names the source cluster's data directory");
	expect_refused("\n\nport = 'open\n", false, "/home/me/my.conf:3: syntax error");
	expect_refused("include 'my.conf'\n", false, "includes nested more than 10 deep");
}

/* From a backup, an include it lacks (no setting there, or unreadable at backup time) goes, with a warning.
 */
static void test_backup_lacks_an_include(void **state)
{
	(void)state;
	MemFile files[] = {
		{ETC "/postgresql.conf", "include 'empty.conf'\ninclude_dir 'conf.d'\nport = 5433\n"},
		{NULL, NULL}};
	RebuildConf c = {0};
	WsError err;
	assert_int_equal(sanitise(files, true, &c, &err), 0);
	assert_int_equal(c.nwarnings, 2);
	assert_has(c.files[0].text, "# walship rebuild: removed (the backup does not hold the file");
	assert_has(c.files[0].text,
		   "# walship rebuild: removed (the backup holds no file of this directory)");
	assert_has(c.files[0].text, "\nport = 5433\n");
	rebuild_conf_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_lines),
		cmocka_unit_test(test_debian_conf),
		cmocka_unit_test(test_unchanged_is_byte_for_byte),
		cmocka_unit_test(test_nested_includes),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_backup_lacks_an_include),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
