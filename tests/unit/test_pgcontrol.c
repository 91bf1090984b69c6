/*
 * test_pgcontrol.c - reading pg_control and PG_VERSION: real files written by
 * PostgreSQL 15's initdb give the values pg_controldata printed for them, and
 * damage anywhere in the CRC-covered part is detected.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/pgcontrol.h"
#include "util/crc32c.h"
#include "pg/pgmajor.h"

#define CONTROL_SIZE 8192

/*
 * pg_controldata (PostgreSQL 15) on the two committed files:
 *   pg_control.15:      system identifier 7712176180517589031, WAL segment 16777216
 *   pg_control.15-1mb:  system identifier 7712176182724440117, WAL segment 1048576
 * both: pg_control version 1300, catalog version 202209061, block sizes 8192.
 * In PostgreSQL 15 the CRC sits at offset 288 (sizeof(ControlFileData) is 296).
 */
#define REAL15_CRC_AT 288

static const char *data_dir(void)
{
	const char *d = getenv("WALSHIP_TEST_DATA");
	return d != NULL && *d != '\0' ? d : "tests/unit/data";
}

static unsigned char *load(const char *name, size_t *len)
{
	char path[4096];
	unsigned char *buf = calloc(1, CONTROL_SIZE);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", data_dir(), name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s (set WALSHIP_TEST_DATA or run from the repository root)", path);
	*len = fread(buf, 1, CONTROL_SIZE, f);
	fclose(f);
	assert_int_equal(*len, CONTROL_SIZE);
	return buf;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void remove_file(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (unlink(path) != 0 && errno != ENOENT)
		fail_msg("cannot remove %s", path);
}

/* A scratch "data directory" with a global/ subdirectory. */
static char *make_datadir(void)
{
	char tmpl[] = "/tmp/walship-test-pgcontrol-XXXXXX";
	char sub[4096];
	char *dir = mkdtemp(tmpl);
	assert_non_null(dir);
	snprintf(sub, sizeof(sub), "%s/global", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	return strdup(dir);
}

static void remove_datadir(char *dir)
{
	char sub[4096];
	remove_file(dir, "global/pg_control");
	remove_file(dir, "PG_VERSION");
	snprintf(sub, sizeof(sub), "%s/global", dir);
	rmdir(sub);
	rmdir(dir);
	free(dir);
}

static int datadir_setup(void **state)
{
	*state = make_datadir();
	return 0;
}

/* As a teardown it also runs after a failed assertion, so nothing is left in /tmp. */
static int datadir_teardown(void **state)
{
	remove_datadir(*state);
	return 0;
}

static void assert_real15(const PgControl *c)
{
	assert_true(c->sysid == UINT64_C(7712176180517589031));
	assert_int_equal(c->control_version, 1300);
	assert_int_equal(c->catalog_version, 202209061);
	assert_int_equal(c->blcksz, 8192);
	assert_int_equal(c->xlog_blcksz, 8192);
	assert_int_equal(c->seg_size, 16777216);
}

static void test_real_pg15_control_file_parses(void **state)
{
	(void)state;
	size_t len;
	unsigned char *buf = load("pg_control.15", &len);
	PgControl c;
	WsError err;

	memset(&c, 0, sizeof(c));
	if (pg_control_parse(buf, len, &c, &err) != 0)
		fail_msg("%s: %s", err.msg, err.detail);
	assert_real15(&c);
	free(buf);
}

static void test_real_pg15_control_file_with_1mb_segments_parses(void **state)
{
	(void)state;
	size_t len;
	unsigned char *buf = load("pg_control.15-1mb", &len);
	PgControl c;
	WsError err;

	if (pg_control_parse(buf, len, &c, &err) != 0)
		fail_msg("%s: %s", err.msg, err.detail);
	assert_true(c.sysid == UINT64_C(7712176182724440117));
	assert_int_equal(c.control_version, 1300);
	assert_int_equal(c.catalog_version, 202209061);
	assert_int_equal(c.blcksz, 8192);
	assert_int_equal(c.xlog_blcksz, 8192);
	assert_int_equal(c.seg_size, 1048576);
	free(buf);
}

static void test_any_flipped_byte_in_the_crc_covered_part_is_detected(void **state)
{
	(void)state;
	size_t len;
	unsigned char *buf = load("pg_control.15", &len);
	PgControl c;
	WsError err;

	/* Every byte before the CRC, and the CRC itself. */
	for (size_t i = 0; i < REAL15_CRC_AT + 4; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			buf[i] ^= (unsigned char)(1u << bit);
			int rc = pg_control_parse(buf, len, &c, &err);
			buf[i] ^= (unsigned char)(1u << bit);
			if (rc != WS_CORRUPT)
				fail_msg("flipping bit %d of byte %zu went unnoticed (rc %d)", bit, i, rc);
			assert_non_null(strstr(err.msg, "is corrupt"));
			assert_true(err.hint[0] != '\0');
		}
	}
	/* Past the struct, PostgreSQL's padding is not covered and changes nothing read. */
	for (size_t i = REAL15_CRC_AT + 4; i < 300; i++) {
		buf[i] ^= 0xFF;
		memset(&c, 0, sizeof(c));
		assert_int_equal(pg_control_parse(buf, len, &c, &err), 0);
		buf[i] ^= 0xFF;
		assert_real15(&c);
	}
	free(buf);
}

static void test_truncated_control_file_is_corrupt(void **state)
{
	(void)state;
	size_t len;
	unsigned char *buf = load("pg_control.15", &len);
	const size_t cuts[] = {0, 8, 16, 100, 208, 215, 231, 232, 260, REAL15_CRC_AT, REAL15_CRC_AT + 3};
	PgControl c;
	WsError err;

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		if (pg_control_parse(buf, cuts[i], &c, &err) != WS_CORRUPT)
			fail_msg("a pg_control cut to %zu bytes was accepted", cuts[i]);
		assert_int_equal(err.cls, WS_CORRUPT);
	}
	/* Up to and including the CRC is all that is needed. */
	assert_int_equal(pg_control_parse(buf, REAL15_CRC_AT + 4, &c, &err), 0);
	assert_real15(&c);
	free(buf);
}

static void test_foreign_files_are_corrupt(void **state)
{
	(void)state;
	unsigned char *buf = calloc(1, CONTROL_SIZE);
	PgControl c;
	WsError err;

	assert_int_equal(pg_control_parse(buf, CONTROL_SIZE, &c, &err), WS_CORRUPT);
	assert_string_equal(err.msg, "pg_control is corrupt");
	assert_non_null(strstr(err.detail, "floatFormat"));
	memset(buf, 'x', CONTROL_SIZE);
	assert_int_equal(pg_control_parse(buf, CONTROL_SIZE, &c, &err), WS_CORRUPT);
	free(buf);
}

/* A control file laid out as PostgreSQL 9.6 writes it on x86-64: marker at 208, CRC at 256. */
static size_t build_96_like(unsigned char *buf, uint32_t seg_size)
{
	const double marker = 1234567.0;
	uint64_t sysid = UINT64_C(6400000000000000042);
	uint32_t v;
	uint32_t crc;

	memset(buf, 0, CONTROL_SIZE);
	memcpy(buf, &sysid, 8);
	v = 960;
	memcpy(buf + 8, &v, 4);
	v = 201608131;
	memcpy(buf + 12, &v, 4);
	v = 6; /* DB_IN_PRODUCTION, and some other non-zero fields */
	memcpy(buf + 16, &v, 4);
	memset(buf + 48, 0x11, 80);
	v = 8;
	memcpy(buf + 200, &v, 4); /* maxAlign */
	memcpy(buf + 208, &marker, 8);
	v = 8192;
	memcpy(buf + 216, &v, 4);
	v = 131072;
	memcpy(buf + 220, &v, 4);
	v = 8192;
	memcpy(buf + 224, &v, 4);
	memcpy(buf + 228, &seg_size, 4);
	crc = crc32c(buf, 256);
	memcpy(buf + 256, &crc, 4);
	return CONTROL_SIZE;
}

static void test_layout_with_marker_and_crc_elsewhere_parses(void **state)
{
	(void)state;
	unsigned char *buf = malloc(CONTROL_SIZE);
	PgControl c;
	WsError err;

	build_96_like(buf, 64u * 1024 * 1024);
	if (pg_control_parse(buf, CONTROL_SIZE, &c, &err) != 0)
		fail_msg("%s: %s", err.msg, err.detail);
	assert_true(c.sysid == UINT64_C(6400000000000000042));
	assert_int_equal(c.control_version, 960);
	assert_int_equal(c.catalog_version, 201608131);
	assert_int_equal(c.seg_size, 64u * 1024 * 1024);

	/* A valid CRC over an impossible segment size is still refused. */
	build_96_like(buf, 3u * 1024 * 1024);
	assert_int_equal(pg_control_parse(buf, CONTROL_SIZE, &c, &err), WS_CORRUPT);
	assert_non_null(strstr(err.detail, "WAL segment size is 3145728"));
	free(buf);
}

static void test_read_from_data_directory(void **state)
{
	size_t len;
	unsigned char *buf = load("pg_control.15", &len);
	const char *dir = *state;
	char with_slash[4200];
	PgControl c;
	WsError err;

	write_file(dir, "global/pg_control", buf, len);
	memset(&c, 0, sizeof(c));
	if (pg_control_read(dir, &c, &err) != 0)
		fail_msg("%s", err.msg);
	assert_real15(&c);

	snprintf(with_slash, sizeof(with_slash), "%s/", dir);
	assert_int_equal(pg_control_read(with_slash, &c, &err), 0);

	/* A truncated file on disk names its path. */
	write_file(dir, "global/pg_control", buf, 200);
	assert_int_equal(pg_control_read(dir, &c, &err), WS_CORRUPT);
	char want[4300];
	snprintf(want, sizeof(want), "pg_control file \"%s/global/pg_control\" is corrupt", dir);
	assert_string_equal(err.msg, want);

	free(buf);
}

static void test_missing_control_file_asks_about_the_data_directory(void **state)
{
	const char *dir = *state;
	char want[4300];
	PgControl c;
	WsError err;

	assert_int_equal(pg_control_read(dir, &c, &err), WS_FATAL);
	snprintf(want, sizeof(want), "could not open file \"%s/global/pg_control\": %s", dir,
		 strerror(ENOENT));
	assert_string_equal(err.msg, want);
	snprintf(want, sizeof(want), "Is \"%s\" a PostgreSQL data directory?", dir);
	assert_string_equal(err.hint, want);
}

static int version_of(const char *dir, const char *content, WsError *err, int *major)
{
	write_file(dir, "PG_VERSION", content, strlen(content));
	*major = -1;
	return pg_version_read(dir, major, err);
}

static void test_pg_version_supported(void **state)
{
	const char *dir = *state;
	const struct {
		const char *text;
		int major;
	} ok[] = {
		{"9.6\n", PG_MAJOR_9_6}, {"10\n", PG_MAJOR(10)}, {"11\n", PG_MAJOR(11)},
		{"12\n", PG_MAJOR(12)},  {"13\n", PG_MAJOR(13)}, {"14\n", PG_MAJOR(14)},
		{"15\n", PG_MAJOR(15)},  {"16\n", PG_MAJOR(16)}, {"17\n", PG_MAJOR(17)},
		{"15", PG_MAJOR(15)},
	};
	WsError err;
	int major;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ws_error_clear(&err);
		if (version_of(dir, ok[i].text, &err, &major) != 0)
			fail_msg("PG_VERSION %s refused: %s", ok[i].text, err.msg);
		assert_int_equal(major, ok[i].major);
	}
}

static void test_pg_version_unsupported(void **state)
{
	const char *dir = *state;
	const struct {
		const char *text;
		const char *shown;
	} bad[] = {
		{"8.4\n", "8.4"}, {"9.5\n", "9.5"}, {"18\n", "18"},           {"9\n", "9"},
		{"1\n", "1"},     {"015\n", "015"}, {"15.2\n", "15.2"},       {"9.6.1\n", "9.6.1"},
		{"", ""},         {" 15\n", " 15"}, {"garbage\n", "garbage"}, {"1\x1b\n", "1\\x1B"},
	};
	char want[4300];
	WsError err;
	int major;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (version_of(dir, bad[i].text, &err, &major) != WS_FATAL)
			fail_msg("PG_VERSION \"%s\" accepted", bad[i].shown);
		snprintf(want, sizeof(want), "unsupported PostgreSQL version \"%s\" in \"%s/PG_VERSION\"",
			 bad[i].shown, dir);
		assert_string_equal(err.msg, want);
		assert_string_equal(err.detail, "walship supports PostgreSQL 9.6 and 10 to 17.");
	}

	/* Missing: not a data directory. */
	remove_file(dir, "PG_VERSION");
	assert_int_equal(pg_version_read(dir, &major, &err), WS_FATAL);
	assert_int_equal(err.cls, WS_FATAL);
	snprintf(want, sizeof(want), "Is \"%s\" a PostgreSQL data directory?", dir);
	assert_string_equal(err.hint, want);
}

static void test_major_version_names(void **state)
{
	(void)state;
	char buf[16];
	assert_string_equal(pg_major_str(PG_MAJOR_9_6, buf, sizeof(buf)), "9.6");
	assert_string_equal(pg_major_str(PG_MAJOR(10), buf, sizeof(buf)), "10");
	assert_string_equal(pg_major_str(PG_MAJOR(17), buf, sizeof(buf)), "17");
}

/* Majors are server_version_num floors, so they compare as numbers: 9.6 is below 10. */
static void test_majors_compare_as_numbers(void **state)
{
	(void)state;
	assert_int_equal(pg_major_of_version_num(90624), PG_MAJOR_9_6);
	assert_int_equal(pg_major_of_version_num(100023), PG_MAJOR(10));
	assert_int_equal(pg_major_of_version_num(150002), PG_MAJOR(15));
	assert_true(PG_MAJOR_9_6 < PG_MAJOR(10));
	assert_true(pg_major_supported(PG_MAJOR_9_6) && pg_major_supported(PG_MAJOR(17)));
	assert_false(pg_major_supported(90500) || pg_major_supported(PG_MAJOR(18)) ||
		     pg_major_supported(150002));
	assert_true(pg_has_recovery_conf(PG_MAJOR_9_6) && pg_has_recovery_conf(PG_MAJOR(11)));
	assert_false(pg_has_recovery_conf(PG_MAJOR(12)));
	assert_false(pg_has_recovery_target_lsn(PG_MAJOR_9_6));
	assert_true(pg_has_recovery_target_lsn(PG_MAJOR(10)));
	assert_true(pg_base_backup_tar_unterminated(PG_MAJOR(14)));
	assert_false(pg_base_backup_tar_unterminated(PG_MAJOR(15)));
	assert_true(pg_promotes_before_unreached_target(PG_MAJOR(12)));
	assert_false(pg_promotes_before_unreached_target(PG_MAJOR(13)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_pg15_control_file_parses),
		cmocka_unit_test(test_real_pg15_control_file_with_1mb_segments_parses),
		cmocka_unit_test(test_any_flipped_byte_in_the_crc_covered_part_is_detected),
		cmocka_unit_test(test_truncated_control_file_is_corrupt),
		cmocka_unit_test(test_foreign_files_are_corrupt),
		cmocka_unit_test(test_layout_with_marker_and_crc_elsewhere_parses),
		cmocka_unit_test_setup_teardown(test_read_from_data_directory, datadir_setup,
						datadir_teardown),
		cmocka_unit_test_setup_teardown(test_missing_control_file_asks_about_the_data_directory,
						datadir_setup, datadir_teardown),
		cmocka_unit_test_setup_teardown(test_pg_version_supported, datadir_setup, datadir_teardown),
		cmocka_unit_test_setup_teardown(test_pg_version_unsupported, datadir_setup, datadir_teardown),
		cmocka_unit_test(test_major_version_names),
		cmocka_unit_test(test_majors_compare_as_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
