/*
 * lock.c - the repository lock (see lock.h).
 *
 * The store's no-overwrite put is the only primitive every driver makes
 * atomic, so the lock is an object created with it.  A random token in the
 * content tells our lock from a successor's: the heartbeat and the release
 * touch the object only while it still holds our token.
 */
#include "repo/lock.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "repo/jsonfile.h"
#include "util/log.h"
#include "util/mem.h"

/* A lock object is a few hundred bytes; anything bigger is not ours. */
#define LOCK_MAX (64 * 1024)
/* Tries at creating the lock when takers race over a stale one. */
#define LOCK_TRIES 3
/* Test-only: a shorter expiry, so that tests of a killed owner need not wait five minutes. */
#define LOCK_TEST_EXPIRY_ENV "WALSHIP_TEST_LOCK_EXPIRY"

struct RepoLock {
	Repo *repo;
	const Config *cfg;
	char *purpose;
	char token[33];
	char host[256];
	char boot_id[40];
	int64_t started;
	long interval; /* seconds between heartbeats */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop; /* under mu */
	bool lost; /* under mu: the object no longer holds our token */
};

/* What a lock object says; fields absent from a damaged one stay empty. */
typedef struct LockInfo {
	char purpose[32];
	char host[256];
	char boot_id[40];
	char token[33];
	char started_at[32];
	long long pid;
	int64_t heartbeat;
	bool parsed;
} LockInfo;

long repo_lock_expiry(void)
{
	const char *s = getenv(LOCK_TEST_EXPIRY_ENV);
	if (s != NULL && s[0] != '\0') {
		char *end;
		long v = strtol(s, &end, 10);
		if (*end == '\0' && v > 0 && v <= REPO_LOCK_EXPIRY)
			return v;
	}
	return REPO_LOCK_EXPIRY;
}

static void iso_time(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* This boot of this machine: with the host name, it tells whether a pid is one we can probe. */
static void read_boot_id(char out[40])
{
	out[0] = '\0';
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	if (f == NULL)
		return;
	if (fgets(out, 40, f) == NULL)
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

static char *lock_json(const RepoLock *l)
{
	char started[32], beat[32];
	int64_t now = (int64_t)time(NULL);
	iso_time(l->started, started);
	iso_time(now, beat);
	json_t *o = json_object();
	json_object_set_new(o, "purpose", json_string(l->purpose));
	json_object_set_new(o, "host", json_string(l->host));
	json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
	json_object_set_new(o, "boot_id", json_string(l->boot_id));
	json_object_set_new(o, "token", json_string(l->token));
	json_object_set_new(o, "started", json_integer((json_int_t)l->started));
	json_object_set_new(o, "started_at", json_string(started));
	json_object_set_new(o, "heartbeat", json_integer((json_int_t)now));
	json_object_set_new(o, "heartbeat_at", json_string(beat));
	char *out = json_file_dump(o, "the repository lock");
	json_decref(o);
	return out;
}

static int put_lock(Store *s, const RepoLock *l, bool no_overwrite, WsError *err)
{
	char *text = lock_json(l);
	MemReader src = {text, strlen(text), 0};
	int rc = store_put(s, REPO_LOCK_KEY, mem_reader_read, &src, no_overwrite, err);
	free(text);
	return rc;
}

static void copy_str(json_t *o, const char *key, char *out, size_t size)
{
	const char *v = json_string_value(json_object_get(o, key));
	snprintf(out, size, "%s", v ? v : "");
}

/*
 * Read the lock object.  WS_NOT_FOUND when there is none.  A lock that does
 * not parse is still a lock (info->parsed false): its age comes from the
 * object's mtime.
 */
static int read_lock(Store *s, LockInfo *info, WsError *err)
{
	MemWriter mb = {.max = LOCK_MAX, .what = REPO_LOCK_KEY};
	StoreStat st;
	int rc;

	memset(info, 0, sizeof(*info));
	if ((rc = store_get(s, REPO_LOCK_KEY, 0, STORE_TO_END, mem_writer_write, &mb, err)) != 0)
		goto done;
	json_t *o = json_loadb(mb.buf ? mb.buf : "", mb.len, 0, NULL);
	if (json_is_object(o) && json_is_integer(json_object_get(o, "heartbeat"))) {
		info->parsed = true;
		copy_str(o, "purpose", info->purpose, sizeof(info->purpose));
		copy_str(o, "host", info->host, sizeof(info->host));
		copy_str(o, "boot_id", info->boot_id, sizeof(info->boot_id));
		copy_str(o, "token", info->token, sizeof(info->token));
		copy_str(o, "started_at", info->started_at, sizeof(info->started_at));
		info->pid = (long long)json_integer_value(json_object_get(o, "pid"));
		info->heartbeat = (int64_t)json_integer_value(json_object_get(o, "heartbeat"));
	}
	json_decref(o);
	if (!info->parsed) {
		if ((rc = store_stat(s, REPO_LOCK_KEY, &st, err)) != 0)
			goto done;
		info->heartbeat = st.mtime;
		snprintf(info->purpose, sizeof(info->purpose), "?");
		snprintf(info->host, sizeof(info->host), "an unknown host");
	}
done:
	free(mb.buf);
	return rc;
}

/*
 * Why a lock is stale, or NULL if it may belong to a live owner: its
 * heartbeat stopped long ago, or its owner ran on this machine since its
 * last boot and that process is gone (a killed prune or backup; no need to
 * wait for the expiry then).
 */
static const char *stale_reason(const RepoLock *l, const LockInfo *info, int64_t now, char *buf, size_t size)
{
	long expiry = repo_lock_expiry();
	if (now - info->heartbeat > expiry) {
		snprintf(buf, size, "its heartbeat is %" PRId64 " seconds old (expiry %ld seconds)",
			 now - info->heartbeat, expiry);
		return buf;
	}
	if (info->parsed && info->pid > 0 && info->pid <= INT32_MAX && l->boot_id[0] != '\0' &&
	    strcmp(info->host, l->host) == 0 && strcmp(info->boot_id, l->boot_id) == 0 &&
	    kill((pid_t)info->pid, 0) != 0 && errno == ESRCH) {
		snprintf(buf, size, "process %lld on this machine is gone", info->pid);
		return buf;
	}
	return NULL;
}

static void *heartbeat_main(void *arg);

static void lock_free(RepoLock *l)
{
	if (l == NULL)
		return;
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cond);
	free(l->purpose);
	free(l);
}

int repo_lock_acquire(Repo *repo, const Config *cfg, const char *purpose, RepoLock **out, WsError *err)
{
	Store *s = repo_store(repo);
	RepoLock *l = xcalloc(1, sizeof(*l));
	unsigned char rnd[16];
	LockInfo info;
	int rc = 0;

	*out = NULL;
	l->repo = repo;
	l->cfg = cfg;
	l->purpose = xstrdup(purpose);
	l->started = (int64_t)time(NULL);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cond, NULL);
	if (gethostname(l->host, sizeof(l->host) - 1) != 0)
		snprintf(l->host, sizeof(l->host), "unknown");
	read_boot_id(l->boot_id);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		rc = ws_error_errno(err, WS_FATAL, errno,
				    "could not get random bytes for the repository lock");
		goto done;
	}
	hex_encode(rnd, sizeof(rnd), l->token);
	/* A third of the expiry: two heartbeats may be late before anyone takes the lock. */
	l->interval =
		repo_lock_expiry() / 3 < REPO_LOCK_HEARTBEAT ? repo_lock_expiry() / 3 : REPO_LOCK_HEARTBEAT;
	if (l->interval < 1)
		l->interval = 1;

	for (int attempt = 0;; attempt++) {
		char why[128];
		const char *stale;

		rc = put_lock(s, l, true, err);
		if (rc == 0)
			break;
		if (rc != WS_EXISTS) {
			ws_error_prefix(err, "could not take the lock of repository \"%s\"",
					repo_display(repo));
			goto done;
		}
		ws_error_clear(err);
		rc = read_lock(s, &info, err);
		if (rc == WS_NOT_FOUND) {
			ws_error_clear(err);
			continue; /* released between our put and our read */
		}
		if (rc != 0) {
			ws_error_prefix(err, "could not read the lock of repository \"%s\"",
					repo_display(repo));
			goto done;
		}
		stale = stale_reason(l, &info, (int64_t)time(NULL), why, sizeof(why));
		if (stale == NULL || attempt + 1 >= LOCK_TRIES) {
			if (info.parsed)
				rc = ws_error(
					err, WS_FATAL,
					"repository \"%s\" is locked by walship %s on %s (pid %lld) since %s",
					repo_display(repo), info.purpose, info.host, info.pid,
					info.started_at);
			else
				rc = ws_error(err, WS_FATAL,
					      "repository \"%s\" is locked: \"%s\" exists but cannot be read "
					      "as a walship lock",
					      repo_display(repo), REPO_LOCK_KEY);
			ws_error_hint(err,
				      "Wait for it to finish and try again.  If that process is gone, the "
				      "lock expires %ld seconds after its last heartbeat and is then taken "
				      "over.",
				      repo_lock_expiry());
			goto done;
		}
		log_warning(
			"taking over the lock of repository \"%s\" held by walship %s on %s (pid %lld): %s",
			repo_display(repo), info.purpose, info.host, info.pid, stale);
		/* Read again just before removing: another taker may have replaced the stale lock. */
		LockInfo again;
		rc = read_lock(s, &again, err);
		if (rc == 0 && (again.heartbeat != info.heartbeat || strcmp(again.token, info.token) != 0))
			continue;
		if (rc == 0)
			rc = store_remove(s, REPO_LOCK_KEY, err);
		if (rc != 0 && rc != WS_NOT_FOUND) {
			ws_error_prefix(err, "could not remove the stale lock of repository \"%s\"",
					repo_display(repo));
			goto done;
		}
		ws_error_clear(err);
		rc = 0;
	}

	if (pthread_create(&l->thread, NULL, heartbeat_main, l) != 0) {
		WsError e;
		ws_error_clear(&e);
		(void)store_remove(s, REPO_LOCK_KEY, &e);
		rc = ws_error(err, WS_FATAL, "could not start the repository lock's heartbeat thread");
		goto done;
	}
	l->thread_started = true;
	log_debug("took the lock of repository \"%s\" for %s", repo_display(repo), purpose);
	*out = l;
	l = NULL;
done:
	lock_free(l);
	return rc;
}

/* Whether the lock object still holds our token; 1 yes, 0 no (or absent), negative on a read error. */
static int still_ours(Store *s, const RepoLock *l, WsError *err)
{
	LockInfo info;
	int rc = read_lock(s, &info, err);
	if (rc == WS_NOT_FOUND)
		return 0;
	if (rc != 0)
		return rc;
	return strcmp(info.token, l->token) == 0;
}

static void renew(RepoLock *l, Store **s)
{
	WsError e;
	int rc;

	ws_error_clear(&e);
	if (*s == NULL &&
	    (rc = store_open(config_get(l->cfg, "repo"), l->cfg, STORE_OPEN_DEFAULT, s, &e)) != 0)
		goto fail;
	rc = still_ours(*s, l, &e);
	if (rc == 0) {
		pthread_mutex_lock(&l->mu);
		l->lost = true;
		pthread_mutex_unlock(&l->mu);
		log_error("the lock of repository \"%s\" was taken by another process",
			  repo_display(l->repo));
		return;
	}
	if (rc < 0)
		goto fail;
	if ((rc = put_lock(*s, l, false, &e)) != 0)
		goto fail;
	return;
fail:
	/* Not fatal yet: the lock expires only after several missed heartbeats. */
	ws_error_prefix(&e, "could not renew the lock of repository \"%s\"", repo_display(l->repo));
	log_report_warning(&e);
}

static void *heartbeat_main(void *arg)
{
	RepoLock *l = arg;
	Store *s = NULL;
	struct timespec until;

	/* The main thread handles SIGTERM/SIGINT. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	pthread_mutex_lock(&l->mu);
	while (!l->stop && !l->lost) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += l->interval;
		while (!l->stop && pthread_cond_timedwait(&l->cond, &l->mu, &until) != ETIMEDOUT)
			;
		if (l->stop)
			break;
		pthread_mutex_unlock(&l->mu);
		renew(l, &s);
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	store_free(s);
	return NULL;
}

int repo_lock_check(RepoLock *lock, WsError *err)
{
	bool lost;
	pthread_mutex_lock(&lock->mu);
	lost = lock->lost;
	pthread_mutex_unlock(&lock->mu);
	if (!lost)
		return 0;
	ws_error(err, WS_FATAL, "lost the lock of repository \"%s\": another process took it over",
		 repo_display(lock->repo));
	ws_error_detail(err, "The heartbeat was not renewed for %ld seconds, so the lock was taken as stale.",
			repo_lock_expiry());
	ws_error_hint(err,
		      "Check that the store answers promptly and that the clocks of the machines using the "
		      "repository agree, then run the command again.");
	return WS_FATAL;
}

void repo_lock_release(RepoLock *lock)
{
	WsError e;
	int rc;

	if (lock == NULL)
		return;
	if (lock->thread_started) {
		pthread_mutex_lock(&lock->mu);
		lock->stop = true;
		pthread_cond_signal(&lock->cond);
		pthread_mutex_unlock(&lock->mu);
		pthread_join(lock->thread, NULL);
	}
	ws_error_clear(&e);
	Store *s = repo_store(lock->repo);
	rc = still_ours(s, lock, &e);
	if (rc == 1)
		rc = store_remove(s, REPO_LOCK_KEY, &e);
	else if (rc == 0)
		log_warning("the lock of repository \"%s\" is no longer ours: left in place",
			    repo_display(lock->repo));
	if (rc < 0 && rc != WS_NOT_FOUND) {
		ws_error_prefix(&e, "could not remove the lock of repository \"%s\"",
				repo_display(lock->repo));
		ws_error_hint(
			&e, "Remove \"%s\" from the repository by hand once no walship prune or backup runs.",
			REPO_LOCK_KEY);
		log_report_warning(&e);
	}
	lock_free(lock);
}
