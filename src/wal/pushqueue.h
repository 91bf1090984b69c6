/*
 * pushqueue.h - parallel push (push-parallel > 1): besides the file it is
 * asked for, a walship-push call stores the oldest other files
 * pg_wal/archive_status lists as .ready, in PostgreSQL's order (history files
 * first, then by name), push-parallel at once: worker threads with their own
 * store connections and the calling thread take the next file as soon as
 * their last one is stored.  Once a file is durable, a record
 * (wal/pushspool.h) lets PostgreSQL's later call for it answer at once.
 * Why and how: src/wal/README.md.
 *
 * Memory: push_queue_spool_dir is borrowed (lives as long as the queue).
 */
#ifndef WALSHIP_WAL_PUSHQUEUE_H
#define WALSHIP_WAL_PUSHQUEUE_H

#include "pg/cluster.h"
#include "repo/repo.h"
#include "util/config.h"

/* The largest push-parallel: more workers would outrun util/cleanup.h's slots for their temp files. */
#define PUSH_PARALLEL_MAX 16

typedef struct PushQueue PushQueue;

/*
 * The queue of a call for asked: its spool directory under spool-path (made
 * if missing) and up to 4 * parallel - 1 of the oldest other ready files of
 * pgdata, none taken yet.  NULL when the spool cannot be used (said at info
 * level for the default spool-path, else as a warning): archiving goes on
 * one file at a time.  repo, ci, epoch and repo_ident (repo_config_identity)
 * are borrowed until push_queue_free.
 */
PushQueue *push_queue_open(const Config *cfg, const Repo *repo, const ClusterInfo *ci, const RepoEpoch *epoch,
			   const char *repo_ident, int parallel, const char *pgdata, const char *asked);

/* The directory of the repository's push records, or NULL for q NULL. */
const char *push_queue_spool_dir(const PushQueue *q);

/* Store, in this thread with repo, the history files at the head of the queue: before any segment. */
void push_queue_store_history(PushQueue *q, Repo *repo);

/* Start the workers (up to push-parallel - 1) on what is queued. */
void push_queue_start(PushQueue *q);

/* Take this thread's share: store queued files with repo until none is left. */
void push_queue_help(PushQueue *q, Repo *repo);

/* The asked-for file failed: take nothing more (files being stored are finished). */
void push_queue_stop(PushQueue *q);

/* Wait for every worker and report, as warnings, what could not be stored (once).  q may be NULL. */
void push_queue_join(PushQueue *q);

/* Join if not done, and free q (NULL is fine). */
void push_queue_free(PushQueue *q);

#endif
