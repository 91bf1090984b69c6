/*
 * store.c - the storage interface's single entry point: picks the driver a
 * repository URL names and checks every key before a driver sees it, so that
 * no driver can be asked to step outside its root.
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "store/driver.h"
#include "util/mem.h"

#define STORE_URL_HINT "use /absolute/path or file:///absolute/path"

static bool key_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == '@' || c == '-';
}

/*
 * Check the rules on key, where a partial last component is allowed when
 * is_prefix (a listing prefix may end with '/' or in the middle of a name).
 */
static int key_check(const char *key, bool is_prefix, WsError *err)
{
	const char *what = is_prefix ? "prefix" : "key";
	size_t len = strlen(key);

	if (len == 0) {
		if (is_prefix)
			return 0;
		return ws_error(err, WS_USAGE, "invalid object key \"\": empty");
	}
	if (len >= STORE_KEY_MAX)
		return ws_error(err, WS_USAGE, "invalid object %s \"%.64s...\": longer than %d characters",
				what, key, STORE_KEY_MAX - 1);
	if (key[0] == '/')
		return ws_error(err, WS_USAGE, "invalid object %s \"%s\": must be relative", what, key);

	const char *comp = key;
	for (;;) {
		const char *end = strchr(comp, '/');
		size_t clen = end ? (size_t)(end - comp) : strlen(comp);

		if (end == NULL && clen == 0) {
			/* Trailing '/': a key never ends so, a prefix may. */
			if (is_prefix)
				return 0;
			return ws_error(err, WS_USAGE, "invalid object key \"%s\": ends with \"/\"", key);
		}
		if (clen == 0)
			return ws_error(err, WS_USAGE, "invalid object %s \"%s\": empty path component", what,
					key);
		/* A partial "." or ".." at the end of a prefix can only match longer names. */
		if ((end != NULL || !is_prefix) &&
		    ((clen == 1 && comp[0] == '.') || (clen == 2 && comp[0] == '.' && comp[1] == '.')))
			return ws_error(err, WS_USAGE, "invalid object %s \"%s\": \"%.*s\" component", what,
					key, (int)clen, comp);
		for (size_t i = 0; i < clen; i++) {
			if (!key_char_ok(comp[i])) {
				unsigned char c = (unsigned char)comp[i];
				if (c >= 0x20 && c < 0x7f)
					ws_error(err, WS_USAGE,
						 "invalid object %s \"%s\": character \"%c\" not allowed",
						 what, key, c);
				else
					ws_error(err, WS_USAGE, "invalid object %s: byte 0x%02x not allowed",
						 what, c);
				ws_error_detail(
					err, "Keys are made of letters, digits, \".\", \"_\", \"@\", \"-\" "
					     "and \"/\" between components.");
				return WS_USAGE;
			}
		}
		if (end == NULL)
			return 0;
		comp = end + 1;
	}
}

int store_key_reserved(const char *key, const char *kind, WsError *err)
{
	for (size_t i = 0; key[i] != '\0'; i++) {
		if (key[i] == '.' && (i == 0 || key[i - 1] == '/')) {
			ws_error(err, WS_USAGE, "invalid object key \"%s\": a component starts with \".\"",
				 key);
			ws_error_detail(err,
					"Names starting with \".\" are reserved for temporary files in %s %s "
					"repository.",
					kind[0] == 'S' ? "an" : "a", kind);
			return WS_USAGE;
		}
	}
	return 0;
}

bool store_name_ok(const char *name)
{
	for (const char *p = name; *p; p++) {
		if (!key_char_ok(*p))
			return false;
	}
	return true;
}

void store_random_name(char *out, size_t len)
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[32];
	if (len > sizeof(rnd))
		len = sizeof(rnd);
	if (getrandom(rnd, len, GRND_NONBLOCK) != (ssize_t)len) {
		static unsigned long counter;
		/* Only uniqueness matters (O_EXCL or a no-overwrite rename catch collisions). */
		unsigned long v = (unsigned long)getpid() * 2654435761UL ^ (unsigned long)time(NULL) ^
				  ++counter * 40503UL;
		for (size_t i = 0; i < len; i++, v >>= 5)
			rnd[i] = (unsigned char)v;
	}
	for (size_t i = 0; i < len; i++)
		out[i] = chars[rnd[i] % (sizeof(chars) - 1)];
	out[len] = '\0';
}

bool store_list_in_temp(const char *prefix)
{
	const char *slash = strrchr(prefix, '/');
	size_t dirlen = slash ? (size_t)(slash - prefix) + 1 : 0;
	for (size_t i = 0; i < dirlen; i++) {
		if (prefix[i] == '.' && (i == 0 || prefix[i - 1] == '/'))
			return true;
	}
	return false;
}

/* dir_walk's visitor: one object for the caller of store_list (DirFileFn). */
static int walk_file(void *ctx, const char *key, uint64_t size, int64_t mtime, WsError *err)
{
	const StoreWalk *w = ctx;
	StoreStat st = {.size = size, .mtime = mtime};
	return w->fn(w->ctx, key, &st, err);
}

int store_list_walk(const char *prefix, DirReadFn read_fn, void *driver, StoreListFn fn, void *ctx,
		    WsError *err)
{
	char key[STORE_KEY_MAX];
	const char *slash = strrchr(prefix, '/');
	size_t dirlen = slash ? (size_t)(slash - prefix) + 1 : 0;

	/* store_list checked the length: dirlen < STORE_KEY_MAX. */
	memcpy(key, prefix, dirlen);
	key[dirlen] = '\0';
	const char *filter = prefix[dirlen] ? prefix + dirlen : NULL;
	StoreWalk w = {driver, fn, ctx};
	return dir_walk(key, dirlen, filter, read_fn, walk_file, &w, err);
}

int store_dir_at_key(const char *key, const char *display, WsError *err)
{
	ws_error(err, WS_FATAL, "object \"%s\" in repository \"%s\" is a directory", key, display);
	ws_error_hint(err,
		      "walship never makes a directory at an object's name: move it aside, then run walship "
		      "verify.");
	return WS_FATAL;
}

/* What sits at key itself although opening it failed as if nothing were there. */
static int at_key(const char *key, const char *display, StoreNode node, WsError *err)
{
	switch (node) {
	case STORE_NODE_DIR:
		return store_dir_at_key(key, display, err);
	case STORE_NODE_LINK:
		ws_error(err, WS_FATAL, "object \"%s\" in repository \"%s\" is a symbolic link", key,
			 display);
		ws_error_hint(err,
			      "walship never makes symbolic links: move it aside, then run walship verify.");
		return WS_FATAL;
	case STORE_NODE_FILE:
		ws_error(err, WS_TRANSIENT,
			 "object \"%s\" appeared in repository \"%s\" while it was looked up", key, display);
		ws_error_hint(err, "The operation can be tried again.");
		return WS_TRANSIENT;
	default:
		return ws_error(err, WS_FATAL, "object \"%s\" in repository \"%s\" is not a regular file",
				key, display);
	}
}

/* dir, a leading directory of key, is not one: found is what is there (ABSENT: a link to nothing). */
static int in_the_way(const char *key, const char *display, const char *dir, StoreNode found, WsError *err)
{
	if (found == STORE_NODE_ABSENT) {
		ws_error(err, WS_FATAL,
			 "could not find out whether \"%s\" is in repository \"%s\": \"%s\" is a symbolic "
			 "link "
			 "whose target does not exist",
			 key, display, dir);
		ws_error_hint(
			err,
			"If it stands for a volume or a directory that is not mounted, mount it.  walship "
			"answers \"not found\" only for a file missing from a directory that is there.");
		return WS_FATAL;
	}
	ws_error(err, WS_FATAL,
		 "could not find out whether \"%s\" is in repository \"%s\": \"%s\" is not a "
		 "directory",
		 key, display, dir);
	ws_error_hint(
		err,
		"walship keeps objects below \"%s\" in a directory: something else was put there.  Move "
		"it aside, then run walship verify.",
		dir);
	return WS_FATAL;
}

int store_prove_absent(const char *key, const char *display, StoreLookFn look, void *ctx, WsError *err)
{
	StoreNode node = STORE_NODE_ABSENT;
	int rc = look(ctx, key, false, &node, err);
	if (rc != 0)
		return rc;
	if (node != STORE_NODE_ABSENT)
		return at_key(key, display, node, err);

	/* Up the key's directories to the first that exists; "" is the root, which the look checks. */
	char *dir = xstrdup(key);
	for (;;) {
		char *slash = strrchr(dir, '/');
		if (slash != NULL)
			*slash = '\0';
		else
			dir[0] = '\0';
		rc = look(ctx, dir, false, &node, err);
		if (rc == 0 && node == STORE_NODE_LINK) {
			/* A link to a directory (a volume mounted elsewhere) is a directory; to nothing, it
			 * is not. */
			rc = look(ctx, dir, true, &node, err);
			if (rc == 0 && node != STORE_NODE_DIR)
				rc = in_the_way(key, display, dir, node, err);
		} else if (rc == 0 && node == STORE_NODE_ABSENT && dir[0] != '\0') {
			continue;
		} else if (rc == 0 && node != STORE_NODE_DIR) {
			rc = dir[0] != '\0' ? in_the_way(key, display, dir, node, err)
					    : ws_error(err, WS_FATAL, "repository \"%s\" is not a directory",
						       display);
		}
		break;
	}
	free(dir);
	if (rc != 0)
		return rc;
	return ws_error(err, WS_NOT_FOUND, "object \"%s\" not found in repository \"%s\"", key, display);
}

int store_key_check(const char *key, WsError *err)
{
	if (key == NULL)
		return ws_error(err, WS_USAGE, "invalid object key: none given");
	return key_check(key, false, err);
}

bool store_url_overlaps(const char *url)
{
	return url != NULL && strncmp(url, "s3://", 5) == 0;
}

const char *store_url_local_path(const char *url)
{
	if (url != NULL && strncmp(url, "file://", 7) == 0)
		return url + 7;
	return url != NULL && url[0] == '/' ? url : NULL;
}

int store_open(const char *url, const Config *cfg, int flags, Store **out, WsError *err)
{
	*out = NULL;
	if (url == NULL || url[0] == '\0') {
		ws_error(err, WS_USAGE, "no repository given");
		ws_error_hint(err, "Set repo in the configuration file or pass --repo; ." STORE_URL_HINT);
		return WS_USAGE;
	}

	const char *path = store_url_local_path(url);
	if (path != NULL) {
		if (path[0] != '/') {
			ws_error(err, WS_USAGE, "repository path must be absolute");
			ws_error_detail(err, "The repository is \"%s\".", url);
			ws_error_hint(err, STORE_URL_HINT);
			return WS_USAGE;
		}
		return store_local_open(path, cfg, flags, out, err);
	}

	if (strncmp(url, "sftp://", 7) == 0)
		return store_sftp_open(url, cfg, flags, out, err);
	if (strncmp(url, "s3://", 5) == 0)
		return store_s3_open(url, cfg, flags, out, err);

	const char *scheme_end = strstr(url, "://");
	if (scheme_end == NULL) {
		/* No scheme at all: taken as a relative path. */
		ws_error(err, WS_USAGE, "repository path must be absolute");
		ws_error_detail(err, "The repository is \"%s\".", url);
		ws_error_hint(err, STORE_URL_HINT);
		return WS_USAGE;
	}
	ws_error(err, WS_USAGE, "unrecognized repository \"%s\"", url);
	ws_error_hint(
		err, "A repository is /absolute/path, file:///absolute/path, sftp://user@host[:port]/path or "
		     "s3://bucket[/prefix].");
	return WS_USAGE;
}

void store_free(Store *s)
{
	if (s == NULL)
		return;
	s->driver->free(s);
}

const char *store_display(const Store *s)
{
	return s->display;
}

int store_put(Store *s, const char *key, WsReader src, void *src_ctx, bool no_overwrite, WsError *err)
{
	int rc = store_key_check(key, err);
	if (rc != 0)
		return rc;
	return s->driver->put(s, key, src, src_ctx, no_overwrite, err);
}

int store_get(Store *s, const char *key, uint64_t offset, uint64_t length, WsWriter sink, void *sink_ctx,
	      WsError *err)
{
	int rc = store_key_check(key, err);
	if (rc != 0)
		return rc;
	return s->driver->get(s, key, offset, length, sink, sink_ctx, err);
}

int store_stat(Store *s, const char *key, StoreStat *st, WsError *err)
{
	int rc = store_key_check(key, err);
	if (rc != 0)
		return rc;
	return s->driver->stat(s, key, st, err);
}

int store_list(Store *s, const char *prefix, StoreListFn fn, void *ctx, WsError *err)
{
	if (prefix == NULL)
		prefix = "";
	int rc = key_check(prefix, true, err);
	if (rc != 0)
		return rc;
	return s->driver->list(s, prefix, fn, ctx, err);
}

int store_remove(Store *s, const char *key, WsError *err)
{
	int rc = store_key_check(key, err);
	if (rc != 0)
		return rc;
	return s->driver->remove(s, key, err);
}
