/*
 * check.h - walship check: is this running cluster archiving into this
 * repository, for real?
 *
 *   walship check --repo=R [-d CONNSTR] [--timeout=SECONDS]
 *
 * Connects to the server and checks, each with a line "ok: ..." or
 * "failed: ..." plus a hint saying what to change:
 * - archive_mode is on (off: refuse; always: refuse, it archives from
 *   standbys too and walship's duplicate rules are strict for segments);
 * - archive_command calls walship-push with %p %f and with this repository
 *   (--repo in the command, or the repo setting walship-push would read);
 * - the repository belongs to this cluster (system identifier, major
 *   version, segment size of the newest epoch);
 * - a missing key is answered "not found" by the store (S3 without
 *   s3:ListBucket answers 403: restore_command could then never end recovery
 *   normally);
 * - then forces a WAL switch (pg_switch_wal) and waits, up to --timeout
 *   (default 60 s), until that file is in the repository.
 * Exit 0 only if all holds, CHECK_EXIT_FAILED when a check failed, 1 when
 * check itself could not run (cannot connect, repository unreadable), 2 on
 * usage errors.
 */
#ifndef WALSHIP_CMD_CHECK_H
#define WALSHIP_CMD_CHECK_H

#include <stdbool.h>

#include "util/config.h"
#include "util/error.h"

#define CHECK_EXIT_FAILED     3
#define CHECK_TIMEOUT_DEFAULT 60

typedef struct CheckOptions {
	const char *dbname; /* -d: libpq connection string or database name; NULL: PG* defaults */
	int timeout;        /* seconds to wait for the switched WAL file; 0 or less: CHECK_TIMEOUT_DEFAULT */
} CheckOptions;

/*
 * 0 when every check holds, CHECK_EXIT_FAILED (positive) when one failed, else a negative WsStatus.
 * The check lines go to stdout ("ok: ..." only above log level "error"; "failed: ..." and
 * "warning: ..." always, each followed by indented "detail:" and "hint:" lines).
 */
int cmd_check(const Config *cfg, const CheckOptions *opt, WsError *err);

/* ---- the pure parts, exposed for tests/unit/test_check.c ---- */

/*
 * What an archive_command says about its walship-push call.  The command is
 * read as PostgreSQL and /bin/sh would: %p, %f and %% first, then sh's
 * quoting ('...', "...", backslash), operators (; & && | || ( ) newline),
 * redirections and comments.  Variable assignments before the program
 * (WALSHIP_REPO=..., also after "env") count as its environment.
 */
typedef struct CheckPushCall {
	char *program;    /* the word that names walship-push, as written */
	char *repo;       /* --repo's value, else WALSHIP_REPO=... before it; NULL if neither */
	char *config;     /* --config's value, else WALSHIP_CONFIG=...; NULL if neither */
	char *args;       /* its positional arguments, space-separated, %p/%f shown as such */
	bool args_ok;     /* exactly "%p %f" */
	bool status_kept; /* its exit status is the command's (not followed by ;, ||, | or &) */
	bool dynamic;     /* a $ or ` expansion in its words: repo or config cannot be known */
} CheckPushCall;

/*
 * 1 with *out filled when cmd calls walship-push (the first such call), 0
 * when it does not, -1 when the command cannot be read (an unterminated
 * quote).  Release with check_push_call_clear.
 */
int check_parse_archive_command(const char *cmd, CheckPushCall *out);
void check_push_call_clear(CheckPushCall *c);

/*
 * A repository URL in one spelling, malloc'd: file:///p as /p, runs of "/"
 * and a trailing "/" (not the root) removed, sftp:// with port 22 omitted,
 * s3://bucket/prefix without trailing "/".  Anything else is returned as
 * given.
 */
char *check_repo_normalize(const char *url);

/* Whether two repository URLs name the same repository (after normalising). */
bool check_repo_same(const char *a, const char *b);

#endif
