/*
 * test_store_local.c - the store dispatch layer and the local-disk driver:
 * URL forms, key rules, put/get/stat/list/remove, no-overwrite atomicity
 * under racing processes, failure clean-up and a full filesystem.
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
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/driver.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/mem.h"

#include "store_testutil.h"

#define MIB (1024 * 1024)

typedef struct Fixture {
	char root[64];
	Store *s;
} Fixture;

static int put_str(Store *s, const char *key, const char *text)
{
	WsError err;
	return put_bytes(s, key, text, strlen(text), false, &err);
}

/* Fetch a window of an object into a fresh sink (caller frees sink.buf). */
static int get_window(Store *s, const char *key, uint64_t off, uint64_t len, MemSink *sink, WsError *err)
{
	memset(sink, 0, sizeof(*sink));
	return store_get(s, key, off, len, mem_write, sink, err);
}

static void assert_object(Store *s, const char *key, const void *data, size_t len)
{
	WsError err;
	MemSink sink;
	assert_int_equal(get_window(s, key, 0, STORE_TO_END, &sink, &err), 0);
	assert_int_equal(sink.len, len);
	if (len > 0)
		assert_memory_equal(sink.buf, data, len);
	free(sink.buf);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Number of entries in a directory, dot files included ("." and ".." not). */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Number of names starting with ".", anywhere under dir. */
static int count_dot_files(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *sub = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		if (de->d_name[0] == '.')
			n++;
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			n += count_dot_files(sub);
		free(sub);
	}
	closedir(d);
	return n;
}

static void touch(const char *root, const char *rel)
{
	char *p = xasprintf("%s/%s", root, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	free(p);
}

typedef struct Collect {
	char keys[64][128];
	StoreStat st[64];
	int n;
	int stop_after; /* 0: never */
} Collect;

static int collect(void *ctx, const char *key, const StoreStat *st, WsError *err)
{
	(void)err;
	Collect *c = ctx;
	assert_true(c->n < 64);
	snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s", key);
	c->st[c->n] = *st;
	c->n++;
	if (c->stop_after && c->n == c->stop_after)
		return 7;
	return 0;
}

static int setup(void **state)
{
	Fixture *f = xcalloc(1, sizeof(*f));
	WsError err;
	strcpy(f->root, "/tmp/walship-test-store-XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	if (store_open(f->root, NULL, STORE_OPEN_DEFAULT, &f->s, &err) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	Fixture *f = *state;
	store_free(f->s);
	rm_rf(f->root);
	free(f);
	store_local_test_force_link_fallback(0);
	return 0;
}

/* ---- opening ---- */

static void test_open_missing_root_is_fatal_with_mount_hint(void **state)
{
	Fixture *f = *state;
	WsError err;
	Store *s = (Store *)1;
	char *missing = xasprintf("%s/not-here", f->root);

	assert_int_equal(store_open(missing, NULL, STORE_OPEN_DEFAULT, &s, &err), WS_FATAL);
	assert_null(s);
	char *want = xasprintf("repository directory \"%s\" does not exist", missing);
	assert_string_equal(err.msg, want);
	assert_non_null(strstr(err.hint, "walship init"));
	assert_non_null(strstr(err.hint, "mounted"));
	/* Opening must not have created it. */
	assert_int_equal(access(missing, F_OK), -1);
	free(want);
	free(missing);
}

static void test_open_create_makes_root_and_parents(void **state)
{
	Fixture *f = *state;
	WsError err;
	Store *s = NULL;
	struct stat st;
	char *url = xasprintf("file://%s/x/y/repo///", f->root);
	char *path = xasprintf("%s/x/y/repo", f->root);
	mode_t mask = umask(022);

	assert_int_equal(store_open(url, NULL, STORE_OPEN_CREATE, &s, &err), 0);
	umask(mask);
	assert_non_null(s);
	assert_string_equal(store_display(s), path);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(put_str(s, "k", "v"), 0);
	assert_object(s, "k", "v", 1);
	store_free(s);

	/* Opening an existing root with CREATE is fine too. */
	assert_int_equal(store_open(path, NULL, STORE_OPEN_CREATE, &s, &err), 0);
	assert_object(s, "k", "v", 1);
	store_free(s);
	free(url);
	free(path);
}

static void test_open_root_that_is_a_file_is_fatal(void **state)
{
	Fixture *f = *state;
	WsError err;
	Store *s = NULL;
	touch(f->root, "plain");
	char *path = xasprintf("%s/plain", f->root);
	assert_int_equal(store_open(path, NULL, STORE_OPEN_DEFAULT, &s, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "is not a directory"));
	assert_null(s);
	free(path);
}

static void test_open_unreadable_root_is_fatal_with_user_hint(void **state)
{
	Fixture *f = *state;
	char *path = xasprintf("%s/locked/repo", f->root);
	char *locked = xasprintf("%s/locked", f->root);
	assert_int_equal(mkdir(locked, 0700), 0);
	assert_int_equal(mkdir(path, 0700), 0);

	/* root ignores permissions: check as an unprivileged user in a child. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0) {
			struct passwd *pw = getpwnam("nobody");
			if (pw == NULL || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
				_exit(3);
		} else if (chmod(locked, 0) != 0) {
			_exit(3);
		}
		WsError err;
		Store *s = NULL;
		int rc = store_open(path, NULL, STORE_OPEN_DEFAULT, &s, &err);
		if (rc != WS_FATAL || s != NULL)
			_exit(1);
		if (strstr(err.msg, "Permission denied") == NULL ||
		    strstr(err.hint, "PostgreSQL runs as") == NULL)
			_exit(2);
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	chmod(locked, 0700);
	free(locked);
	free(path);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
		print_message("cannot drop privileges: skipping the permission case\n");
		skip();
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_open_url_forms(void **state)
{
	Fixture *f = *state;
	WsError err;
	Store *s = NULL;

	char *url = xasprintf("file://%s", f->root);
	assert_int_equal(store_open(url, NULL, STORE_OPEN_DEFAULT, &s, &err), 0);
	assert_string_equal(store_display(s), f->root);
	store_free(s);
	free(url);

	assert_int_equal(store_open("relative/repo", NULL, STORE_OPEN_DEFAULT, &s, &err), WS_USAGE);
	assert_string_equal(err.msg, "repository path must be absolute");
	assert_null(s);
	assert_int_equal(store_open("file://relative/repo", NULL, STORE_OPEN_DEFAULT, &s, &err), WS_USAGE);
	assert_string_equal(err.msg, "repository path must be absolute");

	/* sftp:// and s3:// reach their drivers (which check the URL before connecting). */
	assert_int_equal(store_open("sftp://u@h", NULL, STORE_OPEN_DEFAULT, &s, &err), WS_USAGE);
	assert_string_equal(err.msg, "invalid SFTP repository URL \"sftp://u@h\": no path after the host");
	assert_null(s);
	assert_int_equal(store_open("s3://", NULL, STORE_OPEN_DEFAULT, &s, &err), WS_USAGE);
	assert_non_null(strstr(err.msg, "invalid S3 repository \"s3://\""));
	assert_null(s);

	assert_int_equal(store_open("http://example.com/x", NULL, STORE_OPEN_DEFAULT, &s, &err), WS_USAGE);
	assert_string_equal(err.msg, "unrecognized repository \"http://example.com/x\"");
	assert_non_null(strstr(err.hint, "file:///"));
	assert_non_null(strstr(err.hint, "sftp://"));
	assert_non_null(strstr(err.hint, "s3://"));
	assert_null(s);
}

/* ---- put / get / stat ---- */

static void test_put_get_roundtrip_empty_small_and_large(void **state)
{
	Fixture *f = *state;
	WsError err;
	StoreStat st;
	size_t big = 3 * MIB + 1;
	unsigned char *data = pattern(big, 1);

	assert_int_equal(put_bytes(f->s, "empty", "", 0, true, &err), 0);
	assert_object(f->s, "empty", "", 0);
	assert_int_equal(store_stat(f->s, "empty", &st, &err), 0);
	assert_int_equal(st.size, 0);

	assert_int_equal(put_bytes(f->s, "dir/small", "hello, world\n", 13, true, &err), 0);
	assert_object(f->s, "dir/small", "hello, world\n", 13);

	assert_int_equal(
		put_bytes(f->s, "15-1/wal/0000000100000000/000000010000000000000001", data, big, true, &err),
		0);
	assert_object(f->s, "15-1/wal/0000000100000000/000000010000000000000001", data, big);
	assert_int_equal(store_stat(f->s, "15-1/wal/0000000100000000/000000010000000000000001", &st, &err),
			 0);
	assert_int_equal(st.size, big);

	/* Nothing but the objects and their directories was left behind. */
	assert_int_equal(count_dot_files(f->root), 0);
	free(data);
}

static void test_put_creates_parent_directories_0750(void **state)
{
	Fixture *f = *state;
	struct stat st;
	mode_t mask = umask(022);
	assert_int_equal(put_str(f->s, "p/q/r/obj", "x"), 0);
	umask(mask);
	char *dir = xasprintf("%s/p/q", f->root);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	free(dir);
	assert_object(f->s, "p/q/r/obj", "x", 1);
}

/* Run as root in a repository another user owns (rebuild's lease, sudo backup): the owner gets what is made.
 */
static void test_put_as_root_gives_new_files_and_directories_to_the_owner(void **state)
{
	Fixture *f = *state;
	WsError err;
	Store *s = NULL;
	struct stat st;
	if (geteuid() != 0) {
		print_message("not root: skipping the ownership case\n");
		skip();
	}
	char *repo = xasprintf("%s/owned", f->root);
	assert_int_equal(mkdir(repo, 0750), 0);
	assert_int_equal(chown(repo, 4321, 4322), 0);
	assert_int_equal(store_open(repo, NULL, STORE_OPEN_DEFAULT, &s, &err), 0);
	assert_int_equal(put_str(s, "leases/a.json", "{}"), 0);
	assert_int_equal(put_bytes(s, "leases/b.json", "{}", 2, true, &err), 0);
	assert_int_equal(put_str(s, "leases/a.json", "{ }"), 0); /* replaced: the new file too */
	const char *const made[] = {"leases", "leases/a.json", "leases/b.json"};
	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
		char *path = xasprintf("%s/%s", repo, made[i]);
		assert_int_equal(lstat(path, &st), 0);
		assert_int_equal(st.st_uid, 4321);
		assert_int_equal(st.st_gid, 4322);
		free(path);
	}
	store_free(s);

	/* A root-owned repository stays root's. */
	assert_int_equal(put_str(f->s, "x/y", "z"), 0);
	char *path = xasprintf("%s/x/y", f->root);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_uid, 0);
	free(path);
	free(repo);
}

static void test_put_over_a_file_component_is_fatal(void **state)
{
	Fixture *f = *state;
	WsError err;
	assert_int_equal(put_str(f->s, "flat", "x"), 0);
	assert_int_equal(put_bytes(f->s, "flat/below", "y", 1, true, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "could not write \"flat/below\" to repository"));
}

typedef struct PeekArg {
	const char *dir;
	char name[256];
	int dots;
} PeekArg;

static void peek_temp(void *arg)
{
	PeekArg *p = arg;
	DIR *d = opendir(p->dir);
	struct dirent *de;
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			p->dots++;
			snprintf(p->name, sizeof(p->name), "%s", de->d_name);
		}
	}
	closedir(d);
}

static void test_put_writes_a_dot_temp_file_beside_the_final_name(void **state)
{
	Fixture *f = *state;
	WsError err;
	char *dir = xasprintf("%s/w", f->root);
	assert_int_equal(mkdir(dir, 0750), 0);
	PeekArg peek = {.dir = dir};
	TestReader r = reader_of("abc", 3);
	r.during = peek_temp;
	r.during_arg = &peek;

	assert_int_equal(store_put(f->s, "w/obj", mem_read, &r, true, &err), 0);
	assert_int_equal(peek.dots, 1);
	assert_int_equal(strncmp(peek.name, ".obj.tmp.", 9), 0);
	assert_int_equal(strlen(peek.name), strlen(".obj.tmp.") + 6);
	/* Invisible to list while it exists, and gone once the put returns. */
	assert_int_equal(count_entries(dir), 1);
	assert_object(f->s, "w/obj", "abc", 3);
	free(dir);
}

static void test_put_long_last_component(void **state)
{
	Fixture *f = *state;
	char key[300];
	memset(key, 'n', 250);
	key[250] = '\0';
	assert_int_equal(put_str(f->s, key, "long"), 0);
	assert_object(f->s, key, "long", 4);
	assert_int_equal(count_dot_files(f->root), 0);
}

static void test_get_windows(void **state)
{
	Fixture *f = *state;
	WsError err;
	MemSink sink;
	unsigned char *data = pattern(MIB, 2);
	assert_int_equal(put_bytes(f->s, "obj", data, MIB, true, &err), 0);

	assert_int_equal(get_window(f->s, "obj", 0, 5, &sink, &err), 0);
	assert_int_equal(sink.len, 5);
	assert_memory_equal(sink.buf, data, 5);
	free(sink.buf);

	assert_int_equal(get_window(f->s, "obj", 10, STORE_TO_END, &sink, &err), 0);
	assert_int_equal(sink.len, MIB - 10);
	assert_memory_equal(sink.buf, data + 10, MIB - 10);
	free(sink.buf);

	/* A window across the driver's 256 KiB buffer boundary. */
	assert_int_equal(get_window(f->s, "obj", 262100, 300000, &sink, &err), 0);
	assert_int_equal(sink.len, 300000);
	assert_memory_equal(sink.buf, data + 262100, 300000);
	free(sink.buf);

	/* Past the end: clipped, or nothing at all, and still a success. */
	assert_int_equal(get_window(f->s, "obj", MIB - 3, 100, &sink, &err), 0);
	assert_int_equal(sink.len, 3);
	assert_memory_equal(sink.buf, data + MIB - 3, 3);
	free(sink.buf);
	assert_int_equal(get_window(f->s, "obj", MIB, 10, &sink, &err), 0);
	assert_int_equal(sink.len, 0);
	assert_int_equal(sink.calls, 0);
	free(sink.buf);
	assert_int_equal(get_window(f->s, "obj", 5 * (uint64_t)MIB, STORE_TO_END, &sink, &err), 0);
	assert_int_equal(sink.calls, 0);
	free(sink.buf);
	assert_int_equal(get_window(f->s, "obj", UINT64_MAX - 1, 1, &sink, &err), 0);
	assert_int_equal(sink.calls, 0);
	free(sink.buf);

	assert_int_equal(get_window(f->s, "obj", 7, 0, &sink, &err), 0);
	assert_int_equal(sink.calls, 0);
	free(sink.buf);
	free(data);
}

static void test_get_sink_error_passes_through(void **state)
{
	Fixture *f = *state;
	WsError err;
	MemSink sink = {.fail_on_call = 2};
	unsigned char *data = pattern(MIB, 3);
	assert_int_equal(put_bytes(f->s, "obj", data, MIB, true, &err), 0);
	assert_int_equal(store_get(f->s, "obj", 0, STORE_TO_END, mem_write, &sink, &err), WS_FATAL);
	assert_string_equal(err.msg, "test sink refused call 2");
	assert_int_equal(sink.calls, 2);
	free(sink.buf);
	free(data);
}

static void test_missing_object_is_not_found(void **state)
{
	Fixture *f = *state;
	WsError err;
	MemSink sink;
	StoreStat st;

	assert_int_equal(get_window(f->s, "x/y", 0, STORE_TO_END, &sink, &err), WS_NOT_FOUND);
	char *want = xasprintf("object \"x/y\" not found in repository \"%s\"", f->root);
	assert_string_equal(err.msg, want);
	assert_int_equal(sink.calls, 0);
	assert_int_equal(store_stat(f->s, "x/y", &st, &err), WS_NOT_FOUND);
	assert_string_equal(err.msg, want);

	/* Missing directories all the way up to the root: still a proven absence. */
	assert_int_equal(store_stat(f->s, "x/y/z/w", &st, &err), WS_NOT_FOUND);
	free(want);
}

/*
 * Only a name missing from a directory that is there is "not found": a
 * directory at the key, a file or a dangling symlink where a directory should
 * be (a sub-volume not mounted) are damage, answered as errors.
 */
static void test_damage_is_never_not_found(void **state)
{
	Fixture *f = *state;
	WsError err;
	MemSink sink;
	StoreStat st;

	assert_int_equal(put_str(f->s, "d/obj", "1"), 0);
	assert_int_equal(get_window(f->s, "d", 0, STORE_TO_END, &sink, &err), WS_FATAL);
	char *want = xasprintf("object \"d\" in repository \"%s\" is a directory", f->root);
	assert_string_equal(err.msg, want);
	assert_int_equal(store_stat(f->s, "d", &st, &err), WS_FATAL);
	assert_string_equal(err.msg, want);
	assert_int_equal(store_remove(f->s, "d", &err), WS_FATAL);
	assert_int_equal(put_bytes(f->s, "d", "x", 1, true, &err), WS_FATAL);
	assert_string_equal(err.msg, want);
	free(want);

	/* A file where a directory should be. */
	assert_int_equal(store_stat(f->s, "d/obj/z", &st, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "\"d/obj\" is not a directory"));
	assert_int_equal(get_window(f->s, "d/obj/z/w", 0, STORE_TO_END, &sink, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "\"d/obj\" is not a directory"));
	assert_int_equal(store_remove(f->s, "d/obj/z", &err), WS_FATAL);

	/* A dangling symlink where a WAL directory should be: a volume not mounted. */
	char *link = xasprintf("%s/wal", f->root);
	assert_int_equal(symlink("/nonexistent/walship-volume", link), 0);
	assert_int_equal(get_window(f->s, "wal/seg", 0, STORE_TO_END, &sink, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "\"wal\" is a symbolic link whose target does not exist"));
	assert_non_null(strstr(err.hint, "mount"));
	assert_int_equal(sink.calls, 0);
	assert_int_equal(store_stat(f->s, "wal/a/seg", &st, &err), WS_FATAL);
	assert_int_equal(store_remove(f->s, "wal/seg", &err), WS_FATAL);
	/* Mounted (the link leads to a directory): a missing file there is "not found". */
	char *vol = xasprintf("%s/volume", f->root);
	assert_int_equal(mkdir(vol, 0700), 0);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(symlink("volume", link), 0);
	assert_int_equal(store_stat(f->s, "wal/seg", &st, &err), WS_NOT_FOUND);
	assert_int_equal(store_stat(f->s, "wal/a/seg", &st, &err), WS_NOT_FOUND);
	assert_int_equal(put_str(f->s, "wal/seg", "s"), 0);
	assert_object(f->s, "wal/seg", "s", 1);

	/* A dangling symlink at the key itself. */
	char *at = xasprintf("%s/d/gone", f->root);
	assert_int_equal(symlink("nowhere", at), 0);
	assert_int_equal(get_window(f->s, "d/gone", 0, STORE_TO_END, &sink, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "symbolic link"));
	assert_int_equal(store_stat(f->s, "d/gone", &st, &err), WS_FATAL);
	free(at);
	free(vol);
	free(link);
}

static void test_vanished_root_is_fatal_not_not_found(void **state)
{
	Fixture *f = *state;
	WsError err;
	MemSink sink;
	StoreStat st;
	Store *s = NULL;
	char *root = xasprintf("%s/gone", f->root);
	assert_int_equal(mkdir(root, 0700), 0);
	assert_int_equal(store_open(root, NULL, STORE_OPEN_DEFAULT, &s, &err), 0);
	assert_int_equal(rmdir(root), 0);

	assert_int_equal(get_window(s, "k", 0, STORE_TO_END, &sink, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "does not exist"));
	assert_int_equal(store_stat(s, "k", &st, &err), WS_FATAL);
	assert_int_equal(store_remove(s, "k", &err), WS_FATAL);
	Collect c = {0};
	assert_int_equal(store_list(s, "", collect, &c, &err), WS_FATAL);
	assert_int_equal(c.n, 0);
	/* A put must not re-create the root (an unmounted volume must stay an error). */
	assert_int_equal(put_bytes(s, "a/b", "x", 1, true, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "does not exist"));
	assert_int_equal(access(root, F_OK), -1);
	store_free(s);
	free(root);
}

static void test_symlink_or_fifo_at_a_key_is_fatal(void **state)
{
	Fixture *f = *state;
	WsError err;
	StoreStat st;
	MemSink sink;
	assert_int_equal(put_str(f->s, "real", "data"), 0);
	char *link = xasprintf("%s/link", f->root);
	assert_int_equal(symlink("real", link), 0);
	char *fifo = xasprintf("%s/fifo", f->root);
	assert_int_equal(mkfifo(fifo, 0600), 0);

	/* Something walship did not make sits there: not "no such object". */
	assert_int_equal(get_window(f->s, "link", 0, STORE_TO_END, &sink, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "symbolic link"));
	assert_int_equal(store_stat(f->s, "link", &st, &err), WS_FATAL);
	/* Must not block waiting for a writer. */
	assert_int_equal(get_window(f->s, "fifo", 0, STORE_TO_END, &sink, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "not a regular file"));
	assert_int_equal(store_stat(f->s, "fifo", &st, &err), WS_FATAL);
	free(link);
	free(fifo);
}

static void test_stat_reports_size_and_mtime(void **state)
{
	Fixture *f = *state;
	WsError err;
	StoreStat st;
	time_t before = time(NULL);
	assert_int_equal(put_str(f->s, "a/b", "12345"), 0);
	assert_int_equal(store_stat(f->s, "a/b", &st, &err), 0);
	assert_int_equal(st.size, 5);
	assert_true(st.mtime >= (int64_t)before - 2 && st.mtime <= (int64_t)time(NULL) + 2);
}

/* ---- overwrite rules ---- */

static void check_no_overwrite(Store *s, const char *root)
{
	WsError err;
	assert_int_equal(put_bytes(s, "k/one", "first", 5, true, &err), 0);
	assert_int_equal(put_bytes(s, "k/one", "second!", 7, true, &err), WS_EXISTS);
	char *want = xasprintf("\"k/one\" already exists in repository \"%s\"", root);
	assert_string_equal(err.msg, want);
	assert_object(s, "k/one", "first", 5);
	assert_int_equal(count_dot_files(root), 0);
	free(want);
}

static void test_no_overwrite_existing_key_is_exists(void **state)
{
	Fixture *f = *state;
	check_no_overwrite(f->s, f->root);
}

static void test_no_overwrite_existing_key_is_exists_link_fallback(void **state)
{
	Fixture *f = *state;
	WsError err;
	Store *s = NULL;
	store_local_test_force_link_fallback(1);
	assert_int_equal(store_open(f->root, NULL, STORE_OPEN_DEFAULT, &s, &err), 0);
	check_no_overwrite(s, f->root);
	store_free(s);
}

static void test_overwrite_replaces(void **state)
{
	Fixture *f = *state;
	WsError err;
	assert_int_equal(put_bytes(f->s, "k", "first", 5, false, &err), 0);
	assert_int_equal(put_bytes(f->s, "k", "second!", 7, false, &err), 0);
	assert_object(f->s, "k", "second!", 7);
	assert_int_equal(count_dot_files(f->root), 0);
}

static void test_reader_failure_leaves_no_object_and_no_temp(void **state)
{
	Fixture *f = *state;
	WsError err;
	StoreStat st;
	size_t len = 2 * MIB;
	unsigned char *data = pattern(len, 4);
	TestReader r = reader_of(data, len);
	r.fail_at = 700 * 1024; /* after several buffers reached the temp file */

	assert_int_equal(store_put(f->s, "w/obj", mem_read, &r, true, &err), WS_TRANSIENT);
	assert_string_equal(err.msg, "test reader failed at byte 716800");
	assert_int_equal(store_stat(f->s, "w/obj", &st, &err), WS_NOT_FOUND);
	char *dir = xasprintf("%s/w", f->root);
	assert_int_equal(count_entries(dir), 0);
	free(dir);
	assert_int_equal(count_dot_files(f->root), 0);

	/* Same over an existing object: it stays as it was. */
	assert_int_equal(put_str(f->s, "w/obj", "kept"), 0);
	r = reader_of(data, len);
	r.fail_at = 300 * 1024;
	assert_int_equal(store_put(f->s, "w/obj", mem_read, &r, false, &err), WS_TRANSIENT);
	assert_object(f->s, "w/obj", "kept", 4);
	assert_int_equal(count_dot_files(f->root), 0);
	free(data);
}

static void raise_sigterm(void *arg)
{
	(void)arg;
	raise(SIGTERM);
}

static void test_sigterm_during_put_removes_the_temp_file(void **state)
{
	Fixture *f = *state;
	unsigned char *data = pattern(MIB, 6);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		WsError err;
		TestReader r = reader_of(data, MIB);
		r.during = raise_sigterm;
		cleanup_init(42);
		store_put(f->s, "t/obj", mem_read, &r, true, &err);
		_exit(0); /* not reached when the handler works */
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 42);
	char *dir = xasprintf("%s/t", f->root);
	assert_int_equal(count_entries(dir), 0);
	free(dir);
	free(data);
}

/*
 * Two processes put different content under one key with no_overwrite:
 * exactly one wins, the other sees EXISTS, the stored object is the winner's
 * whole content.
 */
static void race_rounds(const char *root, int rounds)
{
	enum { RACERS = 2 };
	unsigned char *content[RACERS];
	size_t size[RACERS];
	for (int i = 0; i < RACERS; i++) {
		size[i] = 150 * 1024 + (size_t)i * 4099;
		content[i] = pattern(size[i], (unsigned)i + 10);
	}

	for (int round = 0; round < rounds; round++) {
		char key[64];
		int go[2];
		pid_t pid[RACERS];
		snprintf(key, sizeof(key), "race/%d/obj", round);
		assert_int_equal(pipe(go), 0);

		for (int i = 0; i < RACERS; i++) {
			pid[i] = fork();
			assert_true(pid[i] >= 0);
			if (pid[i] == 0) {
				WsError err;
				Store *s = NULL;
				char c;
				close(go[1]);
				if (store_open(root, NULL, STORE_OPEN_DEFAULT, &s, &err) != 0)
					_exit(3);
				/* Wait for the parent to close its end: both start together. */
				if (read(go[0], &c, 1) != 0)
					_exit(4);
				int rc = put_bytes(s, key, content[i], size[i], true, &err);
				store_free(s);
				_exit(rc == 0 ? 0 : rc == WS_EXISTS ? 1 : 2);
			}
		}
		close(go[0]);
		close(go[1]);
		int winner = racers_one_winner(pid, RACERS);
		Store *s = NULL;
		WsError err;
		assert_int_equal(store_open(root, NULL, STORE_OPEN_DEFAULT, &s, &err), 0);
		assert_object(s, key, content[winner], size[winner]);
		store_free(s);
	}
	assert_int_equal(count_dot_files(root), 0);
	for (int i = 0; i < RACERS; i++)
		free(content[i]);
}

static void test_racing_no_overwrite_puts_one_wins(void **state)
{
	Fixture *f = *state;
	race_rounds(f->root, 50);
}

static void test_racing_no_overwrite_puts_one_wins_link_fallback(void **state)
{
	Fixture *f = *state;
	store_local_test_force_link_fallback(1);
	race_rounds(f->root, 50);
}

/* ---- list ---- */

static void assert_listing(Store *s, const char *prefix, const char *const *want)
{
	Collect c = {0};
	WsError err;
	int n = 0;
	assert_int_equal(store_list(s, prefix, collect, &c, &err), 0);
	while (want[n] != NULL)
		n++;
	if (c.n != n) {
		for (int i = 0; i < c.n; i++)
			print_message("listed %s\n", c.keys[i]);
	}
	assert_int_equal(c.n, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(c.keys[i], want[i]);
}

static void make_list_tree(Fixture *f)
{
	static const char *const keys[] = {"a/b", "a.x", "a/c/d", "a-b", "ab", "a/c.e", "b", NULL};
	for (int i = 0; keys[i] != NULL; i++)
		assert_int_equal(put_str(f->s, keys[i], keys[i]), 0);
	/* Temp files, a symlink, an empty directory and a name no key can have: never listed. */
	touch(f->root, ".hidden");
	touch(f->root, "a/.tmp");
	touch(f->root, "a/.b.tmp.AbCdEf");
	char *link = xasprintf("%s/a/link", f->root);
	assert_int_equal(symlink("b", link), 0);
	free(link);
	char *empty = xasprintf("%s/a/empty", f->root);
	assert_int_equal(mkdir(empty, 0700), 0);
	free(empty);
	char *lf = xasprintf("%s/lost+found", f->root);
	assert_int_equal(mkdir(lf, 0700), 0);
	free(lf);
	touch(f->root, "lost+found/x");
}

static void test_list_is_sorted_bytewise_and_filtered_by_prefix(void **state)
{
	Fixture *f = *state;
	make_list_tree(f);

	/* "a/c.e" < "a/c/d" because '.' < '/': directories sort as "name/". */
	const char *const all[] = {"a-b", "a.x", "a/b", "a/c.e", "a/c/d", "ab", "b", NULL};
	assert_listing(f->s, "", all);
	const char *const under_a_slash[] = {"a/b", "a/c.e", "a/c/d", NULL};
	assert_listing(f->s, "a/", under_a_slash);
	const char *const starting_a[] = {"a-b", "a.x", "a/b", "a/c.e", "a/c/d", "ab", NULL};
	assert_listing(f->s, "a", starting_a);
	const char *const a_c[] = {"a/c.e", "a/c/d", NULL};
	assert_listing(f->s, "a/c", a_c);
	const char *const a_c_slash[] = {"a/c/d", NULL};
	assert_listing(f->s, "a/c/", a_c_slash);
	const char *const exact[] = {"a/b", NULL};
	assert_listing(f->s, "a/b", exact);
	const char *const none[] = {NULL};
	assert_listing(f->s, "zz", none);
	assert_listing(f->s, "nope/x/", none);
	assert_listing(f->s, "a/b/", none);
	assert_listing(f->s, "a/empty/", none);
	assert_listing(f->s, "a/link", none);
	assert_listing(f->s, ".", none);
	assert_listing(f->s, ".hidden/", none);

	Collect c = {0};
	WsError err;
	assert_int_equal(store_list(f->s, "a.x", collect, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.st[0].size, 3);
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
		assert_int_equal(put_str(f->s, keys[i], "w"), 0);
	const char *const tli1[] = {
		"15-1/wal/00000001.history",
		"15-1/wal/0000000100000000/000000010000000000000001",
		"15-1/wal/0000000100000000/000000010000000000000002",
		"15-1/wal/0000000100000001/000000010000000100000000",
		NULL,
	};
	assert_listing(f->s, "15-1/wal/00000001", tli1);
}

static void test_list_stops_when_callback_returns_non_zero(void **state)
{
	Fixture *f = *state;
	WsError err;
	make_list_tree(f);
	Collect c = {.stop_after = 2};
	assert_int_equal(store_list(f->s, "", collect, &c, &err), 7);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.keys[1], "a.x");

	/* Also when the stop comes from inside a subdirectory. */
	Collect c2 = {.stop_after = 4};
	assert_int_equal(store_list(f->s, "", collect, &c2, &err), 7);
	assert_int_equal(c2.n, 4);
	assert_string_equal(c2.keys[3], "a/c.e");
}

/* ---- remove ---- */

static void test_remove_then_not_found(void **state)
{
	Fixture *f = *state;
	WsError err;
	StoreStat st;
	assert_int_equal(put_str(f->s, "r/obj", "x"), 0);
	assert_int_equal(store_remove(f->s, "r/obj", &err), 0);
	assert_int_equal(store_stat(f->s, "r/obj", &st, &err), WS_NOT_FOUND);
	assert_int_equal(store_remove(f->s, "r/obj", &err), WS_NOT_FOUND);
	char *want = xasprintf("object \"r/obj\" not found in repository \"%s\"", f->root);
	assert_string_equal(err.msg, want);
	free(want);
	/* The emptied directory stays (a later prune may remove it); a directory is no object. */
	char *dir = xasprintf("%s/r", f->root);
	assert_int_equal(access(dir, F_OK), 0);
	free(dir);
	assert_int_equal(store_remove(f->s, "r", &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "is a directory"));
}

/* ---- keys ---- */

static void test_bad_keys_are_usage_errors(void **state)
{
	Fixture *f = *state;
	static const char *const bad[] = {"../x", "/abs", "a//b", "a/./b", "",     "a b",         "a/",
					  "a/..", ".",    "..",   "x\n",   "a\\b", "caf\xc3\xa9", NULL};
	WsError err;
	StoreStat st;
	MemSink sink;
	for (int i = 0; bad[i] != NULL; i++) {
		assert_int_equal(store_key_check(bad[i], &err), WS_USAGE);
		assert_int_equal(put_bytes(f->s, bad[i], "x", 1, true, &err), WS_USAGE);
		assert_int_equal(get_window(f->s, bad[i], 0, STORE_TO_END, &sink, &err), WS_USAGE);
		assert_int_equal(store_stat(f->s, bad[i], &st, &err), WS_USAGE);
		assert_int_equal(store_remove(f->s, bad[i], &err), WS_USAGE);
	}
	assert_int_equal(count_entries(f->root), 0);
	assert_int_equal(store_key_check("../x", &err), WS_USAGE);
	assert_non_null(strstr(err.msg, "\"../x\""));

	static const char *const good[] = {"a",         "a.b", "x/y/z", "15-1/wal/00000001.history",
					   "A_b@c-d.e", NULL};
	for (int i = 0; good[i] != NULL; i++)
		assert_int_equal(store_key_check(good[i], &err), 0);

	char longkey[STORE_KEY_MAX + 1];
	memset(longkey, 'k', sizeof(longkey));
	for (size_t i = 200; i < STORE_KEY_MAX; i += 200)
		longkey[i] = '/';
	longkey[STORE_KEY_MAX - 1] = '\0';
	assert_int_equal(store_key_check(longkey, &err), 0);
	longkey[STORE_KEY_MAX - 1] = 'k';
	longkey[STORE_KEY_MAX] = '\0';
	assert_int_equal(store_key_check(longkey, &err), WS_USAGE);

	/* Listing prefixes: "" and a trailing '/' are fine, the rest follows the key rules. */
	Collect c = {0};
	assert_int_equal(store_list(f->s, "", collect, &c, &err), 0);
	assert_int_equal(store_list(f->s, "a/", collect, &c, &err), 0);
	assert_int_equal(store_list(f->s, "../", collect, &c, &err), WS_USAGE);
	assert_int_equal(store_list(f->s, "/a", collect, &c, &err), WS_USAGE);
	assert_int_equal(store_list(f->s, "a//", collect, &c, &err), WS_USAGE);
	assert_int_equal(store_list(f->s, "a b", collect, &c, &err), WS_USAGE);
	assert_int_equal(c.n, 0);
}

static void test_dot_keys_are_refused_by_local_driver(void **state)
{
	Fixture *f = *state;
	WsError err;
	/* Valid keys by the general rules, but a local temp-file name that list would never show. */
	assert_int_equal(store_key_check(".hidden", &err), 0);
	assert_int_equal(put_bytes(f->s, ".hidden", "x", 1, true, &err), WS_USAGE);
	assert_int_equal(put_bytes(f->s, "a/.tmp", "x", 1, true, &err), WS_USAGE);
	assert_int_equal(count_entries(f->root), 0);
}

/* ---- a full filesystem ---- */

static void test_put_on_full_filesystem_is_fatal_and_cleans_up(void **state)
{
	Fixture *f = *state;
	WsError err;
	Store *s = NULL;
	char *mnt = xasprintf("%s/small", f->root);
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") != 0) {
		print_message("cannot mount a tmpfs (%s): skipping the full-filesystem case\n",
			      strerror(errno));
		free(mnt);
		skip();
		return;
	}
	unsigned char *data = pattern(MIB, 5);
	assert_int_equal(store_open(mnt, NULL, STORE_OPEN_DEFAULT, &s, &err), 0);
	int rc = put_bytes(s, "wal/big", data, MIB, true, &err);
	int dots = count_dot_files(mnt);
	char *walpath = xasprintf("%s/wal", mnt);
	int in_wal = count_entries(walpath);
	free(walpath);
	store_free(s);
	umount(mnt);

	assert_int_equal(rc, WS_FATAL);
	char *want =
		xasprintf("could not write \"wal/big\" to repository \"%s\": No space left on device", mnt);
	assert_string_equal(err.msg, want);
	assert_non_null(strstr(err.hint, "Free space"));
	assert_int_equal(dots, 0);
	assert_int_equal(in_wal, 0);
	free(want);
	free(mnt);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_open_missing_root_is_fatal_with_mount_hint),
		T(test_open_create_makes_root_and_parents),
		T(test_open_root_that_is_a_file_is_fatal),
		T(test_open_unreadable_root_is_fatal_with_user_hint),
		T(test_open_url_forms),
		T(test_put_get_roundtrip_empty_small_and_large),
		T(test_put_creates_parent_directories_0750),
		T(test_put_as_root_gives_new_files_and_directories_to_the_owner),
		T(test_put_over_a_file_component_is_fatal),
		T(test_put_writes_a_dot_temp_file_beside_the_final_name),
		T(test_put_long_last_component),
		T(test_get_windows),
		T(test_get_sink_error_passes_through),
		T(test_missing_object_is_not_found),
		T(test_vanished_root_is_fatal_not_not_found),
		T(test_symlink_or_fifo_at_a_key_is_fatal),
		T(test_damage_is_never_not_found),
		T(test_stat_reports_size_and_mtime),
		T(test_no_overwrite_existing_key_is_exists),
		T(test_no_overwrite_existing_key_is_exists_link_fallback),
		T(test_overwrite_replaces),
		T(test_reader_failure_leaves_no_object_and_no_temp),
		T(test_sigterm_during_put_removes_the_temp_file),
		T(test_racing_no_overwrite_puts_one_wins),
		T(test_racing_no_overwrite_puts_one_wins_link_fallback),
		T(test_list_is_sorted_bytewise_and_filtered_by_prefix),
		T(test_list_partial_wal_prefix),
		T(test_list_stops_when_callback_returns_non_zero),
		T(test_remove_then_not_found),
		T(test_bad_keys_are_usage_errors),
		T(test_dot_keys_are_refused_by_local_driver),
		T(test_put_on_full_filesystem_is_fatal_and_cleans_up),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
