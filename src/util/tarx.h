/*
 * tarx.h - a streaming tar extractor for base backups read back from a
 * repository (walship rebuild), in fixed memory.
 *
 * The stream may be hostile (a tampered repository), so nothing in it is
 * trusted: paths are resolved below the destination one component at a time
 * without following links, nothing that exists is replaced, and only the
 * ustar entries PostgreSQL writes are accepted (files, directories, symbolic
 * links in opt->symlink_dirs); anything else is WS_CORRUPT naming the entry.
 * Files get mode 0600, directories 0700, times from the entries; the tree is
 * durable when tarx_finish returns 0.  The format accepted, the end of an
 * archive per PostgreSQL version and every refusal: src/util/README.md.
 */
#ifndef WALSHIP_UTIL_TARX_H
#define WALSHIP_UTIL_TARX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct TarxOptions {
	/* Existing directory to extract into (may itself be a symbolic link, e.g. a tablespace). */
	const char *dest;
	/*
	 * NULL-terminated list of relative directories (e.g. "pg_tblspc") in which symbolic
	 * link entries are allowed: the link itself must be directly inside one of them.
	 * Symbolic links anywhere else are refused.  NULL: none allowed.
	 */
	const char *const *symlink_dirs;
	/*
	 * Called for each allowed symbolic link with its relative name (no trailing slash) and
	 * target: return the target to create instead (malloc'd, freed by tarx), or NULL to use
	 * the entry's own; or set *skip to create nothing.  May be NULL.
	 */
	char *(*map_symlink)(void *ctx, const char *name, const char *target, bool *skip);
	void *map_ctx;
	/*
	 * NULL-terminated list of relative paths (e.g. "global/pg_control") written last:
	 * each is extracted to "<name>.walship-partial" beside its final name and renamed
	 * into place (never over an existing file) by tarx_finish, so an interrupted
	 * extraction leaves no such file.  A deferred path absent from the stream is simply
	 * absent afterwards: check for it if it is required.  NULL: none.
	 */
	const char *const *deferred;
	/*
	 * Owner for everything created (files, directories, links) when >= 0; -1 leaves the
	 * extracting process's.  Set both explicitly: a zeroed struct means root.
	 */
	int uid, gid;
	/* Called with the running total of file bytes written (tarx_bytes).  May be NULL. */
	void (*progress)(void *ctx, uint64_t bytes);
	void *progress_ctx;
	/*
	 * Accept a stream that ends right after a complete entry, without the two zero blocks:
	 * what BASE_BACKUP sends up to PostgreSQL 14.  It weakens truncation detection (a stream
	 * cut at an entry boundary looks complete), so prefer storing terminated streams.
	 */
	bool allow_unterminated;
} TarxOptions;

typedef struct Tarx Tarx;

/*
 * Start an extraction.  The options are copied (the strings too); callbacks and their
 * contexts must stay valid until tarx_free.  dest is opened at the first write.
 */
Tarx *tarx_new(const TarxOptions *opt);

/*
 * A WsWriter (ctx is the Tarx): feed the next len bytes of the tar stream, in any
 * chunking.  After a failure every later call fails again with the same error.
 */
int tarx_write(void *tarx, const unsigned char *buf, size_t len, WsError *err);

/*
 * The stream has ended: check that it ended properly (two zero blocks unless
 * allow_unterminated), move the deferred files
 * into place, and fsync the directories not yet synced.  WS_CORRUPT for a truncated or
 * unterminated stream (deferred files then stay unplaced and tarx_free removes them).
 */
int tarx_finish(Tarx *t, WsError *err);

/*
 * Release everything.  Deferred files not yet moved into place are removed; whatever else
 * was extracted stays (the caller decides what to do with a half-built directory).
 */
void tarx_free(Tarx *t);

/* File bytes written so far (the data of file entries, not tar headers or padding). */
uint64_t tarx_bytes(const Tarx *t);

#endif
