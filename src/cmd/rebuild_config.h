/*
 * rebuild_config.h - the configuration of a rebuilt copy: postgresql.conf,
 * pg_hba.conf, pg_ident.conf and their included files, made self-contained.
 *
 * A backup of a Debian cluster holds no postgresql.conf (it lives in
 * /etc/postgresql/VERSION/NAME); walship backup keeps it beside base.tar
 * (cmd/backup_config.h).  That file names the source cluster's own files:
 * data_directory, hba_file, ident_file, external_pid_file, include_dir
 * 'conf.d' relative to /etc.  A copy that kept them would read the source's
 * pg_hba.conf, write the source's pid file, or start on the source's data
 * directory.  The sanitiser rewrites such lines to the copy's own files, or
 * removes them, each change marked with a comment, and refuses what it
 * cannot make safe, naming FILE:LINE.
 *
 * Memory: a RebuildConf owns its files and strings (rebuild_conf_free).
 */
#ifndef WALSHIP_CMD_REBUILD_CONFIG_H
#define WALSHIP_CMD_REBUILD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "repo/backupmeta.h"
#include "repo/repo.h"
#include "util/error.h"

/* Where the files a configuration includes are read from: the backup, or this host (--config-from). */
typedef struct RebuildConfSource {
	/* path's content (*text malloc'd): 0, WS_NOT_FOUND when there is none, else an error */
	int (*read)(void *ctx, const char *path, char **text, size_t *len, WsError *err);
	/* the file names in directory dir (malloc'd array of malloc'd names): 0, WS_NOT_FOUND, else an error
	 */
	int (*list)(void *ctx, const char *dir, char ***names, int *n, WsError *err);
	void *ctx;
	/*
	 * The backup: an included file it lacks had no settings or could not be
	 * read at backup time (manifest.json says which), so its directive is
	 * removed with a warning.  Else (a file on this host) it is refused.
	 */
	bool from_backup;
} RebuildConfSource;

/* One file of the copy's configuration, rel to the copy's data directory. */
typedef struct RebuildConfFile {
	char *rel;
	char *text; /* NULL: a directory (an include_dir with no file) */
	size_t len;
} RebuildConfFile;

typedef struct RebuildConf {
	RebuildConfFile *files; /* files[0] is postgresql.conf */
	int nfiles;
	char *hba_file; /* what hba_file / ident_file lines named (absolute), NULL if none */
	char *ident_file;
	int nchanges;  /* lines rewritten or removed */
	int nwarnings; /* of them, those that lose a setting (an include the backup lacks) */
} RebuildConf;

/*
 * Sanitise the configuration file path (text of len bytes) for a copy in
 * pgdata (absolute): data_directory, external_pid_file and
 * stats_temp_directory removed; hba_file and ident_file removed (recorded in
 * out: the copy gets its own pg_hba.conf and pg_ident.conf beside
 * postgresql.conf); include, include_if_exists and include_dir followed
 * through src (relative to the including file), their files sanitised the
 * same way into the copy and the directives rewritten to them; a value under
 * src_datadir (the source cluster's data directory, may be NULL) rewritten
 * to the same place in pgdata.  Refused with WS_FATAL naming FILE:LINE: a
 * syntax error, includes nested deeper than 10, an include whose file src
 * does not have (unless from_backup), a value under src_confdir (the source's
 * configuration directory outside its data directory, may be NULL) or that
 * names src_datadir inside a longer value.  Each change is a comment line
 * "# walship rebuild: ..." above the line; a file without change is copied
 * byte for byte.
 */
int rebuild_conf_sanitise(const char *path, const char *text, size_t len, const char *src_datadir,
			  const char *src_confdir, const char *pgdata, const RebuildConfSource *src,
			  RebuildConf *out, WsError *err);

void rebuild_conf_free(RebuildConf *c);

/*
 * The configuration of a rebuilt data directory pgdata, owned by uid/gid,
 * called once base.tar is extracted.  in_place (a data directory whose
 * configuration lives elsewhere and stays: a Debian cluster's, whose
 * /etc/postgresql/V/N applies; also when pgdata is the data_directory the
 * backup recorded): nothing is written.
 * When base.tar had a postgresql.conf (initdb's layout) it is kept.  Else
 * postgresql.conf comes from config_from (a file on this host) or from the
 * backup's config object (b->config, read from repo under epoch), sanitised
 * (rebuild_conf_sanitise), else it is an empty commented file; pg_hba.conf
 * and pg_ident.conf come from the same place when the copy has none, else
 * minimal local-only ones are written with a warning.  One summary line on
 * stdout.
 */
int rebuild_config_write(Repo *repo, const char *epoch, const BackupMeta *b, const char *config_from,
			 const char *pgdata, uid_t uid, gid_t gid, bool in_place, WsError *err);

/*
 * Before the copy in pgdata starts: the port it will use (port when above
 * 0, else its configuration's, else 5432) must be free on every address its
 * listen_addresses names (a TCP bind) and in each of its
 * unix_socket_directories (a live .s.PGSQL.PORT socket).  Else WS_FATAL
 * naming the port and, from the socket's lock file, the data directory of
 * the server there, with a hint to pass --port.
 */
int rebuild_config_check_port(const char *pgdata, int port, WsError *err);

#endif
