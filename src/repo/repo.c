/*
 * repo.c - an open repository: the store its URL names, its walship.json, and
 * objects put and got through the object format with reused codec contexts.
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
	return repo;
}

int repo_open(const Config *cfg, Repo **out, WsError *err)
{
	Store *store = NULL;
	MemWriter sink = {.max = REPO_META_MAX, .what = REPO_META_KEY};
	int level, rc;

	*out = NULL;
	if ((rc = open_store(cfg, STORE_OPEN_DEFAULT, &store, &level, err)) != 0)
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

	RepoMeta *meta = NULL;
	if ((rc = repo_meta_parse(sink.buf ? sink.buf : "", sink.len, &meta, err)) != 0) {
		ws_error_prefix(err, "repository \"%s\"", store_display(store));
		goto done;
	}
	Repo *repo = repo_alloc(store, level);
	repo->meta = meta;
	store = NULL;
	*out = repo;
done:
	free(sink.buf);
	store_free(store);
	return rc;
}

int repo_create(const Config *cfg, uint64_t sysid, int pg_major, uint32_t seg_size, Repo **out, WsError *err)
{
	Store *store = NULL;
	int level, rc;

	*out = NULL;
	if ((rc = open_store(cfg, STORE_OPEN_CREATE, &store, &level, err)) != 0)
		return rc;

	RepoMeta *meta = repo_meta_new(sysid, pg_major, seg_size);
	char *json = repo_meta_serialize(meta);
	MemReader src = {json, strlen(json), 0};
	rc = store_put(store, REPO_META_KEY, mem_reader_read, &src, true, err);
	free(json);
	if (rc == WS_EXISTS) {
		ws_error(err, WS_EXISTS, "repository \"%s\" is already initialised", store_display(store));
		ws_error_hint(err, "Use it as it is: walship init never replaces a repository.");
	}
	if (rc != 0) {
		repo_meta_free(meta);
		store_free(store);
		return rc;
	}
	Repo *repo = repo_alloc(store, level);
	repo->meta = meta;
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

void repo_free(Repo *repo)
{
	if (repo == NULL)
		return;
	obj_encoder_free(repo->enc);
	obj_decoder_free(repo->dec);
	repo_meta_free(repo->meta);
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

int repo_compress_level(const Repo *repo)
{
	return repo->level;
}

int repo_put_object(Repo *repo, const char *key, WsReader in, void *in_ctx, uint64_t content_size,
		    bool no_overwrite, ObjInfo *info, WsError *err)
{
	if (repo->enc == NULL)
		repo->enc = obj_encoder_new(repo->level);
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
	obj_decoder_reset(repo->dec, max_size, out, out_ctx, key);
	int rc = store_get(repo->store, key, 0, STORE_TO_END, obj_decoder_write, repo->dec, err);
	if (rc != 0)
		return rc;
	ObjInfo local;
	return obj_decoder_finish(repo->dec, info ? info : &local, err);
}
