/*
 * fuzz_object_crypt.c - walship's object format in an encrypted repository
 * (repo/object.c with repo/crypt.c): chunk lengths, authentication tags, the
 * HMAC trailer, and what follows a chunk that fails.
 *
 * The key is a real repository's: object_crypt.json (written by make-seeds)
 * holds the key file's bytes, the encrypted repository's walship.json and
 * the keys its seed objects are stored under.  The key file is written into
 * the scratch directory and opened as walship opens it (encryption-key-file,
 * then the wrapped data key of walship.json).
 *
 * Input: a stored object, decoded as the object of each of those names.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "repo/meta.h"
#include "util/config.h"
#include "util/mem.h"

#define MAX_NAMES 4

static CryptKey *key;
static char *names[MAX_NAMES];
static size_t n_names;

static void setup_failed(const char *what, const WsError *err)
{
	fprintf(stderr, "fuzz_object_crypt: %s: %s %s\n", what, err ? err->msg : "", err ? err->detail : "");
	exit(2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	json_error_t jerr;
	WsError err;
	RepoMeta *meta = NULL;
	CryptSecret *secret = NULL;
	(void)argc;
	(void)argv;

	fuzz_quiet();
	json_t *setup = json_load_file(FUZZ_SOURCE_DIR "/object_crypt.json", 0, &jerr);
	if (setup == NULL)
		setup_failed(FUZZ_SOURCE_DIR "/object_crypt.json", NULL);
	const char *bytes = json_string_value(json_object_get(setup, "key"));
	char *repo_json = json_dumps(json_object_get(setup, "repository"), 0);
	json_t *list = json_object_get(setup, "names");
	if (bytes == NULL || repo_json == NULL || !json_is_array(list))
		setup_failed("object_crypt.json lacks key, repository or names", NULL);
	for (size_t i = 0; i < json_array_size(list) && n_names < MAX_NAMES; i++)
		names[n_names++] = xstrdup(json_string_value(json_array_get(list, i)));

	char *path = xasprintf("%s/repo.key", fuzz_scratch());
	fuzz_write_file(path, bytes, strlen(bytes));
	Config *cfg = config_new();
	if (config_set_option(cfg, "encryption-key-file", path, &err) != 0 ||
	    crypt_secret_load(cfg, &secret, &err) != 0)
		setup_failed("the key file", &err);
	if (repo_meta_parse(repo_json, strlen(repo_json), &meta, &err) != 0 || meta->encryption == NULL)
		setup_failed("the repository's walship.json", &err);
	if (crypt_key_unwrap(secret, meta->encryption, meta->uuid, "fuzz", &key, &err) != 0)
		setup_failed("the data key", &err);
	repo_meta_free(meta);
	crypt_secret_free(secret);
	config_free(cfg);
	free(path);
	free(repo_json);
	json_decref(setup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < n_names; i++)
		fuzz_object_decode(data, size, key, names[i]);
	return 0;
}
