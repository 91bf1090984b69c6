/*
 * failmalloc.c - an LD_PRELOAD shim for the tests: allocations of at least
 * WALSHIP_TEST_FAIL_ALLOC bytes fail with ENOMEM, as on a machine out of
 * memory, so that the programs' out-of-memory exits can be checked (exit
 * code, message, temp files removed).  Smaller allocations (the dynamic
 * loader's, stdio's) go through, so the program gets as far as a real
 * shortage would let it: to its large buffers and contexts.
 *
 * Allocations are passed on to the next allocator (glibc's, or
 * AddressSanitizer's in `make asan`: run with ASAN_OPTIONS=
 * verify_asan_link_order=0), found with dlsym(RTLD_NEXT); dlsym's own early
 * calloc is served from a static buffer that free() ignores.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void (*next_free)(void *);
static int (*next_posix_memalign)(void **, size_t, size_t);
static void *(*next_aligned_alloc)(size_t, size_t);

extern char **environ;

static _Alignas(16) unsigned char early[4096];
static size_t early_used;
static int resolving;
static size_t fail_from = SIZE_MAX;
static int limit_read;

static int from_early(const void *p)
{
	return (const unsigned char *)p >= early && (const unsigned char *)p < early + sizeof(early);
}

static void resolve(void)
{
	if (next_malloc != NULL || resolving)
		return;
	resolving = 1;
	next_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	next_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	next_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
	next_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
	resolving = 0;
}

static int refuse(size_t size)
{
	/*
	 * The limit is read once the environment exists: a sanitizer's runtime
	 * allocates before the C library has set it up.
	 */
	if (!limit_read && environ != NULL) {
		const char *s = getenv("WALSHIP_TEST_FAIL_ALLOC");
		if (s != NULL && *s)
			fail_from = (size_t)strtoull(s, NULL, 10);
		limit_read = 1;
	}
	if (size >= fail_from) {
		errno = ENOMEM;
		return 1;
	}
	return 0;
}

/* While dlsym resolves the real allocator, from a static buffer. */
static void *early_alloc(size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (size > sizeof(early) - early_used)
		return NULL;
	void *p = early + early_used;
	early_used += size;
	return p;
}

void *malloc(size_t size)
{
	resolve();
	if (next_malloc == NULL)
		return early_alloc(size);
	return refuse(size) ? NULL : next_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	resolve();
	if (next_calloc == NULL)
		return early_alloc(n * size); /* static: already zero */
	if (size != 0 && n > SIZE_MAX / size)
		return next_calloc(n, size);
	return refuse(n * size) ? NULL : next_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	resolve();
	if (from_early(p)) {
		void *q = malloc(size);
		if (q != NULL)
			memcpy(q, p, size < sizeof(early) ? size : sizeof(early));
		return q;
	}
	return refuse(size) ? NULL : next_realloc(p, size);
}

void free(void *p)
{
	if (p == NULL || from_early(p))
		return;
	resolve();
	next_free(p);
}

int posix_memalign(void **out, size_t align, size_t size)
{
	resolve();
	return refuse(size) ? ENOMEM : next_posix_memalign(out, align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
	resolve();
	return refuse(size) ? NULL : next_aligned_alloc(align, size);
}
