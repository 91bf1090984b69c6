/* test_clock.c - util/clock: UTC timestamps as walship writes them, deadlines and whole sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "util/clock.h"

/* 2026-11-25 19:11:52 UTC */
#define T0 1795633912

static void test_utc_forms(void **state)
{
	char buf[CLOCK_ISO_MAX];
	(void)state;
	clock_utc_iso(T0, buf);
	assert_string_equal(buf, "2026-11-25T19:11:52Z");
	clock_utc_compact(T0, buf);
	assert_string_equal(buf, "20261125T191152Z");
	clock_utc_iso(0, buf);
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
}

static void test_parse_reads_what_is_written(void **state)
{
	(void)state;
	assert_int_equal(clock_parse_utc_iso("2026-11-25T19:11:52Z"), T0);
	assert_int_equal(clock_parse_utc_iso("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(clock_parse_utc_iso("2026-11-25 19:11:52"), -1);
	assert_int_equal(clock_parse_utc_iso("2026-11-25T19:11:52Zx"), -1);
	assert_int_equal(clock_parse_utc_iso(""), -1);
}

static void test_after_carries_into_seconds(void **state)
{
	(void)state;
	for (int i = 0; i < 50; i++) {
		struct timespec now, t = clock_after(CLOCK_MONOTONIC, 999);
		clock_gettime(CLOCK_MONOTONIC, &now);
		assert_true(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
		double d = (double)(t.tv_sec - now.tv_sec) + (double)(t.tv_nsec - now.tv_nsec) / 1e9;
		assert_true(d > 0.9 && d <= 0.999);
	}
}

static void test_sleep_lasts(void **state)
{
	(void)state;
	double t = clock_now();
	clock_sleep(0.05);
	assert_true(clock_now() - t >= 0.05);
	t = clock_now();
	assert_int_equal(clock_sleep_interruptible(0.02), 0);
	assert_true(clock_now() - t >= 0.02);
	clock_sleep(0); /* nothing */
	clock_sleep(-1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utc_forms),
		cmocka_unit_test(test_parse_reads_what_is_written),
		cmocka_unit_test(test_after_carries_into_seconds),
		cmocka_unit_test(test_sleep_lasts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
