/*
 * backup.h - walship backup: a base backup over a replication connection,
 * streamed into the repository, complete once its WAL is archived.
 */
#ifndef WALSHIP_CMD_BACKUP_H
#define WALSHIP_CMD_BACKUP_H

#include "util/config.h"
#include "util/error.h"

#define BACKUP_WAL_TIMEOUT_DEFAULT 300

typedef struct BackupOptions {
	const char *dbname; /* -d: a libpq connection string or database name; NULL for PG* and defaults */
	long wal_timeout;   /* seconds to wait for the next WAL file the backup needs */
} BackupOptions;

/*
 * Connect with replication=true, check the server against the repository's
 * newest epoch, stream BASE_BACKUP's archives and manifest into
 * <epoch>/backups/<id>/, wait until every WAL file from the start to the stop
 * segment is in the repository and verified, then write manifest.json.  On a
 * failure the objects this run stored are removed again.  Prints progress on
 * a terminal and a summary line on stdout unless the log level is "error".
 */
int cmd_backup(const Config *cfg, const BackupOptions *opt, WsError *err);

#endif
