/*
 * prefetch_spool.c - the spool of a walship-fetch call: opening it, serving
 * a spooled segment into %p, and clearing a data directory's spools (see
 * prefetch_spool.h; the rules in src/wal/README.md).  The rule everything
 * here serves: a file reaches %p only if it is byte for byte what the
 * repository holds for that segment of that cluster; prefetching may only
 * make recovery faster, never different.
 */
#include "wal/prefetch_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"
#include "wal/sink.h"

#define SERVE_POLL_MS 10
#define CLEAR_WAIT_MS 10000

/* ---- the spool's files ---- */

int prefetch_mkdir(const char *path)
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
int prefetch_lock_take(const char *dir, long wait_ms)
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
void prefetch_spool_remove(const char *dir)
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

/* The index at path: 0 and *out, or -1 when missing or unusable. */
int prefetch_index_read(const char *path, PrefetchIndex *out)
{
	char *text = NULL;
	size_t len = 0;
	WsError e;
	int rc = -1;
	if (fs_read_small(path, PREFETCH_INDEX_MAX, &text, &len, &e) == 0)
		rc = prefetch_index_parse(text, len, out);
	free(text);
	return rc;
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

	if (config_get_int(cfg, "fetch-ahead", 0, PREFETCH_MAX_AHEAD, &ahead, &e) != 0) {
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
	bool ok = prefetch_mkdir(uuid_dir) == 0 && prefetch_mkdir(pf->fetchdir) == 0;
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

Prefetch *prefetch_open_indexed(const Config *cfg, const ClusterInfo *ci, const char *pgdata,
				const char *epoch_id)
{
	PrefetchIndex ix;
	Prefetch *pf = prefetch_setup(cfg, ci, pgdata, false);
	if (pf == NULL)
		return NULL;
	if (prefetch_index_read(pf->index, &ix) != 0) {
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
	WalTemp tmp = WAL_TEMP_NONE;
	bool in_progress = false;
	char *found = NULL, *src = NULL;
	int sfd = -1, rc = WS_NOT_FOUND;

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
	if ((rc = wal_temp_open(&tmp, path, err)) != 0)
		goto done;
	/* Claim the file: once moved out of the spool, nothing else can change or remove it. */
	if (rename(src, tmp.path) == 0) {
		close(tmp.fd);
		tmp.fd = open(tmp.path, O_RDWR | O_CLOEXEC);
		if (tmp.fd < 0) {
			rc = ws_error_errno(err, WS_FATAL, errno, "could not open \"%s\"", tmp.path);
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
	if (hash_copy(sfd, tmp.fd, sha, &size, head, sizeof(head)) != 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not copy \"%s\" to \"%s\"", src, tmp.path);
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
	if ((rc = wal_temp_install(&tmp, path, err)) != 0)
		goto done;
	log_info("restored \"%s\" (%" PRIu64 " bytes) to \"%s\" from the prefetch spool", name->name, size,
		 path);
	rc = 0;
done:
	if (sfd >= 0)
		close(sfd);
	wal_temp_close(&tmp);
	free(src);
	free(found);
	return rc;
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
				int fd = prefetch_lock_take(path, CLEAR_WAIT_MS);
				if (fd < 0)
					log_warning("a prefetcher still holds \"%s\": clearing it anyway",
						    path);
				prefetch_spool_remove(path);
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
