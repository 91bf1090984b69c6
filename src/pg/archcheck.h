/*
 * archcheck.h - does a running server archive into this repository?  The
 * checks of its archive settings that walship check prints and walship
 * backup makes before it starts (a backup whose WAL never arrives would
 * otherwise wait out --wal-timeout), and what pg_stat_archiver says.
 *
 * Settings are read from the server (SHOW: what it really runs with, on a
 * plain or a replication connection).  Where a setting comes from
 * (pg_settings.sourcefile and sourceline) is read when the role may
 * (superuser or pg_read_all_settings) and the connection is a plain one.
 */
#ifndef WALSHIP_PG_ARCHCHECK_H
#define WALSHIP_PG_ARCHCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg/pqconn.h"
#include "repo/repo.h"
#include "util/error.h"

/* What one check found.  For ARCH_OK and ARCH_SKIPPED only e->msg is set. */
typedef enum ArchFinding { ARCH_OK, ARCH_SKIPPED, ARCH_WARNING, ARCH_FAILED } ArchFinding;

typedef void (*ArchReportFn)(void *arg, ArchFinding kind, const WsError *e);

typedef struct ArchCheck {
	PqConn *conn;
	const char *repo_url; /* the repository as the user gave it */
	const char *command;  /* "walship check", "walship backup": named in hints */
	ArchReportFn report;
	void *arg;
} ArchCheck;

/*
 * archive_mode (on; off and always fail), archive_library (15+: must be
 * empty), archive_command (calls walship-push with %p %f for this
 * repository, its exit status reaching the server; a repository that cannot
 * be told from here is a warning), each reported once through ac->report.  A
 * failure names where the setting was made (file and line, or why that is not
 * known).  *archiving: archive_mode is on or always.  A negative WsStatus
 * only when the server could not be asked (the findings so far are
 * reported).
 */
int archcheck_settings(const ArchCheck *ac, bool *archiving, WsError *err);

/*
 * On timeline tli past 1: is its history file in the repository's epoch?
 * PostgreSQL archives it once, at the promotion, and only when archive_mode
 * was on then.  Missing: ARCH_FAILED with the walship-push command that
 * archives it from the server's pg_wal (ARCH_WARNING while
 * pg_wal/archive_status still holds it as .ready, when the role may see
 * that).  A negative WsStatus only when interrupted.
 */
int archcheck_history(const ArchCheck *ac, Repo *repo, const RepoEpoch *epoch, uint32_t tli, WsError *err);

/* One row of pg_stat_archiver, as text ("" for NULL). */
typedef struct ArchiverStat {
	char archived_count[24];
	char last_archived_wal[64];
	char last_archived_time[64];
	char failed_count[24];
	char last_failed_wal[64];
	char last_failed_time[64];
	bool failing; /* the last attempt failed (a failure after the last success) */
} ArchiverStat;

/* pg_stat_archiver (a plain connection; any role may read it). */
int archcheck_archiver(PqConn *conn, ArchiverStat *out, WsError *err);

/*
 * Where the server's setting name comes from, for a message: "set in FILE
 * line N", "the default", "where it is set is not visible to role X", ...
 * into buf ("" when it cannot be asked, e.g. on a replication connection).
 * file (may be NULL) receives the file alone, "" when not known.
 */
void archcheck_setting_source(PqConn *conn, const char *name, char *buf, size_t size, char *file,
			      size_t fsize);

/* ---- the pure parts, exposed for tests/unit/test_archcheck.c ---- */

/*
 * What an archive_command says about its walship-push call.  The command is
 * read as PostgreSQL and /bin/sh would: %p, %f and %% first, then sh's
 * quoting ('...', "...", backslash), operators (; & && | || ( ) newline),
 * redirections and comments.  Variable assignments before the program
 * (WALSHIP_REPO=..., also after "env") count as its environment.
 */
typedef struct ArchPushCall {
	char *program;    /* the word that names walship-push, as written */
	char *repo;       /* --repo's value, else WALSHIP_REPO=... before it; NULL if neither */
	char *config;     /* --config's value, else WALSHIP_CONFIG=...; NULL if neither */
	char *args;       /* its positional arguments, space-separated, %p/%f shown as such */
	bool args_ok;     /* exactly "%p %f" */
	bool status_kept; /* its exit status is the command's (not followed by ;, ||, | or &) */
	bool dynamic;     /* a $ or ` expansion in its words: repo or config cannot be known */
} ArchPushCall;

/*
 * 1 with *out filled when cmd calls walship-push (the first such call), 0
 * when it does not, -1 when the command cannot be read (an unterminated
 * quote).  Release with archcheck_push_call_clear.
 */
int archcheck_parse_command(const char *cmd, ArchPushCall *out);
void archcheck_push_call_clear(ArchPushCall *c);

/*
 * A repository URL in one spelling, malloc'd: file:///p as /p, runs of "/"
 * and a trailing "/" (not the root) removed, sftp:// with port 22 omitted,
 * s3://bucket/prefix without trailing "/".  Anything else is returned as
 * given.
 */
char *archcheck_repo_normalize(const char *url);

/* Whether two repository URLs name the same repository (after normalising). */
bool archcheck_repo_same(const char *a, const char *b);

#endif
