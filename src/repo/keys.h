/*
 * keys.h - where things live in a repository.
 *
 *   walship.json
 *   <epoch>/wal/<tli>.history
 *   <epoch>/wal/<tli><log>/<name>     segments, .partial and .backup files
 *   <epoch>/wal/<tli><log>/<name>@<first 16 hex of SHA-256>
 *                                     a differing .partial/.backup stored beside the first
 */
#ifndef WALSHIP_REPO_KEYS_H
#define WALSHIP_REPO_KEYS_H

#include <stddef.h>

#include "pg/walname.h"
#include "repo/meta.h"

/* The key of a WAL file; buf of STORE_KEY_MAX.  0, or -1 if it does not fit. */
int repo_key_wal(const RepoEpoch *epoch, const WalName *name, char *buf, size_t size);

/* The key of a differing .partial/.backup kept beside the first. */
int repo_key_wal_variant(const RepoEpoch *epoch, const WalName *name, const unsigned char sha256[32],
			 char *buf, size_t size);

#endif
