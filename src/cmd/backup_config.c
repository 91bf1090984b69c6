/*
 * backup_config.c - the server's configuration outside its data directory,
 * kept with the backup (see backup_config.h).
 */
#include "cmd/backup_config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "pg/pgconf.h"
#include "pg/pgcontrol.h"
#include "pg/pqconn.h"
#include "repo/keys.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/stream.h"

/* A configuration file larger than this is no configuration file. */
#define CONFIG_FILE_MAX (16 * 1024 * 1024)

/* The server's reason in pq_query_row's message ("could not run ... on the server: REASON"). */
static const char *server_reason(const WsError *e)
{
	const char *p = strstr(e->msg, "on the server: ");
	return p != NULL ? p + strlen("on the server: ") : e->msg;
}

/* SHOW name into *out (malloc'd, NULL when empty); a refusal is recorded as missing. */
static void show(PqConn *c, BackupMeta *meta, const char *name, char **out)
{
	char sql[64];
	PqRow *row = NULL;
	WsError e;
	ws_error_clear(&e);
	snprintf(sql, sizeof(sql), "SHOW %s", name);
	*out = NULL;
	if (pq_query_row(c, sql, 1, false, &row, &e) != 0) {
		backup_meta_add_config_missing(meta, name, server_reason(&e));
		return;
	}
	if (pq_row_value(row, 0)[0] == '/')
		*out = xstrdup(pq_row_value(row, 0));
	pq_row_free(row);
}

/*
 * The files to keep, one per line (malloc'd), from pg_file_settings.  A
 * refusal is recorded as missing unless postgresql.conf was kept (quiet):
 * its include lines were followed then.
 */
static char *included_files(PqConn *c, BackupMeta *meta, bool quiet)
{
	PqRow *row = NULL;
	WsError e;
	char *list = NULL;
	ws_error_clear(&e);
	if (pq_query_row(c,
			 "SELECT string_agg(DISTINCT sourcefile, E'\\n' ORDER BY sourcefile) FROM "
			 "pg_file_settings WHERE sourcefile IS NOT NULL",
			 1, false, &row, &e) != 0) {
		if (!quiet)
			backup_meta_add_config_missing(meta, "included files (pg_file_settings)",
						       server_reason(&e));
		return NULL;
	}
	list = xstrdup(pq_row_value(row, 0));
	pq_row_free(row);
	return list;
}

/* Whether path is the data directory or below it (base.tar has it then). */
static bool in_datadir(const BackupConfig *c, const char *path)
{
	const char *dd = c->data_directory;
	return dd != NULL && dd[strspn(dd, "/")] != '\0' && fs_path_within(path, dd);
}

/* This host runs the backed-up cluster itself: its data directory's pg_control is the server's. */
static bool local_cluster(const BackupConfig *c, uint64_t sysid)
{
	PgControl pc;
	WsError e;
	ws_error_clear(&e);
	return c->data_directory != NULL && pg_control_read(c->data_directory, &pc, &e) == 0 &&
	       pc.sysid == sysid;
}

/* path's content through the server, else from this host; NULL (recorded as missing) if neither. */
static char *read_one(PqConn *c, BackupMeta *meta, uint64_t sysid, const char *path, size_t *len)
{
	char *lit = pq_quote_literal(c, path), *sql, *text = NULL;
	PqRow *row = NULL;
	WsError e, le;
	ws_error_clear(&e);
	ws_error_clear(&le);
	if (lit == NULL)
		return NULL;
	sql = xasprintf("SELECT pg_read_file(%s)", lit);
	free(lit);
	if (pq_query_row(c, sql, 1, false, &row, &e) == 0) {
		text = xstrdup(pq_row_value(row, 0));
		*len = strlen(text);
		pq_row_free(row);
	} else if (local_cluster(&meta->config, sysid) &&
		   fs_read_small(path, CONFIG_FILE_MAX, &text, len, &le) == 0) {
		log_info("read \"%s\" from this host (the server may not: %s)", path, server_reason(&e));
	} else {
		char *why = xasprintf("%s%s%s", server_reason(&e), le.msg[0] ? "; " : "", le.msg);
		backup_meta_add_config_missing(meta, path, why);
		free(why);
		text = NULL;
	}
	free(sql);
	return text;
}

typedef struct Blob {
	char *buf;
	size_t len;
} Blob;

static void keep_file(PqConn *c, BackupMeta *meta, uint64_t sysid, const char *path, Blob *blob, int depth);

/* The names in dir: through the server (pg_ls_dir), else from this host; *n 0 if neither. */
static char **list_dir(PqConn *c, const BackupMeta *meta, uint64_t sysid, const char *dir, int *n)
{
	char **names = NULL;
	char *lit = pq_quote_literal(c, dir);
	char *sql =
		lit ? xasprintf("SELECT string_agg(f, E'\\n' ORDER BY f) FROM pg_ls_dir(%s) f", lit) : NULL;
	PqRow *row = NULL;
	WsError e;
	ws_error_clear(&e);
	*n = 0;
	if (sql != NULL && pq_query_row(c, sql, 1, false, &row, &e) == 0) {
		char *list = xstrdup(pq_row_value(row, 0));
		for (char *p = list, *nl; p != NULL && *p != '\0'; p = nl ? nl + 1 : NULL) {
			if ((nl = strchr(p, '\n')) != NULL)
				*nl = '\0';
			names = xrealloc(names, (size_t)(*n + 1) * sizeof(*names));
			names[(*n)++] = xstrdup(p);
		}
		free(list);
	} else if (local_cluster(&meta->config, sysid)) {
		WsError le;
		ws_error_clear(&le);
		(void)fs_dir_names(dir, &names, n, &le); /* none: nothing more to keep from there */
	}
	pq_row_free(row);
	free(sql);
	free(lit);
	return names;
}

/*
 * The files text includes (include, include_if_exists, include_dir's *.conf),
 * kept in turn: pg_file_settings lists only files with a setting, and a role
 * may not read it at all.
 */
static void keep_included(PqConn *c, BackupMeta *meta, uint64_t sysid, const char *path, const char *text,
			  size_t len, Blob *blob, int depth)
{
	char *dir = fs_dirname(path);
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		PgConfLine l;
		if (pgconf_parse_line(text + pos, n, &l) == PGCONF_SETTING &&
		    (pgconf_name_is(l.name, "include") || pgconf_name_is(l.name, "include_if_exists") ||
		     pgconf_name_is(l.name, "include_dir"))) {
			char *target =
				l.value[0] == '/' ? xstrdup(l.value) : xasprintf("%s/%s", dir, l.value);
			if (!pgconf_name_is(l.name, "include_dir")) {
				keep_file(c, meta, sysid, target, blob, depth + 1);
			} else {
				int count = 0;
				char **names = list_dir(c, meta, sysid, target, &count);
				for (int i = 0; i < count; i++) {
					size_t k = strlen(names[i]);
					if (names[i][0] != '.' && k > 5 &&
					    strcmp(names[i] + k - 5, ".conf") == 0) {
						char *f = xasprintf("%s/%s", target, names[i]);
						keep_file(c, meta, sysid, f, blob, depth + 1);
						free(f);
					}
					free(names[i]);
				}
				free(names);
			}
			free(target);
		}
		pgconf_line_clear(&l);
		pos += n + (nl ? 1 : 0);
	}
	free(dir);
}

/*
 * Add path (once, when outside the data directory) and its content to the
 * object; with depth >= 0 it is a postgresql.conf-style file whose includes
 * are kept too.
 */
static void keep_file(PqConn *c, BackupMeta *meta, uint64_t sysid, const char *path, Blob *blob, int depth)
{
	BackupConfig *bc = &meta->config;
	size_t len = 0;
	if (path == NULL || path[0] != '/' || in_datadir(bc, path) || depth > 10)
		return;
	for (int i = 0; i < bc->n_files; i++)
		if (strcmp(bc->files[i].path, path) == 0)
			return;
	for (int i = 0; i < bc->n_missing; i++)
		if (strcmp(bc->missing[i].what, path) == 0)
			return;
	char *text = read_one(c, meta, sysid, path, &len);
	if (text == NULL)
		return;
	BackupConfigFile *f = backup_meta_add_config_file(meta, path);
	unsigned int mdlen = 32;
	f->size = len;
	EVP_Digest(text, len, f->sha256, &mdlen, EVP_sha256(), NULL);
	blob->buf = xrealloc(blob->buf, blob->len + len + 1);
	memcpy(blob->buf + blob->len, text, len);
	blob->len += len;
	if (depth >= 0)
		keep_included(c, meta, sysid, path, text, len, blob, depth);
	free(text);
}

/* One warning naming everything the backup could not keep. */
static void warn_missing(const BackupMeta *meta)
{
	const BackupConfig *bc = &meta->config;
	if (bc->n_missing == 0)
		return;
	log_warning("backup \"%s\" holds no copy of %d part%s of the server's configuration outside its data "
		    "directory",
		    meta->id, bc->n_missing, bc->n_missing == 1 ? "" : "s");
	for (int i = 0; i < bc->n_missing; i++)
		log_detail("missing: %s (%s)", bc->missing[i].what, bc->missing[i].reason);
	log_hint("A copy rebuilt from it gets a minimal postgresql.conf or pg_hba.conf instead (or use "
		 "walship rebuild --config-from=FILE).  Back up as a superuser, or grant the role "
		 "pg_read_all_settings and pg_read_server_files, or run walship backup on the database host "
		 "as a user who can read the files.");
}

static int store_blob(Repo *repo, BackupMeta *meta, const Blob *blob, bool *stored, WsError *err)
{
	char key[STORE_KEY_MAX];
	ObjInfo info;
	MemReader src = {blob->buf, blob->len, 0};
	BackupObject *obj = &meta->config.obj;
	snprintf(obj->name, sizeof(obj->name), "%s", BACKUP_CONFIG_OBJECT);
	if (backup_key(meta->epoch, meta->id, obj->name, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "repository key for \"%s\" is too long", obj->name);
	int rc = repo_put_object(repo, key, mem_reader_read, &src, blob->len, true, &info, err);
	if (rc != 0) {
		ws_error_prefix(err, "could not store the server's configuration files");
		return rc;
	}
	*stored = true;
	obj->size = info.content_size;
	obj->stored_size = info.stored_size;
	memcpy(obj->sha256, info.sha256, 32);
	return 0;
}

int backup_config_save(Repo *repo, const char *dbname, uint64_t sysid, BackupMeta *meta, bool *stored,
		       WsError *err)
{
	BackupConfig *bc = &meta->config;
	PqConn *c = NULL;
	Blob blob = {NULL, 0};
	WsError e;
	int rc = 0;

	*stored = false;
	meta->has_config = true;
	ws_error_clear(&e);
	if (pq_connect(dbname, false, "walship backup", "", &c, &e) != 0) {
		backup_meta_add_config_missing(meta, "config_file", e.msg);
		warn_missing(meta);
		return 0;
	}
	show(c, meta, "data_directory", &bc->data_directory);
	show(c, meta, "config_file", &bc->config_file);
	show(c, meta, "hba_file", &bc->hba_file);
	show(c, meta, "ident_file", &bc->ident_file);
	keep_file(c, meta, sysid, bc->config_file, &blob, 0);
	keep_file(c, meta, sysid, bc->hba_file, &blob, -1);
	keep_file(c, meta, sysid, bc->ident_file, &blob, -1);
	/* What the server applied: also files given otherwise than by an include line. */
	bool conf_kept =
		bc->config_file != NULL && bc->n_files > 0 && strcmp(bc->files[0].path, bc->config_file) == 0;
	char *list = included_files(c, meta, conf_kept);
	for (char *p = list, *nl; p != NULL && *p != '\0'; p = nl ? nl + 1 : NULL) {
		if ((nl = strchr(p, '\n')) != NULL)
			*nl = '\0';
		keep_file(c, meta, sysid, p, &blob, 0);
	}
	free(list);
	pq_close(c);
	if (bc->n_files > 0)
		rc = store_blob(repo, meta, &blob, stored, err);
	if (rc == 0) {
		log_info("kept %d configuration file%s from outside the data directory", bc->n_files,
			 bc->n_files == 1 ? "" : "s");
		warn_missing(meta);
	}
	free(blob.buf);
	return rc;
}
