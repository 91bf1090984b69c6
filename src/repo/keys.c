/*
 * keys.c - repository keys of WAL files: one directory per timeline and "log"
 * keeps listings short (256 segments of 16 MiB each), history files sit at
 * the top of wal/ where timeline lookups find them with one listing.
 */
#include "repo/keys.h"

#include <inttypes.h>

#include "util/mem.h"

int repo_key_wal(const RepoEpoch *epoch, const WalName *name, char *buf, size_t size)
{
	if (name->kind == WAL_HISTORY)
		return str_format(buf, size, "%s/wal/%s", epoch->id, name->name);
	/* Segments, .partial and .backup files: the directory of their first 16 hex digits. */
	return str_format(buf, size, "%s/wal/%08" PRIX32 "%08" PRIX32 "/%s", epoch->id, name->tli, name->log,
			  name->name);
}

int repo_key_wal_variant(const RepoEpoch *epoch, const WalName *name, const unsigned char sha256[32],
			 char *buf, size_t size)
{
	char hex[65];
	char key[1024];
	if (repo_key_wal(epoch, name, key, sizeof(key)) < 0)
		return -1;
	hex_encode(sha256, 32, hex);
	return str_format(buf, size, "%s@%.16s", key, hex);
}
