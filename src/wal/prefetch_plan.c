/*
 * prefetch_plan.c - the read-ahead's plan and its file names and formats
 * (see prefetch_plan.h): pure functions, no I/O.
 */
#include "wal/prefetch_plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "pg/pgmajor.h"
#include "util/mem.h"

#define INDEX_FORMAT 1

typedef struct PlanCtx {
	uint64_t first;
	uint32_t want_tli;
	bool first_ok;
	PrefetchSeg *out;
	int n, max;
} PlanCtx;

static int plan_cb(void *ctx, uint32_t tli, uint64_t segno)
{
	PlanCtx *c = ctx;
	if (segno == c->first) {
		c->first_ok = tli == c->want_tli;
		return c->first_ok ? 0 : 1;
	}
	if (c->n < c->max)
		c->out[c->n++] = (PrefetchSeg){tli, segno};
	return 0;
}

int prefetch_plan(const TimelinePath *p, uint32_t seg_size, uint32_t tli, uint64_t segno, int max,
		  PrefetchSeg *out, int *got)
{
	*got = 0;
	if (max < 0 || !wal_segsize_valid(seg_size))
		return WS_USAGE;
	uint64_t last_segno = (UINT64_MAX - 1) / seg_size;
	if (segno > last_segno)
		return WS_USAGE;
	uint64_t end = segno + (uint64_t)max;
	if (end > last_segno || end < segno)
		end = last_segno;
	PlanCtx c = {.first = segno, .want_tli = tli, .out = out, .max = max};
	int rc = history_segments(p, segno * seg_size, end * seg_size, seg_size, plan_cb, &c);
	if (rc < 0 || !c.first_ok)
		return WS_USAGE;
	*got = c.n;
	return 0;
}

bool prefetch_on_path(const TimelinePath *p, uint32_t seg_size, uint32_t tli, uint64_t segno)
{
	int got;
	return prefetch_plan(p, seg_size, tli, segno, 0, NULL, &got) == 0;
}

bool prefetch_epoch_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 31)
		return false;
	for (const char *s = id; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-'))
			return false;
	return true;
}

int prefetch_spool_name(const char *segname, const char *epoch_id, uint64_t size,
			const unsigned char sha256[32], char *buf, size_t bufsize)
{
	char hex[65];
	if (strlen(segname) != 24 || !prefetch_epoch_id_ok(epoch_id))
		return -1;
	hex_encode(sha256, 32, hex);
	return str_format(buf, bufsize, "%s.%s.%" PRIu64 ".%s", segname, epoch_id, size, hex);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int prefetch_spool_parse(const char *name, SpoolEntry *out)
{
	const char *p = name, *dot;
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < 24; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'A' && p[i] <= 'F')))
			return -1;
	if (p[24] != '.')
		return -1;
	memcpy(out->segname, p, 24);
	p += 25;
	dot = strchr(p, '.');
	if (dot == NULL || dot == p || (size_t)(dot - p) >= sizeof(out->epoch))
		return -1;
	memcpy(out->epoch, p, (size_t)(dot - p));
	if (!prefetch_epoch_id_ok(out->epoch))
		return -1;
	p = dot + 1;
	if (*p < '0' || *p > '9' || (*p == '0' && p[1] != '.'))
		return -1;
	uint64_t size = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (size > (UINT64_MAX - 9) / 10)
			return -1;
		size = size * 10 + (uint64_t)(*p - '0');
	}
	if (*p++ != '.')
		return -1;
	out->size = size;
	for (int i = 0; i < 32; i++) {
		int hi = hexval(p[2 * i]), lo = hi < 0 ? -1 : hexval(p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out->sha256[i] = (unsigned char)(hi << 4 | lo);
	}
	return p[64] == '\0' ? 0 : -1;
}

void prefetch_dir_key(uint64_t sysid, const char *realpath, char *buf, size_t bufsize)
{
	unsigned char md[32];
	unsigned int len = 0;
	char hex[65];
	EVP_Digest(realpath, strlen(realpath), md, &len, EVP_sha256(), NULL);
	hex_encode(md, 8, hex);
	snprintf(buf, bufsize, "%" PRIu64 "-%s", sysid, hex);
}

uint64_t prefetch_room(uint64_t max_bytes, uint64_t used_bytes, uint32_t seg_size)
{
	if (seg_size == 0 || used_bytes >= max_bytes)
		return 0;
	return (max_bytes - used_bytes) / seg_size;
}

int prefetch_next(const PrefetchWindow *w, int *out)
{
	int k = 0;
	uint64_t room = w->room;
	for (int i = 0; i < w->n && k < w->idle; i++) {
		const PrefetchSeg *s = &w->plan[i];
		/* The plan is in segment order: nothing past a "not found" exists yet for this request. */
		if (w->blocked && s->segno >= w->blocked_segno)
			break;
		if (w->spooled[i])
			continue;
		bool busy = false;
		for (int j = 0; j < w->nbusy && !busy; j++)
			busy = w->busy[j].tli == s->tli && w->busy[j].segno == s->segno;
		if (busy)
			continue;
		if (room == 0)
			break;
		room--;
		out[k++] = i;
	}
	return k;
}

void prefetch_index_name(const char *repo_ident, const char *dir_key, char *buf, size_t bufsize)
{
	unsigned char md[32];
	unsigned int len = 0;
	char hex[65];
	EVP_Digest(repo_ident, strlen(repo_ident), md, &len, EVP_sha256(), NULL);
	hex_encode(md, 8, hex);
	snprintf(buf, bufsize, "%s-%s", hex, dir_key);
}

static bool uuid_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof(((PrefetchIndex *)NULL)->uuid))
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F') ||
		      *s == '-'))
			return false;
	return true;
}

/*
 * The index keeps the major in the two-digit form it was first written in
 * (96 for 9.6, 15 for 15), not pgmajor.h's numbers: spools outlive upgrades.
 */
static int index_major_text(int major)
{
	return major < PG_MAJOR(10) ? major / 10000 * 10 + major / 100 % 100 : major / 10000;
}

static int index_major_parse(int n)
{
	return n >= 90 && n < 100 ? n / 10 * 10000 + n % 10 * 100 : PG_MAJOR(n);
}

int prefetch_index_format(const PrefetchIndex *ix, char *buf, size_t bufsize)
{
	if (!uuid_ok(ix->uuid) || !prefetch_epoch_id_ok(ix->epoch.id) ||
	    index_major_text(ix->epoch.pg_major) <= 0 || !wal_segsize_valid(ix->epoch.seg_size))
		return -1;
	return str_format(buf, bufsize, "%d %s %s %" PRIu64 " %d %" PRIu32 "\n", INDEX_FORMAT, ix->uuid,
			  ix->epoch.id, ix->epoch.sysid, index_major_text(ix->epoch.pg_major),
			  ix->epoch.seg_size);
}

/* Strict: the text must be exactly what prefetch_index_format writes for what it parses to. */
int prefetch_index_parse(const char *text, size_t len, PrefetchIndex *out)
{
	char copy[PREFETCH_INDEX_MAX], again[PREFETCH_INDEX_MAX];
	int format = 0;
	memset(out, 0, sizeof(*out));
	if (len == 0 || len >= sizeof(copy) || memchr(text, '\0', len) != NULL)
		return -1;
	memcpy(copy, text, len);
	copy[len] = '\0';
	int major = 0;
	if (sscanf(copy, "%d %39s %31s %" SCNu64 " %d %" SCNu32, &format, out->uuid, out->epoch.id,
		   &out->epoch.sysid, &major, &out->epoch.seg_size) != 6 ||
	    major <= 0 || major > 9999) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	out->epoch.pg_major = index_major_parse(major);
	if (format != INDEX_FORMAT || prefetch_index_format(out, again, sizeof(again)) != 0 ||
	    strcmp(copy, again) != 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

int prefetch_request_parse(const char *text, size_t len, WalName *seg, char *epoch)
{
	char copy[PREFETCH_INDEX_MAX], again[PREFETCH_INDEX_MAX], name[WAL_NAME_MAX];
	if (len == 0 || len >= sizeof(copy) || memchr(text, '\0', len) != NULL)
		return -1;
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (sscanf(copy, "%63s %31s", name, epoch) != 2 || walname_parse(name, seg, NULL) != 0 ||
	    seg->kind != WAL_SEGMENT || !prefetch_epoch_id_ok(epoch) ||
	    str_format(again, sizeof(again), "%s %s\n", name, epoch) != 0 || strcmp(copy, again) != 0)
		return -1;
	return 0;
}
