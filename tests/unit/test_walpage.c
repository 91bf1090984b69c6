/*
 * test_walpage.c - the long page header check: every field that can be wrong
 * gives its own error, and a real PostgreSQL 15 segment passes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/walpage.h"
#include "pg/pgmajor.h"

#define MB    (1024u * 1024u)
#define SYSID UINT64_C(7300000000000000001)

/* Written by initdb of PostgreSQL 15 (see tests/unit/data); values from pg_controldata. */
#define REAL15_SYSID   UINT64_C(7712176180517589031)
#define REAL15_SEGSIZE (16u * MB)

static const char *data_dir(void)
{
	const char *d = getenv("WALSHIP_TEST_DATA");
	return d != NULL && *d != '\0' ? d : "tests/unit/data";
}

static void put16(unsigned char *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}
static void put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}
static void put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* A first page as PostgreSQL writes it: long header, then zeroes. */
static void build(unsigned char *buf, size_t len, uint16_t magic, uint64_t sysid, uint32_t seg_size,
		  uint64_t segno)
{
	memset(buf, 0, len);
	put16(buf + 0, magic);
	put16(buf + 2, WAL_XLP_LONG_HEADER);
	put32(buf + 4, 1);
	put64(buf + 8, segno * seg_size);
	put32(buf + 16, 0);
	put64(buf + 24, sysid);
	put32(buf + 32, seg_size);
	put32(buf + 36, 8192);
}

static void test_magic_of_each_supported_major(void **state)
{
	(void)state;
	assert_int_equal(wal_page_magic(PG_MAJOR_9_6), 0xD093);
	assert_int_equal(wal_page_magic(PG_MAJOR(10)), 0xD097);
	assert_int_equal(wal_page_magic(PG_MAJOR(11)), 0xD098);
	assert_int_equal(wal_page_magic(PG_MAJOR(12)), 0xD101);
	assert_int_equal(wal_page_magic(PG_MAJOR(13)), 0xD106);
	assert_int_equal(wal_page_magic(PG_MAJOR(14)), 0xD10D);
	assert_int_equal(wal_page_magic(PG_MAJOR(15)), 0xD110);
	assert_int_equal(wal_page_magic(PG_MAJOR(16)), 0xD113);
	assert_int_equal(wal_page_magic(PG_MAJOR(17)), 0xD116);
	assert_int_equal(wal_page_magic(90000), 0);
	assert_int_equal(wal_page_magic(90500), 0);
	assert_int_equal(wal_page_magic(PG_MAJOR(18)), 0);
}

static void test_valid_header_passes_for_each_major(void **state)
{
	(void)state;
	const int majors[] = {PG_MAJOR_9_6, PG_MAJOR(10), PG_MAJOR(11), PG_MAJOR(12), PG_MAJOR(13),
			      PG_MAJOR(14), PG_MAJOR(15), PG_MAJOR(16), PG_MAJOR(17)};
	unsigned char buf[8192];
	WsError err;

	for (size_t i = 0; i < sizeof(majors) / sizeof(majors[0]); i++) {
		build(buf, sizeof(buf), wal_page_magic(majors[i]), SYSID, 16 * MB, 0x305);
		ws_error_clear(&err);
		if (wal_page_check(buf, sizeof(buf), majors[i], SYSID, 16 * MB, 0x305, "X", &err) != 0)
			fail_msg("major %d: %s", majors[i], err.msg);
		/* Only 40 bytes are needed. */
		assert_int_equal(wal_page_check(buf, WAL_LONG_HEADER_SIZE, majors[i], SYSID, 16 * MB, 0x305,
						"X", &err),
				 0);
	}
}

static void test_decode_reads_every_field(void **state)
{
	(void)state;
	unsigned char buf[WAL_LONG_HEADER_SIZE];
	WalLongHeader h;

	build(buf, sizeof(buf), 0xD110, SYSID, 64 * MB, 7);
	put16(buf + 2, 0x0007);
	put32(buf + 4, 3);
	put32(buf + 16, 1234);
	wal_long_header_decode(buf, &h);
	assert_int_equal(h.magic, 0xD110);
	assert_int_equal(h.info, 0x0007);
	assert_int_equal(h.tli, 3);
	assert_true(h.pageaddr == UINT64_C(7) * 64 * MB);
	assert_int_equal(h.rem_len, 1234);
	assert_true(h.sysid == SYSID);
	assert_int_equal(h.seg_size, 64 * MB);
	assert_int_equal(h.xlog_blcksz, 8192);
}

static void test_magic_of_another_version_names_that_version(void **state)
{
	(void)state;
	unsigned char buf[64];
	WsError err;

	build(buf, sizeof(buf), 0xD10D, SYSID, 16 * MB, 1);
	assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR(15), SYSID, 16 * MB, 1,
					"000000010000000000000001", &err),
			 WS_CORRUPT);
	assert_int_equal(err.cls, WS_CORRUPT);
	assert_string_equal(err.msg,
			    "WAL file \"000000010000000000000001\" was written by PostgreSQL 14, not 15");
	assert_string_equal(err.detail, "Its page magic is 0xD10D, PostgreSQL 15 writes 0xD110.");

	build(buf, sizeof(buf), 0xD093, SYSID, 16 * MB, 1);
	assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR(17), SYSID, 16 * MB, 1, "F", &err),
			 WS_CORRUPT);
	assert_string_equal(err.msg, "WAL file \"F\" was written by PostgreSQL 9.6, not 17");

	build(buf, sizeof(buf), 0xD116, SYSID, 16 * MB, 1);
	assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR_9_6, SYSID, 16 * MB, 1, "F", &err),
			 WS_CORRUPT);
	assert_string_equal(err.msg, "WAL file \"F\" was written by PostgreSQL 17, not 9.6");
}

static void test_unknown_magic_is_an_invalid_header(void **state)
{
	(void)state;
	unsigned char buf[64];
	WsError err;

	build(buf, sizeof(buf), 0x1234, SYSID, 16 * MB, 1);
	assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR(15), SYSID, 16 * MB, 1, "F", &err),
			 WS_CORRUPT);
	assert_string_equal(err.msg, "WAL file \"F\" has an invalid page header");
	assert_string_equal(err.detail, "Its page magic is 0x1234, PostgreSQL 15 writes 0xD110.");

	memset(buf, 0, sizeof(buf)); /* a zero-filled (preallocated, never written) file */
	assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR(15), SYSID, 16 * MB, 1, "F", &err),
			 WS_CORRUPT);
	assert_string_equal(err.msg, "WAL file \"F\" has an invalid page header");
}

static void test_missing_long_header_flag(void **state)
{
	(void)state;
	unsigned char buf[64];
	WsError err;

	build(buf, sizeof(buf), 0xD110, SYSID, 16 * MB, 1);
	put16(buf + 2, 0x0001);
	assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR(15), SYSID, 16 * MB, 1, "F", &err),
			 WS_CORRUPT);
	assert_string_equal(err.msg, "WAL file \"F\" does not start with a long page header");
	assert_non_null(strstr(err.detail, "0x0001"));

	/* Other flag bits beside it are fine. */
	put16(buf + 2, 0x0007);
	assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR(15), SYSID, 16 * MB, 1, "F", &err), 0);
}

static void test_other_cluster_is_refused(void **state)
{
	(void)state;
	unsigned char buf[64];
	WsError err;

	build(buf, sizeof(buf), 0xD110, UINT64_C(7000000000000000002), 16 * MB, 1);
	assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR(15), SYSID, 16 * MB, 1,
					"000000010000000000000001", &err),
			 WS_CORRUPT);
	assert_string_equal(err.msg, "WAL file \"000000010000000000000001\" belongs to another cluster");
	assert_string_equal(err.detail,
			    "Its system identifier is 7000000000000000002, the data directory's is "
			    "7300000000000000001.");
}

static void test_wrong_segment_size_is_refused(void **state)
{
	(void)state;
	unsigned char buf[64];
	WsError err;

	build(buf, sizeof(buf), 0xD110, SYSID, 1 * MB, 16);
	assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR(15), SYSID, 16 * MB, 1, "F", &err),
			 WS_CORRUPT);
	assert_string_equal(err.msg, "WAL file \"F\" has segment size 1048576, expected 16777216");
}

static void test_page_address_must_match_the_name(void **state)
{
	(void)state;
	unsigned char buf[64];
	WsError err;

	build(buf, sizeof(buf), 0xD110, SYSID, 16 * MB, 3);
	assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR(15), SYSID, 16 * MB, 4,
					"000000010000000000000004", &err),
			 WS_CORRUPT);
	assert_string_equal(err.msg,
			    "WAL file \"000000010000000000000004\" has page address 0/3000000, expected "
			    "0/4000000 (is it another segment's content?)");

	/* Above 4 GB the LSN's high half shows: segment 3/05 with 16 MB segments. */
	build(buf, sizeof(buf), 0xD110, SYSID, 16 * MB, 3 * 256 + 6);
	assert_int_equal(
		wal_page_check(buf, sizeof(buf), PG_MAJOR(15), SYSID, 16 * MB, 3 * 256 + 5, "F", &err),
		WS_CORRUPT);
	assert_string_equal(err.msg, "WAL file \"F\" has page address 3/6000000, expected 3/5000000 (is it "
				     "another segment's content?)");

	build(buf, sizeof(buf), 0xD110, SYSID, 16 * MB, 3 * 256 + 5);
	assert_int_equal(
		wal_page_check(buf, sizeof(buf), PG_MAJOR(15), SYSID, 16 * MB, 3 * 256 + 5, "F", &err), 0);
}

static void test_wal_block_size_must_be_a_power_of_two(void **state)
{
	(void)state;
	const uint32_t bad[] = {0, 512, 3000, 8193, 131072};
	const uint32_t good[] = {1024, 8192, 65536};
	unsigned char buf[64];
	WsError err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		build(buf, sizeof(buf), 0xD110, SYSID, 16 * MB, 1);
		put32(buf + 36, bad[i]);
		assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR(15), SYSID, 16 * MB, 1, "F", &err),
				 WS_CORRUPT);
		assert_non_null(strstr(err.msg, "has an invalid WAL block size"));
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		build(buf, sizeof(buf), 0xD110, SYSID, 16 * MB, 1);
		put32(buf + 36, good[i]);
		assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR(15), SYSID, 16 * MB, 1, "F", &err),
				 0);
	}
}

static void test_short_buffer_is_corrupt(void **state)
{
	(void)state;
	unsigned char buf[64];
	WsError err;

	build(buf, sizeof(buf), 0xD110, SYSID, 16 * MB, 1);
	assert_int_equal(
		wal_page_check(buf, WAL_LONG_HEADER_SIZE - 1, PG_MAJOR(15), SYSID, 16 * MB, 1, "F", &err),
		WS_CORRUPT);
	assert_string_equal(err.msg, "WAL file \"F\" is too short");
	assert_int_equal(wal_page_check(buf, 0, PG_MAJOR(15), SYSID, 16 * MB, 1, "F", &err), WS_CORRUPT);
	assert_string_equal(err.msg, "WAL file \"F\" is too short");
}

static void test_unsupported_major_is_not_blamed_on_the_file(void **state)
{
	(void)state;
	unsigned char buf[64];
	WsError err;

	build(buf, sizeof(buf), 0xD110, SYSID, 16 * MB, 1);
	assert_int_equal(wal_page_check(buf, sizeof(buf), PG_MAJOR(18), SYSID, 16 * MB, 1, "F", &err),
			 WS_FATAL);
}

static unsigned char *read_real_page(size_t *len)
{
	char path[4096];
	unsigned char *buf = malloc(8192);
	FILE *f;

	snprintf(path, sizeof(path), "%s/wal-15-first-page", data_dir());
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s (set WALSHIP_TEST_DATA or run from the repository root)", path);
	*len = fread(buf, 1, 8192, f);
	fclose(f);
	assert_int_equal(*len, 8192);
	return buf;
}

static void test_real_postgresql_15_segment_passes(void **state)
{
	(void)state;
	size_t len;
	unsigned char *buf = read_real_page(&len);
	WalLongHeader h;
	WsError err;

	wal_long_header_decode(buf, &h);
	assert_int_equal(h.magic, 0xD110);
	assert_true(h.info & WAL_XLP_LONG_HEADER);
	assert_int_equal(h.tli, 1);
	assert_true(h.sysid == REAL15_SYSID);
	assert_int_equal(h.seg_size, REAL15_SEGSIZE);
	assert_int_equal(h.xlog_blcksz, 8192);
	assert_true(h.pageaddr == UINT64_C(0x1000000));

	ws_error_clear(&err);
	if (wal_page_check(buf, len, PG_MAJOR(15), REAL15_SYSID, REAL15_SEGSIZE, 1,
			   "000000010000000000000001", &err) != 0)
		fail_msg("%s (%s)", err.msg, err.detail);

	/* The same bytes under another name, cluster or version are refused. */
	assert_int_equal(wal_page_check(buf, len, PG_MAJOR(15), REAL15_SYSID, REAL15_SEGSIZE, 2, "F", &err),
			 WS_CORRUPT);
	assert_int_equal(
		wal_page_check(buf, len, PG_MAJOR(15), REAL15_SYSID + 1, REAL15_SEGSIZE, 1, "F", &err),
		WS_CORRUPT);
	assert_int_equal(wal_page_check(buf, len, PG_MAJOR(16), REAL15_SYSID, REAL15_SEGSIZE, 1, "F", &err),
			 WS_CORRUPT);
	assert_string_equal(err.msg, "WAL file \"F\" was written by PostgreSQL 15, not 16");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_magic_of_each_supported_major),
		cmocka_unit_test(test_valid_header_passes_for_each_major),
		cmocka_unit_test(test_decode_reads_every_field),
		cmocka_unit_test(test_magic_of_another_version_names_that_version),
		cmocka_unit_test(test_unknown_magic_is_an_invalid_header),
		cmocka_unit_test(test_missing_long_header_flag),
		cmocka_unit_test(test_other_cluster_is_refused),
		cmocka_unit_test(test_wrong_segment_size_is_refused),
		cmocka_unit_test(test_page_address_must_match_the_name),
		cmocka_unit_test(test_wal_block_size_must_be_a_power_of_two),
		cmocka_unit_test(test_short_buffer_is_corrupt),
		cmocka_unit_test(test_unsupported_major_is_not_blamed_on_the_file),
		cmocka_unit_test(test_real_postgresql_15_segment_passes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
