/*
 * fuzz_server.c - what walship check and walship backup read from the
 * server's settings: archive_command, read as /bin/sh would to find the
 * walship-push call and its repository (pg/archcheck.c), and sizes as SHOW
 * prints them (pg/basebackup.c).
 *
 * Input: one setting's text (bytes up to a NUL).  A walship-push call found
 * names a program and has its repository normalised the same way twice.
 */
#include <stdlib.h>
#include <string.h>

#include "pg/archcheck.h"
#include "fuzz.h"
#include "pg/basebackup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	ArchPushCall call;
	uint64_t bytes;

	int rc = archcheck_parse_command(s, &call);
	FUZZ_CHECK(rc >= -1 && rc <= 1);
	if (rc == 1) {
		FUZZ_CHECK(call.program != NULL && call.args != NULL);
		if (call.repo != NULL) {
			char *n = archcheck_repo_normalize(call.repo);
			char *again = archcheck_repo_normalize(n);
			FUZZ_CHECK(strcmp(n, again) == 0 && archcheck_repo_same(call.repo, n));
			free(again);
			free(n);
		}
		archcheck_push_call_clear(&call);
	}
	(void)pg_size_parse(s, &bytes);
	free(s);
	return 0;
}
