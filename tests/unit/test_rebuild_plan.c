/*
 * test_rebuild_plan.c - the decision for recovery targets past the end of the
 * archive on PostgreSQL 12 and older (which promote at the end of WAL instead
 * of failing): refused for a time after the last WAL file was stored, a
 * warning for an xid or restore point, nothing on 13 and later; and recovery
 * target times as walship rebuild accepts and writes them (rebuild_parse_time,
 * from test_rebuild.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "cmd/rebuild_plan.h"
#include "pg/pgmajor.h"

/* 2026-11-25 19:11:52 UTC */
#define T0       1795633912
#define LAST_WAL "00000001000000000000001A"

static void has(const char *text, const char *words)
{
	if (strstr(text, words) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", text, words);
}

static int decide(int major, RecoveryTargetKind kind, const char *text, int64_t secs, WsError *err)
{
	ws_error_clear(err);
	return rebuild_target_end_check(major, kind, text, secs, LAST_WAL, T0, err);
}

static void test_versions_that_promote_at_the_end_of_wal(void **state)
{
	(void)state;
	assert_true(rebuild_promotes_at_end_of_wal(PG_MAJOR_9_6));
	for (int v = 10; v <= 12; v++)
		assert_true(rebuild_promotes_at_end_of_wal(PG_MAJOR(v)));
	for (int v = 13; v <= 17; v++)
		assert_false(rebuild_promotes_at_end_of_wal(PG_MAJOR(v)));
}

static void test_time_after_the_last_stored_wal_is_refused_on_12_and_older(void **state)
{
	(void)state;
	WsError err;
	const int majors[] = {PG_MAJOR_9_6, PG_MAJOR(10), PG_MAJOR(11), PG_MAJOR(12)};
	for (size_t i = 0; i < sizeof(majors) / sizeof(majors[0]); i++) {
		int rc = decide(majors[i], TARGET_TIME, "2026-11-25 20:00:00+00", T0 + 2888, &err);
		assert_int_equal(rc, WS_USAGE);
		has(err.msg,
		    "recovery target time \"2026-11-25 20:00:00+00\" is past the end of the WAL in the "
		    "repository");
		has(err.detail, "\"" LAST_WAL "\", was stored at 2026-11-25T19:11:52Z");
		has(err.detail, majors[i] == PG_MAJOR_9_6 ? "PostgreSQL 9.6 would"
							  : "would replay to the end of the archive");
		has(err.hint, "--target-lsn");
		has(err.hint, "without a target");
	}
	/* One second later is enough: a commit stored in second T0 happened before T0 + 1. */
	assert_int_equal(decide(PG_MAJOR(12), TARGET_TIME, "x", T0 + 1, &err), WS_USAGE);
}

static void test_time_within_the_archive_passes(void **state)
{
	(void)state;
	WsError err;
	assert_int_equal(decide(PG_MAJOR(12), TARGET_TIME, "x", T0, &err), 0);
	assert_int_equal(decide(PG_MAJOR(11), TARGET_TIME, "x", T0 - 3600, &err), 0);
	assert_int_equal(err.cls, WS_OK);
}

static void test_xid_and_restore_point_warn_on_12_and_older(void **state)
{
	(void)state;
	WsError err;
	assert_int_equal(decide(PG_MAJOR(11), TARGET_XID, "1234", 0, &err), 1);
	has(err.msg, "cannot tell whether transaction \"1234\" is in the archived WAL");
	has(err.detail,
	    "The last WAL file recovery can read is \"" LAST_WAL "\", stored at 2026-11-25T19:11:52Z");
	has(err.detail, "PostgreSQL 11 replays to the end of the archive and promotes");
	has(err.hint, "committed before 2026-11-25T19:11:52Z");
	assert_int_equal(decide(PG_MAJOR_9_6, TARGET_NAME, "before-upgrade", 0, &err), 1);
	has(err.msg, "restore point \"before-upgrade\"");
	has(err.detail, "PostgreSQL 9.6");
}

static void test_nothing_to_say_on_13_and_later_or_for_other_targets(void **state)
{
	(void)state;
	WsError err;
	for (int v = 13; v <= 17; v++) {
		assert_int_equal(decide(PG_MAJOR(v), TARGET_TIME, "x", T0 + 86400, &err), 0);
		assert_int_equal(decide(PG_MAJOR(v), TARGET_XID, "1234", 0, &err), 0);
		assert_int_equal(decide(PG_MAJOR(v), TARGET_NAME, "p", 0, &err), 0);
	}
	/* LSN targets are checked against the archive for every version; the others need no check. */
	const RecoveryTargetKind others[] = {TARGET_LSN, TARGET_IMMEDIATE, TARGET_LATEST};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		assert_int_equal(decide(PG_MAJOR(12), others[i], "x", T0 + 86400, &err), 0);
	assert_int_equal(err.cls, WS_OK);
}

/* ---- recovery_target_time values as walship rebuild accepts and writes them ---- */

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
		cmocka_unit_test(test_versions_that_promote_at_the_end_of_wal),
		cmocka_unit_test(test_time_after_the_last_stored_wal_is_refused_on_12_and_older),
		cmocka_unit_test(test_time_within_the_archive_passes),
		cmocka_unit_test(test_xid_and_restore_point_warn_on_12_and_older),
		cmocka_unit_test(test_nothing_to_say_on_13_and_later_or_for_other_targets),
		cmocka_unit_test(test_time_forms_postgresql_prints_and_iso_are_normalised_to_utc),
		cmocka_unit_test(test_time_without_zone_is_refused_with_a_hint),
		cmocka_unit_test(test_malformed_times_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
