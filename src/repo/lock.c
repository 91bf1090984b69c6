/*
 * lock.c - the repository lock (see lock.h).
 *
 * The store's no-overwrite put is the only primitive every driver makes
 * atomic, so the lock is an object created with it.  A random token in the
 * content tells our lock from a successor's: the heartbeat and the release
 * touch the object only while it still holds our token.  A lease is the same
 * machinery under its own key, with what it holds and an expiry time added.
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
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

/* A lock object is a few hundred bytes; anything bigger is not ours. */
#define LOCK_MAX (64 * 1024)
/* Tries at creating the lock when takers race over a stale one. */
#define LOCK_TRIES 3
#ifdef WALSHIP_TESTING
/* Test build only: a shorter expiry, so that tests of a killed owner need not wait five minutes. */
#define LOCK_TEST_EXPIRY_ENV "WALSHIP_TEST_LOCK_EXPIRY"
#endif

struct RepoLock {
	Repo *repo;
	const Config *cfg;
	char *purpose;
	char key[80]; /* REPO_LOCK_KEY, or the lease's */
	bool is_lease;
	char lease_id[48];
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
	/* A lease's content, under mu; writes of the object are serialised by put_mu. */
	char *pgdata;
	char *epoch, *backup, *start_wal; /* NULL: everything is held */
	uint32_t timeline;
	int64_t keep_until; /* expiry after the owner exits; 0: none */
	bool leaving;       /* the last write: no heartbeat will follow */
	pthread_mutex_t put_mu;
};

/* What the repository lock object says; fields absent from a damaged one stay empty. */
typedef struct LockInfo {
	RepoLockOwner owner;
	bool parsed;
} LockInfo;

long repo_lock_expiry(void)
{
#ifdef WALSHIP_TESTING
	const char *s = getenv(LOCK_TEST_EXPIRY_ENV);
	if (s != NULL && s[0] != '\0') {
		char *end;
		long v = strtol(s, &end, 10);
		if (*end == '\0' && v > 0 && v <= REPO_LOCK_EXPIRY)
			return v;
	}
#endif
	return REPO_LOCK_EXPIRY;
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

static void set_time(json_t *o, const char *key, const char *key_at, int64_t t)
{
	char iso[CLOCK_ISO_MAX];
	clock_utc_iso(t, iso);
	json_object_set_new(o, key, json_integer((json_int_t)t));
	json_object_set_new(o, key_at, json_string(iso));
}

/* A lease's own fields: what it holds, and until when. */
static void lease_fields(RepoLock *l, json_t *o, int64_t now)
{
	pthread_mutex_lock(&l->mu);
	int64_t expires = l->leaving ? l->keep_until : now + repo_lock_expiry();
	if (l->keep_until > expires)
		expires = l->keep_until;
	set_time(o, "expires", "expires_at", expires);
	json_object_set_new(o, "pgdata", json_string(l->pgdata));
	json_object_set_new(o, "epoch", l->epoch ? json_string(l->epoch) : json_null());
	json_object_set_new(o, "backup", l->backup ? json_string(l->backup) : json_null());
	json_object_set_new(o, "timeline", json_integer((json_int_t)l->timeline));
	json_object_set_new(o, "start_wal", l->start_wal ? json_string(l->start_wal) : json_null());
	pthread_mutex_unlock(&l->mu);
}

static char *lock_json(RepoLock *l)
{
	int64_t now = (int64_t)time(NULL);
	json_t *o = json_object();
	json_object_set_new(o, "purpose", json_string(l->purpose));
	json_object_set_new(o, "host", json_string(l->host));
	json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
	json_object_set_new(o, "boot_id", json_string(l->boot_id));
	json_object_set_new(o, "token", json_string(l->token));
	set_time(o, "started", "started_at", l->started);
	set_time(o, "heartbeat", "heartbeat_at", now);
	if (l->is_lease)
		lease_fields(l, o, now);
	char *out = json_file_dump(o, l->is_lease ? "a lease" : "the repository lock");
	json_decref(o);
	return out;
}

static int put_lock(Store *s, RepoLock *l, bool no_overwrite, WsError *err)
{
	pthread_mutex_lock(&l->put_mu);
	char *text = lock_json(l);
	MemReader src = {text, strlen(text), 0};
	int rc = store_put(s, l->key, mem_reader_read, &src, no_overwrite, err);
	pthread_mutex_unlock(&l->put_mu);
	free(text);
	return rc;
}

static void copy_str(json_t *o, const char *key, char *out, size_t size)
{
	const char *v = json_string_value(json_object_get(o, key));
	snprintf(out, size, "%s", v ? v : "");
}

/* The fields lock_json writes for a lock and a lease alike. */
static void owner_from_json(json_t *o, RepoLockOwner *w)
{
	copy_str(o, "purpose", w->purpose, sizeof(w->purpose));
	copy_str(o, "host", w->host, sizeof(w->host));
	copy_str(o, "boot_id", w->boot_id, sizeof(w->boot_id));
	copy_str(o, "token", w->token, sizeof(w->token));
	copy_str(o, "started_at", w->started_at, sizeof(w->started_at));
	w->pid = (long long)json_integer_value(json_object_get(o, "pid"));
	w->heartbeat = (int64_t)json_integer_value(json_object_get(o, "heartbeat"));
	w->expires = (int64_t)json_integer_value(json_object_get(o, "expires"));
}

/*
 * Read the lock object.  WS_NOT_FOUND when there is none.  A lock that does
 * not parse is still a lock (info->parsed false): its age comes from the
 * object's mtime.
 */
static int read_lock(Store *s, const char *key, LockInfo *info, WsError *err)
{
	MemWriter mb = {.max = LOCK_MAX, .what = key};
	StoreStat st;
	int rc;

	memset(info, 0, sizeof(*info));
	if ((rc = store_get(s, key, 0, STORE_TO_END, mem_writer_write, &mb, err)) != 0)
		goto done;
	json_t *o = json_loadb(mb.buf ? mb.buf : "", mb.len, 0, NULL);
	if (json_is_object(o) && json_is_integer(json_object_get(o, "heartbeat"))) {
		info->parsed = true;
		owner_from_json(o, &info->owner);
	}
	json_decref(o);
	if (!info->parsed) {
		if ((rc = store_stat(s, key, &st, err)) != 0)
			goto done;
		info->owner.heartbeat = st.mtime;
		snprintf(info->owner.purpose, sizeof(info->owner.purpose), "?");
		snprintf(info->owner.host, sizeof(info->owner.host), "an unknown host");
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
static const char *stale_reason(const char *host, const char *boot_id, const LockInfo *info, int64_t now,
				char *buf, size_t size)
{
	long expiry = repo_lock_expiry();
	if (now - info->owner.heartbeat > expiry) {
		snprintf(buf, size, "its heartbeat is %" PRId64 " seconds old (expiry %ld seconds)",
			 now - info->owner.heartbeat, expiry);
		return buf;
	}
	if (info->parsed && info->owner.pid > 0 && info->owner.pid <= INT32_MAX && boot_id[0] != '\0' &&
	    strcmp(info->owner.host, host) == 0 && strcmp(info->owner.boot_id, boot_id) == 0 &&
	    kill((pid_t)info->owner.pid, 0) != 0 && errno == ESRCH) {
		snprintf(buf, size, "process %lld on this machine is gone", info->owner.pid);
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
	pthread_mutex_destroy(&l->put_mu);
	pthread_cond_destroy(&l->cond);
	free(l->purpose);
	free(l->pgdata);
	free(l->epoch);
	free(l->backup);
	free(l->start_wal);
	free(l);
}

/* A new RepoLock for key (lock or lease) with its owner fields; NULL with err filled. */
static RepoLock *lock_new(Repo *repo, const Config *cfg, const char *purpose, WsError *err)
{
	RepoLock *l = xcalloc(1, sizeof(*l));
	unsigned char rnd[16];

	l->repo = repo;
	l->cfg = cfg;
	l->purpose = xstrdup(purpose);
	l->started = (int64_t)time(NULL);
	pthread_mutex_init(&l->mu, NULL);
	pthread_mutex_init(&l->put_mu, NULL);
	pthread_cond_init(&l->cond, NULL);
	if (gethostname(l->host, sizeof(l->host) - 1) != 0)
		snprintf(l->host, sizeof(l->host), "unknown");
	read_boot_id(l->boot_id);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		ws_error_errno(err, WS_FATAL, errno, "could not get random bytes for the repository lock");
		lock_free(l);
		return NULL;
	}
	hex_encode(rnd, sizeof(rnd), l->token);
	/* A third of the expiry: two heartbeats may be late before anyone takes the lock. */
	l->interval =
		repo_lock_expiry() / 3 < REPO_LOCK_HEARTBEAT ? repo_lock_expiry() / 3 : REPO_LOCK_HEARTBEAT;
	if (l->interval < 1)
		l->interval = 1;
	snprintf(l->key, sizeof(l->key), "%s", REPO_LOCK_KEY);
	return l;
}

static int start_heartbeat(RepoLock *l, WsError *err)
{
	if (pthread_create(&l->thread, NULL, heartbeat_main, l) != 0) {
		WsError e;
		ws_error_clear(&e);
		(void)store_remove(repo_store(l->repo), l->key, &e);
		return ws_error(err, WS_FATAL, "could not start the repository lock's heartbeat thread");
	}
	l->thread_started = true;
	return 0;
}

int repo_lock_acquire(Repo *repo, const Config *cfg, const char *purpose, RepoLock **out, WsError *err)
{
	Store *s = repo_store(repo);
	RepoLock *l;
	LockInfo info;
	int rc = 0;

	*out = NULL;
	if ((l = lock_new(repo, cfg, purpose, err)) == NULL)
		return WS_FATAL;

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
		rc = read_lock(s, REPO_LOCK_KEY, &info, err);
		if (rc == WS_NOT_FOUND) {
			ws_error_clear(err);
			continue; /* released between our put and our read */
		}
		if (rc != 0) {
			ws_error_prefix(err, "could not read the lock of repository \"%s\"",
					repo_display(repo));
			goto done;
		}
		stale = stale_reason(l->host, l->boot_id, &info, (int64_t)time(NULL), why, sizeof(why));
		if (stale == NULL || attempt + 1 >= LOCK_TRIES) {
			if (info.parsed)
				rc = ws_error(
					err, WS_FATAL,
					"repository \"%s\" is locked by walship %s on %s (pid %lld) since %s",
					repo_display(repo), info.owner.purpose, info.owner.host,
					info.owner.pid, info.owner.started_at);
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
			repo_display(repo), info.owner.purpose, info.owner.host, info.owner.pid, stale);
		/* Read again just before removing: another taker may have replaced the stale lock. */
		LockInfo again;
		rc = read_lock(s, REPO_LOCK_KEY, &again, err);
		if (rc == 0 && (again.owner.heartbeat != info.owner.heartbeat ||
				strcmp(again.owner.token, info.owner.token) != 0))
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

	if ((rc = start_heartbeat(l, err)) != 0)
		goto done;
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
	int rc = read_lock(s, l->key, &info, err);
	if (rc == WS_NOT_FOUND)
		return 0;
	if (rc != 0)
		return rc;
	return strcmp(info.owner.token, l->token) == 0;
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
		if (l->is_lease)
			log_error("lease \"%s\" was removed from repository \"%s\" by another process",
				  l->lease_id, repo_display(l->repo));
		else
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
	ws_error_prefix(&e, "could not renew the %s of repository \"%s\"", l->is_lease ? "lease" : "lock",
			repo_display(l->repo));
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
		until = clock_after(CLOCK_REALTIME, l->interval * 1000);
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
	if (lock->is_lease) {
		ws_error(err, WS_FATAL, "lease \"%s\" was removed from repository \"%s\"", lock->lease_id,
			 repo_display(lock->repo));
		ws_error_detail(err,
				"Its heartbeat was not renewed for %ld seconds, so walship prune took it as "
				"expired and may have removed WAL this rebuild needs.",
				repo_lock_expiry());
		ws_error_hint(
			err,
			"Check that the store answers promptly and that the clocks of the machines using "
			"the repository agree, then rebuild again.");
		return WS_FATAL;
	}
	ws_error(err, WS_FATAL, "lost the lock of repository \"%s\": another process took it over",
		 repo_display(lock->repo));
	ws_error_detail(err, "The heartbeat was not renewed for %ld seconds, so the lock was taken as stale.",
			repo_lock_expiry());
	ws_error_hint(err,
		      "Check that the store answers promptly and that the clocks of the machines using the "
		      "repository agree, then run the command again.");
	return WS_FATAL;
}

static void stop_heartbeat(RepoLock *lock)
{
	if (!lock->thread_started)
		return;
	pthread_mutex_lock(&lock->mu);
	lock->stop = true;
	pthread_cond_signal(&lock->cond);
	pthread_mutex_unlock(&lock->mu);
	pthread_join(lock->thread, NULL);
	lock->thread_started = false;
}

void repo_lock_release(RepoLock *lock)
{
	WsError e;
	int rc;

	if (lock == NULL)
		return;
	stop_heartbeat(lock);
	ws_error_clear(&e);
	Store *s = repo_store(lock->repo);
	const char *what = lock->is_lease ? "lease" : "lock";
	rc = still_ours(s, lock, &e);
	if (rc == 1)
		rc = store_remove(s, lock->key, &e);
	else if (rc == 0)
		log_warning("the %s \"%s\" of repository \"%s\" is no longer ours: left in place", what,
			    lock->key, repo_display(lock->repo));
	if (rc < 0 && rc != WS_NOT_FOUND) {
		ws_error_prefix(&e, "could not remove the %s \"%s\" of repository \"%s\"", what, lock->key,
				repo_display(lock->repo));
		if (lock->is_lease)
			ws_error_hint(&e,
				      "walship prune removes it once it expires, %ld seconds after its last "
				      "heartbeat; or remove \"%s\" from the repository by hand.",
				      repo_lock_expiry(), lock->key);
		else
			ws_error_hint(&e,
				      "Remove \"%s\" from the repository by hand once no walship prune or "
				      "backup runs.",
				      REPO_LOCK_KEY);
		log_report_warning(&e);
	}
	lock_free(lock);
}

int repo_lock_wait(Repo *repo, const char *purpose, WsError *err)
{
	Store *s = repo_store(repo);
	char host[256], boot_id[40], why[128];
	bool said = false;
	time_t noted = 0;

	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	read_boot_id(boot_id);
	for (;;) {
		LockInfo info;
		int rc = read_lock(s, REPO_LOCK_KEY, &info, err);
		if (rc == WS_NOT_FOUND) {
			ws_error_clear(err);
			break;
		}
		if (rc != 0) {
			ws_error_prefix(err, "could not read the lock of repository \"%s\"",
					repo_display(repo));
			return rc;
		}
		int64_t now = (int64_t)time(NULL);
		if (!info.parsed || strcmp(info.owner.purpose, purpose) != 0 ||
		    stale_reason(host, boot_id, &info, now, why, sizeof(why)) != NULL)
			break;
		if (!said || now - noted >= 30) {
			log_warning(
				"waiting for walship %s on %s (pid %lld, since %s) to finish before reading "
				"repository \"%s\"",
				info.owner.purpose, info.owner.host, info.owner.pid, info.owner.started_at,
				repo_display(repo));
			said = true;
			noted = now;
		}
		sleep(1);
	}
	if (said)
		log_info("walship %s has finished", purpose);
	return 0;
}

/* ---- leases ---- */

int repo_lease_take(Repo *repo, const Config *cfg, const char *pgdata, RepoLock **out, WsError *err)
{
	char stamp[32];
	RepoLock *l;
	int rc;

	*out = NULL;
	if ((l = lock_new(repo, cfg, "rebuild", err)) == NULL)
		return WS_FATAL;
	l->is_lease = true;
	l->pgdata = xstrdup(pgdata);
	clock_utc_compact(l->started, stamp);
	snprintf(l->lease_id, sizeof(l->lease_id), "%s-%.8s", stamp, l->token);
	snprintf(l->key, sizeof(l->key), "%s%s.json", REPO_LEASE_PREFIX, l->lease_id);
	if ((rc = put_lock(repo_store(repo), l, true, err)) != 0) {
		ws_error_prefix(err, "could not write lease \"%s\" to repository \"%s\"", l->key,
				repo_display(repo));
		if (rc != WS_EXISTS)
			ws_error_hint(
				err,
				"walship rebuild writes a lease so that walship prune keeps what the "
				"rebuilt server will fetch; it needs write access to \"%s\" (it writes "
				"nothing else).  Without it, rebuild with --lease=0 while no prune runs.",
				REPO_LEASE_PREFIX);
		lock_free(l);
		return rc;
	}
	if ((rc = start_heartbeat(l, err)) != 0) {
		lock_free(l);
		return rc;
	}
	log_debug("wrote lease \"%s\" to repository \"%s\"", l->key, repo_display(repo));
	*out = l;
	return 0;
}

static void set_str(char **field, const char *v)
{
	free(*field);
	*field = v ? xstrdup(v) : NULL;
}

/* Write the lease as it now stands. */
static int lease_update(RepoLock *lease, WsError *err)
{
	int rc = put_lock(repo_store(lease->repo), lease, false, err);
	if (rc != 0)
		ws_error_prefix(err, "could not update lease \"%s\" in repository \"%s\"", lease->key,
				repo_display(lease->repo));
	return rc;
}

int repo_lease_hold(RepoLock *lease, const char *epoch, const char *backup, uint32_t timeline,
		    const char *start_wal, WsError *err)
{
	pthread_mutex_lock(&lease->mu);
	set_str(&lease->epoch, epoch);
	set_str(&lease->backup, backup);
	set_str(&lease->start_wal, start_wal);
	lease->timeline = timeline;
	pthread_mutex_unlock(&lease->mu);
	return lease_update(lease, err);
}

int repo_lease_keep_until(RepoLock *lease, int64_t until, WsError *err)
{
	pthread_mutex_lock(&lease->mu);
	if (until > lease->keep_until)
		lease->keep_until = until;
	pthread_mutex_unlock(&lease->mu);
	return lease_update(lease, err);
}

const char *repo_lease_id(const RepoLock *lease)
{
	return lease->lease_id;
}

void repo_lease_leave(RepoLock *lease)
{
	WsError e;

	if (lease == NULL)
		return;
	if (lease->keep_until <= (int64_t)time(NULL)) {
		repo_lock_release(lease);
		return;
	}
	stop_heartbeat(lease);
	ws_error_clear(&e);
	pthread_mutex_lock(&lease->mu);
	lease->leaving = true;
	pthread_mutex_unlock(&lease->mu);
	/* Only while it is still ours: prune may have removed it, and it must not come back. */
	int rc = still_ours(repo_store(lease->repo), lease, &e);
	if (rc == 1)
		rc = put_lock(repo_store(lease->repo), lease, false, &e);
	if (rc < 0) {
		ws_error_prefix(&e, "could not write the last heartbeat of lease \"%s\"", lease->key);
		ws_error_detail(&e, "It expires %ld seconds after its previous heartbeat instead.",
				repo_lock_expiry());
		log_report_warning(&e);
	}
	lock_free(lease);
}

static void lease_from_json(json_t *o, RepoLeaseInfo *l)
{
	owner_from_json(o, &l->owner);
	copy_str(o, "pgdata", l->pgdata, sizeof(l->pgdata));
	copy_str(o, "epoch", l->epoch, sizeof(l->epoch));
	copy_str(o, "backup", l->backup, sizeof(l->backup));
	copy_str(o, "start_wal", l->start_wal, sizeof(l->start_wal));
	json_int_t tli = json_integer_value(json_object_get(o, "timeline"));
	l->timeline = tli > 0 && tli <= (json_int_t)UINT32_MAX ? (uint32_t)tli : 0;
	/* A backup without its epoch (or the reverse) is held as "everything". */
	if (l->epoch[0] == '\0' || l->backup[0] == '\0')
		l->epoch[0] = l->backup[0] = '\0';
}

typedef struct LeaseList {
	RepoLeaseInfo *v;
	int n;
	int cap;
	int64_t *mtimes;
} LeaseList;

static int lease_key(void *ctx, const char *key, const StoreStat *st, WsError *err)
{
	LeaseList *ll = ctx;
	const char *name = key + strlen(REPO_LEASE_PREFIX);
	size_t len = strlen(name);
	(void)err;
	if (ll->n == ll->cap) {
		ll->cap = ll->cap ? ll->cap * 2 : 8;
		ll->v = xrealloc(ll->v, (size_t)ll->cap * sizeof(*ll->v));
		ll->mtimes = xrealloc(ll->mtimes, (size_t)ll->cap * sizeof(*ll->mtimes));
	}
	RepoLeaseInfo *l = &ll->v[ll->n];
	memset(l, 0, sizeof(*l));
	snprintf(l->key, sizeof(l->key), "%s", key);
	if (len > 5 && strcmp(name + len - 5, ".json") == 0)
		len -= 5;
	snprintf(l->id, sizeof(l->id), "%.*s", (int)len, name);
	ll->mtimes[ll->n++] = st->mtime;
	return 0;
}

/* Read one listed lease; an unreadable one holds everything for REPO_LEASE_MAX after its mtime. */
static int lease_load(Store *s, RepoLeaseInfo *l, int64_t mtime, WsError *err)
{
	MemWriter mb = {.max = LOCK_MAX, .what = l->key};
	int rc = store_get(s, l->key, 0, STORE_TO_END, mem_writer_write, &mb, err);
	if (rc == 0) {
		json_t *o = json_loadb(mb.buf ? mb.buf : "", mb.len, 0, NULL);
		l->parsed = json_is_object(o) && json_is_integer(json_object_get(o, "expires")) &&
			    json_is_string(json_object_get(o, "pgdata"));
		if (l->parsed)
			lease_from_json(o, l);
		json_decref(o);
		if (!l->parsed) {
			l->owner.heartbeat = mtime;
			l->owner.expires = mtime + REPO_LEASE_MAX;
		}
	}
	free(mb.buf);
	return rc;
}

int repo_leases_read(Repo *repo, RepoLeaseInfo **out, int *n, WsError *err)
{
	Store *s = repo_store(repo);
	LeaseList ll = {0};
	int rc, k = 0;

	*out = NULL;
	*n = 0;
	if ((rc = store_list(s, REPO_LEASE_PREFIX, lease_key, &ll, err)) != 0) {
		ws_error_prefix(err, "could not list the leases of repository \"%s\"", repo_display(repo));
		goto done;
	}
	for (int i = 0; i < ll.n; i++) {
		rc = lease_load(s, &ll.v[i], ll.mtimes[i], err);
		if (rc == WS_NOT_FOUND) { /* released since the listing */
			ws_error_clear(err);
			continue;
		}
		if (rc != 0) {
			ws_error_prefix(err, "could not read lease \"%s\" of repository \"%s\"", ll.v[i].key,
					repo_display(repo));
			goto done;
		}
		ll.v[k++] = ll.v[i];
	}
	*out = ll.v;
	*n = k;
	ll.v = NULL;
	rc = 0;
done:
	free(ll.v);
	free(ll.mtimes);
	return rc;
}

int repo_lease_drop_others(RepoLock *lease)
{
	RepoLeaseInfo *v = NULL;
	WsError e;
	int n = 0, dropped = 0;

	ws_error_clear(&e);
	if (repo_leases_read(lease->repo, &v, &n, &e) != 0) {
		log_report_warning(&e);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		const RepoLeaseInfo *l = &v[i];
		bool gone = l->owner.pid > 0 && l->owner.pid <= INT32_MAX &&
			    (strcmp(l->owner.boot_id, lease->boot_id) != 0 ||
			     (kill((pid_t)l->owner.pid, 0) != 0 && errno == ESRCH));
		if (!l->parsed || strcmp(l->id, lease->lease_id) == 0 ||
		    strcmp(l->owner.host, lease->host) != 0 || strcmp(l->pgdata, lease->pgdata) != 0 || !gone)
			continue;
		if (store_remove(repo_store(lease->repo), l->key, &e) != 0 && e.cls != WS_NOT_FOUND) {
			log_report_warning(&e);
		} else {
			log_info("removed lease %s of an earlier rebuild of data directory \"%s\" on this "
				 "machine",
				 l->id, l->pgdata);
			dropped++;
		}
		ws_error_clear(&e);
	}
	free(v);
	return dropped;
}

bool repo_lease_expired(const RepoLeaseInfo *l, int64_t now)
{
	return now > l->owner.expires;
}

int repo_lease_remove(Repo *repo, const RepoLeaseInfo *l, WsError *err)
{
	Store *s = repo_store(repo);
	RepoLeaseInfo again = *l;
	int rc = lease_load(s, &again, l->owner.heartbeat, err);
	if (rc == 0 &&
	    (again.owner.expires != l->owner.expires || again.owner.heartbeat != l->owner.heartbeat))
		return 1; /* renewed after all: the next prune sees it again */
	if (rc == 0)
		rc = store_remove(s, l->key, err);
	if (rc == WS_NOT_FOUND) {
		ws_error_clear(err);
		rc = 0;
	}
	if (rc != 0)
		ws_error_prefix(err, "could not remove expired lease \"%s\" of repository \"%s\"", l->key,
				repo_display(repo));
	return rc;
}

void repo_lease_describe(const RepoLeaseInfo *l, char *buf, size_t size)
{
	char until[CLOCK_ISO_MAX];
	clock_utc_iso(l->owner.expires, until);
	if (!l->parsed) {
		snprintf(buf, size, "\"%s\", which cannot be read as a walship lease, until %s", l->key,
			 until);
		return;
	}
	snprintf(buf, size, "walship %s on %s (pid %lld), data directory \"%s\", since %s, until %s",
		 l->owner.purpose, l->owner.host, l->owner.pid, l->pgdata, l->owner.started_at, until);
}

json_t *repo_lease_json(const RepoLeaseInfo *l, int64_t now)
{
	char until[CLOCK_ISO_MAX];
	json_t *o = json_object();
	clock_utc_iso(l->owner.expires, until);
	json_object_set_new(o, "id", json_string(l->id));
	json_object_set_new(o, "readable", json_boolean(l->parsed));
	json_object_set_new(o, "purpose", json_string(l->owner.purpose));
	json_object_set_new(o, "host", json_string(l->owner.host));
	json_object_set_new(o, "pid", json_integer((json_int_t)l->owner.pid));
	json_object_set_new(o, "pgdata", json_string(l->pgdata));
	json_object_set_new(o, "started_at", json_string(l->owner.started_at));
	json_object_set_new(o, "expires_at", json_string(until));
	json_object_set_new(o, "expired", json_boolean(repo_lease_expired(l, now)));
	json_object_set_new(o, "epoch", l->epoch[0] ? json_string(l->epoch) : json_null());
	json_object_set_new(o, "backup", l->backup[0] ? json_string(l->backup) : json_null());
	json_object_set_new(o, "timeline", l->timeline ? json_integer((json_int_t)l->timeline) : json_null());
	json_object_set_new(o, "start_wal", l->start_wal[0] ? json_string(l->start_wal) : json_null());
	return o;
}
