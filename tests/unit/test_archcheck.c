/*
 * test_archcheck.c - the parts of pg/archcheck (walship check and backup) that need no server: reading an
 * archive_command as PostgreSQL and /bin/sh would (does it call walship-push,
 * with %p %f, with which --repo or --config, does its exit status reach the
 * server) and telling whether two repository URLs name the same repository.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/archcheck.h"

/* Parse cmd, expecting a walship-push call; the caller clears *c. */
static void parse_ok(const char *cmd, ArchPushCall *c)
{
	int rc = archcheck_parse_command(cmd, c);
	if (rc != 1)
		fail_msg("expected a walship-push call in <%s>, got %d", cmd, rc);
}

static void test_plain_command(void **state)
{
	(void)state;
	ArchPushCall c;
	parse_ok("walship-push %p %f", &c);
	assert_string_equal(c.program, "walship-push");
	assert_null(c.repo);
	assert_null(c.config);
	assert_string_equal(c.args, "%p %f");
	assert_true(c.args_ok);
	assert_true(c.status_kept);
	assert_false(c.dynamic);
	archcheck_push_call_clear(&c);
}

static void test_absolute_path_repo_and_config(void **state)
{
	(void)state;
	ArchPushCall c;
	parse_ok(
		"/usr/local/bin/walship-push --config=/etc/walship/a.conf --repo=/var/lib/walship/main %p %f",
		&c);
	assert_string_equal(c.program, "/usr/local/bin/walship-push");
	assert_string_equal(c.repo, "/var/lib/walship/main");
	assert_string_equal(c.config, "/etc/walship/a.conf");
	assert_true(c.args_ok);
	archcheck_push_call_clear(&c);

	/* Separate values, options after the positional arguments (getopt_long permutes). */
	parse_ok("walship-push %p %f --repo s3://bucket/prefix --config /x.conf", &c);
	assert_string_equal(c.repo, "s3://bucket/prefix");
	assert_string_equal(c.config, "/x.conf");
	assert_true(c.args_ok);
	archcheck_push_call_clear(&c);

	/* The last --repo wins, as config_set_option replaces; abbreviations as getopt_long takes them. */
	parse_ok("walship-push --repo=/a --rep=/b -q -D /data %p %f", &c);
	assert_string_equal(c.repo, "/b");
	assert_true(c.args_ok);
	archcheck_push_call_clear(&c);
}

static void test_shell_quoting(void **state)
{
	(void)state;
	ArchPushCall c;
	/* How conftest.py and most people write it: shlex.quote of each word. */
	parse_ok("'/tmp/walship bin/walship-push' '--config=/tmp/w/walship.conf' '--repo=/tmp/my repo' %p %f",
		 &c);
	assert_string_equal(c.program, "/tmp/walship bin/walship-push");
	assert_string_equal(c.repo, "/tmp/my repo");
	assert_string_equal(c.config, "/tmp/w/walship.conf");
	assert_true(c.args_ok);
	archcheck_push_call_clear(&c);

	parse_ok("walship-push --repo=\"/tmp/a \\\"b\\\"\" \"%p\" '%f'", &c);
	assert_string_equal(c.repo, "/tmp/a \"b\"");
	assert_true(c.args_ok);
	archcheck_push_call_clear(&c);

	parse_ok("walship-push --repo=/tmp/a\\ b %p %f", &c);
	assert_string_equal(c.repo, "/tmp/a b");
	archcheck_push_call_clear(&c);

	/* %% is PostgreSQL's literal percent sign. */
	parse_ok("walship-push --repo=/tmp/100%% %p %f", &c);
	assert_string_equal(c.repo, "/tmp/100%");
	archcheck_push_call_clear(&c);

	assert_int_equal(archcheck_parse_command("walship-push --repo='/tmp/a %p %f", &c), -1);
	assert_int_equal(archcheck_parse_command("walship-push --repo=\"/tmp/a %p %f", &c), -1);
}

static void test_not_walship_push(void **state)
{
	(void)state;
	ArchPushCall c;
	assert_int_equal(archcheck_parse_command("cp %p /somewhere/%f", &c), 0);
	assert_int_equal(archcheck_parse_command("test ! -f /mnt/server/archivedir/%f && cp %p "
						 "/mnt/server/archivedir/%f",
						 &c),
			 0);
	assert_int_equal(archcheck_parse_command("", &c), 0);
	assert_int_equal(archcheck_parse_command("/bin/true", &c), 0);
	/* A comment is not a call. */
	assert_int_equal(archcheck_parse_command("cp %p /x/%f # walship-push %p %f", &c), 0);
	/* Another program whose name merely contains it. */
	assert_int_equal(archcheck_parse_command("walship-push-old %p %f", &c), 0);
	assert_int_equal(archcheck_parse_command("my-walship-push %p %f", &c), 0);
}

static void test_arguments_must_be_p_then_f(void **state)
{
	(void)state;
	ArchPushCall c;
	parse_ok("walship-push %f %p", &c);
	assert_false(c.args_ok);
	assert_string_equal(c.args, "%f %p");
	archcheck_push_call_clear(&c);

	parse_ok("walship-push %p", &c);
	assert_false(c.args_ok);
	archcheck_push_call_clear(&c);

	parse_ok("walship-push pg_wal/%f %f", &c);
	assert_false(c.args_ok);
	assert_string_equal(c.args, "pg_wal/%f %f");
	archcheck_push_call_clear(&c);

	parse_ok("walship-push %p %f extra", &c);
	assert_false(c.args_ok);
	archcheck_push_call_clear(&c);

	/* "%%p" is the text "%p" after PostgreSQL's substitution, not the path. */
	parse_ok("walship-push %%p %f", &c);
	assert_false(c.args_ok);
	archcheck_push_call_clear(&c);

	/* -D takes a value, which is no positional argument. */
	parse_ok("walship-push -D /var/lib/postgresql/15/main %p %f", &c);
	assert_true(c.args_ok);
	archcheck_push_call_clear(&c);
}

static void test_environment_and_wrappers(void **state)
{
	(void)state;
	ArchPushCall c;
	parse_ok("WALSHIP_REPO=/srv/repo WALSHIP_CONFIG=/etc/w.conf walship-push %p %f", &c);
	assert_string_equal(c.repo, "/srv/repo");
	assert_string_equal(c.config, "/etc/w.conf");
	archcheck_push_call_clear(&c);

	/* --repo beats the environment, as on the command line. */
	parse_ok("env WALSHIP_REPO=/srv/repo walship-push --repo=/srv/other %p %f", &c);
	assert_string_equal(c.repo, "/srv/other");
	archcheck_push_call_clear(&c);

	parse_ok("exec nice -n 10 /usr/bin/walship-push %p %f", &c);
	assert_string_equal(c.program, "/usr/bin/walship-push");
	assert_true(c.args_ok);
	archcheck_push_call_clear(&c);

	parse_ok("walship-push --repo=$REPO %p %f", &c);
	assert_true(c.dynamic);
	archcheck_push_call_clear(&c);

	parse_ok("walship-push --repo=\"`cat /etc/repo`\" %p %f", &c);
	assert_true(c.dynamic);
	archcheck_push_call_clear(&c);

	/* In single quotes a $ is plain text. */
	parse_ok("walship-push '--repo=/srv/$x' %p %f", &c);
	assert_false(c.dynamic);
	assert_string_equal(c.repo, "/srv/$x");
	archcheck_push_call_clear(&c);
}

static void test_exit_status_reaches_the_server(void **state)
{
	(void)state;
	ArchPushCall c;
	static const struct {
		const char *cmd;
		bool kept;
	} cases[] = {
		{"walship-push %p %f", true},
		{"walship-push %p %f;", true},
		{"walship-push %p %f 2>>/var/log/walship.log", true},
		{"test -f %p && walship-push %p %f", true},
		{"walship-push %p %f && echo done >> /tmp/log", true},
		{"(walship-push %p %f)", true},
		{"walship-push %p %f || true", false},
		{"walship-push %p %f; echo done", false},
		{"walship-push %p %f | logger", false},
		{"walship-push %p %f &", false},
		{"walship-push %p %f\nexit 0", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_ok(cases[i].cmd, &c);
		if (c.status_kept != cases[i].kept)
			fail_msg("<%s>: status_kept %d, expected %d", cases[i].cmd, c.status_kept,
				 cases[i].kept);
		assert_true(c.args_ok);
		archcheck_push_call_clear(&c);
	}
	/* The redirection target is not an argument. */
	parse_ok("walship-push %p %f > /dev/null 2>&1", &c);
	assert_true(c.args_ok);
	assert_string_equal(c.args, "%p %f");
	archcheck_push_call_clear(&c);
}

static void test_repo_normalize(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"/var/lib/walship", "/var/lib/walship"},
		{"/var/lib/walship/", "/var/lib/walship"},
		{"/var//lib/./walship//", "/var/lib/walship"},
		{"file:///var/lib/walship/", "/var/lib/walship"},
		{"/", "/"},
		{"file:///", "/"},
		{"s3://bucket/prefix/", "s3://bucket/prefix"},
		{"s3://bucket/", "s3://bucket"},
		{"sftp://u@host:22/srv/repo/", "sftp://u@host/srv/repo"},
		{"sftp://u@host:2222/srv/repo", "sftp://u@host:2222/srv/repo"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *n = archcheck_repo_normalize(cases[i].in);
		if (strcmp(n, cases[i].out) != 0)
			fail_msg("normalize <%s>: <%s>, expected <%s>", cases[i].in, n, cases[i].out);
		free(n);
	}
}

static void test_repo_same(void **state)
{
	(void)state;
	assert_true(archcheck_repo_same("/var/lib/walship", "file:///var/lib/walship/"));
	assert_true(archcheck_repo_same("s3://bkt/p", "s3://bkt/p/"));
	assert_true(archcheck_repo_same("sftp://u@h/srv/r", "sftp://u@h:22/srv/r/"));
	assert_false(archcheck_repo_same("/var/lib/walship", "/var/lib/walship2"));
	assert_false(archcheck_repo_same("/var/lib/walship/a", "/var/lib/walship"));
	assert_false(archcheck_repo_same("s3://bkt/p", "s3://bkt/q"));
	assert_false(archcheck_repo_same("s3://bkt/p", "s3://ckt/p"));
	assert_false(archcheck_repo_same("sftp://u@h/srv/r", "sftp://v@h/srv/r"));
	assert_false(archcheck_repo_same("sftp://u@h:2222/srv/r", "sftp://u@h/srv/r"));
	assert_false(archcheck_repo_same("/srv/r", "sftp://u@h/srv/r"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_command),
		cmocka_unit_test(test_absolute_path_repo_and_config),
		cmocka_unit_test(test_shell_quoting),
		cmocka_unit_test(test_not_walship_push),
		cmocka_unit_test(test_arguments_must_be_p_then_f),
		cmocka_unit_test(test_environment_and_wrappers),
		cmocka_unit_test(test_exit_status_reaches_the_server),
		cmocka_unit_test(test_repo_normalize),
		cmocka_unit_test(test_repo_same),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
