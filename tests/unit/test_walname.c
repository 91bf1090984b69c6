/*
 * test_walname.c - archive file names: what is accepted, what is refused and
 * how refusals read, segment numbers per segment size, and sort order.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/walname.h"

#define MB (1024u * 1024u)
#define GB (1024u * MB)

static void test_segment_name_parses_into_fields(void **state)
{
	(void)state;
	WalName n;
	WsError err;
	assert_int_equal(walname_parse("000000010000000300000019", &n, &err), 0);
	assert_int_equal(n.kind, WAL_SEGMENT);
	assert_int_equal(n.tli, 1);
	assert_int_equal(n.log, 3);
	assert_int_equal(n.seg, 0x19);
	assert_int_equal(n.backup_offset, 0);
	assert_string_equal(n.name, "000000010000000300000019");
	assert_string_equal(walname_kind_str(n.kind), "segment");

	assert_int_equal(walname_parse("FFFFFFFFFFFFFFFF000000FF", &n, &err), 0);
	assert_int_equal(n.tli, 0xFFFFFFFFu);
	assert_int_equal(n.log, 0xFFFFFFFFu);
	assert_int_equal(n.seg, 0xFF);
}

static void test_history_name_parses_into_fields(void **state)
{
	(void)state;
	WalName n;
	WsError err;
	assert_int_equal(walname_parse("0000000A.history", &n, &err), 0);
	assert_int_equal(n.kind, WAL_HISTORY);
	assert_int_equal(n.tli, 10);
	assert_int_equal(n.log, 0);
	assert_int_equal(n.seg, 0);
	assert_string_equal(n.name, "0000000A.history");
	assert_string_equal(walname_kind_str(n.kind), "history file");
}

static void test_backup_name_parses_into_fields(void **state)
{
	(void)state;
	WalName n;
	WsError err;
	assert_int_equal(walname_parse("000000020000000300000019.00000028.backup", &n, &err), 0);
	assert_int_equal(n.kind, WAL_BACKUP);
	assert_int_equal(n.tli, 2);
	assert_int_equal(n.log, 3);
	assert_int_equal(n.seg, 0x19);
	assert_int_equal(n.backup_offset, 0x28);
	assert_string_equal(n.name, "000000020000000300000019.00000028.backup");
	assert_string_equal(walname_kind_str(n.kind), "backup history file");
}

static void test_partial_name_parses_into_fields(void **state)
{
	(void)state;
	WalName n;
	WsError err;
	assert_int_equal(walname_parse("0000000100000000000000AB.partial", &n, &err), 0);
	assert_int_equal(n.kind, WAL_PARTIAL);
	assert_int_equal(n.tli, 1);
	assert_int_equal(n.log, 0);
	assert_int_equal(n.seg, 0xAB);
	assert_string_equal(walname_kind_str(n.kind), "partial segment");
}

static void assert_refused(const char *name, const char *shown)
{
	WalName n;
	WsError err;
	char want[256];

	memset(&n, 0x5A, sizeof(n));
	ws_error_clear(&err);
	int rc = walname_parse(name, &n, &err);
	if (rc != WS_USAGE)
		fail_msg("\"%s\" was not refused (rc %d)", shown, rc);
	assert_int_equal(err.cls, WS_USAGE);
	snprintf(want, sizeof(want), "\"%s\" is not a WAL file name", shown);
	assert_string_equal(err.msg, want);
	assert_string_equal(err.detail,
			    "expected a segment (24 hex digits), TLI.history, SEGMENT.OFFSET.backup "
			    "or SEGMENT.partial");
}

static void test_bad_names_are_refused_with_the_accepted_forms(void **state)
{
	(void)state;
	assert_refused("", "");
	assert_refused("../x", "../x");
	assert_refused("000000010000000000000001x", "000000010000000000000001x");
	assert_refused("00000001000000000000000a", "00000001000000000000000a"); /* lowercase */
	assert_refused("00000001000000000000000A ", "00000001000000000000000A ");
	assert_refused("0000000100000000000000", "0000000100000000000000"); /* too short */
	assert_refused("pg_wal/000000010000000000000001", "pg_wal/000000010000000000000001");
	assert_refused("/000000010000000000000001", "/000000010000000000000001");
	assert_refused("0000000a.history", "0000000a.history");
	assert_refused("00000001.History", "00000001.History");
	assert_refused("000000001.history", "000000001.history");
	assert_refused("000000010000000000000001.partial.tmp", "000000010000000000000001.partial.tmp");
	assert_refused("000000010000000000000001.0000028.backup", "000000010000000000000001.0000028.backup");
	assert_refused("000000010000000000000001.00000028.Backup",
		       "000000010000000000000001.00000028.Backup");
	assert_refused("000000010000000000000001.00000028", "000000010000000000000001.00000028");
	assert_refused("000000010000000000000001.backup", "000000010000000000000001.backup");
	assert_refused("RECOVERYXLOG", "RECOVERYXLOG");
	assert_refused("0x000001000000000000000001", "0x000001000000000000000001");
}

static void test_timeline_zero_is_refused(void **state)
{
	(void)state;
	WalName n;
	WsError err;
	assert_int_equal(walname_parse("000000000000000000000001", &n, &err), WS_USAGE);
	assert_string_equal(err.msg, "\"000000000000000000000001\" is not a WAL file name");
	assert_non_null(strstr(err.detail, "timeline 0"));
	assert_int_equal(walname_parse("00000000.history", &n, &err), WS_USAGE);
	assert_int_equal(walname_parse("000000000000000000000001.partial", &n, &err), WS_USAGE);
}

static void test_refused_names_are_printed_safely(void **state)
{
	(void)state;
	char longname[300];
	WalName n;
	WsError err;

	/* Control bytes, quotes and high bytes are escaped, never printed raw. */
	assert_int_equal(walname_parse("a\nb\"c\x1b[31m\xff", &n, &err), WS_USAGE);
	assert_string_equal(err.msg, "\"a\\x0Ab\\x22c\\x1B[31m\\xFF\" is not a WAL file name");

	/* A long name is cut, and the message stays short. */
	memset(longname, 'A', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(walname_parse(longname, &n, &err), WS_USAGE);
	assert_non_null(strstr(err.msg, "...\" is not a WAL file name"));
	assert_true(strlen(err.msg) < 100);
	assert_null(strstr(err.msg, longname + 200));
}

static void test_escape_helper_caps_and_terminates(void **state)
{
	(void)state;
	char buf[16];
	walname_escape("abc", 3, buf, sizeof(buf));
	assert_string_equal(buf, "abc");
	walname_escape("a\0b", 3, buf, sizeof(buf));
	assert_string_equal(buf, "a\\x00b");
	walname_escape("abcdefghijklmnopqrstuvwxyz", 26, buf, sizeof(buf));
	assert_true(strlen(buf) < sizeof(buf));
	assert_int_equal(strcmp(buf + strlen(buf) - 3, "..."), 0);
	walname_escape("\x01\x02\x03\x04\x05", 5, buf, sizeof(buf));
	assert_true(strlen(buf) < sizeof(buf));
}

static int sort_cmp(const void *a, const void *b)
{
	return walname_compare(a, b);
}

static void test_mixed_list_sorts_in_recovery_order(void **state)
{
	(void)state;
	const char *shuffled[] = {
		"000000020000000000000005",
		"000000010000000100000000",
		"00000002.history",
		"000000010000000000000003.00000028.backup",
		"000000010000000000000003",
		"000000010000000000000005.partial",
		"000000010000000000000003.00000010.backup",
		"000000010000000000000004",
		"00000001.history",
		"000000010000000000000005",
		"000000020000000000000004",
		"00000003.history",
		"0000000100000000000000FF",
		"000000010000000000000005.00000028.backup",
		"000000020000000000000000",
		"000000010000000000000005.00000000.backup",
	};
	const char *expected[] = {
		"00000001.history",
		"000000010000000000000003",
		"000000010000000000000003.00000010.backup",
		"000000010000000000000003.00000028.backup",
		"000000010000000000000004",
		"000000010000000000000005",
		"000000010000000000000005.partial",
		"000000010000000000000005.00000000.backup",
		"000000010000000000000005.00000028.backup",
		"0000000100000000000000FF",
		"000000010000000100000000",
		"00000002.history",
		"000000020000000000000000",
		"000000020000000000000004",
		"000000020000000000000005",
		"00000003.history",
	};
	size_t count = sizeof(shuffled) / sizeof(shuffled[0]);
	WalName *names = calloc(count, sizeof(WalName));
	WsError err;

	assert_non_null(names);
	for (size_t i = 0; i < count; i++)
		assert_int_equal(walname_parse(shuffled[i], &names[i], &err), 0);
	qsort(names, count, sizeof(WalName), sort_cmp);
	for (size_t i = 0; i < count; i++)
		assert_string_equal(names[i].name, expected[i]);

	/* strcmp-like: antisymmetric and zero only for the same name. */
	assert_int_equal(walname_compare(&names[0], &names[0]), 0);
	assert_true(walname_compare(&names[0], &names[1]) < 0);
	assert_true(walname_compare(&names[1], &names[0]) > 0);
	free(names);
}

static void test_segments_per_log_follows_segment_size(void **state)
{
	(void)state;
	assert_int_equal(wal_segs_per_log(16 * MB), 256);
	assert_int_equal(wal_segs_per_log(1 * MB), 4096);
	assert_int_equal(wal_segs_per_log(1 * GB), 4);
	assert_int_equal(wal_segs_per_log(64 * MB), 64);
}

static void check_seg(const char *name, uint32_t seg_size, int want)
{
	WalName n;
	WsError err;
	assert_int_equal(walname_parse(name, &n, &err), 0);
	ws_error_clear(&err);
	int rc = walname_check_segsize(&n, seg_size, &err);
	if (rc != want)
		fail_msg("%s with %u-byte segments: got %d, want %d (%s)", name, seg_size, rc, want, err.msg);
	if (want != 0) {
		assert_int_equal(err.cls, WS_USAGE);
		assert_non_null(strstr(err.msg, name));
	}
}

static void test_seg_field_must_fit_the_segment_size(void **state)
{
	(void)state;
	/* 16 MB: 256 segments per log. */
	check_seg("0000000100000000000000FF", 16 * MB, 0);
	check_seg("000000010000000000000100", 16 * MB, WS_USAGE);
	check_seg("000000010000000000000100.partial", 16 * MB, WS_USAGE);
	check_seg("000000010000000000000100.00000028.backup", 16 * MB, WS_USAGE);
	/* 1 GB: 4 segments per log. */
	check_seg("000000010000000000000003", 1 * GB, 0);
	check_seg("000000010000000000000004", 1 * GB, WS_USAGE);
	check_seg("000000010000000700000000", 1 * GB, 0);
	/* 1 MB: 4096 segments per log. */
	check_seg("000000010000000000000FFF", 1 * MB, 0);
	check_seg("000000010000000000001000", 1 * MB, WS_USAGE);
	check_seg("000000010000000000000100", 1 * MB, 0);
	/* A history file has no segment field. */
	check_seg("00000005.history", 1 * GB, 0);
}

static void test_segno_roundtrips_through_segment_name(void **state)
{
	(void)state;
	const uint32_t sizes[] = {1 * MB, 16 * MB, 64 * MB, 1 * GB};
	const uint64_t segnos[] = {0, 1, 3, 4, 255, 256, 4095, 4096, 4097, 123456, UINT64_C(0xFFFFFFFF)};
	char buf[32];
	WalName n;
	WsError err;

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (size_t i = 0; i < sizeof(segnos) / sizeof(segnos[0]); i++) {
			memset(buf, 'x', sizeof(buf));
			wal_segment_name(7, segnos[i], sizes[s], buf);
			assert_int_equal(strlen(buf), 24);
			assert_int_equal(walname_parse(buf, &n, &err), 0);
			assert_int_equal(n.tli, 7);
			assert_int_equal(walname_check_segsize(&n, sizes[s], &err), 0);
			assert_true(walname_segno(&n, sizes[s]) == segnos[i]);
		}
	}

	wal_segment_name(1, 0x100, 16 * MB, buf);
	assert_string_equal(buf, "000000010000000100000000");
	wal_segment_name(2, 5, 1 * GB, buf);
	assert_string_equal(buf, "000000020000000100000001");
	wal_segment_name(0xABCDEF01, 0x1001, 1 * MB, buf);
	assert_string_equal(buf, "ABCDEF010000000100000001");

	assert_int_equal(walname_parse("000000010000000300000019", &n, &err), 0);
	assert_true(walname_segno(&n, 16 * MB) == 3 * 256 + 0x19);
	assert_true(walname_segno(&n, 1 * GB) == 3 * 4 + 0x19);
}

static void test_valid_segment_sizes(void **state)
{
	(void)state;
	for (uint32_t s = 1 * MB; s <= 1 * GB; s *= 2)
		assert_true(wal_segsize_valid(s));
	assert_false(wal_segsize_valid(0));
	assert_false(wal_segsize_valid(512 * 1024));
	assert_false(wal_segsize_valid(2 * GB));
	assert_false(wal_segsize_valid(16 * MB + 1));
	assert_false(wal_segsize_valid(3 * MB));
	assert_false(wal_segsize_valid(UINT32_MAX));
}

static void test_invalid_segment_size_is_refused_by_check(void **state)
{
	(void)state;
	WalName n;
	WsError err;
	assert_int_equal(walname_parse("000000010000000000000001", &n, &err), 0);
	assert_int_equal(walname_check_segsize(&n, 3 * MB, &err), WS_USAGE);
	assert_int_equal(walname_check_segsize(&n, 0, &err), WS_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_segment_name_parses_into_fields),
		cmocka_unit_test(test_history_name_parses_into_fields),
		cmocka_unit_test(test_backup_name_parses_into_fields),
		cmocka_unit_test(test_partial_name_parses_into_fields),
		cmocka_unit_test(test_bad_names_are_refused_with_the_accepted_forms),
		cmocka_unit_test(test_timeline_zero_is_refused),
		cmocka_unit_test(test_refused_names_are_printed_safely),
		cmocka_unit_test(test_escape_helper_caps_and_terminates),
		cmocka_unit_test(test_mixed_list_sorts_in_recovery_order),
		cmocka_unit_test(test_segments_per_log_follows_segment_size),
		cmocka_unit_test(test_seg_field_must_fit_the_segment_size),
		cmocka_unit_test(test_segno_roundtrips_through_segment_name),
		cmocka_unit_test(test_valid_segment_sizes),
		cmocka_unit_test(test_invalid_segment_size_is_refused_by_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
