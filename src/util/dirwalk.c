/* dirwalk.c - a file-based driver's sorted, recursive listing (see dirwalk.h). */
#include "util/dirwalk.h"

#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

void dir_list_add(DirList *l, const char *name, bool dir, uint64_t size, int64_t mtime)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	DirEntry *e = &l->v[l->n++];
	e->dir = dir;
	e->name = dir ? xasprintf("%s/", name) : xstrdup(name);
	e->len = strlen(e->name);
	e->size = size;
	e->mtime = mtime;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const DirEntry *)a)->name, ((const DirEntry *)b)->name);
}

static void list_free(DirList *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
}

int dir_walk(char *key, size_t keylen, const char *filter, DirReadFn read_fn, DirFileFn file_fn, void *ctx,
	     WsError *err)
{
	DirList l = {0};
	int rc = read_fn(ctx, key, keylen, filter, &l, err);

	if (rc == 0 && l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), entry_cmp);
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		const DirEntry *e = &l.v[i];
		memcpy(key + keylen, e->name, e->len + 1);
		if (e->dir)
			rc = dir_walk(key, keylen + e->len, NULL, read_fn, file_fn, ctx, err);
		else
			rc = file_fn(ctx, key, e->size, e->mtime, err);
	}
	key[keylen] = '\0';
	list_free(&l);
	return rc;
}
