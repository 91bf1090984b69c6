/*
 * prefetch.h - walship-fetch's read-ahead during recovery.
 *
 * Only a call for a WAL segment with %p named RECOVERYXLOG, in recovery or
 * standby mode, prefetches.  pg_rewind -c (a frontend %p), history files,
 * .partial files and every other caller never touch the spool.
 *
 * Spool layout (spool-path must exist; the rest is made 0700):
 *
 *   <spool-path>/<repository UUID>/fetch/<sysid>-<16 hex>/       one per data directory
 *       lock                 flock(2)ed by the one prefetcher of this data directory
 *       request              "<segment> <epoch>\n": the last segment recovery asked for
 *       <seg>.<epoch>.<size>.<sha256>   a verified segment, ready to serve
 *       .<seg>.<pid>.<n>.tmp a segment being fetched by worker n (0: the main thread)
 *   <spool-path>/<repository UUID>/fetch/<sysid>-<16 hex>.log     the prefetcher's stderr
 *   <spool-path>/by-repo/<16 hex>-<sysid>-<16 hex>      the index: where that spool is
 *
 * The 16 hex digits are the start of the SHA-256 of the data directory's
 * realpath: two data directories of one cluster never share a spool.  A
 * spool-path inside the data directory disables prefetching (pg_wal
 * prefetch directories broke pg_rewind elsewhere).
 *
 * What is served: the name of a spooled file carries the segment (timeline
 * and position), the epoch, the size and the SHA-256 the repository's object
 * decoded to (checked by the object decoder against the object's trailer when
 * it was spooled); the directory carries the repository and the cluster.  A
 * call serves a spooled file only when all of these match its request and,
 * after the file was claimed (renamed beside %p, or copied there when the
 * spool is on another filesystem), its bytes hash to that SHA-256 and start
 * with this cluster's page header for that segment.  So a file changed in
 * the spool (a flipped byte, a truncation) is removed with a warning and the
 * segment is fetched from the repository as if nothing had been spooled.
 * The claimed copy then gets the same rename into %p as a direct fetch.
 * Files inside the spool are written without fsync: it is a cache, and every
 * byte is re-verified on the way out.
 *
 * "Not found" is never remembered: a missing segment is simply not spooled,
 * and the next call asks the repository.
 *
 * Serving without the repository: the spool is named by the repository's
 * UUID, which only walship.json tells.  So a running prefetcher writes an
 * index, named by the first 16 hex digits of the SHA-256 of the repository
 * as configured (the repo setting and s3-endpoint, as push records are) and
 * the data directory's key, holding the UUID and the epoch it fetches for
 * (id, system identifier, PG major, segment size).  A call for RECOVERYXLOG
 * in recovery or standby mode looks there before opening the repository: if
 * the index names this cluster (system identifier and segment size of
 * pg_control; the --epoch given, if any) and the segment is spooled and
 * verifies as above, it is served with no round trip to the store, and the
 * request is written as usual (starting a prefetcher from the index if none
 * runs).  Anything else -- no index, a mismatch, not spooled, damaged --
 * falls back to opening the repository and fetching directly: only a
 * repository proven healthy in this call answers "not found".  The
 * prefetcher removes its index before its spool when it exits; walship
 * rebuild removes the data directory's indexes with its spools.
 *
 * The prefetcher: when a call finds the lock free, it takes it and forks
 * twice; the grandchild inherits the locked descriptor, closes every other
 * descriptor (a held logging-collector pipe would keep the old syslogger
 * alive), points stdin/stdout at /dev/null and stderr at the .log file, and
 * does NOT call setsid(): it stays in the startup process's process group, so
 * the postmaster's SIGTERM/SIGQUIT to that group reach it.  It opens its own
 * repository handle and plans the next fetch-ahead segments after the last
 * request along the timeline path recovery follows (the segment's timeline,
 * followed to the newest timeline in the repository whose history passes
 * through it, probing <tli+1>.history upward as findNewestTimeLine does; each
 * segment from the timeline XLogFileReadAnyTLI picks first:
 * history_segments).  Spooled files before the request or off its plan are
 * removed.
 *
 * Fetching is parallel: one round trip per segment is what makes a remote
 * store slow, and recovery replays far faster than one fetch at a time
 * delivers.  A pool of min(PREFETCH_WORKERS, fetch-ahead) threads, each with
 * its own repository handle (repo_open_another, opened at its first segment),
 * fetches while the main thread keeps the plan: it hands the first missing
 * segments of the plan, oldest first, to idle workers (prefetch_next), never
 * one segment to two workers, nothing at or after a segment that answered
 * "not found" for this request (it is asked again once the request moves),
 * and only as many as the spool bound leaves room for: all spools under
 * spool-path together stay below spool-max-size MiB, each segment in flight
 * counted as a whole segment.  An error backs off for a while; a worker whose
 * handle cannot be opened is warned about once and the others go on (with
 * none left, the main thread fetches one at a time with its own handle).
 *
 * It exits, removing its index and spool after every worker has finished or
 * failed its current segment (within io-timeout), when recovery has ended (no
 * recovery.signal/standby.signal, or recovery.conf for 11 and older), when
 * the postmaster named by postmaster.pid at its start is gone, on
 * SIGTERM/SIGINT, or after PREFETCH_IDLE_SECONDS without a new request.
 *
 * A call that finds the segment it wants being fetched by a live prefetcher
 * (its .tmp file, whichever worker writes it) waits for it (up to io-timeout)
 * instead of fetching it a second time.
 *
 * Known window: a request written just as an idle prefetcher decides to exit
 * is not prefetched for; the next call starts a new prefetcher.
 */
#ifndef WALSHIP_CMD_PREFETCH_H
#define WALSHIP_CMD_PREFETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg/cluster.h"
#include "pg/history.h"
#include "pg/walname.h"
#include "repo/meta.h"
#include "repo/repo.h"
#include "util/config.h"
#include "util/error.h"

#define PREFETCH_IDLE_SECONDS 20
/* Fetches in flight at once in one prefetcher (never more than fetch-ahead): see "The prefetcher" above. */
#define PREFETCH_WORKERS  4
#define PREFETCH_NAME_MAX 160

/* ---- pure parts (unit-tested) ---- */

typedef struct PrefetchSeg {
	uint32_t tli;
	uint64_t segno;
} PrefetchSeg;

/* Does recovery following p read segment segno from timeline tli first? */
bool prefetch_on_path(const TimelinePath *p, uint32_t seg_size, uint32_t tli, uint64_t segno);

/*
 * The at most max segments after segno, in order, each with the timeline p
 * reads it from, into out; *got gets how many.  WS_USAGE when (tli, segno)
 * is not on p (the plan of another path), or max < 0.
 */
int prefetch_plan(const TimelinePath *p, uint32_t seg_size, uint32_t tli, uint64_t segno, int max,
		  PrefetchSeg *out, int *got);

/* An epoch id usable in a spool name: 1 to 31 of [A-Za-z0-9_-]. */
bool prefetch_epoch_id_ok(const char *id);

/* A spooled file's name: "<segname>.<epoch>.<size>.<64 hex>"; -1 if it does not fit or the epoch id is
 * unusable. */
int prefetch_spool_name(const char *segname, const char *epoch_id, uint64_t size,
			const unsigned char sha256[32], char *buf, size_t bufsize);

typedef struct SpoolEntry {
	char segname[25];
	char epoch[32];
	uint64_t size;
	unsigned char sha256[32];
} SpoolEntry;

/* Parse a spooled file's name; -1 for anything else (temp files, lock, request, foreign names). */
int prefetch_spool_parse(const char *name, SpoolEntry *out);

/* "<sysid>-<first 16 hex of SHA-256(realpath)>" into buf (at least 40 bytes). */
void prefetch_dir_key(uint64_t sysid, const char *realpath, char *buf, size_t bufsize);

/* How many more segments of seg_size fit when used of max bytes are taken (0 when full). */
uint64_t prefetch_room(uint64_t max_bytes, uint64_t used_bytes, uint32_t seg_size);

/*
 * What the prefetcher may start now.  The plan (n segments, oldest first) and
 * per segment whether it is spooled; the segments being fetched (busy, on
 * the plan or left over from an earlier one); room, the segments the spool
 * bound still allows with every one being fetched already counted as
 * seg_size bytes used; idle, the workers free to take one; blocked_segno,
 * when blocked, the segment that answered "not found" for this request.
 */
typedef struct PrefetchWindow {
	const PrefetchSeg *plan;
	const bool *spooled;
	int n;
	const PrefetchSeg *busy;
	int nbusy;
	uint64_t room;
	int idle;
	bool blocked;
	uint64_t blocked_segno;
} PrefetchWindow;

/*
 * The plan indexes to start, oldest first, into out (at least idle entries);
 * returns how many: the first segments that are neither spooled nor busy, at
 * most idle and room of them, none at or after blocked_segno.
 */
int prefetch_next(const PrefetchWindow *w, int *out);

/* What an index says: the repository's UUID and the epoch the prefetcher fetches for. */
typedef struct PrefetchIndex {
	char uuid[40];
	RepoEpoch epoch; /* id, sysid, pg_major, seg_size; created unused */
} PrefetchIndex;

/* An index's name, "<first 16 hex of SHA-256(repo_ident)>-<dir_key>", into buf (at least 60 bytes). */
void prefetch_index_name(const char *repo_ident, const char *dir_key, char *buf, size_t bufsize);

/* An index's text, one line "1 <uuid> <epoch id> <sysid> <pg major> <segment size>"; -1 if it does not fit.
 */
int prefetch_index_format(const PrefetchIndex *ix, char *buf, size_t bufsize);

/* Parse an index's text strictly; -1 for anything else (another format, a bad UUID or epoch id). */
int prefetch_index_parse(const char *text, size_t len, PrefetchIndex *out);

/*
 * Parse a request file's text strictly: exactly "<segment> <epoch id>\n", as
 * prefetch_request writes it.  0 with *seg and epoch (at least 32 bytes)
 * filled; -1 for anything else.
 */
int prefetch_request_parse(const char *text, size_t len, WalName *seg, char *epoch);

/* ---- used by walship-fetch ---- */

typedef struct Prefetch Prefetch;

/*
 * The spool of this call, or NULL when prefetching is off for it (fetch-ahead
 * 0, spool-path missing or inside the data directory, an unusable epoch id;
 * said at debug level, or as a warning for a spool-path inside the data
 * directory).  Never fails the fetch.
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

/* Record that recovery asked for name, and start the prefetcher if none runs.  Never fails the fetch. */
void prefetch_request(Prefetch *pf, const WalName *name);

/*
 * Remove every spool of the data directory pgdata (any repository, any
 * system identifier), its log and its indexes, waiting up to 10 s for a prefetcher to let
 * go of it (walship rebuild, at its start; pgdata must exist).
 */
int prefetch_clear_datadir(const Config *cfg, const char *pgdata, WsError *err);

#endif
