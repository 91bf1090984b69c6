/*
 * test_lock.c - the repository lock on a local store: one taker wins, the
 * loser is told who holds it; a lock whose heartbeat stopped (doctored) or
 * whose process on this machine is gone is taken over; the heartbeat renews
 * it; release removes only our own lock, promptly.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "repo/lock.h"
#include "repo/repo.h"
#include "util/mem.h"

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
		rc = repo_create(f->cfg, SYSID, 15, SEG16, &f->repo, &err);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_taker_wins_and_release_removes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_lock_is_taken_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_owner_on_this_machine_is_taken_over_at_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_renews_and_notices_a_takeover, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
