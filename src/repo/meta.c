/*
 * meta.c - walship.json: the repository's format, identity and epochs.
 *
 * Every field is checked on the way in: this file decides which cluster a
 * push may write for and where a fetch looks, so a damaged or hand-edited
 * one must stop walship rather than steer it.
 */
#include "repo/meta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "pg/pgcontrol.h"
#include "repo/jsonfile.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/mem.h"

#define INVALID "walship.json of the repository is invalid"

static void make_uuid(char out[40])
{
	unsigned char b[16];
	char hex[33];
	if (RAND_bytes(b, sizeof(b)) != 1) {
		/* Without randomness no identity is safe to hand out. */
		cleanup_fatal("could not generate random bytes for the repository UUID");
	}
	b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
	hex_encode(b, sizeof(b), hex);
	snprintf(out, 40, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* The number after the dash of an epoch id ("16-2" -> 2). */
static unsigned long epoch_number(const char *id)
{
	const char *dash = strrchr(id, '-');
	return dash ? strtoul(dash + 1, NULL, 10) : 0;
}

RepoMeta *repo_meta_new(uint64_t sysid, int pg_major, uint32_t seg_size)
{
	RepoMeta *meta = xcalloc(1, sizeof(*meta));
	meta->format = REPO_META_FORMAT;
	make_uuid(meta->uuid);
	repo_meta_add_epoch(meta, sysid, pg_major, seg_size);
	return meta;
}

RepoEpoch *repo_meta_add_epoch(RepoMeta *meta, uint64_t sysid, int pg_major, uint32_t seg_size)
{
	unsigned long n = 0;
	char major[16];
	for (int i = 0; i < meta->n_epochs; i++) {
		unsigned long k = epoch_number(meta->epochs[i].id);
		if (k > n)
			n = k;
	}
	meta->epochs = xrealloc(meta->epochs, (size_t)(meta->n_epochs + 1) * sizeof(RepoEpoch));
	RepoEpoch *e = &meta->epochs[meta->n_epochs++];
	memset(e, 0, sizeof(*e));
	pg_major_str(pg_major, major, sizeof(major));
	snprintf(e->id, sizeof(e->id), "%s-%lu", major, n + 1);
	e->sysid = sysid;
	e->pg_major = pg_major;
	e->seg_size = seg_size;
	clock_utc_iso((int64_t)time(NULL), e->created);
	return e;
}

void repo_meta_free(RepoMeta *meta)
{
	if (meta == NULL)
		return;
	free(meta->epochs);
	free(meta->encryption);
	free(meta);
}

/* ---- parsing ---- */

static bool is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return false;
		}
	}
	return true;
}

static bool seg_size_ok(json_int_t v)
{
	return v >= 1024 * 1024 && v <= 1024 * 1024 * 1024 && (v & (v - 1)) == 0;
}

/* A string member, or NULL after filling err. */
static const char *get_string(json_t *obj, const char *key, const char *where, WsError *err)
{
	return json_file_string(INVALID, obj, key, where, err);
}

static bool hex_decode(const char *s, unsigned char *out, size_t len)
{
	if (strlen(s) != 2 * len)
		return false;
	for (size_t i = 0; i < 2 * len; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return false;
		if (i % 2 == 0)
			out[i / 2] = (unsigned char)(v << 4);
		else
			out[i / 2] = (unsigned char)(out[i / 2] | v);
	}
	return true;
}

/* An integer member in [min, max] into *out. */
static int get_u32_member(json_t *obj, const char *key, uint32_t min, uint32_t max, uint32_t *out,
			  WsError *err)
{
	json_t *v = json_object_get(obj, key);
	if (v == NULL)
		return ws_error(err, WS_CORRUPT, INVALID ": \"encryption\": \"%s\" is missing", key);
	if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
	    json_integer_value(v) > (json_int_t)max)
		return ws_error(err, WS_CORRUPT,
				INVALID ": \"encryption\": \"%s\" is not an integer from %" PRIu32
					" to %" PRIu32,
				key, min, max);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int parse_encryption(json_t *obj, CryptParams *p, WsError *err)
{
	const char *where = "\"encryption\": ";
	const char *s;
	int rc;

	if (!json_is_object(obj))
		return ws_error(err, WS_CORRUPT, INVALID ": \"encryption\" is neither null nor an object");
	if ((s = get_string(obj, "cipher", where, err)) == NULL)
		return WS_CORRUPT;
	if (strcmp(s, CRYPT_CIPHER) != 0) {
		ws_error(err, WS_FATAL,
			 "repository is encrypted with cipher \"%.64s\", unknown to this walship", s);
		ws_error_detail(err, "This walship supports %s.", CRYPT_CIPHER);
		ws_error_hint(err, "Upgrade walship to a version that supports it.");
		return WS_FATAL;
	}
	if ((s = get_string(obj, "kdf", where, err)) == NULL)
		return WS_CORRUPT;
	if (!crypt_kdf_parse(s, &p->kdf)) {
		ws_error(err, WS_FATAL, "repository's key is derived with \"%.64s\", unknown to this walship",
			 s);
		ws_error_detail(err, "This walship supports \"key-file\" and \"scrypt\".");
		ws_error_hint(err, "Upgrade walship to a version that supports it.");
		return WS_FATAL;
	}
	if (p->kdf == CRYPT_KDF_SCRYPT) {
		if ((rc = get_u32_member(obj, "n", CRYPT_SCRYPT_N_MIN, CRYPT_SCRYPT_N_MAX, &p->scrypt_n,
					 err)) != 0 ||
		    (rc = get_u32_member(obj, "r", 1, CRYPT_SCRYPT_R_MAX, &p->scrypt_r, err)) != 0 ||
		    (rc = get_u32_member(obj, "p", 1, CRYPT_SCRYPT_P_MAX, &p->scrypt_p, err)) != 0)
			return rc;
		if (p->scrypt_n & (p->scrypt_n - 1))
			return ws_error(err, WS_CORRUPT,
					INVALID ": \"encryption\": \"n\" is not a power of two");
		if ((uint64_t)p->scrypt_n * p->scrypt_r > 8u * 1024 * 1024)
			return ws_error(err, WS_CORRUPT,
					INVALID
					": \"encryption\": scrypt would need more than 1 GiB of memory");
	}
	if ((s = get_string(obj, "salt", where, err)) == NULL)
		return WS_CORRUPT;
	if (!hex_decode(s, p->salt, sizeof(p->salt)))
		return ws_error(err, WS_CORRUPT,
				INVALID ": \"encryption\": \"salt\" is not %zu lowercase hex digits",
				2 * sizeof(p->salt));
	if ((s = get_string(obj, "wrapped_key", where, err)) == NULL)
		return WS_CORRUPT;
	if (!hex_decode(s, p->wrapped_key, sizeof(p->wrapped_key)))
		return ws_error(err, WS_CORRUPT,
				INVALID ": \"encryption\": \"wrapped_key\" is not %zu lowercase hex digits",
				2 * sizeof(p->wrapped_key));
	return 0;
}

static json_t *serialize_encryption(const CryptParams *p)
{
	char salt[2 * CRYPT_SALT_SIZE + 1];
	char wrapped[2 * CRYPT_WRAPPED_SIZE + 1];
	json_t *obj = json_object();
	hex_encode(p->salt, sizeof(p->salt), salt);
	hex_encode(p->wrapped_key, sizeof(p->wrapped_key), wrapped);
	json_object_set_new(obj, "cipher", json_string(CRYPT_CIPHER));
	json_object_set_new(obj, "kdf", json_string(crypt_kdf_name(p->kdf)));
	if (p->kdf == CRYPT_KDF_SCRYPT) {
		json_object_set_new(obj, "n", json_integer(p->scrypt_n));
		json_object_set_new(obj, "r", json_integer(p->scrypt_r));
		json_object_set_new(obj, "p", json_integer(p->scrypt_p));
	}
	json_object_set_new(obj, "salt", json_string(salt));
	json_object_set_new(obj, "wrapped_key", json_string(wrapped));
	return obj;
}

static int parse_epoch(json_t *obj, int index, RepoEpoch *e, WsError *err)
{
	char where[48];
	const char *s;
	json_t *v;

	snprintf(where, sizeof(where), "epoch %d: ", index + 1);
	if (!json_is_object(obj))
		return ws_error(err, WS_CORRUPT, INVALID ": epoch %d is not an object", index + 1);

	if ((s = get_string(obj, "id", where, err)) == NULL)
		return WS_CORRUPT;
	if (strlen(s) >= sizeof(e->id) || !json_file_epoch_id_ok(s))
		return ws_error(err, WS_CORRUPT,
				INVALID ": %s\"id\" is not of the form <major>-<number>: \"%.64s\"", where,
				s);
	strcpy(e->id, s);

	if ((s = get_string(obj, "system_identifier", where, err)) == NULL)
		return WS_CORRUPT;
	if (!json_file_parse_u64(s, &e->sysid))
		return ws_error(
			err, WS_CORRUPT,
			INVALID
			": %s\"system_identifier\" is not a positive 64-bit decimal number: \"%.64s\"",
			where, s);

	if ((s = get_string(obj, "pg_major", where, err)) == NULL)
		return WS_CORRUPT;
	if (!json_file_parse_pg_major(s, &e->pg_major)) {
		ws_error(err, WS_CORRUPT,
			 INVALID ": %s\"pg_major\" is not a PostgreSQL major version: \"%.64s\"", where, s);
		ws_error_detail(err, "A major version is written \"9.6\" or as two digits, such as \"15\".");
		return WS_CORRUPT;
	}

	v = json_object_get(obj, "wal_segment_size");
	if (v == NULL)
		return ws_error(err, WS_CORRUPT, INVALID ": %s\"wal_segment_size\" is missing", where);
	if (!json_is_integer(v) || !seg_size_ok(json_integer_value(v)))
		return ws_error(err, WS_CORRUPT,
				INVALID ": %s\"wal_segment_size\" is not a power of two from 1 MiB to 1 GiB",
				where);
	e->seg_size = (uint32_t)json_integer_value(v);

	if ((s = get_string(obj, "created", where, err)) == NULL)
		return WS_CORRUPT;
	if (!json_file_utc_time_ok(s))
		return ws_error(err, WS_CORRUPT,
				INVALID ": %s\"created\" is not a UTC time YYYY-MM-DDTHH:MM:SSZ: \"%.64s\"",
				where, s);
	strcpy(e->created, s);
	return 0;
}

int repo_meta_parse(const char *json, size_t len, RepoMeta **out, WsError *err)
{
	json_t *root = NULL, *v, *epochs;
	RepoMeta *meta = NULL;
	const char *s;
	int rc = WS_CORRUPT;

	static const JsonFileKind kind = {INVALID, REPO_META_MAX, REPO_META_FORMAT, "the repository",
					  "repository format"};
	int format;

	*out = NULL;
	if ((rc = json_file_load(&kind, json, len, &root, &format, err)) != 0)
		goto done;
	rc = WS_CORRUPT;

	meta = xcalloc(1, sizeof(*meta));
	meta->format = format;
	v = json_object_get(root, "encryption");
	if (v != NULL && !json_is_null(v)) {
		meta->encryption = xcalloc(1, sizeof(*meta->encryption));
		if ((rc = parse_encryption(v, meta->encryption, err)) != 0)
			goto done;
		rc = WS_CORRUPT;
	}
	if ((s = get_string(root, "uuid", "", err)) == NULL)
		goto done;
	if (!is_uuid(s)) {
		ws_error(err, WS_CORRUPT, INVALID ": \"uuid\" is not a lowercase UUID: \"%.64s\"", s);
		goto done;
	}
	strcpy(meta->uuid, s);

	epochs = json_object_get(root, "epochs");
	if (epochs == NULL || !json_is_array(epochs) || json_array_size(epochs) == 0) {
		ws_error(err, WS_CORRUPT, INVALID ": \"epochs\" is %s",
			 epochs == NULL          ? "missing"
			 : json_is_array(epochs) ? "empty"
						 : "not an array");
		goto done;
	}
	if (json_array_size(epochs) > 10000) {
		ws_error(err, WS_CORRUPT, INVALID ": \"epochs\" has %zu entries", json_array_size(epochs));
		goto done;
	}
	meta->epochs = xcalloc(json_array_size(epochs), sizeof(RepoEpoch));
	for (size_t i = 0; i < json_array_size(epochs); i++) {
		RepoEpoch *e = &meta->epochs[i];
		if (parse_epoch(json_array_get(epochs, i), (int)i, e, err) < 0)
			goto done;
		for (int j = 0; j < meta->n_epochs; j++) {
			if (strcmp(meta->epochs[j].id, e->id) == 0) {
				ws_error(err, WS_CORRUPT, INVALID ": epoch id \"%s\" appears twice", e->id);
				goto done;
			}
		}
		meta->n_epochs++;
	}
	*out = meta;
	meta = NULL;
	rc = 0;
done:
	repo_meta_free(meta);
	json_decref(root);
	return rc;
}

char *repo_meta_serialize(const RepoMeta *meta)
{
	json_t *root = json_object();
	json_t *epochs = json_array();
	char major[16];
	char sysid[24];

	json_object_set_new(root, "format", json_integer(meta->format));
	json_object_set_new(root, "uuid", json_string(meta->uuid));
	json_object_set_new(root, "encryption",
			    meta->encryption ? serialize_encryption(meta->encryption) : json_null());
	for (int i = 0; i < meta->n_epochs; i++) {
		const RepoEpoch *e = &meta->epochs[i];
		json_t *obj = json_object();
		pg_major_str(e->pg_major, major, sizeof(major));
		snprintf(sysid, sizeof(sysid), "%" PRIu64, e->sysid);
		json_object_set_new(obj, "id", json_string(e->id));
		json_object_set_new(obj, "system_identifier", json_string(sysid));
		json_object_set_new(obj, "pg_major", json_string(major));
		json_object_set_new(obj, "wal_segment_size", json_integer(e->seg_size));
		json_object_set_new(obj, "created", json_string(e->created));
		json_array_append_new(epochs, obj);
	}
	json_object_set_new(root, "epochs", epochs);

	char *out = json_file_dump(root, "walship.json");
	json_decref(root);
	return out;
}

const RepoEpoch *repo_meta_newest(const RepoMeta *meta)
{
	return meta->n_epochs > 0 ? &meta->epochs[meta->n_epochs - 1] : NULL;
}

const RepoEpoch *repo_meta_find_sysid(const RepoMeta *meta, uint64_t sysid)
{
	for (int i = meta->n_epochs - 1; i >= 0; i--)
		if (meta->epochs[i].sysid == sysid)
			return &meta->epochs[i];
	return NULL;
}

const RepoEpoch *repo_meta_find_id(const RepoMeta *meta, const char *id)
{
	for (int i = 0; i < meta->n_epochs; i++)
		if (strcmp(meta->epochs[i].id, id) == 0)
			return &meta->epochs[i];
	return NULL;
}
