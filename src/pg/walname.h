/*
 * walname.h - names of the files PostgreSQL archives, and their order.
 *
 *   000000010000000300000019              a segment: timeline, log, seg (24 uppercase hex)
 *   00000002.history                      a timeline history file
 *   000000010000000300000019.00000028.backup   a backup history file
 *   000000010000000300000019.partial      the last, incomplete segment of an old timeline
 *
 * Anything else (lowercase hex, paths, suffixes) is refused: these names come
 * from archive_command's %f and become repository keys.
 *
 * Memory: walname_kind_str returns a static string.
 */
#ifndef WALSHIP_PG_WALNAME_H
#define WALSHIP_PG_WALNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef enum WalKind {
	WAL_SEGMENT = 1,
	WAL_HISTORY,
	WAL_BACKUP,
	WAL_PARTIAL,
} WalKind;

#define WAL_NAME_MAX 64

/* A .history or .backup file is a few KiB: anything bigger than this is not one. */
#define WAL_SMALL_FILE_MAX (16u * 1024 * 1024)

typedef struct WalName {
	WalKind kind;
	uint32_t tli;
	uint32_t log;            /* segments, .backup, .partial: the middle 8 hex digits */
	uint32_t seg;            /* the last 8 hex digits */
	uint32_t backup_offset;  /* .backup only */
	char name[WAL_NAME_MAX]; /* the whole name as given */
} WalName;

/*
 * Parse name into out.  WS_USAGE with a message quoting the name and a detail
 * listing the accepted forms when it is none of them.  Timeline 0 is refused.
 */
int walname_parse(const char *name, WalName *out, WsError *err);

/*
 * For a name that failed walname_parse: whether a hook's two arguments look
 * given in the wrong order, that is, the one that should be the path is a bare
 * WAL file name and the one that should be the name is a path (has a '/', or
 * is RECOVERYXLOG / RECOVERYHISTORY, the names restore_command's %p ends in).
 */
bool walname_args_swapped(const char *bare, const char *pathlike);

/* Name of the file kind: "segment", "history file", "backup history file", "partial segment". */
const char *walname_kind_str(WalKind kind);

/* Segments per "log" (4 GiB / segment size). */
uint64_t wal_segs_per_log(uint32_t seg_size);

/* Absolute segment number of a segment-like name (log * segs_per_log + seg). */
uint64_t walname_segno(const WalName *n, uint32_t seg_size);

/*
 * The seg field must be below segs_per_log for this segment size; WS_USAGE if
 * not (e.g. 000000010000000000000100 with 16 MiB segments).
 */
int walname_check_segsize(const WalName *n, uint32_t seg_size, WsError *err);

/* Format a segment name for (tli, segno) into buf (at least 25 bytes). */
void wal_segment_name(uint32_t tli, uint64_t segno, uint32_t seg_size, char *buf);

/*
 * Order of archive names: by timeline, then position; a history file sorts
 * before the segments of its timeline.  strcmp-like.
 */
int walname_compare(const WalName *a, const WalName *b);

/* Valid WAL segment sizes: a power of two from 1 MiB to 1 GiB. */
bool wal_segsize_valid(uint32_t seg_size);

/* Longest part of an untrusted string walname_escape shows before "...". */
#define WALNAME_ESCAPE_MAX 64

/*
 * Copy the len bytes at s into buf (size bytes, NUL-terminated) for an error
 * message: bytes outside printable ASCII, '"' and the backslash become \xNN,
 * and the copy ends with "..." after WALNAME_ESCAPE_MAX characters or when buf
 * is full.
 */
void walname_escape(const char *s, size_t len, char *buf, size_t size);

#endif
