/*
 * tarx.h - a streaming tar extractor for base backups read back from a repository.
 *
 * walship rebuild pushes each stored BASE_BACKUP tar stream (one per tablespace) through
 * its decoder into tarx_write, which extracts it below one directory.  The stream may be
 * hostile (a tampered repository), so the extractor trusts nothing in it: every path is
 * resolved from the destination one component at a time with O_NOFOLLOW, nothing that
 * exists is replaced, and only the entry kinds PostgreSQL writes are accepted.  Memory is
 * fixed whatever the entry sizes and however the stream is chunked.
 *
 * Format (what PostgreSQL's tarCreateHeader writes, src/port/tar.c): POSIX ustar headers,
 * names of at most 99 bytes in the name field only (no prefix; PostgreSQL refuses longer
 * names with "file name too long for tar format"), a '/' appended to directory and symbolic
 * link names, type '0' files, '5' directories, '2' symbolic links (size 0, target of at most
 * 99 bytes), numbers in octal or, for values that do not fit (files of 8 GiB and more), GNU
 * base-256.  Names may start with "./" (PostgreSQL sends "./pg_wal/archive_status/").  The
 * ustar prefix field is honoured too.  GNU long names ('L', 'K') and pax headers ('x', 'g')
 * are refused: PostgreSQL never writes them.
 *
 * End of archive: since PostgreSQL 15 the server ends every BASE_BACKUP archive with two
 * zero blocks (basebackup.c, "Properly terminate the tarfile"); up to 14 the server sends
 * none and pg_basebackup appends them itself.  tarx_finish requires the two zero blocks
 * unless TarxOptions.allow_unterminated is set; zero bytes after them (blocking padding)
 * are accepted, anything else is not.
 *
 * Refused with WS_CORRUPT, naming the entry: bad header checksum (unsigned and signed sums
 * are both accepted), a non-ustar header, absolute names, ".." components, empty or "."
 * components (other than one leading "./"), names containing NUL or newline, hard links,
 * devices, FIFOs and every other type, symbolic links outside opt->symlink_dirs, an entry
 * whose name already exists (files and links are created with O_EXCL; a directory entry
 * for an existing directory is fine), a path that meets a symbolic link or a non-directory
 * on the way (including links the stream itself created: they are never followed), a
 * truncated stream.
 *
 * Created files get mode 0600 and directories 0700 whatever the entry says (PostgreSQL's
 * data directory requirements); modification times come from the entries.  A directory gets
 * its time when extraction leaves it, so the files created inside do not bump it; that holds
 * for PostgreSQL's depth-first order, deferred files included, while a directory that some
 * other stream comes back to later keeps the time of that later change.  Every file
 * is fsynced when complete and every directory written into is fsynced once extraction
 * leaves it, so the whole tree is durable when tarx_finish returns 0.
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
 * The stream has ended: check that it ended properly (see above), move the deferred files
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
