/*
 * test_config.c - configuration precedence, file syntax, permission rules and
 * integer parsing, as an operator would see them.
 *
 * Every test runs with the WALSHIP_* and AWS_* variables the module reads
 * saved and unset (restored at the end), in its own mkdtemp directory, and
 * never reads /etc/walship.
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

#include "util/config.h"
#include "util/mem.h"

static const char *const env_vars[] = {
	"WALSHIP_CONFIG",       "WALSHIP_REPO",          "WALSHIP_COMPRESS_LEVEL", "WALSHIP_LOG_LEVEL",
	"WALSHIP_SPOOL_PATH",   "WALSHIP_IO_TIMEOUT",    "WALSHIP_S3_ENDPOINT",    "WALSHIP_S3_REGION",
	"WALSHIP_S3_URI_STYLE", "WALSHIP_S3_KEY",        "WALSHIP_S3_KEY_SECRET",  "WALSHIP_S3_TOKEN",
	"AWS_ACCESS_KEY_ID",    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",      "AWS_REGION",
};
#define N_ENV (sizeof(env_vars) / sizeof(env_vars[0]))

typedef struct Fixture {
	char dir[64];
	char *missing_default; /* a default path that does not exist */
	char *saved[N_ENV];
	Config *cfg;
	WsError err;
} Fixture;

static int setup(void **state)
{
	Fixture *f = xcalloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/walship-test-config-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->missing_default = xasprintf("%s/absent.conf", f->dir);
	for (size_t i = 0; i < N_ENV; i++) {
		const char *v = getenv(env_vars[i]);
		f->saved[i] = v ? xstrdup(v) : NULL;
		unsetenv(env_vars[i]);
	}
	f->cfg = config_new();
	ws_error_clear(&f->err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	Fixture *f = *state;
	char *cmd = xasprintf("rm -rf '%s'", f->dir);
	int rc = system(cmd);
	free(cmd);
	for (size_t i = 0; i < N_ENV; i++) {
		if (f->saved[i]) {
			setenv(env_vars[i], f->saved[i], 1);
			free(f->saved[i]);
		} else {
			unsetenv(env_vars[i]);
		}
	}
	config_free(f->cfg);
	free(f->missing_default);
	free(f);
	return rc == 0 ? 0 : -1;
}

/* Write name in the fixture's directory with exactly the given mode; returns the malloc'd path. */
static char *write_conf(Fixture *f, const char *name, const char *text, mode_t mode)
{
	char *path = xasprintf("%s/%s", f->dir, name);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static char *file_source(const char *path)
{
	return xasprintf("configuration file \"%s\"", path);
}

static void test_keys_table_lists_every_key_with_its_defaults(void **state)
{
	(void)state;
	const ConfigKey *k = config_keys();
	int n = 0, secrets = 0;
	for (; k[n].name != NULL; n++) {
		assert_non_null(k[n].help);
		if (k[n].secret)
			secrets++;
	}
	assert_int_equal(n, 25);
	assert_int_equal(secrets, 5);

	Config *cfg = config_new();
	assert_string_equal(config_get(cfg, "compress-level"), "1");
	assert_string_equal(config_get(cfg, "log-level"), "warning");
	assert_string_equal(config_get(cfg, "spool-path"), "/var/spool/walship");
	assert_string_equal(config_get(cfg, "io-timeout"), "60");
	assert_string_equal(config_get(cfg, "s3-uri-style"), "host");
	assert_null(config_get(cfg, "repo"));
	assert_null(config_get(cfg, "s3-key"));
	assert_string_equal(config_source(cfg, "repo"), "default");
	assert_null(config_get(cfg, "no-such-key"));
	assert_null(config_source(cfg, "no-such-key"));
	config_free(cfg);
	config_free(NULL);
}

static void test_missing_default_file_is_fine(void **state)
{
	Fixture *f = *state;
	assert_int_equal(config_load(f->cfg, NULL, f->missing_default, &f->err), 0);
	assert_string_equal(config_get(f->cfg, "compress-level"), "1");
	assert_string_equal(config_source(f->cfg, "compress-level"), "default");
}

static void test_precedence_default_file_env_option(void **state)
{
	Fixture *f = *state;
	char *path = write_conf(f, "walship.conf",
				"repo = /from/file\n"
				"compress-level = 5\n"
				"log-level = info\n"
				"io-timeout = 30\n",
				0600);
	char *src = file_source(path);
	setenv("WALSHIP_LOG_LEVEL", "debug", 1);
	setenv("WALSHIP_REPO", "/from/env", 1);
	setenv("WALSHIP_IO_TIMEOUT", "45", 1);
	setenv("WALSHIP_SPOOL_PATH", "/from/env/spool", 1);
	/* One option before loading, one after: precedence is by source, not call order. */
	assert_int_equal(config_set_option(f->cfg, "repo", "/from/option", &f->err), 0);
	assert_int_equal(config_load(f->cfg, path, f->missing_default, &f->err), 0);
	assert_int_equal(config_set_option(f->cfg, "io-timeout", "10", &f->err), 0);

	assert_string_equal(config_get(f->cfg, "repo"), "/from/option");
	assert_string_equal(config_source(f->cfg, "repo"), "command line");
	assert_string_equal(config_get(f->cfg, "io-timeout"), "10");
	assert_string_equal(config_source(f->cfg, "io-timeout"), "command line");
	assert_string_equal(config_get(f->cfg, "log-level"), "debug");
	assert_string_equal(config_source(f->cfg, "log-level"), "environment variable WALSHIP_LOG_LEVEL");
	assert_string_equal(config_get(f->cfg, "spool-path"), "/from/env/spool");
	assert_string_equal(config_source(f->cfg, "spool-path"), "environment variable WALSHIP_SPOOL_PATH");
	assert_string_equal(config_get(f->cfg, "compress-level"), "5");
	assert_string_equal(config_source(f->cfg, "compress-level"), src);
	assert_string_equal(config_get(f->cfg, "s3-uri-style"), "host");
	assert_string_equal(config_source(f->cfg, "s3-uri-style"), "default");
	/* The file's own values, under the environment and the command line (walship check asks). */
	const char *fsrc = NULL;
	assert_string_equal(config_file_value(f->cfg, "repo", &fsrc), "/from/file");
	assert_string_equal(fsrc, src);
	assert_string_equal(config_file_value(f->cfg, "log-level", NULL), "info");
	assert_null(config_file_value(f->cfg, "spool-path", NULL));
	assert_null(config_file_value(f->cfg, "no-such-key", NULL));
	free(src);
	free(path);
}

static void test_empty_environment_variable_counts_as_unset(void **state)
{
	Fixture *f = *state;
	char *path = write_conf(f, "walship.conf", "compress-level = 7\n", 0600);
	setenv("WALSHIP_COMPRESS_LEVEL", "", 1);
	assert_int_equal(config_load(f->cfg, path, NULL, &f->err), 0);
	assert_string_equal(config_get(f->cfg, "compress-level"), "7");
	free(path);
}

static void test_aws_environment_read_and_walship_wins(void **state)
{
	Fixture *f = *state;
	setenv("AWS_REGION", "eu-west-1", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "aws-secret", 1);
	setenv("WALSHIP_S3_KEY_SECRET", "walship-secret", 1);
	setenv("WALSHIP_S3_TOKEN", "", 1);
	setenv("AWS_SESSION_TOKEN", "aws-token", 1);
	setenv("WALSHIP_NOT_A_KEY", "ignored", 1);
	assert_int_equal(config_load(f->cfg, NULL, f->missing_default, &f->err), 0);
	unsetenv("WALSHIP_NOT_A_KEY");

	assert_string_equal(config_get(f->cfg, "s3-region"), "eu-west-1");
	assert_string_equal(config_source(f->cfg, "s3-region"), "environment variable AWS_REGION");
	assert_string_equal(config_get(f->cfg, "s3-key"), "AKIAEXAMPLE");
	assert_string_equal(config_source(f->cfg, "s3-key"), "environment variable AWS_ACCESS_KEY_ID");
	assert_string_equal(config_get(f->cfg, "s3-key-secret"), "walship-secret");
	assert_string_equal(config_source(f->cfg, "s3-key-secret"),
			    "environment variable WALSHIP_S3_KEY_SECRET");
	/* An empty WALSHIP_ variable does not hide the AWS one. */
	assert_string_equal(config_get(f->cfg, "s3-token"), "aws-token");
	assert_string_equal(config_source(f->cfg, "s3-token"), "environment variable AWS_SESSION_TOKEN");
	/* AWS_* only feeds the keys it belongs to. */
	assert_null(config_get(f->cfg, "s3-endpoint"));
}

static void test_environment_beats_file_for_aws_keys(void **state)
{
	Fixture *f = *state;
	char *path = write_conf(f, "walship.conf", "s3-region = us-east-1\n", 0600);
	setenv("AWS_REGION", "eu-central-1", 1);
	assert_int_equal(config_load(f->cfg, path, NULL, &f->err), 0);
	assert_string_equal(config_get(f->cfg, "s3-region"), "eu-central-1");
	free(path);
}

static void test_secret_refused_on_command_line(void **state)
{
	Fixture *f = *state;
	static const char *const secrets[] = {"s3-key", "s3-key-secret", "s3-token"};
	for (size_t i = 0; i < 3; i++) {
		ws_error_clear(&f->err);
		assert_int_equal(config_set_option(f->cfg, secrets[i], "hunter2", &f->err), WS_USAGE);
		assert_int_equal(f->err.cls, WS_USAGE);
		assert_non_null(strstr(f->err.msg, secrets[i]));
		assert_non_null(strstr(f->err.msg, "not accepted on the command line"));
		assert_non_null(strstr(f->err.msg, "ps"));
		assert_non_null(strstr(f->err.msg, "archive_command"));
		assert_non_null(strstr(f->err.hint, "configuration file"));
		assert_non_null(strstr(f->err.hint, "environment"));
		assert_null(strstr(f->err.msg, "hunter2"));
		assert_null(strstr(f->err.detail, "hunter2"));
		assert_null(strstr(f->err.hint, "hunter2"));
		assert_null(config_get(f->cfg, secrets[i]));
	}
	assert_non_null(strstr(f->err.hint, "WALSHIP_S3_TOKEN"));
	assert_non_null(strstr(f->err.hint, "AWS_SESSION_TOKEN"));
}

static void test_unknown_option_is_usage_error_naming_it(void **state)
{
	Fixture *f = *state;
	assert_int_equal(config_set_option(f->cfg, "compression", "9", &f->err), WS_USAGE);
	assert_string_equal(f->err.msg, "unrecognized option \"--compression\"");
}

static void test_unknown_key_in_file_names_file_and_line(void **state)
{
	Fixture *f = *state;
	char *path = write_conf(f, "walship.conf", "# walship\n\nrepo = /r\ncompresion-level = 3\n", 0600);
	char *want = xasprintf(
		"unrecognized configuration key \"compresion-level\" in configuration file \"%s\" line 4",
		path);
	assert_int_equal(config_load(f->cfg, path, NULL, &f->err), WS_USAGE);
	assert_string_equal(f->err.msg, want);
	assert_non_null(strstr(f->err.hint, "walship.conf(5)"));
	/* A refused file contributes nothing. */
	assert_null(config_get(f->cfg, "repo"));
	free(want);
	free(path);
}

static void test_syntax_errors_name_file_and_line(void **state)
{
	Fixture *f = *state;
	static const char *const bad[] = {
		"repo = /r\nthis line has no equals sign\n",
		"repo = /r\n = value without key\n",
		"repo = /r\nrepo = \"/unterminated\n",
		"repo = /r\nrepo = \"/a\" trailing\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *path = write_conf(f, "bad.conf", bad[i], 0600);
		char *want = xasprintf("syntax error in configuration file \"%s\" line 2", path);
		ws_error_clear(&f->err);
		assert_int_equal(config_load(f->cfg, path, NULL, &f->err), WS_USAGE);
		assert_string_equal(f->err.msg, want);
		assert_true(f->err.detail[0] != '\0');
		free(want);
		free(path);
	}
}

static void test_quotes_comments_blank_lines_and_whitespace(void **state)
{
	Fixture *f = *state;
	char *path = write_conf(f, "walship.conf",
				"# full-line comment\n"
				"   # indented comment\n"
				"\n"
				"  \t \n"
				"repo = \"/var/lib/walship repo\"\n"
				"log-level='info'   # trailing comment after a quote\n"
				"\tspool-path\t=\t/spool#not-a-comment   # a comment\r\n"
				"s3-endpoint = http://127.0.0.1:9000\n"
				"s3-uri-style = \"\"\n"
				"compress-level = 4\n"
				"compress-level = 6", /* repeated, and no final newline: the last wins */
				0600);
	assert_int_equal(config_load(f->cfg, path, NULL, &f->err), 0);
	assert_string_equal(config_get(f->cfg, "repo"), "/var/lib/walship repo");
	assert_string_equal(config_get(f->cfg, "log-level"), "info");
	assert_string_equal(config_get(f->cfg, "spool-path"), "/spool#not-a-comment");
	assert_string_equal(config_get(f->cfg, "s3-endpoint"), "http://127.0.0.1:9000");
	/* An empty value counts as unset: the default shows through. */
	assert_string_equal(config_get(f->cfg, "s3-uri-style"), "host");
	assert_string_equal(config_source(f->cfg, "s3-uri-style"), "default");
	assert_string_equal(config_get(f->cfg, "compress-level"), "6");
	free(path);
}

static void test_missing_named_file_is_an_error(void **state)
{
	Fixture *f = *state;
	char *path = xasprintf("%s/nope.conf", f->dir);
	char *want = xasprintf("could not open configuration file \"%s\": No such file or directory", path);

	assert_int_equal(config_load(f->cfg, path, NULL, &f->err), WS_FATAL);
	assert_string_equal(f->err.msg, want);

	/* $WALSHIP_CONFIG names a file just as --config does. */
	setenv("WALSHIP_CONFIG", path, 1);
	ws_error_clear(&f->err);
	assert_int_equal(config_load(f->cfg, NULL, f->missing_default, &f->err), WS_FATAL);
	assert_string_equal(f->err.msg, want);
	free(want);
	free(path);
}

static void test_walship_config_env_and_explicit_path(void **state)
{
	Fixture *f = *state;
	char *a = write_conf(f, "a.conf", "repo = /a\n", 0600);
	char *b = write_conf(f, "b.conf", "repo = /b\n", 0600);
	char *c = write_conf(f, "c.conf", "repo = /c\n", 0600);

	setenv("WALSHIP_CONFIG", b, 1);
	assert_int_equal(config_load(f->cfg, NULL, c, &f->err), 0);
	assert_string_equal(config_get(f->cfg, "repo"), "/b");
	/* --config beats $WALSHIP_CONFIG; loading again replaces the file's values. */
	assert_int_equal(config_load(f->cfg, a, c, &f->err), 0);
	assert_string_equal(config_get(f->cfg, "repo"), "/a");
	char *src = file_source(a);
	assert_string_equal(config_source(f->cfg, "repo"), src);
	/* An empty $WALSHIP_CONFIG counts as unset: the default path is read. */
	setenv("WALSHIP_CONFIG", "", 1);
	assert_int_equal(config_load(f->cfg, NULL, c, &f->err), 0);
	assert_string_equal(config_get(f->cfg, "repo"), "/c");
	free(src);
	free(a);
	free(b);
	free(c);
}

static void test_group_or_world_writable_file_refused(void **state)
{
	Fixture *f = *state;
	static const mode_t modes[] = {0664, 0606, 0620, 0602};
	static const char *const shown[] = {"0664", "0606", "0620", "0602"};
	for (size_t i = 0; i < 4; i++) {
		char *path = write_conf(f, "walship.conf", "repo = /r\n", modes[i]);
		char *want = xasprintf("configuration file \"%s\" is writable by other users", path);
		char *hint = xasprintf("chmod go-w %s", path);
		ws_error_clear(&f->err);
		/* Also refused as the default file: a loose file is never silently used. */
		assert_int_equal(config_load(f->cfg, NULL, path, &f->err), WS_FATAL);
		assert_string_equal(f->err.msg, want);
		assert_non_null(strstr(f->err.detail, shown[i]));
		assert_non_null(strstr(f->err.hint, hint));
		assert_null(config_get(f->cfg, "repo"));
		free(hint);
		free(want);
		free(path);
	}
}

static void test_secret_in_world_readable_file_refused(void **state)
{
	Fixture *f = *state;
	char *path = write_conf(f, "walship.conf", "repo = /r\ns3-key-secret = SUPERSECRET\n", 0644);
	char *want = xasprintf("configuration file \"%s\" holds secrets and is readable by every user", path);
	char *hint = xasprintf("chmod o-rwx %s", path);
	assert_int_equal(config_load(f->cfg, path, NULL, &f->err), WS_FATAL);
	assert_string_equal(f->err.msg, want);
	assert_non_null(strstr(f->err.hint, hint));
	assert_non_null(strstr(f->err.hint, "0640"));
	assert_null(strstr(f->err.msg, "SUPERSECRET"));
	assert_null(strstr(f->err.detail, "SUPERSECRET"));
	assert_null(strstr(f->err.hint, "SUPERSECRET"));
	assert_null(config_get(f->cfg, "s3-key-secret"));
	free(hint);
	free(want);
	free(path);
}

static void test_secret_in_0640_file_accepted(void **state)
{
	Fixture *f = *state;
	char *path = write_conf(f, "walship.conf", "s3-key = AKIA\ns3-key-secret = 's3cr3t # kept'\n", 0640);
	assert_int_equal(config_load(f->cfg, path, NULL, &f->err), 0);
	assert_string_equal(config_get(f->cfg, "s3-key"), "AKIA");
	assert_string_equal(config_get(f->cfg, "s3-key-secret"), "s3cr3t # kept");
	free(path);
}

static void test_non_secret_in_0644_file_accepted(void **state)
{
	Fixture *f = *state;
	char *path = write_conf(f, "walship.conf", "repo = /r\ncompress-level = 9\n", 0644);
	assert_int_equal(config_load(f->cfg, path, NULL, &f->err), 0);
	assert_string_equal(config_get(f->cfg, "repo"), "/r");
	free(path);
}

static void test_oversized_file_refused(void **state)
{
	Fixture *f = *state;
	size_t n = 70 * 1024;
	char *text = xmalloc(n + 1);
	memset(text, '#', n);
	text[n] = '\0';
	char *path = write_conf(f, "big.conf", text, 0600);
	assert_int_equal(config_load(f->cfg, path, NULL, &f->err), WS_FATAL);
	assert_non_null(strstr(f->err.msg, "is larger than"));
	free(path);
	free(text);
}

static void test_directory_as_config_file_refused(void **state)
{
	Fixture *f = *state;
	assert_int_equal(config_load(f->cfg, f->dir, NULL, &f->err), WS_FATAL);
	assert_non_null(strstr(f->err.msg, "is not a regular file"));
}

static void test_check_secret_file(void **state)
{
	Fixture *f = *state;
	char *path = write_conf(f, "key", "0123456789abcdef\n", 0600);
	assert_int_equal(config_check_secret_file(path, &f->err), 0);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(config_check_secret_file(path, &f->err), 0);

	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(config_check_secret_file(path, &f->err), WS_FATAL);
	assert_non_null(strstr(f->err.msg, "holds secrets and is readable by every user"));
	assert_non_null(strstr(f->err.hint, "chmod o-rwx"));

	assert_int_equal(chmod(path, 0660), 0);
	assert_int_equal(config_check_secret_file(path, &f->err), WS_FATAL);
	assert_non_null(strstr(f->err.msg, "is writable by other users"));
	assert_non_null(strstr(f->err.hint, "chmod go-w"));

	char *missing = xasprintf("%s/no-key", f->dir);
	assert_int_equal(config_check_secret_file(missing, &f->err), WS_FATAL);
	assert_non_null(strstr(f->err.msg, "No such file or directory"));
	free(missing);
	free(path);
}

static void test_get_int_parses_and_range_checks(void **state)
{
	Fixture *f = *state;
	long v = -1;
	assert_int_equal(config_get_int(f->cfg, "compress-level", 1, 19, &v, &f->err), 0);
	assert_int_equal(v, 1);

	assert_int_equal(config_set_option(f->cfg, "compress-level", "22", &f->err), 0);
	assert_int_equal(config_get_int(f->cfg, "compress-level", 1, 19, &v, &f->err), WS_USAGE);
	assert_string_equal(f->err.msg,
			    "invalid value \"22\" for \"compress-level\" (from command line): must be "
			    "an integer between 1 and 19");
	assert_int_equal(v, 1);

	setenv("WALSHIP_IO_TIMEOUT", "12s", 1);
	assert_int_equal(config_load(f->cfg, NULL, f->missing_default, &f->err), 0);
	assert_int_equal(config_get_int(f->cfg, "io-timeout", 1, 3600, &v, &f->err), WS_USAGE);
	assert_string_equal(f->err.msg, "invalid value \"12s\" for \"io-timeout\" (from environment variable "
					"WALSHIP_IO_TIMEOUT): must be an integer between 1 and 3600");

	static const char *const garbage[] = {"abc", "-", "0x10", "99999999999999999999999", "1.5", "-5"};
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		assert_int_equal(config_set_option(f->cfg, "io-timeout", garbage[i], &f->err), 0);
		assert_int_equal(config_get_int(f->cfg, "io-timeout", 0, 3600, &v, &f->err), WS_USAGE);
	}
	assert_int_equal(config_set_option(f->cfg, "io-timeout", "3600", &f->err), 0);
	assert_int_equal(config_get_int(f->cfg, "io-timeout", 0, 3600, &v, &f->err), 0);
	assert_int_equal(v, 3600);
	assert_int_equal(config_set_option(f->cfg, "compress-level", "-7", &f->err), 0);
	assert_int_equal(config_get_int(f->cfg, "compress-level", -131072, 19, &v, &f->err), 0);
	assert_int_equal(v, -7);

	/* A key with no value and no default. */
	assert_int_equal(config_get_int(f->cfg, "s3-region", 0, 1, &v, &f->err), WS_USAGE);
	assert_non_null(strstr(f->err.msg, "s3-region"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_table_lists_every_key_with_its_defaults),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_missing_default_file_is_fine),
		T(test_precedence_default_file_env_option),
		T(test_empty_environment_variable_counts_as_unset),
		T(test_aws_environment_read_and_walship_wins),
		T(test_environment_beats_file_for_aws_keys),
		T(test_secret_refused_on_command_line),
		T(test_unknown_option_is_usage_error_naming_it),
		T(test_unknown_key_in_file_names_file_and_line),
		T(test_syntax_errors_name_file_and_line),
		T(test_quotes_comments_blank_lines_and_whitespace),
		T(test_missing_named_file_is_an_error),
		T(test_walship_config_env_and_explicit_path),
		T(test_group_or_world_writable_file_refused),
		T(test_secret_in_world_readable_file_refused),
		T(test_secret_in_0640_file_accepted),
		T(test_non_secret_in_0644_file_accepted),
		T(test_oversized_file_refused),
		T(test_directory_as_config_file_refused),
		T(test_check_secret_file),
		T(test_get_int_parses_and_range_checks),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
