/*
 * fetch.c - restore_command: fetch, verify and decompress one WAL file.
 *
 * The one rule that matters: "not found" (exit 1) is said only by a
 * repository proven healthy in this call.  Everything else aborts recovery
 * (200) so PostgreSQL stops with our message in its log instead of promoting
 * at the wrong point; a standby instead gets 1 and retries (a FATAL in its
 * startup process would shut the server down).  A segment already in the
 * prefetch spool is served without opening the repository: serving a
 * verified file needs no proof of health, only "not found" does.
 */
#include "cmd/fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg/cluster.h"
#include "pg/pgmajor.h"
#include "pg/walname.h"
#include "pg/walpage.h"
#include "repo/keys.h"
#include "repo/repo.h"
#include "util/cleanup.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"
#include "wal/prefetch_runner.h"
#include "wal/prefetch_spool.h"
#include "wal/sink.h"

/* The data directory of a frontend tool's %p: <pgdata>/pg_wal/<name>. */
static char *frontend_pgdata(const char *path)
{
	char *dir = fs_dirname(path);
	char *pgdata = NULL;
	if (strcmp(fs_basename(dir), "pg_wal") == 0 || strcmp(fs_basename(dir), "pg_xlog") == 0)
		pgdata = fs_dirname(dir);
	free(dir);
	return pgdata ? pgdata : xstrdup(".");
}

static char *request_pgdata(const FetchRequest *req)
{
	if (req->pgdata != NULL)
		return xstrdup(req->pgdata);
	if (fetch_mode_detect(req->mode, ".", 0, req->path) == FETCH_MODE_FRONTEND)
		return frontend_pgdata(req->path);
	return xstrdup(".");
}

/*
 * The mode of this call: a frontend tool is known from %p alone, so its errors
 * abort whatever fails below; otherwise the data directory tells.  When
 * PG_VERSION cannot be read, standby.signal or recovery.conf's standby_mode
 * still make it a standby; else auto answers as in recovery.
 */
static int resolve_mode(const FetchRequest *req, const char *pgdata, FetchMode *mode, int *pg_major,
			WsError *err)
{
	*mode = req->mode;
	if (fetch_mode_detect(req->mode, ".", 0, req->path) == FETCH_MODE_FRONTEND)
		*mode = FETCH_MODE_FRONTEND;
	int rc = pg_version_read(pgdata, pg_major, err);
	if (rc == 0)
		*mode = fetch_mode_detect(req->mode, pgdata, *pg_major, req->path);
	else if (*mode == FETCH_MODE_AUTO &&
		 (fetch_mode_detect(req->mode, pgdata, PG_MAJOR(12), req->path) == FETCH_MODE_STANDBY ||
		  fetch_mode_detect(req->mode, pgdata, PG_MAJOR(11), req->path) == FETCH_MODE_STANDBY))
		/* Without PG_VERSION either way of saying "standby" counts: a standby must not get 200. */
		*mode = FETCH_MODE_STANDBY;
	return rc;
}

FetchMode fetch_mode_of(const FetchRequest *req)
{
	FetchMode mode;
	int major;
	WsError ignored;
	char *pgdata = request_pgdata(req);
	(void)resolve_mode(req, pgdata, &mode, &major, &ignored);
	free(pgdata);
	return mode;
}

int fetch_exit_code(int rc, FetchMode mode)
{
	if (rc == 0)
		return 0;
	if (rc == WS_NOT_FOUND)
		return 1;
	if (rc == WS_USAGE)
		return FETCH_EXIT_ABORT;
	return mode == FETCH_MODE_STANDBY ? 1 : FETCH_EXIT_ABORT;
}

/*
 * Fetches key (WAL file name of this cluster, epoch) from the repository into a
 * temp file beside path, checks a segment's size and page header, and installs
 * it.  *absent is set when the repository answered "no such object".
 */
static int fetch_from_repo(Repo *repo, const RepoEpoch *epoch, const ClusterInfo *ci, const WalName *name,
			   const char *key, const char *path, bool *absent, WsError *err)
{
	WalTemp tmp = WAL_TEMP_NONE;
	char what[WAL_NAME_MAX + 32];
	int rc;

	if ((rc = wal_temp_open(&tmp, path, err)) != 0)
		return rc;
	snprintf(what, sizeof(what), "\"%s\"", tmp.path);

	bool segment_like = name->kind == WAL_SEGMENT || name->kind == WAL_PARTIAL;
	WalSink sink = {.fd = tmp.fd, .what = what};
	ObjInfo info;
	rc = repo_get_object(repo, key, segment_like ? epoch->seg_size : WAL_SMALL_FILE_MAX, wal_sink_write,
			     &sink, &info, err);
	if (rc == WS_NOT_FOUND) {
		/* walship.json was read and matched this cluster: a true "not found". */
		log_debug("WAL file \"%s\" is not in repository \"%s\"", name->name, repo_display(repo));
		*absent = true;
		goto done;
	}
	if (rc != 0) {
		ws_error_prefix(err, "could not restore WAL file \"%s\"", name->name);
		goto done;
	}
	if (segment_like) {
		if (sink.written != epoch->seg_size) {
			rc = ws_error(err, WS_CORRUPT,
				      "stored WAL file \"%s\" has %" PRIu64 " bytes, expected %" PRIu32,
				      name->name, sink.written, epoch->seg_size);
			goto done;
		}
		rc = wal_page_check(sink.head, sizeof(sink.head), ci->pg_major, ci->control.sysid,
				    epoch->seg_size, walname_segno(name, epoch->seg_size), name->name, err);
		if (rc != 0) {
			ws_error_prefix(err, "stored object \"%s\" in repository \"%s\" is not this WAL file",
					key, repo_display(repo));
			goto done;
		}
	}
	if ((rc = wal_temp_install(&tmp, path, err)) != 0)
		goto done;
	log_info("restored \"%s\" (%" PRIu64 " bytes) to \"%s\"", name->name, info.content_size, path);
done:
	wal_temp_close(&tmp);
	return rc;
}

int cmd_fetch(const Config *cfg, const FetchRequest *req, FetchMode *mode, WsError *err)
{
	WalName name;
	ClusterInfo ci;
	Repo *repo = NULL;
	Prefetch *pf = NULL;
	const RepoEpoch *epoch;
	char key[STORE_KEY_MAX];
	char *pgdata = NULL;
	int rc;
	bool spool_tried = false, absent = false;

	if ((rc = walname_parse(req->name, &name, err)) != 0) {
		if (walname_args_swapped(req->path, req->name))
			ws_error_hint(err, "The arguments look swapped: restore_command takes %%f %%p "
					   "(walship-fetch %%f %%p).");
		return rc;
	}
	if (req->path[0] == '\0')
		return ws_error(err, WS_USAGE, "the target path (%%p) is empty");

	pgdata = request_pgdata(req);
	rc = resolve_mode(req, pgdata, mode, &ci.pg_major, err);
	cleanup_set_fatal_code(fetch_exit_code(WS_FATAL, *mode));
	if (rc != 0)
		goto done;
	log_debug("fetching \"%s\" in %s mode", name.name, fetch_mode_str(*mode));

	if ((rc = pg_control_read(pgdata, &ci.control, err)) != 0)
		goto done;

	/*
	 * Only recovery's own requests for segments prefetch (prefetch.h): never
	 * pg_rewind's %p, never history files, whose answers decide timelines.
	 */
	bool prefetchable = name.kind == WAL_SEGMENT &&
			    (*mode == FETCH_MODE_RECOVERY || *mode == FETCH_MODE_STANDBY) &&
			    strcmp(fs_basename(req->path), "RECOVERYXLOG") == 0;
	WsError ignored;
	if (prefetchable && walname_check_segsize(&name, ci.control.seg_size, &ignored) == 0 &&
	    (pf = prefetch_open_indexed(cfg, &ci, pgdata, req->epoch)) != NULL) {
		/* Spooled and verified: no round trip to the store.  Anything else asks the repository. */
		rc = prefetch_serve(pf, &name, req->path, err);
		if (rc != WS_NOT_FOUND) {
			if (rc == 0)
				prefetch_request(pf, &name);
			goto done;
		}
		prefetch_free(pf);
		pf = NULL;
		rc = 0;
		spool_tried = true;
	}

	if ((rc = repo_open(cfg, &repo, err)) != 0)
		goto done;
	if ((rc = cluster_fetch_epoch(repo_meta(repo), &ci, req->epoch, repo_display(repo), &epoch, err)) !=
	    0)
		goto done;
	if (name.kind != WAL_HISTORY && (rc = walname_check_segsize(&name, epoch->seg_size, err)) != 0)
		goto done;
	if (repo_key_wal(epoch, &name, key, sizeof(key)) != 0) {
		rc = ws_error(err, WS_FATAL, "repository key for \"%s\" is too long", name.name);
		goto done;
	}

	if (prefetchable)
		pf = prefetch_open(cfg, repo, epoch, &ci, pgdata);
	if (pf != NULL) {
		/* Looked at already (not spooled, or damaged and removed): the repository's copy, as if never
		 * spooled. */
		if (!spool_tried) {
			rc = prefetch_serve(pf, &name, req->path, err);
			if (rc != WS_NOT_FOUND) {
				if (rc == 0)
					prefetch_request(pf, &name);
				goto done;
			}
		}
		/* Not spooled: ask for what follows before fetching this one, so both overlap. */
		prefetch_request(pf, &name);
		rc = 0;
	}

	rc = fetch_from_repo(repo, epoch, &ci, &name, key, req->path, &absent, err);
done:
	/*
	 * "Not found" has one source: the repository's answer above.  Any other
	 * WS_NOT_FOUND (a file of the data directory, the spool, a helper that
	 * calls a missing file so) is an error, never exit 1.
	 */
	if (rc == WS_NOT_FOUND && !absent) {
		err->cls = WS_FATAL;
		rc = WS_FATAL;
	}
	free(pgdata);
	prefetch_free(pf);
	repo_free(repo);
	return rc;
}
