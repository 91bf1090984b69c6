/*
 * test_meta.c - walship.json (round trip, epochs, every refusal) and the
 * repository keys of WAL files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/walname.h"
#include "repo/keys.h"
#include "repo/meta.h"
#include "pg/pgmajor.h"

#define SYSID_A 7301234567890123456ull
#define SYSID_B 7309999999999999999ull

static RepoMeta *parse_ok(const char *json)
{
	RepoMeta *meta = NULL;
	WsError err;
	int rc = repo_meta_parse(json, strlen(json), &meta, &err);
	if (rc != 0)
		fail_msg("parse failed: %s", err.msg);
	assert_non_null(meta);
	return meta;
}

static bool uuid_v4_shape(const char *u)
{
	if (strlen(u) != 36 || u[14] != '4' || strchr("89ab", u[19]) == NULL)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? u[i] != '-' : strchr("0123456789abcdef", u[i]) == NULL)
			return false;
	}
	return true;
}

static void test_new_serialize_parse_roundtrip(void **state)
{
	(void)state;
	RepoMeta *meta = repo_meta_new(SYSID_A, PG_MAJOR(15), 16 * 1024 * 1024);
	assert_int_equal(meta->format, 1);
	assert_true(uuid_v4_shape(meta->uuid));
	assert_int_equal(meta->n_epochs, 1);
	assert_string_equal(meta->epochs[0].id, "15-1");
	assert_int_equal(strlen(meta->epochs[0].created), 20);
	assert_int_equal(meta->epochs[0].created[19], 'Z');

	char *text = repo_meta_serialize(meta);
	assert_non_null(text);
	assert_int_equal(text[strlen(text) - 1], '\n');
	/* The layout of meta.h: strings for the identifier and major, keys in this order. */
	assert_non_null(strstr(text, "\"system_identifier\": \"7301234567890123456\""));
	assert_non_null(strstr(text, "\"pg_major\": \"15\""));
	assert_non_null(strstr(text, "\"wal_segment_size\": 16777216"));
	assert_non_null(strstr(text, "\"encryption\": null"));
	assert_non_null(strstr(text, "\n  \"format\": 1,"));
	assert_true(strstr(text, "\"format\"") < strstr(text, "\"uuid\""));
	assert_true(strstr(text, "\"uuid\"") < strstr(text, "\"encryption\""));
	assert_true(strstr(text, "\"encryption\"") < strstr(text, "\"epochs\""));
	assert_true(strstr(text, "\"id\"") < strstr(text, "\"system_identifier\""));
	assert_true(strstr(text, "\"pg_major\"") < strstr(text, "\"wal_segment_size\""));
	assert_true(strstr(text, "\"wal_segment_size\"") < strstr(text, "\"created\""));

	RepoMeta *back = parse_ok(text);
	assert_int_equal(back->format, 1);
	assert_string_equal(back->uuid, meta->uuid);
	assert_int_equal(back->n_epochs, 1);
	assert_string_equal(back->epochs[0].id, "15-1");
	assert_true(back->epochs[0].sysid == SYSID_A);
	assert_int_equal(back->epochs[0].pg_major, PG_MAJOR(15));
	assert_int_equal(back->epochs[0].seg_size, 16 * 1024 * 1024);
	assert_string_equal(back->epochs[0].created, meta->epochs[0].created);

	char *again = repo_meta_serialize(back);
	assert_string_equal(again, text);

	RepoMeta *other = repo_meta_new(SYSID_A, PG_MAJOR(15), 16 * 1024 * 1024);
	assert_string_not_equal(other->uuid, meta->uuid);

	free(again);
	free(text);
	repo_meta_free(other);
	repo_meta_free(back);
	repo_meta_free(meta);
	repo_meta_free(NULL);
}

static void test_add_epoch_numbers_and_majors(void **state)
{
	(void)state;
	RepoMeta *meta = repo_meta_new(SYSID_A, PG_MAJOR_9_6, 16 * 1024 * 1024);
	assert_string_equal(meta->epochs[0].id, "9.6-1");
	RepoEpoch *e = repo_meta_add_epoch(meta, SYSID_B, PG_MAJOR(16), 64 * 1024 * 1024);
	assert_non_null(e);
	assert_string_equal(e->id, "16-2");
	assert_true(e->sysid == SYSID_B);
	assert_int_equal(e->seg_size, 64 * 1024 * 1024);
	assert_int_equal(meta->n_epochs, 2);
	assert_ptr_equal(repo_meta_newest(meta), &meta->epochs[1]);

	char *text = repo_meta_serialize(meta);
	assert_non_null(strstr(text, "\"pg_major\": \"9.6\""));
	RepoMeta *back = parse_ok(text);
	assert_int_equal(back->epochs[0].pg_major, PG_MAJOR_9_6);
	assert_string_equal(back->epochs[1].id, "16-2");
	/* Numbers continue after the highest, not the count. */
	repo_meta_free(back);
	back = parse_ok("{\"format\": 1, \"uuid\": \"0b7e4b1c-4f5e-4a8e-9d2a-1c2b3c4d5e6f\", \"epochs\": ["
			"{\"id\": \"15-3\", \"system_identifier\": \"42\", \"pg_major\": \"15\","
			" \"wal_segment_size\": 16777216, \"created\": \"2026-11-25T18:00:00Z\"}]}");
	e = repo_meta_add_epoch(back, 43, PG_MAJOR(17), 16 * 1024 * 1024);
	assert_string_equal(e->id, "17-4");
	free(text);
	repo_meta_free(back);
	repo_meta_free(meta);
}

static void test_find_sysid_newest_and_id(void **state)
{
	(void)state;
	RepoMeta *meta = repo_meta_new(SYSID_A, PG_MAJOR(15), 16 * 1024 * 1024);
	repo_meta_add_epoch(meta, SYSID_B, PG_MAJOR(16), 16 * 1024 * 1024);
	/* The same cluster again (e.g. upgrade rolled back): the newest of its epochs wins. */
	repo_meta_add_epoch(meta, SYSID_A, PG_MAJOR(15), 16 * 1024 * 1024);

	const RepoEpoch *e = repo_meta_find_sysid(meta, SYSID_A);
	assert_non_null(e);
	assert_string_equal(e->id, "15-3");
	e = repo_meta_find_sysid(meta, SYSID_B);
	assert_non_null(e);
	assert_string_equal(e->id, "16-2");
	assert_null(repo_meta_find_sysid(meta, 12345));
	assert_string_equal(repo_meta_newest(meta)->id, "15-3");
	assert_ptr_equal(repo_meta_find_id(meta, "16-2"), &meta->epochs[1]);
	assert_null(repo_meta_find_id(meta, "16-9"));
	assert_null(repo_meta_find_id(meta, ""));
	repo_meta_free(meta);
}

/* A valid walship.json with one "%s" slot that replaces the given line. */
static const char *const valid_lines[] = {
	"{",
	"  \"format\": 1,",
	"  \"uuid\": \"0b7e4b1c-4f5e-4a8e-9d2a-1c2b3c4d5e6f\",",
	"  \"encryption\": null,",
	"  \"epochs\": [",
	"    {",
	"      \"id\": \"15-1\",",
	"      \"system_identifier\": \"7301234567890123456\",",
	"      \"pg_major\": \"15\",",
	"      \"wal_segment_size\": 16777216,",
	"      \"created\": \"2026-11-25T18:00:00Z\"",
	"    }",
	"  ]",
	"}",
};

#define N_LINES (sizeof(valid_lines) / sizeof(valid_lines[0]))

/* valid_lines with the line starting with prefix replaced (or dropped when repl is NULL). */
static char *variant(const char *prefix, const char *repl)
{
	size_t cap = 4096, used = 0;
	char *out = calloc(1, cap);
	bool found = false;
	assert_non_null(out);
	for (size_t i = 0; i < N_LINES; i++) {
		const char *line = valid_lines[i];
		if (prefix != NULL && strncmp(line, prefix, strlen(prefix)) == 0) {
			found = true;
			line = repl;
		}
		if (line != NULL)
			used += (size_t)snprintf(out + used, cap - used, "%s\n", line);
	}
	if (prefix != NULL && !found)
		fail_msg("no line starts with %s", prefix);
	return out;
}

static void expect_refused(const char *json, int cls, const char *needle)
{
	RepoMeta *meta = (RepoMeta *)0x1;
	WsError err;
	ws_error_clear(&err);
	int rc = repo_meta_parse(json, strlen(json), &meta, &err);
	if (rc != cls)
		fail_msg("expected class %d, got %d (%s) for:\n%s", cls, rc, err.msg, json);
	assert_null(meta);
	assert_int_equal(err.cls, cls);
	if (strstr(err.msg, needle) == NULL)
		fail_msg("message \"%s\" does not contain \"%s\"", err.msg, needle);
	if (cls == WS_CORRUPT)
		assert_non_null(strstr(err.msg, "walship.json of the repository is invalid: "));
}

static void test_valid_template_parses(void **state)
{
	(void)state;
	char *json = variant(NULL, NULL);
	RepoMeta *meta = parse_ok(json);
	assert_string_equal(meta->uuid, "0b7e4b1c-4f5e-4a8e-9d2a-1c2b3c4d5e6f");
	assert_true(meta->epochs[0].sysid == SYSID_A);
	repo_meta_free(meta);
	free(json);
	/* "encryption" may be absent. */
	json = variant("  \"encryption\"", NULL);
	meta = parse_ok(json);
	repo_meta_free(meta);
	free(json);
}

static void test_invalid_documents_refused_with_reason(void **state)
{
	(void)state;
	static const struct {
		const char *prefix;
		const char *repl;
		const char *needle;
	} cases[] = {
		{"  \"format\"", NULL, "\"format\" is missing"},
		{"  \"format\"", "  \"format\": \"1\",", "\"format\" is not a positive integer"},
		{"  \"format\"", "  \"format\": 0,", "\"format\" is not a positive integer"},
		{"  \"uuid\"", NULL, "\"uuid\" is missing"},
		{"  \"uuid\"", "  \"uuid\": 5,", "\"uuid\" is not a string"},
		{"  \"uuid\"", "  \"uuid\": \"0b7e4b1c4f5e4a8e9d2a1c2b3c4d5e6f\",",
		 "\"uuid\" is not a lowercase UUID"},
		{"  \"uuid\"", "  \"uuid\": \"0b7e4b1c-4f5e-4a8e-9d2a-1c2b3c4d5e6g\",", "\"uuid\" is not"},
		{"  \"epochs\"", "  \"epochs\": {", "at line"},
		{"      \"id\"", NULL, "epoch 1: \"id\" is missing"},
		{"      \"id\"", "      \"id\": \"15\",", "epoch 1: \"id\" is not of the form"},
		{"      \"id\"", "      \"id\": \"15-a\",", "\"id\" is not of the form"},
		{"      \"id\"", "      \"id\": \"-1\",", "\"id\" is not of the form"},
		{"      \"id\"", "      \"id\": \"../x-1\",", "\"id\" is not of the form"},
		{"      \"id\"", "      \"id\": 15,", "\"id\" is not a string"},
		{"      \"system_identifier\"", NULL, "\"system_identifier\" is missing"},
		{"      \"system_identifier\"", "      \"system_identifier\": 7301234567890123456,",
		 "\"system_identifier\" is not a string"},
		{"      \"system_identifier\"", "      \"system_identifier\": \"18446744073709551616\",",
		 "\"system_identifier\" is not a positive 64-bit decimal number"},
		{"      \"system_identifier\"", "      \"system_identifier\": \"-5\",",
		 "\"system_identifier\""},
		{"      \"system_identifier\"", "      \"system_identifier\": \" 5\",",
		 "\"system_identifier\""},
		{"      \"system_identifier\"", "      \"system_identifier\": \"0x10\",",
		 "\"system_identifier\""},
		{"      \"system_identifier\"", "      \"system_identifier\": \"\",",
		 "\"system_identifier\""},
		{"      \"pg_major\"", NULL, "\"pg_major\" is missing"},
		{"      \"pg_major\"", "      \"pg_major\": 15,", "\"pg_major\" is not a string"},
		{"      \"pg_major\"", "      \"pg_major\": \"9.5\",",
		 "\"pg_major\" is not a PostgreSQL major version"},
		{"      \"pg_major\"", "      \"pg_major\": \"150\",",
		 "\"pg_major\" is not a PostgreSQL major version"},
		{"      \"pg_major\"", "      \"pg_major\": \"05\",",
		 "\"pg_major\" is not a PostgreSQL major version"},
		{"      \"wal_segment_size\"", NULL, "\"wal_segment_size\" is missing"},
		{"      \"wal_segment_size\"", "      \"wal_segment_size\": 16777215,",
		 "\"wal_segment_size\" is not a power of two from 1 MiB to 1 GiB"},
		{"      \"wal_segment_size\"", "      \"wal_segment_size\": 524288,", "\"wal_segment_size\""},
		{"      \"wal_segment_size\"", "      \"wal_segment_size\": 2147483648,",
		 "\"wal_segment_size\""},
		{"      \"wal_segment_size\"", "      \"wal_segment_size\": \"16777216\",",
		 "\"wal_segment_size\""},
		{"      \"created\"", "      \"created\": \"yesterday\"", "\"created\" is not a UTC time"},
		{"      \"created\"", "      \"created\": \"2026-11-25 18:00:00\"",
		 "\"created\" is not a UTC time"},
		{"      \"created\"", "      \"created\": null", "\"created\" is not a string"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *json = variant(cases[i].prefix, cases[i].repl);
		expect_refused(json, WS_CORRUPT, cases[i].needle);
		free(json);
	}
}

/* walship upgrade rewrites what it read: every accepted major must be written back the same. */
static void test_pg_major_round_trips_exactly(void **state)
{
	(void)state;
	static const char *const kept[] = {"9.6", "10", "11", "15", "17", "18", "42", "89"};
	static const char *const refused[] = {"95", "96", "90", "99", "9.5", "9.0", "09", "1", "100", "9.60"};
	char line[64], want[64];
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		snprintf(line, sizeof(line), "      \"pg_major\": \"%s\",", kept[i]);
		char *json = variant("      \"pg_major\"", line);
		RepoMeta *meta = parse_ok(json);
		char *text = repo_meta_serialize(meta);
		snprintf(want, sizeof(want), "\"pg_major\": \"%s\"", kept[i]);
		if (strstr(text, want) == NULL)
			fail_msg("\"%s\" was written back as:\n%s", kept[i], text);
		RepoMeta *back = parse_ok(text);
		assert_int_equal(back->epochs[0].pg_major, meta->epochs[0].pg_major);
		repo_meta_free(back);
		repo_meta_free(meta);
		free(text);
		free(json);
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		snprintf(line, sizeof(line), "      \"pg_major\": \"%s\",", refused[i]);
		char *json = variant("      \"pg_major\"", line);
		expect_refused(json, WS_CORRUPT, "\"pg_major\" is not a PostgreSQL major version");
		free(json);
	}
}

static void test_invalid_shapes_refused(void **state)
{
	(void)state;
	expect_refused("", WS_CORRUPT, "walship.json of the repository is invalid");
	expect_refused("[1, 2]", WS_CORRUPT, "not a JSON object");
	expect_refused("{\"format\": 1, \"uuid\": \"0b7e4b1c-4f5e-4a8e-9d2a-1c2b3c4d5e6f\"", WS_CORRUPT,
		       "at line");
	expect_refused("{\"format\": 1, \"uuid\": \"0b7e4b1c-4f5e-4a8e-9d2a-1c2b3c4d5e6f\", \"epochs\": []}",
		       WS_CORRUPT, "\"epochs\" is empty");
	expect_refused("{\"format\": 1, \"uuid\": \"0b7e4b1c-4f5e-4a8e-9d2a-1c2b3c4d5e6f\"}", WS_CORRUPT,
		       "\"epochs\" is missing");
	expect_refused("{\"format\": 1, \"uuid\": \"0b7e4b1c-4f5e-4a8e-9d2a-1c2b3c4d5e6f\", \"epochs\": [5]}",
		       WS_CORRUPT, "epoch 1 is not an object");
	expect_refused("{\"format\": 1, \"format\": 1}", WS_CORRUPT, "duplicate");

	/* The same epoch id twice. */
	const char *two = "{\"format\": 1, \"uuid\": \"0b7e4b1c-4f5e-4a8e-9d2a-1c2b3c4d5e6f\", \"epochs\": ["
			  "{\"id\": \"15-1\", \"system_identifier\": \"42\", \"pg_major\": \"15\","
			  " \"wal_segment_size\": 16777216, \"created\": \"2026-11-25T18:00:00Z\"},"
			  "{\"id\": \"15-1\", \"system_identifier\": \"43\", \"pg_major\": \"15\","
			  " \"wal_segment_size\": 16777216, \"created\": \"2026-11-25T18:00:00Z\"}]}";
	expect_refused(two, WS_CORRUPT, "epoch id \"15-1\" appears twice");

	/* Oversized input is refused before parsing. */
	size_t big = REPO_META_MAX + 1;
	char *huge = malloc(big + 1);
	assert_non_null(huge);
	memset(huge, ' ', big);
	huge[big] = '\0';
	RepoMeta *meta = NULL;
	WsError err;
	assert_int_equal(repo_meta_parse(huge, big, &meta, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "more than"));
	free(huge);

	/* Not NUL-terminated: only len bytes are read. */
	char *json = variant(NULL, NULL);
	size_t len = strlen(json);
	char *copy = malloc(len + 10);
	assert_non_null(copy);
	memcpy(copy, json, len);
	memcpy(copy + len, "garbage!!", 9);
	assert_int_equal(repo_meta_parse(copy, len, &meta, &err), 0);
	repo_meta_free(meta);
	free(copy);
	free(json);
}

static void test_newer_format_and_unknown_encryption_refused_as_fatal(void **state)
{
	(void)state;
	RepoMeta *meta = NULL;
	WsError err;
	/* A newer format is judged before anything else it may have changed. */
	const char *newer = "{\"format\": 2, \"keys\": {\"something\": \"new\"}}";
	assert_int_equal(repo_meta_parse(newer, strlen(newer), &meta, &err), WS_FATAL);
	assert_null(meta);
	assert_non_null(strstr(err.msg, "format 2"));
	assert_non_null(strstr(err.hint, "Upgrade walship"));

	/* A cipher or key derivation of a later walship: upgrade, not "corrupt". */
	char *json = variant("  \"encryption\"", "  \"encryption\": {\"cipher\": \"chacha20-poly1305\"},");
	expect_refused(json, WS_FATAL, "cipher \"chacha20-poly1305\", unknown to this walship");
	free(json);
	json = variant("  \"encryption\"",
		       "  \"encryption\": {\"cipher\": \"aes-256-gcm\", \"kdf\": \"argon2id\"},");
	expect_refused(json, WS_FATAL, "derived with \"argon2id\", unknown to this walship");
	free(json);
}

#define HEX64  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define HEX120 HEX64 "00112233445566778899aabbccddeeff00112233445566778899aabbccdd"

static void test_encryption_roundtrip(void **state)
{
	(void)state;
	/* Both kinds of key, through serialize and parse, every field kept. */
	for (int kind = 0; kind < 2; kind++) {
		RepoMeta *meta = repo_meta_new(SYSID_A, PG_MAJOR(15), 16 * 1024 * 1024);
		CryptParams *p = calloc(1, sizeof(*p));
		assert_non_null(p);
		p->kdf = kind == 0 ? CRYPT_KDF_KEY_FILE : CRYPT_KDF_SCRYPT;
		if (kind == 1) {
			p->scrypt_n = 65536;
			p->scrypt_r = 8;
			p->scrypt_p = 2;
		}
		for (size_t i = 0; i < sizeof(p->salt); i++)
			p->salt[i] = (unsigned char)(i * 7 + 1);
		for (size_t i = 0; i < sizeof(p->wrapped_key); i++)
			p->wrapped_key[i] = (unsigned char)(255 - i);
		meta->encryption = p;
		char *text = repo_meta_serialize(meta);
		assert_non_null(strstr(text, "\"cipher\": \"aes-256-gcm\""));
		assert_non_null(strstr(text, kind == 0 ? "\"kdf\": \"key-file\"" : "\"kdf\": \"scrypt\""));
		assert_true((strstr(text, "\"n\": 65536") != NULL) == (kind == 1));
		/* "encryption" keeps its place between uuid and epochs. */
		assert_true(strstr(text, "\"uuid\"") < strstr(text, "\"encryption\""));
		assert_true(strstr(text, "\"encryption\"") < strstr(text, "\"epochs\""));

		RepoMeta *back = parse_ok(text);
		assert_non_null(back->encryption);
		assert_int_equal(back->encryption->kdf, p->kdf);
		assert_int_equal(back->encryption->scrypt_n, p->scrypt_n);
		assert_int_equal(back->encryption->scrypt_r, p->scrypt_r);
		assert_int_equal(back->encryption->scrypt_p, p->scrypt_p);
		assert_memory_equal(back->encryption->salt, p->salt, sizeof(p->salt));
		assert_memory_equal(back->encryption->wrapped_key, p->wrapped_key, sizeof(p->wrapped_key));
		char *again = repo_meta_serialize(back);
		assert_string_equal(again, text);
		free(again);
		repo_meta_free(back);
		free(text);
		repo_meta_free(meta);
	}
	/* Old files: null and absent both mean "not encrypted". */
	char *json = variant(NULL, NULL);
	RepoMeta *meta = parse_ok(json);
	assert_null(meta->encryption);
	repo_meta_free(meta);
	free(json);
	json = variant("  \"encryption\"", NULL);
	meta = parse_ok(json);
	assert_null(meta->encryption);
	char *text = repo_meta_serialize(meta);
	assert_non_null(strstr(text, "\"encryption\": null"));
	free(text);
	repo_meta_free(meta);
	free(json);
}

static void test_invalid_encryption_refused(void **state)
{
	(void)state;
	static const struct {
		const char *member;
		const char *needle;
	} cases[] = {
		{"\"encryption\": 1,", "\"encryption\" is neither null nor an object"},
		{"\"encryption\": {},", "\"cipher\""},
		{"\"encryption\": {\"cipher\": \"aes-256-gcm\"},", "\"kdf\""},
		{"\"encryption\": {\"cipher\": \"aes-256-gcm\", \"kdf\": \"key-file\", \"wrapped_key\": "
		 "\"" HEX120 "\"},",
		 "\"salt\""},
		{"\"encryption\": {\"cipher\": \"aes-256-gcm\", \"kdf\": \"key-file\", \"salt\": \"0011\", "
		 "\"wrapped_key\": \"" HEX120 "\"},",
		 "\"salt\" is not 64 lowercase hex digits"},
		{"\"encryption\": {\"cipher\": \"aes-256-gcm\", \"kdf\": \"key-file\", \"salt\": \"" HEX64
		 "\"},",
		 "\"wrapped_key\""},
		{"\"encryption\": {\"cipher\": \"aes-256-gcm\", \"kdf\": \"key-file\", \"salt\": \"" HEX64
		 "\", \"wrapped_key\": \"" HEX64 "\"},",
		 "\"wrapped_key\" is not 120 lowercase hex digits"},
		{"\"encryption\": {\"cipher\": \"aes-256-gcm\", \"kdf\": \"key-file\", \"salt\": \"" HEX64
		 "\", \"wrapped_key\": \"" HEX120 "X\"},",
		 "\"wrapped_key\" is not 120 lowercase hex digits"},
		/* scrypt parameters a wrong file could use to weaken the key or exhaust memory. */
		{"\"encryption\": {\"cipher\": \"aes-256-gcm\", \"kdf\": \"scrypt\", \"salt\": \"" HEX64
		 "\", \"wrapped_key\": \"" HEX120 "\"},",
		 "\"n\" is missing"},
		{"\"encryption\": {\"cipher\": \"aes-256-gcm\", \"kdf\": \"scrypt\", \"n\": 1024, \"r\": 8, "
		 "\"p\": 1, \"salt\": \"" HEX64 "\", \"wrapped_key\": \"" HEX120 "\"},",
		 "\"n\" is not an integer from 16384"},
		{"\"encryption\": {\"cipher\": \"aes-256-gcm\", \"kdf\": \"scrypt\", \"n\": 50000, \"r\": 8, "
		 "\"p\": 1, \"salt\": \"" HEX64 "\", \"wrapped_key\": \"" HEX120 "\"},",
		 "\"n\" is not a power of two"},
		{"\"encryption\": {\"cipher\": \"aes-256-gcm\", \"kdf\": \"scrypt\", \"n\": 1048576, \"r\": "
		 "32, \"p\": 1, \"salt\": \"" HEX64 "\", \"wrapped_key\": \"" HEX120 "\"},",
		 "more than 1 GiB"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[1024];
		snprintf(line, sizeof(line), "  %s", cases[i].member);
		char *json = variant("  \"encryption\"", line);
		expect_refused(json, WS_CORRUPT, cases[i].needle);
		free(json);
	}
}

/* ---- keys ---- */

static RepoEpoch epoch_15_1(void)
{
	RepoEpoch e;
	memset(&e, 0, sizeof(e));
	strcpy(e.id, "15-1");
	e.sysid = SYSID_A;
	e.pg_major = PG_MAJOR(15);
	e.seg_size = 16 * 1024 * 1024;
	return e;
}

static void expect_key(const char *name, const char *key)
{
	RepoEpoch e = epoch_15_1();
	WalName wn;
	WsError err;
	char buf[1024];
	assert_int_equal(walname_parse(name, &wn, &err), 0);
	assert_int_equal(repo_key_wal(&e, &wn, buf, sizeof(buf)), 0);
	assert_string_equal(buf, key);
}

static void test_keys_for_each_kind(void **state)
{
	(void)state;
	expect_key("00000001000000030000001A", "15-1/wal/0000000100000003/00000001000000030000001A");
	expect_key("00000002.history", "15-1/wal/00000002.history");
	expect_key("000000010000000300000019.00000028.backup",
		   "15-1/wal/0000000100000003/000000010000000300000019.00000028.backup");
	expect_key("0000000A00000000000000FF.partial",
		   "15-1/wal/0000000A00000000/0000000A00000000000000FF.partial");

	/* Filled by hand: the directory comes from the timeline and log fields. */
	RepoEpoch e = epoch_15_1();
	strcpy(e.id, "9.6-2");
	WalName wn;
	memset(&wn, 0, sizeof(wn));
	wn.kind = WAL_SEGMENT;
	wn.tli = 0xAB;
	wn.log = 0xFFFFFFFF;
	wn.seg = 0xFF;
	strcpy(wn.name, "000000ABFFFFFFFF000000FF");
	char buf[128];
	assert_int_equal(repo_key_wal(&e, &wn, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "9.6-2/wal/000000ABFFFFFFFF/000000ABFFFFFFFF000000FF");
}

static void test_variant_key_appends_sha256_prefix(void **state)
{
	(void)state;
	RepoEpoch e = epoch_15_1();
	WalName wn;
	WsError err;
	unsigned char sha[32];
	char buf[1024];
	for (int i = 0; i < 32; i++)
		sha[i] = (unsigned char)(0xA0 + i);
	assert_int_equal(walname_parse("000000010000000300000019.partial", &wn, &err), 0);
	assert_int_equal(repo_key_wal_variant(&e, &wn, sha, buf, sizeof(buf)), 0);
	assert_string_equal(buf,
			    "15-1/wal/0000000100000003/000000010000000300000019.partial@a0a1a2a3a4a5a6a7");
	assert_int_equal(walname_parse("000000010000000300000019.00000028.backup", &wn, &err), 0);
	assert_int_equal(repo_key_wal_variant(&e, &wn, sha, buf, sizeof(buf)), 0);
	assert_string_equal(
		buf, "15-1/wal/0000000100000003/000000010000000300000019.00000028.backup@a0a1a2a3a4a5a6a7");
}

static void test_keys_report_small_buffer(void **state)
{
	(void)state;
	RepoEpoch e = epoch_15_1();
	WalName wn;
	WsError err;
	unsigned char sha[32] = {0};
	const char *key = "15-1/wal/0000000100000003/00000001000000030000001A";
	char buf[128];
	assert_int_equal(walname_parse("00000001000000030000001A", &wn, &err), 0);
	assert_int_equal(repo_key_wal(&e, &wn, buf, strlen(key)), -1);
	assert_int_equal(repo_key_wal(&e, &wn, buf, strlen(key) + 1), 0);
	assert_int_equal(repo_key_wal_variant(&e, &wn, sha, buf, strlen(key) + 17), -1);
	assert_int_equal(repo_key_wal_variant(&e, &wn, sha, buf, strlen(key) + 18), 0);
	assert_string_equal(buf, "15-1/wal/0000000100000003/00000001000000030000001A@0000000000000000");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_serialize_parse_roundtrip),
		cmocka_unit_test(test_add_epoch_numbers_and_majors),
		cmocka_unit_test(test_find_sysid_newest_and_id),
		cmocka_unit_test(test_pg_major_round_trips_exactly),
		cmocka_unit_test(test_valid_template_parses),
		cmocka_unit_test(test_invalid_documents_refused_with_reason),
		cmocka_unit_test(test_invalid_shapes_refused),
		cmocka_unit_test(test_newer_format_and_unknown_encryption_refused_as_fatal),
		cmocka_unit_test(test_encryption_roundtrip),
		cmocka_unit_test(test_invalid_encryption_refused),
		cmocka_unit_test(test_keys_for_each_kind),
		cmocka_unit_test(test_variant_key_appends_sha256_prefix),
		cmocka_unit_test(test_keys_report_small_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
