/*
 * verify.c - walship verify: reads every object's header and trailer (or,
 * with --full, the whole object through the decoder), holds each backup's
 * objects against its manifest.json, and follows the WAL each backup needs
 * along every timeline with list.c's windows, so that what verify calls whole
 * is what walship list promises and walship rebuild can use.
 *
 * The whole repository is listed once, up front: the keys are needed to find
 * what is missing and what is left over, and reading objects from inside a
 * listing callback would share the store handle with a paginated listing.
 */
#include "cmd/verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pg/lsn.h"
#include "repo/jsonfile.h"
#include "repo/keys.h"
#include "repo/lock.h"
#include "repo/object.h"
#include "repo/repo.h"
#include "util/log.h"
#include "util/mem.h"

/* Objects up to this size are read whole in header mode: one request instead of two. */
#define SMALL_OBJECT 4096

const char *verify_kind_name(VerifyKind kind)
{
	switch (kind) {
	case VERIFY_MISSING:
		return "missing";
	case VERIFY_CORRUPT:
		return "corrupt";
	case VERIFY_MISMATCH:
		return "mismatch";
	case VERIFY_GAP:
		return "gap";
	case VERIFY_ORPHAN:
		return "orphan";
	}
	return "unknown";
}

/* ---- WAL continuity (pure) ---- */

typedef struct SegSeen {
	uint32_t tli;
	uint64_t segno;
} SegSeen;

/* Several windows show the same hole (a parent's WAL before a fork): report it once. */
static bool seen_add(SegSeen **s, int *n, uint32_t tli, uint64_t segno)
{
	for (int i = 0; i < *n; i++)
		if ((*s)[i].tli == tli && (*s)[i].segno == segno)
			return false;
	*s = xrealloc(*s, (size_t)(*n + 1) * sizeof(**s));
	(*s)[*n].tli = tli;
	(*s)[*n].segno = segno;
	(*n)++;
	return true;
}

static void seg_key(const RepoEpoch *ep, uint32_t tli, uint64_t segno, char name[32], char *key, size_t size)
{
	WalName n;
	wal_segment_name(tli, segno, ep->seg_size, name);
	if (walname_parse(name, &n, NULL) != 0 || repo_key_wal(ep, &n, key, size) != 0)
		snprintf(key, size, "%s", name);
}

int verify_wal(const RepoEpoch *ep, const BackupMeta *const *backups, int nb, const CatalogTimeline *tls,
	       int ntl, const CatalogWindow *w, int nw, VerifyProblemFn fn, void *ctx)
{
	SegSeen *seen = NULL;
	int nseen = 0, n = 0;
	char name[32], last[32], end[LSN_STR_MAX], key[STORE_KEY_MAX];
	WsError e;

	/* Holes inside a backup's own span first: their message names the backup that cannot be rebuilt. */
	for (int i = 0; i < nw; i++) {
		for (int j = 0; j < w[i].nunusable; j++) {
			const CatalogUnusable *u = &w[i].unusable[j];
			if (!seen_add(&seen, &nseen, u->missing_tli, u->missing_segno))
				continue;
			seg_key(ep, u->missing_tli, u->missing_segno, name, key, sizeof(key));
			ws_error(&e, WS_CORRUPT,
				 "WAL file \"%s\" is missing on timeline %" PRIu32 " (needed by backup %s)",
				 name, u->missing_tli, u->backup->id);
			ws_error_detail(
				&e,
				"Backup %s needs every WAL file from %s to %s: without this one it cannot "
				"be rebuilt.",
				u->backup->id, u->backup->start_wal, u->backup->stop_wal);
			ws_error_hint(
				&e, "Push the file again from a server's pg_wal or another copy if there is "
				    "one; else take a new backup.");
			fn(ctx, VERIFY_MISSING, key, &e);
			n++;
		}
	}

	for (int i = 0; i < nw; i++) {
		for (int j = 0; j < w[i].ngaps; j++) {
			const CatalogGap *g = &w[i].gaps[j];
			const CatalogRange *before = &w[i].ranges[0];
			if (!seen_add(&seen, &nseen, g->tli, g->first_segno))
				continue;
			for (int r = 1; r < w[i].nranges; r++)
				if (w[i].ranges[r].to_segno < g->first_segno)
					before = &w[i].ranges[r];
			seg_key(ep, g->tli, g->first_segno, name, key, sizeof(key));
			if (g->count == 1)
				ws_error(&e, WS_CORRUPT,
					 "WAL file \"%s\" is missing on timeline %" PRIu32
					 " (a gap after backup %s)",
					 name, g->tli, before->from_backup->id);
			else {
				wal_segment_name(g->tli, g->first_segno + g->count - 1, ep->seg_size, last);
				ws_error(&e, WS_CORRUPT,
					 "WAL files \"%s\" to \"%s\" are missing on timeline %" PRIu32
					 " (a gap of %" PRIu64 " segments after backup %s)",
					 name, last, g->tli, g->count, before->from_backup->id);
			}
			lsn_format(before->to_lsn, end);
			ws_error_detail(
				&e,
				"A rebuild from backup %s or an earlier one stops at %s on timeline %" PRIu32
				"; the WAL after the gap %s.",
				before->from_backup->id, end, w[i].tli,
				g->reachable_after ? "is reachable only from a backup taken after it"
						   : "is not reachable from any backup");
			ws_error_hint(
				&e,
				"Push the missing files again from another copy if there is one; else take "
				"a new backup (walship backup) so that the WAL after the gap is usable.");
			fn(ctx, VERIFY_GAP, key, &e);
			n++;
		}
	}
	free(seen);

	for (int i = 0; i < ntl; i++) {
		const CatalogTimeline *t = &tls[i];
		const char *bid = NULL;
		char hist[32], seg_text[64] = "";
		if (t->tli <= 1 || t->has_history)
			continue;
		for (int b = 0; b < nb && bid == NULL; b++)
			if (backups[b]->timeline == t->tli)
				bid = backups[b]->id;
		if (t->nsegs == 0 && bid == NULL)
			continue;
		snprintf(hist, sizeof(hist), "%08" PRIX32 ".history", t->tli);
		if (str_format(key, sizeof(key), "%s/wal/%s", ep->id, hist) != 0)
			snprintf(key, sizeof(key), "%s", hist);
		if (t->nsegs > 0)
			snprintf(seg_text, sizeof(seg_text), "%zu WAL segment%s", t->nsegs,
				 t->nsegs == 1 ? "" : "s");
		ws_error(&e, WS_CORRUPT,
			 "history file \"%s\" is missing: timeline %" PRIu32 " is in use (%s%s%s%s)", hist,
			 t->tli, seg_text, seg_text[0] && bid ? ", " : "", bid ? "backup " : "",
			 bid ? bid : "");
		ws_error_detail(&e,
				"Without it recovery cannot follow timeline %" PRIu32
				" from its parent: only backups taken on timeline %" PRIu32
				" itself reach its WAL.",
				t->tli, t->tli);
		ws_error_hint(&e,
			      "Push %s from the pg_wal directory of the server that started timeline %" PRIu32
			      " (walship-push pg_wal/%s %s, run in its data directory).",
			      hist, t->tli, hist, hist);
		fn(ctx, VERIFY_MISSING, key, &e);
		n++;
	}
	return n;
}

/* ---- what a key is (pure) ---- */

static bool lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static VerifyKeyKind wal_kind(VerifyKey *out, const char *rel)
{
	const char *slash = strchr(rel, '/');
	char base[WAL_NAME_MAX];

	if (slash == NULL)
		return walname_parse(rel, &out->wal, NULL) == 0 && out->wal.kind == WAL_HISTORY
			       ? VERIFY_KEY_WAL
			       : VERIFY_KEY_FOREIGN;
	/* Only the directory repo_key_wal names is one fetch can find. */
	const char *file = slash + 1;
	const char *at = strchr(file, '@');
	size_t len = at != NULL ? (size_t)(at - file) : strlen(file);
	if (slash - rel != 16 || strchr(file, '/') != NULL || len >= sizeof(base))
		return VERIFY_KEY_FOREIGN;
	memcpy(base, file, len);
	base[len] = '\0';
	if (walname_parse(base, &out->wal, NULL) != 0 || out->wal.kind == WAL_HISTORY ||
	    strncmp(rel, base, 16) != 0)
		return VERIFY_KEY_FOREIGN;
	if (out->wal.kind == WAL_SEGMENT && walname_check_segsize(&out->wal, out->epoch->seg_size, NULL) != 0)
		return VERIFY_KEY_FOREIGN;
	if (at == NULL)
		return VERIFY_KEY_WAL;
	/* walship-push keeps differing copies of .partial and .backup files only. */
	if (out->wal.kind == WAL_SEGMENT || strlen(at + 1) != 16 || !lower_hex(at + 1, 16))
		return VERIFY_KEY_FOREIGN;
	memcpy(out->variant, at + 1, 17);
	return VERIFY_KEY_VARIANT;
}

static VerifyKeyKind backup_kind(VerifyKey *out, const char *rel)
{
	const char *slash = strchr(rel, '/');
	if (slash == NULL || (size_t)(slash - rel) >= sizeof(out->backup_id))
		return VERIFY_KEY_FOREIGN;
	memcpy(out->backup_id, rel, (size_t)(slash - rel));
	out->backup_id[slash - rel] = '\0';
	if (!backup_id_valid(out->backup_id) || slash[1] == '\0' || strchr(slash + 1, '/') != NULL) {
		out->backup_id[0] = '\0';
		return VERIFY_KEY_FOREIGN;
	}
	out->name = slash + 1;
	return VERIFY_KEY_BACKUP;
}

VerifyKeyKind verify_key_kind(const RepoMeta *meta, const char *key, VerifyKey *out)
{
	const char *slash = strchr(key, '/');

	memset(out, 0, sizeof(*out));
	if (strcmp(key, REPO_META_KEY) == 0 || strcmp(key, REPO_LOCK_KEY) == 0 ||
	    strncmp(key, REPO_LEASE_PREFIX, strlen(REPO_LEASE_PREFIX)) == 0)
		return VERIFY_KEY_REPO;
	if (slash == NULL)
		return VERIFY_KEY_FOREIGN;
	for (int i = 0; i < meta->n_epochs; i++) {
		size_t len = strlen(meta->epochs[i].id);
		if ((size_t)(slash - key) == len && strncmp(key, meta->epochs[i].id, len) == 0)
			out->epoch = &meta->epochs[i];
	}
	if (out->epoch == NULL)
		return VERIFY_KEY_FOREIGN;
	if (strncmp(slash + 1, "wal/", 4) == 0)
		return wal_kind(out, slash + 5);
	if (strncmp(slash + 1, "backups/", 8) == 0)
		return backup_kind(out, slash + 9);
	return VERIFY_KEY_FOREIGN;
}

/* ---- the command ---- */

typedef struct Entry {
	char *key;
	uint64_t size;
} Entry;

typedef struct Verify {
	Repo *repo;
	Store *store;
	const RepoMeta *meta;
	bool full;
	bool encrypted;
	Entry *e; /* the whole repository, sorted */
	size_t n, cap;
	bool locked; /* walship.lock is there: a backup or prune may be running */
	CatalogEpoch *scans;
	int nscans;
	char **scan_keys; /* keys catalog_scan_epoch reported: not reported again */
	int nscan_keys;
	int nproblems;
	json_t *problems;
	uint64_t nobjects;
	uint64_t bytes;
} Verify;

static void report(void *ctx, VerifyKind kind, const char *key, const WsError *e)
{
	Verify *v = ctx;
	char *text;

	v->nproblems++;
	/* One write per problem, so that its lines stay together. */
	text = xasprintf("%s: problem: %s\n%s%s%s%s%s%s%s%s", log_progname(), e->msg,
			 e->detail[0] ? log_progname() : "", e->detail[0] ? ": detail: " : "", e->detail,
			 e->detail[0] ? "\n" : "", e->hint[0] ? log_progname() : "",
			 e->hint[0] ? ": hint: " : "", e->hint, e->hint[0] ? "\n" : "");
	fflush(stdout);
	fputs(text, stderr);
	free(text);

	json_t *o = json_object();
	json_object_set_new(o, "kind", json_string(verify_kind_name(kind)));
	json_object_set_new(o, "key", json_string(key));
	json_object_set_new(o, "message", json_string(e->msg));
	if (e->detail[0])
		json_object_set_new(o, "detail", json_string(e->detail));
	if (e->hint[0])
		json_object_set_new(o, "hint", json_string(e->hint));
	json_array_append_new(v->problems, o);
}

static void scan_problem(void *ctx, const CatalogProblem *p, WsError *e)
{
	Verify *v = ctx;
	if (p->backup_id != NULL) {
		ws_error_prefix(e, "manifest.json of backup %s (epoch \"%s\") is unusable", p->backup_id,
				p->epoch);
		if (!e->hint[0])
			ws_error_hint(e, "The backup cannot be rebuilt without it: take a new backup.");
	} else {
		ws_error_prefix(e, "history file of timeline %" PRIu32 " (epoch \"%s\") is unusable", p->tli,
				p->epoch);
		if (!e->hint[0])
			ws_error_hint(
				e, "Push the history file again from the pg_wal directory of the server that "
				   "started the timeline.");
	}
	v->scan_keys = xrealloc(v->scan_keys, (size_t)(v->nscan_keys + 1) * sizeof(*v->scan_keys));
	v->scan_keys[v->nscan_keys++] = xstrdup(p->key);
	report(v, VERIFY_CORRUPT, p->key, e);
}

static bool scan_reported(const Verify *v, const char *key)
{
	for (int i = 0; i < v->nscan_keys; i++)
		if (strcmp(v->scan_keys[i], key) == 0)
			return true;
	return false;
}

static int collect(void *ctx, const char *key, const StoreStat *st, WsError *err)
{
	Verify *v = ctx;
	(void)err;
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 1024;
		v->e = xrealloc(v->e, v->cap * sizeof(*v->e));
	}
	v->e[v->n].key = xstrdup(key);
	v->e[v->n].size = st != NULL ? st->size : 0;
	v->n++;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const Entry *)a)->key, ((const Entry *)b)->key);
}

static const Entry *find_entry(const Verify *v, const char *key)
{
	Entry probe = {(char *)key, 0};
	return v->n > 0 ? bsearch(&probe, v->e, v->n, sizeof(*v->e), entry_cmp) : NULL;
}

/* What an object should hold, from manifest.json or its name. */
typedef struct Expect {
	uint64_t content_size; /* OBJ_SIZE_UNKNOWN: any */
	bool has_stored;
	uint64_t stored_size;
	const unsigned char *sha256; /* NULL: any */
	const char *variant;         /* the SHA-256's first 16 hex digits, or NULL */
	const char *what;            /* "base.tar of backup ID" for messages, or NULL */
	const char *hint;            /* what to do about a damaged one */
} Expect;

static const char hint_wal[] = "Recovery cannot use it: if a server's pg_wal or another copy still holds the "
			       "file, remove the object and push the file again; else take a new backup.";
static const char hint_backup[] = "A rebuild from this backup would fail: take a new backup.";
static const char hint_variant[] = "Recovery never reads this copy: remove it if it is damaged.";

typedef struct RangeSink {
	unsigned char *buf;
	size_t len;
	size_t cap;
} RangeSink;

static int range_sink(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	RangeSink *s = ctx;
	if (len > s->cap - s->len)
		return ws_error(err, WS_FATAL, "the store sent more bytes than were asked for");
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

static int discard(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	(void)ctx, (void)buf, (void)len, (void)err;
	return 0;
}

/* The object's problems below, as opposed to a store that cannot be read (a negative status). */
enum { OBJ_OK = 0, OBJ_BAD = 1 };

/* object.c's header and trailer parsers say "object ...": name it. */
static void name_object(WsError *e, const char *key)
{
	if (strncmp(e->msg, "object ", 7) == 0 && e->msg[7] != '"') {
		char msg[WS_ERROR_TEXT];
		snprintf(msg, sizeof(msg), "object \"%s\" %s", key, e->msg + 7);
		snprintf(e->msg, sizeof(e->msg), "%s", msg);
	}
}

static uint64_t le64(const unsigned char *p)
{
	uint64_t x = 0;
	for (int i = 7; i >= 0; i--)
		x = x << 8 | p[i];
	return x;
}

static int vanished(const Verify *v, const char *key, int *kind, WsError *e)
{
	*kind = VERIFY_MISSING;
	ws_error(e, WS_NOT_FOUND, "object \"%s\" vanished while verify ran", key);
	ws_error_detail(e, "It was listed a moment before%s.",
			v->locked ? "; walship.lock shows a walship backup or prune at work" : "");
	return OBJ_BAD;
}

static int read_range(Verify *v, const char *key, uint64_t off, size_t len, unsigned char *buf, int *kind,
		      WsError *e)
{
	RangeSink s = {buf, 0, len};
	int rc = store_get(v->store, key, off, len, range_sink, &s, e);
	if (rc == WS_NOT_FOUND)
		return vanished(v, key, kind, e);
	if (rc != 0)
		return rc;
	if (s.len != len) {
		*kind = VERIFY_CORRUPT;
		ws_error(e, WS_CORRUPT, "object \"%s\" is shorter than its listed size", key);
		ws_error_detail(e, "Reading %zu bytes at offset %" PRIu64 " gave %zu.", len, off, s.len);
		return OBJ_BAD;
	}
	return OBJ_OK;
}

/*
 * Header and trailer only: both parse (their CRCs hold), agree on the content
 * size, and the header is of the repository's kind (encrypted or not).
 */
static int check_header(Verify *v, const char *key, uint64_t stored, uint64_t *csize, unsigned char sha[32],
			int *kind, WsError *e)
{
	unsigned char small[SMALL_OBJECT];
	unsigned char head[OBJ_HEADER_SIZE_ENCRYPTED];
	unsigned char tail[OBJ_TRAILER_SIZE];
	size_t hlen = sizeof(head);
	uint64_t hsize = OBJ_SIZE_UNKNOWN;
	int rc;

	*kind = VERIFY_CORRUPT;
	if (stored < OBJ_HEADER_SIZE + OBJ_TRAILER_SIZE) {
		ws_error(e, WS_CORRUPT,
			 "object \"%s\" is corrupt: %" PRIu64 " bytes are too few for a walship object", key,
			 stored);
		return OBJ_BAD;
	}
	if (stored <= SMALL_OBJECT) {
		if ((rc = read_range(v, key, 0, (size_t)stored, small, kind, e)) != 0)
			return rc;
		hlen = stored - OBJ_TRAILER_SIZE < hlen ? (size_t)stored - OBJ_TRAILER_SIZE : hlen;
		memcpy(head, small, hlen);
		memcpy(tail, small + stored - OBJ_TRAILER_SIZE, OBJ_TRAILER_SIZE);
	} else {
		if ((rc = read_range(v, key, 0, hlen, head, kind, e)) != 0 ||
		    (rc = read_range(v, key, stored - OBJ_TRAILER_SIZE, OBJ_TRAILER_SIZE, tail, kind, e)) !=
			    0)
			return rc;
	}

	rc = obj_header_parse(head, hlen, &hsize, e);
	/* The parser takes the repository to be unencrypted: an intact encrypted header is its only WS_FATAL
	 * of format 1 with flag 1 (object.h gives the layout). */
	bool enc_header = hlen == OBJ_HEADER_SIZE_ENCRYPTED && head[4] == OBJ_HEADER_SIZE_ENCRYPTED - 8 &&
			  head[5] == 0 && head[6] == 0 && head[7] == 0 && head[12] == OBJ_FORMAT_VERSION &&
			  head[13] == 0 && head[14] == 1 && head[15] == 0;
	if (v->encrypted) {
		if (rc == 0) {
			ws_error(e, WS_CORRUPT, "object \"%s\" is not encrypted, but the repository is", key);
			ws_error_detail(
				e, "walship encrypts every object of an encrypted repository: this one was "
				   "put there by something else, or copied from an unencrypted repository.");
			return OBJ_BAD;
		}
		if (rc == WS_FATAL && enc_header) {
			hsize = le64(head + 16);
			rc = 0;
		}
	}
	if (rc != 0) {
		name_object(e, key);
		return OBJ_BAD;
	}
	if ((rc = obj_trailer_parse(tail, sizeof(tail), csize, sha, e)) != 0) {
		name_object(e, key);
		return OBJ_BAD;
	}
	if (hsize != OBJ_SIZE_UNKNOWN && hsize != *csize) {
		ws_error(e, WS_CORRUPT,
			 "object \"%s\" is corrupt: its header records %" PRIu64
			 " bytes of content, its trailer %" PRIu64,
			 key, hsize, *csize);
		return OBJ_BAD;
	}
	return OBJ_OK;
}

static void expect_prefix(WsError *e, const Expect *want)
{
	if (want->what != NULL)
		ws_error_prefix(e, "%s", want->what);
}

/*
 * Check one object and report its problem, if any.  0 when checked (whole or
 * reported), else a negative status: the store could not be read.
 */
static int check_object(Verify *v, const char *key, uint64_t stored, const Expect *want, WsError *err)
{
	uint64_t csize = 0;
	unsigned char sha[32];
	bool sha_known = false;
	int kind = VERIFY_CORRUPT;
	WsError e;
	int rc;

	ws_error_clear(&e);
	v->nobjects++;
	v->bytes += stored;
	if (v->full) {
		ObjInfo info;
		rc = repo_get_object(v->repo, key, OBJ_SIZE_UNKNOWN, discard, NULL, &info, &e);
		if (rc == 0) {
			csize = info.content_size;
			memcpy(sha, info.sha256, sizeof(sha));
			sha_known = true;
		} else if (rc == WS_NOT_FOUND) {
			rc = vanished(v, key, &kind, &e);
		} else if (rc == WS_FATAL) {
			/* The decoder's WS_FATAL is about the object (encrypted in an unencrypted
			 * repository); the store's is not: a header that reads fine leaves the store to
			 * blame. */
			WsError store_err = e;
			unsigned char unused[32];
			rc = check_header(v, key, stored, &csize, unused, &kind, &e);
			if (rc == OBJ_OK) {
				e = store_err;
				rc = WS_FATAL;
			}
		} else if (rc == WS_CORRUPT) {
			rc = OBJ_BAD;
		}
	} else {
		rc = check_header(v, key, stored, &csize, sha, &kind, &e);
		sha_known = rc == OBJ_OK && !v->encrypted; /* encrypted, the trailer holds an HMAC */
	}
	if (rc < 0) {
		*err = e;
		ws_error_prefix(err, "could not verify object \"%s\"", key);
		return rc;
	}
	if (rc == OBJ_BAD) {
		expect_prefix(&e, want);
		if (!e.hint[0] && want->hint != NULL && kind == VERIFY_CORRUPT)
			ws_error_hint(&e, "%s", want->hint);
		report(v, (VerifyKind)kind, key, &e);
		return 0;
	}

	if (want->content_size != OBJ_SIZE_UNKNOWN && csize != want->content_size) {
		ws_error(&e, WS_CORRUPT, "object \"%s\" holds %" PRIu64 " bytes, expected %" PRIu64, key,
			 csize, want->content_size);
	} else if (want->has_stored && stored != want->stored_size) {
		ws_error(&e, WS_CORRUPT,
			 "object \"%s\" is stored in %" PRIu64 " bytes, manifest.json says %" PRIu64, key,
			 stored, want->stored_size);
	} else if (sha_known && want->sha256 != NULL && memcmp(sha, want->sha256, 32) != 0) {
		char got[65], exp[65];
		hex_encode(sha, 32, got);
		hex_encode(want->sha256, 32, exp);
		ws_error(&e, WS_CORRUPT,
			 "object \"%s\" does not match manifest.json: SHA-256 %s, expected %s", key, got,
			 exp);
	} else if (sha_known && want->variant != NULL) {
		char got[65];
		hex_encode(sha, 32, got);
		if (strncmp(got, want->variant, 16) == 0)
			return 0;
		ws_error(&e, WS_CORRUPT, "object \"%s\" has SHA-256 %s, which its name does not start with",
			 key, got);
		ws_error_detail(&e, "walship-push names a differing copy after its SHA-256.");
	} else {
		return 0;
	}
	if (!e.detail[0] && want->what != NULL)
		ws_error_detail(&e, "It is %s.", want->what);
	if (!e.hint[0] && want->hint != NULL)
		ws_error_hint(&e, "%s", want->hint);
	report(v, VERIFY_MISMATCH, key, &e);
	return 0;
}

static const CatalogEpoch *scan_of(const Verify *v, const RepoEpoch *ep)
{
	return &v->scans[ep - v->meta->epochs];
}

static const BackupMeta *find_backup(const CatalogEpoch *s, const char *id)
{
	for (int i = 0; i < s->nbackups; i++)
		if (strcmp(s->backups[i]->id, id) == 0)
			return s->backups[i];
	return NULL;
}

static const CatalogBackupDir *find_dir(const CatalogEpoch *s, const char *id)
{
	for (int i = 0; i < s->ndirs; i++)
		if (strcmp(s->dirs[i].id, id) == 0)
			return &s->dirs[i];
	return NULL;
}

static const BackupObject *manifest_object(const BackupMeta *b, const char *name)
{
	for (int i = 0; i < b->n_tablespaces; i++)
		if (strcmp(b->tablespaces[i].obj.name, name) == 0)
			return &b->tablespaces[i].obj;
	if (b->has_manifest && strcmp(b->manifest.name, name) == 0)
		return &b->manifest;
	if (b->config.n_files > 0 && strcmp(b->config.obj.name, name) == 0)
		return &b->config.obj;
	return NULL;
}

static void report_orphan(Verify *v, const char *key, const VerifyKey *k, const char *what_dir, size_t count,
			  uint64_t bytes)
{
	WsError e;
	char sz[32];

	if (what_dir != NULL) {
		ws_error(&e, WS_CORRUPT, "directory \"%s\" (%zu object%s, %s) is not part of the repository",
			 key, count, count == 1 ? "" : "s", fmt_size(bytes, sz, sizeof(sz)));
		ws_error_detail(&e, "walship.json has no epoch \"%s\".", what_dir);
		ws_error_hint(&e,
			      "If it belongs to another repository or to an epoch no longer in walship.json, "
			      "move it away.");
	} else if (k->backup_id[0]) {
		ws_error(&e, WS_CORRUPT, "object \"%s\" is not in manifest.json of backup %s", key,
			 k->backup_id);
		ws_error_detail(&e, "No rebuild reads it.");
		ws_error_hint(&e, "Remove it if nothing else needs it.");
	} else {
		ws_error(&e, WS_CORRUPT, "\"%s\" was not written by walship", key);
		ws_error_detail(&e,
				"It is neither a WAL file where walship-fetch looks for one nor a file of a "
				"backup; walship ignores it.");
		ws_error_hint(&e, "Remove it if nothing else needs it.");
	}
	report(v, VERIFY_ORPHAN, key, &e);
}

static int check_entries(Verify *v, WsError *err)
{
	for (size_t i = 0; i < v->n; i++) {
		const Entry *ent = &v->e[i];
		VerifyKey k;
		Expect want = {.content_size = OBJ_SIZE_UNKNOWN, .hint = hint_wal};
		char what[128];
		int rc;

		switch (verify_key_kind(v->meta, ent->key, &k)) {
		case VERIFY_KEY_REPO:
			continue;
		case VERIFY_KEY_WAL:
			if (k.wal.kind == WAL_SEGMENT)
				want.content_size = k.epoch->seg_size;
			break;
		case VERIFY_KEY_VARIANT:
			want.variant = k.variant;
			want.hint = hint_variant;
			break;
		case VERIFY_KEY_BACKUP: {
			const CatalogEpoch *s = scan_of(v, k.epoch);
			const CatalogBackupDir *d = find_dir(s, k.backup_id);
			const BackupMeta *b = find_backup(s, k.backup_id);
			want.hint = hint_backup;
			if (d == NULL || !d->has_meta) {
				/* An interrupted backup: one problem for the whole directory. */
				char dir[STORE_KEY_MAX], sz[32];
				size_t count = 0;
				uint64_t bytes = 0;
				WsError e;
				size_t dlen = (size_t)(k.name - ent->key);
				snprintf(dir, sizeof(dir), "%.*s", (int)dlen, ent->key);
				for (; i < v->n && strncmp(v->e[i].key, dir, dlen) == 0; i++) {
					count++;
					bytes += v->e[i].size;
				}
				i--;
				ws_error(&e, WS_CORRUPT,
					 "backup directory \"%s\" has no %s: an interrupted backup", dir,
					 BACKUP_META_NAME);
				ws_error_detail(&e, "It holds %zu object%s (%s) that no rebuild can use.",
						count, count == 1 ? "" : "s",
						fmt_size(bytes, sz, sizeof(sz)));
				ws_error_hint(&e,
					      "If no walship backup is running%s, walship prune removes it.",
					      v->locked ? " (walship.lock is there: one may be)" : "");
				report(v, VERIFY_ORPHAN, dir, &e);
				continue;
			}
			if (strcmp(k.name, BACKUP_META_NAME) == 0) {
				/* Plain JSON in an unencrypted repository, read and checked by the scan. */
				if (!v->encrypted || scan_reported(v, ent->key))
					continue;
				break;
			}
			if (b == NULL)
				break; /* manifest.json unusable (reported): check the object alone */
			const BackupObject *o = manifest_object(b, k.name);
			if (o == NULL) {
				report_orphan(v, ent->key, &k, NULL, 0, 0);
				continue;
			}
			snprintf(what, sizeof(what), "%s of backup %s", o->name, b->id);
			want.what = what;
			want.content_size = o->size;
			want.has_stored = true;
			want.stored_size = o->stored_size;
			want.sha256 = o->sha256;
			break;
		}
		case VERIFY_KEY_FOREIGN:
		default:
			if (k.epoch == NULL && strchr(ent->key, '/') != NULL) {
				/* A directory of no epoch: one problem for all of it. */
				char dir[STORE_KEY_MAX], name[STORE_KEY_MAX];
				size_t dlen = (size_t)(strchr(ent->key, '/') - ent->key) + 1;
				size_t count = 0;
				uint64_t bytes = 0;
				snprintf(dir, sizeof(dir), "%.*s", (int)dlen, ent->key);
				snprintf(name, sizeof(name), "%.*s", (int)dlen - 1, ent->key);
				for (; i < v->n && strncmp(v->e[i].key, dir, dlen) == 0; i++) {
					count++;
					bytes += v->e[i].size;
				}
				i--;
				report_orphan(v, dir, &k, name, count, bytes);
			} else {
				report_orphan(v, ent->key, &k, NULL, 0, 0);
			}
			continue;
		}
		if (scan_reported(v, ent->key))
			continue;
		if ((rc = check_object(v, ent->key, ent->size, &want, err)) != 0)
			return rc;
	}
	return 0;
}

/* Every object each complete backup's manifest.json names is there. */
static void check_manifests(Verify *v)
{
	for (int i = 0; i < v->nscans; i++) {
		const CatalogEpoch *s = &v->scans[i];
		for (int j = 0; j < s->nbackups; j++) {
			const BackupMeta *b = s->backups[j];
			for (int t = 0; t <= b->n_tablespaces + 1; t++) {
				const BackupObject *o =
					t < b->n_tablespaces ? &b->tablespaces[t].obj
					: t == b->n_tablespaces
						? (b->has_manifest ? &b->manifest : NULL)
						: (b->config.n_files > 0 ? &b->config.obj : NULL);
				char key[STORE_KEY_MAX], sz[32];
				WsError e;
				if (o == NULL ||
				    backup_key(s->epoch->id, b->id, o->name, key, sizeof(key)) != 0 ||
				    find_entry(v, key) != NULL)
					continue;
				ws_error(&e, WS_NOT_FOUND, "%s of backup %s is missing", o->name, b->id);
				ws_error_detail(&e,
						"manifest.json of the backup names \"%s\" (%s of content).",
						key, fmt_size(o->size, sz, sizeof(sz)));
				ws_error_hint(&e, "Take a new backup: this one cannot be rebuilt.");
				report(v, VERIFY_MISSING, key, &e);
			}
		}
	}
}

static void print_summary(const Verify *v, FILE *f)
{
	char sz[32];
	int nb = 0, ntl = 0;
	for (int i = 0; i < v->nscans; i++) {
		nb += v->scans[i].nbackups;
		ntl += v->scans[i].ntl;
	}
	fprintf(f, "checked %" PRIu64 " object%s%s (%s), %d backup%s, %d timeline%s: ", v->nobjects,
		v->nobjects == 1 ? "" : "s", v->full ? " in full" : "", fmt_size(v->bytes, sz, sizeof(sz)),
		nb, nb == 1 ? "" : "s", ntl, ntl == 1 ? "" : "s");
	if (v->nproblems == 0)
		fprintf(f, "no problems\n");
	else
		fprintf(f, "%d problem%s\n", v->nproblems, v->nproblems == 1 ? "" : "s");
}

static void print_json(const Verify *v)
{
	json_t *root = json_object();
	int nb = 0, ntl = 0;
	for (int i = 0; i < v->nscans; i++) {
		nb += v->scans[i].nbackups;
		ntl += v->scans[i].ntl;
	}
	json_object_set_new(root, "repository", json_string(repo_display(v->repo)));
	json_object_set_new(root, "uuid", json_string(v->meta->uuid));
	json_object_set_new(root, "full", json_boolean(v->full));
	json_object_set_new(root, "objects", json_integer((json_int_t)v->nobjects));
	json_object_set_new(root, "bytes", json_integer((json_int_t)v->bytes));
	json_object_set_new(root, "backups", json_integer(nb));
	json_object_set_new(root, "timelines", json_integer(ntl));
	json_object_set_new(root, "problems", json_incref(v->problems));
	char *text = json_file_dump(root, "the result");
	json_decref(root);
	fputs(text, stdout);
	free(text);
}

int cmd_verify(const Config *cfg, const VerifyOptions *opt, WsError *err)
{
	Verify v;
	int rc;

	memset(&v, 0, sizeof(v));
	v.full = opt->full;
	v.problems = json_array();
	if ((rc = repo_open(cfg, &v.repo, err)) != 0)
		goto done;
	v.store = repo_store(v.repo);
	v.meta = repo_meta(v.repo);
	v.encrypted = repo_encrypted(v.repo);

	if ((rc = store_list(v.store, "", collect, &v, err)) != 0) {
		ws_error_prefix(err, "could not list repository \"%s\"", repo_display(v.repo));
		goto done;
	}
	if (v.n > 1)
		qsort(v.e, v.n, sizeof(*v.e), entry_cmp);
	if (find_entry(&v, REPO_LOCK_KEY) != NULL) {
		v.locked = true;
		log_warning("repository \"%s\" holds %s: a walship backup or prune may be running",
			    repo_display(v.repo), REPO_LOCK_KEY);
		log_detail("What it is changing may show as problems; verify again once it is done.");
	}

	v.scans = xcalloc((size_t)(v.meta->n_epochs > 0 ? v.meta->n_epochs : 1), sizeof(*v.scans));
	for (int i = 0; i < v.meta->n_epochs; i++) {
		rc = catalog_scan_epoch(v.repo, &v.meta->epochs[i], scan_problem, &v, &v.scans[i], err);
		v.nscans = i + 1;
		if (rc != 0) {
			ws_error_prefix(err, "could not read epoch \"%s\"", v.meta->epochs[i].id);
			goto done;
		}
	}

	if ((rc = check_entries(&v, err)) != 0)
		goto done;
	check_manifests(&v);
	for (int i = 0; i < v.nscans; i++) {
		const CatalogEpoch *s = &v.scans[i];
		verify_wal(s->epoch, (const BackupMeta *const *)s->backups, s->nbackups, s->lts, s->ntl, s->w,
			   s->nw, report, &v);
	}

	if (opt->json) {
		print_json(&v);
	} else if (v.nproblems > 0 || log_get_level() > LOG_LEVEL_ERROR) {
		/* -q from cron: a whole repository prints nothing, so cron mails nothing. */
		print_summary(&v, stdout);
	}
	rc = v.nproblems > 0 ? VERIFY_EXIT_PROBLEMS : 0;
done:
	fflush(stdout);
	for (int i = 0; i < v.nscans; i++)
		catalog_epoch_free(&v.scans[i]);
	free(v.scans);
	for (size_t i = 0; i < v.n; i++)
		free(v.e[i].key);
	free(v.e);
	for (int i = 0; i < v.nscan_keys; i++)
		free(v.scan_keys[i]);
	free(v.scan_keys);
	json_decref(v.problems);
	repo_free(v.repo);
	return rc;
}
