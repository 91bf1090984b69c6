/*
 * test_recovery.c - deciding whether restore_command serves targeted
 * recovery, a standby or a frontend tool, from scratch data directories.
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
#include <unistd.h>

#include "pg/recovery.h"
#include "pg/pgmajor.h"

static const char *const scratch_files[] = {"recovery.conf", "standby.signal", "recovery.signal"};

static void put_file(const char *dir, const char *name, const char *content)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void drop_file(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (unlink(path) != 0 && errno != ENOENT)
		fail_msg("cannot remove %s", path);
}

static void clear_dir(const char *dir)
{
	for (size_t i = 0; i < sizeof(scratch_files) / sizeof(scratch_files[0]); i++)
		drop_file(dir, scratch_files[i]);
}

static int dir_setup(void **state)
{
	char tmpl[] = "/tmp/walship-test-recovery-XXXXXX";
	char *dir = mkdtemp(tmpl);
	if (dir == NULL)
		return -1;
	*state = strdup(dir);
	return 0;
}

static int dir_teardown(void **state)
{
	char *dir = *state;
	clear_dir(dir);
	rmdir(dir);
	free(dir);
	return 0;
}

#define XLOG "pg_wal/RECOVERYXLOG"

static FetchMode with_conf(const char *dir, int major, const char *conf)
{
	clear_dir(dir);
	put_file(dir, "recovery.conf", conf);
	return fetch_mode_detect(FETCH_MODE_AUTO, dir, major, XLOG);
}

static void test_pg11_standby_mode_on_in_every_spelling(void **state)
{
	const char *dir = *state;
	const char *const confs[] = {
		"standby_mode = on\n",
		"standby_mode = On\n",
		"standby_mode = ON\n",
		"standby_mode = 'on'\n",
		"standby_mode = true\n",
		"standby_mode = TRUE\n",
		"standby_mode = yes\n",
		"standby_mode = 1\n",
		"standby_mode = t\n",
		"standby_mode = tr\n",
		"standby_mode = y\n",
		"standby_mode = 'True'\n",
		"standby_mode=on\n",
		"standby_mode on\n",
		"standby_mode\t=\t'on'\t\n",
		"   standby_mode   =   on   # the standby\n",
		"standby_mode = on# no space before the comment\n",
		"standby_mode = 'on' # quoted, then a comment\n",
		"standby_mode = on", /* no final newline */
		"standby_mode = on\r\n",
		"# a standby\n\nrestore_command = 'walship-fetch %f \"%p\" # not a comment'\n"
		"primary_conninfo = 'host=db1 application_name=''s1'''\n"
		"standby_mode = 'on'\n"
		"recovery_target_timeline = 'latest'\n",
	};
	for (size_t i = 0; i < sizeof(confs) / sizeof(confs[0]); i++) {
		FetchMode m = with_conf(dir, PG_MAJOR(11), confs[i]);
		if (m != FETCH_MODE_STANDBY)
			fail_msg("recovery.conf \"%s\" read as %s", confs[i], fetch_mode_str(m));
	}
}

static void test_pg11_standby_mode_off_or_invalid_is_recovery(void **state)
{
	const char *dir = *state;
	const char *const confs[] = {
		"standby_mode = off\n",
		"standby_mode = OFF\n",
		"standby_mode = of\n",
		"standby_mode = false\n",
		"standby_mode = f\n",
		"standby_mode = no\n",
		"standby_mode = n\n",
		"standby_mode = 0\n",
		"standby_mode = 'off'\n",
		"standby_mode = o\n",    /* ambiguous: PostgreSQL refuses it */
		"standby_mode = onn\n",  /* not a boolean */
		"standby_mode = ''\n",   /* empty */
		"standby_mode = 'on\n",  /* unterminated quote */
		"#standby_mode = on\n",  /* commented out */
		"# standby_mode = on\n", /* commented out */
		"Standby_Mode = on\n",   /* PostgreSQL 11 matches names exactly */
		"standby_modes = on\n",  /* another name */
		"xstandby_mode = on\n",  /* another name */
		"restore_command = 'standby_mode = on'\n",
		"",
	};
	for (size_t i = 0; i < sizeof(confs) / sizeof(confs[0]); i++) {
		FetchMode m = with_conf(dir, PG_MAJOR(11), confs[i]);
		if (m != FETCH_MODE_RECOVERY)
			fail_msg("recovery.conf \"%s\" read as %s", confs[i], fetch_mode_str(m));
	}
}

static void test_pg11_last_standby_mode_wins(void **state)
{
	const char *dir = *state;
	assert_int_equal(with_conf(dir, PG_MAJOR(11), "standby_mode = on\nstandby_mode = off\n"),
			 FETCH_MODE_RECOVERY);
	assert_int_equal(with_conf(dir, PG_MAJOR(11), "standby_mode = off\nstandby_mode = 'on'\n"),
			 FETCH_MODE_STANDBY);
	assert_int_equal(with_conf(dir, PG_MAJOR(11), "standby_mode = off\n# standby_mode = on\n"),
			 FETCH_MODE_RECOVERY);
	assert_int_equal(with_conf(dir, PG_MAJOR(11), "standby_mode = on\nstandby_mode = bogus\n"),
			 FETCH_MODE_RECOVERY);
}

static void test_pg11_without_recovery_conf_is_recovery(void **state)
{
	const char *dir = *state;
	clear_dir(dir);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(11), XLOG), FETCH_MODE_RECOVERY);
	/* Signal files mean nothing before 12. */
	put_file(dir, "standby.signal", "");
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(11), XLOG), FETCH_MODE_RECOVERY);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(10), XLOG), FETCH_MODE_RECOVERY);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR_9_6, XLOG), FETCH_MODE_RECOVERY);
}

static void test_pg96_and_10_read_recovery_conf(void **state)
{
	const char *dir = *state;
	assert_int_equal(with_conf(dir, PG_MAJOR_9_6, "standby_mode = 'on'\n"), FETCH_MODE_STANDBY);
	assert_int_equal(with_conf(dir, PG_MAJOR_9_6, "standby_mode = 'off'\n"), FETCH_MODE_RECOVERY);
	assert_int_equal(with_conf(dir, PG_MAJOR(10), "standby_mode = yes\n"), FETCH_MODE_STANDBY);
}

static void test_pg12_and_later_use_signal_files(void **state)
{
	const char *dir = *state;
	const int majors[] = {PG_MAJOR(12), PG_MAJOR(13), PG_MAJOR(14),
			      PG_MAJOR(15), PG_MAJOR(16), PG_MAJOR(17)};

	for (size_t i = 0; i < sizeof(majors) / sizeof(majors[0]); i++) {
		int v = majors[i];
		clear_dir(dir);
		assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, v, XLOG), FETCH_MODE_RECOVERY);
		put_file(dir, "recovery.signal", "");
		assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, v, XLOG), FETCH_MODE_RECOVERY);
		put_file(dir, "standby.signal", "");
		/* Both: PostgreSQL runs a standby. */
		assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, v, XLOG), FETCH_MODE_STANDBY);
		drop_file(dir, "recovery.signal");
		assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, v, XLOG), FETCH_MODE_STANDBY);

		/* recovery.conf is not read from 12 on. */
		clear_dir(dir);
		put_file(dir, "recovery.conf", "standby_mode = on\n");
		assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, v, XLOG), FETCH_MODE_RECOVERY);
	}
}

static void test_history_target_is_not_frontend(void **state)
{
	const char *dir = *state;
	clear_dir(dir);
	put_file(dir, "standby.signal", "");
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(15), "pg_wal/RECOVERYHISTORY"),
			 FETCH_MODE_STANDBY);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(15), "RECOVERYHISTORY"),
			 FETCH_MODE_STANDBY);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(15), "/data/pg_wal/RECOVERYXLOG"),
			 FETCH_MODE_STANDBY);
	drop_file(dir, "standby.signal");
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(15), "pg_wal/RECOVERYHISTORY"),
			 FETCH_MODE_RECOVERY);
}

static void test_pg_rewind_target_is_frontend_whatever_was_asked(void **state)
{
	const char *dir = *state;
	const char *target = "/some/dir/pg_wal/000000010000000000000003";
	clear_dir(dir);
	put_file(dir, "standby.signal", "");

	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(15), target), FETCH_MODE_FRONTEND);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_RECOVERY, dir, PG_MAJOR(15), target),
			 FETCH_MODE_FRONTEND);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_STANDBY, dir, PG_MAJOR(15), target),
			 FETCH_MODE_FRONTEND);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(11), target), FETCH_MODE_FRONTEND);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(15), "00000002.history"),
			 FETCH_MODE_FRONTEND);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(15), "pg_wal/RECOVERYXLOG.tmp"),
			 FETCH_MODE_FRONTEND);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(15), "pg_wal/recoveryxlog"),
			 FETCH_MODE_FRONTEND);
}

static void test_explicit_mode_is_kept(void **state)
{
	const char *dir = *state;
	clear_dir(dir);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_STANDBY, dir, PG_MAJOR(15), XLOG), FETCH_MODE_STANDBY);
	put_file(dir, "standby.signal", "");
	assert_int_equal(fetch_mode_detect(FETCH_MODE_RECOVERY, dir, PG_MAJOR(15), XLOG),
			 FETCH_MODE_RECOVERY);
	put_file(dir, "recovery.conf", "standby_mode = on\n");
	assert_int_equal(fetch_mode_detect(FETCH_MODE_RECOVERY, dir, PG_MAJOR(11), XLOG),
			 FETCH_MODE_RECOVERY);
}

static void test_missing_data_directory_is_recovery(void **state)
{
	(void)state;
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, "/nonexistent/walship/dir", PG_MAJOR(15), XLOG),
			 FETCH_MODE_RECOVERY);
	assert_int_equal(fetch_mode_detect(FETCH_MODE_AUTO, "/nonexistent/walship/dir", PG_MAJOR(11), XLOG),
			 FETCH_MODE_RECOVERY);
}

static void test_fetch_mode_names(void **state)
{
	(void)state;
	assert_int_equal(fetch_mode_parse("auto"), FETCH_MODE_AUTO);
	assert_int_equal(fetch_mode_parse("recovery"), FETCH_MODE_RECOVERY);
	assert_int_equal(fetch_mode_parse("standby"), FETCH_MODE_STANDBY);
	assert_int_equal(fetch_mode_parse("frontend"), -1);
	assert_int_equal(fetch_mode_parse(""), -1);
	assert_int_equal(fetch_mode_parse("standbyx"), -1);
	assert_int_equal(fetch_mode_parse(NULL), -1);
	assert_string_equal(fetch_mode_str(FETCH_MODE_AUTO), "auto");
	assert_string_equal(fetch_mode_str(FETCH_MODE_RECOVERY), "recovery");
	assert_string_equal(fetch_mode_str(FETCH_MODE_STANDBY), "standby");
	assert_string_equal(fetch_mode_str(FETCH_MODE_FRONTEND), "frontend");
	for (int m = FETCH_MODE_AUTO; m <= FETCH_MODE_STANDBY; m++)
		assert_int_equal(fetch_mode_parse(fetch_mode_str((FetchMode)m)), m);
}

static void test_boolean_spellings_match_postgresql(void **state)
{
	(void)state;
	const char *const yes[] = {"true", "TRUE", "True", "t",  "T",  "tr", "tru", "yes",
				   "YES",  "y",    "ye",   "on", "ON", "oN", "1"};
	const char *const no[] = {"false", "FALSE", "f",   "fa",  "fal", "fals", "no",
				  "NO",    "n",     "off", "OFF", "of",  "Of",   "0"};
	const char *const neither[] = {"",  "o",  "O",  "onn", "offf", "truex", "yess",   "nope",
				       "2", "01", "10", " on", "on ",  "-1",    "enable", "tru e"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (pg_parse_bool(yes[i]) != 1)
			fail_msg("\"%s\" should be true", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (pg_parse_bool(no[i]) != 0)
			fail_msg("\"%s\" should be false", no[i]);
	for (size_t i = 0; i < sizeof(neither) / sizeof(neither[0]); i++)
		if (pg_parse_bool(neither[i]) != -1)
			fail_msg("\"%s\" should be invalid", neither[i]);
	assert_int_equal(pg_parse_bool(NULL), -1);
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		DIR_TEST(test_pg11_standby_mode_on_in_every_spelling),
		DIR_TEST(test_pg11_standby_mode_off_or_invalid_is_recovery),
		DIR_TEST(test_pg11_last_standby_mode_wins),
		DIR_TEST(test_pg11_without_recovery_conf_is_recovery),
		DIR_TEST(test_pg96_and_10_read_recovery_conf),
		DIR_TEST(test_pg12_and_later_use_signal_files),
		DIR_TEST(test_history_target_is_not_frontend),
		DIR_TEST(test_pg_rewind_target_is_frontend_whatever_was_asked),
		DIR_TEST(test_explicit_mode_is_kept),
		cmocka_unit_test(test_missing_data_directory_is_recovery),
		cmocka_unit_test(test_fetch_mode_names),
		cmocka_unit_test(test_boolean_spellings_match_postgresql),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
