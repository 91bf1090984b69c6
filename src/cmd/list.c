/*
 * list.c - walship list: what each epoch holds and, more to the point for an
 * operator, what it can be rebuilt to (repo/catalog.c reads and computes it;
 * this file prints it, as text or JSON).
 */
#include "cmd/list.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "pg/cluster.h"
#include "pg/lsn.h"
#include "pg/pgcontrol.h"
#include "pg/walname.h"
#include "repo/jsonfile.h"
#include "repo/lock.h"
#include "repo/repo.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

/* Incomplete backups named in the note line before "and N more". */
#define INCOMPLETE_SHOWN 5

/* ---- text ---- */

/* "2026-11-25T19:00:04Z" as "2026-11-25 19:00:04". */
static const char *show_time(const char *iso, char buf[32])
{
	snprintf(buf, 32, "%s", iso);
	size_t n = strlen(buf);
	if (n == 20 && buf[10] == 'T' && buf[19] == 'Z') {
		buf[10] = ' ';
		buf[19] = '\0';
	}
	return buf;
}

static void print_range(FILE *f, const CatalogRange *r, uint32_t seg_size)
{
	char from[LSN_STR_MAX], to[LSN_STR_MAX], name[32], t[32];
	lsn_format(r->from_lsn, from);
	lsn_format(r->to_lsn, to);
	wal_segment_name(r->to_tli, r->to_segno, seg_size, name);
	fprintf(f, "from %s (backup %s, %s) to %s (end of %s", from, r->from_backup->id,
		show_time(r->from_backup->stop_time, t), to, name);
	if (r->to_time > 0) {
		char iso[CLOCK_ISO_MAX];
		clock_utc_iso(r->to_time, iso);
		fprintf(f, ", archived %s", show_time(iso, t));
	}
	fputc(')', f);
}

void list_print_window(FILE *f, const CatalogWindow *w, uint32_t seg_size)
{
	char name[32];

	if (w->bad_history) {
		fprintf(f,
			"  timeline %" PRIu32 ": unknown: history file \"%08" PRIX32
			".history\" could not be read\n",
			w->tli, w->tli);
		return;
	}
	fprintf(f, "  timeline %" PRIu32 ": ", w->tli);
	if (w->nranges == 0) {
		fputs(w->nunusable > 0
			      ? "nothing can be rebuilt: no backup on its history has all the WAL it needs"
			      : "nothing can be rebuilt: no backup was taken on it or on a timeline it "
				"descends from",
		      f);
	} else {
		bool said = false;
		int r = 1, g = 0;
		print_range(f, &w->ranges[0], seg_size);
		/* Ranges and gaps never share a segment: order them by where they lie. */
		while (r < w->nranges || g < w->ngaps) {
			if (g < w->ngaps &&
			    (r >= w->nranges || w->gaps[g].first_segno < w->ranges[r].to_segno)) {
				const CatalogGap *gap = &w->gaps[g++];
				wal_segment_name(gap->tli, gap->first_segno, seg_size, name);
				fprintf(f, "; gap: %s missing (%" PRIu64 " segment%s)", name, gap->count,
					gap->count == 1 ? "" : "s");
				if (!gap->reachable_after && !said) {
					fputs(", WAL after it is not reachable", f);
					said = true;
				}
			} else {
				fputs("; ", f);
				print_range(f, &w->ranges[r++], seg_size);
			}
		}
	}
	fputc('\n', f);
	if (w->tli > 1 && !w->has_history)
		fprintf(f,
			"  note: timeline %" PRIu32
			" has no history file: only backups taken on timeline %" PRIu32 " count for it\n",
			w->tli, w->tli);
	/* Once, under the backup's own timeline: descendants cannot do better. */
	for (int i = 0; i < w->nunusable; i++) {
		const CatalogUnusable *u = &w->unusable[i];
		if (u->backup->timeline != w->tli)
			continue;
		wal_segment_name(u->missing_tli, u->missing_segno, seg_size, name);
		fprintf(f, "  backup %s cannot be rebuilt: WAL segment %s is missing\n", u->backup->id, name);
	}
}

/* ---- the listing ---- */

/* Problems a listing survives: printed now, counted, and kept for --json. */
typedef struct Problems {
	int n;
	json_t *list;
} Problems;

static void problem(Problems *pr, const WsError *e)
{
	fflush(stdout);
	log_report(e);
	pr->n++;
	json_t *o = json_object();
	json_object_set_new(o, "message", json_string(e->msg));
	if (e->detail[0])
		json_object_set_new(o, "detail", json_string(e->detail));
	if (e->hint[0])
		json_object_set_new(o, "hint", json_string(e->hint));
	json_array_append_new(pr->list, o);
}

static void scan_problem(void *ctx, const CatalogProblem *p, WsError *e)
{
	if (p->backup_id != NULL)
		ws_error_prefix(e, "backup \"%s\" of epoch \"%s\" is not listed", p->backup_id, p->epoch);
	else
		ws_error_prefix(e, "epoch \"%s\", timeline %" PRIu32, p->epoch, p->tli);
	problem(ctx, e);
}

/* ---- output ---- */

static void backup_sizes(const BackupMeta *b, uint64_t *size, uint64_t *stored)
{
	*size = b->has_manifest ? b->manifest.size : 0;
	*stored = b->has_manifest ? b->manifest.stored_size : 0;
	if (b->config.n_files > 0) {
		*size += b->config.obj.size;
		*stored += b->config.obj.stored_size;
	}
	for (int i = 0; i < b->n_tablespaces; i++) {
		*size += b->tablespaces[i].obj.size;
		*stored += b->tablespaces[i].obj.stored_size;
	}
}

static int max_int(int a, int b)
{
	return a > b ? a : b;
}

enum { NCOL = 8 };

/* One table row: columns padded to their width, three spaces apart, no trailing blanks. */
static void print_row(const char *const *cells, const int *width)
{
	printf("  ");
	for (int c = 0; c < NCOL - 1; c++)
		printf("%-*s   ", width[c], cells[c]);
	printf("%s\n", cells[NCOL - 1]);
}

static void print_backups(const CatalogEpoch *s)
{
	static const char *const head[NCOL] = {"id",        "start (UTC)", "stop (UTC)", "timeline",
					       "start LSN", "stop LSN",    "size",       "stored"};
	char(*cells)[NCOL][40] = xcalloc((size_t)(s->nbackups > 0 ? s->nbackups : 1), sizeof(*cells));
	int width[NCOL];
	int incomplete = 0;

	for (int c = 0; c < NCOL; c++)
		width[c] = (int)strlen(head[c]);
	for (int i = 0; i < s->nbackups; i++) {
		const BackupMeta *b = s->backups[i];
		uint64_t size, stored;
		char t[32];
		backup_sizes(b, &size, &stored);
		snprintf(cells[i][0], 40, "%s", b->id);
		snprintf(cells[i][1], 40, "%s", show_time(b->start_time, t));
		snprintf(cells[i][2], 40, "%s", show_time(b->stop_time, t));
		snprintf(cells[i][3], 40, "%" PRIu32, b->timeline);
		lsn_format(b->start_lsn, cells[i][4]);
		lsn_format(b->stop_lsn, cells[i][5]);
		fmt_size(size, cells[i][6], 40);
		fmt_size(stored, cells[i][7], 40);
		for (int c = 0; c < NCOL; c++)
			width[c] = max_int(width[c], (int)strlen(cells[i][c]));
	}

	if (s->nbackups == 0) {
		printf("backups (epoch %s): none\n", s->epoch->id);
	} else {
		printf("backups (epoch %s):\n", s->epoch->id);
		print_row(head, width);
		for (int i = 0; i < s->nbackups; i++) {
			const char *row[NCOL];
			for (int c = 0; c < NCOL; c++)
				row[c] = cells[i][c];
			print_row(row, width);
		}
	}
	free(cells);

	for (int i = 0; i < s->ndirs; i++)
		incomplete += !s->dirs[i].has_meta;
	if (incomplete > 0) {
		int shown = 0;
		printf("  note: %d incomplete backup%s without %s (in progress, or failed and not removed):",
		       incomplete, incomplete == 1 ? "" : "s", BACKUP_META_NAME);
		for (int i = 0; i < s->ndirs && shown < INCOMPLETE_SHOWN; i++) {
			if (s->dirs[i].has_meta)
				continue;
			printf("%s %s", shown > 0 ? "," : "", s->dirs[i].id);
			shown++;
		}
		if (incomplete > shown)
			printf(" and %d more", incomplete - shown);
		printf("\n");
	}
}

static void print_wal(const CatalogEpoch *s)
{
	uint32_t seg_size = s->epoch->seg_size;
	char a[32], b[32];

	bool any = s->n_partial + s->n_backup_files + s->n_variants > 0;
	for (int i = 0; i < s->ntl; i++)
		any = any || s->tls[i].nsegs > 0 || s->tls[i].has_history;
	printf("wal (epoch %s):%s\n", s->epoch->id, any ? "" : " none");
	for (int i = 0; i < s->ntl; i++) {
		const CatalogEpochTimeline *t = &s->tls[i];
		if (t->nsegs == 0 && !t->has_history)
			continue; /* only there because a backup is: its window line says the rest */
		printf("  timeline %" PRIu32 ": ", t->tli);
		if (t->nsegs == 0) {
			printf("no segments");
		} else {
			wal_segment_name(t->tli, t->segs[0], seg_size, a);
			wal_segment_name(t->tli, t->segs[t->nsegs - 1], seg_size, b);
			if (t->nsegs == 1)
				printf("1 segment, %s", a);
			else
				printf("%zu segments, %s to %s", t->nsegs, a, b);
		}
		printf("%s\n", t->has_history ? ", history file" : "");
	}
	if (s->n_partial + s->n_backup_files + s->n_variants > 0) {
		const char *sep = "";
		printf("  also:");
		if (s->n_partial > 0) {
			printf(" %ld partial segment%s", s->n_partial, s->n_partial == 1 ? "" : "s");
			sep = ",";
		}
		if (s->n_backup_files > 0) {
			printf("%s %ld backup history file%s", sep, s->n_backup_files,
			       s->n_backup_files == 1 ? "" : "s");
			sep = ",";
		}
		if (s->n_variants > 0)
			printf("%s %ld differing cop%s kept beside the first", sep, s->n_variants,
			       s->n_variants == 1 ? "y" : "ies");
		printf("\n");
	}
	if (s->n_unexpected > 0)
		printf("  note: %ld key%s that walship did not write ignored, e.g. \"%s\"\n", s->n_unexpected,
		       s->n_unexpected == 1 ? "" : "s", s->unexpected);
}

static json_t *lsn_json(uint64_t lsn)
{
	char buf[LSN_STR_MAX];
	lsn_format(lsn, buf);
	return json_string(buf);
}

static json_t *seg_json(uint32_t tli, uint64_t segno, uint32_t seg_size)
{
	char buf[32];
	wal_segment_name(tli, segno, seg_size, buf);
	return json_string(buf);
}

static void range_json(json_t *o, const CatalogRange *r)
{
	json_object_set_new(o, "from_lsn", r ? lsn_json(r->from_lsn) : json_null());
	json_object_set_new(o, "from_backup", r ? json_string(r->from_backup->id) : json_null());
	json_object_set_new(o, "from_time", r ? json_string(r->from_backup->stop_time) : json_null());
}

static void range_end_json(json_t *o, const CatalogRange *r, uint32_t seg_size)
{
	json_object_set_new(o, "to_lsn", r ? lsn_json(r->to_lsn) : json_null());
	json_object_set_new(o, "to_wal", r ? seg_json(r->to_tli, r->to_segno, seg_size) : json_null());
	char iso[CLOCK_ISO_MAX];
	if (r && r->to_time > 0)
		clock_utc_iso(r->to_time, iso);
	json_object_set_new(o, "to_archived_time", r && r->to_time > 0 ? json_string(iso) : json_null());
}

static json_t *window_json(const CatalogWindow *w, uint32_t seg_size)
{
	json_t *o = json_object();
	json_t *a;

	json_object_set_new(o, "timeline", json_integer(w->tli));
	json_object_set_new(o, "history_file", json_boolean(w->has_history));
	json_object_set_new(o, "history_readable", json_boolean(!w->bad_history));
	range_json(o, w->nranges > 0 ? &w->ranges[0] : NULL);
	range_end_json(o, w->nranges > 0 ? &w->ranges[w->nranges - 1] : NULL, seg_size);
	json_object_set_new(o, "ranges", a = json_array());
	for (int i = 0; i < w->nranges; i++) {
		json_t *r = json_object();
		range_json(r, &w->ranges[i]);
		range_end_json(r, &w->ranges[i], seg_size);
		json_array_append_new(a, r);
	}
	json_object_set_new(o, "gaps", a = json_array());
	for (int i = 0; i < w->ngaps; i++) {
		json_t *g = json_object();
		json_object_set_new(g, "first_missing",
				    seg_json(w->gaps[i].tli, w->gaps[i].first_segno, seg_size));
		json_object_set_new(g, "count", json_integer((json_int_t)w->gaps[i].count));
		json_object_set_new(g, "reachable_after", json_boolean(w->gaps[i].reachable_after));
		json_array_append_new(a, g);
	}
	json_object_set_new(o, "unusable_backups", a = json_array());
	for (int i = 0; i < w->nunusable; i++) {
		json_t *u = json_object();
		json_object_set_new(u, "backup", json_string(w->unusable[i].backup->id));
		json_object_set_new(
			u, "missing_wal",
			seg_json(w->unusable[i].missing_tli, w->unusable[i].missing_segno, seg_size));
		json_array_append_new(a, u);
	}
	return o;
}

/* The manifest as written (all its fields), plus the totals the table shows. */
static json_t *backup_json(const BackupMeta *b)
{
	WsError e;
	uint64_t size, stored;
	char *text = backup_meta_serialize(b, &e);
	json_t *o = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	if (o == NULL) {
		/* It parsed on the way in, so it serializes; keep the listing whole anyway. */
		o = json_object();
		json_object_set_new(o, "id", json_string(b->id));
	}
	backup_sizes(b, &size, &stored);
	json_object_set_new(o, "total_size", json_integer((json_int_t)size));
	json_object_set_new(o, "total_stored_size", json_integer((json_int_t)stored));
	return o;
}

static json_t *epoch_json(const CatalogEpoch *s, const CatalogWindow *w, int nw)
{
	const RepoEpoch *ep = s->epoch;
	json_t *o = json_object();
	json_t *a, *wal;
	char buf[32];

	json_object_set_new(o, "id", json_string(ep->id));
	snprintf(buf, sizeof(buf), "%" PRIu64, ep->sysid);
	json_object_set_new(o, "system_identifier", json_string(buf));
	json_object_set_new(o, "pg_major", json_string(pg_major_str(ep->pg_major, buf, sizeof(buf))));
	json_object_set_new(o, "wal_segment_size", json_integer(ep->seg_size));
	json_object_set_new(o, "backups", a = json_array());
	for (int i = 0; i < s->nbackups; i++)
		json_array_append_new(a, backup_json(s->backups[i]));
	json_object_set_new(o, "incomplete_backups", a = json_array());
	for (int i = 0; i < s->ndirs; i++)
		if (!s->dirs[i].has_meta)
			json_array_append_new(a, json_string(s->dirs[i].id));

	json_object_set_new(o, "wal", wal = json_object());
	json_object_set_new(wal, "timelines", a = json_array());
	for (int i = 0; i < s->ntl; i++) {
		const CatalogEpochTimeline *t = &s->tls[i];
		json_t *x;
		if (t->nsegs == 0 && !t->has_history)
			continue;
		json_array_append_new(a, x = json_object());
		json_object_set_new(x, "timeline", json_integer(t->tli));
		json_object_set_new(x, "segments", json_integer((json_int_t)t->nsegs));
		json_object_set_new(x, "first",
				    t->nsegs ? seg_json(t->tli, t->segs[0], ep->seg_size) : json_null());
		json_object_set_new(x, "last",
				    t->nsegs ? seg_json(t->tli, t->segs[t->nsegs - 1], ep->seg_size)
					     : json_null());
		json_object_set_new(x, "history_file", json_boolean(t->has_history));
	}
	json_object_set_new(wal, "partial_segments", json_integer(s->n_partial));
	json_object_set_new(wal, "backup_history_files", json_integer(s->n_backup_files));
	json_object_set_new(wal, "differing_copies", json_integer(s->n_variants));
	json_object_set_new(wal, "unexpected_keys", json_integer(s->n_unexpected));

	json_object_set_new(o, "timelines", a = json_array());
	for (int i = 0; i < nw; i++)
		json_array_append_new(a, window_json(&w[i], ep->seg_size));
	return o;
}

/* ---- the command ---- */

/* The leases (repo/lock.h): what each keeps from walship prune, and until when. */
static int list_leases(Repo *repo, json_t *root, WsError *err)
{
	RepoLeaseInfo *v = NULL;
	int n = 0;
	int64_t now = (int64_t)time(NULL);
	int rc = repo_leases_read(repo, &v, &n, err);
	if (rc != 0)
		return rc;
	json_t *a = root ? json_array() : NULL;
	if (root == NULL && n > 0)
		printf("leases (walship prune keeps what each holds until it expires):\n");
	for (int i = 0; i < n; i++) {
		char who[4600], what[256];
		if (root != NULL) {
			json_array_append_new(a, repo_lease_json(&v[i], now));
			continue;
		}
		repo_lease_describe(&v[i], who, sizeof(who));
		if (repo_lease_expired(&v[i], now))
			snprintf(what, sizeof(what), "expired: it holds nothing, walship prune removes it");
		else if (v[i].epoch[0] == '\0')
			snprintf(what, sizeof(what), "every backup and all WAL");
		else
			snprintf(what, sizeof(what),
				 "backup %s of epoch %s, timeline %" PRIu32 ", WAL from %s on", v[i].backup,
				 v[i].epoch, v[i].timeline, v[i].start_wal);
		printf("  lease %s: %s: %s\n", v[i].id, who, what);
	}
	if (root != NULL)
		json_object_set_new(root, "leases", a);
	free(v);
	return 0;
}

int cmd_list(const Config *cfg, bool json, WsError *err)
{
	Repo *repo = NULL;
	Problems pr = {0, json_array()};
	json_t *root = NULL, *epochs = NULL;
	int total_backups = 0;
	int rc;

	if ((rc = repo_open(cfg, &repo, err)) != 0)
		goto done;
	const RepoMeta *meta = repo_meta(repo);

	if (json) {
		root = json_object();
		json_object_set_new(root, "repository", json_string(repo_display(repo)));
		json_object_set_new(root, "uuid", json_string(meta->uuid));
		json_object_set_new(root, "epochs", epochs = json_array());
	} else {
		printf("repository \"%s\" (%s), epochs:", repo_display(repo), meta->uuid);
		for (int i = 0; i < meta->n_epochs; i++)
			printf("%s %s", i > 0 ? "," : "", meta->epochs[i].id);
		printf("\n");
	}

	for (int i = 0; i < meta->n_epochs; i++) {
		const RepoEpoch *ep = &meta->epochs[i];
		CatalogEpoch s;

		rc = catalog_scan_epoch(repo, ep, scan_problem, &pr, &s, err);
		if (rc == 0) {
			total_backups += s.nbackups;
			if (json) {
				json_array_append_new(epochs, epoch_json(&s, s.w, s.nw));
			} else {
				char v[16], sz[32];
				printf("epoch %s: PostgreSQL %s, system identifier %" PRIu64
				       ", %s WAL segments\n",
				       ep->id, pg_major_str(ep->pg_major, v, sizeof(v)), ep->sysid,
				       cluster_size_str(ep->seg_size, sz, sizeof(sz)));
				print_backups(&s);
				print_wal(&s);
				if (s.nbackups == 0) {
					printf("recoverable (epoch %s): nothing: no complete backup in this "
					       "epoch\n",
					       ep->id);
				} else {
					printf("recoverable (epoch %s):\n", ep->id);
					for (int k = 0; k < s.nw; k++)
						list_print_window(stdout, &s.w[k], ep->seg_size);
				}
			}
		} else {
			ws_error_prefix(err, "could not list epoch \"%s\"", ep->id);
		}
		catalog_epoch_free(&s);
		if (rc != 0)
			goto done;
	}

	if ((rc = list_leases(repo, root, err)) != 0)
		goto done;
	if (json) {
		json_object_set_new(root, "complete_backups", json_integer(total_backups));
		json_object_set_new(root, "problems", json_incref(pr.list));
		char *text = json_file_dump(root, "the listing");
		fputs(text, stdout);
		free(text);
	} else if (total_backups == 0) {
		printf("no complete backups: nothing can be rebuilt yet\n");
	}
	if (pr.n > 0) {
		rc = ws_error(err, WS_CORRUPT, "%d problem%s found in repository \"%s\"", pr.n,
			      pr.n == 1 ? "" : "s", repo_display(repo));
		ws_error_detail(err, "Everything else was listed.");
	}
done:
	fflush(stdout);
	json_decref(root);
	json_decref(pr.list);
	repo_free(repo);
	return rc;
}
