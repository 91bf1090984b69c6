/*
 * meta.h - walship.json, the repository's identity.
 *
 * The design and formats behind it: src/repo/README.md, "meta".
 *
 * Memory: repo_meta_serialize's text is malloc'd (caller frees); epochs are owned by their
 * RepoMeta.
 */
#ifndef WALSHIP_REPO_META_H
#define WALSHIP_REPO_META_H

#include <stddef.h>
#include <stdint.h>

#include "repo/crypt.h"
#include "util/error.h"

#define REPO_META_KEY    "walship.json"
#define REPO_META_FORMAT 1
#define REPO_META_MAX    (1024 * 1024)

typedef struct RepoEpoch {
	char id[32];
	uint64_t sysid;
	int pg_major; /* 90600 for 9.6, else 100000..170000 (pgmajor.h) */
	uint32_t seg_size;
	char created[40];
} RepoEpoch;

typedef struct RepoMeta {
	int format;
	char uuid[40];
	CryptParams *encryption; /* NULL: not encrypted */
	int n_epochs;
	RepoEpoch *epochs;
} RepoMeta;

/* A new repository's meta with one epoch; uuid random; not encrypted. */
RepoMeta *repo_meta_new(uint64_t sysid, int pg_major, uint32_t seg_size);
/* Append an epoch for a new cluster (walship upgrade); returns it. */
RepoEpoch *repo_meta_add_epoch(RepoMeta *meta, uint64_t sysid, int pg_major, uint32_t seg_size);
void repo_meta_free(RepoMeta *meta);

/* WS_CORRUPT naming what is wrong; a format newer than ours is WS_FATAL with a hint to upgrade walship. */
int repo_meta_parse(const char *json, size_t len, RepoMeta **out, WsError *err);
/* Pretty JSON text, newline-terminated. */
char *repo_meta_serialize(const RepoMeta *meta);

const RepoEpoch *repo_meta_newest(const RepoMeta *meta);
/* The newest epoch of this system identifier, or NULL. */
const RepoEpoch *repo_meta_find_sysid(const RepoMeta *meta, uint64_t sysid);
const RepoEpoch *repo_meta_find_id(const RepoMeta *meta, const char *id);

#endif
