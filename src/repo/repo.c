/*
 * repo.c - an open repository: the store its URL names, its walship.json, and
 * objects put and got through the object format with reused codec contexts,
 * encrypted under the repository's data key when it has one.
 */
#include "repo/repo.h"

#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

struct Repo {
	Store *store;
	RepoMeta *meta;
	int level;
	ObjEncoder *enc;
	ObjDecoder *dec;
	CryptKey *key;   /* NULL: not encrypted */
	int enc_workers; /* -1: the encoder's default */
	bool borrowed;   /* meta and key belong to the Repo this one was opened from */
};

/* The store the "repo" setting names, and the compression level for new objects. */
static int open_store(const Config *cfg, int flags, Store **store, int *level, WsError *err)
{
	const char *url = config_get(cfg, "repo");
	long v = 1;
	int rc;
	if (url == NULL || url[0] == '\0') {
		ws_error(err, WS_USAGE, "no repository configured");
		ws_error_hint(err, "Pass --repo=URL, or set repo in the configuration file or WALSHIP_REPO.");
		return WS_USAGE;
	}
	if ((rc = config_get_int(cfg, "compress-level", -7, 19, &v, err)) != 0)
		return rc;
	*level = (int)v;
	return store_open(url, cfg, flags, store, err);
}

static Repo *repo_alloc(Store *store, int level)
{
	Repo *repo = xcalloc(1, sizeof(*repo));
	repo->store = store;
	repo->level = level;
	repo->enc_workers = -1;
	return repo;
}

/*
 * The data key of an encrypted repository, unwrapped with the configured
 * secret; NULL for an unencrypted one.  Any mismatch between configuration
 * and repository stops here, before an object is read or written.
 */
static int open_key(const Config *cfg, const RepoMeta *meta, const char *display, CryptKey **key,
		    WsError *err)
{
	CryptSecret *secret = NULL;
	int rc;

	*key = NULL;
	if ((rc = crypt_secret_load(cfg, &secret, err)) != 0)
		return rc;
	if (meta->encryption == NULL && secret != NULL) {
		/* Whoever configured a key believes the archive is encrypted: it is not. */
		ws_error(err, WS_FATAL, "repository \"%s\" is not encrypted, but %s is set", display,
			 crypt_secret_describe(secret));
		ws_error_hint(
			err, "Remove encryption-key-file and encryption-passphrase from the configuration of "
			     "this repository, or archive into a new repository made with \"walship init "
			     "--encrypt\".");
		rc = WS_FATAL;
	} else if (meta->encryption != NULL && secret == NULL) {
		ws_error(err, WS_FATAL, "repository \"%s\" is encrypted", display);
		ws_error_detail(err, "Its key is derived from a %s.",
				meta->encryption->kdf == CRYPT_KDF_KEY_FILE ? "key file" : "passphrase");
		ws_error_hint(
			err, "%s",
			meta->encryption->kdf == CRYPT_KDF_KEY_FILE
				? "Set encryption-key-file to the repository's key file in the configuration "
				  "file (or WALSHIP_ENCRYPTION_KEY_FILE)."
				: "Set encryption-passphrase in the configuration file (or "
				  "WALSHIP_ENCRYPTION_PASSPHRASE) to the repository's passphrase.");
		rc = WS_FATAL;
	} else if (meta->encryption != NULL) {
		rc = crypt_key_unwrap(secret, meta->encryption, meta->uuid, display, key, err);
	}
	crypt_secret_free(secret);
	return rc;
}

static int open_with(const Config *cfg, int store_flags, Repo **out, WsError *err)
{
	Store *store = NULL;
	MemWriter sink = {.max = REPO_META_MAX, .what = REPO_META_KEY};
	RepoMeta *meta = NULL;
	CryptKey *key = NULL;
	int level, rc;

	*out = NULL;
	if ((rc = open_store(cfg, store_flags, &store, &level, err)) != 0)
		return rc;

	rc = store_get(store, REPO_META_KEY, 0, STORE_TO_END, mem_writer_write, &sink, err);
	if (rc == WS_NOT_FOUND) {
		/* Never "not found": an unmounted volume must not look like an empty archive. */
		ws_error(err, WS_FATAL, "repository \"%s\" is not initialised: it has no %s",
			 store_display(store), REPO_META_KEY);
		ws_error_hint(err,
			      "If the repository should exist, check that its volume is mounted and the repo "
			      "setting is right. To create it, run \"walship init --repo=%s --pgdata=DIR\".",
			      store_display(store));
		rc = WS_FATAL;
		goto done;
	}
	if (rc != 0)
		goto done;

	if ((rc = repo_meta_parse(sink.buf ? sink.buf : "", sink.len, &meta, err)) != 0) {
		ws_error_prefix(err, "repository \"%s\"", store_display(store));
		goto done;
	}
	if ((rc = open_key(cfg, meta, store_display(store), &key, err)) != 0)
		goto done;
	Repo *repo = repo_alloc(store, level);
	repo->meta = meta;
	repo->key = key;
	meta = NULL;
	store = NULL;
	*out = repo;
done:
	repo_meta_free(meta);
	free(sink.buf);
	store_free(store);
	return rc;
}

int repo_open(const Config *cfg, Repo **out, WsError *err)
{
	return open_with(cfg, STORE_OPEN_DEFAULT, out, err);
}

int repo_open_quick(const Config *cfg, Repo **out, WsError *err)
{
	return open_with(cfg, STORE_OPEN_PROVEN, out, err);
}

int repo_stat_alone(const Config *cfg, const char *key, StoreStat *st, WsError *err)
{
	Store *store = NULL;
	int level;
	int rc = open_store(cfg, STORE_OPEN_PROVEN, &store, &level, err);
	if (rc == 0)
		rc = store_stat(store, key, st, err);
	store_free(store);
	return rc;
}

int repo_create(const Config *cfg, uint64_t sysid, int pg_major, uint32_t seg_size, Repo **out, WsError *err)
{
	Store *store = NULL;
	CryptSecret *secret = NULL;
	CryptKey *key = NULL;
	int level, rc;

	*out = NULL;
	/* The key first: a bad key file must not leave a half-made repository. */
	if ((rc = crypt_secret_load(cfg, &secret, err)) != 0)
		return rc;
	if ((rc = open_store(cfg, STORE_OPEN_CREATE, &store, &level, err)) != 0) {
		crypt_secret_free(secret);
		return rc;
	}

	RepoMeta *meta = repo_meta_new(sysid, pg_major, seg_size);
	if (secret != NULL) {
		meta->encryption = xcalloc(1, sizeof(*meta->encryption));
		rc = crypt_key_create(secret, meta->uuid, meta->encryption, &key, err);
		crypt_secret_free(secret);
		if (rc != 0) {
			repo_meta_free(meta);
			store_free(store);
			return rc;
		}
	}
	char *json = repo_meta_serialize(meta);
	MemReader src = {json, strlen(json), 0};
	rc = store_put(store, REPO_META_KEY, mem_reader_read, &src, true, err);
	free(json);
	if (rc == WS_EXISTS) {
		ws_error(err, WS_EXISTS, "repository \"%s\" is already initialised", store_display(store));
		ws_error_hint(err, "Use it as it is: walship init never replaces a repository.");
	}
	if (rc != 0) {
		crypt_key_free(key);
		repo_meta_free(meta);
		store_free(store);
		return rc;
	}
	Repo *repo = repo_alloc(store, level);
	repo->meta = meta;
	repo->key = key;
	*out = repo;
	return 0;
}

int repo_add_epoch(Repo *repo, uint64_t sysid, int pg_major, uint32_t seg_size, const RepoEpoch **epoch,
		   WsError *err)
{
	repo_meta_add_epoch(repo->meta, sysid, pg_major, seg_size);
	char *json = repo_meta_serialize(repo->meta);
	MemReader src = {json, strlen(json), 0};
	int rc = store_put(repo->store, REPO_META_KEY, mem_reader_read, &src, false, err);
	free(json);
	if (rc != 0) {
		repo->meta->n_epochs--; /* not written: the repository keeps its epochs */
		return rc;
	}
	*epoch = repo_meta_newest(repo->meta);
	return 0;
}

int repo_open_another(const Repo *repo, const Config *cfg, Repo **out, WsError *err)
{
	Store *store = NULL;
	int level;

	*out = NULL;
	int rc = open_store(cfg, STORE_OPEN_PROVEN, &store, &level, err);
	if (rc != 0)
		return rc;
	Repo *r = repo_alloc(store, level);
	r->meta = repo->meta;
	r->key = repo->key;
	r->borrowed = true;
	*out = r;
	return 0;
}

void repo_set_encoder_workers(Repo *repo, int n)
{
	repo->enc_workers = n;
	if (repo->enc != NULL && n >= 0)
		obj_encoder_set_workers(repo->enc, n);
}

void repo_free(Repo *repo)
{
	if (repo == NULL)
		return;
	obj_encoder_free(repo->enc);
	obj_decoder_free(repo->dec);
	if (!repo->borrowed) {
		crypt_key_free(repo->key);
		repo_meta_free(repo->meta);
	}
	store_free(repo->store);
	free(repo);
}

const RepoMeta *repo_meta(const Repo *repo)
{
	return repo->meta;
}

Store *repo_store(Repo *repo)
{
	return repo->store;
}

const char *repo_display(const Repo *repo)
{
	return store_display(repo->store);
}

bool repo_encrypted(const Repo *repo)
{
	return repo->key != NULL;
}

int repo_compress_level(const Repo *repo)
{
	return repo->level;
}

int repo_put_object(Repo *repo, const char *key, WsReader in, void *in_ctx, uint64_t content_size,
		    bool no_overwrite, ObjInfo *info, WsError *err)
{
	if (repo->enc == NULL) {
		repo->enc = obj_encoder_new(repo->level);
		if (repo->enc_workers >= 0)
			obj_encoder_set_workers(repo->enc, repo->enc_workers);
	}
	obj_encoder_set_crypt(repo->enc, repo->key, key);
	obj_encoder_reset(repo->enc, in, in_ctx, content_size);
	int rc = store_put(repo->store, key, obj_encoder_read, repo->enc, no_overwrite, err);
	if (rc == 0 && info != NULL)
		obj_encoder_info(repo->enc, info);
	return rc;
}

int repo_get_object(Repo *repo, const char *key, uint64_t max_size, WsWriter out, void *out_ctx,
		    ObjInfo *info, WsError *err)
{
	if (repo->dec == NULL)
		repo->dec = obj_decoder_new();
	obj_decoder_set_crypt(repo->dec, repo->key, key);
	obj_decoder_reset(repo->dec, max_size, out, out_ctx, key);
	int rc = store_get(repo->store, key, 0, STORE_TO_END, obj_decoder_write, repo->dec, err);
	if (rc != 0)
		return rc;
	ObjInfo local;
	return obj_decoder_finish(repo->dec, info ? info : &local, err);
}

char *repo_config_identity(const Config *cfg)
{
	const char *url = config_get(cfg, "repo");
	const char *endpoint = config_get(cfg, "s3-endpoint");
	return xasprintf("%s%s%s", url ? url : "", endpoint ? " " : "", endpoint ? endpoint : "");
}
