/* fuzz.c - helpers shared by the fuzz harnesses (see fuzz.h). */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repo/object.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"

const char *fuzz_input_name;

void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "fuzz check failed at %s:%d: %s\n", file, line, what);
	if (fuzz_input_name != NULL)
		fprintf(stderr, "replay: the failing input is \"%s\"\n", fuzz_input_name);
	abort();
}

void fuzz_quiet(void)
{
	log_init("walship-fuzz");
	log_set_level(LOG_LEVEL_ERROR);
}

char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

void fuzz_split(const uint8_t *data, size_t size, char **first, char **rest)
{
	const uint8_t *nl = size > 0 ? memchr(data, '\n', size) : NULL;
	size_t n = nl ? (size_t)(nl - data) : size;
	*first = fuzz_cstr(data, n);
	*rest = nl ? fuzz_cstr(nl + 1, size - n - 1) : fuzz_cstr(NULL, 0);
}

static char *scratch;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "fuzz: could not remove \"%s\": %s\n", path, strerror(errno));
	return 0;
}

void fuzz_rm_tree(const char *path)
{
	/* Directories are made 0700 and files 0600 by the code under test: root or the owner removes them. */
	(void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void scratch_remove(void)
{
	if (scratch != NULL)
		fuzz_rm_tree(scratch);
	free(scratch);
	scratch = NULL;
}

const char *fuzz_scratch(void)
{
	if (scratch != NULL)
		return scratch;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	scratch = xasprintf("%s/walship-fuzz-XXXXXX", base);
	if (mkdtemp(scratch) == NULL) {
		fprintf(stderr, "fuzz: could not create \"%s\": %s\n", scratch, strerror(errno));
		exit(2);
	}
	atexit(scratch_remove);
	return scratch;
}

void fuzz_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || fs_write_all(fd, buf, len) != 0 || close(fd) != 0) {
		fprintf(stderr, "fuzz: could not write \"%s\": %s\n", path, strerror(errno));
		exit(2);
	}
}

typedef struct CountSink {
	uint64_t bytes;
} CountSink;

static int count_write(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	(void)buf;
	(void)err;
	((CountSink *)ctx)->bytes += len;
	return 0;
}

static int decode_once(ObjDecoder *dec, const uint8_t *data, size_t size, size_t chunk, ObjInfo *info)
{
	CountSink sink = {0};
	WsError err;
	int rc = 0;

	obj_decoder_reset(dec, FUZZ_OBJECT_MAX, count_write, &sink, "fuzz object");
	for (size_t off = 0; off < size && rc == 0; off += chunk) {
		size_t k = size - off < chunk ? size - off : chunk;
		rc = obj_decoder_write(dec, data + off, k, &err);
	}
	int frc = obj_decoder_finish(dec, info, &err);
	/* A write that failed fails the object, with the same class. */
	FUZZ_CHECK(rc == 0 || frc == rc);
	FUZZ_CHECK(frc == 0 || frc == WS_CORRUPT || frc == WS_FATAL);
	FUZZ_CHECK(frc != 0 || (info->content_size == sink.bytes && info->stored_size == size));
	FUZZ_CHECK(frc != 0 || sink.bytes <= FUZZ_OBJECT_MAX);
	return frc;
}

int fuzz_object_decode(const uint8_t *data, size_t size, const CryptKey *key, const char *name)
{
	ObjDecoder *dec = obj_decoder_new();
	ObjInfo whole, chunked;

	obj_decoder_set_crypt(dec, key, name);
	int rc = decode_once(dec, data, size, size > 0 ? size : 1, &whole);
	int again = decode_once(dec, data, size, 1 + size % 977, &chunked);
	FUZZ_CHECK(rc == again);
	FUZZ_CHECK(rc != 0 || memcmp(&whole, &chunked, sizeof(whole)) == 0);
	obj_decoder_free(dec);
	return rc;
}
