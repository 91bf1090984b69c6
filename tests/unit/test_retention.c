/*
 * test_retention.c - walship prune's rules on plain data: which backups are
 * kept (newest N, the keep-days window and the newest backup before it), and
 * which WAL each timeline keeps (own timeline from the start segment,
 * descendants from their fork, unknown ancestry kept whole), across a parent
 * timeline that goes on after a promotion.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pg/history.h"
#include "pg/lsn.h"
#include "repo/retention.h"
#include "util/mem.h"

#define SEG16 (16u * 1024 * 1024)
#define DAY   86400
/* 2026-11-25T12:00:00Z */
#define NOW INT64_C(1795608000)

static uint64_t seg_lsn(uint64_t segno, uint32_t off)
{
	return segno_start_lsn(segno, SEG16) + off;
}

static BackupMeta *backup_at(const char *id, uint32_t tli, uint64_t start, uint64_t stop, int64_t stop_time)
{
	BackupMeta *m = backup_meta_new();
	struct tm tm;
	time_t t = (time_t)stop_time;
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->timeline = tli;
	m->seg_size = SEG16;
	m->start_lsn = start;
	m->stop_lsn = stop;
	gmtime_r(&t, &tm);
	strftime(m->stop_time, sizeof(m->stop_time), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return m;
}

static void free_all(BackupMeta **b, int n)
{
	for (int i = 0; i < n; i++)
		backup_meta_free(b[i]);
}

static void test_parse_time(void **state)
{
	(void)state;
	assert_int_equal(retention_parse_time("2026-11-25T12:00:00Z"), NOW);
	assert_int_equal(retention_parse_time("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(retention_parse_time("2026-11-25 12:00:00"), -1);
	assert_int_equal(retention_parse_time("2026-11-25T12:00:00Zx"), -1);
	assert_int_equal(retention_parse_time(""), -1);
}

static void test_select_keeps_the_n_newest(void **state)
{
	(void)state;
	BackupMeta *b[5];
	bool keep[5];
	WsError err;
	/* Given out of order: the rule is by end time, not by position. */
	b[0] = backup_at("20261120T000000Z", 1, 0, 1, NOW - 5 * DAY);
	b[1] = backup_at("20261124T000000Z", 1, 0, 1, NOW - 1 * DAY);
	b[2] = backup_at("20261121T000000Z", 1, 0, 1, NOW - 4 * DAY);
	b[3] = backup_at("20261123T000000Z", 1, 0, 1, NOW - 2 * DAY);
	b[4] = backup_at("20261122T000000Z", 1, 0, 1, NOW - 3 * DAY);
	assert_int_equal(retention_select((const BackupMeta *const *)b, 5, 2, -1, NOW, keep, &err), 0);
	assert_false(keep[0]);
	assert_true(keep[1]);
	assert_false(keep[2]);
	assert_true(keep[3]);
	assert_false(keep[4]);

	/* More to keep than there are: all stay. */
	assert_int_equal(retention_select((const BackupMeta *const *)b, 5, 9, -1, NOW, keep, &err), 0);
	for (int i = 0; i < 5; i++)
		assert_true(keep[i]);
	free_all(b, 5);
}

static void test_select_keeps_the_whole_day_window(void **state)
{
	(void)state;
	BackupMeta *b[5];
	bool keep[5];
	WsError err;
	b[0] = backup_at("20261115T000000Z", 1, 0, 1, NOW - 10 * DAY);
	b[1] = backup_at("20261117T000000Z", 1, 0, 1, NOW - 8 * DAY);
	b[2] = backup_at("20261120T000000Z", 1, 0, 1, NOW - 5 * DAY);
	b[3] = backup_at("20261122T000000Z", 1, 0, 1, NOW - 3 * DAY);
	b[4] = backup_at("20261124T000000Z", 1, 0, 1, NOW - 1 * DAY);
	/* 4 days: the two inside, and the one of 5 days ago so that 4 days ago can be reached. */
	assert_int_equal(retention_select((const BackupMeta *const *)b, 5, 1, 4, NOW, keep, &err), 0);
	assert_false(keep[0]);
	assert_false(keep[1]);
	assert_true(keep[2]);
	assert_true(keep[3]);
	assert_true(keep[4]);

	/* N beyond the window wins. */
	assert_int_equal(retention_select((const BackupMeta *const *)b, 5, 4, 4, NOW, keep, &err), 0);
	assert_false(keep[0]);
	assert_true(keep[1]);

	/* A window older than every backup: nothing before it, only what is inside. */
	assert_int_equal(retention_select((const BackupMeta *const *)b, 5, 1, 30, NOW, keep, &err), 0);
	for (int i = 0; i < 5; i++)
		assert_true(keep[i]);

	/* A window with no backup inside: the newest before it, which is also the newest. */
	assert_int_equal(retention_select((const BackupMeta *const *)b, 5, 1, 0, NOW, keep, &err), 0);
	assert_true(keep[4]);
	assert_false(keep[3]);
	free_all(b, 5);
}

static void test_select_refusals(void **state)
{
	(void)state;
	BackupMeta *b[1];
	bool keep[1];
	WsError err;
	b[0] = backup_at("20261115T000000Z", 1, 0, 1, NOW);
	assert_int_equal(retention_select((const BackupMeta *const *)b, 1, 0, -1, NOW, keep, &err), WS_USAGE);
	snprintf(b[0]->stop_time, sizeof(b[0]->stop_time), "yesterday");
	assert_int_equal(retention_select((const BackupMeta *const *)b, 1, 1, -1, NOW, keep, &err),
			 WS_CORRUPT);
	assert_non_null(strstr(err.msg, "20261115T000000Z"));
	free_all(b, 1);
}

/*
 * Timeline 2 forked from 1 at segment 5 (0/5000100); the old primary goes on
 * writing timeline 1; timeline 3 forked from 2 at segment 7.
 */
typedef struct Tls {
	TimelinePath *p1, *p2, *p3;
	RetentionTimeline t[3];
} Tls;

static void tls_init(Tls *x)
{
	static const char h2[] = "1\t0/5000100\tpromoted\n";
	static const char h3[] = "1\t0/5000100\tpromoted\n2\t0/7000200\tpromoted again\n";
	WsError err;
	x->p1 = history_single(1);
	assert_int_equal(history_parse(h2, strlen(h2), 2, &x->p2, &err), 0);
	assert_int_equal(history_parse(h3, strlen(h3), 3, &x->p3, &err), 0);
	memset(x->t, 0, sizeof(x->t));
	x->t[0] = (RetentionTimeline){1, x->p1, false, 0};
	x->t[1] = (RetentionTimeline){2, x->p2, true, 0};
	x->t[2] = (RetentionTimeline){3, x->p3, true, 0};
}

static void tls_free(Tls *x)
{
	history_free(x->p1);
	history_free(x->p2);
	history_free(x->p3);
}

static void run_wal(Tls *x, BackupMeta **kept, int n)
{
	retention_wal(x->t, 3, (const BackupMeta *const *)kept, n, SEG16);
}

static void test_wal_backup_before_the_fork_keeps_descendants_from_their_fork(void **state)
{
	(void)state;
	Tls x;
	tls_init(&x);
	BackupMeta *b = backup_at("20261120T000000Z", 1, seg_lsn(3, 0x28), seg_lsn(3, 0x100), NOW);
	run_wal(&x, &b, 1);
	assert_int_equal(x.t[0].keep_from, 3);
	assert_int_equal(x.t[1].keep_from, 5);
	assert_int_equal(x.t[2].keep_from, 7);
	assert_false(retention_wal_kept(x.t, 3, 1, 2));
	assert_true(retention_wal_kept(x.t, 3, 1, 3));
	assert_true(retention_wal_kept(x.t, 3, 1, 40)); /* the parent still being written */
	assert_false(retention_wal_kept(x.t, 3, 2, 4));
	assert_true(retention_wal_kept(x.t, 3, 2, 5));
	/* A timeline that appeared after the scan is not ours to judge. */
	assert_true(retention_wal_kept(x.t, 3, 9, 0));
	backup_meta_free(b);
	tls_free(&x);
}

static void test_wal_parent_timeline_after_the_fork(void **state)
{
	(void)state;
	Tls x;
	tls_init(&x);
	/* Taken on the old primary after the promotion: timeline 2 and 3 are not reachable from it. */
	BackupMeta *b = backup_at("20261121T000000Z", 1, seg_lsn(8, 0x28), seg_lsn(8, 0x100), NOW);
	run_wal(&x, &b, 1);
	assert_int_equal(x.t[0].keep_from, 8);
	assert_int_equal(x.t[1].keep_from, RETENTION_KEEP_NONE);
	assert_int_equal(x.t[2].keep_from, RETENTION_KEEP_NONE);

	/* With a backup on timeline 2 as well: each keeps its own. */
	BackupMeta *b2 = backup_at("20261122T000000Z", 2, seg_lsn(6, 0x28), seg_lsn(6, 0x100), NOW);
	BackupMeta *both[2] = {b, b2};
	run_wal(&x, both, 2);
	assert_int_equal(x.t[0].keep_from, 8);
	assert_int_equal(x.t[1].keep_from, 6);
	assert_int_equal(x.t[2].keep_from, 7);
	backup_meta_free(b);
	backup_meta_free(b2);
	tls_free(&x);
}

static void test_wal_backup_across_the_fork_does_not_follow_the_child(void **state)
{
	(void)state;
	Tls x;
	tls_init(&x);
	/* Ends after 0/5000100: recovery along timeline 2 would leave timeline 1 before it is consistent. */
	BackupMeta *b = backup_at("20261120T000000Z", 1, seg_lsn(5, 0x28), seg_lsn(5, 0x200), NOW);
	run_wal(&x, &b, 1);
	assert_int_equal(x.t[0].keep_from, 5);
	assert_int_equal(x.t[1].keep_from, RETENTION_KEEP_NONE);
	backup_meta_free(b);
	tls_free(&x);
}

static void test_wal_unknown_ancestry_is_kept_whole(void **state)
{
	(void)state;
	Tls x;
	tls_init(&x);
	x.t[1].path = NULL; /* 00000002.history unreadable */
	x.t[2].has_history = false;
	x.t[2].path = x.p1; /* as catalog_scan_epoch gives it: history_single, but no file */
	BackupMeta *b = backup_at("20261121T000000Z", 1, seg_lsn(8, 0x28), seg_lsn(8, 0x100), NOW);
	run_wal(&x, &b, 1);
	assert_int_equal(x.t[0].keep_from, 8);
	assert_int_equal(x.t[1].keep_from, 0);
	assert_int_equal(x.t[2].keep_from, 0);

	/* No kept backup: nothing but the unknown. */
	run_wal(&x, NULL, 0);
	assert_int_equal(x.t[0].keep_from, RETENTION_KEEP_NONE);
	assert_int_equal(x.t[1].keep_from, 0);
	backup_meta_free(b);
	tls_free(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_select_keeps_the_n_newest),
		cmocka_unit_test(test_select_keeps_the_whole_day_window),
		cmocka_unit_test(test_select_refusals),
		cmocka_unit_test(test_wal_backup_before_the_fork_keeps_descendants_from_their_fork),
		cmocka_unit_test(test_wal_parent_timeline_after_the_fork),
		cmocka_unit_test(test_wal_backup_across_the_fork_does_not_follow_the_child),
		cmocka_unit_test(test_wal_unknown_ancestry_is_kept_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
