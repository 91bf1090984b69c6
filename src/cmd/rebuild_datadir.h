/*
 * rebuild_datadir.h - walship rebuild's data-directory preparation: the
 * checks before anything is written (no running server, tablespace
 * directories empty), who will own the files, the backup's tars extracted,
 * and the small files written beside them (tablespace_map, restore_command's
 * text; postgresql.conf and its kin are rebuild_config's).  Returned strings are the caller's to free.
 */
#ifndef WALSHIP_CMD_REBUILD_DATADIR_H
#define WALSHIP_CMD_REBUILD_DATADIR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "cmd/rebuild_plan.h"
#include "repo/backupmeta.h"
#include "repo/catalog.h"
#include "repo/repo.h"
#include "util/config.h"
#include "util/error.h"
#include "util/tarx.h"

/* Where a tablespace of the backup goes. */
typedef struct RebuildTablespace {
	uint32_t oid;
	const char *dir; /* where its tar goes (the original location or the mapped one) */
	bool mapped;
} RebuildTablespace;

/* The extraction's progress line on stderr (when on). */
typedef struct RebuildProgress {
	bool on;
	uint64_t base; /* bytes of the objects already done */
	uint64_t total;
	time_t last;
	bool shown;
} RebuildProgress;

/* Refuse (WS_FATAL) while pgdata's postmaster.pid names a live process (or one we may not signal). */
int rebuild_check_postmaster(const char *pgdata, const char *stop_cmd, WsError *err);

/*
 * The owner of what rebuild creates: the current user; when root, the data
 * directory's owner if it exists, else the postgres user.  *why says which
 * (a static string).
 */
void rebuild_choose_owner(const char *pgdata, bool exists, uid_t *uid, gid_t *gid, const char **why);

/* Create path (mode 0700, owned by uid/gid when root) unless it is a directory already. */
int rebuild_make_dir_owned(const char *path, uid_t uid, gid_t gid, WsError *err);

/*
 * Where each tablespace of b goes: its recorded location or the one
 * --tablespace-map gives (WS_USAGE for a bad entry or an unknown OID).
 * *out (caller frees; dir borrowed from b or o) has *nout entries.
 */
int rebuild_tablespace_dests(const BackupMeta *b, const RebuildOptions *o, RebuildTablespace **out, int *nout,
			     WsError *err);

/* Every tablespace directory must be empty or absent: its old content would mix with the backup's. */
int rebuild_check_tablespace_dirs(const RebuildTablespace *d, int n, WsError *err);

/*
 * Extract tablespace t of backup b (epoch s) into dest, owned by uid/gid when
 * root, checked against manifest.json.  The main directory's pg_control is
 * held back: with keep, *keep gets the unfinished extraction for the caller
 * to tarx_finish last; without, it is finished here.
 */
int rebuild_extract(Repo *repo, const CatalogEpoch *s, const BackupMeta *b, const BackupTablespaceInfo *t,
		    const char *dest, uid_t uid, gid_t gid, RebuildProgress *pr, Tarx **keep, WsError *err);

/*
 * restore_command's text (*out, caller frees): walship-fetch beside this
 * program with the same repository, configuration file and epoch.
 */
int rebuild_restore_command(const Config *cfg, const RebuildOptions *o, const char *epoch, char **out,
			    WsError *err);

/*
 * recovery_end_command for a point-in-time rebuild of pgdata on PostgreSQL 12
 * and later: "walship rebuild --recovery-ended --pgdata=DIR" with this
 * program's path and --config, so that the recovery targets leave
 * postgresql.auto.conf once recovery has ended, also when walship rebuild
 * did not start the server.  WS_FATAL when walship cannot be found.
 */
int rebuild_end_command(const RebuildOptions *o, char **out, WsError *err);

/* pgdata/tablespace_map for the n destinations d. */
int rebuild_write_tablespace_map(const char *pgdata, const RebuildTablespace *d, int n, uid_t uid, gid_t gid,
				 WsError *err);

/* Remove pgdata/name if it exists. */
int rebuild_remove_if_exists(const char *pgdata, const char *name, WsError *err);

#endif
