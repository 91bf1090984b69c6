/*
 * fuzz_meta.c - walship.json (repo/meta.c), the repository's identity, read
 * by every command and hook before anything else.
 *
 * Input: the text of a walship.json.  What parses must write back
 * (repo_meta_serialize) as text that parses to the same values and writes
 * back to the same text: walship upgrade rewrites the file it read, and a
 * value it could not reproduce would break the repository.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "repo/meta.h"

static bool same_meta(const RepoMeta *a, const RepoMeta *b)
{
	if (a->format != b->format || strcmp(a->uuid, b->uuid) != 0 || a->n_epochs != b->n_epochs ||
	    (a->encryption == NULL) != (b->encryption == NULL))
		return false;
	if (a->encryption != NULL) {
		const CryptParams *x = a->encryption, *y = b->encryption;
		if (x->kdf != y->kdf || memcmp(x->salt, y->salt, sizeof(x->salt)) != 0 ||
		    memcmp(x->wrapped_key, y->wrapped_key, sizeof(x->wrapped_key)) != 0)
			return false;
		if (x->kdf == CRYPT_KDF_SCRYPT &&
		    (x->scrypt_n != y->scrypt_n || x->scrypt_r != y->scrypt_r || x->scrypt_p != y->scrypt_p))
			return false;
	}
	for (int i = 0; i < a->n_epochs; i++) {
		const RepoEpoch *x = &a->epochs[i], *y = &b->epochs[i];
		if (strcmp(x->id, y->id) != 0 || x->sysid != y->sysid || x->pg_major != y->pg_major ||
		    x->seg_size != y->seg_size || strcmp(x->created, y->created) != 0)
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	RepoMeta *meta = NULL, *again = NULL;
	WsError err;

	if (repo_meta_parse((const char *)data, size, &meta, &err) != 0)
		return 0;
	FUZZ_CHECK(meta->n_epochs >= 1 && repo_meta_newest(meta) != NULL);
	FUZZ_CHECK(repo_meta_find_id(meta, meta->epochs[0].id) == &meta->epochs[0]);
	char *text = repo_meta_serialize(meta);
	FUZZ_CHECK(repo_meta_parse(text, strlen(text), &again, &err) == 0);
	FUZZ_CHECK(same_meta(meta, again));
	char *text2 = repo_meta_serialize(again);
	FUZZ_CHECK(strcmp(text, text2) == 0);
	free(text2);
	free(text);
	repo_meta_free(again);
	repo_meta_free(meta);
	return 0;
}
