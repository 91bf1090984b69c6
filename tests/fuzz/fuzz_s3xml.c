/*
 * fuzz_s3xml.c - what an S3 server answers in XML (store/s3_util.c, through
 * libxml2 loaded with dlopen): errors, ListObjectsV2 pages, the UploadId of
 * a multipart upload, and the times in listings.
 *
 * Input: an answer's body, given to each parser.  A listing that parses has
 * a key for every entry and a continuation token when truncated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store/s3_lib.h"
#include "store/s3_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	WsError err;
	(void)argc;
	(void)argv;
	fuzz_quiet();
	if (s3_lib_load(&err) != 0) {
		fprintf(stderr, "fuzz_s3xml: %s (%s)\n", err.msg, err.detail);
		exit(2);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	S3ErrorBody eb;
	S3ListPage page;
	WsError err;

	if (s3_parse_error(body, size, &eb))
		FUZZ_CHECK(strlen(eb.code) < sizeof(eb.code) && strlen(eb.message) < sizeof(eb.message));
	if (s3_parse_list(body, size, &page, &err) == 0) {
		for (size_t i = 0; i < page.n; i++)
			FUZZ_CHECK(page.entries[i].key != NULL && page.entries[i].st.mtime >= 0);
		FUZZ_CHECK(!page.truncated || (page.next_token != NULL && page.next_token[0] != '\0'));
		s3_list_page_clear(&page);
	}
	char *id = s3_parse_upload_id(body, size);
	FUZZ_CHECK(id == NULL || id[0] != '\0');
	free(id);
	char *text = fuzz_cstr(data, size < 64 ? size : 64);
	(void)s3_parse_time(text);
	free(text);
	return 0;
}
