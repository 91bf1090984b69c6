/*
 * rebuild_plan.c - walship rebuild's plan (see rebuild_plan.h): everything
 * that can be known from the repository is proven before the data directory
 * is touched, using repo/catalog's windows (walship list's) so that
 * rebuild never promises more than list shows.
 */
#include "cmd/rebuild_plan.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg/lsn.h"
#include "pg/pgcontrol.h"
#include "pg/pgmajor.h"
#include "pg/walname.h"
#include "repo/keys.h"
#include "repo/retention.h"
#include "util/clock.h"
#include "util/log.h"

/* ---- target times ---- */

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int bad_time(const char *s, WsError *err)
{
	ws_error(err, WS_USAGE, "invalid value \"%s\" for --target-time", s);
	ws_error_detail(err, "Use a date, a time and a time zone, e.g. \"2026-11-25 19:11:52.67+00\" or "
			     "\"2026-11-25T19:11:52Z\".");
	return WS_USAGE;
}

int rebuild_parse_time(const char *s, int64_t *secs, int *usec, char out[REBUILD_TIME_MAX], WsError *err)
{
	const char *p = s;
	int y, mo, d, h, mi, sec = 0, us = 0, nfrac = 0, off = 0;
	char frac[8] = "";

	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
		return bad_time(s, err);
	if (*p != ' ' && *p != 'T' && *p != 't')
		return bad_time(s, err);
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
		return bad_time(s, err);
	if (*p == ':') {
		p++;
		if (digits(&p, 2, &sec))
			return bad_time(s, err);
		if (*p == '.') {
			p++;
			while (isdigit((unsigned char)*p)) {
				if (nfrac == 6)
					return bad_time(s, err);
				frac[nfrac++] = *p++;
			}
			if (nfrac == 0)
				return bad_time(s, err);
			frac[nfrac] = '\0';
			for (int i = 0; i < 6; i++)
				us = us * 10 + (i < nfrac ? frac[i] - '0' : 0);
		}
	}
	while (*p == ' ')
		p++;
	if (*p == '\0') {
		ws_error(err, WS_USAGE, "--target-time \"%s\" has no time zone", s);
		ws_error_detail(err, "PostgreSQL would read it in the server's time zone.");
		ws_error_hint(err, "Add one, e.g. \"%s+00\" for UTC.", s);
		return WS_USAGE;
	}
	if (strcmp(p, "Z") == 0 || strcmp(p, "z") == 0 || strcasecmp(p, "UTC") == 0 ||
	    strcasecmp(p, "GMT") == 0) {
		off = 0;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
		if (digits(&p, 2, &oh))
			return bad_time(s, err);
		if (*p == ':')
			p++;
		if (*p != '\0' && digits(&p, 2, &om))
			return bad_time(s, err);
		if (*p != '\0' || oh > 15 || om > 59)
			return bad_time(s, err);
		off = sign * (oh * 3600 + om * 60);
	} else {
		return bad_time(s, err);
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 || y < 1970)
		return bad_time(s, err);

	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	/* timegm normalises 31 February into March: a day that does not exist is refused. */
	if (tm.tm_mday != d || tm.tm_mon != mo - 1)
		return bad_time(s, err);
	t -= off;
	struct tm u;
	gmtime_r(&t, &u);
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%d %H:%M:%S", &u);
	if (nfrac > 0)
		snprintf(out, REBUILD_TIME_MAX, "%s.%s+00", base, frac);
	else
		snprintf(out, REBUILD_TIME_MAX, "%s+00", base);
	*secs = (int64_t)t;
	*usec = us;
	return 0;
}

static const CatalogEpochTimeline *tl_find(const CatalogEpoch *s, uint32_t tli)
{
	for (int i = 0; i < s->ntl; i++)
		if (s->tls[i].tli == tli)
			return &s->tls[i];
	return NULL;
}

/* Can recovery along p start from b: b's timeline on p and b's whole span inside its entry. */
static bool on_path(const TimelinePath *p, const BackupMeta *b)
{
	for (int j = 0; p != NULL && j < p->n; j++)
		if (p->e[j].tli == b->timeline)
			return b->start_lsn >= p->e[j].begin && b->stop_lsn <= p->e[j].end;
	return false;
}

static const CatalogWindow *window_of(const CatalogEpoch *s, uint32_t tli)
{
	for (int i = 0; i < s->nw; i++)
		if (s->w[i].tli == tli)
			return &s->w[i];
	return NULL;
}

/* "timeline 1 from 0/2000100 (backup ID) to 0/6000000 (end of NAME)" for messages. */
static void window_text(const CatalogEpoch *s, const CatalogWindow *w, char *buf, size_t size)
{
	size_t n = 0;
	buf[0] = '\0';
	if (w == NULL || w->nranges == 0) {
		snprintf(buf, size, "nothing can be rebuilt along timeline %" PRIu32, w ? w->tli : 0);
		return;
	}
	for (int i = 0; i < w->nranges && n < size; i++) {
		char from[LSN_STR_MAX], to[LSN_STR_MAX], name[32];
		const CatalogRange *r = &w->ranges[i];
		lsn_format(r->from_lsn, from);
		lsn_format(r->to_lsn, to);
		wal_segment_name(r->to_tli, r->to_segno, s->epoch->seg_size, name);
		n += (size_t)snprintf(buf + n, size - n,
				      "%stimeline %" PRIu32 " from %s (backup %s) to %s (end of %s)",
				      i > 0 ? "; " : "", w->tli, from, r->from_backup->id, to, name);
	}
}

static int parse_tli(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0 || v > UINT32_MAX || !isdigit((unsigned char)*s))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static const char *timelines_text(const CatalogEpoch *s, char *buf, size_t size)
{
	size_t n = 0;
	buf[0] = '\0';
	for (int i = 0; i < s->ntl && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%" PRIu32, i ? ", " : "", s->tls[i].tli);
	if (s->ntl == 0)
		snprintf(buf, size, "none");
	return buf;
}

/* Pick the backup (by id, or the newest one that ends before the target). */
static int choose_backup(const CatalogEpoch *s, const RebuildOptions *o, RebuildPlan *pl, uint32_t want_tli,
			 WsError *err)
{
	bool by_id = o->backup_id != NULL && strcmp(o->backup_id, "latest") != 0;

	if (s->nbackups == 0) {
		ws_error(err, WS_FATAL, "epoch \"%s\" has no complete backup", s->epoch->id);
		ws_error_hint(err, "Take one with walship backup.");
		return WS_FATAL;
	}
	if (by_id) {
		for (int i = 0; i < s->nbackups; i++)
			if (strcmp(s->backups[i]->id, o->backup_id) == 0)
				pl->b = s->backups[i];
		if (pl->b == NULL) {
			ws_error(err, WS_USAGE, "backup \"%s\" not found in epoch \"%s\"", o->backup_id,
				 s->epoch->id);
			ws_error_hint(err, "Run walship list to see the complete backups.");
			return WS_USAGE;
		}
		return 0;
	}
	/* A timeline the repository does not hold is refused by choose_timeline, naming those it does. */
	const CatalogEpochTimeline *want = want_tli != 0 ? tl_find(s, want_tli) : NULL;
	if (want != NULL && want->nsegs == 0 && !want->has_history)
		want = NULL;
	for (int i = s->nbackups; i-- > 0;) {
		const BackupMeta *b = s->backups[i];
		if (o->target == TARGET_TIME && !(retention_parse_time(b->stop_time) < pl->time_secs))
			continue;
		if (o->target == TARGET_LSN && b->stop_lsn > pl->target_lsn)
			continue;
		if (want != NULL && !on_path(want->path, b))
			continue;
		pl->b = b;
		return 0;
	}
	if (want_tli != 0 && o->target != TARGET_TIME && o->target != TARGET_LSN) {
		ws_error(err, WS_USAGE, "no backup can be rebuilt along timeline %" PRIu32, want_tli);
		ws_error_detail(err,
				"Each was taken on a timeline that timeline %" PRIu32
				" does not descend from, or after it branched off.",
				want_tli);
		return WS_USAGE;
	}
	const BackupMeta *first = s->backups[0];
	char lsn[LSN_STR_MAX];
	lsn_format(first->stop_lsn, lsn);
	ws_error(err, WS_USAGE, "no backup ends before the recovery target \"%s\"", o->target_value);
	ws_error_detail(err, "The earliest backup, \"%s\", ends at %s (%s).", first->id, lsn,
			first->stop_time);
	return WS_USAGE;
}

/* The timeline to recover along: latest (the highest that can start from b), current or N. */
static int choose_timeline(const CatalogEpoch *s, const RebuildOptions *o, RebuildPlan *pl, WsError *err)
{
	const char *want = o->target_timeline ? o->target_timeline : "latest";
	char list[256];
	uint32_t n;

	if (strcmp(want, "current") == 0) {
		pl->tli = pl->b->timeline;
	} else if (strcmp(want, "latest") == 0) {
		pl->tli = pl->b->timeline;
		for (int i = 0; i < s->ntl; i++)
			if (s->tls[i].tli > pl->tli && on_path(s->tls[i].path, pl->b))
				pl->tli = s->tls[i].tli;
	} else if (parse_tli(want, &n) == 0) {
		const CatalogEpochTimeline *t = tl_find(s, n);
		if (t == NULL || (t->nsegs == 0 && !t->has_history)) {
			ws_error(err, WS_USAGE, "timeline %" PRIu32 " is not in the repository", n);
			ws_error_detail(err, "Epoch \"%s\" holds timelines %s.", s->epoch->id,
					timelines_text(s, list, sizeof(list)));
			return WS_USAGE;
		}
		if (t->path == NULL) {
			ws_error(err, WS_CORRUPT, "the history of timeline %" PRIu32 " cannot be read", n);
			return WS_CORRUPT;
		}
		if (!on_path(t->path, pl->b)) {
			ws_error(err, WS_USAGE,
				 "backup \"%s\" (timeline %" PRIu32 ") cannot reach timeline %" PRIu32,
				 pl->b->id, pl->b->timeline, n);
			ws_error_detail(err,
					"Timeline %" PRIu32 " does not descend from the backup's timeline "
					"after the backup's end.",
					n);
			return WS_USAGE;
		}
		pl->tli = n;
	} else {
		return ws_error(err, WS_USAGE,
				"invalid value \"%s\" for --target-timeline: use latest, current or a number",
				want);
	}
	const CatalogEpochTimeline *t = tl_find(s, pl->tli);
	pl->path = t ? t->path : NULL;
	pl->w = window_of(s, pl->tli);
	snprintf(pl->timeline_value, sizeof(pl->timeline_value), "%" PRIu32, pl->tli);
	return 0;
}

/* Is the target reachable from the backup along the timeline: refuse otherwise, naming the window. */
static int prove_reachable(const CatalogEpoch *s, const RebuildOptions *o, RebuildPlan *pl, WsError *err)
{
	const CatalogWindow *w = pl->w;
	const BackupMeta *b = pl->b;
	uint32_t seg_size = s->epoch->seg_size;
	char win[1024], a[LSN_STR_MAX], name[32];

	if (w == NULL || pl->path == NULL) {
		ws_error(err, WS_CORRUPT, "timeline %" PRIu32 " cannot be followed", pl->tli);
		return WS_CORRUPT;
	}
	window_text(s, w, win, sizeof(win));
	for (int i = 0; i < w->nunusable; i++) {
		if (w->unusable[i].backup != b)
			continue;
		wal_segment_name(w->unusable[i].missing_tli, w->unusable[i].missing_segno, seg_size, name);
		ws_error(err, WS_FATAL, "backup \"%s\" cannot be rebuilt: WAL file \"%s\" is missing", b->id,
			 name);
		ws_error_detail(err, "Available: %s.", win);
		return WS_FATAL;
	}
	const CatalogRange *r = NULL;
	for (int i = 0; i < w->nranges; i++)
		if (w->ranges[i].from_lsn <= b->stop_lsn && b->stop_lsn <= w->ranges[i].to_lsn)
			r = &w->ranges[i];
	if (r == NULL) {
		ws_error(err, WS_FATAL, "backup \"%s\" cannot be rebuilt along timeline %" PRIu32, b->id,
			 pl->tli);
		ws_error_detail(err, "Available: %s.", win);
		return WS_FATAL;
	}
	pl->end_lsn = r->to_lsn;
	pl->end_tli = r->to_tli;
	pl->end_segno = r->to_segno;
	for (int i = 0; i < w->ngaps; i++) {
		if (w->gaps[i].first_segno > r->to_segno) {
			pl->gap_after = true;
			pl->gap_segno = w->gaps[i].first_segno;
			pl->gap_tli = w->gaps[i].tli;
			break;
		}
	}
	if (pl->gap_after)
		wal_segment_name(pl->gap_tli, pl->gap_segno, seg_size, name);

	switch (o->target) {
	case TARGET_LSN:
		if (pl->target_lsn < b->stop_lsn) {
			lsn_format(b->stop_lsn, a);
			ws_error(err, WS_USAGE, "recovery target %s is before the end of backup \"%s\" (%s)",
				 o->target_value, b->id, a);
			ws_error_detail(err, "Available: %s.", win);
			return WS_USAGE;
		}
		if (pl->target_lsn >= pl->end_lsn) {
			ws_error(err, WS_USAGE,
				 "recovery target %s is past the end of the WAL in the repository",
				 o->target_value);
			if (pl->gap_after)
				ws_error_detail(err, "Available: %s; WAL file \"%s\" is missing after that.",
						win, name);
			else
				ws_error_detail(err, "Available: %s.", win);
			return WS_USAGE;
		}
		pl->last_lsn = pl->target_lsn;
		break;
	case TARGET_TIME:
		if (retention_parse_time(b->stop_time) >= pl->time_secs) {
			ws_error(err, WS_USAGE,
				 "recovery target time \"%s\" is not after the end of backup \"%s\" (%s)",
				 pl->time_value, b->id, b->stop_time);
			ws_error_detail(err, "Available: %s.", win);
			return WS_USAGE;
		}
		pl->last_lsn = pl->end_lsn - 1;
		break;
	case TARGET_IMMEDIATE:
		pl->last_lsn = b->stop_lsn - 1;
		break;
	case TARGET_LATEST:
		/* Recovery would end at the hole as if it were the end: the latest state is not reachable. */
		if (pl->gap_after) {
			ws_error(err, WS_FATAL,
				 "the latest point of timeline %" PRIu32 " cannot be reached: WAL file "
				 "\"%s\" is missing",
				 pl->tli, name);
			ws_error_detail(err, "Available: %s.", win);
			ws_error_hint(err,
				      "Recover to a target before it with --target-lsn or --target-time.");
			return WS_FATAL;
		}
		pl->last_lsn = pl->end_lsn - 1;
		break;
	default:
		pl->last_lsn = pl->end_lsn - 1;
		break;
	}
	return 0;
}

typedef struct SegCount {
	uint64_t n;
	uint32_t first_tli, last_tli;
	uint64_t first, last;
} SegCount;

static int count_fn(void *ctx, uint32_t tli, uint64_t segno)
{
	SegCount *c = ctx;
	if (c->n++ == 0) {
		c->first_tli = tli;
		c->first = segno;
	}
	c->last_tli = tli;
	c->last = segno;
	return 0;
}

static const char *target_kind_name(RecoveryTargetKind k)
{
	switch (k) {
	case TARGET_IMMEDIATE:
		return "immediate (the end of the backup)";
	case TARGET_TIME:
		return "time";
	case TARGET_LSN:
		return "lsn";
	case TARGET_XID:
		return "xid";
	case TARGET_NAME:
		return "restore point";
	default:
		return "latest (the end of the archived WAL)";
	}
}

void rebuild_plan_print(const CatalogEpoch *s, const RebuildOptions *o, const RebuildPlan *pl)
{
	const char *value = o->target == TARGET_TIME     ? pl->time_value
			    : o->target == TARGET_LATEST ? NULL
							 : o->target_value;
	const BackupMeta *b = pl->b;
	uint32_t seg_size = s->epoch->seg_size;
	char l1[LSN_STR_MAX], l2[LSN_STR_MAX], n1[32], n2[32];
	SegCount c = {0};

	lsn_format(b->start_lsn, l1);
	lsn_format(b->stop_lsn, l2);
	printf("backup: %s (epoch %s, timeline %" PRIu32 ", %s to %s, ended %s)\n", b->id, s->epoch->id,
	       b->timeline, l1, l2, b->stop_time);
	printf("timeline: %" PRIu32 "%s", pl->tli,
	       o->target_timeline == NULL || strcmp(o->target_timeline, "latest") == 0 ? " (latest)" : "");
	if (pl->path != NULL && pl->path->n > 1) {
		printf(", history:");
		for (int j = 0; j < pl->path->n; j++) {
			if (j + 1 < pl->path->n) {
				lsn_format(pl->path->e[j].end, l1);
				printf(" %" PRIu32 " until %s,", pl->path->e[j].tli, l1);
			} else {
				printf(" then %" PRIu32, pl->path->e[j].tli);
			}
		}
	}
	printf("\n");
	(void)history_segments(pl->path, b->start_lsn, pl->last_lsn, seg_size, count_fn, &c);
	wal_segment_name(c.first_tli, c.first, seg_size, n1);
	wal_segment_name(c.last_tli, c.last, seg_size, n2);
	printf("wal: %s to %s (%" PRIu64 " file%s, all in the repository)\n", n1, n2, c.n,
	       c.n == 1 ? "" : "s");
	lsn_format(pl->end_lsn, l1);
	printf("target: %s%s%s%s%s, action %s; WAL available to %s\n", target_kind_name(o->target),
	       value ? " \"" : "", value ? value : "", value ? "\"" : "",
	       o->target_exclusive ? " (exclusive)" : "",
	       o->standby                   ? "standby"
	       : o->target_action           ? o->target_action
	       : o->target == TARGET_LATEST ? "promote (end of WAL)"
					    : "pause",
	       l1);
}

int rebuild_plan_check_target(const RebuildOptions *o, int pg_major, RebuildPlan *pl, WsError *err)
{
	WsError e;
	if (o->target_action != NULL && strcmp(o->target_action, "pause") != 0 &&
	    strcmp(o->target_action, "promote") != 0 && strcmp(o->target_action, "shutdown") != 0)
		return ws_error(err, WS_USAGE,
				"invalid value \"%s\" for --target-action: use pause, promote or shutdown",
				o->target_action);
	if (o->target_action != NULL && o->target == TARGET_LATEST) {
		ws_error(err, WS_USAGE, "--target-action needs a recovery target");
		ws_error_detail(err, "Without one, recovery replays all the WAL and the server is promoted.");
		return WS_USAGE;
	}
	if (o->target_exclusive && o->target != TARGET_TIME && o->target != TARGET_LSN &&
	    o->target != TARGET_XID)
		return ws_error(err, WS_USAGE,
				"--target-exclusive applies only to --target-time, --target-lsn "
				"and --target-xid");
	if (o->archive != NULL && strcmp(o->archive, "off") != 0 && strcmp(o->archive, "keep") != 0)
		return ws_error(err, WS_USAGE, "invalid value \"%s\" for --archive: use off or keep",
				o->archive);
	if (o->primary_conninfo != NULL && !o->standby)
		return ws_error(err, WS_USAGE, "--primary-conninfo needs --standby");
	if (o->port != 0 && !o->start)
		return ws_error(err, WS_USAGE, "--port needs --start");
	int usec;
	switch (o->target) {
	case TARGET_TIME:
		return rebuild_parse_time(o->target_value, &pl->time_secs, &usec, pl->time_value, err);
	case TARGET_LSN:
		if (!pg_has_recovery_target_lsn(pg_major))
			return ws_error(err, WS_USAGE, "PostgreSQL 9.6 has no recovery_target_lsn");
		ws_error_clear(&e);
		if (lsn_parse(o->target_value, &pl->target_lsn, &e) != 0) {
			*err = e;
			ws_error_prefix(err, "--target-lsn");
			return WS_USAGE;
		}
		return 0;
	case TARGET_XID: {
		const char *p = o->target_value;
		bool ok = *p >= '1' && *p <= '9' && strlen(p) <= 20;
		for (; ok && *p; p++)
			ok = isdigit((unsigned char)*p);
		if (!ok)
			return ws_error(err, WS_USAGE,
					"invalid value \"%s\" for --target-xid: use a transaction ID above 0 "
					"without leading zeros",
					o->target_value);
		return 0;
	}
	case TARGET_NAME:
		if (o->target_value[0] == '\0' || strlen(o->target_value) > 63 ||
		    strchr(o->target_value, '\n'))
			return ws_error(
				err, WS_USAGE,
				"invalid value for --target-name: use the name of a restore point (1 to 63 "
				"bytes)");
		return 0;
	default:
		return 0;
	}
}

int rebuild_plan_choose(const CatalogEpoch *s, const RebuildOptions *o, RebuildPlan *pl, WsError *err)
{
	uint32_t want_tli = 0;
	int rc;
	if (o->target_timeline != NULL && parse_tli(o->target_timeline, &want_tli) != 0)
		want_tli = 0;
	if ((rc = choose_backup(s, o, pl, want_tli, err)) != 0 || (rc = choose_timeline(s, o, pl, err)) != 0)
		return rc;
	return prove_reachable(s, o, pl, err);
}

/* ---- targets past the end of the archive ---- */

bool rebuild_promotes_at_end_of_wal(int pg_major)
{
	return pg_promotes_before_unreached_target(pg_major);
}

int rebuild_target_end_check(int pg_major, RecoveryTargetKind target, const char *target_text,
			     int64_t target_secs, const char *last_wal, int64_t last_stored, WsError *err)
{
	char v[16], stored[CLOCK_ISO_MAX];
	if (!rebuild_promotes_at_end_of_wal(pg_major))
		return 0;
	pg_major_str(pg_major, v, sizeof(v));
	clock_utc_iso(last_stored, stored);
	if (target == TARGET_TIME) {
		/* Whole seconds: a commit stored in second S happened before S + 1. */
		if (target_secs <= last_stored)
			return 0;
		ws_error(err, WS_USAGE,
			 "recovery target time \"%s\" is past the end of the WAL in the repository",
			 target_text);
		ws_error_detail(
			err,
			"The last WAL file recovery can read, \"%s\", was stored at %s, so no transaction "
			"in the archive committed at or after the target; PostgreSQL %s would replay to "
			"the end of the archive and promote as if it had reached the target.",
			last_wal, stored, v);
		ws_error_hint(
			err,
			"Rebuild without a target to recover everything archived, give a point in the "
			"archive with --target-lsn or an earlier --target-time, or wait until the WAL up "
			"to the target is archived.");
		return WS_USAGE;
	}
	if (target != TARGET_XID && target != TARGET_NAME)
		return 0;
	ws_error(err, WS_USAGE, "walship rebuild cannot tell whether %s \"%s\" is in the archived WAL",
		 target == TARGET_XID ? "transaction" : "restore point", target_text);
	ws_error_detail(err,
			"The last WAL file recovery can read is \"%s\", stored at %s.  If the target is not "
			"before it, PostgreSQL %s replays to the end of the archive and promotes as if it "
			"had reached the target, without an error.",
			last_wal, stored, v);
	ws_error_hint(err,
		      "Make sure the target was committed before %s, or use --target-time or --target-lsn, "
		      "which walship rebuild checks against the archive.",
		      stored);
	return 1;
}

int rebuild_plan_check_end(Repo *repo, const CatalogEpoch *s, const RebuildOptions *o, const RebuildPlan *pl,
			   WsError *err)
{
	const RepoEpoch *ep = s->epoch;
	char name[32], key[STORE_KEY_MAX];
	StoreStat st;
	WalName wn;
	int rc;

	if (!rebuild_promotes_at_end_of_wal(ep->pg_major) ||
	    (o->target != TARGET_TIME && o->target != TARGET_XID && o->target != TARGET_NAME))
		return 0;
	wal_segment_name(pl->end_tli, pl->end_segno, ep->seg_size, name);
	if (walname_parse(name, &wn, err) != 0 || repo_key_wal(ep, &wn, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "repository key for WAL file \"%s\" is too long", name);
	if ((rc = store_stat(repo_store(repo), key, &st, err)) != 0) {
		ws_error_prefix(err, "could not read when WAL file \"%s\" was stored", name);
		return rc;
	}
	rc = rebuild_target_end_check(ep->pg_major, o->target,
				      o->target == TARGET_TIME ? pl->time_value : o->target_value,
				      pl->time_secs, name, st.mtime, err);
	if (rc == 1) {
		log_report_warning(err);
		ws_error_clear(err);
		rc = 0;
	}
	return rc;
}
