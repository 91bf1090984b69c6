/*
 * prefetch.c - walship-fetch's read-ahead spool and its prefetcher process.
 *
 * The contract and the spool layout are in prefetch.h.  The rule everything
 * here serves: a file reaches %p only if it is byte for byte what the
 * repository holds for that segment of that cluster; prefetching may only
 * make recovery faster, never different.
 *
 * Threads exist only in the prefetcher process: its main thread owns the
 * plan, the spool's clean-up and every warning; its workers (Worker) each
 * fetch the segment handed to them with their own repository handle and
 * leave the result under Runner.mu.  Everything else here is single-threaded.
 */
#include "cmd/prefetch.h"

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
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cmd/fetch.h"
#include "pg/lsn.h"
#include "pg/walpage.h"
#include "repo/keys.h"
#include "store/store.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"

#define POLL_MS         100
#define SERVE_POLL_MS   10
#define CLEAR_WAIT_MS   10000
#define MAX_AHEAD       256
#define ERROR_BACKOFF_S 2
#define INDEX_FORMAT    1
#define INDEX_MAX       256

struct Prefetch {
	const Config *cfg;
	char uuid[40]; /* the repository's; the prefetcher opens its own handle */
	RepoEpoch epoch;
	ClusterInfo ci;
	char key[64];   /* the data directory's key */
	char *pgdata;   /* realpath */
	char *spool;    /* spool-path */
	char *index;    /* <spool>/by-repo/<index name> */
	char *fetchdir; /* <spool>/<uuid>/fetch */
	char *dir;      /* fetchdir/<key> */
	char *logpath;  /* fetchdir/<key>.log */
	int ahead;
	uint64_t max_bytes;
	long wait_s;
};

/* ---- pure parts ---- */

typedef struct PlanCtx {
	uint64_t first;
	uint32_t want_tli;
	bool first_ok;
	PrefetchSeg *out;
	int n, max;
} PlanCtx;

static int plan_cb(void *ctx, uint32_t tli, uint64_t segno)
{
	PlanCtx *c = ctx;
	if (segno == c->first) {
		c->first_ok = tli == c->want_tli;
		return c->first_ok ? 0 : 1;
	}
	if (c->n < c->max)
		c->out[c->n++] = (PrefetchSeg){tli, segno};
	return 0;
}

int prefetch_plan(const TimelinePath *p, uint32_t seg_size, uint32_t tli, uint64_t segno, int max,
		  PrefetchSeg *out, int *got)
{
	*got = 0;
	if (max < 0 || !wal_segsize_valid(seg_size))
		return WS_USAGE;
	uint64_t last_segno = (UINT64_MAX - 1) / seg_size;
	if (segno > last_segno)
		return WS_USAGE;
	uint64_t end = segno + (uint64_t)max;
	if (end > last_segno || end < segno)
		end = last_segno;
	PlanCtx c = {.first = segno, .want_tli = tli, .out = out, .max = max};
	int rc = history_segments(p, segno * seg_size, end * seg_size, seg_size, plan_cb, &c);
	if (rc < 0 || !c.first_ok)
		return WS_USAGE;
	*got = c.n;
	return 0;
}

bool prefetch_on_path(const TimelinePath *p, uint32_t seg_size, uint32_t tli, uint64_t segno)
{
	int got;
	return prefetch_plan(p, seg_size, tli, segno, 0, NULL, &got) == 0;
}

bool prefetch_epoch_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 31)
		return false;
	for (const char *s = id; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-'))
			return false;
	return true;
}

int prefetch_spool_name(const char *segname, const char *epoch_id, uint64_t size,
			const unsigned char sha256[32], char *buf, size_t bufsize)
{
	char hex[65];
	if (strlen(segname) != 24 || !prefetch_epoch_id_ok(epoch_id))
		return -1;
	hex_encode(sha256, 32, hex);
	return str_format(buf, bufsize, "%s.%s.%" PRIu64 ".%s", segname, epoch_id, size, hex);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int prefetch_spool_parse(const char *name, SpoolEntry *out)
{
	const char *p = name, *dot;
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < 24; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'A' && p[i] <= 'F')))
			return -1;
	if (p[24] != '.')
		return -1;
	memcpy(out->segname, p, 24);
	p += 25;
	dot = strchr(p, '.');
	if (dot == NULL || dot == p || (size_t)(dot - p) >= sizeof(out->epoch))
		return -1;
	memcpy(out->epoch, p, (size_t)(dot - p));
	if (!prefetch_epoch_id_ok(out->epoch))
		return -1;
	p = dot + 1;
	if (*p < '0' || *p > '9' || (*p == '0' && p[1] != '.'))
		return -1;
	uint64_t size = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (size > (UINT64_MAX - 9) / 10)
			return -1;
		size = size * 10 + (uint64_t)(*p - '0');
	}
	if (*p++ != '.')
		return -1;
	out->size = size;
	for (int i = 0; i < 32; i++) {
		int hi = hexval(p[2 * i]), lo = hi < 0 ? -1 : hexval(p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out->sha256[i] = (unsigned char)(hi << 4 | lo);
	}
	return p[64] == '\0' ? 0 : -1;
}

void prefetch_dir_key(uint64_t sysid, const char *realpath, char *buf, size_t bufsize)
{
	unsigned char md[32];
	unsigned int len = 0;
	char hex[65];
	EVP_Digest(realpath, strlen(realpath), md, &len, EVP_sha256(), NULL);
	hex_encode(md, 8, hex);
	snprintf(buf, bufsize, "%" PRIu64 "-%s", sysid, hex);
}

uint64_t prefetch_room(uint64_t max_bytes, uint64_t used_bytes, uint32_t seg_size)
{
	if (seg_size == 0 || used_bytes >= max_bytes)
		return 0;
	return (max_bytes - used_bytes) / seg_size;
}

int prefetch_next(const PrefetchWindow *w, int *out)
{
	int k = 0;
	uint64_t room = w->room;
	for (int i = 0; i < w->n && k < w->idle; i++) {
		const PrefetchSeg *s = &w->plan[i];
		/* The plan is in segment order: nothing past a "not found" exists yet for this request. */
		if (w->blocked && s->segno >= w->blocked_segno)
			break;
		if (w->spooled[i])
			continue;
		bool busy = false;
		for (int j = 0; j < w->nbusy && !busy; j++)
			busy = w->busy[j].tli == s->tli && w->busy[j].segno == s->segno;
		if (busy)
			continue;
		if (room == 0)
			break;
		room--;
		out[k++] = i;
	}
	return k;
}

void prefetch_index_name(const char *repo_ident, const char *dir_key, char *buf, size_t bufsize)
{
	unsigned char md[32];
	unsigned int len = 0;
	char hex[65];
	EVP_Digest(repo_ident, strlen(repo_ident), md, &len, EVP_sha256(), NULL);
	hex_encode(md, 8, hex);
	snprintf(buf, bufsize, "%s-%s", hex, dir_key);
}

static bool uuid_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof(((PrefetchIndex *)NULL)->uuid))
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F') ||
		      *s == '-'))
			return false;
	return true;
}

int prefetch_index_format(const PrefetchIndex *ix, char *buf, size_t bufsize)
{
	if (!uuid_ok(ix->uuid) || !prefetch_epoch_id_ok(ix->epoch.id) || ix->epoch.pg_major <= 0 ||
	    !wal_segsize_valid(ix->epoch.seg_size))
		return -1;
	return str_format(buf, bufsize, "%d %s %s %" PRIu64 " %d %" PRIu32 "\n", INDEX_FORMAT, ix->uuid,
			  ix->epoch.id, ix->epoch.sysid, ix->epoch.pg_major, ix->epoch.seg_size);
}

/* Strict: the text must be exactly what prefetch_index_format writes for what it parses to. */
int prefetch_index_parse(const char *text, size_t len, PrefetchIndex *out)
{
	char copy[INDEX_MAX], again[INDEX_MAX];
	int format = 0;
	memset(out, 0, sizeof(*out));
	if (len == 0 || len >= sizeof(copy) || memchr(text, '\0', len) != NULL)
		return -1;
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (sscanf(copy, "%d %39s %31s %" SCNu64 " %d %" SCNu32, &format, out->uuid, out->epoch.id,
		   &out->epoch.sysid, &out->epoch.pg_major, &out->epoch.seg_size) != 6 ||
	    format != INDEX_FORMAT || prefetch_index_format(out, again, sizeof(again)) != 0 ||
	    strcmp(copy, again) != 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

int prefetch_request_parse(const char *text, size_t len, WalName *seg, char *epoch)
{
	char copy[INDEX_MAX], again[INDEX_MAX], name[WAL_NAME_MAX];
	if (len == 0 || len >= sizeof(copy) || memchr(text, '\0', len) != NULL)
		return -1;
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (sscanf(copy, "%63s %31s", name, epoch) != 2 || walname_parse(name, seg, NULL) != 0 ||
	    seg->kind != WAL_SEGMENT || !prefetch_epoch_id_ok(epoch) ||
	    str_format(again, sizeof(again), "%s %s\n", name, epoch) != 0 || strcmp(copy, again) != 0)
		return -1;
	return 0;
}

/* ---- small helpers ---- */

static bool file_exists(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	bool ok = access(p, F_OK) == 0;
	free(p);
	return ok;
}

static int mkdir_0700(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

/*
 * Take the lock of dir without waiting (or waiting up to wait_ms): the fd
 * holding it, -1 if held elsewhere or unusable.  The lock file may be
 * unlinked by a prefetcher that exits; a lock taken on an unlinked file is
 * worthless, so the inode is compared after locking.
 */
static int lock_take(const char *dir, long wait_ms)
{
	char *path = xasprintf("%s/lock", dir);
	int fd = -1;
	double deadline = clock_now() + (double)wait_ms / 1000.0;
	for (;;) {
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			break;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			struct stat a, b;
			if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
			    a.st_dev == b.st_dev)
				break;
			close(fd);
			fd = -1;
			continue;
		}
		close(fd);
		fd = -1;
		if (clock_now() >= deadline)
			break;
		clock_sleep(0.05);
	}
	free(path);
	return fd;
}

static bool lock_held_elsewhere(const char *dir)
{
	char *path = xasprintf("%s/lock", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(path);
	if (fd < 0)
		return false;
	bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd);
	return held;
}

/* Remove every file of a spool directory and the directory; the lock file last. */
static void spool_remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d != NULL) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
			    strcmp(de->d_name, "lock") == 0)
				continue;
			(void)unlinkat(dirfd(d), de->d_name, 0);
		}
		closedir(d);
	}
	char *lock = xasprintf("%s/lock", dir);
	(void)unlink(lock);
	free(lock);
	(void)rmdir(dir);
}

/* ---- opening the spool of a call ---- */

/*
 * The parts of a call's spool that need no repository: the settings, the
 * paths, the data directory's key and index name; NULL when prefetching is
 * off.  A spool-path inside the data directory is warned about once per
 * call: by the caller that opened the repository (warn).
 */
static Prefetch *prefetch_setup(const Config *cfg, const ClusterInfo *ci, const char *pgdata, bool warn)
{
	long ahead = 0, max_mib = 0, timeout = 60;
	WsError e;
	char name[128];

	if (config_get_int(cfg, "fetch-ahead", 0, MAX_AHEAD, &ahead, &e) != 0) {
		if (warn)
			log_report_warning(&e);
		return NULL;
	}
	if (ahead == 0)
		return NULL;
	if (config_get_int(cfg, "spool-max-size", 0, INT_MAX, &max_mib, &e) != 0) {
		if (warn)
			log_report_warning(&e);
		return NULL;
	}
	(void)config_get_int(cfg, "io-timeout", 1, 3600, &timeout, &e);
	const char *spool_cfg = config_get(cfg, "spool-path");
	char *spool = spool_cfg ? realpath(spool_cfg, NULL) : NULL;
	char *real = realpath(pgdata, NULL);
	if (spool == NULL || real == NULL) {
		log_debug("no prefetching: spool-path \"%s\" or the data directory cannot be used: %s",
			  spool_cfg ? spool_cfg : "", strerror(errno));
		free(spool);
		free(real);
		return NULL;
	}
	if (fs_path_within(spool, real)) {
		if (warn)
			log_warning("not prefetching: spool-path \"%s\" is inside the data directory \"%s\"",
				    spool, real);
		free(spool);
		free(real);
		return NULL;
	}
	Prefetch *pf = xcalloc(1, sizeof(*pf));
	pf->cfg = cfg;
	pf->ci = *ci;
	pf->pgdata = real;
	pf->spool = spool;
	pf->ahead = (int)ahead;
	pf->max_bytes = (uint64_t)max_mib * 1024 * 1024;
	pf->wait_s = timeout;
	prefetch_dir_key(ci->control.sysid, real, pf->key, sizeof(pf->key));
	char *ident = repo_config_identity(cfg);
	prefetch_index_name(ident, pf->key, name, sizeof(name));
	free(ident);
	pf->index = xasprintf("%s/by-repo/%s", spool, name);
	return pf;
}

/* Tie pf to the repository uuid and its epoch: the spool's own paths, made if missing. */
static Prefetch *prefetch_bind(Prefetch *pf, const char *uuid, const RepoEpoch *epoch)
{
	if (!prefetch_epoch_id_ok(epoch->id)) {
		log_debug("no prefetching: epoch id \"%s\" cannot name spool files", epoch->id);
		prefetch_free(pf);
		return NULL;
	}
	snprintf(pf->uuid, sizeof(pf->uuid), "%s", uuid);
	pf->epoch = *epoch;
	char *uuid_dir = xasprintf("%s/%s", pf->spool, uuid);
	pf->fetchdir = xasprintf("%s/fetch", uuid_dir);
	pf->dir = xasprintf("%s/%s", pf->fetchdir, pf->key);
	pf->logpath = xasprintf("%s/%s.log", pf->fetchdir, pf->key);
	bool ok = mkdir_0700(uuid_dir) == 0 && mkdir_0700(pf->fetchdir) == 0;
	free(uuid_dir);
	if (!ok) {
		log_debug("no prefetching: could not create a directory in spool-path \"%s\": %s", pf->spool,
			  strerror(errno));
		prefetch_free(pf);
		return NULL;
	}
	return pf;
}

Prefetch *prefetch_open(const Config *cfg, Repo *repo, const RepoEpoch *epoch, const ClusterInfo *ci,
			const char *pgdata)
{
	Prefetch *pf = prefetch_setup(cfg, ci, pgdata, true);
	return pf ? prefetch_bind(pf, repo_meta(repo)->uuid, epoch) : NULL;
}

/* The index at path: 0 and *out, or -1 when missing or unusable. */
static int index_read(const char *path, PrefetchIndex *out)
{
	char *text = NULL;
	size_t len = 0;
	WsError e;
	int rc = -1;
	if (fs_read_small(path, INDEX_MAX, &text, &len, &e) == 0)
		rc = prefetch_index_parse(text, len, out);
	free(text);
	return rc;
}

Prefetch *prefetch_open_indexed(const Config *cfg, const ClusterInfo *ci, const char *pgdata,
				const char *epoch_id)
{
	PrefetchIndex ix;
	Prefetch *pf = prefetch_setup(cfg, ci, pgdata, false);
	if (pf == NULL)
		return NULL;
	if (index_read(pf->index, &ix) != 0) {
		log_debug("no prefetch index \"%s\": opening the repository", pf->index);
		prefetch_free(pf);
		return NULL;
	}
	/* The epoch a call without --epoch would pick must be the one the prefetcher fetches for. */
	if (ix.epoch.sysid != ci->control.sysid || ix.epoch.seg_size != ci->control.seg_size ||
	    (epoch_id != NULL && strcmp(epoch_id, ix.epoch.id) != 0)) {
		log_debug(
			"prefetch index \"%s\" is for epoch \"%s\" of another cluster or epoch: opening the "
			"repository",
			pf->index, ix.epoch.id);
		prefetch_free(pf);
		return NULL;
	}
	return prefetch_bind(pf, ix.uuid, &ix.epoch);
}

void prefetch_free(Prefetch *pf)
{
	if (pf == NULL)
		return;
	free(pf->pgdata);
	free(pf->spool);
	free(pf->index);
	free(pf->fetchdir);
	free(pf->dir);
	free(pf->logpath);
	free(pf);
}

/* ---- serving ---- */

/* The spooled file for segname in this epoch: its name (malloc'd) and entry, or NULL. */
static char *spool_find(const Prefetch *pf, const char *segname, SpoolEntry *ent, bool *in_progress)
{
	char *found = NULL;
	char tmp_prefix[32];
	snprintf(tmp_prefix, sizeof(tmp_prefix), ".%s.", segname);
	*in_progress = false;
	DIR *d = opendir(pf->dir);
	if (d == NULL)
		return NULL;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, tmp_prefix, strlen(tmp_prefix)) == 0) {
			*in_progress = true;
			continue;
		}
		SpoolEntry e;
		if (found == NULL && prefetch_spool_parse(de->d_name, &e) == 0 &&
		    strcmp(e.segname, segname) == 0 && strcmp(e.epoch, pf->epoch.id) == 0 &&
		    e.size == pf->epoch.seg_size) {
			*ent = e;
			found = xstrdup(de->d_name);
		}
	}
	closedir(d);
	return found;
}

/* Copy src into fd (positioned at 0) hashing it; or only hash fd when src < 0. */
static int hash_copy(int src, int fd, unsigned char sha[32], uint64_t *size, unsigned char *head,
		     size_t headlen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *buf = xmalloc(1 << 20);
	int rc = -1;
	*size = 0;
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto done;
	int in = src >= 0 ? src : fd;
	for (;;) {
		ssize_t n = fs_read_full(in, buf, 1 << 20);
		if (n < 0)
			goto done;
		if (n == 0)
			break;
		if (*size < headlen) {
			size_t k = headlen - (size_t)*size;
			memcpy(head + *size, buf, k < (size_t)n ? k : (size_t)n);
		}
		if (src >= 0 && fs_write_all(fd, buf, (size_t)n) != 0)
			goto done;
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			goto done;
		*size += (uint64_t)n;
	}
	unsigned int len = 0;
	if (EVP_DigestFinal_ex(md, sha, &len) != 1)
		goto done;
	rc = 0;
done:
	free(buf);
	EVP_MD_CTX_free(md);
	return rc;
}

int prefetch_serve(Prefetch *pf, const WalName *name, const char *path, WsError *err)
{
	SpoolEntry ent;
	bool in_progress = false;
	char *found = NULL, *src = NULL, *dir = NULL, *tmp = NULL;
	int fd = -1, sfd = -1, slot = -1, rc = WS_NOT_FOUND;
	bool renamed = false;

	/* A live prefetcher fetching this very segment: wait for it rather than fetch it twice. */
	double deadline = clock_now() + (double)pf->wait_s;
	for (;;) {
		found = spool_find(pf, name->name, &ent, &in_progress);
		if (found != NULL || !in_progress || clock_now() > deadline || !lock_held_elsewhere(pf->dir))
			break;
		clock_sleep(SERVE_POLL_MS / 1000.0);
	}
	if (found == NULL)
		return WS_NOT_FOUND;

	src = xasprintf("%s/%s", pf->dir, found);
	dir = fs_dirname(path);
	tmp = xasprintf("%s/.%s.walship.XXXXXX", dir, fs_basename(path));
	fd = cleanup_create(tmp, O_RDWR | O_CLOEXEC, 0600, &slot);
	if (fd < 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not create temporary file \"%s\"", tmp);
		free(tmp);
		tmp = NULL;
		goto done;
	}
	/* Claim the file: once moved out of the spool, nothing else can change or remove it. */
	if (rename(src, tmp) == 0) {
		close(fd);
		fd = open(tmp, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			rc = ws_error_errno(err, WS_FATAL, errno, "could not open \"%s\"", tmp);
			goto done;
		}
	} else if (errno == EXDEV) {
		sfd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (sfd < 0) {
			rc = WS_NOT_FOUND; /* taken away meanwhile (the prefetcher's clean-up) */
			goto done;
		}
		(void)unlink(src);
	} else {
		rc = WS_NOT_FOUND;
		goto done;
	}

	unsigned char sha[32], head[WAL_LONG_HEADER_SIZE];
	uint64_t size = 0;
	if (hash_copy(sfd, fd, sha, &size, head, sizeof(head)) != 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not copy \"%s\" to \"%s\"", src, tmp);
		goto done;
	}
	WsError perr;
	if (size != ent.size || memcmp(sha, ent.sha256, 32) != 0 ||
	    wal_page_check(head, size < sizeof(head) ? (size_t)size : sizeof(head), pf->ci.pg_major,
			   pf->ci.control.sysid, pf->epoch.seg_size, walname_segno(name, pf->epoch.seg_size),
			   name->name, &perr) != 0) {
		log_warning("prefetched copy of \"%s\" in \"%s\" is damaged: removed, fetching it from the "
			    "repository",
			    name->name, pf->dir);
		rc = WS_NOT_FOUND;
		goto done;
	}
	rc = fetch_install(fd, tmp, path, err);
	fd = -1;
	if (rc != 0)
		goto done;
	renamed = true;
	log_info("restored \"%s\" (%" PRIu64 " bytes) to \"%s\" from the prefetch spool", name->name, size,
		 path);
	rc = 0;
done:
	if (fd >= 0)
		close(fd);
	if (sfd >= 0)
		close(sfd);
	if (tmp != NULL && !renamed)
		unlink(tmp);
	if (slot >= 0)
		cleanup_unregister(slot);
	free(tmp);
	free(dir);
	free(src);
	free(found);
	return rc;
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
	if (pf->ci.pg_major >= 12 && pf->ci.pg_major != 96)
		return file_exists(pf->pgdata, "recovery.signal") ||
		       file_exists(pf->pgdata, "standby.signal");
	return file_exists(pf->pgdata, "recovery.conf");
}

typedef struct MemSink {
	char *buf;
	size_t len, cap;
} MemSink;

static int mem_write(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	(void)err;
	MemSink *m = ctx;
	if (m->len + len + 1 > m->cap) {
		m->cap = (m->len + len + 1) * 2;
		m->buf = xrealloc(m->buf, m->cap);
	}
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	m->buf[m->len] = '\0';
	return 0;
}

/* The path of timeline tli from the repository: WS_NOT_FOUND when it has no history file. */
static int load_path(Runner *r, uint32_t tli, TimelinePath **out, WsError *err)
{
	char name[32], key[STORE_KEY_MAX];
	WalName wn;
	MemSink m = {0};
	*out = NULL;
	if (tli == 1) {
		*out = history_single(1);
		return 0;
	}
	snprintf(name, sizeof(name), "%08X.history", tli);
	if (walname_parse(name, &wn, err) != 0 || repo_key_wal(&r->pf->epoch, &wn, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "no repository key for \"%s\"", name);
	ObjInfo info;
	int rc = repo_get_object(r->repo, key, HISTORY_FILE_MAX, mem_write, &m, &info, err);
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
	FetchSink sink = {.fd = fd, .what = "to the prefetch spool"};
	ObjInfo info;
	int rc = repo_get_object(repo, key, pf->epoch.seg_size, fetch_sink_write, &sink, &info, err);
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
	PrefetchSeg plan[MAX_AHEAD], busy[PREFETCH_WORKERS];
	bool spooled[MAX_AHEAD];
	int n = 0, nbusy = 0, idle = 0, alive = 0, start[MAX_AHEAD];
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
	char text[INDEX_MAX];
	snprintf(ix.uuid, sizeof(ix.uuid), "%s", pf->uuid);
	if (prefetch_index_format(&ix, text, sizeof(text)) != 0)
		return;
	FsFileOpts o = {.mode = 0600};
	WsError e;
	char *dir = fs_dirname(pf->index);
	int rc = mkdir_0700(dir) != 0
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
	if (index_read(pf->index, &ix) == 0 && strcmp(ix.uuid, pf->uuid) == 0)
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
	if (close_range((unsigned)(fd == 3 ? 4 : 3), ~0U, 0) != 0) {
		long max = sysconf(_SC_OPEN_MAX);
		for (long i = 3; i < (max > 0 ? max : 1024); i++)
			if (i != fd)
				close((int)i);
	}
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
	spool_remove_dir(pf->dir);
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
	if (mkdir_0700(pf->dir) != 0) {
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
	int lockfd = lock_take(pf->dir, 0);
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

/* ---- clearing (walship rebuild) ---- */

int prefetch_clear_datadir(const Config *cfg, const char *pgdata, WsError *err)
{
	const char *spool_cfg = config_get(cfg, "spool-path");
	char *spool = spool_cfg ? realpath(spool_cfg, NULL) : NULL;
	char *real = realpath(pgdata, NULL);
	char key[64], suffix[40];
	int rc = 0;

	if (real == NULL) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not resolve the path of \"%s\"", pgdata);
		goto done;
	}
	if (spool == NULL)
		goto done; /* no spool, nothing prefetched */
	prefetch_dir_key(0, real, key, sizeof(key));
	snprintf(suffix, sizeof(suffix), "%s", strchr(key, '-')); /* "-<16 hex>" */
	/* Indexes first, as a prefetcher does: no call follows one into a spool being cleared. */
	char *by_repo = xasprintf("%s/by-repo", spool);
	DIR *ixd = opendir(by_repo);
	struct dirent *x;
	while (ixd != NULL && (x = readdir(ixd)) != NULL) {
		size_t n = strlen(x->d_name), sn = strlen(suffix);
		if (x->d_name[0] != '.' && n > sn && strcmp(x->d_name + n - sn, suffix) == 0)
			(void)unlinkat(dirfd(ixd), x->d_name, 0);
	}
	if (ixd != NULL)
		closedir(ixd);
	free(by_repo);
	DIR *top = opendir(spool);
	struct dirent *u;
	while (top != NULL && (u = readdir(top)) != NULL) {
		if (u->d_name[0] == '.')
			continue;
		char *fetch = xasprintf("%s/%s/fetch", spool, u->d_name);
		DIR *f = opendir(fetch);
		struct dirent *k;
		while (f != NULL && (k = readdir(f)) != NULL) {
			size_t n = strlen(k->d_name), sn = strlen(suffix);
			char *path = xasprintf("%s/%s", fetch, k->d_name);
			if (n > 4 && strcmp(k->d_name + n - 4, ".log") == 0 && n - 4 > sn &&
			    strncmp(k->d_name + n - 4 - sn, suffix, sn) == 0) {
				(void)unlink(path);
			} else if (n > sn && strcmp(k->d_name + n - sn, suffix) == 0) {
				int fd = lock_take(path, CLEAR_WAIT_MS);
				if (fd < 0)
					log_warning("a prefetcher still holds \"%s\": clearing it anyway",
						    path);
				spool_remove_dir(path);
				if (fd >= 0)
					close(fd);
			}
			free(path);
		}
		if (f != NULL)
			closedir(f);
		free(fetch);
	}
	if (top != NULL)
		closedir(top);
done:
	free(spool);
	free(real);
	return rc;
}
