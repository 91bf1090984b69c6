/*
 * fuzz_tarx.c - tar extraction (util/tarx.c), which walship rebuild runs on
 * every backup stream it reads from a repository, possibly as root.
 *
 * Input: a tar stream, extracted into <scratch>/box/dest with symbolic links
 * allowed in pg_tblspc (each redirected to <scratch>/box/outside) and
 * global/pg_control deferred, fed in chunks of a size taken from the input's
 * length; odd lengths also accept a stream without its end blocks (what
 * PostgreSQL 14 and older send).  Checked after every input, whatever the
 * extractor answered: nothing appeared beside dest (<scratch> holds only box,
 * box only dest and outside), nothing was created through a link (outside
 * stays empty), dest holds only files (0600), directories (0700) and the
 * allowed links, no deferred temporary file is left, and a successful
 * extraction wrote exactly the file bytes it counted.
 */
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "util/mem.h"
#include "util/tarx.h"

static char *box, *dest, *outside;
static uint64_t walked_bytes;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	box = xasprintf("%s/box", fuzz_scratch());
	dest = xasprintf("%s/dest", box);
	outside = xasprintf("%s/outside", box);
	return 0;
}

static char *redirect(void *ctx, const char *name, const char *target, bool *skip)
{
	(void)ctx;
	(void)name;
	(void)target;
	*skip = false;
	return xstrdup(outside);
}

/* The names in dir, which must be exactly want (NULL-terminated, any order). */
static void expect_only(const char *dir, const char *const *want)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0, nwant = 0;
	FUZZ_CHECK(d != NULL);
	while (want[nwant] != NULL)
		nwant++;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		bool known = false;
		for (int i = 0; i < nwant; i++)
			known = known || strcmp(e->d_name, want[i]) == 0;
		if (!known)
			fprintf(stderr, "fuzz_tarx: \"%s/%s\" appeared\n", dir, e->d_name);
		FUZZ_CHECK(known);
		n++;
	}
	closedir(d);
	FUZZ_CHECK(n == nwant);
}

static int check_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	const char *rel = path + strlen(dest);
	FUZZ_CHECK(strstr(rel, ".walship-partial") == NULL);
	if (flag == FTW_SL) {
		char target[4096];
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		FUZZ_CHECK(n > 0);
		target[n] = '\0';
		FUZZ_CHECK(strncmp(rel, "/pg_tblspc/", 11) == 0 && strchr(rel + 11, '/') == NULL);
		FUZZ_CHECK(strcmp(target, outside) == 0);
	} else if (S_ISREG(st->st_mode)) {
		FUZZ_CHECK((st->st_mode & 07777) == 0600);
		walked_bytes += (uint64_t)st->st_size;
	} else {
		FUZZ_CHECK(S_ISDIR(st->st_mode) && (rel[0] == '\0' || (st->st_mode & 07777) == 0700));
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const symlink_dirs[] = {"pg_tblspc", NULL};
	static const char *const deferred[] = {"global/pg_control", NULL};
	static const char *const in_scratch[] = {"box", NULL};
	static const char *const in_box[] = {"dest", "outside", NULL};
	TarxOptions opt = {0};
	WsError err;
	int rc = 0;

	fuzz_rm_tree(box);
	FUZZ_CHECK(mkdir(box, 0700) == 0 && mkdir(dest, 0700) == 0 && mkdir(outside, 0700) == 0);
	opt.dest = dest;
	opt.symlink_dirs = symlink_dirs;
	opt.map_symlink = redirect;
	opt.deferred = deferred;
	opt.uid = opt.gid = -1;
	opt.allow_unterminated = size % 2 == 1;

	Tarx *t = tarx_new(&opt);
	size_t chunk = 1 + size % 1031;
	for (size_t off = 0; off < size && rc == 0; off += chunk)
		rc = tarx_write(t, data + off, size - off < chunk ? size - off : chunk, &err);
	if (rc == 0)
		rc = tarx_finish(t, &err);
	uint64_t counted = tarx_bytes(t);
	tarx_free(t);

	expect_only(fuzz_scratch(), in_scratch);
	expect_only(box, in_box);
	static const char *const nothing[] = {NULL};
	expect_only(outside, nothing);
	walked_bytes = 0;
	FUZZ_CHECK(nftw(dest, check_entry, 16, FTW_PHYS) == 0);
	FUZZ_CHECK(rc != 0 || walked_bytes == counted);
	return 0;
}
