/*
 * fuzz_walpage.c - the long page header of a WAL segment (pg/walpage.c),
 * checked by walship-push before storing a segment and by walship-fetch
 * before handing one to recovery.
 *
 * Input: the start of a segment.  It is checked against every supported
 * major version, once with the facts its own header claims (it must pass
 * exactly when magic, flag, segment size, address and block size are valid)
 * and once with a fixed cluster's.
 */
#include <string.h>

#include "fuzz.h"
#include "pg/pgmajor.h"
#include "pg/walname.h"
#include "pg/walpage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int majors[] = {PG_MAJOR_9_6, PG_MAJOR(10), PG_MAJOR(11), PG_MAJOR(12), PG_MAJOR(13),
				     PG_MAJOR(14), PG_MAJOR(15), PG_MAJOR(16), PG_MAJOR(17), 0,
				     90000,        PG_MAJOR(18)};
	WalLongHeader h = {0};
	WsError err;

	if (size >= WAL_LONG_HEADER_SIZE)
		wal_long_header_decode(data, &h);
	for (size_t i = 0; i < sizeof(majors) / sizeof(majors[0]); i++) {
		int m = majors[i];
		uint32_t seg = wal_segsize_valid(h.seg_size) ? h.seg_size : 16u << 20;
		uint64_t segno = h.pageaddr / seg;
		int rc = wal_page_check(data, size, m, h.sysid, seg, segno, "fuzz", &err);
		bool blcksz_ok = h.xlog_blcksz >= 1024 && h.xlog_blcksz <= 65536 &&
				 (h.xlog_blcksz & (h.xlog_blcksz - 1)) == 0;
		bool valid = size >= WAL_LONG_HEADER_SIZE && wal_page_magic(m) != 0 &&
			     h.magic == wal_page_magic(m) && (h.info & WAL_XLP_LONG_HEADER) &&
			     seg == h.seg_size && h.pageaddr % seg == 0 && blcksz_ok;
		FUZZ_CHECK((rc == 0) == valid);
		(void)wal_page_check(data, size, m, 7301234567890123456u, 16u << 20, 1, "fuzz", &err);
	}
	return 0;
}
