/*
 * test_history.c - timeline history files as PostgreSQL 15 writes them, the
 * timeline current at an LSN, and the segment and timeline recovery reads for
 * every position along a path.
 *
 * The two real files were written by PostgreSQL 15.20 (initdb, a standby made
 * with pg_basebackup -R -X stream and promoted, a standby of that one
 * promoted in turn).  For REAL_RUN2 all three servers archived and the old
 * primary kept writing on timeline 1 after the fork; a base backup taken on
 * timeline 1 at 0/2000028 was then recovered with recovery_target_timeline = 3
 * and restore_command logged every file asked for: the segments in
 * real_run2_fetched below, in that order, each found at the first try.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/history.h"
#include "pg/lsn.h"

#define MB (1024u * 1024u)
#define GB (1024u * MB)

/* 00000002.history and 00000003.history of the first run (note the blank line PostgreSQL inserts). */
static const char real_run1_tli2[] = "1\t0/4000090\tno recovery target specified\n";
static const char real_run1_tli3[] = "1\t0/4000090\tno recovery target specified\n"
				     "\n"
				     "2\t0/6001648\tno recovery target specified\n";

/* 00000003.history of the second run. */
static const char real_run2_tli3[] = "1\t0/5310710\tno recovery target specified\n"
				     "\n"
				     "2\t0/713AB38\tno recovery target specified\n";

typedef struct Seen {
	int n;
	int stop_at; /* return 42 on this call (1-based); 0 never */
	uint32_t tli[64];
	uint64_t segno[64];
} Seen;

static int record(void *ctx, uint32_t tli, uint64_t segno)
{
	Seen *s = ctx;
	if (s->n >= 64)
		fail_msg("too many segments");
	s->tli[s->n] = tli;
	s->segno[s->n] = segno;
	s->n++;
	return s->n == s->stop_at ? 42 : 0;
}

static TimelinePath *parse_ok(const char *text, uint32_t tli)
{
	TimelinePath *p = NULL;
	WsError err;
	ws_error_clear(&err);
	int rc = history_parse(text, strlen(text), tli, &p, &err);
	if (rc != 0)
		fail_msg("history_parse failed: %s (%s)", err.msg, err.detail);
	assert_non_null(p);
	return p;
}

static void assert_entry(const TimelinePath *p, int i, uint32_t tli, uint64_t begin, uint64_t end)
{
	assert_true(i < p->n);
	assert_int_equal(p->e[i].tli, tli);
	assert_true(p->e[i].begin == begin);
	assert_true(p->e[i].end == end);
}

/* The segments fn sees, as "tli:segno" pairs in hex, e.g. "1:3 2:4". */
static void segments_str(const TimelinePath *p, uint64_t start, uint64_t end, uint32_t seg_size, char *buf,
			 size_t size)
{
	Seen s = {0};
	assert_int_equal(history_segments(p, start, end, seg_size, record, &s), 0);
	buf[0] = '\0';
	for (int i = 0; i < s.n; i++) {
		size_t used = strlen(buf);
		snprintf(buf + used, size - used, "%s%X:%llX", i ? " " : "", s.tli[i],
			 (unsigned long long)s.segno[i]);
	}
}

static void test_real_history_gives_path_to_timeline_3(void **state)
{
	(void)state;
	TimelinePath *p = parse_ok(real_run1_tli3, 3);
	assert_int_equal(p->n, 3);
	assert_entry(p, 0, 1, 0, 0x4000090u);
	assert_entry(p, 1, 2, 0x4000090u, 0x6001648u);
	assert_entry(p, 2, 3, 0x6001648u, UINT64_MAX);
	history_free(p);

	p = parse_ok(real_run1_tli2, 2);
	assert_int_equal(p->n, 2);
	assert_entry(p, 0, 1, 0, 0x4000090u);
	assert_entry(p, 1, 2, 0x4000090u, UINT64_MAX);
	history_free(p);
}

static void test_switch_point_belongs_to_the_newer_timeline(void **state)
{
	(void)state;
	TimelinePath *p = parse_ok(real_run1_tli3, 3);
	assert_int_equal(history_tli_of_lsn(p, 0), 1);
	assert_int_equal(history_tli_of_lsn(p, 0x400008Fu), 1);
	assert_int_equal(history_tli_of_lsn(p, 0x4000090u), 2);
	assert_int_equal(history_tli_of_lsn(p, 0x4000091u), 2);
	assert_int_equal(history_tli_of_lsn(p, 0x6001647u), 2);
	assert_int_equal(history_tli_of_lsn(p, 0x6001648u), 3);
	assert_int_equal(history_tli_of_lsn(p, 0x16B374D848ull), 3);
	assert_int_equal(history_tli_of_lsn(p, UINT64_MAX), 3);
	history_free(p);
}

static void test_contains_lists_only_the_path(void **state)
{
	(void)state;
	TimelinePath *p = parse_ok(real_run1_tli3, 3);
	assert_true(history_contains(p, 1));
	assert_true(history_contains(p, 2));
	assert_true(history_contains(p, 3));
	assert_false(history_contains(p, 0));
	assert_false(history_contains(p, 4));
	history_free(p);

	p = parse_ok(real_run1_tli2, 2);
	assert_false(history_contains(p, 3));
	history_free(p);
}

static void test_segments_match_what_postgresql_15_fetched(void **state)
{
	(void)state;
	/* Logged by restore_command; timeline 1 had full segments 5 to 7 and timeline 2 segment 7 too. */
	static const char real_run2_fetched[] = "1:2 1:3 1:4 2:5 2:6 3:7 3:8 3:9";
	char buf[512];
	TimelinePath *p = parse_ok(real_run2_tli3, 3);
	segments_str(p, 0x2000028u, 0x9000000u, 16 * MB, buf, sizeof(buf));
	assert_string_equal(buf, real_run2_fetched);
	history_free(p);
}

static void test_segment_holding_a_switch_is_read_from_the_newer_timeline(void **state)
{
	(void)state;
	char buf[512];
	TimelinePath *p = parse_ok(real_run1_tli3, 3);
	segments_str(p, 0x3000000u, 0x7FFFFFFu, 16 * MB, buf, sizeof(buf));
	assert_string_equal(buf, "1:3 2:4 2:5 3:6 3:7");
	/* One segment only: start and end in the same one, past the last switch. */
	segments_str(p, 0x6001648u, 0x6FFFFFFu, 16 * MB, buf, sizeof(buf));
	assert_string_equal(buf, "3:6");
	/* Before the first switch, timeline 2 and 3 are not read at all. */
	segments_str(p, 0, 0x3FFFFFFu, 16 * MB, buf, sizeof(buf));
	assert_string_equal(buf, "1:0 1:1 1:2 1:3");
	history_free(p);
}

static void test_switch_exactly_at_a_segment_boundary(void **state)
{
	(void)state;
	char buf[512];
	TimelinePath *p = parse_ok("1\t0/4000000\tno recovery target specified\n", 2);
	assert_int_equal(history_tli_of_lsn(p, 0x3FFFFFFu), 1);
	assert_int_equal(history_tli_of_lsn(p, 0x4000000u), 2);
	/* Segment 3 is wholly timeline 1's; 4 starts timeline 2. */
	segments_str(p, 0x3000028u, 0x5000000u, 16 * MB, buf, sizeof(buf));
	assert_string_equal(buf, "1:3 2:4 2:5");
	history_free(p);
}

static void test_one_gib_segments(void **state)
{
	(void)state;
	char buf[512];
	/* 1/40000000 is the first byte of segment 5; 1/B0000010 is inside segment 6. */
	TimelinePath *p = parse_ok("1\t1/40000000\treason\n2\t1/B0000010\treason\n", 3);
	segments_str(p, 0x40000028u, 0x200000000ull, GB, buf, sizeof(buf));
	assert_string_equal(buf, "1:1 1:2 1:3 1:4 2:5 3:6 3:7 3:8");
	assert_int_equal(history_tli_of_lsn(p, 0x13FFFFFFFull), 1);
	assert_int_equal(history_tli_of_lsn(p, 0x140000000ull), 2);
	assert_int_equal(history_tli_of_lsn(p, 0x1B000000Full), 2);
	assert_int_equal(history_tli_of_lsn(p, 0x1B0000010ull), 3);
	history_free(p);
}

static void test_timelines_inside_one_segment_and_empty_timelines(void **state)
{
	(void)state;
	char buf[512];
	/* Timeline 2 lived from 0/5000100 to 0/5000200: its WAL is in timeline 3's segment 5. */
	TimelinePath *p = parse_ok("1\t0/5000100\tr\n2\t0/5000200\tr\n", 3);
	assert_int_equal(history_tli_of_lsn(p, 0x5000150u), 2);
	segments_str(p, 0x4000000u, 0x6000000u, 16 * MB, buf, sizeof(buf));
	assert_string_equal(buf, "1:4 3:5 3:6");
	history_free(p);

	/* Timeline 2 promoted again before writing anything: it is never current. */
	p = parse_ok("1\t0/5000100\tr\n2\t0/5000100\tr\n", 3);
	assert_int_equal(p->n, 3);
	assert_entry(p, 1, 2, 0x5000100u, 0x5000100u);
	assert_int_equal(history_tli_of_lsn(p, 0x50000FFu), 1);
	assert_int_equal(history_tli_of_lsn(p, 0x5000100u), 3);
	assert_true(history_contains(p, 2));
	history_free(p);
}

static void test_gaps_in_timeline_ids_are_kept(void **state)
{
	(void)state;
	char buf[512];
	TimelinePath *p = parse_ok("1\t0/3000000\tr\n4\t0/5000000\tr\n", 7);
	assert_int_equal(p->n, 3);
	assert_entry(p, 1, 4, 0x3000000u, 0x5000000u);
	assert_entry(p, 2, 7, 0x5000000u, UINT64_MAX);
	assert_false(history_contains(p, 2));
	segments_str(p, 0x2000000u, 0x5000000u, 16 * MB, buf, sizeof(buf));
	assert_string_equal(buf, "1:2 4:3 4:4 7:5");
	history_free(p);
}

static void test_long_history_keeps_every_line(void **state)
{
	(void)state;
	char text[2048] = "";
	for (unsigned t = 1; t <= 20; t++) {
		size_t used = strlen(text);
		snprintf(text + used, sizeof(text) - used, "%u\t0/%X\tno recovery target specified\n\n", t,
			 t * 0x1000000u + 0x28);
	}
	TimelinePath *p = parse_ok(text, 21);
	assert_int_equal(p->n, 21);
	for (int i = 0; i < 20; i++)
		assert_entry(p, i, (uint32_t)i + 1, i ? (uint64_t)i * 0x1000000u + 0x28 : 0,
			     (uint64_t)(i + 1) * 0x1000000u + 0x28);
	assert_entry(p, 20, 21, 20 * 0x1000000u + 0x28, UINT64_MAX);
	/* Timeline 6 ran from 0/5000028 to 0/6000028. */
	assert_int_equal(history_tli_of_lsn(p, 0x6000027u), 6);
	assert_int_equal(history_tli_of_lsn(p, 0x6000028u), 7);
	history_free(p);
}

static void test_comments_blank_lines_and_line_endings(void **state)
{
	(void)state;
	const char text[] = "# written by hand\n"
			    "\n"
			    "   \t \n"
			    "  1\t0/3000000\n"
			    "\t# indented comment\r\n"
			    "2 0/4000000 reason with\ttabs and # signs\r\n"
			    "\r\n"
			    "5\t0/4000000"; /* no reason, no final newline */
	TimelinePath *p = parse_ok(text, 6);
	assert_int_equal(p->n, 4);
	assert_entry(p, 0, 1, 0, 0x3000000u);
	assert_entry(p, 1, 2, 0x3000000u, 0x4000000u);
	assert_entry(p, 2, 5, 0x4000000u, 0x4000000u);
	assert_entry(p, 3, 6, 0x4000000u, UINT64_MAX);
	history_free(p);
}

static void test_only_len_bytes_are_read(void **state)
{
	(void)state;
	const char text[] = "1\t0/3000000\tr\nGARBAGE";
	TimelinePath *p = NULL;
	WsError err;
	assert_int_equal(history_parse(text, strlen("1\t0/3000000\tr\n"), 2, &p, &err), 0);
	assert_int_equal(p->n, 2);
	history_free(p);
	/* Cut inside the LSN: "0/30" is what was given. */
	assert_int_equal(history_parse(text, strlen("1\t0/30"), 2, &p, &err), 0);
	assert_entry(p, 0, 1, 0, 0x30);
	history_free(p);
	assert_int_equal(history_parse(text, sizeof(text) - 1, 2, &p, &err), WS_CORRUPT);
	assert_null(p);
}

static void expect_corrupt(const char *text, uint32_t tli, const char *msg, const char *detail_part)
{
	TimelinePath *p = (TimelinePath *)&p; /* must be reset to NULL */
	WsError err;
	ws_error_clear(&err);
	int rc = history_parse(text, strlen(text), tli, &p, &err);
	if (rc != WS_CORRUPT)
		fail_msg("history not refused (rc %d): %s", rc, text);
	assert_null(p);
	assert_int_equal(err.cls, WS_CORRUPT);
	assert_string_equal(err.msg, msg);
	if (detail_part && !strstr(err.detail, detail_part))
		fail_msg("detail \"%s\" lacks \"%s\"", err.detail, detail_part);
}

static void test_malformed_histories_are_refused_naming_the_line(void **state)
{
	(void)state;
	expect_corrupt("1\t0/3000000\tr\n1\t0/4000000\tr\n", 3,
		       "invalid data in history file \"00000003.history\", line 2: \"1\\x090/4000000\\x09r\"",
		       "increasing sequence");
	expect_corrupt("2\t0/3000000\tr\n1\t0/4000000\tr\n", 3,
		       "invalid data in history file \"00000003.history\", line 2: \"1\\x090/4000000\\x09r\"",
		       "increasing sequence");
	expect_corrupt("# c\n\n1\t0/XYZ\tr\n", 3,
		       "syntax error in history file \"00000003.history\", line 3: \"1\\x090/XYZ\\x09r\"",
		       "switch point LSN");
	expect_corrupt("1\t0/3000000\tr\n3\t0/4000000\tr\n", 3,
		       "invalid data in history file \"00000003.history\", line 2: \"3\\x090/4000000\\x09r\"",
		       "less than the child");
	expect_corrupt("4\t0/3000000\tr\n", 3,
		       "invalid data in history file \"00000003.history\", line 1: \"4\\x090/3000000\\x09r\"",
		       "less than the child");
	expect_corrupt("1\t0/3000000\n", 1,
		       "invalid data in history file \"00000001.history\", line 1: \"1\\x090/3000000\"",
		       "less than the child");
	expect_corrupt("0\t0/3000000\n", 2,
		       "invalid data in history file \"00000002.history\", line 1: \"0\\x090/3000000\"",
		       "start at 1");
	expect_corrupt("1\t0/5000000\n2\t0/4000000\n", 3,
		       "invalid data in history file \"00000003.history\", line 2: \"2\\x090/4000000\"",
		       "backwards");
	expect_corrupt("1\t0/0\n", 2,
		       "invalid data in history file \"00000002.history\", line 1: \"1\\x090/0\"", "0/0");
	expect_corrupt(
		"1\tFFFFFFFF/FFFFFFFF\n", 2,
		"invalid data in history file \"00000002.history\", line 1: \"1\\x09FFFFFFFF/FFFFFFFF\"",
		"0/0");
}

static void test_syntax_errors_are_refused(void **state)
{
	(void)state;
	const char *bad[] = {
		"1\n",                     /* no switch point */
		"1\t\n",                   /* nor here */
		"1\t0/3000000x\treason\n", /* text glued to the LSN */
		"1\t0x0/3000000\n",        /* sscanf would take "0x" */
		"+1\t0/3000000\n",         /* nor a sign */
		"x1\t0/3000000\n",
		"1x\t0/3000000\n",
		"1/0/3000000\n",
		"10/3000000\n",     /* no separator */
		"1\t0/123456789\n", /* nine hex digits */
		"1\t0 /3000000\n",
		"4294967296\t0/3000000\n", /* above any TLI */
		"one\t0/3000000\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TimelinePath *p = NULL;
		WsError err;
		ws_error_clear(&err);
		int rc = history_parse(bad[i], strlen(bad[i]), 0xFFFFFFFFu, &p, &err);
		if (rc != WS_CORRUPT)
			fail_msg("\"%s\" was not refused (rc %d)", bad[i], rc);
		assert_null(p);
		assert_non_null(
			strstr(err.msg, "syntax error in history file \"FFFFFFFF.history\", line 1: "));
	}
	/* The largest TLIs are fine: 4294967294 as the parent of 4294967295. */
	TimelinePath *p = parse_ok("4294967294\t0/3000000\n", 0xFFFFFFFFu);
	assert_entry(p, 0, 0xFFFFFFFEu, 0, 0x3000000u);
	history_free(p);
}

static void test_empty_history_nul_bytes_and_timeline_zero(void **state)
{
	(void)state;
	TimelinePath *p = NULL;
	WsError err;

	expect_corrupt("", 2, "history file \"00000002.history\" has no timeline switch", NULL);
	expect_corrupt("# only a comment\n\n", 2, "history file \"00000002.history\" has no timeline switch",
		       NULL);

	const char with_nul[] = "1\t0/3000000\tr\0x\n";
	assert_int_equal(history_parse(with_nul, sizeof(with_nul) - 1, 2, &p, &err), WS_CORRUPT);
	assert_string_equal(err.msg, "history file \"00000002.history\" contains a NUL byte");
	assert_null(p);

	assert_int_equal(history_parse(real_run1_tli2, strlen(real_run1_tli2), 0, &p, &err), WS_USAGE);
	assert_null(p);
}

static void test_timeline_without_history(void **state)
{
	(void)state;
	char buf[512];
	TimelinePath *p = history_single(1);
	assert_int_equal(p->n, 1);
	assert_entry(p, 0, 1, 0, UINT64_MAX);
	assert_int_equal(history_tli_of_lsn(p, 0), 1);
	assert_int_equal(history_tli_of_lsn(p, UINT64_MAX), 1);
	assert_true(history_contains(p, 1));
	assert_false(history_contains(p, 2));
	segments_str(p, 0xFFFFFF0u, 0x10000028u, 16 * MB, buf, sizeof(buf));
	assert_string_equal(buf, "1:F 1:10");
	history_free(p);

	p = history_single(5);
	assert_int_equal(history_tli_of_lsn(p, 0x16B374D848ull), 5);
	segments_str(p, 0x3000000u, 0x3000000u, 16 * MB, buf, sizeof(buf));
	assert_string_equal(buf, "5:3");
	history_free(p);
	history_free(NULL);
}

static void test_callback_result_stops_the_walk(void **state)
{
	(void)state;
	TimelinePath *p = parse_ok(real_run1_tli3, 3);
	Seen s = {.stop_at = 2};
	assert_int_equal(history_segments(p, 0x3000000u, 0x9000000u, 16 * MB, record, &s), 42);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.tli[1], 2);
	assert_true(s.segno[1] == 4);
	history_free(p);
}

static void test_segments_refuses_bad_arguments_without_calling(void **state)
{
	(void)state;
	TimelinePath *p = parse_ok(real_run1_tli3, 3);
	TimelinePath empty = {0, NULL};
	Seen s = {0};
	assert_int_equal(history_segments(p, 0x3000000u, UINT64_MAX, 16 * MB, record, &s), WS_USAGE);
	assert_int_equal(history_segments(p, 0x5000000u, 0x4000000u, 16 * MB, record, &s), WS_USAGE);
	assert_int_equal(history_segments(p, 0x3000000u, 0x4000000u, 1000, record, &s), WS_USAGE);
	assert_int_equal(history_segments(p, 0x3000000u, 0x4000000u, 2 * GB, record, &s), WS_USAGE);
	assert_int_equal(history_segments(&empty, 0x3000000u, 0x4000000u, 16 * MB, record, &s), WS_USAGE);
	assert_int_equal(history_segments(NULL, 0x3000000u, 0x4000000u, 16 * MB, record, &s), WS_USAGE);
	assert_int_equal(s.n, 0);
	/* The last finite position is fine: the walk ends without wrapping. */
	TimelinePath *one = history_single(1);
	assert_int_equal(history_segments(one, UINT64_MAX - 1, UINT64_MAX - 1, GB, record, &s), 0);
	assert_int_equal(s.n, 1);
	assert_true(s.segno[0] == (1ull << 34) - 1);
	history_free(one);
	history_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_history_gives_path_to_timeline_3),
		cmocka_unit_test(test_switch_point_belongs_to_the_newer_timeline),
		cmocka_unit_test(test_contains_lists_only_the_path),
		cmocka_unit_test(test_segments_match_what_postgresql_15_fetched),
		cmocka_unit_test(test_segment_holding_a_switch_is_read_from_the_newer_timeline),
		cmocka_unit_test(test_switch_exactly_at_a_segment_boundary),
		cmocka_unit_test(test_one_gib_segments),
		cmocka_unit_test(test_timelines_inside_one_segment_and_empty_timelines),
		cmocka_unit_test(test_gaps_in_timeline_ids_are_kept),
		cmocka_unit_test(test_long_history_keeps_every_line),
		cmocka_unit_test(test_comments_blank_lines_and_line_endings),
		cmocka_unit_test(test_only_len_bytes_are_read),
		cmocka_unit_test(test_malformed_histories_are_refused_naming_the_line),
		cmocka_unit_test(test_syntax_errors_are_refused),
		cmocka_unit_test(test_empty_history_nul_bytes_and_timeline_zero),
		cmocka_unit_test(test_timeline_without_history),
		cmocka_unit_test(test_callback_result_stops_the_walk),
		cmocka_unit_test(test_segments_refuses_bad_arguments_without_calling),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
