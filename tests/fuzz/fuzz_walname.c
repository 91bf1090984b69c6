/*
 * fuzz_walname.c - WAL file names (pg/walname.c) and LSNs (pg/lsn.c): the
 * names in archive_command's %f, restore_command's %f and every repository
 * listing, and the LSNs of manifest.json, history files and --target-lsn.
 *
 * Input: one name or LSN (bytes up to a NUL).  Checked beyond the
 * sanitizers: an accepted name keeps its text and, for every segment size
 * it fits, formats back to itself; an accepted LSN prints and parses back to
 * the same value; walname_escape never overruns the buffer it is given.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pg/lsn.h"
#include "pg/walname.h"
#include "util/mem.h"

static void check_name(const char *s)
{
	WalName n, again;
	WsError err;

	if (walname_parse(s, &n, &err) != 0)
		return;
	FUZZ_CHECK(strcmp(n.name, s) == 0 && n.tli != 0);
	FUZZ_CHECK(walname_compare(&n, &n) == 0);
	FUZZ_CHECK(walname_parse(n.name, &again, &err) == 0 && walname_compare(&n, &again) == 0);
	for (uint32_t size = 1u << 20; size <= 1u << 30; size <<= 1) {
		char buf[32];
		if (n.kind == WAL_HISTORY || walname_check_segsize(&n, size, &err) != 0)
			continue;
		wal_segment_name(n.tli, walname_segno(&n, size), size, buf);
		FUZZ_CHECK(strncmp(buf, s, 24) == 0);
	}
}

static void check_lsn(const char *s)
{
	uint64_t lsn, again;
	char buf[LSN_STR_MAX];
	WsError err;

	if (lsn_parse(s, &lsn, &err) != 0)
		return;
	lsn_format(lsn, buf);
	FUZZ_CHECK(lsn_parse(buf, &again, &err) == 0 && again == lsn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	check_name(s);
	check_lsn(s);
	/* Every buffer size up to a little past what the longest escape needs. */
	for (size_t cap = 0; cap <= WALNAME_ESCAPE_MAX + 8; cap += cap < 16 ? 1 : 13) {
		char *buf = xmalloc(cap > 0 ? cap : 1);
		walname_escape((const char *)data, size, buf, cap);
		FUZZ_CHECK(cap == 0 || strlen(buf) < cap);
		free(buf);
	}
	free(s);
	return 0;
}
