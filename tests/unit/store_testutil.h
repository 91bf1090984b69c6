/*
 * store_testutil.h - what the store tests share: a reader over memory that
 * hands out short chunks and can fail, a sink collecting into memory that can
 * refuse, and reproducible pseudo-random content.  static inline, so a test
 * file that uses only part of it compiles without warnings.
 */
#ifndef WALSHIP_TESTS_STORE_TESTUTIL_H
#define WALSHIP_TESTS_STORE_TESTUTIL_H

#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "store/store.h"
#include "util/mem.h"

/* A reader over memory, handing out at most chunk bytes per call and failing once fail_at bytes are out. */
typedef struct TestReader {
	const unsigned char *data;
	size_t len;
	size_t pos;
	size_t chunk;
	size_t fail_at;
	void (*during)(void *arg); /* called once, on the first call (to look at the store mid-put) */
	void *during_arg;
} TestReader;

typedef struct MemSink {
	unsigned char *buf;
	size_t len;
	size_t cap;
	int calls;
	int fail_on_call; /* 0: never */
} MemSink;

static inline int mem_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err)
{
	TestReader *r = ctx;
	if (r->during != NULL) {
		r->during(r->during_arg);
		r->during = NULL;
	}
	if (r->pos >= r->fail_at)
		return ws_error(err, WS_TRANSIENT, "test reader failed at byte %zu", r->pos);
	size_t n = r->len - r->pos;
	if (n > cap)
		n = cap;
	if (r->chunk && n > r->chunk)
		n = r->chunk;
	if (r->fail_at - r->pos < n)
		n = r->fail_at - r->pos;
	memcpy(buf, r->data + r->pos, n);
	r->pos += n;
	*got = n;
	return 0;
}

static inline int mem_write(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	MemSink *w = ctx;
	w->calls++;
	if (w->fail_on_call && w->calls == w->fail_on_call)
		return ws_error(err, WS_FATAL, "test sink refused call %d", w->calls);
	if (w->len + len > w->cap) {
		w->cap = (w->len + len) * 2 + 16;
		w->buf = xrealloc(w->buf, w->cap);
	}
	memcpy(w->buf + w->len, buf, len);
	w->len += len;
	return 0;
}

static inline TestReader reader_of(const void *data, size_t len)
{
	TestReader r = {.data = data, .len = len, .fail_at = SIZE_MAX};
	return r;
}

/* len bytes of xorshift output from seed (malloc'd; at least one byte allocated). */
static inline unsigned char *pattern(size_t len, unsigned seed)
{
	unsigned char *p = xmalloc(len ? len : 1);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
	return p;
}

/* Put len bytes in many short reads (7777 bytes, unaligned with any driver's buffer). */
static inline int put_bytes(Store *s, const char *key, const void *data, size_t len, bool no_overwrite,
			    WsError *err)
{
	TestReader r = reader_of(data, len);
	r.chunk = 7777;
	return store_put(s, key, mem_read, &r, no_overwrite, err);
}

/*
 * Wait for the n racer processes of a no-overwrite race (each exits 0 when
 * its put won, 1 on WS_EXISTS, anything else on failure); assert that all
 * ended so and exactly one won, and return its index.  Uses cmocka's
 * asserts: include this header after <cmocka.h>.
 */
static inline int racers_one_winner(const pid_t *pid, int n)
{
	int winners = 0, winner = 0;
	for (int i = 0; i < n; i++) {
		int status = 0;
		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status));
		int outcome = WEXITSTATUS(status);
		assert_true(outcome == 0 || outcome == 1);
		if (outcome == 0) {
			winners++;
			winner = i;
		}
	}
	assert_int_equal(winners, 1);
	return winner;
}

#endif
