/*
 * fuzz_prefetch.c - what walship-fetch's prefetcher keeps in its spool
 * (cmd/prefetch.c): the names of spooled segments, the index that lets a
 * fetch serve them without the repository, and the request file.  A spooled
 * segment is served only when its name matches the request exactly.
 *
 * Input: a name, an index's text or a request's text; each parser gets it.
 * What parses must format back to exactly the input.
 */
#include <stdlib.h>
#include <string.h>

#include "wal/prefetch_plan.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	char buf[512];
	SpoolEntry e;
	PrefetchIndex ix;
	WalName wn;
	char epoch[32];

	if (prefetch_spool_parse(s, &e) == 0) {
		FUZZ_CHECK(prefetch_spool_name(e.segname, e.epoch, e.size, e.sha256, buf, sizeof(buf)) == 0);
		FUZZ_CHECK(strcmp(buf, s) == 0);
	}
	if (prefetch_index_parse((const char *)data, size, &ix) == 0) {
		FUZZ_CHECK(prefetch_index_format(&ix, buf, sizeof(buf)) == 0);
		FUZZ_CHECK(strlen(buf) == size && memcmp(buf, data, size) == 0);
	}
	if (prefetch_request_parse((const char *)data, size, &wn, epoch) == 0) {
		FUZZ_CHECK(wn.kind == WAL_SEGMENT && prefetch_epoch_id_ok(epoch));
		FUZZ_CHECK(strlen(wn.name) + 1 + strlen(epoch) + 1 == size);
	}
	free(s);
	return 0;
}
