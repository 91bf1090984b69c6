/*
 * test_prefetch_plan.c - the pure parts of walship-fetch's prefetching: which
 * segments come next along a timeline path, the names spooled files carry
 * and what they must match, the data directory's key, the byte bound, which
 * segments the prefetcher's workers start next, and the index that lets a
 * call find the spool without the repository.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal/prefetch_plan.h"
#include "pg/history.h"
#include "pg/pgmajor.h"

#define MB (1024u * 1024u)

/* Timeline 3 of a real run: 1 until 0/4000090, 2 until 0/6001648, then 3 (16 MiB segments). */
static const char tli3_history[] = "1\t0/4000090\tno recovery target specified\n"
				   "\n"
				   "2\t0/6001648\tno recovery target specified\n";

static TimelinePath *tli3_path(void)
{
	TimelinePath *p = NULL;
	WsError err;
	assert_int_equal(history_parse(tli3_history, strlen(tli3_history), 3, &p, &err), 0);
	return p;
}

static void test_plan_follows_the_switches(void **state)
{
	(void)state;
	TimelinePath *p = tli3_path();
	PrefetchSeg out[8];
	int got = -1;

	/* From segment 2 on timeline 1: 3 on 1, 4 (holds the switch) on 2, 5 on 2, 6 on 3, 7 on 3. */
	assert_int_equal(prefetch_plan(p, 16 * MB, 1, 2, 5, out, &got), 0);
	assert_int_equal(got, 5);
	const PrefetchSeg want[] = {{1, 3}, {2, 4}, {2, 5}, {3, 6}, {3, 7}};
	for (int i = 0; i < 5; i++) {
		assert_int_equal(out[i].tli, want[i].tli);
		assert_int_equal(out[i].segno, want[i].segno);
	}
	/* Fewer asked, fewer given; zero is fine. */
	assert_int_equal(prefetch_plan(p, 16 * MB, 2, 5, 1, out, &got), 0);
	assert_int_equal(got, 1);
	assert_int_equal(out[0].tli, 3);
	assert_int_equal(out[0].segno, 6);
	assert_int_equal(prefetch_plan(p, 16 * MB, 3, 9, 0, out, &got), 0);
	assert_int_equal(got, 0);
	history_free(p);
}

static void test_plan_refuses_a_segment_off_the_path(void **state)
{
	(void)state;
	TimelinePath *p = tli3_path();
	PrefetchSeg out[4];
	int got = -1;

	/* Segment 4 is read from timeline 2 (the switch segment), 6 from 3: timeline 1 reads neither. */
	assert_true(prefetch_on_path(p, 16 * MB, 1, 3));
	assert_false(prefetch_on_path(p, 16 * MB, 1, 4));
	assert_true(prefetch_on_path(p, 16 * MB, 2, 4));
	assert_false(prefetch_on_path(p, 16 * MB, 2, 6));
	assert_true(prefetch_on_path(p, 16 * MB, 3, 6));
	/* A timeline not on the path at all. */
	assert_false(prefetch_on_path(p, 16 * MB, 4, 6));
	assert_int_equal(prefetch_plan(p, 16 * MB, 1, 4, 2, out, &got), WS_USAGE);
	assert_int_equal(got, 0);
	assert_int_equal(prefetch_plan(p, 16 * MB, 3, 6, -1, out, &got), WS_USAGE);
	assert_int_equal(prefetch_plan(p, 1000, 3, 6, 1, out, &got), WS_USAGE);
	history_free(p);
}

static void test_plan_single_timeline_and_segment_size(void **state)
{
	(void)state;
	TimelinePath *p = history_single(1);
	PrefetchSeg out[3];
	int got = 0;
	/* 64 MiB segments: 64 per 4 GiB "log"; the plan crosses it as plain numbers. */
	assert_int_equal(prefetch_plan(p, 64 * MB, 1, 63, 3, out, &got), 0);
	assert_int_equal(got, 3);
	assert_int_equal(out[0].segno, 64);
	assert_int_equal(out[2].segno, 66);
	assert_int_equal(out[2].tli, 1);
	history_free(p);
}

static void test_spool_names_round_trip_and_refuse_others(void **state)
{
	(void)state;
	unsigned char sha[32];
	char name[PREFETCH_NAME_MAX];
	SpoolEntry e;
	for (int i = 0; i < 32; i++)
		sha[i] = (unsigned char)(0xA0 + i);

	assert_int_equal(
		prefetch_spool_name("000000020000000300000019", "15-1", 16 * MB, sha, name, sizeof(name)), 0);
	assert_string_equal(name, "000000020000000300000019.15-1.16777216."
				  "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
	assert_int_equal(prefetch_spool_parse(name, &e), 0);
	assert_string_equal(e.segname, "000000020000000300000019");
	assert_string_equal(e.epoch, "15-1");
	assert_int_equal(e.size, 16 * MB);
	assert_memory_equal(e.sha256, sha, 32);

	/* Temp files, the lock, the request and anything damaged are not spooled segments. */
	const char *bad[] = {
		"lock",
		"request",
		".000000020000000300000019.123.tmp",
		"000000020000000300000019",
		"000000020000000300000019.15-1.16777216",
		"000000020000000300000019.15-1.16777216.a0a1",
		"00000002000000030000001a.15-1.16777216."
		"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
		"000000020000000300000019.15/1.16777216."
		"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
		"000000020000000300000019.15-1.016777216."
		"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
		"000000020000000300000019.15-1.16777216."
		"A0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
		"000000020000000300000019.15-1.16777216."
		"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf0",
		"000000020000000300000019.15-1.99999999999999999999999."
		"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(prefetch_spool_parse(bad[i], &e), -1);

	/* Epoch ids that could not be parsed back (or would escape the directory) are refused. */
	assert_int_equal(prefetch_spool_name("000000020000000300000019", "15.1", 1, sha, name, sizeof(name)),
			 -1);
	assert_int_equal(prefetch_spool_name("000000020000000300000019", "../x", 1, sha, name, sizeof(name)),
			 -1);
	assert_int_equal(prefetch_spool_name("000000020000000300000019", "", 1, sha, name, sizeof(name)), -1);
	assert_int_equal(prefetch_spool_name("0000000200000003", "15-1", 1, sha, name, sizeof(name)), -1);
	assert_int_equal(prefetch_spool_name("000000020000000300000019", "15-1", 1, sha, name, 40), -1);
	assert_true(prefetch_epoch_id_ok("15-1"));
	assert_true(prefetch_epoch_id_ok("a_B-9"));
	assert_false(prefetch_epoch_id_ok("0123456789012345678901234567890123"));
}

static void test_dir_key_depends_on_cluster_and_path(void **state)
{
	(void)state;
	char a[64], b[64], c[64], d[64];
	prefetch_dir_key(7301234567890123456ull, "/var/lib/postgresql/15/main", a, sizeof(a));
	prefetch_dir_key(7301234567890123456ull, "/var/lib/postgresql/15/main", b, sizeof(b));
	prefetch_dir_key(7301234567890123456ull, "/var/lib/postgresql/15/other", c, sizeof(c));
	prefetch_dir_key(7301234567890123457ull, "/var/lib/postgresql/15/main", d, sizeof(d));
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	assert_int_equal(strncmp(a, "7301234567890123456-", 20), 0);
	assert_int_equal(strlen(a), 20 + 16);
	/* The same path gives the same hash part whatever the cluster (rebuild clears by it). */
	assert_string_equal(a + 20, d + 20);
}

static void test_room_is_bounded_in_bytes(void **state)
{
	(void)state;
	uint64_t max = 1024ull * MB;
	assert_int_equal(prefetch_room(max, 0, 16 * MB), 64);
	assert_int_equal(prefetch_room(max, 1000ull * MB, 16 * MB), 1);
	assert_int_equal(prefetch_room(max, 1009ull * MB, 16 * MB), 0);
	assert_int_equal(prefetch_room(max, 2000ull * MB, 16 * MB), 0);
	assert_int_equal(prefetch_room(0, 0, 16 * MB), 0);
	assert_int_equal(prefetch_room(max, 0, 0), 0);
}

/* The plan from segment 2 on timeline 1 of tli3_history, 5 ahead: 1/3, 2/4, 2/5, 3/6, 3/7. */
static void switch_plan(PrefetchSeg *plan)
{
	TimelinePath *p = tli3_path();
	int got = 0;
	assert_int_equal(prefetch_plan(p, 16 * MB, 1, 2, 5, plan, &got), 0);
	assert_int_equal(got, 5);
	history_free(p);
}

static void test_next_starts_the_oldest_missing_segments_once(void **state)
{
	(void)state;
	PrefetchSeg plan[5];
	bool spooled[5] = {false};
	int out[8];
	switch_plan(plan);
	PrefetchWindow w = {.plan = plan, .spooled = spooled, .n = 5, .room = 100, .idle = 4};

	/* Nothing spooled, four idle workers: the four oldest, in plan order. */
	assert_int_equal(prefetch_next(&w, out), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(out[i], i);
	/* More workers than segments: each segment once. */
	w.idle = 8;
	assert_int_equal(prefetch_next(&w, out), 5);
	assert_int_equal(out[4], 4);

	/* Spooled ones and those in flight are skipped; the rest still oldest first. */
	spooled[0] = true;
	spooled[3] = true;
	const PrefetchSeg busy[] = {{2, 4}};
	w.busy = busy;
	w.nbusy = 1;
	w.idle = 4;
	assert_int_equal(prefetch_next(&w, out), 2);
	assert_int_equal(out[0], 2);
	assert_int_equal(out[1], 4);
	/* One idle worker: only the oldest of those. */
	w.idle = 1;
	assert_int_equal(prefetch_next(&w, out), 1);
	assert_int_equal(out[0], 2);
	w.idle = 0;
	assert_int_equal(prefetch_next(&w, out), 0);

	/* In flight on another timeline (an earlier plan) is another segment: 4 on timeline 2 is wanted. */
	const PrefetchSeg other[] = {{1, 4}, {1, 6}};
	spooled[0] = spooled[3] = false;
	w.busy = other;
	w.nbusy = 2;
	w.idle = 8;
	assert_int_equal(prefetch_next(&w, out), 5);

	/* Everything spooled or in flight: nothing to start. */
	const PrefetchSeg all[] = {{1, 3}, {2, 4}};
	spooled[2] = spooled[3] = spooled[4] = true;
	w.busy = all;
	w.nbusy = 2;
	assert_int_equal(prefetch_next(&w, out), 0);
	w.n = 0;
	assert_int_equal(prefetch_next(&w, out), 0);
}

static void test_next_stays_within_room_and_before_not_found(void **state)
{
	(void)state;
	PrefetchSeg plan[5];
	bool spooled[5] = {false};
	int out[8];
	switch_plan(plan);
	PrefetchWindow w = {.plan = plan, .spooled = spooled, .n = 5, .room = 2, .idle = 4};

	/* Room for two more segments (those in flight already counted by the caller): two, idle or not. */
	assert_int_equal(prefetch_next(&w, out), 2);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 1);
	/* Spooled segments cost no room: they are there already. */
	spooled[0] = spooled[1] = true;
	assert_int_equal(prefetch_next(&w, out), 2);
	assert_int_equal(out[0], 2);
	assert_int_equal(out[1], 3);
	w.room = 0;
	assert_int_equal(prefetch_next(&w, out), 0);

	/* Segment 5 answered "not found" for this request: 5 and everything after it wait. */
	spooled[0] = spooled[1] = false;
	w.room = 100;
	w.blocked = true;
	w.blocked_segno = 5;
	assert_int_equal(prefetch_next(&w, out), 2);
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 1);
	/* Blocked at the first segment of the plan, or before it: nothing. */
	w.blocked_segno = 3;
	assert_int_equal(prefetch_next(&w, out), 0);
	w.blocked_segno = 1;
	assert_int_equal(prefetch_next(&w, out), 0);
	/* A block lifted (a new request) counts for nothing, whatever segment it named. */
	w.blocked = false;
	assert_int_equal(prefetch_next(&w, out), 4);
}

static void test_index_name_ties_repository_and_data_directory(void **state)
{
	(void)state;
	char a[128], b[128], c[128];
	const char *key = "7301234567890123456-0011223344556677";
	/* The first 16 hex of SHA-256 of the repo setting, a space and s3-endpoint (as push records). */
	prefetch_index_name("s3://bucket/pg http://127.0.0.1:9000", key, a, sizeof(a));
	assert_string_equal(a, "72c9eb2a9a90907a-7301234567890123456-0011223344556677");
	prefetch_index_name("s3://bucket/pg http://127.0.0.1:9001", key, b, sizeof(b));
	assert_string_equal(b, "faa3d72aeab2184b-7301234567890123456-0011223344556677");
	prefetch_index_name("/srv/walship", "1-0011223344556677", c, sizeof(c));
	assert_string_equal(c, "07f5b9ee6f6b7926-1-0011223344556677");
}

static void test_index_round_trips_and_refuses_others(void **state)
{
	(void)state;
	PrefetchIndex ix = {.uuid = "6f1c2e0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b"}, got;
	char text[256];
	snprintf(ix.epoch.id, sizeof(ix.epoch.id), "15-1");
	ix.epoch.sysid = 7301234567890123456ull;
	ix.epoch.pg_major = PG_MAJOR(15);
	ix.epoch.seg_size = 16 * MB;
	assert_int_equal(prefetch_index_format(&ix, text, sizeof(text)), 0);
	assert_string_equal(text,
			    "1 6f1c2e0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b 15-1 7301234567890123456 15 16777216\n");
	assert_int_equal(prefetch_index_parse(text, strlen(text), &got), 0);
	assert_string_equal(got.uuid, ix.uuid);
	assert_string_equal(got.epoch.id, "15-1");
	assert_true(got.epoch.sysid == 7301234567890123456ull);
	assert_int_equal(got.epoch.pg_major, PG_MAJOR(15));
	assert_int_equal(got.epoch.seg_size, 16 * MB);

	/* Anything not written exactly so is no index: the call then opens the repository. */
	const char *bad[] = {
		"",
		"1 6f1c2e0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b 15-1 7301234567890123456 15 16777216",
		"2 6f1c2e0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b 15-1 7301234567890123456 15 16777216\n",
		"1  6f1c2e0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b 15-1 7301234567890123456 15 16777216\n",
		"1 6f1c2e0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b 15-1 7301234567890123456 15 16777216\nx",
		"1 6f1c2e0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b 15-1 07301234567890123456 15 16777216\n",
		"1 ../../etc 15-1 7301234567890123456 15 16777216\n",
		"1 6f1c2e0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b 15/1 7301234567890123456 15 16777216\n",
		"1 6f1c2e0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b 15-1 7301234567890123456 15 16777215\n",
		"1 6f1c2e0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b 15-1 7301234567890123456 0 16777216\n",
		"1 6f1c2e0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b 15-1 99999999999999999999999 15 16777216\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(prefetch_index_parse(bad[i], strlen(bad[i]), &got), -1);
		assert_string_equal(got.uuid, "");
	}
	/* A NUL inside is refused too. */
	assert_int_equal(prefetch_index_parse("1 6f\0", 5, &got), -1);
	/* Unusable fields are never written. */
	snprintf(ix.uuid, sizeof(ix.uuid), "not/a/uuid");
	assert_int_equal(prefetch_index_format(&ix, text, sizeof(text)), -1);
	snprintf(ix.uuid, sizeof(ix.uuid), "6f1c2e0a");
	assert_int_equal(prefetch_index_format(&ix, text, 20), -1);
}

static void test_request_parse_takes_only_what_is_written(void **state)
{
	(void)state;
	WalName wn;
	char epoch[32];
	const char *text = "000000010000000300000019 15-1\n";
	assert_int_equal(prefetch_request_parse(text, strlen(text), &wn, epoch), 0);
	assert_string_equal(wn.name, "000000010000000300000019");
	assert_int_equal(wn.kind, WAL_SEGMENT);
	assert_string_equal(epoch, "15-1");

	const char *bad[] = {
		"",
		"000000010000000300000019 15-1",
		" 000000010000000300000019 15-1\n",
		"000000010000000300000019  15-1\n",
		"000000010000000300000019 15-1\nmore",
		"00000002.history 15-1\n",
		"000000010000000300000019.partial 15-1\n",
		"000000010000000300000019 15/1\n",
		"000000010000000300000019 15-1-and-a-very-long-epoch-id-past-31\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(prefetch_request_parse(bad[i], strlen(bad[i]), &wn, epoch), -1);
	assert_int_equal(prefetch_request_parse("000000010000000300000019\0 15-1\n", 30, &wn, epoch), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_follows_the_switches),
		cmocka_unit_test(test_plan_refuses_a_segment_off_the_path),
		cmocka_unit_test(test_plan_single_timeline_and_segment_size),
		cmocka_unit_test(test_spool_names_round_trip_and_refuse_others),
		cmocka_unit_test(test_dir_key_depends_on_cluster_and_path),
		cmocka_unit_test(test_room_is_bounded_in_bytes),
		cmocka_unit_test(test_next_starts_the_oldest_missing_segments_once),
		cmocka_unit_test(test_next_stays_within_room_and_before_not_found),
		cmocka_unit_test(test_index_name_ties_repository_and_data_directory),
		cmocka_unit_test(test_index_round_trips_and_refuses_others),
		cmocka_unit_test(test_request_parse_takes_only_what_is_written),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
