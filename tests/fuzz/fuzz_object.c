/*
 * fuzz_object.c - walship's object format, unencrypted (repo/object.c): every
 * WAL file, history file, backup tar and backup_manifest walship-fetch,
 * rebuild and verify read back from a repository.
 *
 * Input: a stored object.  It is decoded whole and in chunks
 * (fuzz_object_decode), and its header and trailer images are parsed alone
 * as walship-push does when it compares with an object already stored.
 */
#include "fuzz.h"
#include "repo/object.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t content;
	unsigned char sha[32];
	WsError err;

	fuzz_object_decode(data, size, NULL, "15-1/wal/0000000100000000/000000010000000000000001");
	(void)obj_header_parse(data, size, &content, &err);
	(void)obj_trailer_parse(data, size, &content, sha, &err);
	return 0;
}
