/*
 * prefetch_spool.h - walship-fetch's read-ahead spool, as a call of
 * walship-fetch and walship rebuild use it: open the spool of a call (with
 * the repository, or through the index without it), serve a spooled segment
 * into %p, and clear a data directory's spools.  The prefetcher process that
 * fills the spool is prefetch_runner.c.  The layout, what is served and why
 * it is safe: src/wal/README.md.
 */
#ifndef WALSHIP_WAL_PREFETCH_SPOOL_H
#define WALSHIP_WAL_PREFETCH_SPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "pg/cluster.h"
#include "pg/walname.h"
#include "repo/meta.h"
#include "repo/repo.h"
#include "util/config.h"
#include "util/error.h"
#include "wal/prefetch_plan.h"

typedef struct Prefetch Prefetch;

/*
 * The spool of this call, or NULL when prefetching is off for it (fetch-ahead
 * 0, spool-path missing or inside the data directory, an unusable epoch id;
 * said at debug level, or as a warning for a spool-path inside the data
 * directory).  Never fails the fetch.  Free with prefetch_free.
 */
Prefetch *prefetch_open(const Config *cfg, Repo *repo, const RepoEpoch *epoch, const ClusterInfo *ci,
			const char *pgdata);
void prefetch_free(Prefetch *pf);

/*
 * The spool of this call found through the index, without the repository:
 * NULL when prefetching is off for it (as prefetch_open), when no index
 * exists, or when the index does not name this cluster (ci's system
 * identifier and segment size; epoch_id when not NULL).  Never fails the
 * fetch; a NULL answer only means "open the repository".
 */
Prefetch *prefetch_open_indexed(const Config *cfg, const ClusterInfo *ci, const char *pgdata,
				const char *epoch_id);

/*
 * Serve segment name from the spool into path (%p): 0 when %p now holds it,
 * verified; WS_NOT_FOUND when it was not spooled or did not verify (then
 * removed, with a warning); other errors (writing %p's directory) as
 * cmd_fetch reports them.  Waits for a segment a live prefetcher is fetching.
 */
int prefetch_serve(Prefetch *pf, const WalName *name, const char *path, WsError *err);

/*
 * Remove every spool of the data directory pgdata (any repository, any
 * system identifier), its log and its indexes, waiting up to 10 s for a
 * prefetcher to let go of it (walship rebuild, at its start; pgdata must
 * exist).
 */
int prefetch_clear_datadir(const Config *cfg, const char *pgdata, WsError *err);

/* ---- for the prefetcher (prefetch_runner.c) ---- */

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

/* mkdir(path, 0700), an existing one being fine: 0, or -1 with errno. */
int prefetch_mkdir(const char *path);

/*
 * Take the lock of the spool directory dir without waiting (or waiting up to
 * wait_ms): the fd holding it, -1 if held elsewhere or unusable.
 */
int prefetch_lock_take(const char *dir, long wait_ms);

/* Remove every file of a spool directory and the directory; the lock file last. */
void prefetch_spool_remove(const char *dir);

/* The index at path: 0 and *out, or -1 when missing or unusable. */
int prefetch_index_read(const char *path, PrefetchIndex *out);

#endif
