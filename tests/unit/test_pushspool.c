/*
 * test_pushspool.c - the records of a parallel walship-push: where they go,
 * what they hold, that a damaged, misplaced or foreign record is no record,
 * that the spool is refused inside the data directory, and expiry.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "wal/pushspool.h"
#include "util/fsutil.h"
#include "util/mem.h"

#define UUID  "0b6f6a4e-3f52-4c1e-9a57-0d9d1f0c2a11"
#define UUID2 "7c1e0e55-2b1d-4d6e-8f3a-5e2b9c4d1a22"
#define SEG   "000000010000000000000042"
#define REPO  "s3://bucket/prefix https://s3.example"

typedef struct Fixture {
	char root[64];
	char spool[128];
	char status[128];
} Fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	Fixture *f = xcalloc(1, sizeof(*f));
	strcpy(f->root, "/tmp/walship-test-pushspool-XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	snprintf(f->spool, sizeof(f->spool), "%s/spool", f->root);
	snprintf(f->status, sizeof(f->status), "%s/data/pg_wal/archive_status", f->root);
	char *d = xasprintf("%s/data", f->root);
	char *p = xasprintf("%s/data/pg_wal", f->root);
	mkdir(d, 0700);
	mkdir(p, 0700);
	mkdir(f->status, 0700);
	free(d);
	free(p);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	Fixture *f = *state;
	nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static PushRecord sample(const char *name)
{
	PushRecord r;
	memset(&r, 0, sizeof(r));
	strcpy(r.uuid, UUID);
	strcpy(r.repo, REPO);
	strcpy(r.epoch, "15-1");
	r.sysid = 7301234567890123456ull;
	snprintf(r.name, sizeof(r.name), "%s", name);
	r.size = 16777216;
	for (int i = 0; i < 32; i++)
		r.sha256[i] = (unsigned char)(i * 7 + 1);
	snprintf(r.key, sizeof(r.key), "15-1/wal/0000000100000000/%s", name);
	r.stored_size = 1302211;
	r.stored = 1700000000;
	return r;
}

static void touch(const char *dir, const char *name, time_t mtime)
{
	char *p = xasprintf("%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	if (mtime != 0) {
		struct timeval tv[2] = {{mtime, 0}, {mtime, 0}};
		assert_int_equal(utimes(p, tv), 0);
	}
	free(p);
}

static bool exists(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	bool e = access(p, F_OK) == 0;
	free(p);
	return e;
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void test_write_read_round_trip_in_private_dir(void **state)
{
	Fixture *f = *state;
	WsError err;
	char *dir = NULL;
	struct stat st;

	assert_int_equal(push_spool_dir(f->spool, UUID, &dir, &err), 0);
	char *want = xasprintf("%s/%s/push", f->spool, UUID);
	assert_string_equal(dir, want);
	assert_int_equal(stat(f->spool, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	PushRecord in = sample(SEG), out;
	assert_false(push_spool_has(dir, SEG));
	assert_int_equal(push_spool_write(dir, &in, &err), 0);
	assert_true(push_spool_has(dir, SEG));
	assert_int_equal(count_entries(dir), 1); /* no temp file left */
	assert_int_equal(push_spool_read(dir, SEG, &out, &err), 0);
	assert_string_equal(out.uuid, UUID);
	assert_string_equal(out.repo, REPO);
	assert_string_equal(out.epoch, "15-1");
	assert_string_equal(out.name, SEG);
	assert_true(out.sysid == in.sysid);
	assert_true(out.size == in.size);
	assert_memory_equal(out.sha256, in.sha256, 32);
	assert_string_equal(out.key, in.key);
	assert_true(out.stored_size == in.stored_size);
	assert_true(out.stored == in.stored);

	/* The file is plain JSON a person can read. */
	char *p = xasprintf("%s/%s", dir, SEG);
	FILE *fp = fopen(p, "r");
	char buf[2048];
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"sha256\": \"01080f161d"));
	assert_non_null(strstr(buf, "\"system_identifier\": \"7301234567890123456\""));
	assert_non_null(strstr(buf, "\"stored\": \"2023-11-14T22:13:20Z\""));

	push_spool_remove(dir, SEG);
	assert_false(push_spool_has(dir, SEG));
	assert_int_equal(push_spool_read(dir, SEG, &out, &err), WS_NOT_FOUND);
	push_spool_remove(dir, SEG); /* twice is fine */
	free(p);
	free(want);
	free(dir);
}

static void write_raw(const char *dir, const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	free(p);
}

static void test_damaged_or_misplaced_record_is_no_record(void **state)
{
	Fixture *f = *state;
	WsError err;
	char *dir = NULL, *dir2 = NULL, *found = NULL;
	PushRecord out;

	assert_int_equal(push_spool_dir(f->spool, UUID, &dir, &err), 0);
	assert_int_equal(push_spool_dir(f->spool, UUID2, &dir2, &err), 0);

	write_raw(dir, SEG, "{\"format\": 1, \"uuid\": \"" UUID "\", \"name\": \"" SEG "\"");
	assert_int_equal(push_spool_read(dir, SEG, &out, &err), WS_CORRUPT);
	assert_int_equal(push_spool_find(f->spool, SEG, REPO, 7301234567890123456ull, &out, &found),
			 WS_NOT_FOUND);

	/* Truncated SHA-256 */
	PushRecord r = sample(SEG);
	assert_int_equal(push_spool_write(dir, &r, &err), 0);
	char *p = xasprintf("%s/%s", dir, SEG);
	char *text = NULL;
	FILE *fp = fopen(p, "r");
	text = xcalloc(1, 4096);
	assert_true(fread(text, 1, 4095, fp) > 0);
	fclose(fp);
	char *h = strstr(text, "\"sha256\": \"") + 11;
	h[10] = '"';
	h[11] = ',';
	memset(h + 12, ' ', 52);
	write_raw(dir, SEG, text);
	assert_int_equal(push_spool_read(dir, SEG, &out, &err), WS_CORRUPT);

	/* A newer format is not read; nor an older one (format 1 had no key and stored size to check). */
	assert_int_equal(push_spool_write(dir, &r, &err), 0);
	fp = fopen(p, "r");
	memset(text, 0, 4096);
	assert_true(fread(text, 1, 4095, fp) > 0);
	fclose(fp);
	char *fm = strstr(text, "\"format\": 2");
	fm[10] = '9';
	write_raw(dir, SEG, text);
	assert_int_not_equal(push_spool_read(dir, SEG, &out, &err), 0);
	fm[10] = '1';
	write_raw(dir, SEG, text);
	assert_int_equal(push_spool_read(dir, SEG, &out, &err), WS_CORRUPT);
	assert_int_equal(push_spool_find(f->spool, SEG, REPO, r.sysid, &out, &found), WS_NOT_FOUND);

	/* A record copied under another repository's directory does not count there. */
	assert_int_equal(push_spool_write(dir, &r, &err), 0);
	fp = fopen(p, "r");
	memset(text, 0, 4096);
	assert_true(fread(text, 1, 4095, fp) > 0);
	fclose(fp);
	unlink(p);
	write_raw(dir2, SEG, text);
	assert_int_equal(push_spool_read(dir2, SEG, &out, &err), WS_CORRUPT);
	assert_int_equal(push_spool_find(f->spool, SEG, REPO, r.sysid, &out, &found), WS_NOT_FOUND);

	/* Under another name it does not count either. */
	write_raw(dir, "000000010000000000000043", text);
	assert_int_equal(push_spool_read(dir, "000000010000000000000043", &out, &err), WS_CORRUPT);

	/* Names that are not WAL names never reach the file system. */
	assert_int_equal(push_spool_read(dir, "../push/" SEG, &out, &err), WS_NOT_FOUND);

	free(text);
	free(p);
	free(dir);
	free(dir2);
}

static void test_find_needs_same_repository_and_cluster(void **state)
{
	Fixture *f = *state;
	WsError err;
	char *dir = NULL, *dir2 = NULL, *found = NULL;
	PushRecord out;
	PushRecord r = sample(SEG);

	assert_int_equal(push_spool_find(f->spool, SEG, REPO, r.sysid, &out, &found),
			 WS_NOT_FOUND); /* no spool */
	assert_int_equal(push_spool_dir(f->spool, UUID, &dir, &err), 0);
	assert_int_equal(push_spool_dir(f->spool, UUID2, &dir2, &err), 0);
	assert_int_equal(push_spool_write(dir, &r, &err), 0);

	assert_int_equal(push_spool_find(f->spool, SEG, REPO, r.sysid, &out, &found), 0);
	assert_string_equal(found, dir);
	assert_memory_equal(out.sha256, r.sha256, 32);
	free(found);
	found = NULL;
	assert_int_equal(push_spool_find(f->spool, SEG, "s3://bucket/prefix", r.sysid, &out, &found),
			 WS_NOT_FOUND);
	assert_null(found);
	assert_int_equal(push_spool_find(f->spool, SEG, REPO, r.sysid + 1, &out, &found), WS_NOT_FOUND);
	assert_int_equal(push_spool_find(f->spool, "000000010000000000000043", REPO, r.sysid, &out, &found),
			 WS_NOT_FOUND);

	/* Another repository's record with the same repo setting (re-created there) is found in its own dir.
	 */
	PushRecord r2 = sample(SEG);
	strcpy(r2.uuid, UUID2);
	r2.sha256[0] ^= 1;
	assert_int_equal(push_spool_write(dir2, &r2, &err), 0);
	assert_int_equal(push_spool_find(f->spool, SEG, REPO, r.sysid, &out, &found), 0);
	assert_true(strcmp(out.uuid, UUID) == 0 || strcmp(out.uuid, UUID2) == 0);
	free(found);
	free(dir);
	free(dir2);
}

/* A record is read only as it was written: a "stored" time the writer could not have produced is no record.
 */
static void test_record_stored_time_round_trips_exactly(void **state)
{
	Fixture *f = *state;
	WsError err;
	char *dir = NULL;
	PushRecord r = sample(SEG), out;
	static const char *const bad[] = {"2025-1-2T3:4:5Z", "2025-02-31T00:00:00Z", "yesterday",
					  "2025-01-02T03:04:05Z trailing", ""};

	assert_int_equal(push_spool_dir(f->spool, UUID, &dir, &err), 0);
	assert_int_equal(push_spool_write(dir, &r, &err), 0);
	assert_int_equal(push_spool_read(dir, SEG, &out, &err), 0);
	assert_true(out.stored == r.stored);

	char *p = xasprintf("%s/%s", dir, SEG);
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(fs_read_small(p, 4096, &text, &len, &err), 0);
	free(p);
	char *at = strstr(text, "\"stored\": \"") + 11;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *changed = xasprintf("%.*s%s\"\n}\n", (int)(at - text), text, bad[i]);
		write_raw(dir, SEG, changed);
		ws_error_clear(&err);
		if (push_spool_read(dir, SEG, &out, &err) != WS_CORRUPT)
			fail_msg("\"stored\": \"%s\" was accepted", bad[i]);
		assert_non_null(strstr(err.msg, "\"stored\""));
		free(changed);
	}
	free(text);
	free(dir);
}

static void test_spool_refused_inside_data_directory(void **state)
{
	Fixture *f = *state;
	WsError err;
	char *data = xasprintf("%s/data", f->root);
	char *inside = xasprintf("%s/data/pg_wal/spool", f->root);
	char *deep = xasprintf("%s/data/not/yet/there", f->root);
	char *beside = xasprintf("%s/data-spool", f->root);
	char *link = xasprintf("%s/link", f->root);
	char *via_link = xasprintf("%s/link/spool", f->root);

	assert_int_equal(push_spool_check(f->spool, data, &err), 0);
	assert_int_equal(push_spool_check(beside, data, &err), 0); /* a common prefix is not inside */
	assert_int_equal(push_spool_check(data, data, &err), WS_USAGE);
	assert_non_null(strstr(err.msg, "inside the data directory"));
	assert_true(err.hint[0] != '\0');
	assert_int_equal(push_spool_check(inside, data, &err), WS_USAGE);
	assert_int_equal(push_spool_check(deep, data, &err), WS_USAGE);
	assert_int_equal(symlink(data, link), 0);
	assert_int_equal(push_spool_check(via_link, data, &err), WS_USAGE);
	assert_int_equal(push_spool_check(f->spool, link, &err), 0);
	assert_int_equal(push_spool_check("relative/spool", data, &err), WS_USAGE);
	assert_non_null(strstr(err.msg, "not an absolute path"));

	free(data);
	free(inside);
	free(deep);
	free(beside);
	free(link);
	free(via_link);
}

static void test_expire_by_age_ready_and_temp(void **state)
{
	Fixture *f = *state;
	WsError err;
	char *dir = NULL;
	time_t now = time(NULL);
	const char *a = "000000010000000000000001", *b = "000000010000000000000002",
		   *c = "000000010000000000000003", *h = "00000002.history";

	assert_int_equal(push_spool_dir(f->spool, UUID, &dir, &err), 0);
	PushRecord r;
	r = sample(a), assert_int_equal(push_spool_write(dir, &r, &err), 0);
	r = sample(b), assert_int_equal(push_spool_write(dir, &r, &err), 0);
	r = sample(c), assert_int_equal(push_spool_write(dir, &r, &err), 0);
	r = sample(h), assert_int_equal(push_spool_write(dir, &r, &err), 0);
	touch(f->status, "000000010000000000000001.ready", 0);
	touch(f->status, "000000010000000000000002.done", 0); /* archived since: record useless */
	touch(f->status, "000000010000000000000003.ready", 0);
	touch(f->status, "00000002.history.ready", 0);
	char *p = xasprintf("%s/%s", dir, c);
	struct timeval old[2] = {{now - PUSH_SPOOL_MAX_AGE - 10, 0}, {now - PUSH_SPOOL_MAX_AGE - 10, 0}};
	assert_int_equal(utimes(p, old), 0);
	push_spool_set_failing(dir, a);
	char *failing = xasprintf("%s/%s", dir, PUSH_SPOOL_FAILING);
	assert_int_equal(utimes(failing, old), 0); /* a file failing for days still holds the others back */
	free(failing);
	touch(dir, ".000000010000000000000004.abcdef", now - PUSH_SPOOL_TEMP_AGE - 10);
	touch(dir, ".000000010000000000000005.abcdef", now - 5); /* a writer still busy */

	assert_int_equal(push_spool_expire(dir, f->status, now, PUSH_SPOOL_MAX_AGE), 3);
	assert_true(exists(dir, a));
	assert_false(exists(dir, b));
	assert_false(exists(dir, c));
	assert_true(exists(dir, h));
	assert_false(exists(dir, ".000000010000000000000004.abcdef"));
	assert_true(exists(dir, ".000000010000000000000005.abcdef"));
	assert_true(push_spool_is_failing(dir, a));
	assert_int_equal(push_spool_expire(dir, f->status, now, PUSH_SPOOL_MAX_AGE), 0);

	/* The directory of a spool that cannot be read is left alone, quietly. */
	char *missing = xasprintf("%s/none", f->root);
	assert_int_equal(push_spool_expire(missing, f->status, now, PUSH_SPOOL_MAX_AGE), 0);
	free(missing);
	free(p);
	free(dir);
}

static void test_failing_marker(void **state)
{
	Fixture *f = *state;
	WsError err;
	char *dir = NULL;
	const char *a = "000000010000000000000001", *b = "000000010000000000000002";

	assert_int_equal(push_spool_dir(f->spool, UUID, &dir, &err), 0);
	assert_false(push_spool_is_failing(dir, a));
	push_spool_set_failing(dir, a);
	assert_true(push_spool_is_failing(dir, a));
	assert_false(push_spool_is_failing(dir, b));
	assert_int_equal(count_entries(dir), 1); /* no temp file left */
	push_spool_set_failing(dir, b);
	assert_false(push_spool_is_failing(dir, a));
	assert_true(push_spool_is_failing(dir, b));
	push_spool_clear_failing(dir);
	assert_false(push_spool_is_failing(dir, b));
	assert_int_equal(count_entries(dir), 0);
	push_spool_clear_failing(dir); /* twice is fine */
	push_spool_set_failing(dir, "../../x");
	assert_int_equal(count_entries(dir), 0);
	free(dir);
}

static void test_dir_refuses_bad_uuid(void **state)
{
	Fixture *f = *state;
	WsError err;
	char *dir = NULL;
	assert_int_equal(push_spool_dir(f->spool, "../../etc", &dir, &err), WS_FATAL);
	assert_null(dir);
	assert_int_equal(push_spool_dir(f->spool, "", &dir, &err), WS_FATAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_read_round_trip_in_private_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_or_misplaced_record_is_no_record, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_find_needs_same_repository_and_cluster, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_stored_time_round_trips_exactly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_refused_inside_data_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_by_age_ready_and_temp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failing_marker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_refuses_bad_uuid, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
