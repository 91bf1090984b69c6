/*
 * cleanup.c - remove temporary files and exit promptly on SIGTERM/SIGINT.
 *
 * The handler may run between any two instructions of the code that
 * registers a file, so a slot's path is written completely before its "used"
 * flag is raised, and the flag is lowered before the slot is given back.  The
 * handler touches only those flags, the fixed path buffers, unlink(2) and
 * _exit(2), all async-signal-safe.  Slots are claimed with an atomic
 * compare-and-swap so that worker threads may register files too.
 *
 * A file registered before it exists may still be created by another thread
 * after the handler, running in this one, removed the registered paths; one
 * created before it is registered can be left by a signal in between.
 * cleanup_create closes both windows: the creating thread holds the signals,
 * counts itself in "creating" and gives up if "exiting" is set; the handler
 * sets "exiting", waits until no thread is creating, and only then removes.
 */
#include "util/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

static char slot_path[CLEANUP_SLOTS][CLEANUP_PATH_MAX];
static volatile sig_atomic_t slot_used[CLEANUP_SLOTS]; /* read by the handler */
static atomic_int slot_claimed[CLEANUP_SLOTS];         /* owned by a registration */
static volatile sig_atomic_t interrupted;
static volatile sig_atomic_t signal_exit_code = 1;
static volatile sig_atomic_t fatal_exit_code = 1;
static atomic_int creating; /* threads inside cleanup_create's open(2) */
static atomic_int exiting;  /* set by the handler before it removes files */

static void unlink_registered(void)
{
	atomic_store(&exiting, 1);
	/* A creation under way in another thread ends in an open(2): wait for it, then its file goes too. */
	while (atomic_load(&creating) > 0) {
		struct timespec ts = {0, 100000};
		(void)nanosleep(&ts, NULL);
	}
	for (int i = 0; i < CLEANUP_SLOTS; i++) {
		if (slot_used[i]) {
			/* Pairs with the fence in cleanup_register if another thread filled the slot. */
			atomic_thread_fence(memory_order_acquire);
			(void)unlink(slot_path[i]);
		}
	}
}

static void on_signal(int signo)
{
	(void)signo;
	interrupted = 1;
	unlink_registered();
	_exit(signal_exit_code);
}

void cleanup_init(int exit_code)
{
	struct sigaction sa;

	signal_exit_code = exit_code;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGPIPE, &sa, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	/* While one signal cleans up, the other waits: no second pass over the slots. */
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGINT);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
}

static sigset_t held_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	return set;
}

void cleanup_hold(void)
{
	sigset_t set = held_signals();
	(void)sigprocmask(SIG_BLOCK, &set, NULL);
}

void cleanup_release(void)
{
	sigset_t set = held_signals();
	(void)sigprocmask(SIG_UNBLOCK, &set, NULL);
}

void cleanup_set_exit_code(int exit_code)
{
	signal_exit_code = exit_code;
}

int cleanup_register(const char *path)
{
	if (path == NULL)
		return -1;
	size_t len = strlen(path);
	if (len >= CLEANUP_PATH_MAX)
		return -1;
	for (int i = 0; i < CLEANUP_SLOTS; i++) {
		int expected = 0;
		if (!atomic_compare_exchange_strong(&slot_claimed[i], &expected, 1))
			continue;
		memcpy(slot_path[i], path, len + 1);
		/* Neither the compiler nor the CPU may raise the flag before the path is in place. */
		atomic_thread_fence(memory_order_release);
		slot_used[i] = 1;
		return i;
	}
	return -1;
}

void cleanup_unregister(int slot)
{
	if (slot < 0 || slot >= CLEANUP_SLOTS)
		return;
	slot_used[slot] = 0;
	atomic_thread_fence(memory_order_release);
	atomic_store(&slot_claimed[slot], 0);
}

int cleanup_interrupted(void)
{
	return interrupted != 0;
}

/* Fill the trailing "XXXXXX" of path with random letters and digits. */
static void fill_template(char *path, size_t len)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	unsigned char r[6];
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		unsigned long v =
			(unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16) ^ (unsigned long)clock();
		for (size_t i = 0; i < sizeof(r); i++, v >>= 5)
			r[i] = (unsigned char)v;
	}
	for (size_t i = 0; i < 6; i++)
		path[len - 6 + i] = chars[r[i] % (sizeof(chars) - 1)];
}

int cleanup_create(char *path, int flags, mode_t mode, int *slot)
{
	size_t len = strlen(path);
	bool templ = len >= 6 && strcmp(path + len - 6, "XXXXXX") == 0;
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	*slot = -1;
	for (int tries = 0; tries < 100; tries++) {
		if (templ)
			fill_template(path, len);
		(void)pthread_sigmask(SIG_BLOCK, &set, &old);
		atomic_fetch_add(&creating, 1);
		int fd = -1, e = EINTR;
		int s = cleanup_register(path);
		if (!atomic_load(&exiting)) {
			fd = open(path, flags | O_CREAT | O_EXCL, mode);
			e = errno;
		}
		if (fd < 0)
			cleanup_unregister(s);
		atomic_fetch_sub(&creating, 1);
		(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (fd >= 0) {
			*slot = s;
			return fd;
		}
		errno = e;
		if (!templ || e != EEXIST)
			return -1;
	}
	return -1;
}

void cleanup_set_fatal_code(int exit_code)
{
	fatal_exit_code = exit_code;
}

void cleanup_fatal(const char *fmt, ...)
{
	/* Out of memory, maybe: a fixed buffer, one write(2), no stdio stream. */
	char msg[512];
	va_list ap;
	cleanup_hold();
	int n = snprintf(msg, sizeof(msg), "%s: error: ", log_progname());
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = 0;
	va_start(ap, fmt);
	int m = vsnprintf(msg + n, sizeof(msg) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m > 0)
		n += (size_t)m < sizeof(msg) - (size_t)n - 1 ? m : (int)(sizeof(msg) - (size_t)n - 2);
	msg[n++] = '\n';
	(void)!write(STDERR_FILENO, msg, (size_t)n);
	unlink_registered();
	_exit(fatal_exit_code);
}
