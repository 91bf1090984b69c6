/*
 * prefetch_runner.c - the prefetcher: the process a walship-fetch call
 * starts to fill the spool ahead of recovery (see prefetch_runner.h and
 * src/wal/README.md).
 *
 * Threads exist only in the prefetcher process: its main thread owns the
 * plan, the spool's clean-up and every warning; its workers (Worker) each
 * fetch the segment handed to them with their own repository handle and
 * leave the result under Runner.mu.
 */
#include "wal/prefetch_runner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pg/history.h"
#include "pg/pgmajor.h"
#include "pg/walpage.h"
#include "repo/keys.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/stream.h"
#include "wal/prefetch_spool.h"
#include "wal/sink.h"

#define POLL_MS         100
#define ERROR_BACKOFF_S 2

static bool file_exists(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	bool ok = access(p, F_OK) == 0;
	free(p);
	return ok;
}

/* ---- the prefetcher ---- */

typedef struct Runner Runner;

/* Only the main thread moves a worker out of DONE and GONE and into BUSY; only the worker out of BUSY. */
typedef enum WorkerState {
	WORKER_IDLE,
	WORKER_BUSY, /* seg handed out, being fetched */
	WORKER_DONE, /* rc and err hold seg's result, not yet taken by the main thread */
	WORKER_GONE, /* its handle could not be opened (err says why): the thread has ended */
} WorkerState;

typedef struct Worker {
	Runner *r;
	int index; /* 1 to PREFETCH_WORKERS, in its temp files' names (0 is the main thread) */
	pthread_t thread;
	bool reported; /* GONE was warned about */
	/* Under Runner.mu: */
	WorkerState state;
	PrefetchSeg seg;
	uint64_t gen; /* the request seg was planned for */
	int rc;
	WsError err;
} Worker;

struct Runner {
	Prefetch *pf;
	Repo *repo; /* the main thread's: history files, and segments when no worker is left */
	pid_t postmaster;
	TimelinePath *path;
	char req[WAL_NAME_MAX]; /* last request seen */
	WalName req_name;
	double req_at;
	uint64_t gen;           /* counts requests: results planned for an older one only trim */
	uint64_t blocked_segno; /* not found for this request: no further attempts until it changes */
	bool blocked;
	bool trim; /* a new request, or a segment planned for an earlier one spooled: trim again */
	double backoff_until;
	pthread_mutex_t mu;
	pthread_cond_t work; /* a segment handed out, or quit */
	pthread_cond_t done; /* a worker finished a segment or gave up */
	bool quit;
	Worker workers[PREFETCH_WORKERS];
	int nworkers; /* threads started */
};

static pid_t postmaster_pid(const char *pgdata)
{
	char *path = xasprintf("%s/postmaster.pid", pgdata);
	char *text = NULL;
	size_t len;
	WsError e;
	pid_t pid = 0;
	if (fs_read_small(path, 64 * 1024, &text, &len, &e) == 0) {
		long v = strtol(text, NULL, 10);
		pid = v > 0 && v < INT_MAX ? (pid_t)v : 0;
	}
	free(text);
	free(path);
	return pid;
}

static bool postmaster_alive(const Runner *r)
{
	if (r->postmaster <= 0 || postmaster_pid(r->pf->pgdata) != r->postmaster)
		return false;
	return kill(r->postmaster, 0) == 0 || errno == EPERM;
}

static bool in_recovery(const Prefetch *pf)
{
	if (!pg_has_recovery_conf(pf->ci.pg_major))
		return file_exists(pf->pgdata, "recovery.signal") ||
		       file_exists(pf->pgdata, "standby.signal");
	return file_exists(pf->pgdata, "recovery.conf");
}

/* The path of timeline tli from the repository: WS_NOT_FOUND when it has no history file. */
static int load_path(Runner *r, uint32_t tli, TimelinePath **out, WsError *err)
{
	char name[32], key[STORE_KEY_MAX];
	WalName wn;
	MemWriter m = {.max = HISTORY_FILE_MAX, .what = "a history file"};
	*out = NULL;
	if (tli == 1) {
		*out = history_single(1);
		return 0;
	}
	snprintf(name, sizeof(name), "%08X.history", tli);
	if (walname_parse(name, &wn, err) != 0 || repo_key_wal(&r->pf->epoch, &wn, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "no repository key for \"%s\"", name);
	ObjInfo info;
	int rc = repo_get_object(r->repo, key, HISTORY_FILE_MAX, mem_writer_write, &m, &info, err);
	if (rc == 0)
		rc = history_parse(m.buf ? m.buf : "", m.len, tli, out, err);
	free(m.buf);
	return rc;
}

/*
 * The path recovery follows through (tli, segno): the newest timeline whose
 * history passes through it, probing upward from tli until a history file is
 * missing, as findNewestTimeLine does for recovery_target_timeline = latest.
 */
static int find_path(Runner *r, WsError *err)
{
	uint32_t tli = r->req_name.tli, seg = r->pf->epoch.seg_size;
	uint64_t segno = walname_segno(&r->req_name, seg);
	TimelinePath *best = NULL, *p = NULL;
	int rc = load_path(r, tli, &best, err);
	if (rc == WS_NOT_FOUND) {
		best = history_single(tli);
		rc = 0;
	}
	if (rc != 0)
		return rc;
	for (uint32_t probe = tli + 1; probe != 0; probe++) {
		rc = load_path(r, probe, &p, err);
		if (rc == WS_NOT_FOUND) {
			rc = 0;
			break;
		}
		if (rc != 0)
			break;
		if (prefetch_on_path(p, seg, tli, segno)) {
			history_free(best);
			best = p;
		} else {
			history_free(p);
		}
		p = NULL;
	}
	if (rc != 0) {
		history_free(best);
		return rc;
	}
	history_free(r->path);
	r->path = best;
	return 0;
}

static bool is_tmp_name(const char *name)
{
	size_t n = strlen(name);
	return name[0] == '.' && n > 4 && strcmp(name + n - 4, ".tmp") == 0;
}

/*
 * Bytes of every file in every spool under spool-path (the bound is on all of
 * them), but for this spool's own temp files: the caller counts each segment
 * it has in flight as a whole one.
 */
static uint64_t spool_used(const Prefetch *pf)
{
	uint64_t total = 0;
	DIR *top = opendir(pf->spool);
	if (top == NULL)
		return 0;
	struct dirent *u;
	while ((u = readdir(top)) != NULL) {
		if (u->d_name[0] == '.')
			continue;
		char *fetch = xasprintf("%s/%s/fetch", pf->spool, u->d_name);
		DIR *f = opendir(fetch);
		struct dirent *k;
		while (f != NULL && (k = readdir(f)) != NULL) {
			if (k->d_name[0] == '.')
				continue;
			char *dir = xasprintf("%s/%s", fetch, k->d_name);
			bool own = strcmp(dir, pf->dir) == 0;
			DIR *d = opendir(dir);
			struct dirent *de;
			while (d != NULL && (de = readdir(d)) != NULL) {
				struct stat st;
				if (own && is_tmp_name(de->d_name))
					continue;
				if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISREG(st.st_mode))
					total += (uint64_t)st.st_blocks * 512 > (uint64_t)st.st_size
							 ? (uint64_t)st.st_blocks * 512
							 : (uint64_t)st.st_size;
			}
			if (d != NULL)
				closedir(d);
			free(dir);
		}
		if (f != NULL)
			closedir(f);
		free(fetch);
	}
	closedir(top);
	return total;
}

static bool in_plan(const PrefetchSeg *plan, int n, uint32_t tli, uint64_t segno)
{
	for (int i = 0; i < n; i++)
		if (plan[i].tli == tli && plan[i].segno == segno)
			return true;
	return false;
}

/* A spooled file of this prefetcher's epoch and segment size, with its parsed name in *wn. */
static bool spool_entry_ours(const Prefetch *pf, const SpoolEntry *e, WalName *wn)
{
	WsError ignored;
	return strcmp(e->epoch, pf->epoch.id) == 0 && e->size == pf->epoch.seg_size &&
	       walname_parse(e->segname, wn, &ignored) == 0;
}

/* Remove spooled files that the request made useless: not the request itself, not on its plan. */
static void spool_trim(Runner *r, const PrefetchSeg *plan, int n)
{
	uint32_t seg = r->pf->epoch.seg_size;
	DIR *d = opendir(r->pf->dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		SpoolEntry e;
		WalName wn;
		if (prefetch_spool_parse(de->d_name, &e) != 0)
			continue;
		if (spool_entry_ours(r->pf, &e, &wn) &&
		    (strcmp(e.segname, r->req) == 0 || in_plan(plan, n, wn.tli, walname_segno(&wn, seg))))
			continue;
		(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/*
 * Fetch one segment into the spool, verified, with repo (a handle of the
 * calling thread; worker names its temp file): 0, WS_NOT_FOUND, or an error.
 * The temp file starts with ".<segment>." whoever writes it: that is what
 * tells a call the segment is on its way (spool_find).
 */
static int spool_fetch(const Prefetch *pf, Repo *repo, const PrefetchSeg *s, int worker, WsError *err)
{
	char segname[32], key[STORE_KEY_MAX], final[PREFETCH_NAME_MAX];
	WalName wn;
	wal_segment_name(s->tli, s->segno, pf->epoch.seg_size, segname);
	if (walname_parse(segname, &wn, err) != 0 || repo_key_wal(&pf->epoch, &wn, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "no repository key for \"%s\"", segname);
	char *tmp = xasprintf("%s/.%s.%ld.%d.tmp", pf->dir, segname, (long)getpid(), worker);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int rc = ws_error_errno(err, WS_FATAL, errno, "could not create \"%s\"", tmp);
		free(tmp);
		return rc;
	}
	log_debug("prefetching \"%s\" (worker %d)", segname, worker);
	WalSink sink = {.fd = fd, .what = "to the prefetch spool"};
	ObjInfo info;
	int rc = repo_get_object(repo, key, pf->epoch.seg_size, wal_sink_write, &sink, &info, err);
	if (rc == 0 && sink.written != pf->epoch.seg_size)
		rc = ws_error(err, WS_CORRUPT,
			      "stored WAL file \"%s\" has %" PRIu64 " bytes, expected %" PRIu32, segname,
			      sink.written, pf->epoch.seg_size);
	if (rc == 0)
		rc = wal_page_check(sink.head, sizeof(sink.head), pf->ci.pg_major, pf->ci.control.sysid,
				    pf->epoch.seg_size, s->segno, segname, err);
	if (close(fd) != 0 && rc == 0)
		rc = ws_error_errno(err, WS_FATAL, errno, "could not write \"%s\"", tmp);
	if (rc == 0 &&
	    prefetch_spool_name(segname, pf->epoch.id, sink.written, info.sha256, final, sizeof(final)) != 0)
		rc = ws_error(err, WS_FATAL, "no spool name for \"%s\"", segname);
	if (rc == 0) {
		char *dst = xasprintf("%s/%s", pf->dir, final);
		if (rename(tmp, dst) != 0)
			rc = ws_error_errno(err, WS_FATAL, errno, "could not rename \"%s\" to \"%s\"", tmp,
					    dst);
		free(dst);
	}
	if (rc != 0)
		(void)unlink(tmp);
	free(tmp);
	if (rc == 0)
		log_debug("prefetched \"%s\" (worker %d)", segname, worker);
	else
		log_debug("did not prefetch \"%s\" (worker %d): %s", segname, worker, ws_status_name(rc));
	return rc;
}

/* Which plan segments are spooled already, from one look at the directory (as spool_find matches). */
static void spool_mark(const Prefetch *pf, const PrefetchSeg *plan, int n, bool *spooled)
{
	uint32_t seg = pf->epoch.seg_size;
	for (int i = 0; i < n; i++)
		spooled[i] = false;
	DIR *d = opendir(pf->dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		SpoolEntry e;
		WalName wn;
		if (prefetch_spool_parse(de->d_name, &e) != 0 || !spool_entry_ours(pf, &e, &wn))
			continue;
		uint64_t segno = walname_segno(&wn, seg);
		for (int i = 0; i < n; i++)
			if (plan[i].tli == wn.tli && plan[i].segno == segno)
				spooled[i] = true;
	}
	closedir(d);
}

/* Read the request file: true when it names a new segment. */
static bool read_request(Runner *r)
{
	char *path = xasprintf("%s/request", r->pf->dir);
	char *text = NULL;
	size_t len;
	WsError e;
	bool changed = false;
	if (fs_read_small(path, 1024, &text, &len, &e) == 0) {
		char epoch[32];
		WalName wn;
		if (prefetch_request_parse(text, len, &wn, epoch) == 0 &&
		    strcmp(epoch, r->pf->epoch.id) == 0 && strcmp(wn.name, r->req) != 0) {
			snprintf(r->req, sizeof(r->req), "%s", wn.name);
			r->req_name = wn;
			changed = true;
		}
	}
	free(text);
	free(path);
	return changed;
}

/* ---- the workers ---- */

/*
 * A worker waits for a segment, fetches it with its own handle (opened at
 * its first segment) and leaves the result for the main thread.  It logs
 * nothing above debug: warnings are the main thread's, one per burst.
 */
static void *worker_main(void *arg)
{
	Worker *w = arg;
	Runner *r = w->r;
	Repo *repo = NULL;
	WsError err;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (w->state != WORKER_BUSY && !r->quit)
			pthread_cond_wait(&r->work, &r->mu);
		if (r->quit)
			break; /* a segment handed out but not begun is dropped: the spool goes anyway */
		PrefetchSeg seg = w->seg;
		pthread_mutex_unlock(&r->mu);
		ws_error_clear(&err);
		int rc = repo == NULL ? repo_open_another(r->repo, r->pf->cfg, &repo, &err) : 0;
		bool gone = rc != 0;
		if (!gone)
			rc = spool_fetch(r->pf, repo, &seg, w->index, &err);
		pthread_mutex_lock(&r->mu);
		w->rc = rc;
		w->err = err;
		w->state = gone ? WORKER_GONE : WORKER_DONE;
		pthread_cond_signal(&r->done);
		if (gone)
			break;
	}
	pthread_mutex_unlock(&r->mu);
	repo_free(repo);
	return NULL;
}

/* Start min(PREFETCH_WORKERS, fetch-ahead) workers; with none, the main thread fetches alone. */
static void workers_start(Runner *r)
{
	int want = r->pf->ahead < PREFETCH_WORKERS ? r->pf->ahead : PREFETCH_WORKERS;
	sigset_t all, old;

	/* Signals are for the main thread: it alone decides to stop, and a worker's I/O is not cut short. */
	sigfillset(&all);
	/* (Faults stay deliverable: blocking them is undefined.) */
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < want; i++) {
		Worker *w = &r->workers[r->nworkers];
		memset(w, 0, sizeof(*w));
		w->r = r;
		w->index = i + 1;
		w->state = WORKER_IDLE;
		int e = pthread_create(&w->thread, NULL, worker_main, w);
		if (e != 0) {
			log_warning("prefetcher: could not start worker %d of %d: %s", i + 1, want,
				    strerror(e));
			break;
		}
		r->nworkers++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Stop handing out segments and wait for every worker to finish or fail the one it has. */
static void workers_stop(Runner *r)
{
	pthread_mutex_lock(&r->mu);
	r->quit = true;
	pthread_cond_broadcast(&r->work);
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < r->nworkers; i++)
		pthread_join(r->workers[i].thread, NULL);
	r->nworkers = 0;
}

static bool workers_have_news(const Runner *r)
{
	for (int i = 0; i < r->nworkers; i++)
		if (r->workers[i].state == WORKER_DONE ||
		    (r->workers[i].state == WORKER_GONE && !r->workers[i].reported))
			return true;
	return false;
}

/* Sleep up to ms, waking early when a worker has a result. */
static void runner_wait(Runner *r, long ms)
{
	if (r->nworkers == 0) {
		clock_sleep((double)ms / 1000.0);
		return;
	}
	struct timespec until = clock_after(CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&r->mu);
	while (!workers_have_news(r))
		if (pthread_cond_timedwait(&r->done, &r->mu, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&r->mu);
}

/* What a fetch of seg, planned for request gen, answered. */
static void runner_result(Runner *r, const PrefetchSeg *seg, uint64_t gen, int rc, WsError *err)
{
	if (rc == 0) {
		/* Planned for an earlier request: it may be behind the new one already. */
		if (gen != r->gen)
			r->trim = true;
		return;
	}
	if (rc == WS_NOT_FOUND) {
		/* Not remembered beyond this request: the next call asks the repository again. */
		if (gen == r->gen && (!r->blocked || seg->segno < r->blocked_segno)) {
			r->blocked = true;
			r->blocked_segno = seg->segno;
		}
		return;
	}
	/* One warning per burst: the other workers in flight usually fail the same way meanwhile. */
	if (clock_now() < r->backoff_until)
		log_debug("prefetcher: %s", err->msg);
	else
		log_report_warning(err);
	r->backoff_until = clock_now() + ERROR_BACKOFF_S;
}

/* Take the results the workers left, and warn once about each worker that gave up. */
static void runner_collect(Runner *r)
{
	for (int i = 0; i < r->nworkers; i++) {
		Worker *w = &r->workers[i];
		pthread_mutex_lock(&r->mu);
		WorkerState st = w->state;
		if (st == WORKER_DONE)
			w->state = WORKER_IDLE;
		pthread_mutex_unlock(&r->mu);
		/* An IDLE or GONE worker no longer touches seg, gen, rc and err. */
		if (st == WORKER_DONE) {
			runner_result(r, &w->seg, w->gen, w->rc, &w->err);
		} else if (st == WORKER_GONE && !w->reported) {
			ws_error_prefix(&w->err, "prefetcher: going on without worker %d", w->index);
			log_report_warning(&w->err);
			pthread_mutex_lock(&r->mu);
			w->reported = true;
			pthread_mutex_unlock(&r->mu);
		}
	}
}

/*
 * One round: take the workers' results, then hand the first missing segments
 * of the plan to idle workers.  True when the main thread fetched one itself
 * (no worker left) and the next round may follow at once.
 */
static bool runner_step(Runner *r, bool changed)
{
	Prefetch *pf = r->pf;
	uint32_t seg = pf->epoch.seg_size;
	uint64_t segno = walname_segno(&r->req_name, seg);
	PrefetchSeg plan[PREFETCH_MAX_AHEAD], busy[PREFETCH_WORKERS];
	bool spooled[PREFETCH_MAX_AHEAD];
	int n = 0, nbusy = 0, idle = 0, alive = 0, start[PREFETCH_MAX_AHEAD];
	WsError err;

	ws_error_clear(&err);
	if (changed)
		r->trim = true; /* kept until a round gets that far */
	runner_collect(r);
	if (clock_now() < r->backoff_until)
		return false;
	if (r->path == NULL || !prefetch_on_path(r->path, seg, r->req_name.tli, segno)) {
		if (find_path(r, &err) != 0) {
			log_report_warning(&err);
			r->backoff_until = clock_now() + ERROR_BACKOFF_S;
			return false;
		}
	}
	if (prefetch_plan(r->path, seg, r->req_name.tli, segno, pf->ahead, plan, &n) != 0)
		return false;
	if (r->trim)
		spool_trim(r, plan, n);
	r->trim = false;

	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->nworkers; i++) {
		const Worker *w = &r->workers[i];
		/* (A worker turning GONE meanwhile only makes the room smaller for this round.) */
		if (w->state == WORKER_BUSY || w->state == WORKER_DONE)
			busy[nbusy++] = w->seg;
		if (w->state != WORKER_GONE)
			alive++;
		if (w->state == WORKER_IDLE)
			idle++;
	}
	pthread_mutex_unlock(&r->mu);
	if (alive == 0)
		idle = 1; /* the main thread, one at a time */

	spool_mark(pf, plan, n, spooled);
	PrefetchWindow win = {
		.plan = plan,
		.spooled = spooled,
		.n = n,
		.busy = busy,
		.nbusy = nbusy,
		.room = UINT64_MAX,
		.idle = idle,
		.blocked = r->blocked,
		.blocked_segno = r->blocked_segno,
	};
	/* Sizing every spool takes a walk through them: only when something is missing. */
	if (prefetch_next(&win, start) == 0)
		return false;
	win.room = prefetch_room(pf->max_bytes, spool_used(pf) + (uint64_t)nbusy * seg, seg);
	int k = prefetch_next(&win, start);
	if (k == 0)
		return false;
	if (alive == 0) {
		int rc = spool_fetch(pf, r->repo, &plan[start[0]], 0, &err);
		runner_result(r, &plan[start[0]], r->gen, rc, &err);
		return rc == 0;
	}
	/* Idle workers stay idle until this thread hands them something: no race on the count above. */
	pthread_mutex_lock(&r->mu);
	for (int i = 0, j = 0; i < r->nworkers && j < k; i++) {
		Worker *w = &r->workers[i];
		if (w->state != WORKER_IDLE)
			continue;
		w->seg = plan[start[j++]];
		w->gen = r->gen;
		w->state = WORKER_BUSY;
	}
	pthread_cond_broadcast(&r->work);
	pthread_mutex_unlock(&r->mu);
	return false;
}

/* Publish where this spool is, so calls can serve from it without opening the repository. */
static void index_write(const Prefetch *pf)
{
	PrefetchIndex ix = {.epoch = pf->epoch};
	char text[PREFETCH_INDEX_MAX];
	snprintf(ix.uuid, sizeof(ix.uuid), "%s", pf->uuid);
	if (prefetch_index_format(&ix, text, sizeof(text)) != 0)
		return;
	FsFileOpts o = {.mode = 0600};
	WsError e;
	char *dir = fs_dirname(pf->index);
	int rc = prefetch_mkdir(dir) != 0
			 ? ws_error_errno(&e, WS_FATAL, errno, "could not create directory \"%s\"", dir)
			 : fs_write_file(pf->index, text, strlen(text), &o, &e);
	if (rc != 0)
		log_debug("prefetcher: could not write index \"%s\": %s", pf->index, e.msg);
	free(dir);
}

/* Remove the index if it still names this spool (a later prefetcher of another repository may own it). */
static void index_remove(const Prefetch *pf)
{
	PrefetchIndex ix;
	if (prefetch_index_read(pf->index, &ix) == 0 && strcmp(ix.uuid, pf->uuid) == 0)
		(void)unlink(pf->index);
}

static void close_inherited(int keep)
{
	int fd = keep;
	if (keep != 3) {
		fd = dup2(keep, 3) == 3 ? 3 : keep;
		if (fd == 3)
			close(keep);
	}
	fs_close_from(3, fd);
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static volatile sig_atomic_t runner_stop;

static void runner_on_signal(int signo)
{
	(void)signo;
	runner_stop = 1;
}

/*
 * SIGTERM/SIGINT/SIGQUIT (the postmaster's shutdown signals, sent to the
 * startup process's group, which is ours) end the loop once the segments in
 * flight are done, so the spool is removed on the way out; a segment is a
 * few seconds at most within io-timeout.  SIGHUP and SIGUSR1/2 would end the
 * process by default: they are not for us.  Worker threads block every
 * signal (workers_start), so these always reach the main thread.
 */
static void runner_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = runner_on_signal;
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGHUP, &sa, NULL);
	(void)sigaction(SIGUSR1, &sa, NULL);
	(void)sigaction(SIGUSR2, &sa, NULL);
	(void)sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}

static void runner_main(Prefetch *pf, int lockfd)
{
	Runner r = {.pf = pf};
	pthread_condattr_t ca;
	WsError err;

	pthread_mutex_init(&r.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r.done, &ca);
	pthread_cond_init(&r.work, NULL);
	pthread_condattr_destroy(&ca);

	/* The caller's temp files are not ours; ours are removed with the spool on the way out. */
	for (int i = 0; i < CLEANUP_SLOTS; i++)
		cleanup_unregister(i);
	runner_signals();
	close_inherited(lockfd);
	int null = open("/dev/null", O_RDWR);
	int logfd = open(pf->logpath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(logfd >= 0 ? logfd : null, STDERR_FILENO);
	}
	if (null > STDERR_FILENO)
		close(null);
	if (logfd > STDERR_FILENO)
		close(logfd);

	r.postmaster = postmaster_pid(pf->pgdata);
	ws_error_clear(&err);
	if (repo_open(pf->cfg, &r.repo, &err) != 0) {
		log_report_warning(&err);
		goto done;
	}
	/* Started from an index: the repository must still be the one it names. */
	const RepoEpoch *ep = repo_meta_find_id(repo_meta(r.repo), pf->epoch.id);
	if (strcmp(repo_meta(r.repo)->uuid, pf->uuid) != 0 || ep == NULL || ep->sysid != pf->epoch.sysid ||
	    ep->seg_size != pf->epoch.seg_size) {
		log_warning("prefetcher: repository \"%s\" is no longer repository %s with epoch \"%s\": "
			    "stopping",
			    repo_display(r.repo), pf->uuid, pf->epoch.id);
		goto done;
	}
	index_write(pf);
	/* Temp files a killed prefetcher left behind. */
	{
		DIR *d = opendir(pf->dir);
		struct dirent *de;
		while (d != NULL && (de = readdir(d)) != NULL)
			if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp") != NULL)
				(void)unlinkat(dirfd(d), de->d_name, 0);
		if (d != NULL)
			closedir(d);
	}
	workers_start(&r);
	log_debug("prefetcher started for \"%s\" (postmaster %ld, %d workers)", pf->pgdata,
		  (long)r.postmaster, r.nworkers);
	r.req_at = clock_now();
	while (!runner_stop) {
		if (!postmaster_alive(&r)) {
			log_debug("prefetcher: the postmaster is gone");
			break;
		}
		if (!in_recovery(pf)) {
			log_debug("prefetcher: recovery has ended");
			break;
		}
		bool changed = read_request(&r);
		if (changed) {
			r.req_at = clock_now();
			r.blocked = false;
			r.gen++;
		}
		if (clock_now() - r.req_at > PREFETCH_IDLE_SECONDS) {
			log_debug("prefetcher: idle");
			break;
		}
		if (r.req[0] == '\0' || !runner_step(&r, changed))
			runner_wait(&r, POLL_MS);
	}
done:
	/* No thread may write into the spool once it is removed. */
	workers_stop(&r);
	/* The index first: a call that still finds it then finds no spool and opens the repository. */
	index_remove(pf);
	prefetch_spool_remove(pf->dir);
	history_free(r.path);
	repo_free(r.repo);
	pthread_cond_destroy(&r.work);
	pthread_cond_destroy(&r.done);
	pthread_mutex_destroy(&r.mu);
	_exit(0);
}

void prefetch_request(Prefetch *pf, const WalName *name)
{
	if (name->kind != WAL_SEGMENT)
		return;
	if (prefetch_mkdir(pf->dir) != 0) {
		log_debug("no prefetching: could not create \"%s\": %s", pf->dir, strerror(errno));
		return;
	}
	FsFileOpts o = {.mode = 0600};
	WsError e;
	char *req = xasprintf("%s/request", pf->dir);
	char *text = xasprintf("%s %s\n", name->name, pf->epoch.id);
	if (fs_write_file(req, text, strlen(text), &o, &e) != 0) {
		log_debug("no prefetching: %s", e.msg);
		goto done;
	}
	int lockfd = prefetch_lock_take(pf->dir, 0);
	if (lockfd < 0)
		goto done; /* a prefetcher runs (or the spool cannot be locked) */
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		/* The intermediate child exits at once: the prefetcher is nobody's child to wait for. */
		if (fork() == 0)
			runner_main(pf, lockfd);
		_exit(0);
	}
	close(lockfd);
	if (pid < 0)
		log_debug("no prefetching: fork failed: %s", strerror(errno));
	else
		(void)waitpid(pid, NULL, 0);
done:
	free(text);
	free(req);
}
