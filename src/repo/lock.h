/*
 * lock.h - the repository lock: one prune or backup at a time, on every store.
 *
 * The lock is an object "walship.lock" at the repository's root, created with
 * no-overwrite (so exactly one taker wins on local disk, SFTP and S3 alike).
 * Its content (plain JSON, also in encrypted repositories: it holds no data)
 * names the owner (command, host, pid, start time) and a heartbeat time,
 * renewed by a background thread on its own store handle every
 * REPO_LOCK_HEARTBEAT seconds.  A lock whose heartbeat is older than
 * REPO_LOCK_EXPIRY seconds belongs to a process that died: it is taken over
 * (removed, then created again with no-overwrite; a concurrent taker loses
 * the create).  So is, at once, a lock written on this machine since its
 * last boot (same host name and boot id) by a process that no longer exists
 * (a killed prune or backup).  A random token in the content tells the
 * owner's lock from a successor's: renewal and release touch only their own.
 * Release removes it.
 *
 * Test-only: WALSHIP_TEST_LOCK_EXPIRY=SECONDS (1 to REPO_LOCK_EXPIRY) shortens
 * the expiry (and the heartbeat to a third of it), so that tests of a killed
 * owner on another "host" need not wait five minutes.
 */
#ifndef WALSHIP_REPO_LOCK_H
#define WALSHIP_REPO_LOCK_H

#include "repo/repo.h"
#include "util/config.h"
#include "util/error.h"

#define REPO_LOCK_KEY       "walship.lock"
#define REPO_LOCK_HEARTBEAT 30
#define REPO_LOCK_EXPIRY    300

typedef struct RepoLock RepoLock;

/*
 * Take the lock for purpose ("prune", "backup").  Held by a live owner:
 * WS_FATAL "repository \"R\" is locked by walship prune on HOST (pid P) since
 * T" with a hint (wait; or, if that process is gone, it expires after
 * REPO_LOCK_EXPIRY seconds).  cfg is used to open the heartbeat's own store
 * handle.
 */
int repo_lock_acquire(Repo *repo, const Config *cfg, const char *purpose, RepoLock **out, WsError *err);

/* REPO_LOCK_EXPIRY, or the test-only override. */
long repo_lock_expiry(void);

/*
 * WS_FATAL if the heartbeat found the lock taken over by another process (it
 * was not renewed in time): the holder must stop changing the repository.
 */
int repo_lock_check(RepoLock *lock, WsError *err);

/*
 * Stop the heartbeat and remove the lock object if it is still ours; NULL is
 * fine.  Errors are logged as warnings.
 */
void repo_lock_release(RepoLock *lock);

#endif
