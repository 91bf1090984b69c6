/*
 * store.h - the storage interface: one table of functions per driver, the
 * same contract for all: local disk (local.c), SFTP (sftp.c), S3 (s3.c).
 * How each driver keeps it: src/store/README.md.  A handle is used from one
 * thread.
 *
 * Keys are relative, '/'-separated, made of [A-Za-z0-9._@-] with no empty,
 * "." or ".." component.  A driver knows nothing of WAL or of the repository
 * layout.
 *
 * Error classes: WS_NOT_FOUND exactly "no such object", proven (the store is
 * reachable and its root exists; a file or a dangling symbolic link where one
 * of the key's directories should be, or a directory or link at the key, is
 * WS_FATAL); WS_EXISTS; WS_TRANSIENT (already retried within the driver's
 * budget); WS_FATAL (permission, missing root, config, I/O).  Messages say
 * what, where, and a hint.
 *
 * Memory: store_display's string is borrowed from the handle (valid until
 * store_free).
 */
#ifndef WALSHIP_STORE_STORE_H
#define WALSHIP_STORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/config.h"
#include "util/error.h"
#include "util/stream.h"

#define STORE_TO_END  UINT64_MAX
#define STORE_KEY_MAX 1024

typedef struct Store Store;

typedef struct StoreStat {
	uint64_t size;
	int64_t mtime; /* seconds since the epoch */
} StoreStat;

/* Called once per key, in order; a non-zero return stops the listing and is returned. */
typedef int (*StoreListFn)(void *ctx, const char *key, const StoreStat *st, WsError *err);

typedef enum StoreOpenFlags {
	STORE_OPEN_DEFAULT = 0,
	STORE_OPEN_CREATE = 1, /* create the root if missing (walship init only) */
	STORE_OPEN_PROVEN = 2, /* another handle of this process opened this store: skip the checks */
} StoreOpenFlags;

/*
 * Open the store a repository URL names: "/abs/path", "file:///abs/path",
 * "sftp://user@host[:port]/path" or "s3://bucket[/prefix]".  Without
 * STORE_OPEN_CREATE a missing root (directory, SFTP path) is WS_FATAL with a
 * hint about an unmounted volume; a missing S3 bucket is always WS_FATAL.
 * Remote drivers connect and authenticate here, so that a wrong secret or an
 * unknown host key is reported before anything else is done.
 * STORE_OPEN_PROVEN (a second connection to a store this process already
 * opened, such as a parallel worker's) skips the round trips that only check
 * the store: S3's bucket listing.  Connecting and logging in are not skipped.
 */
int store_open(const char *url, const Config *cfg, int flags, Store **out, WsError *err);
void store_free(Store *s);

/*
 * Whether two requests on two handles of the store url names overlap in
 * time for less than they cost one after the other: S3 (a handle costs
 * nothing before its first request, and each request a round trip).  Not
 * local disk (nothing to overlap) nor SFTP (a handle costs an SSH login).
 */
bool store_url_overlaps(const char *url);

/* The directory a local-disk URL names ("/abs/path", "file:///abs/path": borrowed from url), NULL for the
 * others. */
const char *store_url_local_path(const char *url);

/* The repository as shown to users ("/var/lib/walship" or "sftp://..."). */
const char *store_display(const Store *s);

/* WS_USAGE unless key follows the rules above. */
int store_key_check(const char *key, WsError *err);

/*
 * Store what src gives under key.  Readers never see a partial object; returns
 * only once the object is durable (on disk and SFTP: the file, then its
 * directory and each one above it up to the root).  With no_overwrite an
 * existing key is never replaced, atomically, and answers WS_EXISTS once that
 * object is durable too; a no-overwrite put that fails after its rename takes
 * its object back.
 */
int store_put(Store *s, const char *key, WsReader src, void *src_ctx, bool no_overwrite, WsError *err);

/* Stream bytes [offset, offset+length) of key to sink (length STORE_TO_END for the rest). */
int store_get(Store *s, const char *key, uint64_t offset, uint64_t length, WsWriter sink, void *sink_ctx,
	      WsError *err);

int store_stat(Store *s, const char *key, StoreStat *st, WsError *err);

/* Every key under prefix, sorted bytewise, to fn (in pages the driver chooses). */
int store_list(Store *s, const char *prefix, StoreListFn fn, void *ctx, WsError *err);

/* WS_NOT_FOUND if absent. */
int store_remove(Store *s, const char *key, WsError *err);

#endif
