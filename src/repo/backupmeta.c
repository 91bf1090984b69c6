/*
 * backupmeta.c - a backup's manifest.json.  Rebuild, list and prune decide
 * from it which objects and WAL a backup needs, so every field is checked on
 * the way in, and the derived ones (WAL names, object names) must agree with
 * the rest: a damaged or hand-edited file stops walship rather than steer it.
 */
#include "repo/backupmeta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "pg/basebackup.h"
#include "pg/lsn.h"
#include "pg/pgcontrol.h"
#include "pg/pgmajor.h"
#include "pg/walname.h"
#include "repo/jsonfile.h"
#include "util/clock.h"
#include "util/mem.h"

#define INVALID      "manifest.json of the backup is invalid"
#define MANIFEST_OBJ "backup_manifest"
#define LABEL_MAX    1024

BackupMeta *backup_meta_new(void)
{
	BackupMeta *meta = xcalloc(1, sizeof(*meta));
	meta->format = BACKUP_META_FORMAT;
	return meta;
}

void backup_meta_free(BackupMeta *meta)
{
	if (meta == NULL)
		return;
	for (int i = 0; i < meta->n_tablespaces; i++)
		free(meta->tablespaces[i].location);
	free(meta->tablespaces);
	BackupConfig *c = &meta->config;
	free(c->config_file);
	free(c->hba_file);
	free(c->ident_file);
	free(c->data_directory);
	for (int i = 0; i < c->n_files; i++)
		free(c->files[i].path);
	free(c->files);
	for (int i = 0; i < c->n_missing; i++) {
		free(c->missing[i].what);
		free(c->missing[i].reason);
	}
	free(c->missing);
	free(meta->label);
	free(meta);
}

BackupTablespaceInfo *backup_meta_add_tablespace(BackupMeta *meta, bool is_base, uint32_t oid,
						 const char *location)
{
	meta->tablespaces =
		xrealloc(meta->tablespaces, (size_t)(meta->n_tablespaces + 1) * sizeof(BackupTablespaceInfo));
	BackupTablespaceInfo *t = &meta->tablespaces[meta->n_tablespaces++];
	memset(t, 0, sizeof(*t));
	t->is_base = is_base;
	if (is_base) {
		snprintf(t->obj.name, sizeof(t->obj.name), "base.tar");
	} else {
		t->oid = oid;
		t->location = xstrdup(location ? location : "");
		/* As PostgreSQL records it ("/srv/ts/" is "/srv/ts"); serialize refuses what cannot be. */
		(void)pg_tablespace_location_normalize(t->location);
		snprintf(t->obj.name, sizeof(t->obj.name), "%" PRIu32 ".tar", oid);
	}
	return t;
}

BackupConfigFile *backup_meta_add_config_file(BackupMeta *meta, const char *path)
{
	BackupConfig *c = &meta->config;
	c->files = xrealloc(c->files, (size_t)(c->n_files + 1) * sizeof(*c->files));
	BackupConfigFile *f = &c->files[c->n_files++];
	memset(f, 0, sizeof(*f));
	f->path = xstrdup(path);
	meta->has_config = true;
	return f;
}

void backup_meta_add_config_missing(BackupMeta *meta, const char *what, const char *reason)
{
	BackupConfig *c = &meta->config;
	c->missing = xrealloc(c->missing, (size_t)(c->n_missing + 1) * sizeof(*c->missing));
	c->missing[c->n_missing].what = xstrdup(what);
	c->missing[c->n_missing].reason = xstrdup(reason);
	c->n_missing++;
	meta->has_config = true;
}

static void wal_names(const BackupMeta *m, char start[32], char stop[32])
{
	uint64_t last = m->stop_lsn > 0 ? m->stop_lsn - 1 : 0;
	wal_segment_name(m->timeline, m->start_lsn / m->seg_size, m->seg_size, start);
	wal_segment_name(m->timeline, last / m->seg_size, m->seg_size, stop);
}

void backup_meta_set_wal_names(BackupMeta *meta)
{
	wal_names(meta, meta->start_wal, meta->stop_wal);
}

/* ---- ids and keys ---- */

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool backup_id_valid(const char *id)
{
	/* YYYYMMDDTHHMMSSZ[-N] */
	size_t len = strlen(id);
	if (len < 16 || len >= BACKUP_ID_MAX || !digits(id, 8) || id[8] != 'T' || !digits(id + 9, 6) ||
	    id[15] != 'Z')
		return false;
	if (len == 16)
		return true;
	const char *n = id + 16;
	if (n[0] != '-' || n[1] < '1' || n[1] > '9' || !digits(n + 1, strlen(n + 1)))
		return false;
	return strcmp(n, "-1") != 0;
}

void backup_id_format(int64_t t, int n, char buf[BACKUP_ID_MAX])
{
	char base[CLOCK_ISO_MAX];
	clock_utc_compact(t, base);
	if (n > 1)
		snprintf(buf, BACKUP_ID_MAX, "%s-%d", base, n);
	else
		snprintf(buf, BACKUP_ID_MAX, "%s", base);
}

int backup_key_dir(const char *epoch, const char *id, char *buf, size_t size)
{
	return str_format(buf, size, "%s/backups/%s/", epoch, id);
}

int backup_key(const char *epoch, const char *id, const char *name, char *buf, size_t size)
{
	return str_format(buf, size, "%s/backups/%s/%s", epoch, id, name);
}

/* ---- parsing ---- */

/* The major a server_version_num belongs to (90600 for 9.6.x), or -1. */
static int major_of(json_int_t num)
{
	if ((num >= PG_MAJOR(10) && num < 1000000) || (num >= PG_MAJOR_9_6 && num < PG_MAJOR_9_6 + 100))
		return pg_major_of_version_num((int)num);
	return -1;
}

static bool parse_sha256(const char *s, unsigned char out[32])
{
	if (strlen(s) != 64)
		return false;
	for (int i = 0; i < 32; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + k];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
			if (d < 0)
				return false;
			v = v * 16 + d;
		}
		out[i] = (unsigned char)v;
	}
	return true;
}

static const char *get_string(json_t *obj, const char *key, const char *where, WsError *err)
{
	return json_file_string(INVALID, obj, key, where, err);
}

/* An integer member in [min, max]. */
static int get_int(json_t *obj, const char *key, json_int_t min, json_int_t max, const char *where,
		   json_int_t *out, WsError *err)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return ws_error(err, WS_CORRUPT, INVALID ": %s\"%s\" is missing", where, key);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return ws_error(err, WS_CORRUPT,
				INVALID ": %s\"%s\" is not an integer from %" JSON_INTEGER_FORMAT
					" to %" JSON_INTEGER_FORMAT,
				where, key, min, max);
	*out = json_integer_value(v);
	return 0;
}

static int get_lsn(json_t *obj, const char *key, uint64_t *out, WsError *err)
{
	const char *s = get_string(obj, key, "", err);
	if (s == NULL)
		return WS_CORRUPT;
	if (lsn_parse(s, out, NULL) != 0)
		return ws_error(err, WS_CORRUPT, INVALID ": \"%s\" is not an LSN (X/X): \"%.64s\"", key, s);
	return 0;
}

static int get_timestamp(json_t *obj, const char *key, char out[32], WsError *err)
{
	const char *s = get_string(obj, key, "", err);
	if (s == NULL)
		return WS_CORRUPT;
	if (!json_file_utc_time_ok(s))
		return ws_error(err, WS_CORRUPT,
				INVALID ": \"%s\" is not a UTC time YYYY-MM-DDTHH:MM:SSZ: \"%.64s\"", key, s);
	strcpy(out, s);
	return 0;
}

/* An object entry: name as expected, sizes, SHA-256. */
static int parse_object(json_t *obj, const char *want_name, const char *where, BackupObject *o, WsError *err)
{
	const char *s;
	json_int_t v;
	int rc;

	if ((s = get_string(obj, "object", where, err)) == NULL)
		return WS_CORRUPT;
	if (strcmp(s, want_name) != 0)
		return ws_error(err, WS_CORRUPT, INVALID ": %s\"object\" is \"%.64s\", expected \"%s\"",
				where, s, want_name);
	snprintf(o->name, sizeof(o->name), "%s", s);
	if ((rc = get_int(obj, "size", 0, INT64_MAX, where, &v, err)) != 0)
		return rc;
	o->size = (uint64_t)v;
	if ((rc = get_int(obj, "stored_size", 0, INT64_MAX, where, &v, err)) != 0)
		return rc;
	o->stored_size = (uint64_t)v;
	if ((s = get_string(obj, "sha256", where, err)) == NULL)
		return WS_CORRUPT;
	if (!parse_sha256(s, o->sha256))
		return ws_error(err, WS_CORRUPT, INVALID ": %s\"sha256\" is not 64 lowercase hex digits",
				where);
	return 0;
}

static int parse_tablespace(BackupMeta *m, json_t *obj, int index, WsError *err)
{
	char where[48];
	json_t *oid, *loc;
	BackupTablespaceInfo *t;
	char name[BACKUP_OBJECT_MAX];

	snprintf(where, sizeof(where), "tablespace %d: ", index + 1);
	if (!json_is_object(obj))
		return ws_error(err, WS_CORRUPT, INVALID ": tablespace %d is not an object", index + 1);
	oid = json_object_get(obj, "oid");
	loc = json_object_get(obj, "location");
	if (oid == NULL || loc == NULL)
		return ws_error(err, WS_CORRUPT, INVALID ": %s\"%s\" is missing", where,
				oid == NULL ? "oid" : "location");
	if (json_is_null(oid)) {
		if (!json_is_null(loc))
			return ws_error(err, WS_CORRUPT,
					INVALID ": %sthe main data directory (oid null) has a location",
					where);
		for (int i = 0; i < m->n_tablespaces; i++)
			if (m->tablespaces[i].is_base)
				return ws_error(err, WS_CORRUPT, INVALID ": %sa second main data directory",
						where);
		t = backup_meta_add_tablespace(m, true, 0, NULL);
	} else {
		if (!json_is_integer(oid) || json_integer_value(oid) < 1 ||
		    json_integer_value(oid) > UINT32_MAX)
			return ws_error(err, WS_CORRUPT, INVALID ": %s\"oid\" is not an OID or null", where);
		if (!json_is_string(loc) || json_string_length(loc) == 0)
			return ws_error(err, WS_CORRUPT, INVALID ": %s\"location\" is not a non-empty string",
					where);
		uint32_t o = (uint32_t)json_integer_value(oid);
		if (!pg_tablespace_location_ok(json_string_value(loc))) {
			char shown[WALNAME_ESCAPE_MAX + 8];
			walname_escape(json_string_value(loc), json_string_length(loc), shown, sizeof(shown));
			ws_error(err, WS_CORRUPT,
				 INVALID ": tablespace %" PRIu32 " has a location that is not an absolute, "
					 "normalised path: \"%s\"",
				 o, shown);
			ws_error_detail(err,
					"PostgreSQL records a tablespace's location as an absolute path with "
					"no \".\" or \"..\" component, no repeated or trailing slash and no "
					"control character; rebuild would create and fill that directory.");
			return WS_CORRUPT;
		}
		for (int i = 0; i < m->n_tablespaces; i++)
			if (!m->tablespaces[i].is_base && m->tablespaces[i].oid == o)
				return ws_error(err, WS_CORRUPT,
						INVALID ": %stablespace %" PRIu32 " appears twice", where, o);
		t = backup_meta_add_tablespace(m, false, o, json_string_value(loc));
	}
	snprintf(name, sizeof(name), "%s", t->obj.name);
	return parse_object(obj, name, where, &t->obj, err);
}

/* A string member that may be null (*out NULL) or an absolute path. */
static int get_path_or_null(json_t *obj, const char *key, const char *where, char **out, WsError *err)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_value(v)[0] != '/' ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return ws_error(err, WS_CORRUPT, INVALID ": %s\"%s\" is not an absolute path or null", where,
				key);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int parse_config_files(BackupMeta *m, json_t *files, WsError *err)
{
	uint64_t total = 0;
	int rc;
	if (files == NULL || !json_is_array(files) || json_array_size(files) > 10000)
		return ws_error(err, WS_CORRUPT, INVALID ": config: \"files\" is not an array");
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);
		char where[48], *path = NULL;
		const char *s;
		json_int_t v;
		snprintf(where, sizeof(where), "config: file %zu: ", i + 1);
		if (!json_is_object(f))
			return ws_error(err, WS_CORRUPT, INVALID ": %snot an object", where);
		if ((rc = get_path_or_null(f, "path", where, &path, err)) != 0)
			return rc;
		if (path == NULL)
			return ws_error(err, WS_CORRUPT, INVALID ": %s\"path\" is missing", where);
		BackupConfigFile *cf = backup_meta_add_config_file(m, path);
		free(path);
		if ((rc = get_int(f, "size", 0, INT64_MAX, where, &v, err)) != 0)
			return rc;
		cf->size = (uint64_t)v;
		total += cf->size;
		if ((s = get_string(f, "sha256", where, err)) == NULL)
			return WS_CORRUPT;
		if (!parse_sha256(s, cf->sha256))
			return ws_error(err, WS_CORRUPT,
					INVALID ": %s\"sha256\" is not 64 lowercase hex digits", where);
	}
	if (m->config.n_files > 0 && total != m->config.obj.size)
		return ws_error(err, WS_CORRUPT,
				INVALID ": config: the files add up to %" PRIu64
					" bytes, the object has %" PRIu64,
				total, m->config.obj.size);
	return 0;
}

/* "config": the configuration outside the data directory (absent in older manifests). */
static int parse_config(BackupMeta *m, json_t *c, WsError *err)
{
	BackupConfig *bc = &m->config;
	json_t *files, *missing;
	int rc;

	if (c == NULL)
		return 0;
	if (!json_is_object(c))
		return ws_error(err, WS_CORRUPT, INVALID ": \"config\" is not an object");
	m->has_config = true;
	if ((rc = get_path_or_null(c, "config_file", "config: ", &bc->config_file, err)) != 0 ||
	    (rc = get_path_or_null(c, "hba_file", "config: ", &bc->hba_file, err)) != 0 ||
	    (rc = get_path_or_null(c, "ident_file", "config: ", &bc->ident_file, err)) != 0 ||
	    (rc = get_path_or_null(c, "data_directory", "config: ", &bc->data_directory, err)) != 0)
		return rc;
	files = json_object_get(c, "files");
	if (files != NULL && json_is_array(files) && json_array_size(files) > 0 &&
	    (rc = parse_object(c, BACKUP_CONFIG_OBJECT, "config: ", &bc->obj, err)) != 0)
		return rc;
	if ((rc = parse_config_files(m, files, err)) != 0)
		return rc;
	missing = json_object_get(c, "missing");
	if (missing == NULL || !json_is_array(missing) || json_array_size(missing) > 10000)
		return ws_error(err, WS_CORRUPT, INVALID ": config: \"missing\" is not an array");
	for (size_t i = 0; i < json_array_size(missing); i++) {
		json_t *e = json_array_get(missing, i);
		const char *what, *why;
		char where[48];
		snprintf(where, sizeof(where), "config: missing %zu: ", i + 1);
		if (!json_is_object(e))
			return ws_error(err, WS_CORRUPT, INVALID ": %snot an object", where);
		if ((what = get_string(e, "what", where, err)) == NULL ||
		    (why = get_string(e, "reason", where, err)) == NULL)
			return WS_CORRUPT;
		backup_meta_add_config_missing(m, what, why);
	}
	return 0;
}

/* The fields that must agree with each other. */
static int check_consistency(const BackupMeta *m, WsError *err)
{
	char start[32], stop[32];
	if (m->stop_lsn == 0 || m->start_lsn > m->stop_lsn)
		return ws_error(err, WS_CORRUPT, INVALID ": \"stop_lsn\" is not after \"start_lsn\"");
	wal_names(m, start, stop);
	if (strcmp(start, m->start_wal) != 0)
		return ws_error(err, WS_CORRUPT,
				INVALID ": \"start_wal\" is \"%.64s\"; start_lsn and timeline "
					"say \"%s\"",
				m->start_wal, start);
	if (strcmp(stop, m->stop_wal) != 0)
		return ws_error(err, WS_CORRUPT,
				INVALID ": \"stop_wal\" is \"%.64s\"; stop_lsn and timeline "
					"say \"%s\"",
				m->stop_wal, stop);
	if (strcmp(m->start_time, m->stop_time) > 0)
		return ws_error(err, WS_CORRUPT, INVALID ": \"stop_time\" is before \"start_time\"");
	return 0;
}

static int parse_root(json_t *root, BackupMeta *m, WsError *err)
{
	const char *s;
	json_int_t v;
	json_t *pv, *ts, *bm;
	int rc;

	if ((s = get_string(root, "id", "", err)) == NULL)
		return WS_CORRUPT;
	if (!backup_id_valid(s))
		return ws_error(err, WS_CORRUPT,
				INVALID ": \"id\" is not of the form YYYYMMDDTHHMMSSZ[-N]: \"%.64s\"", s);
	strcpy(m->id, s);

	if ((s = get_string(root, "label", "", err)) == NULL)
		return WS_CORRUPT;
	if (strlen(s) > LABEL_MAX)
		return ws_error(err, WS_CORRUPT, INVALID ": \"label\" is longer than %d bytes", LABEL_MAX);
	m->label = xstrdup(s);

	if ((s = get_string(root, "epoch", "", err)) == NULL)
		return WS_CORRUPT;
	if (strlen(s) >= sizeof(m->epoch) || !json_file_epoch_id_ok(s))
		return ws_error(err, WS_CORRUPT,
				INVALID ": \"epoch\" is not of the form <major>-<number>: \"%.64s\"", s);
	strcpy(m->epoch, s);

	if ((s = get_string(root, "system_identifier", "", err)) == NULL)
		return WS_CORRUPT;
	if (!json_file_parse_u64(s, &m->sysid))
		return ws_error(err, WS_CORRUPT,
				INVALID
				": \"system_identifier\" is not a positive 64-bit decimal number: \"%.64s\"",
				s);

	pv = json_object_get(root, "pg_version");
	if (pv == NULL || !json_is_object(pv))
		return ws_error(err, WS_CORRUPT, INVALID ": \"pg_version\" is %s",
				pv == NULL ? "missing" : "not an object");
	if ((rc = get_int(pv, "server_version_num", 90600, 999999, "pg_version: ", &v, err)) != 0)
		return rc;
	m->server_version_num = (int)v;
	if ((s = get_string(pv, "major", "pg_version: ", err)) == NULL)
		return WS_CORRUPT;
	if (!json_file_parse_pg_major(s, &m->pg_major)) {
		ws_error(err, WS_CORRUPT,
			 INVALID ": pg_version: \"major\" is not a PostgreSQL major version: \"%.64s\"", s);
		ws_error_detail(err, "A major version is written \"9.6\" or as two digits, such as \"15\".");
		return WS_CORRUPT;
	}
	if (major_of(v) != m->pg_major)
		return ws_error(err, WS_CORRUPT,
				INVALID ": pg_version: \"major\" \"%s\" does not match server_version_num %d",
				s, m->server_version_num);

	if ((rc = get_int(root, "wal_segment_size", 1, 1024 * 1024 * 1024, "", &v, err)) != 0)
		return rc;
	if (!wal_segsize_valid((uint32_t)v))
		return ws_error(err, WS_CORRUPT,
				INVALID ": \"wal_segment_size\" is not a power of two from 1 MiB to 1 GiB");
	m->seg_size = (uint32_t)v;
	if ((rc = get_int(root, "timeline", 1, UINT32_MAX, "", &v, err)) != 0)
		return rc;
	m->timeline = (uint32_t)v;

	if ((rc = get_lsn(root, "start_lsn", &m->start_lsn, err)) != 0 ||
	    (rc = get_lsn(root, "stop_lsn", &m->stop_lsn, err)) != 0)
		return rc;
	if ((s = get_string(root, "start_wal", "", err)) == NULL)
		return WS_CORRUPT;
	snprintf(m->start_wal, sizeof(m->start_wal), "%s", s);
	if ((s = get_string(root, "stop_wal", "", err)) == NULL)
		return WS_CORRUPT;
	snprintf(m->stop_wal, sizeof(m->stop_wal), "%s", s);
	if ((rc = get_timestamp(root, "start_time", m->start_time, err)) != 0 ||
	    (rc = get_timestamp(root, "stop_time", m->stop_time, err)) != 0)
		return rc;

	ts = json_object_get(root, "tablespaces");
	if (ts == NULL || !json_is_array(ts) || json_array_size(ts) == 0 || json_array_size(ts) > 100000)
		return ws_error(err, WS_CORRUPT, INVALID ": \"tablespaces\" is %s",
				ts == NULL           ? "missing"
				: !json_is_array(ts) ? "not an array"
						     : "empty or too long");
	for (size_t i = 0; i < json_array_size(ts); i++)
		if ((rc = parse_tablespace(m, json_array_get(ts, i), (int)i, err)) != 0)
			return rc;
	bool base = false;
	for (int i = 0; i < m->n_tablespaces; i++)
		base = base || m->tablespaces[i].is_base;
	if (!base)
		return ws_error(err, WS_CORRUPT,
				INVALID ": \"tablespaces\" has no main data directory (oid null)");

	bm = json_object_get(root, "backup_manifest");
	if (bm == NULL)
		return ws_error(err, WS_CORRUPT, INVALID ": \"backup_manifest\" is missing");
	if (!json_is_null(bm)) {
		if (!json_is_object(bm))
			return ws_error(err, WS_CORRUPT,
					INVALID ": \"backup_manifest\" is not an object or null");
		if ((rc = parse_object(bm, MANIFEST_OBJ, "backup_manifest: ", &m->manifest, err)) != 0)
			return rc;
		m->has_manifest = true;
	}
	if ((rc = parse_config(m, json_object_get(root, "config"), err)) != 0)
		return rc;
	return check_consistency(m, err);
}

int backup_meta_parse(const char *json, size_t len, BackupMeta **out, WsError *err)
{
	json_t *root = NULL;
	BackupMeta *meta = NULL;
	int rc = WS_CORRUPT;

	static const JsonFileKind kind = {INVALID, BACKUP_META_MAX, BACKUP_META_FORMAT,
					  "the backup's manifest.json", "backup format"};
	int format;

	*out = NULL;
	if ((rc = json_file_load(&kind, json, len, &root, &format, err)) != 0)
		goto done;
	meta = backup_meta_new();
	meta->format = format;
	if ((rc = parse_root(root, meta, err)) != 0)
		goto done;
	*out = meta;
	meta = NULL;
done:
	backup_meta_free(meta);
	json_decref(root);
	return rc;
}

/* ---- serializing ---- */

static json_t *object_json(json_t *obj, const BackupObject *o)
{
	char hex[65];
	hex_encode(o->sha256, 32, hex);
	json_object_set_new(obj, "object", json_string(o->name));
	json_object_set_new(obj, "size", json_integer((json_int_t)o->size));
	json_object_set_new(obj, "stored_size", json_integer((json_int_t)o->stored_size));
	json_object_set_new(obj, "sha256", json_string(hex));
	return obj;
}

/* A JSON string of text that came from outside (the server): NULL unless valid UTF-8. */
static json_t *utf8_string(const char *s, const char *what, WsError *err)
{
	json_t *v = json_string(s);
	if (v == NULL) {
		ws_error(err, WS_FATAL, "could not write the backup's %s: %s is not valid UTF-8",
			 BACKUP_META_NAME, what);
		ws_error_hint(err, "Tablespace locations and the label must be valid UTF-8.");
	}
	return v;
}

static json_t *path_or_null(const char *p, WsError *err)
{
	return p == NULL ? json_null() : utf8_string(p, "a configuration file's path", err);
}

static json_t *config_json(const BackupConfig *c, WsError *err)
{
	char hex[65];
	json_t *root = json_object(), *files, *missing, *v;
	const char *const names[] = {"config_file", "hba_file", "ident_file", "data_directory"};
	const char *const vals[] = {c->config_file, c->hba_file, c->ident_file, c->data_directory};
	for (int i = 0; i < 4; i++) {
		if ((v = path_or_null(vals[i], err)) == NULL)
			goto fail;
		json_object_set_new(root, names[i], v);
	}
	if (c->n_files > 0)
		object_json(root, &c->obj);
	json_object_set_new(root, "files", files = json_array());
	for (int i = 0; i < c->n_files; i++) {
		json_t *f = json_object();
		json_array_append_new(files, f);
		if ((v = path_or_null(c->files[i].path, err)) == NULL)
			goto fail;
		json_object_set_new(f, "path", v);
		json_object_set_new(f, "size", json_integer((json_int_t)c->files[i].size));
		hex_encode(c->files[i].sha256, 32, hex);
		json_object_set_new(f, "sha256", json_string(hex));
	}
	json_object_set_new(root, "missing", missing = json_array());
	for (int i = 0; i < c->n_missing; i++) {
		json_t *e = json_object(), *w = NULL, *r;
		json_array_append_new(missing, e);
		if ((w = utf8_string(c->missing[i].what, "a missing configuration file's name", err)) ==
			    NULL ||
		    (r = utf8_string(c->missing[i].reason, "why a configuration file is missing", err)) ==
			    NULL) {
			json_decref(w);
			goto fail;
		}
		json_object_set_new(e, "what", w);
		json_object_set_new(e, "reason", r);
	}
	return root;
fail:
	json_decref(root);
	return NULL;
}

char *backup_meta_serialize(const BackupMeta *m, WsError *err)
{
	char buf[64];
	char what[64];
	json_t *v;
	json_t *root = json_object();
	json_t *pv, *ts;

	json_object_set_new(root, "format", json_integer(m->format));
	json_object_set_new(root, "id", json_string(m->id));
	if ((v = utf8_string(m->label ? m->label : "", "the label", err)) == NULL)
		goto fail;
	json_object_set_new(root, "label", v);
	json_object_set_new(root, "epoch", json_string(m->epoch));
	snprintf(buf, sizeof(buf), "%" PRIu64, m->sysid);
	json_object_set_new(root, "system_identifier", json_string(buf));
	json_object_set_new(root, "pg_version", pv = json_object());
	json_object_set_new(pv, "server_version_num", json_integer(m->server_version_num));
	json_object_set_new(pv, "major", json_string(pg_major_str(m->pg_major, buf, sizeof(buf))));
	json_object_set_new(root, "wal_segment_size", json_integer(m->seg_size));
	json_object_set_new(root, "timeline", json_integer(m->timeline));
	lsn_format(m->start_lsn, buf);
	json_object_set_new(root, "start_lsn", json_string(buf));
	lsn_format(m->stop_lsn, buf);
	json_object_set_new(root, "stop_lsn", json_string(buf));
	json_object_set_new(root, "start_wal", json_string(m->start_wal));
	json_object_set_new(root, "stop_wal", json_string(m->stop_wal));
	json_object_set_new(root, "start_time", json_string(m->start_time));
	json_object_set_new(root, "stop_time", json_string(m->stop_time));
	json_object_set_new(root, "tablespaces", ts = json_array());
	for (int i = 0; i < m->n_tablespaces; i++) {
		const BackupTablespaceInfo *t = &m->tablespaces[i];
		json_t *obj = json_object();
		json_array_append_new(ts, obj);
		json_object_set_new(obj, "oid", t->is_base ? json_null() : json_integer(t->oid));
		snprintf(what, sizeof(what), "the location of tablespace %" PRIu32, t->oid);
		if ((v = t->is_base ? json_null() : utf8_string(t->location, what, err)) == NULL)
			goto fail;
		json_object_set_new(obj, "location", v);
		object_json(obj, &t->obj);
	}
	json_object_set_new(root, "backup_manifest",
			    m->has_manifest ? object_json(json_object(), &m->manifest) : json_null());
	if (m->has_config) {
		if ((v = config_json(&m->config, err)) == NULL)
			goto fail;
		json_object_set_new(root, "config", v);
	}

	char *out = json_file_dump(root, "manifest.json");
	json_decref(root);

	/* What is written must read back: rebuild and prune trust this file. */
	BackupMeta *check = NULL;
	if (backup_meta_parse(out, strlen(out), &check, err) != 0) {
		ws_error_prefix(err, "refusing to write it");
		free(out);
		return NULL;
	}
	backup_meta_free(check);
	return out;
fail:
	json_decref(root);
	return NULL;
}
