/*
 * pushfile.h - one WAL file stored by walship-push: validated (a WAL name; a
 * segment of the epoch's size with this cluster's page header at the address
 * its name says; a .history or .backup file of a few KiB), compressed,
 * checksummed and stored with no-overwrite.  An object already there is
 * read and compared, never replaced: the same content is success; a
 * different segment or .history fails with both SHA-256; a different
 * .partial or .backup (recovery never reads them) is stored beside the
 * first under NAME@<16 hex of its SHA-256>, with a warning.
 */
#ifndef WALSHIP_WAL_PUSHFILE_H
#define WALSHIP_WAL_PUSHFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "pg/cluster.h"
#include "pg/walname.h"
#include "repo/repo.h"
#include "util/error.h"

typedef struct PushFile {
	const char *path; /* borrowed */
	WalName name;
	int fd;
	uint64_t size;
	bool ahead;               /* stored for a later call (parallel push) */
	unsigned char sha256[32]; /* of the content now in the repository, once stored */
	char key[STORE_KEY_MAX];  /* the object holding it, once stored */
	uint64_t stored_size;     /* that object's size */
	char what[WAL_NAME_MAX + 16];
} PushFile;

/* f for the file at path (kept, not copied) named name (%f): WS_USAGE when name is not a WAL file name. */
int push_file_init(PushFile *f, const char *path, const char *name, WsError *err);

/*
 * Validate f and store it (or find it stored): the whole work of a push once
 * the repository and its epoch are known.  f->fd is opened here; on success
 * f->sha256, f->key and f->stored_size say what the repository holds.
 */
int push_file_store(Repo *repo, const ClusterInfo *ci, const RepoEpoch *epoch, PushFile *f, WsError *err);

/* SHA-256 of the whole local file, f->fd open (the rare duplicate path, and push records). */
int push_file_sha256(PushFile *f, unsigned char out[32], WsError *err);

/* Close f->fd if open. */
void push_file_close(PushFile *f);

#endif
