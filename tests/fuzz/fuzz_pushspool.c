/*
 * fuzz_pushspool.c - the records of a parallel walship-push
 * (cmd/pushspool.c): a record read from the spool lets walship-push answer
 * "archived" without storing, so it must mean exactly what was written.
 *
 * Input: the text of a record.  What parses must write back
 * (push_spool_format) every member with the JSON value it was read with (so
 * nothing is accepted that could not be written), as text that parses to the
 * same record and writes back to the same text.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal/pushspool.h"
#include "fuzz.h"

static bool same_record(const PushRecord *a, const PushRecord *b)
{
	return strcmp(a->uuid, b->uuid) == 0 && strcmp(a->repo, b->repo) == 0 &&
	       strcmp(a->epoch, b->epoch) == 0 && a->sysid == b->sysid && strcmp(a->name, b->name) == 0 &&
	       a->size == b->size && memcmp(a->sha256, b->sha256, sizeof(a->sha256)) == 0 &&
	       strcmp(a->key, b->key) == 0 && a->stored_size == b->stored_size && a->stored == b->stored;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PushRecord rec, again;
	WsError err;

	if (push_spool_parse((const char *)data, size, &rec, &err) != 0)
		return 0;
	char *text = push_spool_format(&rec);
	json_t *in = json_loadb((const char *)data, size, 0, NULL), *out = json_loads(text, 0, NULL);
	const char *key;
	json_t *v;
	FUZZ_CHECK(in != NULL && out != NULL);
	json_object_foreach(out, key, v)
	{
		if (!json_equal(v, json_object_get(in, key)))
			fprintf(stderr, "fuzz_pushspool: \"%s\" was not written back as read\n", key);
		FUZZ_CHECK(json_equal(v, json_object_get(in, key)));
	}
	json_decref(in);
	json_decref(out);
	FUZZ_CHECK(push_spool_parse(text, strlen(text), &again, &err) == 0);
	FUZZ_CHECK(same_record(&rec, &again));
	char *text2 = push_spool_format(&again);
	FUZZ_CHECK(strcmp(text, text2) == 0);
	free(text2);
	free(text);
	return 0;
}
