/*
 * pushfile.c - storing one WAL file, as walship-push does for the file it
 * is asked for and for each file it stores ahead of its call (see
 * pushfile.h).
 *
 * Why each check: %f becomes a repository key (so only WAL names pass); a
 * segment must have the epoch's size and a long page header of this cluster
 * at the address its name says (.history and .backup files carry no system
 * identifier: the caller matched global/pg_control to the epoch).
 */
#include "wal/pushfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pg/walpage.h"
#include "repo/keys.h"
#include "util/log.h"
#include "util/mem.h"

int push_file_init(PushFile *f, const char *path, const char *name, WsError *err)
{
	memset(f, 0, sizeof(*f));
	f->path = path;
	f->fd = -1;
	int rc = walname_parse(name, &f->name, err);
	if (rc == 0)
		snprintf(f->what, sizeof(f->what), "WAL file \"%s\"", f->name.name);
	return rc;
}

void push_file_close(PushFile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static int discard_write(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	(void)ctx, (void)buf, (void)len, (void)err;
	return 0;
}

int push_file_sha256(PushFile *f, unsigned char out[32], WsError *err)
{
	unsigned char buf[256 * 1024];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = 0;
	off_t pos = 0;
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = ws_error(err, WS_FATAL, "could not initialise SHA-256");
		goto done;
	}
	for (;;) {
		ssize_t n = pread(f->fd, buf, sizeof(buf), pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ws_error_errno(err, WS_FATAL, errno, "could not read file \"%s\"", f->path);
			goto done;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)n);
		pos += n;
	}
	EVP_DigestFinal_ex(md, out, NULL);
done:
	EVP_MD_CTX_free(md);
	return rc;
}

static int open_wal_file(PushFile *f, const ClusterInfo *ci, const RepoEpoch *epoch, WsError *err)
{
	struct stat st;
	f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not open WAL file \"%s\"", f->path);
	if (fstat(f->fd, &st) != 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not stat WAL file \"%s\"", f->path);
	if (!S_ISREG(st.st_mode))
		return ws_error(err, WS_FATAL, "\"%s\" is not a regular file", f->path);
	f->size = (uint64_t)st.st_size;
	(void)posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);

	if (f->name.kind == WAL_HISTORY || f->name.kind == WAL_BACKUP) {
		if (f->size > WAL_SMALL_FILE_MAX)
			return ws_error(err, WS_FATAL, "%s \"%s\" has %" PRIu64 " bytes, more than any %s",
					walname_kind_str(f->name.kind), f->name.name, f->size,
					walname_kind_str(f->name.kind));
		return 0;
	}

	/* Segments and .partial files: full size, this cluster's page header. */
	int rc = walname_check_segsize(&f->name, epoch->seg_size, err);
	if (rc != 0)
		return rc;
	if (f->size != epoch->seg_size) {
		char want[32];
		ws_error(err, WS_FATAL, "WAL file \"%s\" has %" PRIu64 " bytes, expected %" PRIu32 " (%s)",
			 f->name.name, f->size, epoch->seg_size,
			 cluster_size_str(epoch->seg_size, want, sizeof(want)));
		ws_error_hint(err, "A truncated or foreign file is never archived. Check \"%s\".", f->path);
		return WS_FATAL;
	}
	unsigned char page[WAL_LONG_HEADER_SIZE];
	ssize_t n = pread(f->fd, page, sizeof(page), 0);
	if (n < 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not read WAL file \"%s\"", f->path);
	rc = wal_page_check(page, (size_t)n, ci->pg_major, ci->control.sysid, epoch->seg_size,
			    walname_segno(&f->name, epoch->seg_size), f->name.name, err);
	if (rc != 0)
		ws_error_hint(err, "WAL file \"%s\" was not archived. Check where \"%s\" came from.",
			      f->name.name, f->path);
	return rc;
}

/* Put the file's content as an object under key, no-overwrite. */
static int put_file(Repo *repo, PushFile *f, const char *key, ObjInfo *info, WsError *err)
{
	if (lseek(f->fd, 0, SEEK_SET) < 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not seek in \"%s\"", f->path);
	FdReader rd = {f->fd, f->what};
	return repo_put_object(repo, key, fd_reader_read, &rd, f->size, true, info, err);
}

/*
 * key already exists: compare the stored object (read and verified whole,
 * described in *info) with the local file.  *same tells the outcome; a
 * corrupt stored object is an error.
 */
static int compare_stored(Repo *repo, PushFile *f, const char *key, unsigned char local[32], ObjInfo *info,
			  int *same, WsError *err)
{
	int rc = push_file_sha256(f, local, err);
	if (rc != 0)
		return rc;
	rc = repo_get_object(repo, key, f->size > WAL_SMALL_FILE_MAX ? f->size : WAL_SMALL_FILE_MAX,
			     discard_write, NULL, info, err);
	if (rc == WS_CORRUPT) {
		ws_error_prefix(err,
				"WAL file \"%s\" is already in the repository but the stored copy is damaged",
				f->name.name);
		ws_error_hint(
			err,
			"Move the damaged object \"%s\" aside in repository \"%s\" and let the archiver "
			"retry.",
			key, repo_display(repo));
	}
	if (rc != 0)
		return rc;
	*same = memcmp(local, info->sha256, 32) == 0 && info->content_size == f->size;
	return 0;
}

/* f's content is now in the repository: under key, in an object of stored_size bytes. */
static void stored_as(PushFile *f, const unsigned char sha256[32], const char *key, uint64_t stored_size)
{
	memcpy(f->sha256, sha256, 32);
	snprintf(f->key, sizeof(f->key), "%s", key);
	f->stored_size = stored_size;
}

static int push_existing(Repo *repo, const RepoEpoch *epoch, PushFile *f, const char *key, WsError *err)
{
	unsigned char local[32];
	char lhex[65], shex[65];
	ObjInfo info;
	int same = 0;
	int rc = compare_stored(repo, f, key, local, &info, &same, err);
	if (rc != 0)
		return rc;
	if (same) {
		stored_as(f, local, key, info.stored_size);
		log_info("WAL file \"%s\" is already archived with the same content", f->name.name);
		return 0;
	}
	hex_encode(local, 32, lhex);
	hex_encode(info.sha256, 32, shex);

	if (f->name.kind == WAL_SEGMENT || f->name.kind == WAL_HISTORY) {
		ws_error(err, WS_FATAL, "WAL file \"%s\" is already archived with different content",
			 f->name.name);
		ws_error_detail(err, "Stored SHA-256 %s, new SHA-256 %s.", shex, lhex);
		ws_error_hint(
			err,
			"The stored copy is kept. Find out which cluster wrote each (a promoted standby or a "
			"cloned data directory archiving into the same repository?) before removing one.");
		return WS_FATAL;
	}

	/* Recovery never reads .partial and .backup files: keep both, do not block the archiver. */
	char vkey[STORE_KEY_MAX];
	if (repo_key_wal_variant(epoch, &f->name, local, vkey, sizeof(vkey)) != 0)
		return ws_error(err, WS_FATAL, "repository key for \"%s\" is too long", f->name.name);
	rc = put_file(repo, f, vkey, &info, err);
	if (rc == WS_EXISTS) {
		rc = compare_stored(repo, f, vkey, local, &info, &same, err);
		if (rc == 0 && !same)
			rc = ws_error(err, WS_FATAL, "%s \"%s\" conflicts with stored \"%s\"",
				      walname_kind_str(f->name.kind), f->name.name, vkey);
		if (rc != 0)
			return rc;
	} else if (rc != 0) {
		return rc;
	}
	log_warning("%s \"%s\" differs from the archived one; stored it beside as \"%s\"",
		    walname_kind_str(f->name.kind), f->name.name, vkey);
	log_detail("Stored SHA-256 %s, new SHA-256 %s.", shex, lhex);
	stored_as(f, local, vkey, info.stored_size);
	return 0;
}

int push_file_store(Repo *repo, const ClusterInfo *ci, const RepoEpoch *epoch, PushFile *f, WsError *err)
{
	char key[STORE_KEY_MAX];
	ObjInfo info;
	int rc = open_wal_file(f, ci, epoch, err);
	if (rc != 0)
		return rc;
	if (repo_key_wal(epoch, &f->name, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "repository key for \"%s\" is too long", f->name.name);
	rc = put_file(repo, f, key, &info, err);
	if (rc == WS_EXISTS)
		return push_existing(repo, epoch, f, key, err);
	if (rc != 0)
		return rc;
	char hex[65];
	stored_as(f, info.sha256, key, info.stored_size);
	hex_encode(info.sha256, 32, hex);
	log_info("archived \"%s\"%s (%" PRIu64 " bytes, stored %" PRIu64 ", SHA-256 %s)", f->name.name,
		 f->ahead ? " ahead of its call" : "", info.content_size, info.stored_size, hex);
	return 0;
}
