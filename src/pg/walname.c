/*
 * walname.c - recognising the names PostgreSQL gives archived files, and
 * sorting them in the order recovery reads them.
 *
 * The accepted forms are those of xlog_internal.h (IsXLogFileName and
 * friends), uppercase hex only: a name becomes a repository key, so anything
 * PostgreSQL itself would never produce is refused rather than normalised.
 */
#include "pg/walname.h"

#include <stdio.h>
#include <string.h>

#include "util/mem.h"

#define SEG_CHARS 24
#define TLI_CHARS 8

static const char accepted_forms[] =
	"expected a segment (24 hex digits), TLI.history, SEGMENT.OFFSET.backup or SEGMENT.partial";

static bool is_upper_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

static uint32_t hex8(const char *s)
{
	uint32_t v = 0;
	for (int i = 0; i < 8; i++) {
		char c = s[i];
		v = (v << 4) | (uint32_t)(c <= '9' ? c - '0' : c - 'A' + 10);
	}
	return v;
}

void walname_escape(const char *s, size_t len, char *buf, size_t size)
{
	/* Room for one escape sequence, the ellipsis and the terminator. */
	const size_t reserve = 4 + 3 + 1;
	size_t used = 0;

	if (size == 0)
		return;
	if (size < reserve + 1) {
		buf[0] = '\0';
		return;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (used + reserve >= size || used >= WALNAME_ESCAPE_MAX) {
			memcpy(buf + used, "...", 3);
			used += 3;
			break;
		}
		if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\') {
			snprintf(buf + used, size - used, "\\x%02X", c);
			used += 4;
		} else {
			buf[used++] = (char)c;
		}
	}
	buf[used] = '\0';
}

static int not_a_name(const char *name, WsError *err, const char *detail)
{
	char shown[WALNAME_ESCAPE_MAX + 8];
	walname_escape(name, strlen(name), shown, sizeof(shown));
	ws_error(err, WS_USAGE, "\"%s\" is not a WAL file name", shown);
	ws_error_detail(err, "%s", detail);
	return WS_USAGE;
}

bool walname_args_swapped(const char *bare, const char *pathlike)
{
	WalName n;
	if (bare == NULL || pathlike == NULL || strchr(bare, '/') != NULL ||
	    walname_parse(bare, &n, NULL) != 0)
		return false;
	const char *base = strrchr(pathlike, '/');
	base = base ? base + 1 : pathlike;
	return base != pathlike || strcmp(base, "RECOVERYXLOG") == 0 || strcmp(base, "RECOVERYHISTORY") == 0;
}

int walname_parse(const char *name, WalName *out, WsError *err)
{
	WalName n;
	size_t len;

	memset(&n, 0, sizeof(n));
	if (name == NULL)
		return not_a_name("", err, accepted_forms);
	len = strnlen(name, WAL_NAME_MAX);
	if (len >= WAL_NAME_MAX)
		return not_a_name(name, err, accepted_forms);

	if (len == TLI_CHARS + strlen(".history") && is_upper_hex(name, TLI_CHARS) &&
	    strcmp(name + TLI_CHARS, ".history") == 0) {
		n.kind = WAL_HISTORY;
		n.tli = hex8(name);
	} else if (len >= SEG_CHARS && is_upper_hex(name, SEG_CHARS)) {
		const char *rest = name + SEG_CHARS;
		if (*rest == '\0') {
			n.kind = WAL_SEGMENT;
		} else if (strcmp(rest, ".partial") == 0) {
			n.kind = WAL_PARTIAL;
		} else if (len == SEG_CHARS + 1 + 8 + strlen(".backup") && rest[0] == '.' &&
			   is_upper_hex(rest + 1, 8) && strcmp(rest + 9, ".backup") == 0) {
			n.kind = WAL_BACKUP;
			n.backup_offset = hex8(rest + 1);
		} else {
			return not_a_name(name, err, accepted_forms);
		}
		n.tli = hex8(name);
		n.log = hex8(name + 8);
		n.seg = hex8(name + 16);
	} else {
		return not_a_name(name, err, accepted_forms);
	}

	if (n.tli == 0)
		return not_a_name(name, err, "timeline 0 does not exist: PostgreSQL's timelines start at 1");

	memcpy(n.name, name, len + 1);
	*out = n;
	return 0;
}

const char *walname_kind_str(WalKind kind)
{
	switch (kind) {
	case WAL_SEGMENT:
		return "segment";
	case WAL_HISTORY:
		return "history file";
	case WAL_BACKUP:
		return "backup history file";
	case WAL_PARTIAL:
		return "partial segment";
	}
	return "unknown";
}

uint64_t wal_segs_per_log(uint32_t seg_size)
{
	if (seg_size == 0)
		return 0;
	return UINT64_C(0x100000000) / seg_size;
}

uint64_t walname_segno(const WalName *n, uint32_t seg_size)
{
	return (uint64_t)n->log * wal_segs_per_log(seg_size) + n->seg;
}

int walname_check_segsize(const WalName *n, uint32_t seg_size, WsError *err)
{
	uint64_t per_log;

	if (n->kind == WAL_HISTORY)
		return 0;
	if (!wal_segsize_valid(seg_size)) {
		ws_error(err, WS_USAGE, "invalid WAL segment size %u", seg_size);
		ws_error_detail(err, "The WAL segment size must be a power of two from 1 MB to 1 GB.");
		return WS_USAGE;
	}
	per_log = wal_segs_per_log(seg_size);
	if (n->seg >= per_log) {
		ws_error(err, WS_USAGE, "\"%s\" is not a valid WAL file name for %u MB segments", n->name,
			 seg_size / (1024 * 1024));
		ws_error_detail(err, "With this segment size its last 8 hex digits must be below %08X.",
				(uint32_t)per_log);
		return WS_USAGE;
	}
	return 0;
}

void wal_segment_name(uint32_t tli, uint64_t segno, uint32_t seg_size, char *buf)
{
	uint64_t per_log = wal_segs_per_log(seg_size);
	snprintf(buf, SEG_CHARS + 1, "%08X%08X%08X", tli, (uint32_t)(segno / per_log),
		 (uint32_t)(segno % per_log));
}

/* Within one timeline: the history file first, then by position. */
static int kind_rank(WalKind kind)
{
	switch (kind) {
	case WAL_HISTORY:
		return 0;
	case WAL_SEGMENT:
		return 1;
	case WAL_PARTIAL:
		return 2;
	case WAL_BACKUP:
		return 3;
	}
	return 4;
}

#define CMP(x, y)                                                                                            \
	do {                                                                                                 \
		if ((x) != (y))                                                                              \
			return (x) < (y) ? -1 : 1;                                                           \
	} while (0)

int walname_compare(const WalName *a, const WalName *b)
{
	bool ha = a->kind == WAL_HISTORY, hb = b->kind == WAL_HISTORY;

	CMP(a->tli, b->tli);
	if (ha != hb)
		return ha ? -1 : 1;
	CMP(a->log, b->log);
	CMP(a->seg, b->seg);
	CMP(kind_rank(a->kind), kind_rank(b->kind));
	CMP(a->backup_offset, b->backup_offset);
	return strcmp(a->name, b->name);
}

bool wal_segsize_valid(uint32_t seg_size)
{
	return seg_size >= 1024u * 1024u && seg_size <= 1024u * 1024u * 1024u &&
	       (seg_size & (seg_size - 1)) == 0;
}
