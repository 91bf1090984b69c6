/*
 * push.c - archive_command: validate one WAL file, then compress, checksum and
 * store it with no-overwrite; an existing object is compared, never replaced.
 *
 * Why each check: %f becomes a repository key (so only WAL names pass);
 * global/pg_control must match the repository's newest epoch (.history and
 * .backup files carry no system identifier); a segment must have the epoch's
 * size and a long page header of this cluster at the address its name says.
 *
 * Parallel push (push-parallel > 1).  PostgreSQL runs archive_command for
 * one file at a time, so over a slow store one file per call cannot keep up.
 * A call therefore also stores other files that pg_wal/archive_status lists
 * as .ready (read, never written: PostgreSQL alone marks files done), oldest
 * first in PostgreSQL's own order: history files first, then by name
 * (.partial and .backup files included), up to PUSH_ROUNDS * push-parallel
 * files in all.  Files that already have a record are skipped.  They form a
 * queue: push-parallel - 1 worker threads, each with its own store
 * connection and encoder, take the next file as soon as their last one is
 * stored, and the calling thread joins them once the asked-for file is
 * stored, so that push-parallel files are in flight at once.  History files
 * are stored first, before any segment is started (a timeline's .history
 * before its segments).  Each file is validated and stored exactly as a call
 * for it would; a file that fails is left alone (a warning here; PostgreSQL
 * will ask for it and get the real error).  Only once a file is durable in
 * the repository (or an identical object is), a record (pushspool.h) is
 * written under spool-path, outside the data directory.  If the asked-for
 * file fails, no further file is taken.  Every worker is joined before the
 * call returns, and the exit status is the asked-for file's.
 *
 * Why several rounds per call: a call's fixed cost (start-up, opening the
 * repository: two round trips to S3) is paid once for the whole queue, and
 * PostgreSQL's own cost per file (a shell, renaming .ready) is small for a
 * recorded file; with only push-parallel files per call that fixed cost
 * would keep the rate well below push-parallel times one file per call.
 *
 * A later call for a recorded file answers 0 without contacting the
 * repository, but only when the record names the configured repository and
 * this cluster's system identifier and the local file, hashed again, has
 * exactly the recorded size and SHA-256; the record is then removed.
 * Anything else (no record, damaged, stale) means a normal push.  The
 * record is looked up before the repository is opened because opening costs
 * round trips (an S3 listing and walship.json) that would otherwise make
 * every call as slow as a push.
 *
 * SIGTERM/SIGINT end the process at once (util/cleanup.h): temp files of
 * every thread are removed, a record exists only for a file already durable,
 * and the exit status is 1 unless the asked-for file was already stored.
 * push-parallel = 1 never reads or writes the spool.
 */
#include "cmd/push.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/pushspool.h"
#include "pg/cluster.h"
#include "pg/walname.h"
#include "pg/walpage.h"
#include "repo/keys.h"
#include "repo/repo.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/mem.h"

/* More workers would outrun util/cleanup.h's slots for their temp files. */
#define PUSH_PARALLEL_MAX 16

/*
 * A call stores at most this many files per thread: push-parallel at once,
 * each thread taking the next oldest ready file when its last one is stored.
 * The fixed cost of a call (start-up, opening the repository: two round
 * trips to S3) is then shared by up to PUSH_ROUNDS * push-parallel files,
 * while a call still lasts a few store times at most.
 */
#define PUSH_ROUNDS 4

typedef struct PushFile {
	const char *path;
	WalName name;
	int fd;
	uint64_t size;
	bool ahead;               /* stored for a later call (parallel push) */
	unsigned char sha256[32]; /* of the content now in the repository, once stored */
	char key[STORE_KEY_MAX];  /* the object holding it, once stored */
	uint64_t stored_size;     /* that object's size */
	char what[WAL_NAME_MAX + 16];
} PushFile;

static int discard_write(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	(void)ctx, (void)buf, (void)len, (void)err;
	return 0;
}

/* SHA-256 of the whole local file (the rare duplicate path only). */
static int file_sha256(PushFile *f, unsigned char out[32], WsError *err)
{
	unsigned char buf[256 * 1024];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = 0;
	off_t pos = 0;
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = ws_error(err, WS_FATAL, "could not initialise SHA-256");
		goto done;
	}
	for (;;) {
		ssize_t n = pread(f->fd, buf, sizeof(buf), pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ws_error_errno(err, WS_FATAL, errno, "could not read file \"%s\"", f->path);
			goto done;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)n);
		pos += n;
	}
	EVP_DigestFinal_ex(md, out, NULL);
done:
	EVP_MD_CTX_free(md);
	return rc;
}

static int open_wal_file(PushFile *f, const ClusterInfo *ci, const RepoEpoch *epoch, WsError *err)
{
	struct stat st;
	f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not open WAL file \"%s\"", f->path);
	if (fstat(f->fd, &st) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not stat WAL file \"%s\"", f->path);
	if (!S_ISREG(st.st_mode))
		return ws_error(err, WS_FATAL, "\"%s\" is not a regular file", f->path);
	f->size = (uint64_t)st.st_size;
	(void)posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);

	if (f->name.kind == WAL_HISTORY || f->name.kind == WAL_BACKUP) {
		if (f->size > WAL_SMALL_FILE_MAX)
			return ws_error(err, WS_FATAL, "%s \"%s\" has %" PRIu64 " bytes, more than any %s",
					walname_kind_str(f->name.kind), f->name.name, f->size,
					walname_kind_str(f->name.kind));
		return 0;
	}

	/* Segments and .partial files: full size, this cluster's page header. */
	int rc = walname_check_segsize(&f->name, epoch->seg_size, err);
	if (rc != 0)
		return rc;
	if (f->size != epoch->seg_size) {
		char want[32];
		ws_error(err, WS_FATAL, "WAL file \"%s\" has %" PRIu64 " bytes, expected %" PRIu32 " (%s)",
			 f->name.name, f->size, epoch->seg_size,
			 cluster_size_str(epoch->seg_size, want, sizeof(want)));
		ws_error_hint(err, "A truncated or foreign file is never archived. Check \"%s\".", f->path);
		return WS_FATAL;
	}
	unsigned char page[WAL_LONG_HEADER_SIZE];
	ssize_t n = pread(f->fd, page, sizeof(page), 0);
	if (n < 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not read WAL file \"%s\"", f->path);
	rc = wal_page_check(page, (size_t)n, ci->pg_major, ci->control.sysid, epoch->seg_size,
			    walname_segno(&f->name, epoch->seg_size), f->name.name, err);
	if (rc != 0)
		ws_error_hint(err, "WAL file \"%s\" was not archived. Check where \"%s\" came from.",
			      f->name.name, f->path);
	return rc;
}

/* Put the file's content as an object under key, no-overwrite. */
static int put_file(Repo *repo, PushFile *f, const char *key, ObjInfo *info, WsError *err)
{
	if (lseek(f->fd, 0, SEEK_SET) < 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not seek in \"%s\"", f->path);
	FdReader rd = {f->fd, f->what};
	return repo_put_object(repo, key, fd_reader_read, &rd, f->size, true, info, err);
}

/*
 * key already exists: compare the stored object (read and verified whole,
 * described in *info) with the local file.  *same tells the outcome; a
 * corrupt stored object is an error.
 */
static int compare_stored(Repo *repo, PushFile *f, const char *key, unsigned char local[32], ObjInfo *info,
			  int *same, WsError *err)
{
	int rc = file_sha256(f, local, err);
	if (rc != 0)
		return rc;
	rc = repo_get_object(repo, key, f->size > WAL_SMALL_FILE_MAX ? f->size : WAL_SMALL_FILE_MAX,
			     discard_write, NULL, info, err);
	if (rc == WS_CORRUPT) {
		ws_error_prefix(err,
				"WAL file \"%s\" is already in the repository but the stored copy is damaged",
				f->name.name);
		ws_error_hint(
			err,
			"Move the damaged object \"%s\" aside in repository \"%s\" and let the archiver "
			"retry.",
			key, repo_display(repo));
	}
	if (rc != 0)
		return rc;
	*same = memcmp(local, info->sha256, 32) == 0 && info->content_size == f->size;
	return 0;
}

/* f's content is now in the repository: under key, in an object of stored_size bytes. */
static void stored_as(PushFile *f, const unsigned char sha256[32], const char *key, uint64_t stored_size)
{
	memcpy(f->sha256, sha256, 32);
	snprintf(f->key, sizeof(f->key), "%s", key);
	f->stored_size = stored_size;
}

static int push_existing(Repo *repo, const RepoEpoch *epoch, PushFile *f, const char *key, WsError *err)
{
	unsigned char local[32];
	char lhex[65], shex[65];
	ObjInfo info;
	int same = 0;
	int rc = compare_stored(repo, f, key, local, &info, &same, err);
	if (rc != 0)
		return rc;
	if (same) {
		stored_as(f, local, key, info.stored_size);
		log_info("WAL file \"%s\" is already archived with the same content", f->name.name);
		return 0;
	}
	hex_encode(local, 32, lhex);
	hex_encode(info.sha256, 32, shex);

	if (f->name.kind == WAL_SEGMENT || f->name.kind == WAL_HISTORY) {
		ws_error(err, WS_FATAL, "WAL file \"%s\" is already archived with different content",
			 f->name.name);
		ws_error_detail(err, "Stored SHA-256 %s, new SHA-256 %s.", shex, lhex);
		ws_error_hint(
			err,
			"The stored copy is kept. Find out which cluster wrote each (a promoted standby or a "
			"cloned data directory archiving into the same repository?) before removing one.");
		return WS_FATAL;
	}

	/* Recovery never reads .partial and .backup files: keep both, do not block the archiver. */
	char vkey[STORE_KEY_MAX];
	if (repo_key_wal_variant(epoch, &f->name, local, vkey, sizeof(vkey)) != 0)
		return ws_error(err, WS_FATAL, "repository key for \"%s\" is too long", f->name.name);
	rc = put_file(repo, f, vkey, &info, err);
	if (rc == WS_EXISTS) {
		rc = compare_stored(repo, f, vkey, local, &info, &same, err);
		if (rc == 0 && !same)
			rc = ws_error(err, WS_FATAL, "%s \"%s\" conflicts with stored \"%s\"",
				      walname_kind_str(f->name.kind), f->name.name, vkey);
		if (rc != 0)
			return rc;
	} else if (rc != 0) {
		return rc;
	}
	log_warning("%s \"%s\" differs from the archived one; stored it beside as \"%s\"",
		    walname_kind_str(f->name.kind), f->name.name, vkey);
	log_detail("Stored SHA-256 %s, new SHA-256 %s.", shex, lhex);
	stored_as(f, local, vkey, info.stored_size);
	return 0;
}

/*
 * Validate f and store it (or find it stored): the whole work of a push once
 * the repository and its epoch are known.  f->fd is opened here.
 */
static int push_file(Repo *repo, const ClusterInfo *ci, const RepoEpoch *epoch, PushFile *f, WsError *err)
{
	char key[STORE_KEY_MAX];
	ObjInfo info;
	int rc = open_wal_file(f, ci, epoch, err);
	if (rc != 0)
		return rc;
	if (repo_key_wal(epoch, &f->name, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "repository key for \"%s\" is too long", f->name.name);
	rc = put_file(repo, f, key, &info, err);
	if (rc == WS_EXISTS)
		return push_existing(repo, epoch, f, key, err);
	if (rc != 0)
		return rc;
	char hex[65];
	stored_as(f, info.sha256, key, info.stored_size);
	hex_encode(info.sha256, 32, hex);
	log_info("archived \"%s\"%s (%" PRIu64 " bytes, stored %" PRIu64 ", SHA-256 %s)", f->name.name,
		 f->ahead ? " ahead of its call" : "", info.content_size, info.stored_size, hex);
	return 0;
}

/* ------------------------------------------------------------------------
 * Parallel push: the other ready files, from a queue shared by the threads.
 */

/* One file stored ahead of its call. */
typedef struct Ahead {
	char *path;
	PushFile f;
	int rc;
	WsError err;
} Ahead;

/* The ready files of one call, oldest first, and what the threads share to store them. */
typedef struct Batch {
	pthread_mutex_t mu;
	Ahead *items;
	int n;
	int next;  /* the first item no thread has taken */
	bool stop; /* the asked-for file failed: take nothing more */
	const Config *cfg;
	const Repo *main_repo; /* walship.json and key shared, read-only */
	const ClusterInfo *ci;
	const RepoEpoch *epoch;
	const char *spool_dir;
	const char *repo_ident;
} Batch;

typedef struct Worker {
	Batch *batch;
	pthread_t thread;
	bool started;
	int rc;
	WsError err; /* the worker's own failure (its connection), not its files' */
} Worker;

/*
 * The next item to store, or NULL.  History files come first in the queue;
 * with history_only nothing else is taken, so that a timeline's .history is
 * stored before any of its segments is started.
 */
static Ahead *batch_take(Batch *b, bool history_only)
{
	Ahead *a = NULL;
	pthread_mutex_lock(&b->mu);
	if (!b->stop && b->next < b->n && (!history_only || b->items[b->next].f.name.kind == WAL_HISTORY))
		a = &b->items[b->next++];
	pthread_mutex_unlock(&b->mu);
	return a;
}

static void batch_stop(Batch *b)
{
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_mutex_unlock(&b->mu);
}

/* Store one queued file with repo and, once it is durable, record it for its call. */
static void ahead_store(Batch *b, Repo *repo, Ahead *a)
{
	a->rc = push_file(repo, b->ci, b->epoch, &a->f, &a->err);
	if (a->rc == 0) {
		/* Durable in the repository: only now may a later call be told so. */
		PushRecord rec;
		memset(&rec, 0, sizeof(rec));
		snprintf(rec.uuid, sizeof(rec.uuid), "%s", repo_meta(b->main_repo)->uuid);
		snprintf(rec.repo, sizeof(rec.repo), "%s", b->repo_ident);
		snprintf(rec.epoch, sizeof(rec.epoch), "%s", b->epoch->id);
		snprintf(rec.name, sizeof(rec.name), "%s", a->f.name.name);
		rec.sysid = b->ci->control.sysid;
		rec.size = a->f.size;
		memcpy(rec.sha256, a->f.sha256, 32);
		snprintf(rec.key, sizeof(rec.key), "%s", a->f.key);
		rec.stored_size = a->f.stored_size;
		rec.stored = time(NULL);
		a->rc = push_spool_write(b->spool_dir, &rec, &a->err);
	}
	if (a->f.fd >= 0) {
		close(a->f.fd);
		a->f.fd = -1;
	}
}

static void *worker_main(void *arg)
{
	Worker *w = arg;
	Repo *repo = NULL;

	w->rc = repo_open_another(w->batch->main_repo, w->batch->cfg, &repo, &w->err);
	if (w->rc == 0) {
		/* The files are the parallelism here: zstd's own threads would only add their buffers. */
		repo_set_encoder_workers(repo, 0);
		Ahead *a;
		while ((a = batch_take(w->batch, false)) != NULL)
			ahead_store(w->batch, repo, a);
	}
	repo_free(repo);
	return NULL;
}

/* PostgreSQL's order of ready files (pgarch.c): history files first, then by name. */
static int ready_cmp(const char *a, const char *b)
{
	bool ha = strstr(a, ".history") != NULL, hb = strstr(b, ".history") != NULL;
	if (ha != hb)
		return ha ? -1 : 1;
	return strcmp(a, b);
}

/*
 * Up to max of the first ready files in status_dir, skipping the asked-for
 * one and those already recorded in spool_dir; into out (max names), sorted.
 * Memory stays bounded however many files are ready.
 */
static int choose_ready(const char *status_dir, const char *asked, const char *spool_dir, int max,
			char (*out)[WAL_NAME_MAX])
{
	DIR *d = opendir(status_dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char name[WAL_NAME_MAX];
		size_t len = strlen(e->d_name);
		WalName wn;
		if (len <= 6 || strcmp(e->d_name + len - 6, ".ready") != 0 || len - 6 >= sizeof(name))
			continue;
		memcpy(name, e->d_name, len - 6);
		name[len - 6] = '\0';
		if (strcmp(name, asked) == 0 || walname_parse(name, &wn, NULL) != 0)
			continue;
		if (n == max && ready_cmp(name, out[n - 1]) >= 0)
			continue;
		if (push_spool_has(spool_dir, name))
			continue;
		int i = n < max ? n++ : max - 1;
		while (i > 0 && ready_cmp(name, out[i - 1]) < 0) {
			memcpy(out[i], out[i - 1], WAL_NAME_MAX);
			i--;
		}
		memcpy(out[i], name, WAL_NAME_MAX);
	}
	closedir(d);
	return n;
}

/* Fill b's queue with up to max of the oldest ready files (none taken yet). */
static void batch_fill(Batch *b, int max, const char *pgdata, const char *asked)
{
	char(*names)[WAL_NAME_MAX] = xcalloc((size_t)max, WAL_NAME_MAX);
	char *status_dir = xasprintf("%s/pg_wal/archive_status", pgdata);
	b->n = choose_ready(status_dir, asked, b->spool_dir, max, names);
	b->items = xcalloc((size_t)(b->n > 0 ? b->n : 1), sizeof(*b->items));
	for (int i = 0; i < b->n; i++) {
		Ahead *a = &b->items[i];
		a->path = xasprintf("%s/pg_wal/%s", pgdata, names[i]);
		a->f.path = a->path;
		a->f.fd = -1;
		a->f.ahead = true;
		(void)walname_parse(names[i], &a->f.name, NULL);
		snprintf(a->f.what, sizeof(a->f.what), "WAL file \"%s\"", a->f.name.name);
		ws_error_clear(&a->err);
	}
	free(status_dir);
	free(names);
}

/*
 * The queue of a parallel push: spool_dir (made if missing) and up to
 * PUSH_ROUNDS * parallel - 1 of the oldest other ready files.  NULL when the
 * spool cannot be used: archiving goes on one file at a time.
 */
static Batch *batch_open(const Config *cfg, const Repo *repo, const ClusterInfo *ci, const RepoEpoch *epoch,
			 const char *repo_ident, int parallel, const char *pgdata, const char *asked,
			 char **spool_dir)
{
	WsError serr;
	ws_error_clear(&serr);
	if (push_spool_dir(config_get(cfg, "spool-path"), repo_meta(repo)->uuid, spool_dir, &serr) == 0) {
		Batch *batch = xcalloc(1, sizeof(*batch));
		pthread_mutex_init(&batch->mu, NULL);
		batch->cfg = cfg;
		batch->main_repo = repo;
		batch->ci = ci;
		batch->epoch = epoch;
		batch->spool_dir = *spool_dir;
		batch->repo_ident = repo_ident;
		batch_fill(batch, parallel * PUSH_ROUNDS - 1, pgdata, asked);
		return batch;
	}
	if (strcmp(config_source(cfg, "spool-path"), "default") == 0) {
		/*
		 * The default spool is made by make install and the packages: its
		 * absence is only worth a line at info level.
		 */
		log_info("pushing one file at a time: %s", serr.msg);
	} else {
		ws_error_prefix(&serr, "could not push files ahead of their call");
		log_report_warning(&serr);
	}
	return NULL;
}

/* Start n workers on b's queue; a worker that cannot start leaves its share to the others. */
static void start_workers(Worker *workers, int n, Batch *b)
{
	for (int i = 0; i < n; i++) {
		Worker *w = &workers[i];
		w->batch = b;
		ws_error_clear(&w->err);
		w->started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
	}
}

/* Wait for every worker and report what could not be stored, as warnings. */
static void join_workers(Worker *workers, int n, Batch *b)
{
	bool told = false;
	for (int i = 0; i < n; i++) {
		Worker *w = &workers[i];
		if (w->started)
			pthread_join(w->thread, NULL);
		/* One line for a store that refuses every connection, not one per worker. */
		if (w->rc != 0 && !told) {
			ws_error_prefix(&w->err,
					"could not open a connection to push files ahead of their call");
			log_report_warning(&w->err);
			told = true;
		}
	}
	for (int i = 0; b != NULL && i < b->n; i++) {
		Ahead *a = &b->items[i];
		/* Gone since the listing: PostgreSQL knows better, nothing to say. */
		if (a->rc != 0 && !(a->err.errnum == ENOENT && a->f.fd < 0 && a->f.size == 0)) {
			if (strstr(a->err.msg, a->f.name.name) == NULL)
				ws_error_prefix(&a->err, "could not archive \"%s\" ahead of its call",
						a->f.name.name);
			log_report_warning(&a->err);
		}
		free(a->path);
	}
}

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
		same = file_sha256(f, sha, NULL) == 0 && memcmp(sha, rec->sha256, 32) == 0;
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
	PushFile f = {.path = path, .fd = -1};
	ClusterInfo ci;
	Repo *repo = NULL;
	const RepoEpoch *epoch;
	const char *spool = config_get(cfg, "spool-path");
	char *repo_ident = NULL, *spool_dir = NULL, *status_dir = NULL, *rec_dir = NULL;
	PushRecord rec;
	RecordCheck check = {0};
	Worker *workers = NULL;
	Batch *batch = NULL;
	int n_workers = 0;
	long parallel = 1;
	int rc;

	if ((rc = walname_parse(name, &f.name, err)) != 0)
		return rc;
	snprintf(f.what, sizeof(f.what), "WAL file \"%s\"", f.name.name);
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
		batch = batch_open(cfg, repo, &ci, epoch, repo_ident, (int)parallel, pgdata, f.name.name,
				   &spool_dir);

	/*
	 * History files first, one at a time: a timeline's .history is stored
	 * before its segments.  A file PostgreSQL asks for again after it failed
	 * goes first too: while it keeps failing nothing is stored ahead, so a
	 * stuck archiver does not go on storing the backlog behind it.
	 */
	bool retrying = spool_dir != NULL && push_spool_is_failing(spool_dir, f.name.name);
	bool asked_done = false;
	if (f.name.kind == WAL_HISTORY || retrying) {
		rc = push_file(repo, &ci, epoch, &f, err);
		asked_done = true;
	}
	if (batch != NULL && rc == 0) {
		Ahead *a;
		while ((a = batch_take(batch, true)) != NULL)
			ahead_store(batch, repo, a);
		if (batch->next < batch->n) {
			n_workers = batch->n - batch->next < (int)parallel - 1 ? batch->n - batch->next
									       : (int)parallel - 1;
			workers = xcalloc((size_t)n_workers, sizeof(*workers));
			start_workers(workers, n_workers, batch);
		}
	}
	if (!asked_done)
		rc = push_file(repo, &ci, epoch, &f, err);
	if (rc == 0) {
		cleanup_set_exit_code(0); /* a signal from now on ends a call that succeeded */
		/* This thread is one of push-parallel too: it helps with the rest of the queue. */
		Ahead *a;
		while (batch != NULL && (a = batch_take(batch, false)) != NULL)
			ahead_store(batch, repo, a);
	} else if (batch != NULL) {
		/* PostgreSQL will ask again for the file that failed: stop here, finish what was started. */
		batch_stop(batch);
	}
	join_workers(workers, n_workers, batch);
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
	if (f.fd >= 0)
		close(f.fd);
	free(workers);
	if (batch != NULL) {
		pthread_mutex_destroy(&batch->mu);
		free(batch->items);
		free(batch);
	}
	free(status_dir);
	free(spool_dir);
	free(rec_dir);
	free(repo_ident);
	repo_free(repo);
	return rc;
}
