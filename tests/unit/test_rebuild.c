/* test_rebuild.c - recovery target times as walship rebuild accepts and writes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "cmd/rebuild_plan.h"

static void accepts(const char *in, const char *want, int64_t want_secs, int want_usec)
{
	char out[REBUILD_TIME_MAX];
	int64_t secs = -1;
	int usec = -1;
	WsError err;
	ws_error_clear(&err);
	int rc = rebuild_parse_time(in, &secs, &usec, out, &err);
	if (rc != 0)
		fail_msg("\"%s\" refused: %s", in, err.msg);
	assert_string_equal(out, want);
	assert_int_equal(secs, want_secs);
	assert_int_equal(usec, want_usec);
}

static void refuses(const char *in, const char *words)
{
	char out[REBUILD_TIME_MAX];
	int64_t secs;
	int usec;
	WsError err;
	ws_error_clear(&err);
	assert_int_equal(rebuild_parse_time(in, &secs, &usec, out, &err), WS_USAGE);
	if (strstr(err.msg, words) == NULL)
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", in, err.msg, words);
}

/* 2026-11-25 19:11:52 UTC */
#define T0 1795633912

static void test_time_forms_postgresql_prints_and_iso_are_normalised_to_utc(void **state)
{
	(void)state;
	accepts("2026-11-25 19:11:52.67+00", "2026-11-25 19:11:52.67+00", T0, 670000);
	accepts("2026-11-25T19:11:52Z", "2026-11-25 19:11:52+00", T0, 0);
	accepts("2026-11-25 19:11:52 UTC", "2026-11-25 19:11:52+00", T0, 0);
	accepts("2026-11-25 20:11:52.123456+01", "2026-11-25 19:11:52.123456+00", T0, 123456);
	accepts("2026-11-25 14:41:52-04:30", "2026-11-25 19:11:52+00", T0, 0);
	accepts("2026-11-26 00:41:52+0530", "2026-11-25 19:11:52+00", T0, 0);
	accepts("2026-11-25 19:11+00", "2026-11-25 19:11:00+00", T0 - 52, 0);
	/* Across a day and a year boundary. */
	accepts("2027-01-01 01:00:00+02", "2026-12-31 23:00:00+00", 1798758000, 0);
}

static void test_time_without_zone_is_refused_with_a_hint(void **state)
{
	(void)state;
	char out[REBUILD_TIME_MAX];
	int64_t secs;
	int usec;
	WsError err;
	ws_error_clear(&err);
	assert_int_equal(rebuild_parse_time("2026-11-25 19:11:52", &secs, &usec, out, &err), WS_USAGE);
	assert_non_null(strstr(err.msg, "has no time zone"));
	assert_non_null(strstr(err.detail, "server's time zone"));
	assert_non_null(strstr(err.hint, "+00"));
}

static void test_malformed_times_are_refused(void **state)
{
	(void)state;
	refuses("yesterday", "invalid value");
	refuses("2026-02-30 10:00:00+00", "invalid value");
	refuses("2026-13-01 10:00:00+00", "invalid value");
	refuses("2026-11-25 24:00:00+00", "invalid value");
	refuses("2026-11-25 19:11:52.+00", "invalid value");
	refuses("2026-11-25 19:11:52.1234567+00", "invalid value");
	refuses("2026-11-25 19:11:52 CET", "invalid value");
	refuses("2026-11-25 19:11:52+00:00:00", "invalid value");
	refuses("2026-11-25", "invalid value");
	refuses("", "invalid value");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_forms_postgresql_prints_and_iso_are_normalised_to_utc),
		cmocka_unit_test(test_time_without_zone_is_refused_with_a_hint),
		cmocka_unit_test(test_malformed_times_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
