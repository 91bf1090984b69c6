/*
 * test_catalog.c - repo/catalog's windows, the points in WAL each timeline
 * can be rebuilt to (one timeline, gaps, several backups, a promotion with
 * its history file, a backup whose WAL is gone), checked also as walship
 * list prints them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/list.h"
#include "repo/catalog.h"
#include "util/mem.h"

#include "backup_testutil.h"

/* Segment numbers first..last, for CatalogTimeline.segs. */
static CatalogWindow *windows(BackupMeta **b, int nb, const CatalogTimeline *tls, int ntl, int *nw)
{
	WsError err;
	CatalogWindow *w = NULL;
	assert_int_equal(catalog_windows((const BackupMeta *const *)b, nb, tls, ntl, SEG16, &w, nw, &err), 0);
	assert_int_equal(*nw, ntl);
	return w;
}

static char *window_text(const CatalogWindow *w)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	list_print_window(f, w, SEG16);
	fclose(f);
	return text;
}

static void assert_window_text(const CatalogWindow *w, const char *want)
{
	char *text = window_text(w);
	assert_string_equal(text, want);
	free(text);
}

/* ---- windows ---- */

static void test_one_timeline_contiguous_window_from_stop_to_last_segment(void **state)
{
	(void)state;
	uint64_t segs[8];
	size_t n = 0;
	TimelinePath *p = test_path_of(1, NULL);
	BackupMeta *b = test_listed_backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z");
	CatalogTimeline tl = {1, p, false, test_seg_range(segs, 1, 5, &n), n};
	int nw;
	CatalogWindow *w = windows(&b, 1, &tl, 1, &nw);

	assert_int_equal(w[0].tli, 1);
	assert_int_equal(w[0].nranges, 1);
	assert_int_equal(w[0].ranges[0].from_lsn, 0x2000138);
	assert_ptr_equal(w[0].ranges[0].from_backup, b);
	assert_int_equal(w[0].ranges[0].to_lsn, 0x6000000);
	assert_int_equal(w[0].ranges[0].to_tli, 1);
	assert_int_equal(w[0].ranges[0].to_segno, 5);
	assert_int_equal(w[0].ngaps, 0);
	assert_int_equal(w[0].nunusable, 0);
	assert_window_text(&w[0],
			   "  timeline 1: from 0/2000138 (backup " ID_A ", 2026-11-25 19:00:04) to 0/6000000 "
			   "(end of 000000010000000000000005)\n");

	catalog_windows_free(w, nw);
	backup_meta_free(b);
	history_free(p);
}

static void test_gap_in_the_middle_ends_the_window_and_is_reported(void **state)
{
	(void)state;
	uint64_t segs[8];
	size_t n = 0;
	TimelinePath *p = test_path_of(1, NULL);
	BackupMeta *b = test_listed_backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z");
	test_seg_range(segs, 2, 4, &n);
	test_seg_range(segs, 7, 8, &n); /* 5 and 6 missing */
	CatalogTimeline tl = {1, p, false, segs, n};
	int nw;
	CatalogWindow *w = windows(&b, 1, &tl, 1, &nw);

	assert_int_equal(w[0].nranges, 1);
	assert_int_equal(w[0].ranges[0].to_lsn, 0x5000000);
	assert_int_equal(w[0].ranges[0].to_segno, 4);
	assert_int_equal(w[0].ngaps, 1);
	assert_int_equal(w[0].gaps[0].tli, 1);
	assert_int_equal(w[0].gaps[0].first_segno, 5);
	assert_int_equal(w[0].gaps[0].count, 2);
	assert_false(w[0].gaps[0].reachable_after);
	assert_window_text(&w[0],
			   "  timeline 1: from 0/2000138 (backup " ID_A ", 2026-11-25 19:00:04) to 0/5000000 "
			   "(end of 000000010000000000000004); gap: 000000010000000000000005 missing "
			   "(2 segments), WAL after it is not reachable\n");
	catalog_windows_free(w, nw);

	/* A backup taken after the gap makes the WAL after it reachable again, from its stop on. */
	BackupMeta *both[2] = {b, test_listed_backup(ID_B, 1, 0x7000028, 0x7000100, "2026-11-26T08:00:00Z")};
	w = windows(both, 2, &tl, 1, &nw);
	assert_int_equal(w[0].nranges, 2);
	assert_int_equal(w[0].ranges[0].to_lsn, 0x5000000);
	assert_int_equal(w[0].ranges[1].from_lsn, 0x7000100);
	assert_ptr_equal(w[0].ranges[1].from_backup, both[1]);
	assert_int_equal(w[0].ranges[1].to_lsn, 0x9000000);
	assert_int_equal(w[0].ngaps, 1);
	assert_true(w[0].gaps[0].reachable_after);
	assert_window_text(&w[0],
			   "  timeline 1: from 0/2000138 (backup " ID_A ", 2026-11-25 19:00:04) to 0/5000000 "
			   "(end of 000000010000000000000004); gap: 000000010000000000000005 missing "
			   "(2 segments); from 0/7000100 (backup " ID_B ", 2026-11-26 08:00:00) to 0/9000000 "
			   "(end of 000000010000000000000008)\n");
	catalog_windows_free(w, nw);

	backup_meta_free(both[1]);
	backup_meta_free(b);
	history_free(p);
}

static void test_two_backups_on_one_timeline_window_starts_at_the_older(void **state)
{
	(void)state;
	uint64_t segs[8];
	size_t n = 0;
	TimelinePath *p = test_path_of(1, NULL);
	/* Newer first: the order of the array must not matter. */
	BackupMeta *b[2] = {test_listed_backup(ID_B, 1, 0x4000028, 0x4000100, "2026-11-26T08:00:00Z"),
			    test_listed_backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z")};
	CatalogTimeline tl = {1, p, false, test_seg_range(segs, 2, 6, &n), n};
	int nw;
	CatalogWindow *w = windows(b, 2, &tl, 1, &nw);

	assert_int_equal(w[0].nranges, 1);
	assert_int_equal(w[0].ranges[0].from_lsn, 0x2000138);
	assert_ptr_equal(w[0].ranges[0].from_backup, b[1]);
	assert_int_equal(w[0].ranges[0].to_lsn, 0x7000000);
	assert_int_equal(w[0].ngaps, 0);
	catalog_windows_free(w, nw);

	/* Without the older backup's start segment only the newer one counts. */
	n = 0;
	test_seg_range(segs, 3, 6, &n);
	tl.nsegs = n;
	w = windows(b, 2, &tl, 1, &nw);
	assert_int_equal(w[0].nranges, 1);
	assert_ptr_equal(w[0].ranges[0].from_backup, b[0]);
	assert_int_equal(w[0].ranges[0].from_lsn, 0x4000100);
	assert_int_equal(w[0].nunusable, 1);
	assert_ptr_equal(w[0].unusable[0].backup, b[1]);
	assert_int_equal(w[0].unusable[0].missing_segno, 2);
	catalog_windows_free(w, nw);

	backup_meta_free(b[0]);
	backup_meta_free(b[1]);
	history_free(p);
}

static void test_promotion_window_on_timeline_2_starts_from_a_timeline_1_backup(void **state)
{
	(void)state;
	uint64_t s1[8], s2[8];
	size_t n1 = 0, n2 = 0;
	TimelinePath *p1 = test_path_of(1, NULL), *p2 = test_path_of(2, HIST_2);
	BackupMeta *b = test_listed_backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z");
	/* Timeline 1 archived up to the segment before the switch; timeline 2 from the switch segment on. */
	CatalogTimeline tls[2] = {{2, p2, true, test_seg_range(s2, 5, 7, &n2), n2},
				  {1, p1, false, test_seg_range(s1, 1, 4, &n1), n1}};
	int nw;
	CatalogWindow *w = windows(&b, 1, tls, 2, &nw);

	assert_int_equal(w[0].tli, 1);
	assert_int_equal(w[0].nranges, 1);
	assert_int_equal(w[0].ranges[0].to_lsn, 0x5000000);
	assert_int_equal(w[1].tli, 2);
	assert_true(w[1].has_history);
	assert_int_equal(w[1].nranges, 1);
	assert_ptr_equal(w[1].ranges[0].from_backup, b);
	assert_int_equal(w[1].ranges[0].from_lsn, 0x2000138);
	assert_int_equal(w[1].ranges[0].to_lsn, 0x8000000);
	assert_int_equal(w[1].ranges[0].to_tli, 2);
	assert_int_equal(w[1].ranges[0].to_segno, 7);
	assert_int_equal(w[1].ngaps, 0);
	assert_window_text(&w[1],
			   "  timeline 2: from 0/2000138 (backup " ID_A ", 2026-11-25 19:00:04) to 0/8000000 "
			   "(end of 000000020000000000000007)\n");
	catalog_windows_free(w, nw);

	/*
	 * The old primary kept writing timeline 1 (segments 5 and 6) and timeline
	 * 2's switch segment is missing: recovery along 2 reads segment 5 from
	 * timeline 2, so timeline 1's copy does not fill the hole.
	 */
	n1 = n2 = 0;
	test_seg_range(s1, 1, 6, &n1);
	test_seg_range(s2, 6, 7, &n2);
	tls[0].nsegs = n2;
	tls[1].nsegs = n1;
	/* A backup of the old primary after the fork is on timeline 1 only. */
	BackupMeta *after = test_listed_backup(ID_B, 1, 0x6000028, 0x6000100, "2026-11-26T08:00:00Z");
	BackupMeta *both[2] = {b, after};
	w = windows(both, 2, tls, 2, &nw);
	assert_int_equal(w[0].nranges, 1);
	assert_int_equal(w[0].ranges[0].to_lsn, 0x7000000);
	assert_int_equal(w[1].nranges, 1);
	assert_int_equal(w[1].ranges[0].to_lsn, 0x5000000);
	assert_int_equal(w[1].ranges[0].to_tli, 1);
	assert_int_equal(w[1].nunusable, 0);
	assert_int_equal(w[1].ngaps, 1);
	assert_int_equal(w[1].gaps[0].tli, 2);
	assert_int_equal(w[1].gaps[0].first_segno, 5);
	assert_int_equal(w[1].gaps[0].count, 1);
	assert_window_text(&w[1],
			   "  timeline 2: from 0/2000138 (backup " ID_A ", 2026-11-25 19:00:04) to 0/5000000 "
			   "(end of 000000010000000000000004); gap: 000000020000000000000005 missing "
			   "(1 segment), WAL after it is not reachable\n");
	catalog_windows_free(w, nw);

	backup_meta_free(after);
	backup_meta_free(b);
	history_free(p1);
	history_free(p2);
}

static void test_backup_stopping_at_the_switch_point_counts_one_past_it_does_not(void **state)
{
	(void)state;
	uint64_t s1[8], s2[8];
	size_t n1 = 0, n2 = 0;
	TimelinePath *p1 = test_path_of(1, NULL), *p2 = test_path_of(2, HIST_2);
	BackupMeta *at = test_listed_backup(ID_A, 1, 0x4000028, 0x5000100, "2026-11-25T19:00:04Z");
	BackupMeta *past = test_listed_backup(ID_B, 1, 0x4000028, 0x5000101, "2026-11-26T08:00:00Z");
	CatalogTimeline tls[2] = {{1, p1, false, test_seg_range(s1, 1, 6, &n1), n1},
				  {2, p2, true, test_seg_range(s2, 5, 7, &n2), n2}};
	int nw;

	CatalogWindow *w = windows(&at, 1, tls, 2, &nw);
	assert_int_equal(w[1].nranges, 1);
	assert_int_equal(w[1].ranges[0].from_lsn, 0x5000100);
	assert_int_equal(w[1].ranges[0].to_lsn, 0x8000000);
	catalog_windows_free(w, nw);

	w = windows(&past, 1, tls, 2, &nw);
	assert_int_equal(w[0].nranges, 1); /* fine on its own timeline */
	assert_int_equal(w[1].nranges, 0);
	assert_int_equal(w[1].nunusable, 0);
	catalog_windows_free(w, nw);

	backup_meta_free(at);
	backup_meta_free(past);
	history_free(p1);
	history_free(p2);
}

static void test_backup_on_timeline_2_only_reaches_timeline_2(void **state)
{
	(void)state;
	uint64_t s1[8], s2[8];
	size_t n1 = 0, n2 = 0;
	TimelinePath *p1 = test_path_of(1, NULL), *p2 = test_path_of(2, HIST_2);
	BackupMeta *b = test_listed_backup(ID_B, 2, 0x6000028, 0x6000100, "2026-11-26T08:00:00Z");
	CatalogTimeline tls[2] = {{1, p1, false, test_seg_range(s1, 1, 4, &n1), n1},
				  {2, p2, true, test_seg_range(s2, 5, 8, &n2), n2}};
	int nw;
	CatalogWindow *w = windows(&b, 1, tls, 2, &nw);

	assert_int_equal(w[0].nranges, 0);
	assert_int_equal(w[0].nunusable, 0);
	assert_window_text(
		&w[0], "  timeline 1: nothing can be rebuilt: no backup was taken on it or on a timeline it "
		       "descends from\n");
	assert_int_equal(w[1].nranges, 1);
	assert_int_equal(w[1].ranges[0].from_lsn, 0x6000100);
	assert_int_equal(w[1].ranges[0].to_lsn, 0x9000000);
	catalog_windows_free(w, nw);

	/* Without its history file timeline 2 is known only from its own backups. */
	TimelinePath *single2 = test_path_of(2, NULL);
	tls[1].path = single2;
	tls[1].has_history = false;
	BackupMeta *old = test_listed_backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z");
	BackupMeta *both[2] = {old, b};
	w = windows(both, 2, tls, 2, &nw);
	assert_int_equal(w[1].nranges, 1);
	assert_ptr_equal(w[1].ranges[0].from_backup, b);
	char *text = window_text(&w[1]);
	assert_non_null(
		strstr(text, "  note: timeline 2 has no history file: only backups taken on timeline 2 count "
			     "for it\n"));
	free(text);
	catalog_windows_free(w, nw);

	backup_meta_free(old);
	backup_meta_free(b);
	history_free(single2);
	history_free(p1);
	history_free(p2);
}

static void test_backup_whose_wal_is_missing_cannot_be_rebuilt(void **state)
{
	(void)state;
	uint64_t segs[8];
	size_t n = 0;
	TimelinePath *p = test_path_of(1, NULL);
	BackupMeta *b = test_listed_backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z");
	CatalogTimeline tl = {1, p, false, test_seg_range(segs, 3, 5, &n), n};
	int nw;
	CatalogWindow *w = windows(&b, 1, &tl, 1, &nw);

	assert_int_equal(w[0].nranges, 0);
	assert_int_equal(w[0].ngaps, 0);
	assert_int_equal(w[0].nunusable, 1);
	assert_ptr_equal(w[0].unusable[0].backup, b);
	assert_int_equal(w[0].unusable[0].missing_tli, 1);
	assert_int_equal(w[0].unusable[0].missing_segno, 2);
	assert_window_text(
		&w[0], "  timeline 1: nothing can be rebuilt: no backup on its history has all the WAL it "
		       "needs\n  backup " ID_A " cannot be rebuilt: WAL segment 000000010000000000000002 is "
		       "missing\n");
	catalog_windows_free(w, nw);
	backup_meta_free(b);

	/* A backup spanning segments 2 to 4 whose segment 3 is gone. */
	b = test_listed_backup(ID_A, 1, 0x2000028, 0x4000100, "2026-11-25T19:00:04Z");
	n = 0;
	test_seg_range(segs, 2, 2, &n);
	test_seg_range(segs, 4, 5, &n);
	tl.nsegs = n;
	w = windows(&b, 1, &tl, 1, &nw);
	assert_int_equal(w[0].nranges, 0);
	assert_int_equal(w[0].nunusable, 1);
	assert_int_equal(w[0].unusable[0].missing_segno, 3);
	catalog_windows_free(w, nw);

	backup_meta_free(b);
	history_free(p);
}

static void test_unreadable_history_and_bad_arguments(void **state)
{
	(void)state;
	uint64_t segs[4] = {5, 6};
	CatalogTimeline tls[2] = {{2, NULL, true, segs, 2}, {2, NULL, true, segs, 2}};
	CatalogWindow *w = NULL;
	int nw = -1;
	WsError err;

	assert_int_equal(catalog_windows(NULL, 0, tls, 1, SEG16, &w, &nw, &err), 0);
	assert_true(w[0].bad_history);
	assert_int_equal(w[0].nranges, 0);
	assert_window_text(&w[0],
			   "  timeline 2: unknown: history file \"00000002.history\" could not be read\n");
	catalog_windows_free(w, nw);

	assert_int_equal(catalog_windows(NULL, 0, tls, 2, SEG16, &w, &nw, &err), WS_USAGE);
	assert_null(w);
	assert_string_equal(err.msg, "timeline 2 is listed twice");
	assert_int_equal(catalog_windows(NULL, 0, tls, 1, 12345, &w, &nw, &err), WS_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_timeline_contiguous_window_from_stop_to_last_segment),
		cmocka_unit_test(test_gap_in_the_middle_ends_the_window_and_is_reported),
		cmocka_unit_test(test_two_backups_on_one_timeline_window_starts_at_the_older),
		cmocka_unit_test(test_promotion_window_on_timeline_2_starts_from_a_timeline_1_backup),
		cmocka_unit_test(test_backup_stopping_at_the_switch_point_counts_one_past_it_does_not),
		cmocka_unit_test(test_backup_on_timeline_2_only_reaches_timeline_2),
		cmocka_unit_test(test_backup_whose_wal_is_missing_cannot_be_rebuilt),
		cmocka_unit_test(test_unreadable_history_and_bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
