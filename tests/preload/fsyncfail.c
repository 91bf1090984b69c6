/*
 * fsyncfail.c - an LD_PRELOAD shim for the tests (test_fsync.py): it logs
 * every sync, rename and link a program makes, with resolved paths, and can
 * fail syncs with EIO or kill the program right after a rename, so that
 * tests can prove that nothing answers "stored" before its syncs are done.
 *
 * Built by the Makefile as $(BUILD)/tests/fsyncfail.so.  Settings, all from
 * the environment:
 *   WALSHIP_FSYNCFAIL_LOG   append one line per call to this file:
 *                           "PID fsync PATH = RC", "PID rename FROM -> TO = RC",
 *                           "PID kill TO", "PID arm TO" (also fdatasync, syncfs,
 *                           sync_file_range, sync, renameat, renameat2,
 *                           link, linkat)
 *   WALSHIP_FSYNCFAIL_EIO   fnmatch(3) patterns, ':'-separated: a sync of a
 *                           matching path fails with EIO without syncing
 *   WALSHIP_FSYNCFAIL_ARM   fnmatch(3) patterns: when set, EIO is injected
 *                           only once a rename or link into a matching path
 *                           has succeeded (to fail the directory sync that
 *                           follows one particular rename)
 *   WALSHIP_FSYNCFAIL_KILL  fnmatch(3) patterns: SIGKILL right after a
 *                           rename or link into a matching path succeeds
 * Paths are absolute, with the directories resolved (realpath) and the last
 * component as named; a descriptor's path is its /proc/self/fd link.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_LEN (3 * PATH_MAX)

/* The C library's own functions, resolved once when the shim is loaded. */
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static int (*real_sync_file_range)(int, off_t, off_t, unsigned int);
static void (*real_sync)(void);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_rename)(const char *, const char *);
static int (*real_linkat)(int, const char *, int, const char *, int);
static int (*real_link)(const char *, const char *);

static void *real(const char *name)
{
	void *fn = dlsym(RTLD_NEXT, name);
	if (fn == NULL) {
		static const char msg[] = "fsyncfail: a symbol is missing from the C library\n";
		(void)write(2, msg, sizeof(msg) - 1);
		abort();
	}
	return fn;
}

__attribute__((constructor)) static void resolve_all(void)
{
	real_fsync = (int (*)(int))real("fsync");
	real_fdatasync = (int (*)(int))real("fdatasync");
	real_syncfs = (int (*)(int))real("syncfs");
	real_sync_file_range = (int (*)(int, off_t, off_t, unsigned int))real("sync_file_range");
	real_sync = (void (*)(void))real("sync");
	real_renameat2 = (int (*)(int, const char *, int, const char *, unsigned int))real("renameat2");
	real_renameat = (int (*)(int, const char *, int, const char *))real("renameat");
	real_rename = (int (*)(const char *, const char *))real("rename");
	real_linkat = (int (*)(int, const char *, int, const char *, int))real("linkat");
	real_link = (int (*)(const char *, const char *))real("link");
}

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void log_line(const char *fmt, ...)
{
	const char *path = getenv("WALSHIP_FSYNCFAIL_LOG");
	char line[LINE_MAX_LEN];
	int saved = errno;
	if (path == NULL || path[0] == '\0')
		return;
	int n = snprintf(line, sizeof(line), "%ld ", (long)getpid());
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write with O_APPEND: lines of threads and processes never interleave. */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (fd >= 0) {
		(void)write(fd, line, (size_t)n);
		close(fd);
	}
	errno = saved;
}

static bool matches(const char *var, const char *path)
{
	const char *patterns = getenv(var);
	char buf[LINE_MAX_LEN];
	if (patterns == NULL || patterns[0] == '\0')
		return false;
	snprintf(buf, sizeof(buf), "%s", patterns);
	char *save = NULL;
	for (char *p = strtok_r(buf, ":", &save); p != NULL; p = strtok_r(NULL, ":", &save)) {
		if (fnmatch(p, path, 0) == 0)
			return true;
	}
	return false;
}

static void fd_path(int fd, char *out, size_t size)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, out, size - 1);
	if (n < 0)
		snprintf(out, size, "fd:%d", fd);
	else
		out[n] = '\0';
}

/* dirfd + name as an absolute path, directories resolved, last component as named. */
static void name_path(int dirfd, const char *name, char *out, size_t size)
{
	char base[PATH_MAX] = "";
	char joined[LINE_MAX_LEN];
	if (name[0] == '/')
		snprintf(joined, sizeof(joined), "%s", name);
	else {
		if (dirfd == AT_FDCWD) {
			if (getcwd(base, sizeof(base)) == NULL)
				snprintf(base, sizeof(base), ".");
		} else {
			fd_path(dirfd, base, sizeof(base));
		}
		snprintf(joined, sizeof(joined), "%s/%s", base, name);
	}
	char *slash = strrchr(joined, '/');
	char dir[PATH_MAX];
	*slash = '\0';
	if (realpath(joined[0] ? joined : "/", dir) == NULL)
		snprintf(dir, sizeof(dir), "%s", joined);
	snprintf(out, size, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, slash + 1);
}

/* Set once a rename or link into a WALSHIP_FSYNCFAIL_ARM path succeeded. */
static volatile int armed;

/* Log a sync of fd; true (errno EIO) when it must fail instead. */
static bool sync_fails(const char *op, int fd)
{
	char path[PATH_MAX];
	const char *arm = getenv("WALSHIP_FSYNCFAIL_ARM");
	if (arm != NULL && arm[0] != '\0' && !__atomic_load_n(&armed, __ATOMIC_SEQ_CST))
		return false;
	fd_path(fd, path, sizeof(path));
	if (matches("WALSHIP_FSYNCFAIL_EIO", path)) {
		log_line("%s %s = EIO (injected)", op, path);
		errno = EIO;
		return true;
	}
	return false;
}

static int logged_sync(const char *op, int fd, int rc)
{
	char path[PATH_MAX];
	int saved = errno;
	fd_path(fd, path, sizeof(path));
	log_line("%s %s = %d", op, path, rc);
	errno = saved;
	return rc;
}

int fsync(int fd)
{
	if (sync_fails("fsync", fd))
		return -1;
	return logged_sync("fsync", fd, real_fsync(fd));
}

int fdatasync(int fd)
{
	if (sync_fails("fdatasync", fd))
		return -1;
	return logged_sync("fdatasync", fd, real_fdatasync(fd));
}

int syncfs(int fd)
{
	if (sync_fails("syncfs", fd))
		return -1;
	return logged_sync("syncfs", fd, real_syncfs(fd));
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags)
{
	if (sync_fails("sync_file_range", fd))
		return -1;
	return logged_sync("sync_file_range", fd, real_sync_file_range(fd, offset, nbytes, flags));
}

void sync(void)
{
	real_sync();
	log_line("sync - = 0");
}

/* Log a rename or link into to (resolved before the call: from may be gone after it); kill if asked. */
static int moved(const char *op, const char *from, const char *to, int rc)
{
	int saved = errno;
	log_line("%s %s -> %s = %d", op, from, to, rc);
	if (rc == 0 && matches("WALSHIP_FSYNCFAIL_ARM", to)) {
		log_line("arm %s", to);
		__atomic_store_n(&armed, 1, __ATOMIC_SEQ_CST);
	}
	if (rc == 0 && matches("WALSHIP_FSYNCFAIL_KILL", to)) {
		log_line("kill %s", to);
		kill(getpid(), SIGKILL);
	}
	errno = saved;
	return rc;
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)
{
	char from[LINE_MAX_LEN], to[LINE_MAX_LEN];
	name_path(olddirfd, oldpath, from, sizeof(from));
	name_path(newdirfd, newpath, to, sizeof(to));
	return moved("renameat2", from, to, real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags));
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
	char from[LINE_MAX_LEN], to[LINE_MAX_LEN];
	name_path(olddirfd, oldpath, from, sizeof(from));
	name_path(newdirfd, newpath, to, sizeof(to));
	return moved("renameat", from, to, real_renameat(olddirfd, oldpath, newdirfd, newpath));
}

int rename(const char *oldpath, const char *newpath)
{
	char from[LINE_MAX_LEN], to[LINE_MAX_LEN];
	name_path(AT_FDCWD, oldpath, from, sizeof(from));
	name_path(AT_FDCWD, newpath, to, sizeof(to));
	return moved("rename", from, to, real_rename(oldpath, newpath));
}

int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
{
	char from[LINE_MAX_LEN], to[LINE_MAX_LEN];
	name_path(olddirfd, oldpath, from, sizeof(from));
	name_path(newdirfd, newpath, to, sizeof(to));
	return moved("linkat", from, to, real_linkat(olddirfd, oldpath, newdirfd, newpath, flags));
}

int link(const char *oldpath, const char *newpath)
{
	char from[LINE_MAX_LEN], to[LINE_MAX_LEN];
	name_path(AT_FDCWD, oldpath, from, sizeof(from));
	name_path(AT_FDCWD, newpath, to, sizeof(to));
	return moved("link", from, to, real_link(oldpath, newpath));
}
