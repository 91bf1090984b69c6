/*
 * catalog.h - what a repository epoch holds, read once for walship list,
 * rebuild, prune and verify: its backups, its WAL per timeline, and the
 * windows of points in WAL each timeline can be rebuilt to, with any gap
 * that cuts a window short.
 *
 * The design and formats behind it: src/repo/README.md, "catalog".
 */
#ifndef WALSHIP_REPO_CATALOG_H
#define WALSHIP_REPO_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg/history.h"
#include "repo/backupmeta.h"
#include "repo/repo.h"
#include "util/error.h"

/* What the repository holds for one timeline of an epoch. */
typedef struct CatalogTimeline {
	uint32_t tli;
	const TimelinePath *path; /* history_parse of its .history, or history_single; NULL: unreadable */
	bool has_history;         /* a .history file exists (timeline 1 never has one) */
	const uint64_t *segs;     /* segment numbers present for this timeline, ascending, unique */
	size_t nsegs;
} CatalogTimeline;

/* A stretch of WAL one can rebuild to: every point from from_lsn to to_lsn. */
typedef struct CatalogRange {
	uint64_t from_lsn;             /* stop_lsn of from_backup: the earliest consistent point */
	const BackupMeta *from_backup; /* borrowed from the caller's array */
	uint64_t to_lsn;               /* end of the last segment of the run (start of the next) */
	uint32_t to_tli;               /* the last segment of the run: its timeline and number */
	uint64_t to_segno;
	int64_t to_time; /* when the repository stored that segment (seconds since 1970), 0: unknown;
			    filled by catalog_scan_epoch */
} CatalogRange;

/* Segments missing from the repository with WAL present after them. */
typedef struct CatalogGap {
	uint32_t tli; /* the timeline recovery would read the first missing segment from */
	uint64_t first_segno;
	uint64_t count;       /* consecutive missing segments */
	bool reachable_after; /* a later range (a backup after the gap) resumes */
} CatalogGap;

/*
 * A backup on this timeline's path that cannot be rebuilt along it for a
 * missing segment.  (One that stops past its timeline's switch point on this
 * path is left out of the window, not listed here.)
 */
typedef struct CatalogUnusable {
	const BackupMeta *backup;
	uint32_t missing_tli; /* the first segment it needs that is missing */
	uint64_t missing_segno;
} CatalogUnusable;

typedef struct CatalogWindow {
	uint32_t tli;
	bool has_history;
	bool bad_history; /* the path was unknown (NULL): nothing else is filled */
	int nranges;      /* in LSN order */
	CatalogRange *ranges;
	int ngaps; /* in LSN order */
	CatalogGap *gaps;
	int nunusable;
	CatalogUnusable *unusable;
} CatalogWindow;

/*
 * One window per entry of tls, in ascending timeline order.  backups are the
 * epoch's complete backups (any order); a backup whose seg_size differs from
 * seg_size is ignored (cmd_list refuses it first).  *out (free with
 * catalog_windows_free) holds pointers into backups.  WS_USAGE if seg_size is
 * not a valid WAL segment size, or if tls has a timeline twice.
 */
int catalog_windows(const BackupMeta *const *backups, int nb, const CatalogTimeline *tls, int ntl,
		    uint32_t seg_size, CatalogWindow **out, int *nout, WsError *err);

void catalog_windows_free(CatalogWindow *w, int n);

/* What the repository holds for one timeline of an epoch. */
typedef struct CatalogEpochTimeline {
	uint32_t tli;
	uint64_t *segs;  /* segment numbers present, ascending, unique */
	int64_t *mtimes; /* the stored time of each (the store's mtime), beside segs */
	size_t nsegs;
	size_t cap;
	bool has_history;
	bool bad_history;   /* its history file could not be used: path is NULL */
	TimelinePath *path; /* history_parse of its .history, or history_single */
} CatalogEpochTimeline;

/* A directory under <epoch>/backups/. */
typedef struct CatalogBackupDir {
	char id[BACKUP_ID_MAX];
	bool has_meta; /* it holds manifest.json: the backup is complete */
} CatalogBackupDir;

/* A manifest.json or history file that catalog_scan_epoch skips. */
typedef struct CatalogProblem {
	const char *epoch;     /* the epoch's id */
	const char *backup_id; /* the backup whose manifest.json is unusable, or NULL */
	uint32_t tli;          /* else the timeline whose history file is unusable */
	const char *key;       /* the object's repository key ("" if it could not be formed) */
	bool mismatch;         /* manifest.json parsed but is of another backup, epoch or cluster */
	bool key_too_long;     /* the object's repository key could not be formed */
} CatalogProblem;

/*
 * Told of each problem, e holding walship list's message without the prefix
 * naming the backup or timeline: the callback adds that, or rewrites e, and
 * reports it.
 */
typedef void (*CatalogProblemFn)(void *ctx, const CatalogProblem *p, WsError *e);

/* One epoch as read by catalog_scan_epoch. */
typedef struct CatalogEpoch {
	const RepoEpoch *epoch;
	CatalogBackupDir *dirs; /* chronological, with or without manifest.json */
	int ndirs;
	BackupMeta **backups; /* the complete backups with a valid manifest.json, chronological */
	int nbackups;
	CatalogEpochTimeline *tls; /* ascending: each timeline with WAL, a history file or a backup */
	int ntl;
	CatalogTimeline *lts; /* tls as catalog_windows takes them */
	CatalogWindow *w;     /* catalog_windows of backups and lts */
	int nw;
	long n_partial;                 /* .partial segments */
	long n_backup_files;            /* .backup history files */
	long n_variants;                /* differing copies kept beside the first ("@" keys) */
	long n_unexpected;              /* keys walship did not write */
	char unexpected[STORE_KEY_MAX]; /* the first one */
	size_t prefix_len;              /* private to the scan */
	int last;
} CatalogEpoch;

/*
 * List <epoch>/backups/ and <epoch>/wal/ of ep, read every manifest.json and
 * history file and compute the windows.  A manifest.json that cannot be read
 * or parsed, or does not match its directory and ep, and a history file that
 * cannot be read, go to problem (with ctx) and are skipped: the backup is left
 * out, the timeline gets bad_history.  An error is returned only for what stops
 * the scan (a listing that fails).  Free *s with catalog_epoch_free, also after
 * an error.
 */
int catalog_scan_epoch(Repo *repo, const RepoEpoch *ep, CatalogProblemFn problem, void *ctx, CatalogEpoch *s,
		       WsError *err);

void catalog_epoch_free(CatalogEpoch *s);

#endif
