/*
 * dirwalk.h - the recursive walk, in bytewise key order, that a file-based
 * store driver lists with (local disk, SFTP): the driver reads one directory
 * at a time, dir_walk sorts and recurses.
 *
 * A directory's entry is named "name/", so that once sorted the entries of a
 * directory are in the order of the keys under it and can be visited as
 * they come: "a/b" before "a-b" before "ab", as a bytewise list of keys has
 * them.
 */
#ifndef WALSHIP_UTIL_DIRWALK_H
#define WALSHIP_UTIL_DIRWALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct DirEntry {
	char *name; /* "name/" for a directory */
	size_t len; /* of name */
	bool dir;
	uint64_t size;
	int64_t mtime; /* seconds since 1970 */
} DirEntry;

typedef struct DirList {
	DirEntry *v;
	size_t n;
	size_t cap;
} DirList;

/* Add one entry (name is copied). */
void dir_list_add(DirList *l, const char *name, bool dir, uint64_t size, int64_t mtime);

/*
 * Read the directory whose key prefix is key[0..keylen) ("" or ending in
 * '/') into l with dir_list_add: only names that start with filter (NULL:
 * all), and only those the key buffer has room for ("name/" included).  0,
 * or an error that ends the walk.
 */
typedef int (*DirReadFn)(void *ctx, const char *key, size_t keylen, const char *filter, DirList *l,
			 WsError *err);

/* A file under the walk: key is its whole key.  Non-zero stops the walk and is returned. */
typedef int (*DirFileFn)(void *ctx, const char *key, uint64_t size, int64_t mtime, WsError *err);

/*
 * Walk the tree under key[0..keylen) depth-first in bytewise key order:
 * read_fn for each directory (filter only at the top), file_fn for each
 * file.  key is a buffer the caller sized for every key read_fn accepts; it
 * is extended in place and given back as it came.
 */
int dir_walk(char *key, size_t keylen, const char *filter, DirReadFn read_fn, DirFileFn file_fn, void *ctx,
	     WsError *err);

#endif
