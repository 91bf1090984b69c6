/*
 * backup_config.h - walship backup's copy of the server's configuration that
 * lives outside its data directory (Debian keeps postgresql.conf, pg_hba.conf,
 * pg_ident.conf and conf.d in /etc/postgresql/VERSION/NAME): without it a
 * rebuilt copy has no pg_hba.conf and none of the primary's settings.
 */
#ifndef WALSHIP_CMD_BACKUP_CONFIG_H
#define WALSHIP_CMD_BACKUP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "repo/backupmeta.h"
#include "repo/repo.h"
#include "util/error.h"

/*
 * Record in meta->config what the server dbname names (a normal, not a
 * replication, connection) reads its configuration from: SHOW config_file,
 * hba_file, ident_file and data_directory, and the files of pg_file_settings
 * (include and include_dir files).  Each of those files outside the data
 * directory (inside it, base.tar has it) is read through the server
 * (pg_read_file), else from the local file system when this host runs that
 * very cluster (its pg_control says system identifier sysid), and stored as
 * the object BACKUP_CONFIG_OBJECT of the backup (*stored set: the caller
 * removes it if the backup fails).  What cannot be read is listed in
 * meta->config.missing and named in one warning: the backup goes on.
 * Errors (a negative status) only for the repository.
 */
int backup_config_save(Repo *repo, const char *dbname, uint64_t sysid, BackupMeta *meta, bool *stored,
		       WsError *err);

#endif
