/*
 * tarx.c - streaming ustar extraction that trusts nothing in the stream.
 *
 * The directories along the current entry's path are kept open as a stack of descriptors
 * (level 0 is dest).  PostgreSQL sends a directory's entries together, depth first, so
 * consecutive entries mostly share that stack; a directory is opened (or created) with
 * openat(O_DIRECTORY | O_NOFOLLOW) relative to its parent, which is what keeps links,
 * pre-existing or extracted, from redirecting anything.  When the stack leaves a directory
 * it is fsynced if anything was created in it and given its entry's modification time.
 */
#include "util/tarx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/mem.h"

#define TAR_BLOCK      512
#define PATH_CAP       260 /* prefix (155) + '/' + name (100) + NUL */
#define MAX_DEPTH      (PATH_CAP / 2 + 2)
#define WBUF_SIZE      (128 * 1024)
#define PARTIAL_SUFFIX ".walship-partial"

enum {
	ST_HEADER, /* collecting a header block */
	ST_DATA,   /* file data */
	ST_PAD,    /* padding after file data */
	ST_ZERO1,  /* one zero block seen: the next must be the second */
	ST_END,    /* two zero blocks seen: only zero padding may follow */
	ST_DONE,   /* tarx_finish succeeded */
};

typedef struct Level {
	int fd;
	size_t end; /* this directory's path is t->cur[0..end) */
	bool dirty; /* something was created in it: fsync when leaving */
	bool has_mtime;
	int64_t mtime;
} Level;

typedef struct Deferred {
	char *path;  /* relative, normalized */
	char *dir;   /* its directory's relative path */
	char *tmp;   /* base name of the partial file */
	char *final; /* base name */
	int dirfd;   /* its directory, once the partial file exists; else -1 */
	bool placed;
	/*
	 * The directory's entry time: the stream comes back to that directory for the file
	 * (PostgreSQL sends global/pg_control last) and the rename changes it again.
	 */
	bool dir_has_mtime;
	int64_t dir_mtime;
} Deferred;

struct Tarx {
	char *dest;
	char **symlink_dirs;
	size_t nsymlink_dirs;
	char *(*map_symlink)(void *ctx, const char *name, const char *target, bool *skip);
	void *map_ctx;
	Deferred *defs;
	size_t ndefs;
	int uid, gid;
	void (*progress)(void *ctx, uint64_t bytes);
	void *progress_ctx;
	bool allow_unterminated;

	int state;
	bool opened;
	uint64_t offset; /* stream bytes consumed */
	uint64_t entries;
	unsigned char hdr[TAR_BLOCK];
	size_t hdr_len;

	/* the entry being extracted (or the last one) */
	char name[PATH_CAP];
	int fd;
	Deferred *def;
	uint64_t remain;
	size_t pad;
	int64_t mtime;
	unsigned char *wbuf;
	size_t wlen;

	char cur[PATH_CAP];
	Level lv[MAX_DEPTH];
	int depth;

	uint64_t bytes, reported;
	bool failed;
	WsError fail;
};

/* Strip trailing slashes (but not the whole string) from a caller's relative path. */
static char *clean_rel(const char *s)
{
	char *c = xstrdup(s);
	size_t n = strlen(c);
	while (n > 1 && c[n - 1] == '/')
		c[--n] = '\0';
	return c;
}

Tarx *tarx_new(const TarxOptions *opt)
{
	Tarx *t = xcalloc(1, sizeof(*t));
	t->dest = xstrdup(opt->dest);
	if (opt->symlink_dirs != NULL) {
		while (opt->symlink_dirs[t->nsymlink_dirs] != NULL)
			t->nsymlink_dirs++;
		t->symlink_dirs = xcalloc(t->nsymlink_dirs + 1, sizeof(char *));
		for (size_t i = 0; i < t->nsymlink_dirs; i++)
			t->symlink_dirs[i] = clean_rel(opt->symlink_dirs[i]);
	}
	if (opt->deferred != NULL) {
		while (opt->deferred[t->ndefs] != NULL)
			t->ndefs++;
		t->defs = xcalloc(t->ndefs + 1, sizeof(Deferred));
		for (size_t i = 0; i < t->ndefs; i++) {
			Deferred *d = &t->defs[i];
			d->path = clean_rel(opt->deferred[i]);
			const char *base = fs_basename(d->path);
			d->final = xstrdup(base);
			d->dir = xstrndup(d->path, base > d->path ? (size_t)(base - d->path) - 1 : 0);
			d->tmp = xasprintf("%s%s", d->final, PARTIAL_SUFFIX);
			d->dirfd = -1;
		}
	}
	t->map_symlink = opt->map_symlink;
	t->map_ctx = opt->map_ctx;
	t->uid = opt->uid;
	t->gid = opt->gid;
	t->progress = opt->progress;
	t->progress_ctx = opt->progress_ctx;
	t->allow_unterminated = opt->allow_unterminated;
	t->state = ST_HEADER;
	t->fd = -1;
	t->wbuf = xmalloc(WBUF_SIZE);
	return t;
}

uint64_t tarx_bytes(const Tarx *t)
{
	return t->bytes;
}

/* A name from the stream, fit for an error message (control bytes shown as '?'). */
static const char *shown(const char *s, char *buf, size_t cap)
{
	size_t i = 0;
	for (; s[i] != '\0' && i + 1 < cap; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

static bool set_owner(const Tarx *t)
{
	return t->uid >= 0 || t->gid >= 0;
}

static uid_t owner_uid(const Tarx *t)
{
	return t->uid >= 0 ? (uid_t)t->uid : (uid_t)-1;
}

static gid_t owner_gid(const Tarx *t)
{
	return t->gid >= 0 ? (gid_t)t->gid : (gid_t)-1;
}

/* ---- the directory stack ---- */

static int open_dest(Tarx *t, WsError *err)
{
	int fd = open(t->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not open directory \"%s\"", t->dest);
	memset(&t->lv[0], 0, sizeof(Level));
	t->lv[0].fd = fd;
	t->lv[0].end = 0;
	t->depth = 1;
	t->cur[0] = '\0';
	t->opened = true;
	return 0;
}

/* Leave the deepest directory: give it its entry's time, fsync it if written, close it. */
static int leave_level(Tarx *t, WsError *err)
{
	Level *l = &t->lv[t->depth - 1];
	int rc = 0;
	if (l->has_mtime) {
		struct timespec ts[2] = {{.tv_sec = (time_t)l->mtime}, {.tv_sec = (time_t)l->mtime}};
		if (futimens(l->fd, ts) != 0)
			rc = ws_error_errno(err, WS_FATAL, errno,
					    "could not set the time of directory \"%s/%.*s\"", t->dest,
					    (int)l->end, t->cur);
	}
	if (rc == 0 && l->dirty && fsync(l->fd) != 0 && errno != EINVAL)
		rc = ws_error_errno(err, WS_FATAL, errno, "could not fsync directory \"%s/%.*s\"", t->dest,
				    (int)l->end, t->cur);
	close(l->fd);
	l->fd = -1;
	t->depth--;
	return rc;
}

/* Open (creating if missing) directory comp inside the deepest level and push it. */
static int push_level(Tarx *t, const char *path, size_t end, WsError *err)
{
	char comp[PATH_CAP];
	size_t start = t->depth == 1 ? 0 : t->lv[t->depth - 1].end + 1;
	memcpy(comp, path + start, end - start);
	comp[end - start] = '\0';

	Level *parent = &t->lv[t->depth - 1];
	bool created = false;
	int fd = openat(parent->fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (mkdirat(parent->fd, comp, 0700) == 0) {
			created = true;
			parent->dirty = true;
		} else if (errno != EEXIST) {
			return ws_error_errno(err, WS_FATAL, errno, "could not create directory \"%s/%.*s\"",
					      t->dest, (int)end, path);
		}
		fd = openat(parent->fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		char buf[PATH_CAP];
		if (errno == ELOOP || errno == ENOTDIR) {
			ws_error(err, WS_CORRUPT,
				 "could not extract tar entry \"%s\": \"%.*s\" is not a directory",
				 shown(t->name, buf, sizeof(buf)), (int)end, path);
			ws_error_detail(err, "It is a symbolic link or a file; links are never followed.");
			return WS_CORRUPT;
		}
		return ws_error_errno(err, WS_FATAL, errno, "could not open directory \"%s/%.*s\"", t->dest,
				      (int)end, path);
	}
	if (created && fchmod(fd, 0700) != 0) {
		int e = errno;
		close(fd);
		return ws_error_errno(err, WS_FATAL, e, "could not set permissions of directory \"%s/%.*s\"",
				      t->dest, (int)end, path);
	}
	if (created && set_owner(t) && fchown(fd, owner_uid(t), owner_gid(t)) != 0) {
		int e = errno;
		close(fd);
		return ws_error_errno(err, WS_FATAL, e, "could not change owner of directory \"%s/%.*s\"",
				      t->dest, (int)end, path);
	}
	Level *l = &t->lv[t->depth];
	memset(l, 0, sizeof(*l));
	l->fd = fd;
	l->end = end;
	memcpy(t->cur, path, end);
	t->cur[end] = '\0';
	t->depth++;
	return 0;
}

/* Make the deepest level the directory path ("" for dest), opening what is missing. */
static int enter_dir(Tarx *t, const char *path, WsError *err)
{
	size_t plen = strlen(path);
	int keep = 1;
	while (keep < t->depth) {
		size_t end = t->lv[keep].end;
		if (end > plen || memcmp(t->cur, path, end) != 0 || (path[end] != '\0' && path[end] != '/'))
			break;
		keep++;
	}
	while (t->depth > keep) {
		int rc = leave_level(t, err);
		if (rc != 0)
			return rc;
	}
	size_t pos = keep == 1 ? 0 : t->lv[keep - 1].end + 1;
	while (pos < plen) {
		size_t end = pos + strcspn(path + pos, "/");
		if (t->depth >= MAX_DEPTH)
			return ws_error(err, WS_CORRUPT, "tar entry path \"%s\" is too deep", path);
		int rc = push_level(t, path, end, err);
		if (rc != 0)
			return rc;
		pos = end + 1;
	}
	return 0;
}

/* ---- header parsing ---- */

/* A numeric field: octal (space or NUL terminated) or GNU base-256 (non-negative only). */
static bool parse_number(const unsigned char *f, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (f[0] & 0x80) {
		if (f[0] != 0x80)
			return false;
		for (size_t i = 1; i < len; i++) {
			if (v > (UINT64_MAX >> 8))
				return false;
			v = (v << 8) | f[i];
		}
		*out = v;
		return true;
	}
	size_t i = 0;
	while (i < len && f[i] == ' ')
		i++;
	size_t start = i;
	while (i < len && f[i] >= '0' && f[i] <= '7')
		v = (v << 3) | (uint64_t)(f[i++] - '0');
	if (i == start)
		return false;
	while (i < len && (f[i] == ' ' || f[i] == '\0'))
		i++;
	if (i != len)
		return false;
	*out = v;
	return true;
}

/* Copy a NUL-padded string field; false if a NUL is followed by anything but NULs. */
static bool field_string(const unsigned char *f, size_t len, char *out)
{
	size_t n = strnlen((const char *)f, len);
	for (size_t i = n; i < len; i++)
		if (f[i] != '\0')
			return false;
	memcpy(out, f, n);
	out[n] = '\0';
	return true;
}

static bool checksum_ok(const unsigned char *h)
{
	uint64_t stored;
	if (!parse_number(h + 148, 8, &stored))
		return false;
	long usum = 8 * ' ', ssum = 8 * ' ';
	for (int i = 0; i < TAR_BLOCK; i++) {
		if (i >= 148 && i < 156)
			continue;
		usum += h[i];
		ssum += (signed char)h[i];
	}
	return stored == (uint64_t)usum || (ssum >= 0 && stored == (uint64_t)ssum);
}

/*
 * Normalize raw into out: one leading "./" dropped, one trailing '/' dropped (*slash
 * tells), every component checked.  NULL if fine, else why not.
 */
static const char *normalize_name(const char *raw, char *out, bool *slash)
{
	if (raw[0] == '\0')
		return "the name is empty";
	if (strchr(raw, '\n') != NULL)
		return "the name contains a newline";
	if (raw[0] == '/')
		return "the name is absolute";
	const char *p = raw;
	if (strcmp(p, ".") == 0)
		p++;
	else if (p[0] == '.' && p[1] == '/')
		p += 2;
	size_t n = strlen(p);
	*slash = n > 0 && p[n - 1] == '/';
	if (*slash)
		n--;
	memcpy(out, p, n);
	out[n] = '\0';
	if (n == 0)
		return NULL;
	for (const char *c = out;;) {
		size_t clen = strcspn(c, "/");
		if (clen == 0)
			return "the name has an empty component";
		if (clen == 1 && c[0] == '.')
			return "the name has a \".\" component";
		if (clen == 2 && c[0] == '.' && c[1] == '.')
			return "the name has a \"..\" component";
		if (c[clen] == '\0')
			break;
		c += clen + 1;
	}
	return NULL;
}

static int refuse(Tarx *t, const char *raw, const char *why, WsError *err)
{
	char buf[PATH_CAP];
	ws_error(err, WS_CORRUPT, "refusing tar entry \"%s\": %s", shown(raw, buf, sizeof(buf)), why);
	ws_error_detail(err, "The entry's header starts at byte %llu of the stream.",
			(unsigned long long)(t->offset - TAR_BLOCK));
	return WS_CORRUPT;
}

/* ---- entries ---- */

static Deferred *find_deferred(Tarx *t, const char *name)
{
	for (size_t i = 0; i < t->ndefs; i++)
		if (strcmp(t->defs[i].path, name) == 0)
			return &t->defs[i];
	return NULL;
}

/* Split name into its directory (written into dir) and its last component. */
static const char *split_name(const char *name, char *dir)
{
	const char *slash = strrchr(name, '/');
	if (slash == NULL) {
		dir[0] = '\0';
		return name;
	}
	memcpy(dir, name, (size_t)(slash - name));
	dir[slash - name] = '\0';
	return slash + 1;
}

static int flush_data(Tarx *t, WsError *err)
{
	if (t->wlen == 0)
		return 0;
	if (fs_write_all(t->fd, t->wbuf, t->wlen) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not write file \"%s/%s\"", t->dest,
				      t->name);
	t->bytes += t->wlen;
	t->wlen = 0;
	return 0;
}

static int put_data(Tarx *t, const unsigned char *p, size_t n, WsError *err)
{
	if (t->wlen == 0 && n >= WBUF_SIZE) {
		if (fs_write_all(t->fd, p, n) != 0)
			return ws_error_errno(err, WS_FATAL, errno, "could not write file \"%s/%s\"", t->dest,
					      t->name);
		t->bytes += n;
		return 0;
	}
	while (n > 0) {
		size_t k = WBUF_SIZE - t->wlen < n ? WBUF_SIZE - t->wlen : n;
		memcpy(t->wbuf + t->wlen, p, k);
		t->wlen += k;
		p += k;
		n -= k;
		if (t->wlen == WBUF_SIZE) {
			int rc = flush_data(t, err);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

/* The file's data is complete: write it out, date it, make it durable. */
static int close_file(Tarx *t, WsError *err)
{
	int rc = flush_data(t, err);
	if (rc != 0)
		return rc;
	struct timespec ts[2] = {{.tv_sec = (time_t)t->mtime}, {.tv_sec = (time_t)t->mtime}};
	if (futimens(t->fd, ts) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not set the time of file \"%s/%s\"",
				      t->dest, t->name);
	if (fsync(t->fd) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not fsync file \"%s/%s\"", t->dest,
				      t->name);
	int fd = t->fd;
	t->fd = -1;
	if (close(fd) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not close file \"%s/%s\"", t->dest,
				      t->name);
	return 0;
}

static int exists_error(Tarx *t, const char *what, WsError *err)
{
	char buf[PATH_CAP];
	ws_error(err, WS_CORRUPT, "could not extract tar entry \"%s\": %s already exists",
		 shown(t->name, buf, sizeof(buf)), what);
	ws_error_detail(err, "The stream holds the name twice, or \"%s\" was not empty.", t->dest);
	return WS_CORRUPT;
}

static int start_file(Tarx *t, uint64_t size, WsError *err)
{
	char dir[PATH_CAP];
	const char *base = split_name(t->name, dir);
	int rc = enter_dir(t, dir, err);
	if (rc != 0)
		return rc;
	Level *parent = &t->lv[t->depth - 1];
	Deferred *d = find_deferred(t, t->name);
	const char *create = base;
	if (d != NULL) {
		struct stat st;
		if (d->dirfd >= 0 || fstatat(parent->fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return exists_error(t, "a file of that name", err);
		create = d->tmp;
	}
	int fd = openat(parent->fd, create, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return exists_error(t, "a file, directory or link of that name", err);
		return ws_error_errno(err, WS_FATAL, errno, "could not create file \"%s/%s\"", t->dest,
				      t->name);
	}
	parent->dirty = true;
	t->fd = fd;
	if (d != NULL) {
		d->dirfd = fcntl(parent->fd, F_DUPFD_CLOEXEC, 0);
		if (d->dirfd < 0)
			return ws_error_errno(err, WS_FATAL, errno, "could not duplicate a descriptor");
	}
	t->def = d;
	if (fchmod(fd, 0600) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not set permissions of file \"%s/%s\"",
				      t->dest, t->name);
	if (set_owner(t) && fchown(fd, owner_uid(t), owner_gid(t)) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not change owner of file \"%s/%s\"",
				      t->dest, t->name);
	t->remain = size;
	t->pad = (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
	if (size > 0) {
		t->state = ST_DATA;
		return 0;
	}
	t->state = t->pad > 0 ? ST_PAD : ST_HEADER;
	return close_file(t, err);
}

static bool symlink_allowed(const Tarx *t, const char *dir)
{
	for (size_t i = 0; i < t->nsymlink_dirs; i++)
		if (strcmp(t->symlink_dirs[i], dir) == 0)
			return true;
	return false;
}

static int make_symlink(Tarx *t, const char *raw_target, WsError *err)
{
	char dir[PATH_CAP], buf[PATH_CAP];
	const char *base = split_name(t->name, dir);
	if (!symlink_allowed(t, dir)) {
		ws_error(err, WS_CORRUPT, "refusing tar entry \"%s\": symbolic links are not expected there",
			 shown(t->name, buf, sizeof(buf)));
		char list[512] = "";
		for (size_t i = 0; i < t->nsymlink_dirs; i++) {
			size_t used = strlen(list);
			snprintf(list + used, sizeof(list) - used, "%s\"%s\"", i > 0 ? ", " : "",
				 t->symlink_dirs[i]);
		}
		if (t->nsymlink_dirs > 0)
			ws_error_detail(err, "Symbolic links are accepted only directly inside %s.", list);
		else
			ws_error_detail(err, "No symbolic links are expected in this archive.");
		return WS_CORRUPT;
	}
	bool skip = false;
	char *mapped = NULL;
	if (t->map_symlink != NULL)
		mapped = t->map_symlink(t->map_ctx, t->name, raw_target, &skip);
	int rc = 0;
	if (skip)
		goto done;
	rc = enter_dir(t, dir, err);
	if (rc != 0)
		goto done;
	Level *parent = &t->lv[t->depth - 1];
	const char *target = mapped != NULL ? mapped : raw_target;
	if (symlinkat(target, parent->fd, base) != 0) {
		if (errno == EEXIST)
			rc = exists_error(t, "a file, directory or link of that name", err);
		else
			rc = ws_error_errno(err, WS_FATAL, errno, "could not create symbolic link \"%s/%s\"",
					    t->dest, t->name);
		goto done;
	}
	parent->dirty = true;
	struct timespec ts[2] = {{.tv_sec = (time_t)t->mtime}, {.tv_sec = (time_t)t->mtime}};
	if (utimensat(parent->fd, base, ts, AT_SYMLINK_NOFOLLOW) != 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not set the time of symbolic link \"%s/%s\"",
				    t->dest, t->name);
		goto done;
	}
	if (set_owner(t) && fchownat(parent->fd, base, owner_uid(t), owner_gid(t), AT_SYMLINK_NOFOLLOW) != 0)
		rc = ws_error_errno(err, WS_FATAL, errno, "could not change owner of symbolic link \"%s/%s\"",
				    t->dest, t->name);
done:
	free(mapped);
	return rc;
}

static int make_dir(Tarx *t, WsError *err)
{
	if (t->name[0] == '\0')
		return 0; /* "./": dest itself */
	int rc = enter_dir(t, t->name, err);
	if (rc != 0)
		return rc;
	t->lv[t->depth - 1].has_mtime = true;
	t->lv[t->depth - 1].mtime = t->mtime;
	for (size_t i = 0; i < t->ndefs; i++) {
		if (strcmp(t->defs[i].dir, t->name) == 0) {
			t->defs[i].dir_has_mtime = true;
			t->defs[i].dir_mtime = t->mtime;
		}
	}
	return 0;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static int do_header(Tarx *t, WsError *err)
{
	const unsigned char *h = t->hdr;
	char raw[PATH_CAP], target[101], name_field[101], prefix[156], why[128];
	bool zero = all_zero(h, TAR_BLOCK);

	if (t->state == ST_ZERO1) {
		if (!zero) {
			ws_error(err, WS_CORRUPT, "tar stream has data after a zero block");
			ws_error_detail(err,
					"A tar archive ends with two zero blocks; the block at byte %llu is "
					"not zero.",
					(unsigned long long)(t->offset - TAR_BLOCK));
			return WS_CORRUPT;
		}
		t->state = ST_END;
		return 0;
	}
	if (zero) {
		t->state = ST_ZERO1;
		return 0;
	}

	/* The name first, so that every complaint can name the entry. */
	bool name_ok = field_string(h, 100, name_field);
	if (!name_ok)
		strcpy(name_field, "(a name with a NUL byte)");
	bool posix = memcmp(h + 257,
			    "ustar\0"
			    "00",
			    8) == 0;
	bool gnu = memcmp(h + 257, "ustar  \0", 8) == 0;
	if (!checksum_ok(h)) {
		ws_error(err, WS_CORRUPT, "tar header checksum mismatch in entry \"%s\"",
			 shown(name_field, raw, sizeof(raw)));
		ws_error_detail(err, "The header starts at byte %llu of the stream.",
				(unsigned long long)(t->offset - TAR_BLOCK));
		return WS_CORRUPT;
	}
	if (!posix && !gnu)
		return refuse(t, name_field, "not a ustar header", err);
	if (!name_ok)
		return refuse(t, name_field, "the name contains a NUL byte", err);
	strcpy(raw, name_field);
	if (posix && h[345] != '\0') {
		if (!field_string(h + 345, 155, prefix))
			return refuse(t, name_field, "the name prefix contains a NUL byte", err);
		snprintf(raw, sizeof(raw), "%s/%s", prefix, name_field);
	}

	char type = (char)h[156];
	switch (type) {
	case '0':
	case '\0':
	case '5':
	case '2':
		break;
	case '1':
		return refuse(t, raw, "hard links are not supported", err);
	case '3':
	case '4':
		return refuse(t, raw, "device files are not supported", err);
	case '6':
		return refuse(t, raw, "FIFOs are not supported", err);
	case 'L':
	case 'K':
		return refuse(t, raw, "GNU long names are not supported (PostgreSQL never writes them)", err);
	case 'x':
	case 'g':
		return refuse(t, raw, "pax extended headers are not supported (PostgreSQL never writes them)",
			      err);
	default:
		if (type > ' ' && type < 0x7f)
			snprintf(why, sizeof(why), "entry type '%c' is not supported", type);
		else
			snprintf(why, sizeof(why), "entry type %d is not supported",
				 (int)(unsigned char)type);
		return refuse(t, raw, why, err);
	}

	bool slash = false;
	const char *bad = normalize_name(raw, t->name, &slash);
	if (bad != NULL) {
		t->name[0] = '\0';
		return refuse(t, raw, bad, err);
	}
	uint64_t size, mtime;
	if (!parse_number(h + 124, 12, &size) || size > INT64_MAX)
		return refuse(t, raw, "the size field is invalid", err);
	if (!parse_number(h + 136, 12, &mtime) || mtime > INT64_MAX)
		return refuse(t, raw, "the modification time field is invalid", err);
	t->mtime = (int64_t)mtime;
	t->entries++;

	if (type == '5' || type == '2') {
		if (size != 0)
			return refuse(t, raw, "a directory or link entry has a non-zero size", err);
		if (type == '5')
			return make_dir(t, err);
		if (t->name[0] == '\0')
			return refuse(t, raw, "the name is empty", err);
		if (!field_string(h + 157, 100, target))
			return refuse(t, raw, "the link target contains a NUL byte", err);
		if (target[0] == '\0')
			return refuse(t, raw, "the link target is empty", err);
		if (strchr(target, '\n') != NULL)
			return refuse(t, raw, "the link target contains a newline", err);
		return make_symlink(t, target, err);
	}
	if (slash || t->name[0] == '\0')
		return refuse(t, raw, "a file entry's name must not end with a slash", err);
	return start_file(t, size, err);
}

/* ---- the writer ---- */

static int feed(Tarx *t, const unsigned char *buf, size_t len, WsError *err)
{
	int rc;
	if (!t->opened && (rc = open_dest(t, err)) != 0)
		return rc;
	while (len > 0) {
		size_t k;
		switch (t->state) {
		case ST_HEADER:
		case ST_ZERO1:
			k = TAR_BLOCK - t->hdr_len < len ? TAR_BLOCK - t->hdr_len : len;
			memcpy(t->hdr + t->hdr_len, buf, k);
			t->hdr_len += k;
			t->offset += k;
			if (t->hdr_len == TAR_BLOCK) {
				t->hdr_len = 0;
				if ((rc = do_header(t, err)) != 0)
					return rc;
			}
			break;
		case ST_DATA:
			k = t->remain < len ? (size_t)t->remain : len;
			if ((rc = put_data(t, buf, k, err)) != 0)
				return rc;
			t->remain -= k;
			t->offset += k;
			if (t->remain == 0) {
				t->state = t->pad > 0 ? ST_PAD : ST_HEADER;
				if ((rc = close_file(t, err)) != 0)
					return rc;
			}
			break;
		case ST_PAD:
			k = t->pad < len ? t->pad : len;
			t->pad -= k;
			t->offset += k;
			if (t->pad == 0)
				t->state = ST_HEADER;
			break;
		case ST_END:
			k = len;
			if (!all_zero(buf, len)) {
				ws_error(err, WS_CORRUPT,
					 "tar stream has data after its end-of-archive marker");
				ws_error_detail(err,
						"Non-zero bytes follow the two zero blocks near byte %llu.",
						(unsigned long long)t->offset);
				return WS_CORRUPT;
			}
			t->offset += k;
			break;
		default:
			return ws_error(err, WS_FATAL,
					"tar stream continues after its extraction was finished");
		}
		buf += k;
		len -= k;
	}
	return 0;
}

static int record(Tarx *t, int rc, WsError *err)
{
	if (rc != 0) {
		t->failed = true;
		if (err != NULL)
			*err = t->fail;
	}
	return rc;
}

int tarx_write(void *tarx, const unsigned char *buf, size_t len, WsError *err)
{
	Tarx *t = tarx;
	if (t->failed) {
		if (err != NULL)
			*err = t->fail;
		return t->fail.cls;
	}
	int rc = record(t, feed(t, buf, len, &t->fail), err);
	if (t->progress != NULL && t->bytes != t->reported) {
		t->reported = t->bytes;
		t->progress(t->progress_ctx, t->bytes);
	}
	return rc;
}

/* Move a deferred file into place without replacing anything. */
static int place_deferred(Tarx *t, Deferred *d, WsError *err)
{
	int rc = renameat2(d->dirfd, d->tmp, d->dirfd, d->final, RENAME_NOREPLACE);
	if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
		rc = linkat(d->dirfd, d->tmp, d->dirfd, d->final, 0);
		if (rc == 0)
			rc = unlinkat(d->dirfd, d->tmp, 0);
	}
	if (rc != 0) {
		if (errno == EEXIST) {
			ws_error(err, WS_CORRUPT, "could not put \"%s/%s\" in place: it already exists",
				 t->dest, d->path);
			return WS_CORRUPT;
		}
		return ws_error_errno(err, WS_FATAL, errno, "could not rename \"%s/%s%s\" to \"%s/%s\"",
				      t->dest, d->path, PARTIAL_SUFFIX, t->dest, d->path);
	}
	d->placed = true;
	if (d->dir_has_mtime) {
		struct timespec ts[2] = {{.tv_sec = (time_t)d->dir_mtime}, {.tv_sec = (time_t)d->dir_mtime}};
		if (futimens(d->dirfd, ts) != 0)
			return ws_error_errno(err, WS_FATAL, errno,
					      "could not set the time of the directory of \"%s/%s\"", t->dest,
					      d->path);
	}
	if (fsync(d->dirfd) != 0 && errno != EINVAL)
		return ws_error_errno(err, WS_FATAL, errno, "could not fsync the directory of \"%s/%s\"",
				      t->dest, d->path);
	close(d->dirfd);
	d->dirfd = -1;
	return 0;
}

static int finish(Tarx *t, WsError *err)
{
	char buf[PATH_CAP];
	int rc;
	if (!t->opened && (rc = open_dest(t, err)) != 0)
		return rc;

	bool ok = t->state == ST_END;
	if (t->allow_unterminated && t->hdr_len == 0 &&
	    ((t->state == ST_HEADER && t->entries > 0) || t->state == ST_ZERO1))
		ok = true;
	if (!ok) {
		switch (t->state) {
		case ST_DATA:
		case ST_PAD:
			ws_error(err, WS_CORRUPT, "tar stream ended inside entry \"%s\"",
				 shown(t->name, buf, sizeof(buf)));
			ws_error_detail(err,
					"%llu bytes of its data and %zu of padding are missing; the stream "
					"is truncated.",
					(unsigned long long)t->remain, t->pad);
			break;
		case ST_HEADER:
			if (t->hdr_len > 0) {
				ws_error(err, WS_CORRUPT, "tar stream ended inside a header block");
				ws_error_detail(err, "The stream is truncated after %llu bytes.",
						(unsigned long long)t->offset);
			} else if (t->entries == 0) {
				ws_error(err, WS_CORRUPT, "tar stream is empty");
			} else {
				ws_error(err, WS_CORRUPT,
					 "tar stream ended without its end-of-archive marker");
				ws_error_detail(
					err,
					"The stream stops after entry \"%s\" (%llu bytes) without the two "
					"zero blocks that end an archive; it is probably truncated.",
					shown(t->name, buf, sizeof(buf)), (unsigned long long)t->offset);
			}
			break;
		case ST_ZERO1:
			ws_error(err, WS_CORRUPT, "tar stream ended inside its end-of-archive marker");
			ws_error_detail(err, "The stream is truncated after %llu bytes.",
					(unsigned long long)t->offset);
			break;
		default:
			ws_error(err, WS_FATAL, "tar extraction cannot be finished in its state");
			break;
		}
		return WS_CORRUPT;
	}

	while (t->depth > 1)
		if ((rc = leave_level(t, err)) != 0)
			return rc;
	for (size_t i = 0; i < t->ndefs; i++) {
		Deferred *d = &t->defs[i];
		if (d->dirfd >= 0 && !d->placed && (rc = place_deferred(t, d, err)) != 0)
			return rc;
	}
	if (t->lv[0].dirty && fsync(t->lv[0].fd) != 0 && errno != EINVAL)
		return ws_error_errno(err, WS_FATAL, errno, "could not fsync directory \"%s\"", t->dest);
	t->lv[0].dirty = false;
	t->state = ST_DONE;
	return 0;
}

int tarx_finish(Tarx *t, WsError *err)
{
	if (t->state == ST_DONE)
		return 0;
	if (t->failed) {
		if (err != NULL)
			*err = t->fail;
		return t->fail.cls;
	}
	return record(t, finish(t, &t->fail), err);
}

void tarx_free(Tarx *t)
{
	if (t == NULL)
		return;
	if (t->fd >= 0)
		close(t->fd);
	for (int i = 0; i < t->depth; i++)
		if (t->lv[i].fd >= 0)
			close(t->lv[i].fd);
	for (size_t i = 0; i < t->ndefs; i++) {
		Deferred *d = &t->defs[i];
		if (d->dirfd >= 0) {
			if (!d->placed)
				unlinkat(d->dirfd, d->tmp, 0);
			close(d->dirfd);
		}
		free(d->path);
		free(d->dir);
		free(d->tmp);
		free(d->final);
	}
	free(t->defs);
	for (size_t i = 0; i < t->nsymlink_dirs; i++)
		free(t->symlink_dirs[i]);
	free(t->symlink_dirs);
	free(t->wbuf);
	free(t->dest);
	free(t);
}
