/*
 * lock.h - the repository lock: one prune or backup at a time, on every store.
 *
 * The design and formats behind it: src/repo/README.md, "lock".
 *
 * Memory: repo_lease_id is borrowed (lives as long as the lease); repo_leases_read's array and
 * repo_lease_json's object are the caller's (free, json_decref).
 */
#ifndef WALSHIP_REPO_LOCK_H
#define WALSHIP_REPO_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "repo/backupmeta.h"
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

/*
 * Wait while the lock is held by a live walship <purpose> (a prune): say so
 * once, then poll.  Returns 0 once it is free, held for another purpose, or
 * stale; an error only if the lock cannot be read.
 */
int repo_lock_wait(Repo *repo, const char *purpose, WsError *err);

/* ---- leases ---- */

#define REPO_LEASE_PREFIX "leases/"
/* The longest a lease may be kept after its owner exits; also how long an unreadable one holds. */
#define REPO_LEASE_MAX (366 * 86400L)

/* What every lock object (the repository lock or a lease) says of its owner; "" or 0 when absent. */
typedef struct RepoLockOwner {
	char purpose[32];
	char host[256];
	char boot_id[40];
	char token[33];
	long long pid;
	char started_at[32];
	int64_t heartbeat;
	int64_t expires; /* leases only */
} RepoLockOwner;

/* A lease as read back from the repository. */
typedef struct RepoLeaseInfo {
	char id[48];
	char key[80];
	bool parsed; /* false: not readable as a lease; it expires REPO_LEASE_MAX after its mtime */
	RepoLockOwner owner;
	char pgdata[4096];
	char epoch[32]; /* "" while its owner is still choosing: it holds every backup and all WAL */
	char backup[BACKUP_ID_MAX];
	uint32_t timeline;
	char start_wal[32];
} RepoLeaseInfo;

/*
 * Create a lease for a rebuild of pgdata, holding everything for now, with its
 * heartbeat.  Release it with repo_lock_release (removes it) or
 * repo_lease_leave (keeps it until its expiry).
 */
int repo_lease_take(Repo *repo, const Config *cfg, const char *pgdata, RepoLock **out, WsError *err);

/* Narrow the lease to one backup of one epoch, recovered along timeline (start_wal: its first WAL file). */
int repo_lease_hold(RepoLock *lease, const char *epoch, const char *backup, uint32_t timeline,
		    const char *start_wal, WsError *err);

/* Keep the lease until at least until (seconds since 1970), also after this process exits. */
int repo_lease_keep_until(RepoLock *lease, int64_t until, WsError *err);

const char *repo_lease_id(const RepoLock *lease);

/*
 * Stop the heartbeat and leave the lease in the repository until the time
 * given to repo_lease_keep_until (removed at once if that has passed); free
 * it.  NULL is fine.  Errors are logged as warnings.
 */
void repo_lease_leave(RepoLock *lease);

/*
 * Remove the leases of earlier rebuilds of the same data directory on this
 * machine whose process is gone: that directory's content is being replaced,
 * so nothing will fetch what they hold.  Failures are warnings.  Returns how
 * many were removed.
 */
int repo_lease_drop_others(RepoLock *lease);

/* Every object under leases/, sorted by key; free *out.  Store errors pass through. */
int repo_leases_read(Repo *repo, RepoLeaseInfo **out, int *n, WsError *err);

bool repo_lease_expired(const RepoLeaseInfo *l, int64_t now);

/*
 * Remove an expired lease: 0, or 1 when it was left because it changed since
 * it was read (a heartbeat came back).  Already gone counts as removed.
 */
int repo_lease_remove(Repo *repo, const RepoLeaseInfo *l, WsError *err);

/*
 * "walship rebuild on HOST (pid P), data directory "D", since S, until U" for
 * messages (what an unreadable one is, instead).
 */
void repo_lease_describe(const RepoLeaseInfo *l, char *buf, size_t size);

/* The lease as a JSON object (new reference), for --json outputs. */
json_t *repo_lease_json(const RepoLeaseInfo *l, int64_t now);

#endif
