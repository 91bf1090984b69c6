/*
 * backupmeta.h - a base backup's manifest.json, walship's record of a
 * complete backup, and where a backup's objects live.
 *
 * The design and formats behind it: src/repo/README.md, "backupmeta".
 *
 * Memory: backup_meta_serialize's text is malloc'd (caller frees); a BackupMeta owns its
 * strings and tablespaces (backup_meta_free).
 */
#ifndef WALSHIP_REPO_BACKUPMETA_H
#define WALSHIP_REPO_BACKUPMETA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define BACKUP_META_NAME   "manifest.json"
#define BACKUP_META_FORMAT 1
#define BACKUP_META_MAX    (16 * 1024 * 1024)
#define BACKUP_ID_MAX      32
#define BACKUP_OBJECT_MAX  64

typedef struct BackupObject {
	char name[BACKUP_OBJECT_MAX];
	uint64_t size;
	uint64_t stored_size;
	unsigned char sha256[32];
} BackupObject;

typedef struct BackupTablespaceInfo {
	bool is_base;   /* the main data directory: oid and location null */
	uint32_t oid;   /* 0 for the main directory */
	char *location; /* NULL for the main directory, else absolute and normalised
			   (pg_tablespace_location_ok) */
	BackupObject obj;
} BackupTablespaceInfo;

/* A configuration file of the server kept in the backup's config object. */
typedef struct BackupConfigFile {
	char *path; /* absolute, where the server read it */
	uint64_t size;
	unsigned char sha256[32];
} BackupConfigFile;

/* A file the backup should hold and does not, and why. */
typedef struct BackupConfigMissing {
	char *what; /* a path, or a setting's name when even the path is unknown */
	char *reason;
} BackupConfigMissing;

/*
 * The server's configuration outside its data directory ("config" in
 * manifest.json; absent in backups taken before walship kept it).  The
 * object "config-files" holds the files' contents one after the other, in
 * the order of files[], each n bytes as recorded; it exists when n_files > 0.
 */
#define BACKUP_CONFIG_OBJECT "config-files"
typedef struct BackupConfig {
	char *config_file; /* SHOW config_file etc.; NULL when unknown */
	char *hba_file;
	char *ident_file;
	char *data_directory;
	int n_files;
	BackupConfigFile *files;
	int n_missing;
	BackupConfigMissing *missing;
	BackupObject obj; /* valid when n_files > 0 */
} BackupConfig;

typedef struct BackupMeta {
	int format;
	char id[BACKUP_ID_MAX];
	char *label;
	char epoch[32];
	uint64_t sysid;
	int server_version_num;
	int pg_major; /* as in meta.h: 90600 for 9.6, else 100000.. (pgmajor.h) */
	uint32_t seg_size;
	uint32_t timeline;
	uint64_t start_lsn;
	uint64_t stop_lsn;
	char start_wal[32];
	char stop_wal[32];
	char start_time[32]; /* YYYY-MM-DDTHH:MM:SSZ */
	char stop_time[32];
	int n_tablespaces;
	BackupTablespaceInfo *tablespaces;
	bool has_manifest;
	BackupObject manifest;
	bool has_config; /* false in manifests written before walship kept the configuration */
	BackupConfig config;
} BackupMeta;

BackupMeta *backup_meta_new(void);
void backup_meta_free(BackupMeta *meta);

/*
 * Append a tablespace (location NULL for the main directory, else brought to the form PostgreSQL records,
 * pg_tablespace_location_normalize); returns it, object name set.
 */
BackupTablespaceInfo *backup_meta_add_tablespace(BackupMeta *meta, bool is_base, uint32_t oid,
						 const char *location);

/* Record one configuration file (path copied) or one that is missing (copied). */
BackupConfigFile *backup_meta_add_config_file(BackupMeta *meta, const char *path);
void backup_meta_add_config_missing(BackupMeta *meta, const char *what, const char *reason);

/*
 * Fill start_wal and stop_wal from the LSNs, timeline and segment size
 * (stop_wal holds the byte before stop_lsn).
 */
void backup_meta_set_wal_names(BackupMeta *meta);

/*
 * Every field checked: WS_CORRUPT naming the field and what is wrong with it
 * (also for an id, object name, LSN or WAL name that does not agree with the
 * rest, and for a tablespace location that is not an absolute, normalised
 * path: rebuild creates and fills it); a format newer than ours is WS_FATAL
 * with a hint to upgrade walship.
 */
int backup_meta_parse(const char *json, size_t len, BackupMeta **out, WsError *err);

/* Pretty JSON text, newline-terminated.  NULL (and err) if meta would not parse back. */
char *backup_meta_serialize(const BackupMeta *meta, WsError *err);

/* A backup id: YYYYMMDDTHHMMSSZ, optionally "-N" (N from 2) when that second was taken. */
bool backup_id_valid(const char *id);

/* The id for a UTC time t and a sequence number n (1: none, 2: "-2", ...); buf of BACKUP_ID_MAX. */
void backup_id_format(int64_t t, int n, char buf[BACKUP_ID_MAX]);

/* "<epoch>/backups/<id>/" into buf (STORE_KEY_MAX); 0, or -1 if it does not fit. */
int backup_key_dir(const char *epoch, const char *id, char *buf, size_t size);

/* "<epoch>/backups/<id>/<name>"; 0, or -1 if it does not fit. */
int backup_key(const char *epoch, const char *id, const char *name, char *buf, size_t size);

#endif
