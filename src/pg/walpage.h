/*
 * walpage.h - the long page header at the start of every WAL segment.
 *
 * XLogLongPageHeaderData: xlp_magic (u16), xlp_info (u16), xlp_tli (u32),
 * xlp_pageaddr (u64), xlp_rem_len (u32), padding, xlp_sysid (u64),
 * xlp_seg_size (u32), xlp_xlog_blcksz (u32): 40 bytes, host byte order.
 */
#ifndef WALSHIP_PG_WALPAGE_H
#define WALSHIP_PG_WALPAGE_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define WAL_LONG_HEADER_SIZE 40
#define WAL_XLP_LONG_HEADER  0x0002

typedef struct WalLongHeader {
	uint16_t magic;
	uint16_t info;
	uint32_t tli;
	uint64_t pageaddr;
	uint32_t rem_len;
	uint64_t sysid;
	uint32_t seg_size;
	uint32_t xlog_blcksz;
} WalLongHeader;

/* XLOG_PAGE_MAGIC of a major version (pgmajor.h: 90600 for 9.6, 100000 ... 170000); 0 if unknown. */
uint16_t wal_page_magic(int pg_major);

/* Decode the first WAL_LONG_HEADER_SIZE bytes of buf (len must be >= that). */
void wal_long_header_decode(const unsigned char *buf, WalLongHeader *out);

/*
 * Check that buf (the start of a segment named by segno) carries a long page
 * header for this cluster: the major version's magic, the long-header flag,
 * sysid, seg_size, and xlp_pageaddr == segno * seg_size.  WS_CORRUPT with the
 * expected and found values in the detail.  what names the file for messages.
 */
int wal_page_check(const unsigned char *buf, size_t len, int pg_major, uint64_t sysid, uint32_t seg_size,
		   uint64_t segno, const char *what, WsError *err);

#endif
