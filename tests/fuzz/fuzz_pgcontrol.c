/*
 * fuzz_pgcontrol.c - a data directory's global/pg_control and PG_VERSION
 * (pg/pgcontrol.c): every hook call reads both, and walship init and
 * upgrade make a repository's identity from them.
 *
 * Input: a pg_control image, also written as a data directory's PG_VERSION
 * when it is small.  An accepted pg_control has valid sizes; an accepted
 * PG_VERSION is a supported major version that prints back as it was read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "pg/pgcontrol.h"
#include "pg/pgmajor.h"
#include "pg/walname.h"
#include "util/mem.h"

static char *datadir;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	datadir = xasprintf("%s/data", fuzz_scratch());
	FUZZ_CHECK(mkdir(datadir, 0700) == 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PgControl c;
	WsError err;
	int major;

	if (pg_control_parse(data, size, &c, &err) == 0)
		FUZZ_CHECK(wal_segsize_valid(c.seg_size) && c.blcksz >= 1024 && c.xlog_blcksz >= 1024);
	if (size <= 64) {
		char *path = xasprintf("%s/PG_VERSION", datadir);
		fuzz_write_file(path, data, size);
		if (pg_version_read(datadir, &major, &err) == 0) {
			char buf[16];
			pg_major_str(major, buf, sizeof(buf));
			FUZZ_CHECK(pg_major_supported(major));
			FUZZ_CHECK(size >= strlen(buf) && memcmp(data, buf, strlen(buf)) == 0);
		}
		free(path);
	}
	return 0;
}
