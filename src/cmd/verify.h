/*
 * verify.h - walship verify: is the repository whole?
 *
 * The design and formats behind it: src/cmd/README.md, "verify".
 *
 * Memory: verify_kind_name returns a static string.
 */
#ifndef WALSHIP_CMD_VERIFY_H
#define WALSHIP_CMD_VERIFY_H

#include <stdbool.h>

#include "pg/walname.h"
#include "repo/backupmeta.h"
#include "repo/catalog.h"
#include "repo/meta.h"
#include "util/config.h"
#include "util/error.h"

#define VERIFY_EXIT_PROBLEMS 3

typedef struct VerifyOptions {
	bool full;
	bool json;
} VerifyOptions;

/* 0 when whole, VERIFY_EXIT_PROBLEMS (positive) when problems were found, else a negative WsStatus. */
int cmd_verify(const Config *cfg, const VerifyOptions *opt, WsError *err);

/* ---- the pure parts (unit-tested without a repository) ---- */

typedef enum VerifyKind {
	VERIFY_MISSING = 1, /* a file a backup or a timeline needs is absent */
	VERIFY_CORRUPT,     /* an object fails its own checks; manifest.json or a history file unusable */
	VERIFY_MISMATCH,    /* an object differs from what manifest.json or its name says */
	VERIFY_GAP,         /* WAL missing after a backup's span, with WAL present beyond it */
	VERIFY_ORPHAN,      /* a key walship did not write, or an interrupted backup */
} VerifyKind;

/* "missing", "corrupt", "mismatch", "gap", "orphan". */
const char *verify_kind_name(VerifyKind kind);

/* Told of one problem: key is the repository key concerned (a directory's ends with '/'). */
typedef void (*VerifyProblemFn)(void *ctx, VerifyKind kind, const char *key, const WsError *e);

/*
 * The WAL problems of one epoch from its timelines (tls) and catalog_windows of
 * its complete backups (w): a segment missing inside a backup's span
 * (VERIFY_MISSING, once per segment whichever windows show it), a gap after
 * a backup (VERIFY_GAP, once per first missing segment), and a timeline above
 * 1 with segments or a backup but no history file (VERIFY_MISSING).  Returns
 * the number of problems reported.
 */
int verify_wal(const RepoEpoch *ep, const BackupMeta *const *backups, int nb, const CatalogTimeline *tls,
	       int ntl, const CatalogWindow *w, int nw, VerifyProblemFn fn, void *ctx);

typedef enum VerifyKeyKind {
	VERIFY_KEY_REPO = 1, /* walship.json, walship.lock, leases/: not objects */
	VERIFY_KEY_WAL,      /* a segment, .partial, .backup or .history file where fetch looks for it */
	VERIFY_KEY_VARIANT,  /* a differing .partial/.backup kept beside the first: NAME@<16 hex> */
	VERIFY_KEY_BACKUP,   /* a file directly in <epoch>/backups/<valid id>/ */
	VERIFY_KEY_FOREIGN,  /* anything else */
} VerifyKeyKind;

typedef struct VerifyKey {
	const RepoEpoch *epoch;        /* the epoch of meta the key is under, or NULL */
	WalName wal;                   /* WAL, VARIANT */
	char variant[17];              /* VARIANT: the hex after '@' */
	char backup_id[BACKUP_ID_MAX]; /* BACKUP */
	const char *name;              /* BACKUP: the file's name in its directory (points into key) */
} VerifyKey;

/* What key is in a repository described by meta; *out filled as the kind says. */
VerifyKeyKind verify_key_kind(const RepoMeta *meta, const char *key, VerifyKey *out);

#endif
