/*
 * test_cli.c - the option tables of cmd/cli: the numeric and age setters,
 * the suggestions for a mistyped option, and cli_apply's order (required,
 * then exclusive, then the setters in table order; repeatable options in
 * command-line order).  The command lines themselves are tested end to end
 * by tests/integration/test_help.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "cmd/cli.h"

typedef struct Args {
	bool flag;
	int n;
	int64_t age;
	const char *first, *second;
	const char *seen[4];
	int n_seen;
} Args;

static int remember(void *dst, const CliOption *opt, const char *value, WsError *err)
{
	Args *a = dst;
	(void)opt, (void)err;
	if (a->n_seen < 4)
		a->seen[a->n_seen++] = value;
	return 0;
}

static const CliOption options[] = {
	{.name = "number", .value = "N", CLI_INT(Args, n), .min = 1, .max = 10, .required = "Give --number."},
	{.name = "age", .value = "AGE", CLI_AGE(Args, age), .max = 7 * 86400},
	{.name = "first", .value = "X", CLI_STRING(Args, first), .flags = CLI_ONE_OF},
	{.name = "second", .value = "X", CLI_STRING(Args, second), .flags = CLI_ONE_OF},
	{.name = "flag", CLI_FLAG(Args, flag)},
	{.name = "map", .value = "X", .set = remember, .flags = CLI_REPEAT},
	{0},
};

static const CliCommand command = {.name = "test", .options = options};

static int apply(CliGiven *given, int n, Args *a, WsError *err)
{
	Cli cli;
	memset(&cli, 0, sizeof(cli));
	cli.command = &command;
	cli.given = given;
	cli.n_given = n;
	memset(a, 0, sizeof(*a));
	ws_error_clear(err);
	return cli_apply(&cli, a, err);
}

static void test_parse_long_takes_whole_numbers_in_range(void **state)
{
	long v = 0;
	(void)state;
	assert_true(cli_parse_long("42", 0, 100, &v));
	assert_int_equal(v, 42);
	assert_true(cli_parse_long("-7", -7, 19, &v));
	assert_int_equal(v, -7);
	assert_false(cli_parse_long("", 0, 100, &v));
	assert_false(cli_parse_long("4x", 0, 100, &v));
	assert_false(cli_parse_long("101", 0, 100, &v));
	assert_false(cli_parse_long("99999999999999999999", 0, 100, &v));
}

static void test_setters_store_and_refuse(void **state)
{
	Args a;
	WsError err;
	(void)state;
	CliGiven ok[] = {{"number", "3"}, {"age", "2h"}, {"flag", NULL}, {"first", "x"}};
	assert_int_equal(apply(ok, 4, &a, &err), 0);
	assert_int_equal(a.n, 3);
	assert_int_equal(a.age, 7200);
	assert_true(a.flag);
	assert_string_equal(a.first, "x");

	CliGiven big[] = {{"number", "11"}};
	assert_int_equal(apply(big, 1, &a, &err), WS_USAGE);
	assert_string_equal(err.msg, "invalid value \"11\" for --number: use a whole number from 1 to 10");

	CliGiven old[] = {{"number", "1"}, {"age", "8d"}};
	assert_int_equal(apply(old, 2, &a, &err), WS_USAGE);
	assert_string_equal(err.msg, "invalid value \"8d\" for --age: at most 7 days");

	CliGiven bad[] = {{"number", "1"}, {"age", "1week"}};
	assert_int_equal(apply(bad, 2, &a, &err), WS_USAGE);
	assert_string_equal(err.msg, "invalid value \"1week\" for --age");
	assert_non_null(strstr(err.hint, "suffix s, min, h or d"));
}

static void test_apply_checks_required_then_exclusive_then_values(void **state)
{
	Args a;
	WsError err;
	(void)state;
	CliGiven none[] = {{"age", "nonsense"}, {"first", "x"}, {"second", "y"}};
	assert_int_equal(apply(none, 3, &a, &err), WS_USAGE);
	assert_string_equal(err.msg, "--number is required");
	assert_string_equal(err.hint, "Give --number.");

	CliGiven both[] = {{"number", "1"}, {"age", "nonsense"}, {"second", "y"}, {"first", "x"}};
	assert_int_equal(apply(both, 4, &a, &err), WS_USAGE);
	assert_string_equal(err.msg, "options \"--second\" and \"--first\" cannot be used together");

	CliGiven twice[] = {{"number", "1"}, {"first", "x"}, {"first", "y"}};
	assert_int_equal(apply(twice, 3, &a, &err), WS_USAGE);
	assert_string_equal(err.msg, "options \"--first\" and \"--first\" cannot be used together");
}

static void test_last_value_wins_and_repeats_keep_order(void **state)
{
	Args a;
	WsError err;
	(void)state;
	CliGiven given[] = {{"map", "a"}, {"number", "1"}, {"map", "b"}, {"number", "2"}, {"map", "c"}};
	assert_int_equal(apply(given, 5, &a, &err), 0);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.n_seen, 3);
	assert_string_equal(a.seen[0], "a");
	assert_string_equal(a.seen[1], "b");
	assert_string_equal(a.seen[2], "c");
}

static void test_suggestions(void **state)
{
	char out[256];
	(void)state;
	cli_suggest(options, false, "numbr", out, sizeof(out));
	assert_string_equal(out, "\"--number\"");
	cli_suggest(options, false, "flag=1", out, sizeof(out));
	assert_string_equal(out, "\"--flag\"");
	/* An ambiguous beginning: every option it begins. */
	cli_suggest(options, false, "f", out, sizeof(out));
	assert_string_equal(out, "\"--first\" or \"--flag\"");
	/* The common options are suggested too; -D's only where the command shows it. */
	cli_suggest(options, false, "repp", out, sizeof(out));
	assert_string_equal(out, "\"--repo\"");
	cli_suggest(options, false, "pgdat", out, sizeof(out));
	assert_string_equal(out, "");
	cli_suggest(options, true, "pgdat", out, sizeof(out));
	assert_string_equal(out, "\"--pgdata\"");
	/* Too far from anything, or too short to tell. */
	cli_suggest(options, false, "frobnicate", out, sizeof(out));
	assert_string_equal(out, "");
	cli_suggest(options, false, "", out, sizeof(out));
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_long_takes_whole_numbers_in_range),
		cmocka_unit_test(test_setters_store_and_refuse),
		cmocka_unit_test(test_apply_checks_required_then_exclusive_then_values),
		cmocka_unit_test(test_last_value_wins_and_repeats_keep_order),
		cmocka_unit_test(test_suggestions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
