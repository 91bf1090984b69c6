/*
 * driver.h - what a store driver implements; only store.c and the drivers
 * include this.  A driver's handle embeds struct Store as its first member.
 */
#ifndef WALSHIP_STORE_DRIVER_H
#define WALSHIP_STORE_DRIVER_H

#include "store/store.h"
#include "util/dirwalk.h"

typedef struct StoreDriver {
	const char *name;
	int (*put)(Store *s, const char *key, WsReader src, void *src_ctx, bool no_overwrite, WsError *err);
	int (*get)(Store *s, const char *key, uint64_t offset, uint64_t length, WsWriter sink, void *sink_ctx,
		   WsError *err);
	int (*stat)(Store *s, const char *key, StoreStat *st, WsError *err);
	int (*list)(Store *s, const char *prefix, StoreListFn fn, void *ctx, WsError *err);
	int (*remove)(Store *s, const char *key, WsError *err);
	void (*free)(Store *s); /* releases everything the handle owns, display included */
} StoreDriver;

struct Store {
	const StoreDriver *driver;
	char *display;
};

/*
 * Helpers for drivers that keep objects as files (local, SFTP), whose
 * temporary files are names starting with ".".
 *
 * store_key_reserved: WS_USAGE when a component of key starts with "." (such
 * a key could never be listed); kind names the repository type in the detail
 * ("local", "SFTP").  store_name_ok: whether a directory entry can be (part
 * of) a key.  store_random_name: len random letters and digits and a NUL
 * (out holds len + 1 bytes), for unique temporary names.
 */
int store_key_reserved(const char *key, const char *kind, WsError *err);
bool store_name_ok(const char *name);
void store_random_name(char *out, size_t len);

/*
 * A file-based driver's list (local, SFTP): store_list_in_temp says whether
 * prefix lies inside a temp name (a directory component starting with "."),
 * where nothing is listed; store_list_walk walks the directories under
 * prefix with dir_walk (util/dirwalk.h) in bytewise key order, read_fn
 * reading one directory, and gives fn each object.  read_fn's ctx is the
 * walk's StoreWalk: its driver is the one given here.
 */
typedef struct StoreWalk {
	void *driver;
	StoreListFn fn;
	void *ctx;
} StoreWalk;

bool store_list_in_temp(const char *prefix);
int store_list_walk(const char *prefix, DirReadFn read_fn, void *driver, StoreListFn fn, void *ctx,
		    WsError *err);

/*
 * Proving an absence, for drivers that keep objects as files (local, SFTP):
 * a file that cannot be opened is "not found" only when its name is missing
 * from a directory that is there (src/store/README.md says why).
 * store_prove_absent looks at the key itself (nothing may be there), then up
 * the key's directories to the first one that exists, which must be a
 * directory (or a link to one).
 *
 * StoreLookFn looks at rel (the key, one of its leading directories, or ""
 * for the root) without following a final symbolic link, or following it:
 * 0 with *node set, or a WsStatus with err filled.  For "" it checks the root
 * the way the driver does at open (an error when it is missing).
 */
typedef enum StoreNode {
	STORE_NODE_ABSENT, /* no such name (or a file higher up is in the way) */
	STORE_NODE_DIR,
	STORE_NODE_FILE,  /* a regular file */
	STORE_NODE_LINK,  /* a symbolic link, when not following */
	STORE_NODE_OTHER, /* a FIFO, socket, device, or a type the server did not say */
} StoreNode;

typedef int (*StoreLookFn)(void *ctx, const char *rel, bool follow, StoreNode *node, WsError *err);

/*
 * WS_NOT_FOUND ("object KEY not found in repository DISPLAY") when key is
 * proven absent; WS_FATAL naming what is in the way; WS_TRANSIENT when the
 * object appeared meanwhile; or the look's own error.
 */
int store_prove_absent(const char *key, const char *display, StoreLookFn look, void *ctx, WsError *err);

/* WS_FATAL: "object KEY in repository DISPLAY is a directory", with a hint. */
int store_dir_at_key(const char *key, const char *display, WsError *err);

/* Local disk: root is an absolute directory path. */
int store_local_open(const char *root, const Config *cfg, int flags, Store **out, WsError *err);

/*
 * SFTP through libssh2 (sftp.c): url is the whole "sftp://user@host[:port]/path"
 * (path absolute).  Settings: sftp-key-file, sftp-key-passphrase,
 * sftp-known-hosts, sftp-host-key-check, sftp-dir-sync, io-timeout.
 */
int store_sftp_open(const char *url, const Config *cfg, int flags, Store **out, WsError *err);

/*
 * S3 through libcurl, signed with SigV4 by s3_sign.c (s3.c): url is the whole
 * "s3://bucket[/prefix]".  Settings: s3-endpoint, s3-region, s3-uri-style,
 * s3-key, s3-key-secret, s3-token, s3-profile, s3-ca-file, s3-allow-http,
 * s3-part-size, io-timeout.  STORE_OPEN_CREATE never creates a bucket.
 */
int store_s3_open(const char *url, const Config *cfg, int flags, Store **out, WsError *err);

#ifdef WALSHIP_TESTING
/*
 * Test build only: make no-overwrite puts of handles opened afterwards use the
 * link()+unlink() fallback, as on a filesystem without RENAME_NOREPLACE.
 */
void store_local_test_force_link_fallback(int on);
#endif

#endif
