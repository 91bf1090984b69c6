/*
 * walpage.c - checking the long page header that starts every WAL segment,
 * so a push or fetch never passes off another cluster's, another version's or
 * another position's bytes under a segment's name.
 *
 * The XLOG_PAGE_MAGIC values come from src/include/access/xlog_internal.h of
 * each release branch; a magic of another supported version is named in the
 * error, as that is the usual cause (a file from before pg_upgrade).
 */
#include "pg/walpage.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pg/pgcontrol.h"
#include "pg/pgmajor.h"

static const struct {
	int major;
	uint16_t magic;
} page_magics[] = {
	{PG_MAJOR_9_6, 0xD093}, {PG_MAJOR(10), 0xD097}, {PG_MAJOR(11), 0xD098},
	{PG_MAJOR(12), 0xD101}, {PG_MAJOR(13), 0xD106}, {PG_MAJOR(14), 0xD10D},
	{PG_MAJOR(15), 0xD110}, {PG_MAJOR(16), 0xD113}, {PG_MAJOR(17), 0xD116},
};

#define N_MAGICS (sizeof(page_magics) / sizeof(page_magics[0]))

uint16_t wal_page_magic(int pg_major)
{
	for (size_t i = 0; i < N_MAGICS; i++)
		if (page_magics[i].major == pg_major)
			return page_magics[i].magic;
	return 0;
}

static int magic_major(uint16_t magic)
{
	for (size_t i = 0; i < N_MAGICS; i++)
		if (page_magics[i].magic == magic)
			return page_magics[i].major;
	return 0;
}

static uint16_t get16(const unsigned char *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

void wal_long_header_decode(const unsigned char *buf, WalLongHeader *out)
{
	/* Offsets of XLogLongPageHeaderData on every platform walship supports (8-byte MAXALIGN). */
	out->magic = get16(buf + 0);
	out->info = get16(buf + 2);
	out->tli = get32(buf + 4);
	out->pageaddr = get64(buf + 8);
	out->rem_len = get32(buf + 16);
	out->sysid = get64(buf + 24);
	out->seg_size = get32(buf + 32);
	out->xlog_blcksz = get32(buf + 36);
}

static int corrupt(WsError *err, const char *what, const char *problem)
{
	return ws_error(err, WS_CORRUPT, "WAL file \"%s\" %s", what, problem);
}

int wal_page_check(const unsigned char *buf, size_t len, int pg_major, uint64_t sysid, uint32_t seg_size,
		   uint64_t segno, const char *what, WsError *err)
{
	WalLongHeader h;
	uint16_t want_magic = wal_page_magic(pg_major);
	char want_ver[16];
	uint64_t want_addr;

	pg_major_str(pg_major, want_ver, sizeof(want_ver));
	if (want_magic == 0) {
		/* A caller's mistake, not the file's: don't call the file corrupt. */
		ws_error(err, WS_FATAL, "cannot check WAL file \"%s\": unsupported PostgreSQL version %s",
			 what, want_ver);
		return WS_FATAL;
	}
	if (len < WAL_LONG_HEADER_SIZE) {
		corrupt(err, what, "is too short");
		ws_error_detail(err,
				"It has %zu bytes, a WAL segment starts with a %d-byte long page header.",
				len, WAL_LONG_HEADER_SIZE);
		return WS_CORRUPT;
	}
	wal_long_header_decode(buf, &h);

	if (h.magic != want_magic) {
		int other = magic_major(h.magic);
		if (other != 0) {
			char got_ver[16];
			pg_major_str(other, got_ver, sizeof(got_ver));
			ws_error(err, WS_CORRUPT, "WAL file \"%s\" was written by PostgreSQL %s, not %s",
				 what, got_ver, want_ver);
			ws_error_detail(err, "Its page magic is 0x%04X, PostgreSQL %s writes 0x%04X.",
					h.magic, want_ver, want_magic);
			ws_error_hint(
				err, "After pg_upgrade, run \"walship upgrade\" once to add an epoch for the "
				     "new cluster.");
		} else {
			corrupt(err, what, "has an invalid page header");
			ws_error_detail(err, "Its page magic is 0x%04X, PostgreSQL %s writes 0x%04X.",
					h.magic, want_ver, want_magic);
			ws_error_hint(err, "The file may be damaged, truncated or not a WAL segment at all.");
		}
		return WS_CORRUPT;
	}
	if ((h.info & WAL_XLP_LONG_HEADER) == 0) {
		corrupt(err, what, "does not start with a long page header");
		ws_error_detail(err, "Its xlp_info is 0x%04X, without the long-header bit 0x%04X.", h.info,
				WAL_XLP_LONG_HEADER);
		return WS_CORRUPT;
	}
	if (h.sysid != sysid) {
		corrupt(err, what, "belongs to another cluster");
		ws_error_detail(err,
				"Its system identifier is %" PRIu64 ", the data directory's is %" PRIu64 ".",
				h.sysid, sysid);
		return WS_CORRUPT;
	}
	if (h.seg_size != seg_size) {
		ws_error(err, WS_CORRUPT, "WAL file \"%s\" has segment size %u, expected %u", what,
			 h.seg_size, seg_size);
		ws_error_detail(err, "Its page header says %u bytes, the cluster's WAL segments have %u.",
				h.seg_size, seg_size);
		return WS_CORRUPT;
	}
	want_addr = segno * seg_size;
	if (h.pageaddr != want_addr) {
		char got_lsn[24], want_lsn[24];
		/* PostgreSQL's %X/%X notation, as in its own messages and pg_waldump. */
		snprintf(got_lsn, sizeof(got_lsn), "%X/%X", (uint32_t)(h.pageaddr >> 32),
			 (uint32_t)h.pageaddr);
		snprintf(want_lsn, sizeof(want_lsn), "%X/%X", (uint32_t)(want_addr >> 32),
			 (uint32_t)want_addr);
		ws_error(
			err, WS_CORRUPT,
			"WAL file \"%s\" has page address %s, expected %s (is it another segment's content?)",
			what, got_lsn, want_lsn);
		return WS_CORRUPT;
	}
	if (h.xlog_blcksz < 1024 || h.xlog_blcksz > 65536 || (h.xlog_blcksz & (h.xlog_blcksz - 1)) != 0) {
		ws_error(err, WS_CORRUPT, "WAL file \"%s\" has an invalid WAL block size %u", what,
			 h.xlog_blcksz);
		ws_error_detail(err, "The WAL block size is a power of two from 1024 to 65536 bytes.");
		return WS_CORRUPT;
	}
	return 0;
}
