/*
 * fuzz_s3creds.c - the AWS shared credentials file (store/s3_util.c), read
 * when an S3 repository has no s3-key set.
 *
 * Input: the text of a credentials file (bytes up to a NUL), read for the
 * profiles "default" and "walship".  What is found has both keys, non-empty,
 * without surrounding blanks.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store/s3_util.h"

static void check_value(const char *v)
{
	size_t n;
	FUZZ_CHECK(v == NULL || ((n = strlen(v)) > 0 && v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' &&
				 v[n - 1] != '\t' && strchr(v, '\n') == NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const profiles[] = {"default", "walship"};
	char *text = fuzz_cstr(data, size);
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
		S3Creds c;
		WsError err;
		if (s3_creds_parse(text, profiles[i], "fuzz/credentials", &c, &err) == 0) {
			FUZZ_CHECK(c.key_id != NULL && c.secret != NULL);
			check_value(c.key_id);
			check_value(c.secret);
			check_value(c.token);
			s3_creds_clear(&c);
		}
	}
	free(text);
	return 0;
}
