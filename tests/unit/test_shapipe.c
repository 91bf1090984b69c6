/* test_shapipe.c - the threaded SHA-256 gives exactly OpenSSL's one-shot digest. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "util/shapipe.h"

static void one_shot(const unsigned char *data, size_t n, unsigned char out[32])
{
	unsigned int len = 0;
	assert_int_equal(EVP_Digest(data, n, out, &len, EVP_sha256(), NULL), 1);
}

/* Feed data through the pipe in pieces of at most piece bytes. */
static void piped(ShaPipe *p, size_t chunk, const unsigned char *data, size_t n, size_t piece,
		  unsigned char out[32])
{
	sha_pipe_reset(p);
	for (size_t off = 0; off < n;) {
		size_t k = n - off < piece ? n - off : piece;
		if (k > chunk)
			k = chunk;
		unsigned char *buf = sha_pipe_acquire(p);
		memcpy(buf, data + off, k);
		sha_pipe_submit(p, k);
		/* The caller may go on reading the buffer while it is hashed. */
		assert_memory_equal(buf, data + off, k);
		off += k;
	}
	sha_pipe_final(p, out);
}

static void test_digest_matches_one_shot_for_any_chunking(void **state)
{
	(void)state;
	const size_t chunk = 4096;
	size_t n = 3 * 1024 * 1024 + 17;
	unsigned char *data = malloc(n);
	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	unsigned char want[32], got[32];
	ShaPipe *p = sha_pipe_new(chunk, 3);
	const size_t sizes[] = {0, 1, 63, 64, 65, 1000, 4095, 4096};
	const size_t pieces[] = {1, 7, 4096, 100000};
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
			one_shot(data, sizes[s], want);
			piped(p, chunk, data, sizes[s], pieces[k], got);
			assert_memory_equal(got, want, 32);
		}
	}
	/* A large input reuses every buffer many times over. */
	one_shot(data, n, want);
	piped(p, chunk, data, n, chunk, got);
	assert_memory_equal(got, want, 32);
	piped(p, chunk, data, n, 3000, got);
	assert_memory_equal(got, want, 32);
	sha_pipe_free(p);
	free(data);
}

static void test_digest_of_nothing_and_free_without_use(void **state)
{
	(void)state;
	unsigned char want[32], got[32];
	one_shot((const unsigned char *)"", 0, want);
	ShaPipe *p = sha_pipe_new(16, 2);
	sha_pipe_reset(p);
	sha_pipe_final(p, got);
	assert_memory_equal(got, want, 32);
	sha_pipe_free(p);
	sha_pipe_free(sha_pipe_new(16, 2));
	sha_pipe_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_matches_one_shot_for_any_chunking),
		cmocka_unit_test(test_digest_of_nothing_and_free_without_use),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
