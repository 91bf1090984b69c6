/*
 * test_tarx.c - the tar extractor rebuilds what PostgreSQL's tar streams hold, refuses
 * hostile streams without writing outside its directory, and notices truncation.
 *
 * Archives are built in memory by a small writer that formats headers exactly as
 * PostgreSQL's tarCreateHeader does (src/port/tar.c).  One test also takes a real base
 * backup with PostgreSQL 15 and compares the extraction with GNU tar's; it runs only as
 * root with /usr/lib/postgresql/15/bin present, and is skipped otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/mem.h"
#include "util/tarx.h"

#define MTIME     1700000000
#define DIR_MTIME 1600000000
#define PG_BIN    "/usr/lib/postgresql/15/bin"

/* ---- an in-memory tar writer ---- */

typedef struct TarBuf {
	unsigned char *p;
	size_t len, cap;
} TarBuf;

static void tb_grow(TarBuf *b, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 4096;
		b->p = xrealloc(b->p, b->cap);
	}
}

static void tb_append(TarBuf *b, const void *data, size_t n)
{
	tb_grow(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void tb_zero(TarBuf *b, size_t n)
{
	tb_grow(b, n);
	memset(b->p + b->len, 0, n);
	b->len += n;
}

/* PostgreSQL's print_tar_number: octal with a trailing space, else \200 and base-256. */
static void tar_number(unsigned char *f, size_t len, uint64_t v)
{
	if (v < ((uint64_t)1 << ((len - 1) * 3))) {
		f[len - 1] = ' ';
		for (size_t i = len - 1; i-- > 0;) {
			f[i] = (unsigned char)('0' + (v & 7));
			v >>= 3;
		}
	} else {
		f[0] = 0x80;
		for (size_t i = len; i-- > 1;) {
			f[i] = (unsigned char)(v & 0xff);
			v >>= 8;
		}
	}
}

static void tar_checksum(unsigned char *h)
{
	unsigned sum = 8 * ' ';
	for (int i = 0; i < 512; i++)
		if (i < 148 || i >= 156)
			sum += h[i];
	tar_number(h + 148, 8, sum);
}

/*
 * Append a header as tarCreateHeader writes it; name_len bytes of name go into the name
 * field verbatim (callers add the '/' PostgreSQL puts after directories and links).
 * Returns the header's offset so a test can alter it and call tar_checksum again.
 */
static size_t tar_header_raw(TarBuf *b, const char *name, size_t name_len, char type, uint64_t size,
			     const char *link, uint64_t mtime)
{
	size_t at = b->len;
	tb_zero(b, 512);
	unsigned char *h = b->p + at;
	memcpy(h, name, name_len > 100 ? 100 : name_len);
	tar_number(h + 100, 8, type == '5' || type == '2' ? 0700 : 0600);
	tar_number(h + 108, 8, 101);
	tar_number(h + 116, 8, 104);
	tar_number(h + 124, 12, size);
	tar_number(h + 136, 12, mtime);
	h[156] = (unsigned char)type;
	if (link != NULL)
		memcpy(h + 157, link, strlen(link) > 100 ? 100 : strlen(link));
	memcpy(h + 257,
	       "ustar\0"
	       "00",
	       8);
	strcpy((char *)h + 265, "postgres");
	strcpy((char *)h + 297, "postgres");
	tar_number(h + 329, 8, 0);
	tar_number(h + 337, 8, 0);
	tar_checksum(h);
	return at;
}

static size_t tar_header(TarBuf *b, const char *name, char type, uint64_t size, const char *link)
{
	return tar_header_raw(b, name, strlen(name), type, size, link, MTIME);
}

static void tar_file(TarBuf *b, const char *name, const void *data, size_t size)
{
	tar_header(b, name, '0', size, NULL);
	tb_append(b, data, size);
	tb_zero(b, (512 - size % 512) % 512);
}

static void tar_text(TarBuf *b, const char *name, const char *text)
{
	tar_file(b, name, text, strlen(text));
}

static void tar_dir(TarBuf *b, const char *name)
{
	char *n = xasprintf("%s/", name);
	tar_header_raw(b, n, strlen(n), '5', 0, NULL, DIR_MTIME);
	free(n);
}

static void tar_symlink(TarBuf *b, const char *name, const char *target)
{
	char *n = xasprintf("%s/", name);
	tar_header(b, n, '2', 0, target);
	free(n);
}

static void tar_end(TarBuf *b)
{
	tb_zero(b, 1024);
}

/* ---- fixture: a temp dir holding dest/ and outside/ ---- */

typedef struct Fix {
	char root[64];
	char *dest;
	char *outside;
} Fix;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	Fix *f = xcalloc(1, sizeof(*f));
	strcpy(f->root, "/tmp/walship-test-tarx-XXXXXX");
	if (mkdtemp(f->root) == NULL) {
		free(f);
		return -1;
	}
	f->dest = xasprintf("%s/dest", f->root);
	f->outside = xasprintf("%s/outside", f->root);
	if (mkdir(f->dest, 0700) != 0 || mkdir(f->outside, 0700) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	Fix *f = *state;
	rm_rf(f->root);
	free(f->dest);
	free(f->outside);
	free(f);
	return 0;
}

/* Empty dest again for the next round of a test. */
static void reset_dest(Fix *f)
{
	rm_rf(f->dest);
	assert_int_equal(mkdir(f->dest, 0700), 0);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static bool exists(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	struct stat st;
	bool r = lstat(p, &st) == 0;
	free(p);
	return r;
}

static struct stat lstat_rel(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	struct stat st;
	if (lstat(p, &st) != 0)
		fail_msg("\"%s\" is missing: %s", p, strerror(errno));
	free(p);
	return st;
}

static char *read_rel(const char *dir, const char *rel, size_t *len)
{
	char *p = xasprintf("%s/%s", dir, rel);
	FILE *fp = fopen(p, "rb");
	if (fp == NULL) {
		fail_msg("cannot open \"%s\": %s", p, strerror(errno));
		return NULL; /* not reached: fail_msg ends the test */
	}
	size_t cap = 1 << 16, n = 0;
	char *buf = xmalloc(cap + 1);
	size_t k;
	while ((k = fread(buf + n, 1, cap - n, fp)) > 0) {
		n += k;
		if (n == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
	}
	fclose(fp);
	free(p);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

static TarxOptions default_opts(const char *dest)
{
	static const char *const links[] = {"pg_tblspc", NULL};
	static const char *const deferred[] = {"global/pg_control", NULL};
	TarxOptions o = {0};
	o.dest = dest;
	o.symlink_dirs = links;
	o.deferred = deferred;
	o.uid = -1;
	o.gid = -1;
	return o;
}

/* Feed data in pieces of chunk bytes and finish; the first failure's status. */
static int extract(const TarxOptions *o, const unsigned char *data, size_t len, size_t chunk, WsError *err)
{
	Tarx *t = tarx_new(o);
	int rc = 0;
	for (size_t off = 0; off < len && rc == 0; off += chunk)
		rc = tarx_write(t, data + off, len - off < chunk ? len - off : chunk, err);
	if (rc == 0)
		rc = tarx_finish(t, err);
	tarx_free(t);
	return rc;
}

/* ---- what PostgreSQL sends ---- */

static char long_name[100]; /* 99 bytes: the longest name PostgreSQL writes */

/* A stream shaped like a BASE_BACKUP main tar: pg_control last, "./" names, links. */
static void pg_like_archive(TarBuf *b, unsigned char *block, size_t block_len)
{
	tar_text(b, "backup_label", "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n");
	tar_text(b, "tablespace_map", "");
	tar_dir(b, "pg_stat");
	tar_text(b, "PG_VERSION", "15\n");
	tar_dir(b, "global");
	tar_file(b, "global/1262", block, block_len);
	tar_file(b, "global/6100", "", 0);
	tar_dir(b, "pg_wal");
	tar_dir(b, "./pg_wal/archive_status");
	tar_dir(b, "base");
	tar_dir(b, "base/1");
	tar_file(b, "base/1/112", block, 513);
	memset(long_name, 'n', 99);
	memcpy(long_name, "base/1/", 7);
	long_name[99] = '\0';
	tar_text(b, long_name, "long");
	tar_dir(b, "pg_tblspc");
	tar_symlink(b, "pg_tblspc/16384", "/srv/tablespaces/one");
	tar_symlink(b, "pg_tblspc/16385", "/srv/tablespaces/two");
	/* A 99-byte directory name: its '/' fills the name field, which has no NUL. */
	char dir99[100];
	memset(dir99, 'd', 99);
	dir99[99] = '\0';
	tar_dir(b, dir99);
	tar_file(b, "global/pg_control", block, 8192);
	tar_end(b);
}

static unsigned char *pattern(size_t n)
{
	unsigned char *p = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 2654435761u >> 13);
	return p;
}

static void check_pg_like_tree(const char *dest, const unsigned char *block)
{
	size_t len;
	char *s = read_rel(dest, "PG_VERSION", &len);
	assert_string_equal(s, "15\n");
	free(s);
	s = read_rel(dest, "global/1262", &len);
	assert_int_equal(len, 8192);
	assert_memory_equal(s, block, 8192);
	free(s);
	s = read_rel(dest, "base/1/112", &len);
	assert_int_equal(len, 513);
	assert_memory_equal(s, block, 513);
	free(s);
	s = read_rel(dest, "global/pg_control", &len);
	assert_int_equal(len, 8192);
	assert_memory_equal(s, block, 8192);
	free(s);
	s = read_rel(dest, long_name, NULL);
	assert_string_equal(s, "long");
	free(s);
	assert_int_equal(lstat_rel(dest, "global/6100").st_size, 0);

	struct stat st = lstat_rel(dest, "global/1262");
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_mtime, MTIME);
	st = lstat_rel(dest, "global/pg_control");
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_mtime, MTIME);
	const char *dirs[] = {"global",    "pg_wal", "pg_wal/archive_status", "base", "base/1",
			      "pg_tblspc", "pg_stat"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		st = lstat_rel(dest, dirs[i]);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0700);
		/*
		 * Dated when extraction left them, so their own files did not bump the time; global/
		 * too, though pg_control comes back to it last and is renamed into it at finish.
		 */
		assert_int_equal(st.st_mtime, DIR_MTIME);
	}
	char target[PATH_MAX];
	char *p = xasprintf("%s/pg_tblspc/16384", dest);
	ssize_t n = readlink(p, target, sizeof(target) - 1);
	free(p);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, "/srv/tablespaces/one");
	st = lstat_rel(dest, "pg_tblspc/16384");
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_mtime, MTIME);
	char dir99[100];
	memset(dir99, 'd', 99);
	dir99[99] = '\0';
	assert_true(S_ISDIR(lstat_rel(dest, dir99).st_mode));
	assert_false(exists(dest, "global/pg_control.walship-partial"));
}

static void test_extracts_postgresql_archive_in_any_chunking(void **state)
{
	Fix *f = *state;
	unsigned char *block = pattern(8192);
	TarBuf b = {0};
	pg_like_archive(&b, block, 8192);
	TarxOptions o = default_opts(f->dest);
	const size_t chunks[] = {1, 7, 511, 512, 513, 4096, 1 << 20};
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		WsError err;
		ws_error_clear(&err);
		int rc = extract(&o, b.p, b.len, chunks[i], &err);
		if (rc != 0)
			fail_msg("chunk %zu: %s (%s)", chunks[i], err.msg, err.detail);
		check_pg_like_tree(f->dest, block);
		reset_dest(f);
	}
	free(b.p);
	free(block);
}

static void test_ustar_prefix_and_base256_size_are_read(void **state)
{
	Fix *f = *state;
	TarBuf b = {0};
	tar_dir(&b, "a");
	tar_dir(&b, "a/b");
	size_t at = tar_header(&b, "file", '0', 1000, NULL);
	strcpy((char *)b.p + at + 345, "a/b");
	/* base-256 as PostgreSQL writes it for sizes of 8 GiB and more */
	memset(b.p + at + 124, 0, 12);
	b.p[at + 124] = 0x80;
	b.p[at + 134] = 1000 >> 8;
	b.p[at + 135] = 1000 & 0xff;
	tar_checksum(b.p + at);
	unsigned char *data = pattern(1000);
	tb_append(&b, data, 1000);
	tb_zero(&b, 24);
	tar_end(&b);
	TarxOptions o = default_opts(f->dest);
	WsError err;
	if (extract(&o, b.p, b.len, 100, &err) != 0)
		fail_msg("%s", err.msg);
	size_t len;
	char *s = read_rel(f->dest, "a/b/file", &len);
	assert_int_equal(len, 1000);
	assert_memory_equal(s, data, 1000);
	free(s);
	free(data);
	free(b.p);
}

static void test_gnu_header_and_signed_checksum_accepted(void **state)
{
	Fix *f = *state;
	TarBuf b = {0};
	/* GNU tar's magic, and a name with bytes above 127 summed as signed chars */
	size_t at = tar_header(&b, "caf\xc3\xa9", '0', 3, NULL);
	unsigned char *h = b.p + at;
	memcpy(h + 257, "ustar  \0", 8);
	memset(h + 148, ' ', 8);
	int sum = 0;
	for (int i = 0; i < 512; i++)
		sum += (signed char)h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	tb_append(&b, "abc", 3);
	tb_zero(&b, 509);
	tar_end(&b);
	tb_zero(&b, 10240 - b.len % 10240); /* GNU tar's record padding */
	TarxOptions o = default_opts(f->dest);
	WsError err;
	if (extract(&o, b.p, b.len, 333, &err) != 0)
		fail_msg("%s", err.msg);
	char *s = read_rel(f->dest, "caf\xc3\xa9", NULL);
	assert_string_equal(s, "abc");
	free(s);
	free(b.p);
}

/* ---- symbolic links ---- */

typedef struct MapCall {
	int calls;
	char names[4][64];
	char targets[4][64];
} MapCall;

static char *map_links(void *ctx, const char *name, const char *target, bool *skip)
{
	MapCall *m = ctx;
	if (m->calls < 4) {
		snprintf(m->names[m->calls], 64, "%s", name);
		snprintf(m->targets[m->calls], 64, "%s", target);
	}
	m->calls++;
	if (strcmp(name, "pg_tblspc/16384") == 0)
		return xstrdup("/new/place");
	if (strcmp(name, "pg_tblspc/16385") == 0)
		*skip = true;
	return NULL;
}

static void test_symlinks_mapped_skipped_or_kept(void **state)
{
	Fix *f = *state;
	TarBuf b = {0};
	tar_dir(&b, "pg_tblspc");
	tar_symlink(&b, "pg_tblspc/16384", "/old/one");
	tar_symlink(&b, "pg_tblspc/16385", "/old/two");
	tar_symlink(&b, "pg_tblspc/16386", "/old/three");
	tar_end(&b);
	MapCall m = {0};
	TarxOptions o = default_opts(f->dest);
	o.map_symlink = map_links;
	o.map_ctx = &m;
	WsError err;
	if (extract(&o, b.p, b.len, 512, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(m.calls, 3);
	assert_string_equal(m.names[0], "pg_tblspc/16384");
	assert_string_equal(m.targets[0], "/old/one");
	char target[256];
	char *p = xasprintf("%s/pg_tblspc/16384", f->dest);
	ssize_t n = readlink(p, target, sizeof(target) - 1);
	free(p);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, "/new/place");
	assert_false(exists(f->dest, "pg_tblspc/16385"));
	p = xasprintf("%s/pg_tblspc/16386", f->dest);
	n = readlink(p, target, sizeof(target) - 1);
	free(p);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, "/old/three");

	/* Without a callback every allowed link is created as it is. */
	reset_dest(f);
	o.map_symlink = NULL;
	if (extract(&o, b.p, b.len, 1, &err) != 0)
		fail_msg("%s", err.msg);
	assert_true(S_ISLNK(lstat_rel(f->dest, "pg_tblspc/16385").st_mode));
	free(b.p);
}

/* ---- deferred files ---- */

static void test_deferred_file_appears_only_at_finish(void **state)
{
	Fix *f = *state;
	unsigned char *block = pattern(8192);
	TarBuf b = {0};
	tar_dir(&b, "global");
	tar_file(&b, "global/pg_control", block, 8192);
	tar_text(&b, "after", "x");
	tar_end(&b);
	TarxOptions o = default_opts(f->dest);
	WsError err;

	Tarx *t = tarx_new(&o);
	assert_int_equal(tarx_write(t, b.p, b.len, &err), 0);
	assert_false(exists(f->dest, "global/pg_control"));
	assert_true(exists(f->dest, "global/pg_control.walship-partial"));
	assert_true(exists(f->dest, "after"));
	assert_int_equal(tarx_finish(t, &err), 0);
	assert_true(exists(f->dest, "global/pg_control"));
	assert_false(exists(f->dest, "global/pg_control.walship-partial"));
	tarx_free(t);
	size_t len;
	char *s = read_rel(f->dest, "global/pg_control", &len);
	assert_int_equal(len, 8192);
	assert_memory_equal(s, block, 8192);
	free(s);

	/* Truncated after the deferred file: finish fails and no pg_control is left at all. */
	reset_dest(f);
	t = tarx_new(&o);
	assert_int_equal(tarx_write(t, b.p, b.len - 1024, &err), 0);
	assert_int_equal(tarx_finish(t, &err), WS_CORRUPT);
	tarx_free(t);
	assert_true(exists(f->dest, "after"));
	assert_false(exists(f->dest, "global/pg_control"));
	assert_false(exists(f->dest, "global/pg_control.walship-partial"));

	/* Abandoned without finish (the caller hit an error elsewhere): the same. */
	reset_dest(f);
	t = tarx_new(&o);
	assert_int_equal(tarx_write(t, b.p, b.len, &err), 0);
	tarx_free(t);
	assert_false(exists(f->dest, "global/pg_control"));
	assert_false(exists(f->dest, "global/pg_control.walship-partial"));

	/* An existing pg_control is never replaced. */
	reset_dest(f);
	char *p = xasprintf("%s/global", f->dest);
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	p = xasprintf("%s/global/pg_control", f->dest);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs("old", fp);
	fclose(fp);
	assert_int_equal(extract(&o, b.p, b.len, 4096, &err), WS_CORRUPT);
	s = read_rel(f->dest, "global/pg_control", NULL);
	assert_string_equal(s, "old");
	free(s);
	free(p);
	assert_false(exists(f->dest, "global/pg_control.walship-partial"));

	/* Twice in one stream: refused. */
	reset_dest(f);
	TarBuf b2 = {0};
	tar_dir(&b2, "global");
	tar_file(&b2, "global/pg_control", block, 100);
	tar_file(&b2, "global/pg_control", block, 100);
	tar_end(&b2);
	assert_int_equal(extract(&o, b2.p, b2.len, 4096, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "global/pg_control"));
	assert_false(exists(f->dest, "global/pg_control"));
	free(b2.p);
	free(b.p);
	free(block);
}

/* ---- hostile streams ---- */

typedef struct Hostile {
	const char *what;
	const char *name;
	size_t name_len; /* 0: strlen(name) */
	char type;
	const char *link;
	const char *shown; /* what the message must contain */
} Hostile;

static const Hostile hostile[] = {
	{"absolute file", "/tmp/evil", 0, '0', NULL, "/tmp/evil"},
	{"absolute dir", "/tmp/evildir/", 0, '5', NULL, "/tmp/evildir/"},
	{"dot-dot", "../evil", 0, '0', NULL, "../evil"},
	{"dot-dot inside", "global/../../evil", 0, '0', NULL, "global/../../evil"},
	{"dot-dot last", "global/..", 0, '0', NULL, "global/.."},
	{"dot-dot dir", "../evildir/", 0, '5', NULL, "../evildir/"},
	{"empty component", "global//x", 0, '0', NULL, "global//x"},
	{"dot component", "global/./x", 0, '0', NULL, "global/./x"},
	{"two leading dots", "././x", 0, '0', NULL, "././x"},
	{"newline", "new\nline", 0, '0', NULL, "new?line"},
	{"embedded NUL", "ok\0evil", 7, '0', NULL, "NUL"},
	{"empty name", "", 0, '0', NULL, "empty"},
	{"file with slash", "file/", 0, '0', NULL, "file/"},
	{"hard link", "hard", 0, '1', "/etc/passwd", "hard"},
	{"char device", "chr", 0, '3', NULL, "chr"},
	{"block device", "blk", 0, '4', NULL, "blk"},
	{"fifo", "fifo", 0, '6', NULL, "fifo"},
	{"contiguous", "contig", 0, '7', NULL, "contig"},
	{"gnu long name", "././@LongLink", 0, 'L', NULL, "GNU long"},
	{"pax header", "PaxHeaders/x", 0, 'x', NULL, "pax"},
	{"pax global", "pax_global_header", 0, 'g', NULL, "pax"},
	{"symlink at top", "evil/", 0, '2', "/tmp", "evil"},
	{"symlink in other dir", "global/evil/", 0, '2', "/tmp", "global/evil"},
	{"symlink nested in pg_tblspc", "pg_tblspc/1/evil/", 0, '2', "/tmp", "pg_tblspc/1/evil"},
	{"symlink named pg_tblspc", "pg_tblspc/", 0, '2', "/tmp", "pg_tblspc"},
	{"through canary", "base/x", 0, '0', NULL, "base/x"},
	{"canary as dir", "base/", 0, '5', NULL, "base"},
	{"below canary", "base/sub/", 0, '5', NULL, "base/sub"},
	{"link below canary", "base/1/", 0, '2', "/tmp", "base/1"},
	{"file over canary", "base", 0, '0', NULL, "base"},
};

/* dest holds a canary link base -> outside; nothing may ever land in outside. */
static void plant_canary(Fix *f)
{
	char *p = xasprintf("%s/base", f->dest);
	assert_int_equal(symlink(f->outside, p), 0);
	free(p);
}

static void test_hostile_entries_refused_and_nothing_written_outside(void **state)
{
	Fix *f = *state;
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		const Hostile *h = &hostile[i];
		reset_dest(f);
		plant_canary(f);
		TarBuf b = {0};
		tar_text(&b, "before", "fine");
		size_t nlen = h->name_len ? h->name_len : strlen(h->name);
		uint64_t size = h->type == '0' || h->type == '7' ? 5 : 0;
		tar_header_raw(&b, h->name, nlen, h->type, size, h->link, MTIME);
		if (size > 0) {
			tb_append(&b, "evil\n", 5);
			tb_zero(&b, 507);
		}
		tar_text(&b, "after", "never");
		tar_end(&b);
		TarxOptions o = default_opts(f->dest);
		for (size_t chunk = 1; chunk <= 4096; chunk *= 4096) {
			WsError err;
			ws_error_clear(&err);
			int rc = extract(&o, b.p, b.len, chunk, &err);
			if (rc != WS_CORRUPT)
				fail_msg("%s: status %d, message \"%s\"", h->what, rc, err.msg);
			if (strstr(err.msg, h->shown) == NULL)
				fail_msg("%s: message \"%s\" does not name \"%s\"", h->what, err.msg,
					 h->shown);
			assert_true(exists(f->dest, "before"));
			assert_false(exists(f->dest, "after"));
			assert_true(S_ISLNK(lstat_rel(f->dest, "base").st_mode));
			if (count_entries(f->outside) != 0)
				fail_msg("%s: something was written outside dest", h->what);
			assert_false(exists(f->dest, "evil"));
			assert_false(exists(f->dest, "tmp"));
			rm_rf(f->dest);
			assert_int_equal(mkdir(f->dest, 0700), 0);
			plant_canary(f);
		}
		free(b.p);
	}
}

/* Links the stream itself creates are never followed either. */
static void test_extracted_symlinks_never_followed(void **state)
{
	Fix *f = *state;
	struct {
		const char *what;
		const char *name;
		char type;
	} after_link[] = {
		{"file through link", "pg_tblspc/1/x", '0'}, {"dir through link", "pg_tblspc/1/PG_15/", '5'},
		{"file over link", "pg_tblspc/1", '0'},      {"dir over link", "pg_tblspc/1/", '5'},
		{"link over link", "pg_tblspc/1/", '2'},
	};
	for (size_t i = 0; i < sizeof(after_link) / sizeof(after_link[0]); i++) {
		reset_dest(f);
		TarBuf b = {0};
		tar_dir(&b, "pg_tblspc");
		tar_symlink(&b, "pg_tblspc/1", f->outside);
		uint64_t size = after_link[i].type == '0' ? 5 : 0;
		tar_header(&b, after_link[i].name, after_link[i].type, size, "/tmp");
		if (size > 0) {
			tb_append(&b, "evil\n", 5);
			tb_zero(&b, 507);
		}
		tar_end(&b);
		TarxOptions o = default_opts(f->dest);
		WsError err;
		int rc = extract(&o, b.p, b.len, 512, &err);
		if (rc != WS_CORRUPT)
			fail_msg("%s: status %d (%s)", after_link[i].what, rc, err.msg);
		assert_non_null(strstr(err.msg, "pg_tblspc/1"));
		assert_int_equal(count_entries(f->outside), 0);
		assert_true(S_ISLNK(lstat_rel(f->dest, "pg_tblspc/1").st_mode));
		free(b.p);
	}

	/* A pre-existing link on the path of an allowed link is not followed either. */
	reset_dest(f);
	char *p = xasprintf("%s/pg_tblspc", f->dest);
	assert_int_equal(symlink(f->outside, p), 0);
	free(p);
	TarBuf b = {0};
	tar_symlink(&b, "pg_tblspc/1", "/tmp");
	tar_end(&b);
	TarxOptions o = default_opts(f->dest);
	WsError err;
	assert_int_equal(extract(&o, b.p, b.len, 512, &err), WS_CORRUPT);
	assert_int_equal(count_entries(f->outside), 0);
	free(b.p);
}

static void test_duplicates_and_existing_directories(void **state)
{
	Fix *f = *state;
	TarxOptions o = default_opts(f->dest);
	WsError err;

	/* Directory entries for existing directories are fine, "./" included. */
	TarBuf b = {0};
	tar_dir(&b, ".");
	tar_dir(&b, "global");
	tar_text(&b, "global/a", "a");
	tar_dir(&b, "global");
	tar_dir(&b, "./global");
	tar_text(&b, "./global/b", "b");
	tar_end(&b);
	if (extract(&o, b.p, b.len, 512, &err) != 0)
		fail_msg("%s", err.msg);
	assert_true(exists(f->dest, "global/a"));
	assert_true(exists(f->dest, "global/b"));
	free(b.p);

	/* A file twice, or a file where a directory is, is refused. */
	const char *dup[][2] = {{"x", "x"}, {"global/a", "./global/a"}, {"global", "global"}};
	for (size_t i = 0; i < 3; i++) {
		reset_dest(f);
		TarBuf d = {0};
		tar_dir(&d, "global");
		tar_text(&d, dup[i][0], "one");
		tar_text(&d, dup[i][1], "two");
		tar_end(&d);
		int rc = extract(&o, d.p, d.len, 512, &err);
		if (rc != WS_CORRUPT)
			fail_msg("%s twice: status %d", dup[i][1], rc);
		assert_non_null(strstr(err.msg, "already exists"));
		free(d.p);
	}

	/* A directory where a file is. */
	reset_dest(f);
	TarBuf d = {0};
	tar_text(&d, "x", "one");
	tar_dir(&d, "x");
	tar_end(&d);
	assert_int_equal(extract(&o, d.p, d.len, 512, &err), WS_CORRUPT);
	free(d.p);
	char *s = read_rel(f->dest, "x", NULL);
	assert_string_equal(s, "one");
	free(s);
}

/* ---- truncation and damage ---- */

static TarBuf small_archive(void)
{
	TarBuf b = {0};
	unsigned char *data = pattern(3000);
	tar_dir(&b, "global");
	tar_file(&b, "global/1", data, 3000);
	tar_file(&b, "global/empty", "", 0);
	tar_file(&b, "global/2", data, 1024);
	tar_dir(&b, "base");
	tar_file(&b, "global/pg_control", data, 700);
	tar_end(&b);
	free(data);
	return b;
}

static void test_truncated_stream_fails_at_finish(void **state)
{
	Fix *f = *state;
	TarBuf b = small_archive();
	TarxOptions o = default_opts(f->dest);
	WsError err;
	assert_int_equal(b.len % 512, 0);
	for (size_t cut = 0; cut < b.len; cut += 512) {
		const size_t cuts[] = {cut, cut + 1, cut + 100, cut + 511};
		for (size_t k = 0; k < 4; k++) {
			reset_dest(f);
			Tarx *t = tarx_new(&o);
			int rc = tarx_write(t, b.p, cuts[k], &err);
			assert_int_equal(rc, 0); /* a cut is only visible at the end */
			rc = tarx_finish(t, &err);
			if (rc != WS_CORRUPT)
				fail_msg("stream cut at %zu of %zu: status %d", cuts[k], b.len, rc);
			tarx_free(t);
			assert_false(exists(f->dest, "global/pg_control"));
			assert_false(exists(f->dest, "global/pg_control.walship-partial"));
		}
	}
	reset_dest(f);
	if (extract(&o, b.p, b.len, 512, &err) != 0)
		fail_msg("%s", err.msg);
	free(b.p);
}

static void test_unterminated_stream_accepted_only_when_allowed(void **state)
{
	Fix *f = *state;
	TarBuf b = small_archive();
	TarxOptions o = default_opts(f->dest);
	WsError err;
	size_t body = b.len - 1024; /* what a PostgreSQL 14 server sends */
	assert_int_equal(extract(&o, b.p, body, 512, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "end-of-archive"));
	reset_dest(f);
	o.allow_unterminated = true;
	if (extract(&o, b.p, body, 512, &err) != 0)
		fail_msg("%s", err.msg);
	assert_true(exists(f->dest, "global/pg_control"));
	/* Even then a cut inside an entry or a header is noticed, and empty is not an archive. */
	const size_t cuts[] = {0, 100, 512 + 700, body - 512 - 1};
	for (size_t k = 0; k < 4; k++) {
		reset_dest(f);
		assert_int_equal(extract(&o, b.p, cuts[k], 512, &err), WS_CORRUPT);
	}
	free(b.p);
}

static void test_damaged_headers_detected(void **state)
{
	Fix *f = *state;
	TarBuf b = small_archive();
	TarxOptions o = default_opts(f->dest);
	WsError err;
	/* Every byte of the second header, flipped in turn. */
	size_t h2 = 512;
	for (size_t i = 0; i < 512; i++) {
		reset_dest(f);
		b.p[h2 + i] ^= 0x04;
		int rc = extract(&o, b.p, b.len, 4096, &err);
		b.p[h2 + i] ^= 0x04;
		if (rc != WS_CORRUPT)
			fail_msg("flip at header byte %zu: status %d", i, rc);
		assert_false(exists(f->dest, "global/pg_control"));
	}
	reset_dest(f);
	b.p[h2 + 10] ^= 0x01;
	assert_int_equal(extract(&o, b.p, b.len, 4096, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "checksum"));
	b.p[h2 + 10] ^= 0x01;

	/* A bad octal digit with a correct checksum is refused as such. */
	reset_dest(f);
	TarBuf c = {0};
	size_t at = tar_header(&c, "x", '0', 0, NULL);
	c.p[at + 124] = '9';
	tar_checksum(c.p + at);
	tar_end(&c);
	assert_int_equal(extract(&o, c.p, c.len, 4096, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "size"));
	free(c.p);

	/* A size beyond what a file can hold (base-256) is refused. */
	reset_dest(f);
	c = (TarBuf){0};
	at = tar_header(&c, "x", '0', 0, NULL);
	memset(c.p + at + 124, 0xff, 12);
	c.p[at + 124] = 0x80;
	tar_checksum(c.p + at);
	tar_end(&c);
	assert_int_equal(extract(&o, c.p, c.len, 4096, &err), WS_CORRUPT);
	free(c.p);

	/* Not ustar at all. */
	reset_dest(f);
	c = (TarBuf){0};
	at = tar_header(&c, "x", '0', 0, NULL);
	memset(c.p + at + 257, 0, 8);
	tar_checksum(c.p + at);
	tar_end(&c);
	assert_int_equal(extract(&o, c.p, c.len, 4096, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "ustar"));
	free(c.p);
	free(b.p);
}

static void test_data_after_end_refused_zero_padding_accepted(void **state)
{
	Fix *f = *state;
	TarxOptions o = default_opts(f->dest);
	WsError err;
	TarBuf b = small_archive();
	tb_zero(&b, 9000);
	if (extract(&o, b.p, b.len, 1000, &err) != 0)
		fail_msg("%s", err.msg);
	reset_dest(f);
	b.p[b.len - 1] = 1;
	assert_int_equal(extract(&o, b.p, b.len, 1000, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "after its end"));
	free(b.p);

	/* One zero block, then another entry: not an archive PostgreSQL writes. */
	reset_dest(f);
	TarBuf c = {0};
	tar_text(&c, "a", "a");
	tb_zero(&c, 512);
	tar_text(&c, "b", "b");
	tar_end(&c);
	assert_int_equal(extract(&o, c.p, c.len, 512, &err), WS_CORRUPT);
	assert_false(exists(f->dest, "b"));
	free(c.p);
}

static void test_failure_is_sticky(void **state)
{
	Fix *f = *state;
	TarxOptions o = default_opts(f->dest);
	TarBuf b = {0};
	tar_text(&b, "../evil", "x");
	TarBuf good = {0};
	tar_text(&good, "good", "x");
	tar_end(&good);
	WsError err, again;
	Tarx *t = tarx_new(&o);
	assert_int_equal(tarx_write(t, b.p, b.len, &err), WS_CORRUPT);
	assert_int_equal(tarx_write(t, good.p, good.len, &again), WS_CORRUPT);
	assert_string_equal(err.msg, again.msg);
	assert_int_equal(tarx_finish(t, &again), WS_CORRUPT);
	assert_string_equal(err.msg, again.msg);
	tarx_free(t);
	assert_false(exists(f->dest, "good"));
	free(b.p);
	free(good.p);

	/* dest missing: a plain error, not a crash. */
	TarxOptions m = default_opts("/nonexistent/walship/dest");
	t = tarx_new(&m);
	assert_int_equal(tarx_finish(t, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "/nonexistent/walship/dest"));
	tarx_free(t);
	tarx_free(NULL);
}

/* ---- size and memory ---- */

typedef struct Progress {
	int calls;
	uint64_t last;
	bool monotonic;
} Progress;

static void on_progress(void *ctx, uint64_t bytes)
{
	Progress *p = ctx;
	if (bytes < p->last)
		p->monotonic = false;
	p->last = bytes;
	p->calls++;
}

/* mallinfo2 from glibc 2.33; mallinfo's int fields are enough for the 20 MiB here. */
#if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33)
#define TEST_HAVE_MALLINFO2 1
#endif

static size_t heap_in_use(void)
{
#ifdef TEST_HAVE_MALLINFO2
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
#else
	struct mallinfo mi = mallinfo();
	return (size_t)mi.uordblks + (size_t)mi.hblkhd;
#endif
}

static void test_large_entry_streams_in_fixed_memory(void **state)
{
	Fix *f = *state;
	const size_t size = 20u << 20;
	Progress pr = {.monotonic = true};
	TarxOptions o = default_opts(f->dest);
	o.progress = on_progress;
	o.progress_ctx = &pr;
	TarBuf h = {0};
	tar_header(&h, "big", '0', size, NULL);
	static unsigned char zeros[65536 + 3];
	WsError err;
	Tarx *t = tarx_new(&o);
	assert_int_equal(tarx_write(t, h.p, h.len, &err), 0);
	size_t before = heap_in_use();
	for (size_t off = 0; off < size;) {
		size_t k = size - off < sizeof(zeros) ? size - off : sizeof(zeros);
		assert_int_equal(tarx_write(t, zeros, k, &err), 0);
		off += k;
	}
	size_t after = heap_in_use();
	assert_true(after < before + (1u << 20));
	assert_int_equal(tarx_write(t, zeros, 1024, &err), 0);
	assert_int_equal(tarx_finish(t, &err), 0);
	assert_int_equal(tarx_bytes(t), size);
	tarx_free(t);
	assert_int_equal(lstat_rel(f->dest, "big").st_size, size);
	assert_true(pr.calls > 1);
	assert_true(pr.monotonic);
	assert_int_equal(pr.last, size);
	free(h.p);
}

/* ---- ownership ---- */

static void test_chown_when_asked(void **state)
{
	Fix *f = *state;
	struct passwd *pw = getpwnam("postgres");
	if (geteuid() != 0 || pw == NULL)
		skip();
	TarBuf b = {0};
	tar_dir(&b, "global");
	tar_text(&b, "global/a", "a");
	tar_text(&b, "deep/er/file", "implicit parents");
	tar_dir(&b, "pg_tblspc");
	tar_symlink(&b, "pg_tblspc/1", "/srv/x");
	tar_text(&b, "global/pg_control", "c");
	tar_end(&b);
	TarxOptions o = default_opts(f->dest);
	o.uid = (int)pw->pw_uid;
	o.gid = (int)pw->pw_gid;
	WsError err;
	if (extract(&o, b.p, b.len, 512, &err) != 0)
		fail_msg("%s", err.msg);
	const char *names[] = {"global",       "global/a",  "deep",        "deep/er",
			       "deep/er/file", "pg_tblspc", "pg_tblspc/1", "global/pg_control"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct stat st = lstat_rel(f->dest, names[i]);
		if (st.st_uid != pw->pw_uid || st.st_gid != pw->pw_gid)
			fail_msg("\"%s\" is owned by %d:%d", names[i], (int)st.st_uid, (int)st.st_gid);
	}
	assert_int_equal(lstat_rel(f->dest, "deep/er").st_mode & 07777, 0700);
	/* dest itself is the caller's. */
	assert_int_equal(lstat_rel(f->root, "dest").st_uid, 0);

	/* -1 leaves the extracting user's. */
	reset_dest(f);
	o.uid = o.gid = -1;
	if (extract(&o, b.p, b.len, 512, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(lstat_rel(f->dest, "global/a").st_uid, 0);
	free(b.p);
}

/* ---- a real base backup ---- */

static const char *cmp_a, *cmp_b;
static int cmp_count, cmp_errors;

static int compare_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	const char *rel = path + strlen(cmp_b);
	if (*rel == '\0')
		return 0;
	rel++;
	cmp_count++;
	char *other = xasprintf("%s/%s", cmp_a, rel);
	struct stat sa;
	if (lstat(other, &sa) != 0) {
		print_error("missing from the tarx extraction: %s\n", rel);
		cmp_errors++;
	} else if ((sa.st_mode & S_IFMT) != (sb->st_mode & S_IFMT)) {
		print_error("type differs: %s\n", rel);
		cmp_errors++;
	} else if (S_ISREG(sb->st_mode)) {
		size_t la, lb;
		char *da = read_rel(cmp_a, rel, &la);
		char *db = read_rel(cmp_b, rel, &lb);
		if (la != lb || memcmp(da, db, la) != 0 || (sa.st_mode & 07777) != 0600 ||
		    sa.st_mtime != sb->st_mtime) {
			print_error("file differs: %s\n", rel);
			cmp_errors++;
		}
		free(da);
		free(db);
	} else if (S_ISDIR(sb->st_mode)) {
		/*
		 * GNU tar leaves global/ at the time pg_control came back into it, and pg_wal/ at
		 * the time ./pg_wal/archive_status/ was made in it, long after pg_wal/'s own entry
		 * (unless both fall in the same second): both are checked apart, against the
		 * archive's headers.
		 */
		bool time_ok = sa.st_mtime == sb->st_mtime || strcmp(rel, "global") == 0 ||
			       strcmp(rel, "pg_wal") == 0;
		if ((sa.st_mode & 07777) != 0700 || !time_ok) {
			print_error("directory mode or time differs: %s\n", rel);
			cmp_errors++;
		}
	} else if (S_ISLNK(sb->st_mode)) {
		char ta[PATH_MAX], tb[PATH_MAX];
		char *pb = xasprintf("%s/%s", cmp_b, rel);
		ssize_t na = readlink(other, ta, sizeof(ta) - 1), nb = readlink(pb, tb, sizeof(tb) - 1);
		free(pb);
		if (na != nb || na < 0 || memcmp(ta, tb, (size_t)na) != 0) {
			print_error("link differs: %s\n", rel);
			cmp_errors++;
		}
	}
	free(other);
	return 0;
}

static int count_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)path;
	(void)sb;
	(void)flag;
	(void)ftw;
	cmp_count++;
	return 0;
}

/* Same names, types, contents, times (and tarx's modes) in a (tarx) and b (GNU tar). */
static void compare_trees(const char *a, const char *b)
{
	cmp_a = a;
	cmp_b = b;
	cmp_count = cmp_errors = 0;
	assert_int_equal(nftw(b, compare_entry, 32, FTW_PHYS), 0);
	assert_int_equal(cmp_errors, 0);
	int in_b = cmp_count;
	cmp_count = 0;
	assert_int_equal(nftw(a, count_one, 32, FTW_PHYS), 0);
	assert_int_equal(cmp_count - 1, in_b);
	assert_true(in_b > 0);
}

/* The modification time in the header of entry name (test archives are trusted). */
static time_t entry_mtime(const unsigned char *data, size_t len, const char *name)
{
	for (size_t off = 0; off + 512 <= len && data[off] != 0;) {
		char field[13];
		memcpy(field, data + off + 124, 12);
		field[12] = '\0';
		size_t size = strtoul(field, NULL, 8);
		if (strncmp((const char *)data + off, name, 100) == 0) {
			memcpy(field, data + off + 136, 12);
			return (time_t)strtol(field, NULL, 8);
		}
		off += 512 + (size + 511) / 512 * 512;
	}
	fail_msg("no entry \"%s\" in the archive", name);
	return 0;
}

static unsigned char *slurp(const char *path, size_t *len)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	*slash = '\0';
	unsigned char *d = (unsigned char *)read_rel(dir, slash + 1, len);
	free(dir);
	return d;
}

static int run(const char *cmd)
{
	int rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static void test_real_postgresql_base_backup(void **state)
{
	Fix *f = *state;
	struct passwd *pw = getpwnam("postgres");
	if (geteuid() != 0 || pw == NULL || access(PG_BIN "/initdb", X_OK) != 0 ||
	    access(PG_BIN "/pg_basebackup", X_OK) != 0)
		skip();
	char *pg = xasprintf("%s/pg", f->root);
	assert_int_equal(chmod(f->root, 0711), 0);
	assert_int_equal(mkdir(pg, 0700), 0);
	assert_int_equal(chown(pg, pw->pw_uid, pw->pw_gid), 0);
	char *setup_cmd = xasprintf(
		"set -e; cd /; P='%s'; B=" PG_BIN "; as() { runuser -u postgres -- \"$@\"; }\n"
		"as $B/initdb -D $P/data -A trust -N >$P/initdb.log 2>&1\n"
		"as $B/pg_ctl -D $P/data -o \"-k $P -c listen_addresses=''\" -w -l $P/log start >/dev/null\n"
		"as mkdir $P/ts\n"
		"as $B/psql -h $P -d postgres -qc \"create tablespace ts location '$P/ts'\"\n"
		"as $B/psql -h $P -d postgres -qc \"create table t tablespace ts as select 1 x\"\n"
		"as $B/pg_basebackup -h $P -Ft -D $P/out -X none -c fast 2>/dev/null\n",
		pg);
	int rc = run(setup_cmd);
	char *stop_cmd = xasprintf("runuser -u postgres -- " PG_BIN "/pg_ctl -D %s/data -m immediate -w stop "
				   ">/dev/null 2>&1",
				   pg);
	run(stop_cmd);
	if (rc != 0) {
		char *log = xasprintf("cat %s/initdb.log %s/log >&2", pg, pg);
		run(log);
		free(log);
		fail_msg("could not take a base backup with PostgreSQL 15 (status %d)", rc);
	}

	char *out = xasprintf("%s/out", pg);
	DIR *d = opendir(out);
	assert_non_null(d);
	char *ts_tar = NULL;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, "base.tar") != 0 && strstr(de->d_name, ".tar") != NULL)
			ts_tar = xasprintf("%s/out/%s", pg, de->d_name);
	closedir(d);
	assert_non_null(ts_tar);

	char *base_tar = xasprintf("%s/base.tar", out);
	const char *paths[] = {base_tar, ts_tar};
	for (int i = 0; i < 2; i++) {
		size_t len;
		unsigned char *data = slurp(paths[i], &len);
		/* PostgreSQL 15 ends each archive with exactly two zero blocks. */
		assert_true(len >= 1024 && len % 512 == 0);
		for (size_t k = len - 1024; k < len; k++)
			assert_int_equal(data[k], 0);

		char *a = xasprintf("%s/a%d", f->root, i), *b = xasprintf("%s/b%d", f->root, i);
		assert_int_equal(mkdir(a, 0700), 0);
		assert_int_equal(mkdir(b, 0700), 0);
		char *tar_cmd = xasprintf("tar -xf '%s' -C '%s'", paths[i], b);
		assert_int_equal(run(tar_cmd), 0);
		free(tar_cmd);

		TarxOptions o = default_opts(a);
		o.uid = (int)pw->pw_uid;
		o.gid = (int)pw->pw_gid;
		WsError err;
		if (extract(&o, data, len, 65536 + 13, &err) != 0)
			fail_msg("%s: %s (%s)", paths[i], err.msg, err.detail);
		compare_trees(a, b);
		if (i == 0) {
			assert_true(exists(a, "global/pg_control"));
			assert_true(exists(a, "tablespace_map"));
			assert_int_equal(lstat_rel(a, "global/pg_control").st_uid, pw->pw_uid);
			assert_int_equal(lstat_rel(a, "global").st_mtime, entry_mtime(data, len, "global/"));
			assert_int_equal(lstat_rel(a, "pg_wal").st_mtime, entry_mtime(data, len, "pg_wal/"));
			/* Without the end marker (a PostgreSQL 14 server's stream) only with the option. */
			rm_rf(a);
			assert_int_equal(mkdir(a, 0700), 0);
			assert_int_equal(extract(&o, data, len - 1024, 4096, &err), WS_CORRUPT);
			assert_false(exists(a, "global/pg_control"));
			rm_rf(a);
			assert_int_equal(mkdir(a, 0700), 0);
			o.allow_unterminated = true;
			if (extract(&o, data, len - 1024, 4096, &err) != 0)
				fail_msg("%s", err.msg);
			assert_true(exists(a, "global/pg_control"));
		}
		free(a);
		free(b);
		free(data);
	}
	free(base_tar);
	free(ts_tar);
	free(out);
	free(setup_cmd);
	free(stop_cmd);
	free(pg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_extracts_postgresql_archive_in_any_chunking, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ustar_prefix_and_base256_size_are_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gnu_header_and_signed_checksum_accepted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_symlinks_mapped_skipped_or_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_file_appears_only_at_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_entries_refused_and_nothing_written_outside,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_extracted_symlinks_never_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates_and_existing_directories, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_stream_fails_at_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unterminated_stream_accepted_only_when_allowed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_damaged_headers_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_after_end_refused_zero_padding_accepted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failure_is_sticky, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_entry_streams_in_fixed_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chown_when_asked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_postgresql_base_backup, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
