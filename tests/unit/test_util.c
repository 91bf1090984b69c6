/*
 * test_util.c - the small helpers under src/util: CRC-32C, string helpers,
 * the error struct, path helpers, durable mkdir, the log line format and the
 * signal cleanup of the hook programs.
 *
 * Log and signal tests run in a forked child so that redirected stderr,
 * handlers and _exit stay out of the test runner.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/crc32c.h"
#include "util/dirwalk.h"
#include "util/error.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"

typedef struct TempDir {
	char path[64];
} TempDir;

static int setup_dir(void **state)
{
	TempDir *d = xcalloc(1, sizeof(*d));
	strcpy(d->path, "/tmp/walship-test-util-XXXXXX");
	if (mkdtemp(d->path) == NULL) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int teardown_dir(void **state)
{
	TempDir *d = *state;
	char *cmd = xasprintf("rm -rf '%s'", d->path);
	int rc = system(cmd);
	free(cmd);
	free(d);
	return rc == 0 ? 0 : -1;
}

static bool path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- crc32c ---- */

static void test_crc32c_known_vectors(void **state)
{
	(void)state;
	unsigned char zeros[32] = {0};
	unsigned char ones[32];
	memset(ones, 0xFF, sizeof(ones));
	assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c(zeros, sizeof(zeros)), 0x8A9136AAu);
	/* RFC 3720 (iSCSI) B.4: 32 bytes of 0xFF. */
	assert_int_equal(crc32c(ones, sizeof(ones)), 0x62A8AB43u);
	assert_int_equal(crc32c("", 0), 0x00000000u);
	assert_int_equal(crc32c_final(crc32c_update(CRC32C_INIT, "123456789", 9)), 0xE3069283u);
}

/* Bitwise reference: the definition, independent of tables and CPU instructions. */
static uint32_t crc32c_reference(const unsigned char *p, size_t len)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
	}
	return c ^ 0xFFFFFFFFu;
}

static void test_crc32c_incremental_equals_one_shot(void **state)
{
	(void)state;
	unsigned char buf[128];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)(x >> 16);
	}
	for (size_t start = 0; start < 8; start++) {
		for (size_t len = 0; len <= 100; len++) {
			const unsigned char *p = buf + start; /* unaligned starts */
			uint32_t want = crc32c_reference(p, len);
			assert_int_equal(crc32c(p, len), want);
			for (size_t split = 0; split <= len; split++) {
				uint32_t c = crc32c_update(CRC32C_INIT, p, split);
				c = crc32c_update(c, p + split, len - split);
				assert_int_equal(crc32c_final(c), want);
			}
		}
	}
}

/* ---- mem ---- */

static void test_hex_encode(void **state)
{
	(void)state;
	const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
	char out[2 * sizeof(in) + 1];
	memset(out, 'x', sizeof(out));
	hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "00017f80abff");
	hex_encode(in, 0, out);
	assert_string_equal(out, "");
}

static void test_str_format_reports_truncation(void **state)
{
	(void)state;
	char buf[8];
	assert_int_equal(str_format(buf, sizeof(buf), "%s", "1234567"), 0);
	assert_string_equal(buf, "1234567");
	assert_int_equal(str_format(buf, sizeof(buf), "%s-%d", "abcd", 1234), -1);
	assert_string_equal(buf, "abcd-12"); /* truncated but terminated */
	assert_int_equal(str_format(buf, sizeof(buf), "%s", ""), 0);
	assert_string_equal(buf, "");
}

static void test_xstrndup_and_xasprintf(void **state)
{
	(void)state;
	char *s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	s = xstrndup("ab", 10);
	assert_string_equal(s, "ab");
	free(s);
	s = xasprintf("%s/%05d", "wal", 42);
	assert_string_equal(s, "wal/00042");
	free(s);
}

/* ---- error ---- */

static void test_ws_error_fills_struct(void **state)
{
	(void)state;
	WsError err;
	ws_error_clear(&err);
	assert_int_equal(err.cls, WS_OK);
	assert_string_equal(err.msg, "");

	assert_int_equal(ws_error(&err, WS_FATAL, "could not open file \"%s\"", "x"), WS_FATAL);
	assert_int_equal(err.cls, WS_FATAL);
	assert_int_equal(err.errnum, 0);
	assert_string_equal(err.msg, "could not open file \"x\"");

	ws_error_detail(&err, "Detail %d.", 1);
	ws_error_hint(&err, "Hint %s.", "h");
	assert_string_equal(err.detail, "Detail 1.");
	assert_string_equal(err.hint, "Hint h.");
	ws_error_prefix(&err, "while pushing \"%s\"", "000000010000000000000001");
	assert_string_equal(err.msg, "while pushing \"000000010000000000000001\": could not open file \"x\"");
	assert_int_equal(err.cls, WS_FATAL);
	assert_string_equal(err.detail, "Detail 1.");
	assert_string_equal(err.hint, "Hint h.");

	/* A new error starts clean: no stale detail or hint. */
	assert_int_equal(ws_error_errno(&err, WS_TRANSIENT, ENOENT, "could not stat \"%s\"", "y"),
			 WS_TRANSIENT);
	assert_int_equal(err.cls, WS_TRANSIENT);
	assert_int_equal(err.errnum, ENOENT);
	assert_string_equal(err.msg, "could not stat \"y\": No such file or directory");
	assert_string_equal(err.detail, "");
	assert_string_equal(err.hint, "");

	/* NULL is allowed everywhere. */
	assert_int_equal(ws_error(NULL, WS_USAGE, "x"), WS_USAGE);
	assert_int_equal(ws_error_errno(NULL, WS_FATAL, EIO, "x"), WS_FATAL);
	ws_error_detail(NULL, "x");
	ws_error_hint(NULL, "x");
	ws_error_prefix(NULL, "x");
	ws_error_clear(NULL);

	assert_string_equal(ws_status_name(WS_NOT_FOUND), "not found");
	assert_string_equal(ws_status_name(WS_OK), "ok");
	assert_string_equal(ws_status_name(12345), "unknown");
}

static void test_ws_error_long_message_is_truncated_and_terminated(void **state)
{
	(void)state;
	WsError err;
	char big[3 * WS_ERROR_TEXT];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ws_error(&err, WS_FATAL, "%s", big);
	assert_int_equal(strlen(err.msg), WS_ERROR_TEXT - 1);
	ws_error_prefix(&err, "p");
	assert_int_equal(strlen(err.msg), WS_ERROR_TEXT - 1);
	assert_memory_equal(err.msg, "p: aaa", 6);
}

/* ---- fsutil ---- */

static void test_fs_dirname_basename(void **state)
{
	(void)state;
	static const struct {
		const char *path, *dir, *base;
	} cases[] = {
		{"/a/b/c", "/a/b", "c"},
		{"a/b", "a", "b"},
		{"file", ".", "file"},
		{"/file", "/", "file"},
		{"/", "/", ""},
		{"a//b", "a", "b"},
		{"pg_wal/000000010000000000000001", "pg_wal", "000000010000000000000001"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *dir = fs_dirname(cases[i].path);
		assert_string_equal(dir, cases[i].dir);
		assert_string_equal(fs_basename(cases[i].path), cases[i].base);
		free(dir);
	}
}

static void test_fs_mkdir_durable_creates_nested_dirs(void **state)
{
	TempDir *d = *state;
	WsError err;
	bool created = false;
	char *deep = xasprintf("%s/a/b/c", d->path);
	assert_int_equal(fs_mkdir_durable(deep, 0700, &created, &err), 0);
	assert_true(created);
	struct stat st;
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);

	/* Existing: fine, nothing created. */
	created = true;
	assert_int_equal(fs_mkdir_durable(deep, 0700, &created, &err), 0);
	assert_false(created);

	/* A file in the way is an error naming it. */
	char *file = xasprintf("%s/plain", d->path);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fs_mkdir_durable(file, 0700, NULL, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, file));
	free(file);
	free(deep);
}

static void test_fs_read_small(void **state)
{
	TempDir *d = *state;
	WsError err;
	char *path = xasprintf("%s/small", d->path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_write_all(fd, "hello", 5), 0);
	close(fd);

	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(fs_read_small(path, 16, &buf, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_string_equal(buf, "hello");
	free(buf);
	assert_int_equal(fs_read_small(path, 4, &buf, &len, &err), WS_FATAL);
	char *missing = xasprintf("%s/none", d->path);
	assert_int_equal(fs_read_small(missing, 4, &buf, &len, &err), WS_NOT_FOUND);
	free(missing);
	free(path);
}

static void test_fs_write_file_replaces_whole(void **state)
{
	TempDir *d = *state;
	WsError err;
	char *path = xasprintf("%s/conf", d->path);
	FsFileOpts o = {.mode = 0640, .durable = true};
	char *buf = NULL;
	struct stat st;

	assert_int_equal(fs_write_file(path, "one\n", 4, &o, &err), 0);
	assert_int_equal(fs_write_file(path, "second\n", 7, &o, &err), 0);
	assert_int_equal(fs_read_small(path, 64, &buf, NULL, &err), 0);
	assert_string_equal(buf, "second\n");
	free(buf);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	/* The owner it has already: nothing to change, also without root. */
	o.chown = true;
	o.uid = st.st_uid;
	o.gid = st.st_gid;
	assert_int_equal(fs_write_file(path, "", 0, &o, &err), 0);

	/* Nothing but the file is left in the directory, and a failure leaves no temp file. */
	char *bad = xasprintf("%s/no-such-dir/conf", d->path);
	assert_int_equal(fs_write_file(bad, "x", 1, &o, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, bad));
	int n = 0;
	DIR *dir = opendir(d->path);
	struct dirent *de;
	while ((de = readdir(dir)) != NULL)
		n += de->d_name[0] != '.';
	closedir(dir);
	assert_int_equal(n, 1);
	assert_int_equal(fs_dir_is_empty(d->path), 0);
	free(bad);
	free(path);
}

static void test_fs_remove_contents_and_empty(void **state)
{
	TempDir *d = *state;
	WsError err;
	char *deep = xasprintf("%s/top/a/b", d->path);
	char *top = xasprintf("%s/top", d->path);
	char *file = xasprintf("%s/top/a/f", d->path);
	char *outside = xasprintf("%s/outside", d->path);
	char *link = xasprintf("%s/top/link", d->path);
	FsFileOpts o = {.mode = 0600};

	assert_int_equal(fs_mkdir_durable(deep, 0700, NULL, &err), 0);
	assert_int_equal(fs_mkdir_durable(outside, 0700, NULL, &err), 0);
	assert_int_equal(fs_write_file(file, "x", 1, &o, &err), 0);
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(fs_dir_is_empty(top), 0);
	int fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fs_remove_contents(fd, top, &err), 0);
	assert_int_equal(fs_dir_is_empty(top), 1);
	/* The link went, never what it points to. */
	assert_true(path_exists(outside));
	assert_int_equal(fs_dir_is_empty(deep), -1);
	free(link);
	free(outside);
	free(file);
	free(top);
	free(deep);
}

static void test_fs_resolve_and_within(void **state)
{
	TempDir *d = *state;
	char *real = realpath(d->path, NULL);
	char *missing = xasprintf("%s/not/yet", d->path);
	char *want = xasprintf("%s/not/yet", real);
	char *r = fs_resolve(missing);
	assert_non_null(r);
	assert_string_equal(r, want);
	assert_true(fs_path_within(r, real));
	assert_true(fs_path_within(real, real));
	assert_true(fs_path_within(real, "/"));
	assert_false(fs_path_within("/tmp/ab", "/tmp/a"));
	assert_false(fs_path_within("/tmp", "/tmp/a"));
	/* a directory named with trailing slashes is the same directory */
	assert_true(fs_path_within("/tmp/a/b", "/tmp/a/"));
	assert_true(fs_path_within("/tmp/a", "/tmp/a//"));
	assert_false(fs_path_within("/tmp/ab", "/tmp/a/"));
	assert_true(fs_path_within("/tmp", "//"));
	free(r);
	free(want);
	free(missing);
	free(real);
}

/*
 * fs_close_from in a child: descriptors 10 to 13 and 40 open, then everything
 * from 11 up closed but 12.  Exit status: 0, or the first descriptor found in
 * the wrong state.
 */
static int close_from_child(int fallback)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		const int fds[] = {10, 11, 12, 13, 40};
		for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if (null < 0 || dup2(null, fds[i]) != fds[i])
				_exit(100);
		fs_close_from_test_fallback = fallback;
		fs_close_from(11, 12);
		if (fcntl(10, F_GETFD) < 0)
			_exit(10);
		if (fcntl(12, F_GETFD) < 0)
			_exit(12);
		for (int fd = 11; fd < 64; fd++)
			if (fd != 12 && fcntl(fd, F_GETFD) >= 0)
				_exit(fd);
		_exit(0);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void test_fs_close_from_keeps_one(void **state)
{
	(void)state;
	assert_int_equal(close_from_child(0), 0); /* close_range */
	assert_int_equal(close_from_child(1), 0); /* as before Linux 5.9: /proc/self/fd */
	assert_int_equal(close_from_child(2), 0); /* neither: every number up to the limit */
}

/* ---- dirwalk ---- */

/* A tree as a driver would read it: "dir/" entries hold the keys below them. */
static const char *const tree_keys[] = {"ab", "a-b", "a/b", "a/c/d", "b", NULL};

static int tree_read(void *ctx, const char *key, size_t keylen, const char *filter, DirList *l, WsError *err)
{
	(void)ctx, (void)err;
	/* In directory order, not key order: the walk sorts. */
	for (int i = 4; i >= 0; i--) {
		const char *k = tree_keys[i];
		if (strncmp(k, key, keylen) != 0)
			continue;
		const char *rest = k + keylen, *slash = strchr(rest, '/');
		char name[16];
		snprintf(name, sizeof(name), "%.*s", (int)(slash ? slash - rest : (long)strlen(rest)), rest);
		if (filter && strncmp(name, filter, strlen(filter)) != 0)
			continue;
		bool seen = false;
		for (size_t j = 0; j < l->n; j++)
			seen = seen || strncmp(l->v[j].name, name, strlen(name)) == 0;
		if (!seen)
			dir_list_add(l, name, slash != NULL, strlen(k), i);
	}
	return 0;
}

static int tree_file(void *ctx, const char *key, uint64_t size, int64_t mtime, WsError *err)
{
	char *out = ctx;
	(void)err;
	assert_int_equal(size, strlen(key));
	assert_string_equal(tree_keys[mtime], key);
	strcat(out, key);
	strcat(out, " ");
	return strcmp(key, "b") == 0 ? 7 : 0;
}

static void test_dir_walk_in_key_order(void **state)
{
	char key[64] = "", out[128] = "";
	WsError err;
	(void)state;
	assert_int_equal(dir_walk(key, 0, NULL, tree_read, tree_file, out, &err), 7);
	assert_string_equal(out, "a-b a/b a/c/d ab b ");
	assert_string_equal(key, "");
	out[0] = '\0';
	assert_int_equal(dir_walk(key, 0, "a", tree_read, tree_file, out, &err), 0);
	assert_string_equal(out, "a-b a/b a/c/d ab ");
	out[0] = '\0';
	strcpy(key, "a/");
	assert_int_equal(dir_walk(key, 2, "c", tree_read, tree_file, out, &err), 0);
	assert_string_equal(out, "a/c/d ");
	assert_string_equal(key, "a/");
}

/* ---- log ---- */

/* Run fn in a child whose stderr goes to a file; return what it wrote (malloc'd). */
static char *capture_stderr(const char *dir, void (*fn)(void))
{
	char *path = xasprintf("%s/stderr", dir);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(99);
		fn();
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	char *out = NULL;
	WsError err;
	assert_int_equal(fs_read_small(path, 65536, &out, NULL, &err), 0);
	unlink(path);
	free(path);
	return out;
}

static void log_lines_child(void)
{
	log_init("walship-push");
	log_error("could not x \"%s\"", "f");
	log_detail("d");
	log_hint("h");
	log_info("info is below the default level");
	log_detail("detail of a dropped message");
	log_hint("hint of a dropped message");
	log_warning("first line\nsecond line");
	log_debug("debug is dropped too");
	WsError err;
	ws_error(&err, WS_FATAL, "could not open \"%s\"", "repo");
	ws_error_hint(&err, "Check it.");
	log_report(&err);
	log_set_level(LOG_LEVEL_INFO);
	log_info("now shown");
}

static void test_log_line_format(void **state)
{
	TempDir *d = *state;
	char *out = capture_stderr(d->path, log_lines_child);
	assert_string_equal(out, "walship-push: error: could not x \"f\"\n"
				 "walship-push: detail: d\n"
				 "walship-push: hint: h\n"
				 "walship-push: warning: first line second line\n"
				 "walship-push: error: could not open \"repo\"\n"
				 "walship-push: hint: Check it.\n"
				 "walship-push: info: now shown\n");
	free(out);
}

static void log_error_level_child(void)
{
	log_init("walship-fetch");
	log_set_level(LOG_LEVEL_ERROR);
	log_warning("hidden");
	log_hint("hidden hint");
	log_error("shown\nfolded");
}

static void test_log_errors_always_printed(void **state)
{
	TempDir *d = *state;
	assert_int_equal(log_level_parse("debug"), LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_parse("WARNING"), LOG_LEVEL_WARNING);
	assert_int_equal(log_level_parse("loud"), -1);
	char *out = capture_stderr(d->path, log_error_level_child);
	assert_string_equal(out, "walship-fetch: error: shown folded\n");
	free(out);
}

/* ---- cleanup ---- */

/* Fork a child that registers tmp (and keep, unregistered), then raises signo. */
static int signal_child(const char *tmp, const char *keep, int exit_code, int signo)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cleanup_init(exit_code);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0)
			_exit(97);
		close(fd);
		fd = open(keep, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0)
			_exit(97);
		close(fd);
		int kept = cleanup_register(keep);
		if (cleanup_register(tmp) < 0 || kept < 0)
			_exit(98);
		cleanup_unregister(kept); /* e.g. renamed into place: must survive */
		raise(signo);
		_exit(96); /* not reached if the handler works */
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void test_cleanup_sigterm_removes_files_and_exits(void **state)
{
	TempDir *d = *state;
	char *tmp = xasprintf("%s/tmp.1", d->path);
	char *keep = xasprintf("%s/kept.1", d->path);
	int status = signal_child(tmp, keep, 1, SIGTERM);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_false(path_exists(tmp));
	assert_true(path_exists(keep));

	free(tmp);
	free(keep);
	tmp = xasprintf("%s/tmp.2", d->path);
	keep = xasprintf("%s/kept.2", d->path);
	status = signal_child(tmp, keep, 200, SIGINT);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 200);
	assert_false(path_exists(tmp));
	assert_true(path_exists(keep));
	free(tmp);
	free(keep);
}

/* A signal held over a step is answered after it, with the exit code set meanwhile. */
static int held_signal_child(int set_code)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cleanup_init(200);
		cleanup_hold();
		raise(SIGTERM);
		/* Still here: the signal waits.  The step completes. */
		if (set_code)
			cleanup_set_exit_code(0);
		cleanup_release();
		_exit(96); /* not reached: the held signal ends the process at release */
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void test_cleanup_hold_defers_the_signal(void **state)
{
	(void)state;
	int status = held_signal_child(1);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	status = held_signal_child(0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 200);
}

static void test_cleanup_sigpipe_ignored(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int p[2];
		cleanup_init(1);
		if (pipe(p) != 0)
			_exit(97);
		close(p[0]);
		ssize_t n = write(p[1], "x", 1);
		_exit(n < 0 && errno == EPIPE ? 0 : 98);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_false(WIFSIGNALED(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A thread creating and removing temp files without pause, as parallel push workers do. */
static void *create_loop(void *arg)
{
	const char *dir = arg;
	char prev[256] = "";
	int prev_slot = -1;
	for (;;) {
		char path[256];
		int slot;
		snprintf(path, sizeof(path), "%s/.t.XXXXXX", dir);
		int fd = cleanup_create(path, O_WRONLY | O_CLOEXEC, 0600, &slot);
		if (fd < 0)
			continue;
		close(fd);
		if (prev[0] != '\0') {
			unlink(prev);
			cleanup_unregister(prev_slot);
		}
		memcpy(prev, path, sizeof(prev));
		prev_slot = slot;
	}
	return NULL;
}

/* SIGTERM at random moments while another thread creates temp files: none is ever left. */
static void test_cleanup_create_leaves_nothing_on_a_signal(void **state)
{
	TempDir *d = *state;
	char *t = xasprintf("%s/x.XXXXXX", d->path);
	int slot;
	mode_t old_mask = umask(022);
	int fd = cleanup_create(t, O_WRONLY | O_CLOEXEC, 0640, &slot);
	umask(old_mask);
	assert_true(fd >= 0 && slot >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_null(strstr(t, "XXXXXX"));
	close(fd);
	char *fixed = xstrdup(t);
	int slot2;
	assert_int_equal(cleanup_create(fixed, O_WRONLY, 0600, &slot2), -1); /* not a template: EEXIST */
	assert_int_equal(errno, EEXIST);
	unlink(t);
	cleanup_unregister(slot);
	free(fixed);
	free(t);

	for (int trial = 0; trial < 100; trial++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			cleanup_init(1);
			pthread_t th;
			if (pthread_create(&th, NULL, create_loop, d->path) != 0)
				_exit(97);
			struct timespec ts = {0, (trial % 10) * 50000 + 10000};
			nanosleep(&ts, NULL);
			kill(getpid(), SIGTERM);
			for (;;)
				pause();
		}
		int status = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
		DIR *dir = opendir(d->path);
		struct dirent *e;
		while ((e = readdir(dir)) != NULL)
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				fail_msg("trial %d: \"%s\" was left after SIGTERM", trial, e->d_name);
		closedir(dir);
	}
}

static void test_cleanup_slots_fill_and_free(void **state)
{
	(void)state;
	int slots[CLEANUP_SLOTS];
	for (int i = 0; i < CLEANUP_SLOTS; i++) {
		slots[i] = cleanup_register("/nonexistent/walship-test");
		assert_true(slots[i] >= 0);
	}
	assert_int_equal(cleanup_register("/nonexistent/one-too-many"), -1);
	cleanup_unregister(slots[3]);
	int again = cleanup_register("/nonexistent/again");
	assert_int_equal(again, slots[3]);
	for (int i = 0; i < CLEANUP_SLOTS; i++)
		cleanup_unregister(slots[i]);

	char *long_path = xmalloc(CLEANUP_PATH_MAX + 1);
	memset(long_path, 'a', CLEANUP_PATH_MAX);
	long_path[CLEANUP_PATH_MAX] = '\0';
	assert_int_equal(cleanup_register(long_path), -1);
	free(long_path);
	assert_int_equal(cleanup_register(NULL), -1);
	cleanup_unregister(-1);
	cleanup_unregister(CLEANUP_SLOTS);
	assert_int_equal(cleanup_interrupted(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_known_vectors),
		cmocka_unit_test(test_crc32c_incremental_equals_one_shot),
		cmocka_unit_test(test_hex_encode),
		cmocka_unit_test(test_str_format_reports_truncation),
		cmocka_unit_test(test_xstrndup_and_xasprintf),
		cmocka_unit_test(test_ws_error_fills_struct),
		cmocka_unit_test(test_ws_error_long_message_is_truncated_and_terminated),
		cmocka_unit_test(test_fs_dirname_basename),
		cmocka_unit_test_setup_teardown(test_fs_mkdir_durable_creates_nested_dirs, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_fs_read_small, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_fs_write_file_replaces_whole, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_fs_remove_contents_and_empty, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_fs_resolve_and_within, setup_dir, teardown_dir),
		cmocka_unit_test(test_fs_close_from_keeps_one),
		cmocka_unit_test(test_dir_walk_in_key_order),
		cmocka_unit_test_setup_teardown(test_log_line_format, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_log_errors_always_printed, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_cleanup_sigterm_removes_files_and_exits, setup_dir,
						teardown_dir),
		cmocka_unit_test(test_cleanup_hold_defers_the_signal),
		cmocka_unit_test(test_cleanup_sigpipe_ignored),
		cmocka_unit_test(test_cleanup_slots_fill_and_free),
		cmocka_unit_test_setup_teardown(test_cleanup_create_leaves_nothing_on_a_signal, setup_dir,
						teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
