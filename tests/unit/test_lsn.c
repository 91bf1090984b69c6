/*
 * test_lsn.c - LSNs in PostgreSQL's "%X/%X" form: what parses, how it prints
 * back, what is refused and how the refusal reads, and segment arithmetic for
 * 16 MiB and 1 GiB segments.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "pg/lsn.h"

#define MB (1024u * 1024u)
#define GB (1024u * MB)

static uint64_t parse_ok(const char *s)
{
	uint64_t v = 0;
	WsError err;
	ws_error_clear(&err);
	int rc = lsn_parse(s, &v, &err);
	if (rc != 0)
		fail_msg("lsn_parse(\"%s\") failed: %s", s, err.msg);
	return v;
}

static void test_postgresql_lsns_parse(void **state)
{
	(void)state;
	assert_true(parse_ok("0/3000028") == 0x3000028u);
	assert_true(parse_ok("16/B374D848") == 0x16B374D848ull);
	assert_true(parse_ok("16/b374d848") == 0x16B374D848ull);
	assert_true(parse_ok("0/0") == 0);
	assert_true(parse_ok("FFFFFFFF/FFFFFFFF") == UINT64_MAX);
	assert_true(parse_ok("00000001/00000000") == 0x100000000ull);
	assert_true(parse_ok("aBc/DeF") == 0xABC00000DEFull);
}

static void test_format_is_uppercase_without_padding(void **state)
{
	(void)state;
	char buf[LSN_STR_MAX];
	lsn_format(0x3000028u, buf);
	assert_string_equal(buf, "0/3000028");
	lsn_format(0x16B374D848ull, buf);
	assert_string_equal(buf, "16/B374D848");
	lsn_format(0, buf);
	assert_string_equal(buf, "0/0");
	lsn_format(UINT64_MAX, buf);
	assert_string_equal(buf, "FFFFFFFF/FFFFFFFF");
	lsn_format(0x100000000ull, buf);
	assert_string_equal(buf, "1/0");
}

static void test_format_then_parse_round_trips(void **state)
{
	(void)state;
	const uint64_t values[] = {0,
				   1,
				   0x28,
				   0xFFFFFFFFull,
				   0x100000000ull,
				   0x16B374D848ull,
				   0x7FFFFFFF80000000ull,
				   UINT64_MAX - 1,
				   UINT64_MAX};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char buf[LSN_STR_MAX];
		lsn_format(values[i], buf);
		assert_true(parse_ok(buf) == values[i]);
	}
}

static void test_other_forms_are_refused_with_the_expected_form(void **state)
{
	(void)state;
	const char *bad[] = {
		"",           "/",          "0/",         "/0",          "0",           "3000028",
		"0/3000028 ", " 0/3000028", "0 /3000028", "0/ 3000028",  "0x0/3000028", "0/0x3000028",
		"+0/1",       "-1/0",       "0/-1",       "123456789/0", "0/123456789", "000000000/0",
		"0/1/2",      "0//1",       "0-1",        "0\\1",        "0/G",         "g/0",
		"0/1\n",      "0/1 reason", "0.1",        "FFFFFFFFF/0",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 12345;
		WsError err;
		ws_error_clear(&err);
		int rc = lsn_parse(bad[i], &v, &err);
		if (rc != WS_USAGE)
			fail_msg("\"%s\" was not refused (rc %d)", bad[i], rc);
		assert_int_equal(err.cls, WS_USAGE);
		assert_true(v == 12345);
		assert_non_null(strstr(err.msg, "invalid LSN \""));
		assert_non_null(strstr(err.detail, "\"0/3000028\""));
	}
}

static void test_refusal_quotes_the_input_safely(void **state)
{
	(void)state;
	uint64_t v;
	WsError err;
	assert_int_equal(lsn_parse("0/G", &v, &err), WS_USAGE);
	assert_string_equal(err.msg, "invalid LSN \"0/G\"");
	assert_int_equal(lsn_parse("0/1\n\"x", &v, &err), WS_USAGE);
	assert_string_equal(err.msg, "invalid LSN \"0/1\\x0A\\x22x\"");
}

static void test_segment_numbers_for_16mib_segments(void **state)
{
	(void)state;
	const uint32_t seg = 16 * MB;
	assert_true(lsn_segno(0x3000028u, seg) == 3);
	assert_true(lsn_segno(0x2FFFFFFu, seg) == 2);
	assert_true(lsn_segno(0x3000000u, seg) == 3);
	assert_true(lsn_segno(0, seg) == 0);
	/* 16/B374D848: log 0x16 holds 256 segments, then 0xB3 */
	assert_true(lsn_segno(0x16B374D848ull, seg) == 0x16 * 256 + 0xB3);
	assert_true(segno_start_lsn(3, seg) == 0x3000000u);
	assert_true(segno_start_lsn(0x16 * 256 + 0xB3, seg) == 0x16B3000000ull);
	assert_true(lsn_segno(UINT64_MAX, seg) == (1ull << 40) - 1);
	assert_true(segno_start_lsn((1ull << 40) - 1, seg) == UINT64_MAX - seg + 1);
}

static void test_segment_numbers_for_1gib_segments(void **state)
{
	(void)state;
	const uint32_t seg = GB;
	assert_true(lsn_segno(0x3FFFFFFFu, seg) == 0);
	assert_true(lsn_segno(0x40000000u, seg) == 1);
	assert_true(lsn_segno(0x16B374D848ull, seg) == 0x5A);
	assert_true(segno_start_lsn(0x5A, seg) == 0x1680000000ull);
	assert_true(lsn_segno(UINT64_MAX, seg) == (1ull << 34) - 1);
	assert_true(segno_start_lsn(lsn_segno(0x16B374D848ull, seg) + 1, seg) == 0x16C0000000ull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postgresql_lsns_parse),
		cmocka_unit_test(test_format_is_uppercase_without_padding),
		cmocka_unit_test(test_format_then_parse_round_trips),
		cmocka_unit_test(test_other_forms_are_refused_with_the_expected_form),
		cmocka_unit_test(test_refusal_quotes_the_input_safely),
		cmocka_unit_test(test_segment_numbers_for_16mib_segments),
		cmocka_unit_test(test_segment_numbers_for_1gib_segments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
