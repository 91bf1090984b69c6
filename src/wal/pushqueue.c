/*
 * pushqueue.c - parallel push: the other ready files of a walship-push call,
 * from a queue its threads share (see pushqueue.h and src/wal/README.md).
 */
#include "wal/pushqueue.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/mem.h"
#include "wal/pushfile.h"
#include "wal/pushspool.h"

/*
 * A call stores at most this many files per thread: push-parallel at once,
 * each thread taking the next oldest ready file when its last one is stored.
 * The fixed cost of a call (start-up, opening the repository: two round
 * trips to S3) is then shared by up to PUSH_ROUNDS * push-parallel files,
 * while a call still lasts a few store times at most.
 */
#define PUSH_ROUNDS 4

/* One file stored ahead of its call. */
typedef struct Ahead {
	char *path;
	PushFile f;
	int rc;
	WsError err;
} Ahead;

typedef struct Worker {
	PushQueue *batch;
	pthread_t thread;
	bool started;
	int rc;
	WsError err; /* the worker's own failure (its connection), not its files' */
} Worker;

/* The ready files of one call, oldest first, and what the threads share to store them. */
struct PushQueue {
	pthread_mutex_t mu;
	Ahead *items;
	int n;
	int next;  /* the first item no thread has taken */
	bool stop; /* the asked-for file failed: take nothing more */
	const Config *cfg;
	const Repo *main_repo; /* walship.json and key shared, read-only */
	const ClusterInfo *ci;
	const RepoEpoch *epoch;
	char *spool_dir;
	const char *repo_ident;
	int parallel;
	Worker *workers; /* parallel - 1 at most */
	int nworkers;
	bool joined; /* push_queue_join reported what failed */
};

/*
 * The next item to store, or NULL.  History files come first in the queue;
 * with history_only nothing else is taken, so that a timeline's .history is
 * stored before any of its segments is started.
 */
static Ahead *queue_take(PushQueue *b, bool history_only)
{
	Ahead *a = NULL;
	pthread_mutex_lock(&b->mu);
	if (!b->stop && b->next < b->n && (!history_only || b->items[b->next].f.name.kind == WAL_HISTORY))
		a = &b->items[b->next++];
	pthread_mutex_unlock(&b->mu);
	return a;
}

void push_queue_stop(PushQueue *b)
{
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_mutex_unlock(&b->mu);
}

/* Store one queued file with repo and, once it is durable, record it for its call. */
static void ahead_store(PushQueue *b, Repo *repo, Ahead *a)
{
	a->rc = push_file_store(repo, b->ci, b->epoch, &a->f, &a->err);
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
	push_file_close(&a->f);
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
		while ((a = queue_take(w->batch, false)) != NULL)
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
static void queue_fill(PushQueue *b, int max, const char *pgdata, const char *asked)
{
	char(*names)[WAL_NAME_MAX] = xcalloc((size_t)max, WAL_NAME_MAX);
	char *status_dir = xasprintf("%s/pg_wal/archive_status", pgdata);
	b->n = choose_ready(status_dir, asked, b->spool_dir, max, names);
	b->items = xcalloc((size_t)(b->n > 0 ? b->n : 1), sizeof(*b->items));
	for (int i = 0; i < b->n; i++) {
		Ahead *a = &b->items[i];
		a->path = xasprintf("%s/pg_wal/%s", pgdata, names[i]);
		(void)push_file_init(&a->f, a->path, names[i], NULL);
		a->f.ahead = true;
		ws_error_clear(&a->err);
	}
	free(status_dir);
	free(names);
}

PushQueue *push_queue_open(const Config *cfg, const Repo *repo, const ClusterInfo *ci, const RepoEpoch *epoch,
			   const char *repo_ident, int parallel, const char *pgdata, const char *asked)
{
	WsError serr;
	char *spool_dir = NULL;
	ws_error_clear(&serr);
	if (push_spool_dir(config_get(cfg, "spool-path"), repo_meta(repo)->uuid, &spool_dir, &serr) == 0) {
		PushQueue *q = xcalloc(1, sizeof(*q));
		pthread_mutex_init(&q->mu, NULL);
		q->cfg = cfg;
		q->main_repo = repo;
		q->ci = ci;
		q->epoch = epoch;
		q->spool_dir = spool_dir;
		q->repo_ident = repo_ident;
		q->parallel = parallel;
		queue_fill(q, parallel * PUSH_ROUNDS - 1, pgdata, asked);
		return q;
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

const char *push_queue_spool_dir(const PushQueue *q)
{
	return q != NULL ? q->spool_dir : NULL;
}

void push_queue_store_history(PushQueue *q, Repo *repo)
{
	Ahead *a;
	while ((a = queue_take(q, true)) != NULL)
		ahead_store(q, repo, a);
}

void push_queue_start(PushQueue *q)
{
	if (q->next >= q->n)
		return;
	q->nworkers = q->n - q->next < q->parallel - 1 ? q->n - q->next : q->parallel - 1;
	q->workers = xcalloc((size_t)q->nworkers, sizeof(*q->workers));
	/* A worker that cannot start leaves its share to the others. */
	for (int i = 0; i < q->nworkers; i++) {
		Worker *w = &q->workers[i];
		w->batch = q;
		ws_error_clear(&w->err);
		w->started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
	}
}

void push_queue_help(PushQueue *q, Repo *repo)
{
	Ahead *a;
	while ((a = queue_take(q, false)) != NULL)
		ahead_store(q, repo, a);
}

void push_queue_join(PushQueue *q)
{
	bool told = false;
	if (q == NULL || q->joined)
		return;
	q->joined = true;
	for (int i = 0; i < q->nworkers; i++) {
		Worker *w = &q->workers[i];
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
	for (int i = 0; i < q->n; i++) {
		Ahead *a = &q->items[i];
		/* Gone since the listing: PostgreSQL knows better, nothing to say. */
		if (a->rc != 0 && !(a->err.errnum == ENOENT && a->f.fd < 0 && a->f.size == 0)) {
			if (strstr(a->err.msg, a->f.name.name) == NULL)
				ws_error_prefix(&a->err, "could not archive \"%s\" ahead of its call",
						a->f.name.name);
			log_report_warning(&a->err);
		}
	}
}

void push_queue_free(PushQueue *q)
{
	if (q == NULL)
		return;
	push_queue_join(q);
	for (int i = 0; i < q->n; i++)
		free(q->items[i].path);
	pthread_mutex_destroy(&q->mu);
	free(q->items);
	free(q->workers);
	free(q->spool_dir);
	free(q);
}
