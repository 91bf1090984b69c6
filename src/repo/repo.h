/*
 * repo.h - an open repository: its store, its walship.json, and objects put
 * and got through the object format.
 *
 * Encryption is a property of the repository (crypt.h): a repository is
 * encrypted when created with a key configured (encryption-key-file or
 * encryption-passphrase), and then every object is put and got encrypted,
 * bound to its key and the repository.  A configured key must match the
 * repository: opening checks it before any object is read or written.
 *
 * Memory: repo_config_identity is malloc'd (caller frees); repo_display, repo_meta and
 * repo_store are borrowed from the Repo.
 */
#ifndef WALSHIP_REPO_REPO_H
#define WALSHIP_REPO_REPO_H

#include <stdbool.h>
#include <stdint.h>

#include "repo/meta.h"
#include "repo/object.h"
#include "store/store.h"
#include "util/config.h"

typedef struct Repo Repo;

/*
 * Open the repository named by the "repo" setting and read walship.json.
 * No "repo": WS_USAGE.  Store unreachable or root missing: WS_FATAL.
 * walship.json absent: WS_FATAL "not initialised" with a hint (init, or an
 * unmounted volume).  Never WS_NOT_FOUND.  An encrypted repository with no
 * key configured, a wrong key, or a key configured for an unencrypted
 * repository: WS_FATAL with a hint naming the settings.
 */
int repo_open(const Config *cfg, Repo **out, WsError *err);

/*
 * repo_open without the store's own checks (STORE_OPEN_PROVEN: S3's bucket
 * listing), for a caller to whom walship.json read in this call is proof
 * enough and errors are no verdict: walship-push answering from its record
 * saves a round trip.  Errors may be less precise than repo_open's (a
 * missing bucket reads as a repository not initialised): open again with
 * repo_open to report one.
 */
int repo_open_quick(const Config *cfg, Repo **out, WsError *err);

/*
 * store_stat of key in the repository the configuration names, on a handle
 * of its own opened for this one request (STORE_OPEN_PROVEN: no checks, no
 * walship.json), so that a caller can run it in a thread beside repo_open
 * (see store_url_overlaps).  Proves nothing about the repository alone.
 */
int repo_stat_alone(const Config *cfg, const char *key, StoreStat *st, WsError *err);

/*
 * Create the repository (walship init): the root if missing, and walship.json
 * with one epoch, written with no-overwrite.  An existing walship.json is
 * WS_EXISTS.  Encrypted, with a new data key, when a key is configured
 * (walship init insists on --encrypt then).
 */
int repo_create(const Config *cfg, uint64_t sysid, int pg_major, uint32_t seg_size, Repo **out, WsError *err);

/*
 * Add an epoch for a new cluster (walship upgrade) and replace walship.json
 * atomically (readers see the old or the new file, never a mix).  The new
 * epoch is returned in *epoch.
 */
int repo_add_epoch(Repo *repo, uint64_t sysid, int pg_major, uint32_t seg_size, const RepoEpoch **epoch,
		   WsError *err);

/*
 * A second handle on repo's repository, for another thread: its own store
 * connection (opened from cfg, the same settings repo came from) and its own
 * codec contexts, sharing repo's walship.json and key without reading them
 * again.  repo must outlive it and not change meanwhile (no repo_add_epoch).
 */
int repo_open_another(const Repo *repo, const Config *cfg, Repo **out, WsError *err);

/* zstd worker threads of this handle's encoder (obj_encoder_set_workers); 0 compresses inline. */
void repo_set_encoder_workers(Repo *repo, int n);

void repo_free(Repo *repo);

const RepoMeta *repo_meta(const Repo *repo);
Store *repo_store(Repo *repo);
const char *repo_display(const Repo *repo);

/*
 * Store the content read from in as an object under key.  content_size may be
 * OBJ_SIZE_UNKNOWN.  info (may be NULL) gets size and SHA-256.  Store errors
 * pass through (WS_EXISTS with no_overwrite).
 */
int repo_put_object(Repo *repo, const char *key, WsReader in, void *in_ctx, uint64_t content_size,
		    bool no_overwrite, ObjInfo *info, WsError *err);

/*
 * Fetch, decode and verify the object under key into out; max_size caps the
 * content.  WS_NOT_FOUND from the store passes through; any verification
 * failure is WS_CORRUPT.  Bytes may already have reached out when it fails:
 * callers write to a temporary file.
 */
int repo_get_object(Repo *repo, const char *key, uint64_t max_size, WsWriter out, void *out_ctx,
		    ObjInfo *info, WsError *err);

/*
 * The repository as configured, for records kept outside it (parallel-push
 * records, the prefetch index): the "repo" setting and, when set, the
 * s3-endpoint, as one string.  No network: it names, it does not
 * prove.
 */
char *repo_config_identity(const Config *cfg);

/* Whether the repository's objects are encrypted. */
bool repo_encrypted(const Repo *repo);

/* The compression level from config ("compress-level"). */
int repo_compress_level(const Repo *repo);

#endif
