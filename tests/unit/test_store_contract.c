/*
 * test_store_contract.c - the storage contract of store.h, one suite for
 * every driver.
 *
 * Without settings it runs against a fresh local directory (make unit).  The
 * integration tests run the same binary against a real sshd and a real S3
 * server with
 *   WALSHIP_TEST_STORE_URL     the store (sftp://... or s3://...)
 *   WALSHIP_TEST_STORE_CONFIG  a walship configuration file with its settings
 *   WALSHIP_TEST_LIST_KEYS     keys for the paging test (default 2100: three
 *                              pages of S3's 1000)
 *   WALSHIP_TEST_SYNC_LOG      a log of the syncs the store runs (the fsyncfail
 *                              shim's for local disk, the sshd wrapper's for
 *                              SFTP): the no-overwrite test then checks that
 *                              a key found taken had its directory synced
 * Every test works below its own prefix, so the suite can share one store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "util/config.h"
#include "util/mem.h"

#include "store_testutil.h"

#define MIB (1024 * 1024)

static const char *store_url;
static Config *store_cfg;
static char local_root[64];
static char run_tag[32];

typedef struct Fixture {
	Store *s;
	char prefix[64]; /* "<run>-<n>/" */
} Fixture;

static char *key_of(const Fixture *f, const char *rel)
{
	return xasprintf("%s%s", f->prefix, rel);
}

static void put_ok(Fixture *f, const char *rel, const void *data, size_t len)
{
	WsError err;
	char *key = key_of(f, rel);
	int rc = put_bytes(f->s, key, data, len, false, &err);
	if (rc != 0)
		print_message("put %s: %s (%s)\n", key, err.msg, err.detail);
	assert_int_equal(rc, 0);
	free(key);
}

static int get_window(Fixture *f, const char *rel, uint64_t off, uint64_t len, MemSink *sink, WsError *err)
{
	memset(sink, 0, sizeof(*sink));
	char *key = key_of(f, rel);
	int rc = store_get(f->s, key, off, len, mem_write, sink, err);
	free(key);
	return rc;
}

static void assert_object(Fixture *f, const char *rel, const void *data, size_t len)
{
	WsError err;
	MemSink sink;
	int rc = get_window(f, rel, 0, STORE_TO_END, &sink, &err);
	if (rc != 0)
		print_message("get %s: %s\n", rel, err.msg);
	assert_int_equal(rc, 0);
	assert_int_equal(sink.len, len);
	if (len > 0)
		assert_memory_equal(sink.buf, data, len);
	free(sink.buf);
}

static int stat_rel(Fixture *f, const char *rel, StoreStat *st, WsError *err)
{
	char *key = key_of(f, rel);
	int rc = store_stat(f->s, key, st, err);
	free(key);
	return rc;
}

/* Objects are files in directories (local disk, SFTP), not S3 keys. */
static bool file_store(void)
{
	return strncmp(store_url, "s3://", 5) != 0;
}

static int open_store(Store **s, WsError *err)
{
	return store_open(store_url, store_cfg, STORE_OPEN_DEFAULT, s, err);
}

static int setup(void **state)
{
	static int counter;
	Fixture *f = xcalloc(1, sizeof(*f));
	WsError err;
	if (open_store(&f->s, &err) != 0) {
		print_message("cannot open \"%s\": %s\n%s\n%s\n", store_url, err.msg, err.detail, err.hint);
		free(f);
		return -1;
	}
	snprintf(f->prefix, sizeof(f->prefix), "%s-%d/", run_tag, ++counter);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	Fixture *f = *state;
	store_free(f->s);
	free(f);
	return 0;
}

/* ---- put and get ---- */

static void test_put_get_roundtrip_sizes(void **state)
{
	Fixture *f = *state;
	/* 6 MiB + 1 crosses a 5 MiB multipart part size when one is configured. */
	static const size_t sizes[] = {0, 1, 7777, MIB + 3, 6 * MIB + 1};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char rel[32];
		snprintf(rel, sizeof(rel), "dir/obj%zu", i);
		unsigned char *data = pattern(sizes[i], (unsigned)i + 1);
		put_ok(f, rel, data, sizes[i]);
		assert_object(f, rel, data, sizes[i]);
		StoreStat st;
		WsError err;
		assert_int_equal(stat_rel(f, rel, &st, &err), 0);
		assert_int_equal(st.size, sizes[i]);
		free(data);
	}
}

static void test_stat_mtime_is_now(void **state)
{
	Fixture *f = *state;
	WsError err;
	StoreStat st;
	time_t before = time(NULL);
	put_ok(f, "t", "x", 1);
	assert_int_equal(stat_rel(f, "t", &st, &err), 0);
	/* The server's clock: within a few minutes of ours. */
	assert_true(st.mtime > (int64_t)before - 300);
	assert_true(st.mtime < (int64_t)before + 300);
}

static void test_get_windows(void **state)
{
	Fixture *f = *state;
	WsError err;
	MemSink sink;
	unsigned char *data = pattern(MIB, 2);
	put_ok(f, "obj", data, MIB);

	assert_int_equal(get_window(f, "obj", 0, 5, &sink, &err), 0);
	assert_int_equal(sink.len, 5);
	assert_memory_equal(sink.buf, data, 5);
	free(sink.buf);

	assert_int_equal(get_window(f, "obj", 10, STORE_TO_END, &sink, &err), 0);
	assert_int_equal(sink.len, MIB - 10);
	assert_memory_equal(sink.buf, data + 10, MIB - 10);
	free(sink.buf);

	assert_int_equal(get_window(f, "obj", 262100, 300000, &sink, &err), 0);
	assert_int_equal(sink.len, 300000);
	assert_memory_equal(sink.buf, data + 262100, 300000);
	free(sink.buf);

	/* Past the end: clipped, or nothing at all, and still a success. */
	assert_int_equal(get_window(f, "obj", MIB - 3, 100, &sink, &err), 0);
	assert_int_equal(sink.len, 3);
	assert_memory_equal(sink.buf, data + MIB - 3, 3);
	free(sink.buf);
	assert_int_equal(get_window(f, "obj", MIB, 10, &sink, &err), 0);
	assert_int_equal(sink.len, 0);
	free(sink.buf);
	assert_int_equal(get_window(f, "obj", 5 * (uint64_t)MIB, STORE_TO_END, &sink, &err), 0);
	assert_int_equal(sink.len, 0);
	free(sink.buf);
	assert_int_equal(get_window(f, "obj", 7, 0, &sink, &err), 0);
	assert_int_equal(sink.len, 0);
	free(sink.buf);
	free(data);
}

static void test_get_sink_error_passes_through(void **state)
{
	Fixture *f = *state;
	WsError err;
	unsigned char *data = pattern(MIB, 3);
	put_ok(f, "obj", data, MIB);
	MemSink sink = {.fail_on_call = 1};
	char *key = key_of(f, "obj");
	assert_int_equal(store_get(f->s, key, 0, STORE_TO_END, mem_write, &sink, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "test sink refused"));
	free(sink.buf);
	/* The handle still works afterwards. */
	assert_object(f, "obj", data, MIB);
	free(key);
	free(data);
}

static void test_missing_object_is_not_found(void **state)
{
	Fixture *f = *state;
	WsError err;
	MemSink sink;
	StoreStat st;
	assert_int_equal(get_window(f, "nope/x", 0, STORE_TO_END, &sink, &err), WS_NOT_FOUND);
	assert_int_equal(sink.len, 0);
	free(sink.buf);
	assert_int_equal(stat_rel(f, "nope/x", &st, &err), WS_NOT_FOUND);
	assert_non_null(strstr(err.msg, "not found"));
}

/*
 * A prefix of other keys: on S3 simply no object; on a file store a directory
 * where an object is asked for, which walship never makes: never "not found"
 * (nor "exists"), since that could only be a damaged repository.
 */
static void test_directory_at_a_key_is_no_object(void **state)
{
	Fixture *f = *state;
	WsError err;
	MemSink sink;
	StoreStat st;
	char *key = key_of(f, "d");
	put_ok(f, "d/e", "x", 1);
	int want = file_store() ? WS_FATAL : WS_NOT_FOUND;
	assert_int_equal(stat_rel(f, "d", &st, &err), want);
	assert_int_equal(get_window(f, "d", 0, STORE_TO_END, &sink, &err), want);
	free(sink.buf);
	if (file_store())
		assert_non_null(strstr(err.msg, "is a directory"));
	assert_int_equal(store_remove(f->s, key, &err), want);
	if (file_store()) {
		assert_int_equal(put_bytes(f->s, key, "y", 1, true, &err), WS_FATAL);
		assert_non_null(strstr(err.msg, "is a directory"));
	}
	assert_object(f, "d/e", "x", 1);
	free(key);
}

/* The size of a file, 0 if it cannot be read. */
static long file_size(const char *path)
{
	FILE *fp = fopen(path, "r");
	long n = 0;
	if (fp != NULL && fseek(fp, 0, SEEK_END) == 0)
		n = ftell(fp);
	if (fp != NULL)
		fclose(fp);
	return n < 0 ? 0 : n;
}

/* Whether the log, from byte from on, names the directory ".../<dir>" (as a whole word). */
static bool log_names_dir(const char *log, long from, const char *dir)
{
	FILE *fp = fopen(log, "r");
	char line[8192];
	bool found = false;
	char *needle = xasprintf("/%s", dir);
	assert_non_null(fp);
	assert_int_equal(fseek(fp, from, SEEK_SET), 0);
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		for (char *p = strstr(line, needle); p != NULL && !found; p = strstr(p + 1, needle)) {
			char after = p[strlen(needle)];
			found = after == ' ' || after == '\t' || after == '\n' || after == '\0';
		}
	}
	fclose(fp);
	free(needle);
	return found;
}
/* ---- no overwrite ---- */

static void test_no_overwrite_existing_key_is_exists(void **state)
{
	Fixture *f = *state;
	WsError err;
	char *key = key_of(f, "k");
	const char *sync_log = getenv("WALSHIP_TEST_SYNC_LOG");
	assert_int_equal(put_bytes(f->s, key, "first", 5, true, &err), 0);
	long mark = sync_log != NULL ? file_size(sync_log) : 0;
	assert_int_equal(put_bytes(f->s, key, "second!", 7, true, &err), WS_EXISTS);
	/*
	 * WS_EXISTS may be taken for "stored" (an identical WAL file): the object
	 * found must be durable by then, its writer may have died before syncing.
	 */
	if (sync_log != NULL) {
		char dir[sizeof(f->prefix)];
		snprintf(dir, sizeof(dir), "%.*s", (int)strlen(f->prefix) - 1, f->prefix);
		if (!log_names_dir(sync_log, mark, dir))
			fail_msg("no sync of the directory \"%s\" in %s when WS_EXISTS was answered", dir,
				 sync_log);
	}
	assert_object(f, "k", "first", 5);
	/* Without no_overwrite the object is replaced whole. */
	assert_int_equal(put_bytes(f->s, key, "second!", 7, false, &err), 0);
	assert_object(f, "k", "second!", 7);
	assert_int_equal(put_bytes(f->s, key, "x", 1, false, &err), 0);
	assert_object(f, "k", "x", 1);
	free(key);
}

static int count_keys(void *ctx, const char *key, const StoreStat *st, WsError *err)
{
	(void)key;
	(void)st;
	(void)err;
	(*(int *)ctx)++;
	return 0;
}

static void test_reader_failure_leaves_no_object(void **state)
{
	Fixture *f = *state;
	WsError err;
	StoreStat st;
	unsigned char *data = pattern(2 * MIB, 4);
	char *key = key_of(f, "failing/obj");
	TestReader r = {.data = data, .len = 2 * MIB, .fail_at = MIB + 17, .chunk = 65536};
	assert_int_equal(store_put(f->s, key, mem_read, &r, true, &err), WS_TRANSIENT);
	assert_non_null(strstr(err.msg, "test reader failed"));
	assert_int_equal(stat_rel(f, "failing/obj", &st, &err), WS_NOT_FOUND);

	/* Nothing of it is listed, and the key is still free. */
	int listed = 0;
	char *prefix = key_of(f, "");
	assert_int_equal(store_list(f->s, prefix, count_keys, &listed, &err), 0);
	assert_int_equal(listed, 0);
	assert_int_equal(put_bytes(f->s, key, data, 2 * MIB, true, &err), 0);
	assert_object(f, "failing/obj", data, 2 * MIB);
	free(prefix);
	free(key);
	free(data);
}

#define RACERS 4

/* Racers open their own handles, wait on a pipe so they start together, and put different content. */
static void race_rounds(Fixture *f, int rounds)
{
	size_t size[RACERS];
	unsigned char *content[RACERS];
	for (int i = 0; i < RACERS; i++) {
		size[i] = 100000 + (size_t)i * 1000;
		content[i] = pattern(size[i], 100 + (unsigned)i);
	}
	for (int round = 0; round < rounds; round++) {
		char rel[32];
		snprintf(rel, sizeof(rel), "race/%d", round);
		char *key = key_of(f, rel);
		int go[2];
		pid_t pid[RACERS];
		assert_int_equal(pipe(go), 0);
		for (int i = 0; i < RACERS; i++) {
			pid[i] = fork();
			assert_true(pid[i] >= 0);
			if (pid[i] == 0) {
				WsError err;
				Store *s = NULL;
				char c;
				close(go[1]);
				if (open_store(&s, &err) != 0)
					_exit(3);
				if (read(go[0], &c, 1) != 0)
					_exit(4);
				int rc = put_bytes(s, key, content[i], size[i], true, &err);
				if (rc != 0 && rc != WS_EXISTS)
					fprintf(stderr, "racer %d: %s\n", i, err.msg);
				store_free(s);
				_exit(rc == 0 ? 0 : rc == WS_EXISTS ? 1 : 2);
			}
		}
		close(go[0]);
		/* Give every racer time to connect before the start. */
		usleep(store_url[0] == '/' ? 1000 : 300000);
		close(go[1]);
		int winner = racers_one_winner(pid, RACERS);
		assert_object(f, rel, content[winner], size[winner]);
		free(key);
	}
	for (int i = 0; i < RACERS; i++)
		free(content[i]);
}

static void test_racing_no_overwrite_puts_one_wins(void **state)
{
	race_rounds(*state, store_url[0] == '/' ? 30 : 8);
}

/* ---- list ---- */

typedef struct Collect {
	char (*keys)[160];
	StoreStat *st;
	int n;
	int cap;
	int stop_after; /* 0: never */
	size_t strip;   /* length of the test's prefix, removed from keys */
} Collect;

static int collect(void *ctx, const char *key, const StoreStat *st, WsError *err)
{
	(void)err;
	Collect *c = ctx;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->keys = xrealloc(c->keys, (size_t)c->cap * sizeof(*c->keys));
		c->st = xrealloc(c->st, (size_t)c->cap * sizeof(*c->st));
	}
	assert_true(strlen(key) >= c->strip);
	snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s", key + c->strip);
	c->st[c->n] = *st;
	c->n++;
	if (c->stop_after && c->n == c->stop_after)
		return 7;
	return 0;
}

static void collect_free(Collect *c)
{
	free(c->keys);
	free(c->st);
}

static void assert_listing(Fixture *f, const char *rel_prefix, const char *const *want)
{
	Collect c = {.strip = strlen(f->prefix)};
	WsError err;
	int n = 0;
	char *prefix = key_of(f, rel_prefix);
	int rc = store_list(f->s, prefix, collect, &c, &err);
	if (rc != 0)
		print_message("list %s: %s\n", prefix, err.msg);
	assert_int_equal(rc, 0);
	while (want[n] != NULL)
		n++;
	if (c.n != n) {
		for (int i = 0; i < c.n; i++)
			print_message("listed %s\n", c.keys[i]);
	}
	assert_int_equal(c.n, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(c.keys[i], want[i]);
	collect_free(&c);
	free(prefix);
}

/*
 * No key has a character below '/' where another has '/': s3rver, the S3
 * test server, orders "-" and "." after "/" and then loses keys across pages
 * (AWS orders bytewise).  test_store_local.c covers those for the local driver.
 */
static void make_list_tree(Fixture *f)
{
	static const char *const keys[] = {"a/b", "a_x", "a/c/d", "a@b", "ab", "a/c_e", "b", NULL};
	for (int i = 0; keys[i] != NULL; i++)
		put_ok(f, keys[i], keys[i], strlen(keys[i]));
}

static void test_list_is_sorted_bytewise_and_filtered_by_prefix(void **state)
{
	Fixture *f = *state;
	make_list_tree(f);

	const char *const all[] = {"a/b", "a/c/d", "a/c_e", "a@b", "a_x", "ab", "b", NULL};
	assert_listing(f, "", all);
	const char *const under_a_slash[] = {"a/b", "a/c/d", "a/c_e", NULL};
	assert_listing(f, "a/", under_a_slash);
	const char *const starting_a[] = {"a/b", "a/c/d", "a/c_e", "a@b", "a_x", "ab", NULL};
	assert_listing(f, "a", starting_a);
	const char *const a_c[] = {"a/c/d", "a/c_e", NULL};
	assert_listing(f, "a/c", a_c);
	const char *const a_c_slash[] = {"a/c/d", NULL};
	assert_listing(f, "a/c/", a_c_slash);
	const char *const exact[] = {"a/b", NULL};
	assert_listing(f, "a/b", exact);
	const char *const none[] = {NULL};
	assert_listing(f, "zz", none);
	assert_listing(f, "nope/x/", none);
	assert_listing(f, "a/b/", none);

	Collect c = {.strip = strlen(f->prefix)};
	WsError err;
	char *p = key_of(f, "a_x");
	assert_int_equal(store_list(f->s, p, collect, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.st[0].size, 3);
	collect_free(&c);
	free(p);
}

static void test_list_partial_wal_prefix(void **state)
{
	Fixture *f = *state;
	static const char *const keys[] = {
		"15-1/wal/0000000200000000/000000020000000000000005",
		"15-1/wal/00000001.history",
		"15-1/wal/0000000100000000/000000010000000000000002",
		"15-1/wal/0000000100000000/000000010000000000000001",
		"15-1/wal/0000000100000001/000000010000000100000000",
		"15-1/wal/00000002.history",
		NULL,
	};
	for (int i = 0; keys[i] != NULL; i++)
		put_ok(f, keys[i], "w", 1);
	const char *const tli1[] = {
		"15-1/wal/00000001.history",
		"15-1/wal/0000000100000000/000000010000000000000001",
		"15-1/wal/0000000100000000/000000010000000000000002",
		"15-1/wal/0000000100000001/000000010000000100000000",
		NULL,
	};
	assert_listing(f, "15-1/wal/00000001", tli1);
}

static void test_list_stops_when_callback_returns_non_zero(void **state)
{
	Fixture *f = *state;
	WsError err;
	make_list_tree(f);
	char *prefix = key_of(f, "");
	Collect c = {.stop_after = 2, .strip = strlen(f->prefix)};
	assert_int_equal(store_list(f->s, prefix, collect, &c, &err), 7);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.keys[1], "a/c/d");
	collect_free(&c);
	Collect c2 = {.stop_after = 4, .strip = strlen(f->prefix)};
	assert_int_equal(store_list(f->s, prefix, collect, &c2, &err), 7);
	assert_int_equal(c2.n, 4);
	assert_string_equal(c2.keys[3], "a@b");
	collect_free(&c2);
	free(prefix);
}

/* Thousands of keys: every one listed once, in order, across the driver's pages. */
static void test_list_thousands_of_keys_across_pages(void **state)
{
	Fixture *f = *state;
	const char *env = getenv("WALSHIP_TEST_LIST_KEYS");
	int n = env ? atoi(env) : 2100;
	for (int i = 0; i < n; i++) {
		char rel[32];
		/* Two directories, so a directory-walking driver also crosses one. */
		snprintf(rel, sizeof(rel), "%s/%06d", i % 2 ? "odd" : "even", i);
		put_ok(f, rel, rel, strlen(rel));
	}
	char *prefix = key_of(f, "");
	Collect c = {.strip = strlen(f->prefix)};
	WsError err;
	assert_int_equal(store_list(f->s, prefix, collect, &c, &err), 0);
	assert_int_equal(c.n, n);
	for (int i = 0; i < n; i++) {
		int idx = i < (n + 1) / 2 ? 2 * i : 2 * (i - (n + 1) / 2) + 1;
		char want[32];
		snprintf(want, sizeof(want), "%s/%06d", idx % 2 ? "odd" : "even", idx);
		assert_string_equal(c.keys[i], want);
		assert_int_equal(c.st[i].size, strlen(want));
	}
	collect_free(&c);
	free(prefix);
}

/* ---- remove ---- */

static void test_remove_then_not_found(void **state)
{
	Fixture *f = *state;
	WsError err;
	StoreStat st;
	MemSink sink;
	put_ok(f, "r/x", "abc", 3);
	char *key = key_of(f, "r/x");
	assert_int_equal(store_remove(f->s, key, &err), 0);
	assert_int_equal(stat_rel(f, "r/x", &st, &err), WS_NOT_FOUND);
	assert_int_equal(get_window(f, "r/x", 0, STORE_TO_END, &sink, &err), WS_NOT_FOUND);
	free(sink.buf);
	assert_int_equal(store_remove(f->s, key, &err), WS_NOT_FOUND);
	const char *const none[] = {NULL};
	assert_listing(f, "r/", none);
	/* And the key can be used again. */
	assert_int_equal(put_bytes(f->s, key, "new", 3, true, &err), 0);
	assert_object(f, "r/x", "new", 3);
	free(key);
}

static void test_bad_keys_are_usage_errors(void **state)
{
	Fixture *f = *state;
	WsError err;
	StoreStat st;
	static const char *const bad[] = {"", "/abs", "a//b", "a/", "../x", "a/../b", "a b", "a\\b", NULL};
	for (int i = 0; bad[i] != NULL; i++) {
		assert_int_equal(put_bytes(f->s, bad[i], "x", 1, true, &err), WS_USAGE);
		assert_int_equal(store_stat(f->s, bad[i], &st, &err), WS_USAGE);
		assert_int_equal(store_remove(f->s, bad[i], &err), WS_USAGE);
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	WsError err;
	store_url = getenv("WALSHIP_TEST_STORE_URL");
	store_cfg = config_new();
	const char *cfgfile = getenv("WALSHIP_TEST_STORE_CONFIG");
	if (config_load(store_cfg, cfgfile, "/nonexistent/walship.conf", &err) != 0) {
		fprintf(stderr, "test_store_contract: %s\n", err.msg);
		return 1;
	}
	if (store_url == NULL || store_url[0] == '\0') {
		strcpy(local_root, "/tmp/walship-test-contract-XXXXXX");
		if (mkdtemp(local_root) == NULL)
			return 1;
		store_url = local_root;
	}
	snprintf(run_tag, sizeof(run_tag), "contract-%ld-%d", (long)time(NULL), (int)getpid());
	fprintf(stderr, "store contract against %s\n", store_url);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_roundtrip_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stat_mtime_is_now, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_sink_error_passes_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_object_is_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_at_a_key_is_no_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_overwrite_existing_key_is_exists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_failure_leaves_no_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_racing_no_overwrite_puts_one_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_is_sorted_bytewise_and_filtered_by_prefix, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_list_partial_wal_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_stops_when_callback_returns_non_zero, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_list_thousands_of_keys_across_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_then_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_keys_are_usage_errors, setup, teardown),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	if (local_root[0])
		nftw(local_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	config_free(store_cfg);
	return failed;
}
