/*
 * pushspool.h - records of WAL files walship-push stored ahead of time.
 *
 * The design and formats behind it: src/wal/README.md, "pushspool".
 *
 * Memory: push_spool_format and the *dir results are malloc'd: the caller frees them.
 */
#ifndef WALSHIP_WAL_PUSHSPOOL_H
#define WALSHIP_WAL_PUSHSPOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "pg/walname.h"
#include "util/error.h"

#define PUSH_SPOOL_FORMAT   2
#define PUSH_SPOOL_MAX_AGE  (24 * 3600)
#define PUSH_SPOOL_TEMP_AGE 3600
#define PUSH_SPOOL_REPO_MAX 1024
#define PUSH_SPOOL_KEY_MAX  1024
#define PUSH_SPOOL_FAILING  "failing"

typedef struct PushRecord {
	char uuid[40];
	char repo[PUSH_SPOOL_REPO_MAX]; /* the repository as configured (never a secret) */
	char epoch[32];
	uint64_t sysid;
	char name[WAL_NAME_MAX];
	uint64_t size;
	unsigned char sha256[32];
	char key[PUSH_SPOOL_KEY_MAX]; /* the object holding the file in the repository */
	uint64_t stored_size;         /* its size there */
	time_t stored;
} PushRecord;

/*
 * Check that spool (the spool-path setting) is an absolute path outside
 * pgdata (both resolved through symlinks; spool need not exist yet).
 * WS_USAGE with a hint otherwise.
 */
int push_spool_check(const char *spool, const char *pgdata, WsError *err);

/*
 * The directory holding the records of repository uuid, created (mode
 * 0700, durably) when missing.
 */
int push_spool_dir(const char *spool, const char *uuid, char **dir, WsError *err);

/* A record's text (the format above), newline-terminated. */
char *push_spool_format(const PushRecord *rec);

/*
 * The record in text (len bytes), as push_spool_format writes it: WS_CORRUPT
 * for anything that does not parse.  Where it lies is push_spool_read's
 * business.
 */
int push_spool_parse(const char *text, size_t len, PushRecord *out, WsError *err);

/* Write rec atomically and durably into dir (as push_spool_dir made it). */
int push_spool_write(const char *dir, const PushRecord *rec, WsError *err);

/*
 * Read the record for name in dir.  WS_NOT_FOUND if there is none;
 * WS_CORRUPT for a record that does not parse or whose uuid or name does
 * not match its place.
 */
int push_spool_read(const char *dir, const char *name, PushRecord *out, WsError *err);

/* Whether dir holds a record for name (no parsing: a cheap test for choosing work). */
bool push_spool_has(const char *dir, const char *name);

/* Remove the record for name in dir (missing is fine), durably. */
void push_spool_remove(const char *dir, const char *name);

/*
 * Find a record for name under any repository of the spool whose repo and
 * sysid are the given ones.  0 with *out and *dir filled, or
 * WS_NOT_FOUND.  Unreadable or damaged records are skipped.  Only a cheap
 * local test for whether a call may have a record: it proves nothing about
 * the repository.
 */
int push_spool_find(const char *spool, const char *name, const char *repo, uint64_t sysid, PushRecord *out,
		    char **dir);

/*
 * The failed asked-for file (PUSH_SPOOL_FAILING in dir): set it to name,
 * test whether it is name, or clear it.  A hint only, never synced: losing
 * it costs one round of files stored ahead.
 */
void push_spool_set_failing(const char *dir, const char *name);
bool push_spool_is_failing(const char *dir, const char *name);
void push_spool_clear_failing(const char *dir);

/*
 * Remove from dir: records older than max_age seconds (by mtime), records
 * whose file status_dir (pg_wal/archive_status) no longer lists as .ready,
 * and temp files older than PUSH_SPOOL_TEMP_AGE (PUSH_SPOOL_FAILING stays).  Best effort, quiet;
 * returns how many entries were removed.
 */
int push_spool_expire(const char *dir, const char *status_dir, time_t now, time_t max_age);

#endif
