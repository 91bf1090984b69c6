/*
 * pushspool.c - the records of WAL files stored ahead of time by a parallel
 * walship-push (format and rules in pushspool.h).
 *
 * Every failure to read a record makes it no record at all: the caller then
 * pushes as usual, which is always correct, only slower.
 */
#include "wal/pushspool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo/jsonfile.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/mem.h"

#define RECORD_MAX 4096

int push_spool_check(const char *spool, const char *pgdata, WsError *err)
{
	int rc = 0;
	char *s = NULL, *d = NULL;

	if (spool == NULL || spool[0] != '/') {
		ws_error(err, WS_USAGE, "spool-path \"%s\" is not an absolute path", spool ? spool : "");
		ws_error_hint(err, "Set spool-path to a directory outside the data directory, such as "
				   "/var/spool/walship, or set push-parallel = 1.");
		return WS_USAGE;
	}
	if ((d = realpath(pgdata, NULL)) == NULL) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not resolve data directory \"%s\"", pgdata);
		goto done;
	}
	if ((s = fs_resolve(spool)) == NULL) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not resolve spool-path \"%s\"", spool);
		goto done;
	}
	if (fs_path_within(s, d)) {
		ws_error(err, WS_USAGE, "spool-path \"%s\" is inside the data directory \"%s\"", spool, d);
		ws_error_detail(err,
				"A base backup or a copy of the data directory would take the records of "
				"files already archived with it, and then skip archiving them.");
		ws_error_hint(err, "Set spool-path to a directory outside the data directory, such as "
				   "/var/spool/walship.");
		rc = WS_USAGE;
	}
done:
	free(s);
	free(d);
	return rc;
}

/* UUIDs come from walship.json: keep them from naming anything but one directory. */
static bool uuid_ok(const char *uuid)
{
	size_t n = strlen(uuid);
	if (n == 0 || n >= 40)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(uuid[i] == '-' || (uuid[i] >= '0' && uuid[i] <= '9') ||
		      (uuid[i] >= 'a' && uuid[i] <= 'f') || (uuid[i] >= 'A' && uuid[i] <= 'F')))
			return false;
	return true;
}

/* Record names are WAL file names: no slashes, no dot files. */
static bool name_ok(const char *name)
{
	WalName n;
	return walname_parse(name, &n, NULL) == 0;
}

int push_spool_dir(const char *spool, const char *uuid, char **dir, WsError *err)
{
	struct stat st;
	*dir = NULL;
	if (!uuid_ok(uuid))
		return ws_error(err, WS_FATAL, "repository UUID \"%s\" cannot name a spool directory", uuid);
	/* The spool itself 0700: records say which files to skip. */
	int rc = fs_mkdir_durable(spool, 0700, NULL, err);
	if (rc != 0)
		return rc;
	if (stat(spool, &st) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not stat spool-path \"%s\"", spool);
	if (st.st_uid != geteuid()) {
		ws_error(err, WS_FATAL, "spool-path \"%s\" belongs to another user", spool);
		ws_error_hint(err,
			      "Give the directory to the user PostgreSQL runs as (chown postgres: \"%s\"; "
			      "chmod 0700 \"%s\").",
			      spool, spool);
		return WS_FATAL;
	}
	char *path = xasprintf("%s/%s/push", spool, uuid);
	rc = fs_mkdir_durable(path, 0700, NULL, err);
	if (rc != 0) {
		free(path);
		return rc;
	}
	*dir = path;
	return 0;
}

char *push_spool_format(const PushRecord *rec)
{
	char hex[65], when[32], sysid[24];
	hex_encode(rec->sha256, 32, hex);
	clock_utc_iso((int64_t)rec->stored, when);
	snprintf(sysid, sizeof(sysid), "%" PRIu64, rec->sysid);
	json_t *o = json_object();
	json_object_set_new(o, "format", json_integer(PUSH_SPOOL_FORMAT));
	json_object_set_new(o, "uuid", json_string(rec->uuid));
	json_object_set_new(o, "repo", json_string(rec->repo));
	json_object_set_new(o, "epoch", json_string(rec->epoch));
	json_object_set_new(o, "system_identifier", json_string(sysid));
	json_object_set_new(o, "name", json_string(rec->name));
	json_object_set_new(o, "size", json_integer((json_int_t)rec->size));
	json_object_set_new(o, "sha256", json_string(hex));
	json_object_set_new(o, "key", json_string(rec->key));
	json_object_set_new(o, "stored_size", json_integer((json_int_t)rec->stored_size));
	json_object_set_new(o, "stored", json_string(when));
	char *out = json_file_dump(o, "a push record");
	json_decref(o);
	return out;
}

int push_spool_write(const char *dir, const PushRecord *rec, WsError *err)
{
	FsFileOpts o = {.mode = 0600, .durable = true};
	if (!name_ok(rec->name))
		return ws_error(err, WS_FATAL, "\"%s\" cannot name a push record", rec->name);
	char *path = xasprintf("%s/%s", dir, rec->name);
	char *text = push_spool_format(rec);
	int rc = fs_write_file(path, text, strlen(text), &o, err);
	free(path);
	free(text);
	return rc;
}

static bool hex32_decode(const char *s, unsigned char out[32])
{
	if (strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 32; i++) {
		unsigned v = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + (size_t)k];
			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return false;
		}
		out[i] = (unsigned char)v;
	}
	return true;
}

static bool copy_str(json_t *o, const char *key, char *out, size_t size)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s != NULL && str_format(out, size, "%s", s) == 0;
}

int push_spool_parse(const char *text, size_t len, PushRecord *rec, WsError *err)
{
	static const JsonFileKind kind = {"push record is invalid", RECORD_MAX, PUSH_SPOOL_FORMAT,
					  "the push record", "push record format"};
	json_t *root = NULL;
	int format, rc = json_file_load(&kind, text, len, &root, &format, err);
	if (rc != 0)
		return rc;
	char sysid[24], hex[65], when[32];
	json_t *size = json_object_get(root, "size");
	json_t *stored_size = json_object_get(root, "stored_size");
	memset(rec, 0, sizeof(*rec));
	if (format < PUSH_SPOOL_FORMAT) {
		/* Without key and stored size it cannot be checked against the repository. */
		json_decref(root);
		return ws_error(err, WS_CORRUPT, "push record has format %d, older than %d", format,
				PUSH_SPOOL_FORMAT);
	}
	if (!copy_str(root, "uuid", rec->uuid, sizeof(rec->uuid)) ||
	    !copy_str(root, "repo", rec->repo, sizeof(rec->repo)) ||
	    !copy_str(root, "epoch", rec->epoch, sizeof(rec->epoch)) ||
	    !copy_str(root, "system_identifier", sysid, sizeof(sysid)) ||
	    !copy_str(root, "name", rec->name, sizeof(rec->name)) ||
	    !copy_str(root, "sha256", hex, sizeof(hex)) || !copy_str(root, "stored", when, sizeof(when)) ||
	    !copy_str(root, "key", rec->key, sizeof(rec->key)) || rec->key[0] == '\0' ||
	    !json_is_integer(size) || json_integer_value(size) < 0 || !json_is_integer(stored_size) ||
	    json_integer_value(stored_size) <= 0 || !json_file_parse_u64(sysid, &rec->sysid) ||
	    !hex32_decode(hex, rec->sha256)) {
		rc = ws_error(err, WS_CORRUPT, "push record is invalid: a member is missing or malformed");
	} else {
		/* Only the form push_spool_format writes: strptime also takes "2025-1-2T3:4:5Z". */
		char again[CLOCK_ISO_MAX];
		int64_t t = clock_parse_utc_iso(when);
		rec->size = (uint64_t)json_integer_value(size);
		rec->stored_size = (uint64_t)json_integer_value(stored_size);
		if (t >= 0)
			rec->stored = (time_t)t;
		clock_utc_iso((int64_t)rec->stored, again);
		if (t < 0 || strcmp(again, when) != 0)
			rc = ws_error(err, WS_CORRUPT,
				      "push record is invalid: \"stored\" is not a UTC time");
	}
	json_decref(root);
	return rc;
}

int push_spool_read(const char *dir, const char *name, PushRecord *out, WsError *err)
{
	if (!name_ok(name))
		return ws_error(err, WS_NOT_FOUND, "no push record for \"%s\"", name);
	char *path = xasprintf("%s/%s", dir, name);
	char *text = NULL;
	size_t len = 0;
	int rc = fs_read_small(path, RECORD_MAX, &text, &len, err);
	if (rc == 0)
		rc = push_spool_parse(text, len, out, err);
	if (rc == 0) {
		/* A record copied to another place does not count there. */
		char *uuid_dir = fs_dirname(dir);
		if (strcmp(out->name, name) != 0 || strcmp(fs_basename(uuid_dir), out->uuid) != 0)
			rc = ws_error(err, WS_CORRUPT, "push record \"%s\" is not where it was written",
				      path);
		free(uuid_dir);
	}
	if (rc != 0 && rc != WS_NOT_FOUND)
		ws_error_prefix(err, "push record \"%s\"", path);
	free(text);
	free(path);
	return rc;
}

bool push_spool_has(const char *dir, const char *name)
{
	struct stat st;
	char *path = xasprintf("%s/%s", dir, name);
	bool has = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	free(path);
	return has;
}

void push_spool_remove(const char *dir, const char *name)
{
	if (!name_ok(name))
		return;
	char *path = xasprintf("%s/%s", dir, name);
	if (unlink(path) == 0)
		(void)fs_fsync_dir(dir, NULL);
	free(path);
}

int push_spool_find(const char *spool, const char *name, const char *repo, uint64_t sysid, PushRecord *out,
		    char **dir)
{
	DIR *d = opendir(spool);
	struct dirent *e;
	int rc = WS_NOT_FOUND;

	*dir = NULL;
	if (d == NULL || !name_ok(name)) {
		if (d != NULL)
			closedir(d);
		return WS_NOT_FOUND;
	}
	while (rc != 0 && (e = readdir(d)) != NULL) {
		if (!uuid_ok(e->d_name))
			continue;
		char *pdir = xasprintf("%s/%s/push", spool, e->d_name);
		if (push_spool_has(pdir, name) && push_spool_read(pdir, name, out, NULL) == 0 &&
		    strcmp(out->repo, repo) == 0 && out->sysid == sysid) {
			*dir = pdir;
			rc = 0;
		} else {
			free(pdir);
		}
	}
	closedir(d);
	return rc;
}

int push_spool_expire(const char *dir, const char *status_dir, time_t now, time_t max_age)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int removed = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
			continue;
		bool drop;
		if (strcmp(e->d_name, PUSH_SPOOL_FAILING) == 0) {
			continue;
		} else if (e->d_name[0] == '.') {
			/* A killed writer's temp file; a live writer finishes in far less. */
			drop = now - st.st_mtime > PUSH_SPOOL_TEMP_AGE;
		} else if (now - st.st_mtime > max_age) {
			drop = true;
		} else {
			struct stat rs;
			char *ready = xasprintf("%s/%s.ready", status_dir, e->d_name);
			drop = stat(ready, &rs) != 0 && errno == ENOENT;
			free(ready);
		}
		if (drop && unlinkat(dirfd(d), e->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	if (removed > 0)
		(void)fs_fsync_dir(dir, NULL);
	return removed;
}

void push_spool_set_failing(const char *dir, const char *name)
{
	FsFileOpts o = {.mode = 0600};
	if (!name_ok(name))
		return;
	char *path = xasprintf("%s/%s", dir, PUSH_SPOOL_FAILING);
	(void)fs_write_file(path, name, strlen(name), &o, NULL);
	free(path);
}

bool push_spool_is_failing(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, PUSH_SPOOL_FAILING);
	char *text = NULL;
	size_t len = 0;
	bool is = fs_read_small(path, WAL_NAME_MAX, &text, &len, NULL) == 0 && len == strlen(name) &&
		  memcmp(text, name, len) == 0;
	free(text);
	free(path);
	return is;
}

void push_spool_clear_failing(const char *dir)
{
	char *path = xasprintf("%s/%s", dir, PUSH_SPOOL_FAILING);
	(void)unlink(path);
	free(path);
}
