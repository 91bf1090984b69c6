/*
 * test_lock.c - the repository lock on a local store: one taker wins, the
 * loser is told who holds it; a lock whose heartbeat stopped (doctored) or
 * whose process on this machine is gone is taken over; the heartbeat renews
 * it; release removes only our own lock, promptly.  Leases: taken, narrowed,
 * kept past the process and read back; expired and unreadable ones; a waiter
 * for a running prune; earlier leases of the same data directory dropped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "repo/lock.h"
#include "repo/repo.h"
#include "util/mem.h"
#include "pg/pgmajor.h"

#define SEG16 (16u * 1024 * 1024)
#define SYSID 7301234567890123456ull

typedef struct Fixture {
	char root[64];
	char *lockpath;
	Config *cfg;
	Repo *repo;
} Fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	Fixture *f = xcalloc(1, sizeof(*f));
	WsError err;
	unsetenv("WALSHIP_TEST_LOCK_EXPIRY");
	strcpy(f->root, "/tmp/walship-test-lock-XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	char *repo = xasprintf("%s/repo", f->root);
	f->lockpath = xasprintf("%s/%s", repo, REPO_LOCK_KEY);
	f->cfg = config_new();
	int rc = config_set_option(f->cfg, "repo", repo, &err);
	if (rc == 0)
		rc = repo_create(f->cfg, SYSID, PG_MAJOR(15), SEG16, &f->repo, &err);
	free(repo);
	*state = f;
	return rc == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	Fixture *f = *state;
	unsetenv("WALSHIP_TEST_LOCK_EXPIRY");
	repo_free(f->repo);
	config_free(f->cfg);
	nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f->lockpath);
	free(f);
	return 0;
}

static json_t *read_lock(const Fixture *f)
{
	json_t *o = json_load_file(f->lockpath, 0, NULL);
	assert_non_null(o);
	return o;
}

/* Rewrite the lock file with fields changed, as another (dead) owner would have left it. */
static void doctor(const Fixture *f, const char *host, json_int_t pid, json_int_t heartbeat)
{
	json_t *o = read_lock(f);
	if (host != NULL)
		json_object_set_new(o, "host", json_string(host));
	json_object_set_new(o, "pid", json_integer(pid));
	json_object_set_new(o, "heartbeat", json_integer(heartbeat));
	json_object_set_new(o, "token", json_string("0123456789abcdef0123456789abcdef"));
	assert_int_equal(json_dump_file(o, f->lockpath, 0), 0);
	json_decref(o);
}

static void test_one_taker_wins_and_release_removes(void **state)
{
	Fixture *f = *state;
	RepoLock *a = NULL, *b = NULL;
	WsError err;

	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "prune", &a, &err), 0);
	assert_non_null(a);
	json_t *o = read_lock(f);
	assert_string_equal(json_string_value(json_object_get(o, "purpose")), "prune");
	assert_int_equal(json_integer_value(json_object_get(o, "pid")), getpid());
	assert_true(llabs((long long)(json_integer_value(json_object_get(o, "heartbeat")) - time(NULL))) < 5);
	assert_non_null(json_string_value(json_object_get(o, "started_at")));
	json_decref(o);

	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "backup", &b, &err), WS_FATAL);
	assert_null(b);
	assert_non_null(strstr(err.msg, "is locked by walship prune on"));
	assert_non_null(strstr(err.hint, "expires"));
	assert_int_equal(repo_lock_check(a, &err), 0);

	/* Release must not wait for the 30 s heartbeat. */
	time_t t0 = time(NULL);
	repo_lock_release(a);
	assert_true(time(NULL) - t0 < 3);
	assert_int_not_equal(access(f->lockpath, F_OK), 0);

	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "backup", &b, &err), 0);
	repo_lock_release(b);
	repo_lock_release(NULL);
}

static void test_expired_lock_is_taken_over(void **state)
{
	Fixture *f = *state;
	RepoLock *a = NULL, *b = NULL;
	WsError err;

	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "prune", &a, &err), 0);
	/* Another machine's lock, its heartbeat just inside the expiry: still held. */
	doctor(f, "elsewhere.example", 4242, (json_int_t)time(NULL) - REPO_LOCK_EXPIRY + 20);
	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "backup", &b, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "on elsewhere.example (pid 4242)"));

	/* Past the expiry: taken over. */
	doctor(f, "elsewhere.example", 4242, (json_int_t)time(NULL) - REPO_LOCK_EXPIRY - 5);
	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "backup", &b, &err), 0);
	json_t *o = read_lock(f);
	assert_string_equal(json_string_value(json_object_get(o, "purpose")), "backup");
	json_decref(o);

	/* The first holder finds it lost only through its heartbeat; its release leaves b's lock alone. */
	repo_lock_release(a);
	assert_int_equal(access(f->lockpath, F_OK), 0);
	repo_lock_release(b);
	assert_int_not_equal(access(f->lockpath, F_OK), 0);
}

static void test_dead_owner_on_this_machine_is_taken_over_at_once(void **state)
{
	Fixture *f = *state;
	RepoLock *a = NULL, *b = NULL;
	WsError err;

	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "prune", &a, &err), 0);
	/* A child that has exited: its pid is gone. */
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	doctor(f, NULL, child, (json_int_t)time(NULL));
	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "backup", &b, &err), 0);
	repo_lock_release(b);
	/* a's lock was replaced: its release must not fail or remove anything but its own. */
	repo_lock_release(a);

	/* A live process on this machine (ourselves, with a foreign token) holds it. */
	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "prune", &a, &err), 0);
	doctor(f, NULL, getpid(), (json_int_t)time(NULL));
	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "backup", &b, &err), WS_FATAL);
	unlink(f->lockpath);
	repo_lock_release(a);
}

static void test_heartbeat_renews_and_notices_a_takeover(void **state)
{
	Fixture *f = *state;
	RepoLock *a = NULL;
	WsError err;

	/* 3 s expiry: a heartbeat each second. */
	setenv("WALSHIP_TEST_LOCK_EXPIRY", "3", 1);
	assert_int_equal(repo_lock_expiry(), 3);
	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "prune", &a, &err), 0);
	json_t *o = read_lock(f);
	json_int_t first = json_integer_value(json_object_get(o, "heartbeat"));
	json_decref(o);
	sleep(3);
	o = read_lock(f);
	assert_true(json_integer_value(json_object_get(o, "heartbeat")) > first);
	json_decref(o);
	assert_int_equal(repo_lock_check(a, &err), 0);

	/* Someone else's lock in its place: the holder is told to stop. */
	doctor(f, "elsewhere.example", 4242, (json_int_t)time(NULL));
	sleep(2);
	assert_int_equal(repo_lock_check(a, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "lost the lock"));
	repo_lock_release(a);
	assert_int_equal(access(f->lockpath, F_OK), 0); /* not ours: left */

	setenv("WALSHIP_TEST_LOCK_EXPIRY", "junk", 1);
	assert_int_equal(repo_lock_expiry(), REPO_LOCK_EXPIRY);
}

/* ---- leases ---- */

static json_t *read_json(const char *path)
{
	json_t *o = json_load_file(path, 0, NULL);
	assert_non_null(o);
	return o;
}

/* f->lockpath is <repo>/walship.lock: the repository directory is its dirname. */
static void repo_dir(const Fixture *f, char *buf, size_t size)
{
	snprintf(buf, size, "%.*s", (int)(strlen(f->lockpath) - strlen(REPO_LOCK_KEY) - 1), f->lockpath);
}

static char *lease_file(const Fixture *f, const RepoLock *l)
{
	char dir[128];
	repo_dir(f, dir, sizeof(dir));
	return xasprintf("%s/%s%s.json", dir, REPO_LEASE_PREFIX, repo_lease_id(l));
}

static void test_lease_is_taken_narrowed_kept_and_left(void **state)
{
	Fixture *f = *state;
	RepoLock *l = NULL, *lock = NULL;
	RepoLeaseInfo *v = NULL;
	WsError err;
	int n = 0;
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(repo_lease_take(f->repo, f->cfg, "/srv/copy", &l, &err), 0);
	/* Shared: the exclusive lock is still free, and a second lease coexists. */
	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "prune", &lock, &err), 0);
	repo_lock_release(lock);
	char *path = lease_file(f, l);
	json_t *o = read_json(path);
	assert_string_equal(json_string_value(json_object_get(o, "purpose")), "rebuild");
	assert_string_equal(json_string_value(json_object_get(o, "pgdata")), "/srv/copy");
	assert_true(json_is_null(json_object_get(o, "epoch")));
	int64_t exp = (int64_t)json_integer_value(json_object_get(o, "expires"));
	assert_true(exp >= now + REPO_LOCK_EXPIRY - 5 && exp <= now + REPO_LOCK_EXPIRY + 5);
	json_decref(o);

	assert_int_equal(repo_lease_hold(l, "15-1", "20261125T190004Z", 2, "000000010000000000000003", &err),
			 0);
	assert_int_equal(repo_lease_keep_until(l, now + 7 * 86400, &err), 0);
	assert_int_equal(repo_leases_read(f->repo, &v, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_true(v[0].parsed);
	assert_string_equal(v[0].id, repo_lease_id(l));
	assert_string_equal(v[0].epoch, "15-1");
	assert_string_equal(v[0].backup, "20261125T190004Z");
	assert_string_equal(v[0].start_wal, "000000010000000000000003");
	assert_int_equal(v[0].timeline, 2);
	assert_int_equal(v[0].owner.pid, getpid());
	assert_int_equal(v[0].owner.expires, now + 7 * 86400);
	assert_false(repo_lease_expired(&v[0], now));
	char text[5000];
	repo_lease_describe(&v[0], text, sizeof(text));
	assert_non_null(strstr(text, "walship rebuild on "));
	assert_non_null(strstr(text, "data directory \"/srv/copy\""));
	free(v);

	/* Left behind: still there after this "process" lets go, until its time. */
	repo_lease_leave(l);
	o = read_json(path);
	assert_int_equal(json_integer_value(json_object_get(o, "expires")), now + 7 * 86400);
	json_decref(o);
	free(path);
}

static void test_lease_released_or_left_without_a_time_is_removed(void **state)
{
	Fixture *f = *state;
	RepoLock *l = NULL;
	RepoLeaseInfo *v = NULL;
	WsError err;
	int n = -1;

	assert_int_equal(repo_lease_take(f->repo, f->cfg, "/srv/a", &l, &err), 0);
	char *path = lease_file(f, l);
	assert_int_equal(access(path, F_OK), 0);
	repo_lock_release(l);
	assert_int_not_equal(access(path, F_OK), 0);
	free(path);

	assert_int_equal(repo_lease_take(f->repo, f->cfg, "/srv/b", &l, &err), 0);
	path = lease_file(f, l);
	repo_lease_leave(l); /* never kept past the process: nothing to keep */
	assert_int_not_equal(access(path, F_OK), 0);
	free(path);
	assert_int_equal(repo_leases_read(f->repo, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	free(v);
	repo_lease_leave(NULL);
}

static void test_expired_and_unreadable_leases(void **state)
{
	Fixture *f = *state;
	RepoLock *l = NULL;
	RepoLeaseInfo *v = NULL;
	WsError err;
	char dir[128];
	int n = 0;
	int64_t now = (int64_t)time(NULL);

	repo_dir(f, dir, sizeof(dir));
	/* 1 s expiry: without its heartbeat, the lease is stale a second later. */
	setenv("WALSHIP_TEST_LOCK_EXPIRY", "1", 1);
	assert_int_equal(repo_lease_take(f->repo, f->cfg, "/srv/c", &l, &err), 0);
	char *path = lease_file(f, l);
	char *junk = xasprintf("%s/%sjunk.json", dir, REPO_LEASE_PREFIX);
	FILE *fp = fopen(junk, "w");
	assert_non_null(fp);
	fputs("not a lease", fp);
	fclose(fp);

	assert_int_equal(repo_leases_read(f->repo, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	const RepoLeaseInfo *bad = strcmp(v[0].id, "junk") == 0 ? &v[0] : &v[1];
	const RepoLeaseInfo *good = bad == &v[0] ? &v[1] : &v[0];
	/* Not ours to judge: it holds everything for REPO_LEASE_MAX after it was written. */
	assert_false(bad->parsed);
	assert_true(bad->owner.expires >= now + REPO_LEASE_MAX - 5);
	assert_false(repo_lease_expired(bad, now));
	char text[5000];
	repo_lease_describe(bad, text, sizeof(text));
	assert_non_null(strstr(text, "cannot be read as a walship lease"));
	assert_true(good->parsed);
	assert_false(repo_lease_expired(good, now));
	assert_true(repo_lease_expired(good, now + 10));

	/* Read as expired, but its heartbeat renewed it since: left in place. */
	RepoLeaseInfo copy = *good;
	copy.owner.heartbeat -= 100;
	assert_int_equal(repo_lease_remove(f->repo, &copy, &err), 1);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(repo_lease_remove(f->repo, bad, &err), 0);
	assert_int_not_equal(access(junk, F_OK), 0);
	free(v);
	repo_lock_release(l);
	assert_int_not_equal(access(path, F_OK), 0);
	free(junk);
	free(path);
}

typedef struct Releaser {
	RepoLock *lock;
	unsigned delay_ms;
} Releaser;

static void *release_later(void *arg)
{
	Releaser *r = arg;
	struct timespec ts = {r->delay_ms / 1000, (long)(r->delay_ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	repo_lock_release(r->lock);
	return NULL;
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_a_lease_waits_for_a_running_prune_only(void **state)
{
	Fixture *f = *state;
	Releaser r = {NULL, 1500};
	pthread_t t;
	WsError err;

	/* No lock, or one for a backup (it removes nothing): no wait. */
	double t0 = mono();
	assert_int_equal(repo_lock_wait(f->repo, "prune", &err), 0);
	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "backup", &r.lock, &err), 0);
	assert_int_equal(repo_lock_wait(f->repo, "prune", &err), 0);
	assert_true(mono() - t0 < 1.0);
	repo_lock_release(r.lock);

	/* A live prune: until it is done. */
	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "prune", &r.lock, &err), 0);
	t0 = mono();
	assert_int_equal(pthread_create(&t, NULL, release_later, &r), 0);
	assert_int_equal(repo_lock_wait(f->repo, "prune", &err), 0);
	assert_true(mono() - t0 >= 1.4);
	pthread_join(t, NULL);

	/* A prune whose heartbeat stopped long ago (it died elsewhere): no wait. */
	assert_int_equal(repo_lock_acquire(f->repo, f->cfg, "prune", &r.lock, &err), 0);
	doctor(f, "elsewhere.example", 4242, (json_int_t)time(NULL) - REPO_LOCK_EXPIRY - 5);
	t0 = mono();
	assert_int_equal(repo_lock_wait(f->repo, "prune", &err), 0);
	assert_true(mono() - t0 < 1.0);
	unlink(f->lockpath);
	repo_lock_release(r.lock);
}

/* Rewrite a lease file as if a process that has exited (pid) had written it. */
static void doctor_lease_pid(const char *path, json_int_t pid)
{
	json_t *o = read_json(path);
	json_object_set_new(o, "pid", json_integer(pid));
	json_object_set_new(o, "token", json_string("0123456789abcdef0123456789abcdef"));
	assert_int_equal(json_dump_file(o, path, 0), 0);
	json_decref(o);
}

static void test_a_new_rebuild_drops_the_leases_of_earlier_ones_of_its_directory(void **state)
{
	Fixture *f = *state;
	RepoLock *old = NULL, *other = NULL, *live = NULL, *now = NULL;
	WsError err;
	int64_t t = (int64_t)time(NULL);

	pid_t child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	assert_int_equal(repo_lease_take(f->repo, f->cfg, "/srv/same", &old, &err), 0);
	assert_int_equal(repo_lease_keep_until(old, t + 3600, &err), 0);
	char *old_path = lease_file(f, old);
	repo_lease_leave(old);
	doctor_lease_pid(old_path, child);
	assert_int_equal(repo_lease_take(f->repo, f->cfg, "/srv/other", &other, &err), 0);
	assert_int_equal(repo_lease_keep_until(other, t + 3600, &err), 0);
	char *other_path = lease_file(f, other);
	repo_lease_leave(other);
	doctor_lease_pid(other_path, child);
	/* A rebuild of the same directory still running (this process): left alone. */
	assert_int_equal(repo_lease_take(f->repo, f->cfg, "/srv/same", &live, &err), 0);
	char *live_path = lease_file(f, live);

	assert_int_equal(repo_lease_take(f->repo, f->cfg, "/srv/same", &now, &err), 0);
	assert_int_equal(repo_lease_drop_others(now), 1);
	assert_int_not_equal(access(old_path, F_OK), 0);
	assert_int_equal(access(other_path, F_OK), 0);
	assert_int_equal(access(live_path, F_OK), 0);
	repo_lock_release(now);
	repo_lock_release(live);
	unlink(other_path);
	free(old_path);
	free(other_path);
	free(live_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_taker_wins_and_release_removes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_lock_is_taken_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_owner_on_this_machine_is_taken_over_at_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_renews_and_notices_a_takeover, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lease_is_taken_narrowed_kept_and_left, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_released_or_left_without_a_time_is_removed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_expired_and_unreadable_leases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_lease_waits_for_a_running_prune_only, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_new_rebuild_drops_the_leases_of_earlier_ones_of_its_directory, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
