/*
 * fuzz_server.c - what walship check and walship backup read from the
 * server's settings: archive_command, read as /bin/sh would to find the
 * walship-push call and its repository (cmd/check.c), and sizes as SHOW
 * prints them (pg/basebackup.c).
 *
 * Input: one setting's text (bytes up to a NUL).  A walship-push call found
 * names a program and has its repository normalised the same way twice.
 */
#include <stdlib.h>
#include <string.h>

#include "cmd/check.h"
#include "fuzz.h"
#include "pg/basebackup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	CheckPushCall call;
	uint64_t bytes;

	int rc = check_parse_archive_command(s, &call);
	FUZZ_CHECK(rc >= -1 && rc <= 1);
	if (rc == 1) {
		FUZZ_CHECK(call.program != NULL && call.args != NULL);
		if (call.repo != NULL) {
			char *n = check_repo_normalize(call.repo);
			char *again = check_repo_normalize(n);
			FUZZ_CHECK(strcmp(n, again) == 0 && check_repo_same(call.repo, n));
			free(again);
			free(n);
		}
		check_push_call_clear(&call);
	}
	(void)pg_size_parse(s, &bytes);
	free(s);
	return 0;
}
