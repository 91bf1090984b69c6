/*
 * push.c - archive_command: validate one WAL file, then compress, checksum and
 * store it with no-overwrite; an existing object is compared, never replaced.
 *
 * Why each check: %f becomes a repository key (so only WAL names pass);
 * global/pg_control must match the repository's newest epoch (.history and
 * .backup files carry no system identifier); a segment must have the epoch's
 * size and a long page header of this cluster at the address its name says.
 */
#include "cmd/push.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cluster.h"
#include "pg/walname.h"
#include "pg/walpage.h"
#include "repo/keys.h"
#include "repo/repo.h"
#include "util/log.h"
#include "util/mem.h"

/* History and backup files are a few KiB; anything this big is not one. */
#define SMALL_FILE_MAX (16u * 1024 * 1024)

typedef struct PushFile {
	const char *path;
	WalName name;
	int fd;
	uint64_t size;
	char what[WAL_NAME_MAX + 16];
} PushFile;

static int discard_write(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	(void)ctx, (void)buf, (void)len, (void)err;
	return 0;
}

/* SHA-256 of the whole local file (the rare duplicate path only). */
static int file_sha256(PushFile *f, unsigned char out[32], WsError *err)
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
		if (f->size > SMALL_FILE_MAX)
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
 * key already exists: compare the stored object (read and verified whole) with
 * the local file.  *same tells the outcome; a corrupt stored object is an error.
 */
static int compare_stored(Repo *repo, PushFile *f, const char *key, unsigned char local[32],
			  unsigned char stored[32], int *same, WsError *err)
{
	ObjInfo info;
	int rc = file_sha256(f, local, err);
	if (rc != 0)
		return rc;
	rc = repo_get_object(repo, key, f->size > SMALL_FILE_MAX ? f->size : SMALL_FILE_MAX, discard_write,
			     NULL, &info, err);
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
	memcpy(stored, info.sha256, 32);
	*same = memcmp(local, stored, 32) == 0 && info.content_size == f->size;
	return 0;
}

static int push_existing(Repo *repo, const RepoEpoch *epoch, PushFile *f, const char *key, WsError *err)
{
	unsigned char local[32], stored[32];
	char lhex[65], shex[65];
	int same = 0;
	int rc = compare_stored(repo, f, key, local, stored, &same, err);
	if (rc != 0)
		return rc;
	if (same) {
		log_info("WAL file \"%s\" is already archived with the same content", f->name.name);
		return 0;
	}
	hex_encode(local, 32, lhex);
	hex_encode(stored, 32, shex);

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
	ObjInfo info;
	rc = put_file(repo, f, vkey, &info, err);
	if (rc == WS_EXISTS) {
		rc = compare_stored(repo, f, vkey, local, stored, &same, err);
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
	return 0;
}

int cmd_push(const Config *cfg, const char *pgdata, const char *path, const char *name, WsError *err)
{
	PushFile f = {.path = path, .fd = -1};
	ClusterInfo ci;
	Repo *repo = NULL;
	const RepoEpoch *epoch;
	char key[STORE_KEY_MAX];
	int rc;

	if ((rc = walname_parse(name, &f.name, err)) != 0)
		return rc;
	snprintf(f.what, sizeof(f.what), "WAL file \"%s\"", f.name.name);
	if ((rc = cluster_read(pgdata, &ci, err)) != 0)
		goto done;
	if ((rc = repo_open(cfg, &repo, err)) != 0)
		goto done;
	if ((rc = cluster_push_epoch(repo_meta(repo), &ci, repo_display(repo), &epoch, err)) != 0)
		goto done;
	if ((rc = open_wal_file(&f, &ci, epoch, err)) != 0)
		goto done;
	if (repo_key_wal(epoch, &f.name, key, sizeof(key)) != 0) {
		rc = ws_error(err, WS_FATAL, "repository key for \"%s\" is too long", f.name.name);
		goto done;
	}

	ObjInfo info;
	rc = put_file(repo, &f, key, &info, err);
	if (rc == WS_EXISTS) {
		rc = push_existing(repo, epoch, &f, key, err);
	} else if (rc == 0) {
		char hex[65];
		hex_encode(info.sha256, 32, hex);
		log_info("archived \"%s\" (%" PRIu64 " bytes, stored %" PRIu64 ", SHA-256 %s)", f.name.name,
			 info.content_size, info.stored_size, hex);
	}
done:
	if (rc != 0 && rc != WS_USAGE && err->msg[0] && strstr(err->msg, f.name.name) == NULL &&
	    f.name.name[0])
		ws_error_prefix(err, "could not archive \"%s\"", f.name.name);
	if (f.fd >= 0)
		close(f.fd);
	repo_free(repo);
	return rc;
}
