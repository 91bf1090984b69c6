/*
 * test_verify.c - walship verify's pure parts: the WAL problems found from an
 * epoch's listing (a gap after a backup, a hole inside a backup's span, one
 * hole seen from two timelines reported once, a timeline in use without its
 * history file) and what each repository key is (WAL files where fetch
 * looks, differing copies, backup files, the lock, everything else).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/verify.h"
#include "repo/meta.h"
#include "util/mem.h"

#include "backup_testutil.h"
#include "pg/pgmajor.h"

/* ---- helpers ---- */

typedef struct Found {
	int n;
	VerifyKind kind[16];
	char key[16][256];
	char msg[16][WS_ERROR_TEXT];
	char detail[16][WS_ERROR_TEXT];
} Found;

static void record(void *ctx, VerifyKind kind, const char *key, const WsError *e)
{
	Found *f = ctx;
	assert_true(f->n < 16);
	f->kind[f->n] = kind;
	snprintf(f->key[f->n], sizeof(f->key[0]), "%s", key);
	snprintf(f->msg[f->n], sizeof(f->msg[0]), "%s", e->msg);
	snprintf(f->detail[f->n], sizeof(f->detail[0]), "%s", e->detail);
	f->n++;
}

static BackupMeta *backup(const char *id, uint32_t tli, uint64_t start, uint64_t stop)
{
	return test_backup_meta(id, tli, start, stop, "2026-11-25T19:00:04Z");
}

/* catalog_windows, then verify_wal, as cmd_verify does. */
static int run_verify_wal(BackupMeta **b, int nb, const CatalogTimeline *tls, int ntl, Found *f)
{
	WsError err;
	CatalogWindow *w = NULL;
	int nw = 0;
	RepoEpoch ep;

	memset(&ep, 0, sizeof(ep));
	snprintf(ep.id, sizeof(ep.id), "15-1");
	ep.sysid = SYSID;
	ep.pg_major = PG_MAJOR(15);
	ep.seg_size = SEG16;
	memset(f, 0, sizeof(*f));
	assert_int_equal(catalog_windows((const BackupMeta *const *)b, nb, tls, ntl, SEG16, &w, &nw, &err),
			 0);
	int n = verify_wal(&ep, (const BackupMeta *const *)b, nb, tls, ntl, w, nw, record, f);
	catalog_windows_free(w, nw);
	assert_int_equal(n, f->n);
	return n;
}

/* ---- WAL continuity ---- */

static void test_contiguous_wal_is_whole(void **state)
{
	(void)state;
	uint64_t segs[8];
	size_t n = 0;
	TimelinePath *p = test_path_of(1, NULL);
	BackupMeta *b = backup(ID_A, 1, 0x2000028, 0x2000138);
	Found f;
	test_seg_range(segs, 1, 6, &n);
	CatalogTimeline tl = {1, p, false, segs, n};

	assert_int_equal(run_verify_wal(&b, 1, &tl, 1, &f), 0);
	/* Missing WAL before the backup is not needed by anything. */
	n = 0;
	test_seg_range(segs, 2, 6, &n);
	tl.nsegs = n;
	assert_int_equal(run_verify_wal(&b, 1, &tl, 1, &f), 0);
	/* No backup at all: nothing to follow. */
	assert_int_equal(run_verify_wal(NULL, 0, &tl, 1, &f), 0);

	backup_meta_free(b);
	history_free(p);
}

static void test_gap_after_the_backup_is_named(void **state)
{
	(void)state;
	uint64_t segs[8];
	size_t n = 0;
	TimelinePath *p = test_path_of(1, NULL);
	BackupMeta *b = backup(ID_A, 1, 0x2000028, 0x2000138);
	Found f;
	test_seg_range(segs, 2, 4, &n);
	test_seg_range(segs, 7, 8, &n); /* 5 and 6 missing */
	CatalogTimeline tl = {1, p, false, segs, n};

	assert_int_equal(run_verify_wal(&b, 1, &tl, 1, &f), 1);
	assert_int_equal(f.kind[0], VERIFY_GAP);
	assert_string_equal(f.key[0], "15-1/wal/0000000100000000/000000010000000000000005");
	assert_string_equal(f.msg[0],
			    "WAL files \"000000010000000000000005\" to \"000000010000000000000006\" are "
			    "missing on timeline 1 (a gap of 2 segments after backup " ID_A ")");
	assert_non_null(strstr(f.detail[0], "stops at 0/5000000 on timeline 1"));
	assert_non_null(strstr(f.detail[0], "not reachable from any backup"));

	/* One segment, and a later backup that resumes after the gap. */
	n = 0;
	test_seg_range(segs, 2, 4, &n);
	test_seg_range(segs, 6, 8, &n);
	tl.nsegs = n;
	BackupMeta *both[2] = {b, backup(ID_B, 1, 0x7000028, 0x7000100)};
	assert_int_equal(run_verify_wal(both, 2, &tl, 1, &f), 1);
	assert_int_equal(f.kind[0], VERIFY_GAP);
	assert_string_equal(f.msg[0],
			    "WAL file \"000000010000000000000005\" is missing on timeline 1 (a gap after "
			    "backup " ID_A ")");
	assert_non_null(strstr(f.detail[0], "reachable only from a backup taken after it"));

	backup_meta_free(both[1]);
	backup_meta_free(b);
	history_free(p);
}

static void test_hole_in_a_backups_own_span_names_the_backup(void **state)
{
	(void)state;
	uint64_t segs[8];
	size_t n = 0;
	TimelinePath *p = test_path_of(1, NULL);
	/* The backup spans segments 2 to 4; 3 is gone. */
	BackupMeta *b = backup(ID_A, 1, 0x2000028, 0x4000100);
	Found f;
	test_seg_range(segs, 1, 2, &n);
	test_seg_range(segs, 4, 6, &n);
	CatalogTimeline tl = {1, p, false, segs, n};

	assert_int_equal(run_verify_wal(&b, 1, &tl, 1, &f), 1);
	assert_int_equal(f.kind[0], VERIFY_MISSING);
	assert_string_equal(f.key[0], "15-1/wal/0000000100000000/000000010000000000000003");
	assert_string_equal(
		f.msg[0],
		"WAL file \"000000010000000000000003\" is missing on timeline 1 (needed by backup " ID_A ")");
	assert_non_null(strstr(f.detail[0], "from 000000010000000000000002 to 000000010000000000000004"));

	backup_meta_free(b);
	history_free(p);
}

static void test_hole_before_a_fork_is_reported_once(void **state)
{
	(void)state;
	uint64_t s1[8], s2[8];
	size_t n1 = 0, n2 = 0;
	TimelinePath *p1 = test_path_of(1, NULL), *p2 = test_path_of(2, HIST_2);
	BackupMeta *b = backup(ID_A, 1, 0x2000028, 0x2000138);
	Found f;
	/* Timeline 1 lacks segment 3; both timeline 1's and 2's windows read it. */
	test_seg_range(s1, 1, 2, &n1);
	test_seg_range(s1, 4, 6, &n1);
	test_seg_range(s2, 5, 7, &n2);
	CatalogTimeline tls[2] = {{1, p1, false, s1, n1}, {2, p2, true, s2, n2}};

	assert_int_equal(run_verify_wal(&b, 1, tls, 2, &f), 1);
	assert_int_equal(f.kind[0], VERIFY_GAP);
	assert_string_equal(f.key[0], "15-1/wal/0000000100000000/000000010000000000000003");

	/* Timeline 2's own switch segment missing: a gap on timeline 2 only. */
	n1 = n2 = 0;
	test_seg_range(s1, 1, 6, &n1);
	test_seg_range(s2, 6, 7, &n2);
	tls[0].nsegs = n1;
	tls[1].nsegs = n2;
	assert_int_equal(run_verify_wal(&b, 1, tls, 2, &f), 1);
	assert_int_equal(f.kind[0], VERIFY_GAP);
	assert_string_equal(f.key[0], "15-1/wal/0000000200000000/000000020000000000000005");
	assert_non_null(strstr(f.msg[0], "is missing on timeline 2"));

	backup_meta_free(b);
	history_free(p1);
	history_free(p2);
}

static void test_timeline_in_use_without_history_file(void **state)
{
	(void)state;
	uint64_t s1[8], s2[8];
	size_t n1 = 0, n2 = 0;
	TimelinePath *p1 = test_path_of(1, NULL), *p2 = history_single(2);
	BackupMeta *b = backup(ID_A, 1, 0x2000028, 0x2000138);
	Found f;
	test_seg_range(s1, 1, 4, &n1);
	test_seg_range(s2, 5, 7, &n2);
	CatalogTimeline tls[2] = {{1, p1, false, s1, n1}, {2, p2, false, s2, n2}};

	assert_int_equal(run_verify_wal(&b, 1, tls, 2, &f), 1);
	assert_int_equal(f.kind[0], VERIFY_MISSING);
	assert_string_equal(f.key[0], "15-1/wal/00000002.history");
	assert_string_equal(f.msg[0],
			    "history file \"00000002.history\" is missing: timeline 2 is in use (3 WAL "
			    "segments)");

	/* With the history file there is nothing to say. */
	history_free(p2);
	p2 = test_path_of(2, HIST_2);
	tls[1].path = p2;
	tls[1].has_history = true;
	assert_int_equal(run_verify_wal(&b, 1, tls, 2, &f), 0);

	/* Without segments but with a backup on it: still in use. */
	history_free(p2);
	p2 = history_single(2);
	tls[1].path = p2;
	tls[1].has_history = false;
	tls[1].nsegs = 0;
	BackupMeta *both[2] = {b, backup(ID_B, 2, 0x5000200, 0x5000300)};
	assert_int_equal(run_verify_wal(both, 2, tls, 2, &f), 2); /* and its own WAL is missing */
	assert_int_equal(f.kind[1], VERIFY_MISSING);
	assert_string_equal(f.msg[1],
			    "history file \"00000002.history\" is missing: timeline 2 is in use (backup " ID_B
			    ")");
	/* Neither: not in use (a timeline only seen in a later history file). */
	assert_int_equal(run_verify_wal(&b, 1, tls, 2, &f), 0);

	backup_meta_free(both[1]);
	backup_meta_free(b);
	history_free(p1);
	history_free(p2);
}

/* ---- keys ---- */

static void test_key_kinds(void **state)
{
	(void)state;
	RepoMeta *meta = repo_meta_new(SYSID, PG_MAJOR(15), SEG16);
	VerifyKey k;

	assert_string_equal(meta->epochs[0].id, "15-1");
	assert_int_equal(verify_key_kind(meta, "walship.json", &k), VERIFY_KEY_REPO);
	assert_int_equal(verify_key_kind(meta, "walship.lock", &k), VERIFY_KEY_REPO);
	assert_int_equal(verify_key_kind(meta, "leases/20261125T190004Z-3fa2c1d9.json", &k), VERIFY_KEY_REPO);

	assert_int_equal(verify_key_kind(meta, "15-1/wal/00000002.history", &k), VERIFY_KEY_WAL);
	assert_int_equal(k.wal.kind, WAL_HISTORY);
	assert_ptr_equal(k.epoch, &meta->epochs[0]);
	assert_int_equal(verify_key_kind(meta, "15-1/wal/0000000100000000/000000010000000000000003", &k),
			 VERIFY_KEY_WAL);
	assert_int_equal(k.wal.kind, WAL_SEGMENT);
	assert_int_equal(
		verify_key_kind(meta, "15-1/wal/0000000100000000/000000010000000000000003.partial", &k),
		VERIFY_KEY_WAL);
	assert_int_equal(k.wal.kind, WAL_PARTIAL);
	assert_int_equal(verify_key_kind(meta,
					 "15-1/wal/0000000100000000/000000010000000000000003.00000028.backup",
					 &k),
			 VERIFY_KEY_WAL);
	assert_int_equal(k.wal.kind, WAL_BACKUP);

	/* Differing copies: only of .partial and .backup files, named after 16 lowercase hex digits. */
	assert_int_equal(
		verify_key_kind(meta,
				"15-1/wal/0000000100000000/000000010000000000000003.partial@0123456789abcdef",
				&k),
		VERIFY_KEY_VARIANT);
	assert_string_equal(k.variant, "0123456789abcdef");
	assert_int_equal(k.wal.kind, WAL_PARTIAL);
	assert_int_equal(
		verify_key_kind(meta, "15-1/wal/0000000100000000/000000010000000000000003@0123456789abcdef",
				&k),
		VERIFY_KEY_FOREIGN);
	assert_int_equal(
		verify_key_kind(meta,
				"15-1/wal/0000000100000000/000000010000000000000003.partial@0123456789ABCDEF",
				&k),
		VERIFY_KEY_FOREIGN);
	assert_int_equal(
		verify_key_kind(meta, "15-1/wal/0000000100000000/000000010000000000000003.partial@0123", &k),
		VERIFY_KEY_FOREIGN);

	/* Where fetch would not look, or not a WAL name. */
	assert_int_equal(verify_key_kind(meta, "15-1/wal/0000000100000001/000000010000000000000003", &k),
			 VERIFY_KEY_FOREIGN);
	assert_int_equal(verify_key_kind(meta, "15-1/wal/000000010000000000000003", &k), VERIFY_KEY_FOREIGN);
	assert_int_equal(verify_key_kind(meta, "15-1/wal/0000000100000000/00000002.history", &k),
			 VERIFY_KEY_FOREIGN);
	assert_int_equal(verify_key_kind(meta, "15-1/wal/0000000100000000/000000010000000000000100", &k),
			 VERIFY_KEY_FOREIGN); /* seg 0x100 does not exist with 16 MiB segments */
	assert_int_equal(verify_key_kind(meta, "15-1/wal/notes.txt", &k), VERIFY_KEY_FOREIGN);
	assert_ptr_equal(k.epoch, &meta->epochs[0]);
	assert_int_equal(verify_key_kind(meta, "15-1/wal/0000000100000000/x/000000010000000000000003", &k),
			 VERIFY_KEY_FOREIGN);

	/* Backup files. */
	assert_int_equal(verify_key_kind(meta, "15-1/backups/" ID_A "/base.tar", &k), VERIFY_KEY_BACKUP);
	assert_string_equal(k.backup_id, ID_A);
	assert_string_equal(k.name, "base.tar");
	assert_int_equal(verify_key_kind(meta, "15-1/backups/" ID_A "-2/manifest.json", &k),
			 VERIFY_KEY_BACKUP);
	assert_string_equal(k.backup_id, ID_A "-2");
	assert_int_equal(verify_key_kind(meta, "15-1/backups/latest/base.tar", &k), VERIFY_KEY_FOREIGN);
	assert_int_equal(verify_key_kind(meta, "15-1/backups/" ID_A "/sub/base.tar", &k), VERIFY_KEY_FOREIGN);
	assert_int_equal(verify_key_kind(meta, "15-1/backups/base.tar", &k), VERIFY_KEY_FOREIGN);

	/* Outside any epoch of walship.json. */
	assert_int_equal(verify_key_kind(meta, "14-1/wal/00000002.history", &k), VERIFY_KEY_FOREIGN);
	assert_null(k.epoch);
	assert_int_equal(verify_key_kind(meta, "15-12/wal/00000002.history", &k), VERIFY_KEY_FOREIGN);
	assert_int_equal(verify_key_kind(meta, "README", &k), VERIFY_KEY_FOREIGN);
	assert_int_equal(verify_key_kind(meta, "15-1/other", &k), VERIFY_KEY_FOREIGN);

	repo_meta_free(meta);
}

static void test_kind_names(void **state)
{
	(void)state;
	assert_string_equal(verify_kind_name(VERIFY_MISSING), "missing");
	assert_string_equal(verify_kind_name(VERIFY_CORRUPT), "corrupt");
	assert_string_equal(verify_kind_name(VERIFY_MISMATCH), "mismatch");
	assert_string_equal(verify_kind_name(VERIFY_GAP), "gap");
	assert_string_equal(verify_kind_name(VERIFY_ORPHAN), "orphan");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contiguous_wal_is_whole),
		cmocka_unit_test(test_gap_after_the_backup_is_named),
		cmocka_unit_test(test_hole_in_a_backups_own_span_names_the_backup),
		cmocka_unit_test(test_hole_before_a_fork_is_reported_once),
		cmocka_unit_test(test_timeline_in_use_without_history_file),
		cmocka_unit_test(test_key_kinds),
		cmocka_unit_test(test_kind_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
