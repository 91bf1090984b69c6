/*
 * basebackup.h - BASE_BACKUP over the replication protocol, read as a
 * sequence of parts (one tar archive per tablespace, then PostgreSQL's backup
 * manifest) that a consumer pulls one at a time, never buffered whole.
 *
 * The design and formats behind it: src/pg/README.md, "basebackup".
 *
 * Memory: bb_command is malloc'd (caller frees); a part's name and tablespace are borrowed from
 * the stream.
 */
#ifndef WALSHIP_PG_BASEBACKUP_H
#define WALSHIP_PG_BASEBACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/*
 * A size as SHOW prints it ("16MB", "1GB", "8192", "64kB"): bytes.  -1 if it
 * is not a whole number of a known unit or overflows.
 */
int pg_size_parse(const char *s, uint64_t *out);

/* MAXPGPATH: PostgreSQL refuses tablespace locations as long. */
#define PG_LOCATION_MAX 1024

/*
 * Bring a tablespace location the server reports (the target of
 * pg_tblspc/<oid>, which an operator may have made by hand) to the form
 * PostgreSQL records at CREATE TABLESPACE, in place: repeated and trailing
 * slashes and "." components dropped.  false, location unchanged, when that
 * form cannot be reached without the file system: a relative path, a ".."
 * component, the root itself, a control character, PG_LOCATION_MAX bytes or
 * more.  walship rebuild creates and fills the directory a backup records
 * for each tablespace, possibly as root: it must be exactly that one.
 */
bool pg_tablespace_location_normalize(char *location);

/* Whether location is in that form already (what manifest.json may hold). */
bool pg_tablespace_location_ok(const char *location);

/* The SQLSTATE of data corruption, which a page checksum failure carries. */
#define PG_SQLSTATE_DATA_CORRUPTED "XX001"

typedef enum BbResultKind {
	BB_RESULT_NONE = 0, /* the command has no more results */
	BB_RESULT_TUPLES,
	BB_RESULT_COMMAND, /* a command completed without rows */
	BB_RESULT_COPY_OUT,
	BB_RESULT_ERROR,
} BbResultKind;

typedef struct BbResult {
	BbResultKind kind;
	int nrows, ncols;
	const char *const *values; /* TUPLES: nrows * ncols, row-major, NULL for SQL NULL */
	const char *sqlstate;      /* ERROR, may be NULL */
	const char *message;       /* ERROR: the server's primary message */
	const char *detail;        /* ERROR, may be NULL */
	const char *hint;          /* ERROR, may be NULL */
	void *impl;                /* the adapter's own */
} BbResult;

typedef struct BbConnOps {
	/*
	 * The command's next result (BB_RESULT_NONE after the last), as
	 * PQgetResult.  0, or a negative WsStatus with err filled when the
	 * connection itself failed.
	 */
	int (*get_result)(void *ctx, BbResult *out, WsError *err);
	void (*clear_result)(void *ctx, BbResult *res);
	/*
	 * The next CopyData payload of the current COPY OUT, blocking, as
	 * PQgetCopyData: 1 with *buf and *len (release with free_copy), 0 at the
	 * end of the COPY, or a negative WsStatus with err filled.
	 */
	int (*get_copy)(void *ctx, char **buf, size_t *len, WsError *err);
	void (*free_copy)(void *ctx, char *buf);
} BbConnOps;

/* The BASE_BACKUP command for a server_version_num; label is quoted here. */
char *bb_command(int server_version, const char *label, bool manifest);

/* Whether bb_command asks for a manifest at this version (13 and later). */
bool bb_manifest_supported(int server_version);

typedef struct BbTablespace {
	bool is_base;    /* the main data directory (NULL spcoid) */
	uint32_t oid;    /* 0 for the main directory */
	char *location;  /* NULL for the main directory */
	int64_t size_kb; /* the server's estimate, -1 if it sent none */
	char name[24];   /* the archive's name: "base.tar" or "<oid>.tar" */
} BbTablespace;

typedef enum BbPartKind {
	BB_PART_ARCHIVE = 1,
	BB_PART_MANIFEST,
} BbPartKind;

typedef struct BbPart {
	BbPartKind kind;
	const BbTablespace *tablespace; /* archives only; owned by the stream */
	const char *name;               /* "base.tar", "16385.tar", "backup_manifest" */
} BbPart;

typedef struct BbStream BbStream;

/* manifest: bb_command asked for one (the stream then requires it). */
BbStream *bb_stream_new(const BbConnOps *ops, void *ctx, int server_version, bool manifest);
void bb_stream_free(BbStream *s);

/*
 * After the command was sent: read the start position and the tablespace list
 * (and, 15+, enter the COPY).  A server error is WS_FATAL with its message;
 * anything out of shape is WS_FATAL "unexpected ... from the server".
 */
int bb_stream_start(BbStream *s, WsError *err);

uint64_t bb_stream_start_lsn(const BbStream *s);
uint32_t bb_stream_start_tli(const BbStream *s);
int bb_stream_n_tablespaces(const BbStream *s);
const BbTablespace *bb_stream_tablespace(const BbStream *s, int i);
/* Sum of the tablespace estimates in bytes; 0 if the server sent none. */
uint64_t bb_stream_estimate(const BbStream *s);

/*
 * Advance to the next part: 1 with part filled (its bytes are then read with
 * bb_stream_read until it reports the end), 0 when no part is left, or a
 * negative WsStatus.  The previous part must have been read to its end.
 */
int bb_stream_next(BbStream *s, BbPart *part, WsError *err);

/* A WsReader (ctx = the stream) over the current part; *got = 0 at its end. */
int bb_stream_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err);

/* Archive bytes read so far (the manifest not counted). */
uint64_t bb_stream_bytes(const BbStream *s);

/*
 * After the last part: read the stop position and the command's outcome.
 * SQLSTATE XX001 (page checksum failures) is WS_CORRUPT; any other server
 * error WS_FATAL with its message; a missing part or result WS_FATAL.
 */
int bb_stream_finish(BbStream *s, uint64_t *stop_lsn, uint32_t *stop_tli, WsError *err);

#endif
