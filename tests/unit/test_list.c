/*
 * test_list.c - walship list: the recoverable windows per timeline (one
 * timeline, gaps, several backups, a promotion with its history file, a
 * backup whose WAL is gone) and the whole command over a real local
 * repository, as text and as JSON.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd/list.h"
#include "pg/lsn.h"
#include "repo/keys.h"
#include "repo/repo.h"
#include "util/mem.h"

#include "backup_testutil.h"

#define SEG16  (16u * 1024 * 1024)
#define SYSID  TEST_SYSID
#define ID_A   "20261125T190001Z"
#define ID_B   "20261126T080000Z"
#define ID_C   "20261126T090000Z"
#define HIST_2 "1\t0/5000100\tno recovery target specified\n"

static BackupMeta *backup(const char *id, uint32_t tli, uint64_t start, uint64_t stop, const char *stop_time)
{
	/* Only the stop time is shown in windows. */
	BackupMeta *m = test_backup_meta(id, tli, start, stop, stop_time);
	BackupTablespaceInfo *t = backup_meta_add_tablespace(m, true, 0, NULL);
	t->obj.size = 23592960; /* 22.5 MiB */
	t->obj.stored_size = 3250586;
	memset(t->obj.sha256, 0x11, 32);
	m->has_manifest = true;
	snprintf(m->manifest.name, sizeof(m->manifest.name), "backup_manifest");
	m->manifest.size = 0;
	m->manifest.stored_size = 0;
	memset(m->manifest.sha256, 0x22, 32);
	return m;
}

/* Segment numbers first..last, for ListTimeline.segs. */
static ListWindow *windows(BackupMeta **b, int nb, const ListTimeline *tls, int ntl, int *nw)
{
	WsError err;
	ListWindow *w = NULL;
	assert_int_equal(list_windows((const BackupMeta *const *)b, nb, tls, ntl, SEG16, &w, nw, &err), 0);
	assert_int_equal(*nw, ntl);
	return w;
}

static char *window_text(const ListWindow *w)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	list_print_window(f, w, SEG16);
	fclose(f);
	return text;
}

static void assert_window_text(const ListWindow *w, const char *want)
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
	BackupMeta *b = backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z");
	ListTimeline tl = {1, p, false, test_seg_range(segs, 1, 5, &n), n};
	int nw;
	ListWindow *w = windows(&b, 1, &tl, 1, &nw);

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

	list_windows_free(w, nw);
	backup_meta_free(b);
	history_free(p);
}

static void test_gap_in_the_middle_ends_the_window_and_is_reported(void **state)
{
	(void)state;
	uint64_t segs[8];
	size_t n = 0;
	TimelinePath *p = test_path_of(1, NULL);
	BackupMeta *b = backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z");
	test_seg_range(segs, 2, 4, &n);
	test_seg_range(segs, 7, 8, &n); /* 5 and 6 missing */
	ListTimeline tl = {1, p, false, segs, n};
	int nw;
	ListWindow *w = windows(&b, 1, &tl, 1, &nw);

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
	list_windows_free(w, nw);

	/* A backup taken after the gap makes the WAL after it reachable again, from its stop on. */
	BackupMeta *both[2] = {b, backup(ID_B, 1, 0x7000028, 0x7000100, "2026-11-26T08:00:00Z")};
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
	list_windows_free(w, nw);

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
	BackupMeta *b[2] = {backup(ID_B, 1, 0x4000028, 0x4000100, "2026-11-26T08:00:00Z"),
			    backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z")};
	ListTimeline tl = {1, p, false, test_seg_range(segs, 2, 6, &n), n};
	int nw;
	ListWindow *w = windows(b, 2, &tl, 1, &nw);

	assert_int_equal(w[0].nranges, 1);
	assert_int_equal(w[0].ranges[0].from_lsn, 0x2000138);
	assert_ptr_equal(w[0].ranges[0].from_backup, b[1]);
	assert_int_equal(w[0].ranges[0].to_lsn, 0x7000000);
	assert_int_equal(w[0].ngaps, 0);
	list_windows_free(w, nw);

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
	list_windows_free(w, nw);

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
	BackupMeta *b = backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z");
	/* Timeline 1 archived up to the segment before the switch; timeline 2 from the switch segment on. */
	ListTimeline tls[2] = {{2, p2, true, test_seg_range(s2, 5, 7, &n2), n2},
			       {1, p1, false, test_seg_range(s1, 1, 4, &n1), n1}};
	int nw;
	ListWindow *w = windows(&b, 1, tls, 2, &nw);

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
	list_windows_free(w, nw);

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
	BackupMeta *after = backup(ID_B, 1, 0x6000028, 0x6000100, "2026-11-26T08:00:00Z");
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
	list_windows_free(w, nw);

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
	BackupMeta *at = backup(ID_A, 1, 0x4000028, 0x5000100, "2026-11-25T19:00:04Z");
	BackupMeta *past = backup(ID_B, 1, 0x4000028, 0x5000101, "2026-11-26T08:00:00Z");
	ListTimeline tls[2] = {{1, p1, false, test_seg_range(s1, 1, 6, &n1), n1},
			       {2, p2, true, test_seg_range(s2, 5, 7, &n2), n2}};
	int nw;

	ListWindow *w = windows(&at, 1, tls, 2, &nw);
	assert_int_equal(w[1].nranges, 1);
	assert_int_equal(w[1].ranges[0].from_lsn, 0x5000100);
	assert_int_equal(w[1].ranges[0].to_lsn, 0x8000000);
	list_windows_free(w, nw);

	w = windows(&past, 1, tls, 2, &nw);
	assert_int_equal(w[0].nranges, 1); /* fine on its own timeline */
	assert_int_equal(w[1].nranges, 0);
	assert_int_equal(w[1].nunusable, 0);
	list_windows_free(w, nw);

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
	BackupMeta *b = backup(ID_B, 2, 0x6000028, 0x6000100, "2026-11-26T08:00:00Z");
	ListTimeline tls[2] = {{1, p1, false, test_seg_range(s1, 1, 4, &n1), n1},
			       {2, p2, true, test_seg_range(s2, 5, 8, &n2), n2}};
	int nw;
	ListWindow *w = windows(&b, 1, tls, 2, &nw);

	assert_int_equal(w[0].nranges, 0);
	assert_int_equal(w[0].nunusable, 0);
	assert_window_text(
		&w[0], "  timeline 1: nothing can be rebuilt: no backup was taken on it or on a timeline it "
		       "descends from\n");
	assert_int_equal(w[1].nranges, 1);
	assert_int_equal(w[1].ranges[0].from_lsn, 0x6000100);
	assert_int_equal(w[1].ranges[0].to_lsn, 0x9000000);
	list_windows_free(w, nw);

	/* Without its history file timeline 2 is known only from its own backups. */
	TimelinePath *single2 = test_path_of(2, NULL);
	tls[1].path = single2;
	tls[1].has_history = false;
	BackupMeta *old = backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z");
	BackupMeta *both[2] = {old, b};
	w = windows(both, 2, tls, 2, &nw);
	assert_int_equal(w[1].nranges, 1);
	assert_ptr_equal(w[1].ranges[0].from_backup, b);
	char *text = window_text(&w[1]);
	assert_non_null(
		strstr(text, "  note: timeline 2 has no history file: only backups taken on timeline 2 count "
			     "for it\n"));
	free(text);
	list_windows_free(w, nw);

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
	BackupMeta *b = backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z");
	ListTimeline tl = {1, p, false, test_seg_range(segs, 3, 5, &n), n};
	int nw;
	ListWindow *w = windows(&b, 1, &tl, 1, &nw);

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
	list_windows_free(w, nw);
	backup_meta_free(b);

	/* A backup spanning segments 2 to 4 whose segment 3 is gone. */
	b = backup(ID_A, 1, 0x2000028, 0x4000100, "2026-11-25T19:00:04Z");
	n = 0;
	test_seg_range(segs, 2, 2, &n);
	test_seg_range(segs, 4, 5, &n);
	tl.nsegs = n;
	w = windows(&b, 1, &tl, 1, &nw);
	assert_int_equal(w[0].nranges, 0);
	assert_int_equal(w[0].nunusable, 1);
	assert_int_equal(w[0].unusable[0].missing_segno, 3);
	list_windows_free(w, nw);

	backup_meta_free(b);
	history_free(p);
}

static void test_unreadable_history_and_bad_arguments(void **state)
{
	(void)state;
	uint64_t segs[4] = {5, 6};
	ListTimeline tls[2] = {{2, NULL, true, segs, 2}, {2, NULL, true, segs, 2}};
	ListWindow *w = NULL;
	int nw = -1;
	WsError err;

	assert_int_equal(list_windows(NULL, 0, tls, 1, SEG16, &w, &nw, &err), 0);
	assert_true(w[0].bad_history);
	assert_int_equal(w[0].nranges, 0);
	assert_window_text(&w[0],
			   "  timeline 2: unknown: history file \"00000002.history\" could not be read\n");
	list_windows_free(w, nw);

	assert_int_equal(list_windows(NULL, 0, tls, 2, SEG16, &w, &nw, &err), WS_USAGE);
	assert_null(w);
	assert_string_equal(err.msg, "timeline 2 is listed twice");
	assert_int_equal(list_windows(NULL, 0, tls, 1, 12345, &w, &nw, &err), WS_USAGE);
}

static void test_size_str(void **state)
{
	(void)state;
	char buf[32];
	assert_string_equal(fmt_size(0, buf, sizeof(buf)), "0 B");
	assert_string_equal(fmt_size(1023, buf, sizeof(buf)), "1023 B");
	assert_string_equal(fmt_size(23592960, buf, sizeof(buf)), "22.5 MiB");
	assert_string_equal(fmt_size(3ull << 30, buf, sizeof(buf)), "3.0 GiB");
}

/* ---- the command over a real repository ---- */

typedef struct Repo_fixture {
	char root[64];
	char out[96];
	char errpath[96];
	Config *cfg;
	Repo *repo;
} RepoFixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

typedef struct MemSrc {
	const char *buf;
	size_t len;
	size_t pos;
} MemSrc;

static int mem_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err)
{
	(void)err;
	MemSrc *m = ctx;
	size_t n = m->len - m->pos < cap ? m->len - m->pos : cap;
	memcpy(buf, m->buf + m->pos, n);
	m->pos += n;
	*got = n;
	return 0;
}

static void put_wal(RepoFixture *f, const char *name, const char *content)
{
	WsError err;
	WalName wn;
	char key[STORE_KEY_MAX];
	MemSrc src = {content, strlen(content), 0};
	assert_int_equal(walname_parse(name, &wn, &err), 0);
	assert_int_equal(repo_key_wal(repo_meta_newest(repo_meta(f->repo)), &wn, key, sizeof(key)), 0);
	assert_int_equal(repo_put_object(f->repo, key, mem_read, &src, src.len, true, NULL, &err), 0);
}

static void put_plain(RepoFixture *f, const char *key, const char *content)
{
	WsError err;
	MemSrc src = {content, strlen(content), 0};
	assert_int_equal(store_put(repo_store(f->repo), key, mem_read, &src, true, &err), 0);
}

static void put_backup(RepoFixture *f, BackupMeta *m)
{
	WsError err;
	char key[STORE_KEY_MAX];
	char *json = backup_meta_serialize(m, &err);
	assert_non_null(json);
	assert_int_equal(backup_key("15-1", m->id, BACKUP_META_NAME, key, sizeof(key)), 0);
	put_plain(f, key, json);
	free(json);
	backup_meta_free(m);
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	char *buf = xmalloc(1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Run cmd_list with stdout and stderr in files; returns its status, output in *out and *errout. */
static int run_list(RepoFixture *f, bool json, char **out, char **errout, WsError *err)
{
	fflush(stdout);
	fflush(stderr);
	int saved_out = dup(1), saved_err = dup(2);
	int fo = open(f->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int fe = open(f->errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved_out >= 0 && saved_err >= 0 && fo >= 0 && fe >= 0);
	dup2(fo, 1);
	dup2(fe, 2);
	int rc = cmd_list(f->cfg, json, err);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	close(fo);
	close(fe);
	*out = slurp(f->out);
	*errout = slurp(f->errpath);
	return rc;
}

static int repo_setup(void **state)
{
	RepoFixture *f = xcalloc(1, sizeof(*f));
	WsError err;
	strcpy(f->root, "/tmp/walship-test-list-XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	snprintf(f->out, sizeof(f->out), "%s.out", f->root);
	snprintf(f->errpath, sizeof(f->errpath), "%s.err", f->root);
	char *repo = xasprintf("%s/repo", f->root);
	f->cfg = config_new();
	int rc = config_set_option(f->cfg, "repo", repo, &err);
	if (rc == 0)
		rc = repo_create(f->cfg, SYSID, 15, SEG16, &f->repo, &err);
	free(repo);
	*state = f;
	return rc == 0 ? 0 : -1;
}

static int repo_teardown(void **state)
{
	RepoFixture *f = *state;
	repo_free(f->repo);
	config_free(f->cfg);
	nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	unlink(f->out);
	unlink(f->errpath);
	free(f);
	return 0;
}

static void test_cmd_list_empty_repository_says_nothing_can_be_rebuilt(void **state)
{
	RepoFixture *f = *state;
	WsError err;
	char *out, *errout;

	put_wal(f, "000000010000000000000001", "wal 1");
	assert_int_equal(run_list(f, false, &out, &errout, &err), 0);
	char *want =
		xasprintf("repository \"%s/repo\" (%s), epochs: 15-1\n", f->root, repo_meta(f->repo)->uuid);
	assert_true(strncmp(out, want, strlen(want)) == 0);
	assert_non_null(strstr(out, "\nbackups (epoch 15-1): none\n"));
	assert_non_null(strstr(out, "\n  timeline 1: 1 segment, 000000010000000000000001\n"));
	assert_non_null(
		strstr(out, "\nrecoverable (epoch 15-1): nothing: no complete backup in this epoch\n"));
	assert_non_null(strstr(out, "\nno complete backups: nothing can be rebuilt yet\n"));
	assert_string_equal(errout, "");
	free(want);
	free(out);
	free(errout);
}

static void test_cmd_list_text_and_json_over_a_real_repository(void **state)
{
	RepoFixture *f = *state;
	WsError err;
	char *out, *errout;
	char key[STORE_KEY_MAX];

	/* Timeline 1 up to the switch, its .partial, timeline 2 with segment 7 missing. */
	for (int s = 1; s <= 4; s++) {
		char name[32];
		wal_segment_name(1, (uint64_t)s, SEG16, name);
		put_wal(f, name, "fake wal");
	}
	put_wal(f, "000000010000000000000005.partial", "partial");
	put_wal(f, "00000002.history", HIST_2);
	put_wal(f, "000000020000000000000005", "wal");
	put_wal(f, "000000020000000000000006", "wal");
	put_wal(f, "000000020000000000000008", "wal");
	put_wal(f, "000000020000000000000009", "wal");
	put_wal(f, "000000010000000000000002.00000028.backup", "START WAL LOCATION: 0/2000028\n");

	put_backup(f, backup(ID_A, 1, 0x2000028, 0x2000138, "2026-11-25T19:00:04Z"));
	put_backup(f, backup(ID_B, 2, 0x8000028, 0x8000100, "2026-11-26T08:00:00Z"));
	/* Streamed but never finished: no manifest.json. */
	put_plain(f, "15-1/backups/" ID_C "/base.tar", "tar");
	/* A damaged manifest.json. */
	put_plain(f, "15-1/backups/20261127T000000Z/manifest.json", "{not json");

	assert_int_equal(run_list(f, false, &out, &errout, &err), WS_CORRUPT);
	char *want = xasprintf("1 problem found in repository \"%s/repo\"", f->root);
	assert_string_equal(err.msg, want);
	free(want);
	assert_non_null(strstr(errout, "error: backup \"20261127T000000Z\" of epoch \"15-1\" is not listed: "
				       "manifest.json of the backup is invalid"));
	assert_null(strstr(out, "20261127T000000Z"));

	const char *expect =
		"epoch 15-1: PostgreSQL 15, system identifier 7301234567890123456, 16 MiB WAL segments\n"
		"backups (epoch 15-1):\n"
		"  id                 start (UTC)           stop (UTC)            timeline   start LSN   "
		"stop LSN    "
		"size       stored\n"
		"  " ID_A "   2026-11-25 19:00:00   2026-11-25 19:00:04   1          0/2000028   0/2000138   "
		"22.5 MiB   3.1 MiB\n"
		"  " ID_B "   2026-11-26 08:00:00   2026-11-26 08:00:00   2          0/8000028   0/8000100   "
		"22.5 MiB   3.1 MiB\n"
		"  note: 1 incomplete backup without manifest.json (in progress, or failed and not "
		"removed): " ID_C "\n"
		"wal (epoch 15-1):\n"
		"  timeline 1: 4 segments, 000000010000000000000001 to 000000010000000000000004\n"
		"  timeline 2: 4 segments, 000000020000000000000005 to 000000020000000000000009, history "
		"file\n"
		"  also: 1 partial segment, 1 backup history file\n"
		"recoverable (epoch 15-1):\n"
		"  timeline 1: from 0/2000138 (backup " ID_A ", 2026-11-25 19:00:04) to 0/5000000 (end of "
		"000000010000000000000004)\n"
		"  timeline 2: from 0/2000138 (backup " ID_A ", 2026-11-25 19:00:04) to 0/7000000 (end of "
		"000000020000000000000006); gap: 000000020000000000000007 missing (1 segment); from "
		"0/8000100 "
		"(backup " ID_B ", 2026-11-26 08:00:00) to 0/A000000 (end of 000000020000000000000009)\n";
	const char *body = strchr(out, '\n');
	assert_non_null(body);
	assert_string_equal(body + 1, expect);
	free(out);
	free(errout);

	/* JSON: the same facts, parsed back. */
	assert_int_equal(run_list(f, true, &out, &errout, &err), WS_CORRUPT);
	json_error_t jerr;
	json_t *root = json_loads(out, 0, &jerr);
	assert_non_null(root);
	char *repo_path = xasprintf("%s/repo", f->root);
	assert_string_equal(json_string_value(json_object_get(root, "repository")), repo_path);
	free(repo_path);
	assert_int_equal(json_array_size(json_object_get(root, "problems")), 1);
	json_t *ep = json_array_get(json_object_get(root, "epochs"), 0);
	assert_string_equal(json_string_value(json_object_get(ep, "id")), "15-1");
	json_t *backups = json_object_get(ep, "backups");
	assert_int_equal(json_array_size(backups), 2);
	json_t *b0 = json_array_get(backups, 0);
	assert_string_equal(json_string_value(json_object_get(b0, "id")), ID_A);
	assert_string_equal(json_string_value(json_object_get(b0, "stop_lsn")), "0/2000138");
	assert_string_equal(json_string_value(json_object_get(b0, "start_wal")), "000000010000000000000002");
	assert_int_equal(json_integer_value(json_object_get(b0, "timeline")), 1);
	assert_int_equal(json_integer_value(json_object_get(b0, "total_size")), 23592960);
	assert_int_equal(json_array_size(json_object_get(b0, "tablespaces")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(ep, "incomplete_backups"), 0)),
			    ID_C);

	json_t *tls = json_object_get(ep, "timelines");
	assert_int_equal(json_array_size(tls), 2);
	json_t *t2 = json_array_get(tls, 1);
	assert_int_equal(json_integer_value(json_object_get(t2, "timeline")), 2);
	assert_string_equal(json_string_value(json_object_get(t2, "from_lsn")), "0/2000138");
	assert_string_equal(json_string_value(json_object_get(t2, "from_backup")), ID_A);
	assert_string_equal(json_string_value(json_object_get(t2, "from_time")), "2026-11-25T19:00:04Z");
	assert_string_equal(json_string_value(json_object_get(t2, "to_lsn")), "0/A000000");
	assert_string_equal(json_string_value(json_object_get(t2, "to_wal")), "000000020000000000000009");
	json_t *gaps = json_object_get(t2, "gaps");
	assert_int_equal(json_array_size(gaps), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(gaps, 0), "first_missing")),
			    "000000020000000000000007");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(gaps, 0), "count")), 1);
	assert_true(json_is_true(json_object_get(json_array_get(gaps, 0), "reachable_after")));
	assert_int_equal(json_array_size(json_object_get(t2, "ranges")), 2);
	json_t *t1 = json_array_get(tls, 0);
	assert_string_equal(json_string_value(json_object_get(t1, "to_wal")), "000000010000000000000004");
	json_t *wal = json_object_get(ep, "wal");
	assert_int_equal(json_integer_value(json_object_get(wal, "partial_segments")), 1);
	json_decref(root);
	free(out);
	free(errout);

	/* With the damaged manifest gone, the listing succeeds. */
	assert_int_equal(backup_key("15-1", "20261127T000000Z", BACKUP_META_NAME, key, sizeof(key)), 0);
	assert_int_equal(store_remove(repo_store(f->repo), key, &err), 0);
	assert_int_equal(run_list(f, false, &out, &errout, &err), 0);
	assert_string_equal(errout, "");
	assert_null(strstr(out, "no complete backups"));
	free(out);
	free(errout);
}

static void test_cmd_list_without_repository_fails(void **state)
{
	(void)state;
	WsError err;
	Config *cfg = config_new();
	assert_int_equal(config_set_option(cfg, "repo", "/nonexistent/walship-test-list", &err), 0);
	assert_int_equal(cmd_list(cfg, false, &err), WS_FATAL);
	config_free(cfg);
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
		cmocka_unit_test(test_size_str),
		cmocka_unit_test_setup_teardown(test_cmd_list_empty_repository_says_nothing_can_be_rebuilt,
						repo_setup, repo_teardown),
		cmocka_unit_test_setup_teardown(test_cmd_list_text_and_json_over_a_real_repository,
						repo_setup, repo_teardown),
		cmocka_unit_test(test_cmd_list_without_repository_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
