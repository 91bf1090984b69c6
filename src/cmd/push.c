/*
 * push.c - walship-push, archive_command: store the WAL file PostgreSQL asks
 * for (wal/pushfile.c) once global/pg_control matches the repository's
 * newest epoch; with push-parallel > 1, also store the other ready files
 * (wal/pushqueue.c), and answer at once a call whose file an earlier call
 * stored ahead (a record, wal/pushspool.h), checked as below.
 *
 * A later call for a recorded file answers 0 without storing it again, but
 * only when the record names the configured repository and this cluster's
 * system identifier and the local file, hashed again, has exactly the
 * recorded size and SHA-256; the record is then removed.  Anything else (no
 * record, damaged, stale) means a normal push.  The record is looked up
 * before the repository is opened because opening costs round trips (an S3
 * listing and walship.json) that would otherwise make every call as slow as
 * a push.
 *
 * SIGTERM/SIGINT end the process at once (util/cleanup.h): temp files of
 * every thread are removed, a record exists only for a file already durable,
 * and the exit status is 1 unless the asked-for file was already stored.
 * push-parallel = 1 never reads or writes the spool.
 */
#include "cmd/push.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pg/cluster.h"
#include "pg/walname.h"
#include "repo/keys.h"
#include "repo/repo.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/mem.h"
#include "wal/pushfile.h"
#include "wal/pushqueue.h"
#include "wal/pushspool.h"

/* Whether the local file is still exactly what rec recorded (size and SHA-256, hashed again). */
static bool same_local_file(PushFile *f, const PushRecord *rec)
{
	struct stat st;
	unsigned char sha[32];
	bool same = false;
	f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (f->fd >= 0 && fstat(f->fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size == rec->size) {
		f->size = rec->size;
		same = push_file_sha256(f, sha, NULL) == 0 && memcmp(sha, rec->sha256, 32) == 0;
	}
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	return same;
}

/*
 * The record's key is one this file can be stored under in epoch: its own
 * key, or (a differing .partial or .backup) the variant for its SHA-256.
 */
static bool key_of_file(const RepoEpoch *epoch, const PushRecord *rec, const WalName *name)
{
	char key[STORE_KEY_MAX];
	if (repo_key_wal(epoch, name, key, sizeof(key)) == 0 && strcmp(key, rec->key) == 0)
		return true;
	return (name->kind == WAL_PARTIAL || name->kind == WAL_BACKUP) &&
	       repo_key_wal_variant(epoch, name, rec->sha256, key, sizeof(key)) == 0 &&
	       strcmp(key, rec->key) == 0;
}

/*
 * What a record needs checked besides walship.json, started before the
 * repository is opened: the local file hashed again (in a thread: it
 * overlaps the SSH login or the S3 requests), and the object's stat, on a
 * handle of its own where two requests overlap (S3, store_url_overlaps: then
 * the HEAD and the walship.json GET cost one round trip, not two).
 */
typedef struct RecordCheck {
	const Config *cfg;
	const PushRecord *rec;
	PushFile *f;
	pthread_t stat_thread, hash_thread;
	bool stat_started, hash_started, joined;
	bool same; /* the local file is the recorded one */
	int rc;
	StoreStat st;
	WsError err;
} RecordCheck;

static void *record_stat_main(void *arg)
{
	RecordCheck *rc = arg;
	rc->rc = repo_stat_alone(rc->cfg, rc->rec->key, &rc->st, &rc->err);
	return NULL;
}

static void *record_hash_main(void *arg)
{
	RecordCheck *rc = arg;
	rc->same = same_local_file(rc->f, rc->rec);
	return NULL;
}

/* Start the checks of rec for f (neither may be touched until record_check_join). */
static void record_check_start(RecordCheck *c, const Config *cfg, const PushRecord *rec, PushFile *f)
{
	c->cfg = cfg;
	c->rec = rec;
	c->f = f;
	c->joined = false;
	ws_error_clear(&c->err);
	c->stat_started = store_url_overlaps(config_get(cfg, "repo")) &&
			  pthread_create(&c->stat_thread, NULL, record_stat_main, c) == 0;
	c->hash_started = pthread_create(&c->hash_thread, NULL, record_hash_main, c) == 0;
	if (!c->hash_started)
		c->same = same_local_file(f, rec);
}

/* Wait for both checks (once; nothing if none was started). */
static void record_check_join(RecordCheck *c)
{
	if (c->joined)
		return;
	if (c->hash_started)
		pthread_join(c->hash_thread, NULL);
	if (c->stat_started)
		pthread_join(c->stat_thread, NULL);
	c->joined = true;
}

/* The object's stat: the early one's, or asked now on repo's own handle. */
static int record_check_stat(RecordCheck *c, Repo *repo, StoreStat *st, WsError *err)
{
	record_check_join(c);
	if (!c->stat_started)
		return store_stat(repo_store(repo), c->rec->key, st, err);
	*st = c->st;
	*err = c->err;
	return c->rc;
}

/*
 * rec (found in dir, push_spool_find, checked by c) says an earlier call
 * stored this very file: 1 (answer 0 at once), 0 (push as usual).  It counts
 * only for the repository opened in this call (repo, whose walship.json was
 * just read: the record's UUID, and pushes still go to the record's epoch),
 * while the object is still there with the recorded size, and for the same
 * local content.  The record is removed either way.  Cost: a stat of the
 * object (S3: one HEAD, at the same time as reading walship.json).
 */
static int answered_by_record(Repo *repo, const RepoEpoch *epoch, const PushRecord *found, const char *dir,
			      RecordCheck *c, PushFile *f)
{
	const PushRecord rec = *found;
	StoreStat st;
	WsError serr;
	const char *uuid = repo_meta(repo)->uuid;
	int hit = 0;

	if (strcmp(rec.uuid, uuid) != 0) {
		/* Stored into a repository that is no longer the one at this place: store it again. */
		log_warning("repository \"%s\" is not the one \"%s\" was archived into ahead of its call: "
			    "archiving it again",
			    repo_display(repo), f->name.name);
		log_detail(
			"The file went to repository %s, epoch \"%s\"; the repository there now is %s. WAL "
			"files archived before it was replaced may be missing from it: check with \"walship "
			"verify\".",
			rec.uuid, rec.epoch, uuid);
		push_spool_remove(dir, f->name.name);
		return 0;
	}
	ws_error_clear(&serr);
	record_check_join(c);
	if (c->same && strcmp(rec.epoch, epoch->id) == 0 && key_of_file(epoch, &rec, &f->name)) {
		int rc = record_check_stat(c, repo, &st, &serr);
		if (rc == 0 && st.size == rec.stored_size)
			hit = 1;
		else if (rc == 0 || rc == WS_NOT_FOUND)
			log_warning(
				"\"%s\" was archived ahead of its call but is no longer in repository \"%s\" "
				"as it was stored: archiving it again",
				f->name.name, repo_display(repo));
		else
			log_debug("could not check the record of \"%s\": %s", f->name.name, serr.msg);
	}
	push_spool_remove(dir, f->name.name);
	if (hit) {
		char hex[65];
		hex_encode(rec.sha256, 32, hex);
		log_info("\"%s\" was already archived ahead of its call, in epoch \"%s\" (SHA-256 %s)",
			 f->name.name, rec.epoch, hex);
	}
	return hit;
}

int cmd_push(const Config *cfg, const char *pgdata, const char *path, const char *name, WsError *err)
{
	PushFile f;
	ClusterInfo ci;
	Repo *repo = NULL;
	const RepoEpoch *epoch;
	const char *spool = config_get(cfg, "spool-path");
	char *repo_ident = NULL, *status_dir = NULL, *rec_dir = NULL;
	PushRecord rec;
	RecordCheck check = {0};
	PushQueue *queue = NULL;
	long parallel = 1;
	int rc;

	if ((rc = push_file_init(&f, path, name, err)) != 0) {
		if (rc == WS_USAGE && walname_args_swapped(path, name))
			ws_error_hint(err, "The arguments look swapped: archive_command takes %%p %%f "
					   "(walship-push %%p %%f).");
		return rc;
	}
	if ((rc = config_get_int(cfg, "push-parallel", 1, PUSH_PARALLEL_MAX, &parallel, err)) != 0)
		goto done;
	if ((rc = cluster_read(pgdata, &ci, err)) != 0)
		goto done;
	if (parallel > 1) {
		if ((rc = push_spool_check(spool, pgdata, err)) != 0)
			goto done;
		repo_ident = repo_config_identity(cfg);
		if (push_spool_find(spool, f.name.name, repo_ident, ci.control.sysid, &rec, &rec_dir) != 0)
			rec_dir = NULL;
	}
	if (rec_dir != NULL)
		record_check_start(&check, cfg, &rec, &f);
	/*
	 * With a record, walship.json read now is the proof the record needs:
	 * S3's bucket listing would only add a round trip (repo_open_quick).
	 * Should that open fail, the full one says why.
	 */
	rc = rec_dir != NULL ? repo_open_quick(cfg, &repo, err) : WS_FATAL;
	if (rc != 0 && (rc = repo_open(cfg, &repo, err)) != 0)
		goto done;
	if ((rc = cluster_push_epoch(repo_meta(repo), &ci, repo_display(repo), &epoch, err)) != 0)
		goto done;
	if (rec_dir != NULL && answered_by_record(repo, epoch, &rec, rec_dir, &check, &f))
		goto done;
	record_check_join(&check); /* f is this thread's again */

	if (parallel > 1)
		queue = push_queue_open(cfg, repo, &ci, epoch, repo_ident, (int)parallel, pgdata,
					f.name.name);
	const char *spool_dir = push_queue_spool_dir(queue);

	/*
	 * History files first, one at a time: a timeline's .history is stored
	 * before its segments.  A file PostgreSQL asks for again after it failed
	 * goes first too: while it keeps failing nothing is stored ahead, so a
	 * stuck archiver does not go on storing the backlog behind it.
	 */
	bool retrying = spool_dir != NULL && push_spool_is_failing(spool_dir, f.name.name);
	bool asked_done = false;
	if (f.name.kind == WAL_HISTORY || retrying) {
		rc = push_file_store(repo, &ci, epoch, &f, err);
		asked_done = true;
	}
	if (queue != NULL && rc == 0) {
		push_queue_store_history(queue, repo);
		push_queue_start(queue);
	}
	if (!asked_done)
		rc = push_file_store(repo, &ci, epoch, &f, err);
	if (rc == 0) {
		cleanup_set_exit_code(0); /* a signal from now on ends a call that succeeded */
		/* This thread is one of push-parallel too: it helps with the rest of the queue. */
		if (queue != NULL)
			push_queue_help(queue, repo);
	} else if (queue != NULL) {
		/* PostgreSQL will ask again for the file that failed: stop here, finish what was started. */
		push_queue_stop(queue);
	}
	push_queue_join(queue);
	if (spool_dir != NULL) {
		if (rc != 0)
			push_spool_set_failing(spool_dir, f.name.name);
		else if (retrying)
			push_spool_clear_failing(spool_dir);
		status_dir = xasprintf("%s/pg_wal/archive_status", pgdata);
		(void)push_spool_expire(spool_dir, status_dir, time(NULL), PUSH_SPOOL_MAX_AGE);
	}
done:
	if (rc != 0 && rc != WS_USAGE && err->msg[0] && strstr(err->msg, f.name.name) == NULL &&
	    f.name.name[0])
		ws_error_prefix(err, "could not archive \"%s\"", f.name.name);
	record_check_join(&check);
	push_file_close(&f);
	push_queue_free(queue);
	free(status_dir);
	free(rec_dir);
	free(repo_ident);
	repo_free(repo);
	return rc;
}
