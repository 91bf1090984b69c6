/*
 * prefetch_plan.h - the pure parts of walship-fetch's read-ahead (see
 * src/wal/README.md): which segments follow a request along the timeline
 * path recovery follows, what the prefetcher may start now, and the names
 * and one-line formats of the spool's files and indexes.  No I/O: unit-tested
 * and fuzzed (tests/fuzz/fuzz_prefetch.c).
 */
#ifndef WALSHIP_WAL_PREFETCH_PLAN_H
#define WALSHIP_WAL_PREFETCH_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg/history.h"
#include "pg/walname.h"
#include "repo/meta.h"
#include "util/error.h"

/* Fetches in flight at once in one prefetcher (never more than fetch-ahead). */
#define PREFETCH_WORKERS 4
/* The largest fetch-ahead. */
#define PREFETCH_MAX_AHEAD 256
#define PREFETCH_NAME_MAX  160
/* The longest index or request text. */
#define PREFETCH_INDEX_MAX 256

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

#endif
