/*
 * fuzz_history.c - timeline history files (pg/history.c), read from the
 * repository by walship-fetch's prefetcher, rebuild and prune.
 *
 * Input: the text of a history file.  It is parsed as the history of three
 * timelines (2, 7 and the largest); a path that parses must be well formed
 * (oldest first, switch points in order, ending with the timeline itself),
 * and walking a few segments along it must call back once per segment with a
 * timeline of the path.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "pg/history.h"

typedef struct Walk {
	const TimelinePath *p;
	uint64_t next;
	int calls;
} Walk;

static int on_segment(void *ctx, uint32_t tli, uint64_t segno)
{
	Walk *w = ctx;
	FUZZ_CHECK(segno == w->next && history_contains(w->p, tli));
	w->next++;
	w->calls++;
	return 0;
}

static void check_path(const TimelinePath *p, uint32_t tli)
{
	const uint32_t seg = 1u << 20;
	FUZZ_CHECK(p->n >= 2 && p->e[p->n - 1].tli == tli && p->e[p->n - 1].end == UINT64_MAX);
	FUZZ_CHECK(p->e[0].begin == 0);
	for (int i = 0; i < p->n; i++) {
		FUZZ_CHECK(p->e[i].begin <= p->e[i].end);
		FUZZ_CHECK(history_tli_of_lsn(p, p->e[i].begin) != 0);
		if (i > 0)
			FUZZ_CHECK(p->e[i].tli > p->e[i - 1].tli && p->e[i].begin == p->e[i - 1].end);
	}
	/* The last switch point and the eight segments after it (bounded work whatever the LSNs). */
	uint64_t start = p->e[p->n - 1].begin;
	uint64_t end = start < UINT64_MAX - 9 * (uint64_t)seg ? start + 8 * (uint64_t)seg : start;
	Walk w = {p, start / seg, 0};
	FUZZ_CHECK(history_segments(p, start, end, seg, on_segment, &w) == 0);
	FUZZ_CHECK(w.calls == (int)(end / seg - start / seg + 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t tlis[] = {2, 7, UINT32_MAX};
	for (size_t i = 0; i < sizeof(tlis) / sizeof(tlis[0]); i++) {
		TimelinePath *p = NULL;
		WsError err;
		if (history_parse((const char *)data, size, tlis[i], &p, &err) == 0)
			check_path(p, tlis[i]);
		history_free(p);
	}
	return 0;
}
