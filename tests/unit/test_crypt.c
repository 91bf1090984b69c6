/*
 * test_crypt.c - encryption at rest: the wrapped data key (key file and
 * passphrase, wrong and tampered keys refused) and encrypted objects (chunk
 * boundaries, every flipped byte and every truncation refused, objects bound
 * to their name and repository, no unauthenticated plaintext released).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "repo/crypt.h"
#include "repo/object.h"
#include "util/crc32c.h"

#define UUID_A "0b7e4b1c-4f5e-4a8e-9d2a-1c2b3c4d5e6f"
#define UUID_B "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
#define NAME_1 "15-1/wal/0000000100000000/000000010000000000000001"
#define NAME_2 "15-1/wal/0000000100000000/000000010000000000000002"
#define MIB    (1024u * 1024u)

/* ---- helpers ---- */

typedef struct Fixture {
	char dir[64];
	char keyfile[128];
	CryptKey *key;
} Fixture;

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static Config *config_with_key_file(const char *path)
{
	Config *cfg = config_new();
	WsError err;
	assert_int_equal(config_set_option(cfg, "encryption-key-file", path, &err), 0);
	return cfg;
}

/* A config with encryption-passphrase, read as the hooks do: from the environment. */
static Config *config_with_passphrase(const Fixture *f, const char *pass)
{
	Config *cfg = config_new();
	WsError err;
	char empty[160];
	snprintf(empty, sizeof(empty), "%s/empty.conf", f->dir);
	write_file(empty, "", 0, 0600);
	setenv("WALSHIP_ENCRYPTION_PASSPHRASE", pass, 1);
	int rc = config_load(cfg, empty, NULL, &err);
	unsetenv("WALSHIP_ENCRYPTION_PASSPHRASE");
	if (rc != 0)
		fail_msg("config_load: %s", err.msg);
	return cfg;
}

static CryptSecret *secret_of(const Config *cfg)
{
	CryptSecret *s = NULL;
	WsError err;
	if (crypt_secret_load(cfg, &s, &err) != 0)
		fail_msg("crypt_secret_load: %s", err.msg);
	assert_non_null(s);
	return s;
}

static int setup(void **state)
{
	Fixture *f = calloc(1, sizeof(*f));
	unsigned char key[32];
	CryptParams params;
	WsError err;
	assert_non_null(f);
	strcpy(f->dir, "/tmp/walship-test-crypt-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->keyfile, sizeof(f->keyfile), "%s/repo.key", f->dir);
	assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
	write_file(f->keyfile, key, sizeof(key), 0600);
	Config *cfg = config_with_key_file(f->keyfile);
	CryptSecret *s = secret_of(cfg);
	assert_int_equal(crypt_key_create(s, UUID_A, &params, &f->key, &err), 0);
	crypt_secret_free(s);
	config_free(cfg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	Fixture *f = *state;
	char cmd[128];
	crypt_key_free(f->key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

typedef struct Buf {
	unsigned char *p;
	size_t n, cap;
} Buf;

static int buf_write(void *ctx, const unsigned char *p, size_t n, WsError *err)
{
	(void)err;
	Buf *b = ctx;
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 4096;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (n > 0)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

typedef struct Src {
	const unsigned char *p;
	size_t n, pos;
} Src;

static int src_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err)
{
	(void)err;
	Src *s = ctx;
	size_t k = s->n - s->pos < cap ? s->n - s->pos : cap;
	memcpy(buf, s->p + s->pos, k);
	s->pos += k;
	*got = k;
	return 0;
}

/* Random bytes (incompressible: the zstd frame is about as long as the content). */
static unsigned char *random_bytes(size_t n)
{
	unsigned char *p = malloc(n ? n : 1);
	assert_non_null(p);
	if (n > 0)
		assert_int_equal(RAND_bytes(p, (int)n), 1);
	return p;
}

/* Text-like content that compresses, with recognisable plaintext. */
static unsigned char *text_bytes(size_t n)
{
	unsigned char *p = malloc(n ? n : 1);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((size_t)(unsigned char)"walship plaintext row "[i % 22] +
				       (i / 4096) % 3);
	return p;
}

static Buf encode(const CryptKey *key, const char *name, const unsigned char *data, size_t n, int workers,
		  ObjInfo *info)
{
	Buf out = {0};
	WsError err;
	Src src = {data, n, 0};
	ObjEncoder *enc = obj_encoder_new(3);
	obj_encoder_set_workers(enc, workers);
	obj_encoder_set_crypt(enc, key, name);
	obj_encoder_reset(enc, src_read, &src, n);
	for (;;) {
		unsigned char buf[7000];
		size_t got = 0;
		if (obj_encoder_read(enc, buf, sizeof(buf), &got, &err) != 0)
			fail_msg("encode: %s", err.msg);
		if (got == 0)
			break;
		buf_write(&out, buf, got, NULL);
	}
	if (info != NULL)
		obj_encoder_info(enc, info);
	obj_encoder_free(enc);
	return out;
}

/* Decode obj fed in pieces of piece bytes (0: all at once). */
static int decode(const CryptKey *key, const char *name, const unsigned char *obj, size_t len, size_t piece,
		  Buf *out, ObjInfo *info, WsError *err)
{
	ObjInfo dummy;
	int rc = 0;
	ObjDecoder *dec = obj_decoder_new();
	obj_decoder_set_crypt(dec, key, name);
	obj_decoder_reset(dec, OBJ_SIZE_UNKNOWN, buf_write, out, name);
	for (size_t off = 0; off < len && rc == 0;) {
		size_t k = piece == 0 ? len - off : (piece < len - off ? piece : len - off);
		rc = obj_decoder_write(dec, obj + off, k, err);
		off += k;
	}
	if (rc == 0)
		rc = obj_decoder_finish(dec, info ? info : &dummy, err);
	obj_decoder_free(dec);
	return rc;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The chunk lengths of an encrypted object (bit 31 = final), by walking its layout. */
static int chunk_layout(const Buf *obj, uint32_t *words, int max)
{
	size_t off = OBJ_HEADER_SIZE_ENCRYPTED;
	int n = 0;
	for (;;) {
		assert_true(off + 4 <= obj->n && n < max);
		uint32_t w = get32(obj->p + off);
		words[n++] = w;
		off += 4 + (w & 0x7fffffffu) + CRYPT_TAG_SIZE;
		if (w & 0x80000000u)
			break;
	}
	assert_int_equal(off + OBJ_TRAILER_SIZE, obj->n);
	return n;
}

static void roundtrip(const CryptKey *key, const unsigned char *data, size_t n, int workers, size_t piece)
{
	ObjInfo ienc, idec;
	Buf out = {0};
	WsError err;
	unsigned char sha[32];
	unsigned int len = 0;
	Buf obj = encode(key, NAME_1, data, n, workers, &ienc);
	int rc = decode(key, NAME_1, obj.p, obj.n, piece, &out, &idec, &err);
	if (rc != 0)
		fail_msg("decode of %zu bytes: %s", n, err.msg);
	assert_int_equal(out.n, n);
	if (n > 0)
		assert_memory_equal(out.p, data, n);
	/* Callers still see the content's SHA-256 (the duplicate-push rule compares it). */
	assert_int_equal(EVP_Digest(data, n, sha, &len, EVP_sha256(), NULL), 1);
	assert_memory_equal(ienc.sha256, sha, 32);
	assert_memory_equal(idec.sha256, sha, 32);
	assert_int_equal(ienc.stored_size, obj.n);
	assert_int_equal(idec.stored_size, obj.n);
	/* ... but it is nowhere in the stored object. */
	assert_null(memmem(obj.p, obj.n, sha, 32));
	free(out.p);
	free(obj.p);
}

/* ---- keys ---- */

static void test_wrap_unwrap_with_key_file(void **state)
{
	Fixture *f = *state;
	CryptParams params;
	CryptKey *k1 = NULL, *k2 = NULL;
	WsError err;
	Config *cfg = config_with_key_file(f->keyfile);
	CryptSecret *s = secret_of(cfg);
	assert_int_equal(crypt_secret_kdf(s), CRYPT_KDF_KEY_FILE);
	assert_int_equal(crypt_key_create(s, UUID_A, &params, &k1, &err), 0);
	assert_int_equal(params.kdf, CRYPT_KDF_KEY_FILE);
	assert_int_equal(crypt_key_unwrap(s, &params, UUID_A, "R", &k2, &err), 0);
	/* The unwrapped key decodes what the created one encoded. */
	unsigned char *data = text_bytes(200000);
	Buf obj = encode(k1, NAME_1, data, 200000, 0, NULL);
	Buf out = {0};
	assert_int_equal(decode(k2, NAME_1, obj.p, obj.n, 0, &out, NULL, &err), 0);
	assert_int_equal(out.n, 200000);
	assert_memory_equal(out.p, data, 200000);

/* A text key loses its final newline (openssl rand -base64 32 > F, an editor)... */
#define B64_KEY "q0wG3Pz8m1kq9YpVh0n2ZL7r0b3uXo5s8dT6fJ2cQ1E="
	const char *b64 = B64_KEY;
	char path[200], path_nl[200];
	snprintf(path, sizeof(path), "%s/b64.key", f->dir);
	snprintf(path_nl, sizeof(path_nl), "%s/b64nl.key", f->dir);
	write_file(path, b64, strlen(b64), 0600);
	write_file(path_nl, B64_KEY "\n", strlen(b64) + 1, 0640);
	Config *tcfg = config_with_key_file(path), *tcfg_nl = config_with_key_file(path_nl);
	CryptSecret *ts = secret_of(tcfg), *ts_nl = secret_of(tcfg_nl);
	CryptParams tparams;
	CryptKey *k3 = NULL, *k4 = NULL;
	assert_int_equal(crypt_key_create(ts, UUID_A, &tparams, &k3, &err), 0);
	assert_int_equal(crypt_key_unwrap(ts_nl, &tparams, UUID_A, "R", &k4, &err), 0);
	crypt_key_free(k3);
	crypt_key_free(k4);
	/* ... binary key material is used whole, also when its last random byte is 0x0a. */
	unsigned char bin[32];
	assert_int_equal(RAND_bytes(bin, sizeof(bin)), 1);
	bin[0] = 0x00;
	bin[31] = '\n';
	write_file(path, bin, sizeof(bin), 0600);
	write_file(path_nl, bin, 31, 0600);
	crypt_secret_free(ts);
	ts = secret_of(tcfg);
	assert_int_equal(crypt_key_create(ts, UUID_A, &tparams, &k3, &err), 0);
	CryptSecret *short_s = NULL;
	assert_int_equal(crypt_secret_load(tcfg_nl, &short_s, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "holds 31 bytes"));
	crypt_key_free(k3);
	crypt_secret_free(ts);
	crypt_secret_free(ts_nl);
	config_free(tcfg);
	config_free(tcfg_nl);

	free(out.p);
	free(obj.p);
	free(data);
	crypt_key_free(k1);
	crypt_key_free(k2);
	crypt_secret_free(s);
	config_free(cfg);
}

static void test_wrap_unwrap_with_passphrase(void **state)
{
	Fixture *f = *state;
	CryptParams params;
	CryptKey *k1 = NULL, *k2 = NULL;
	WsError err;
	Config *cfg = config_with_passphrase(f, "correct horse battery staple");
	CryptSecret *s = secret_of(cfg);
	assert_int_equal(crypt_secret_kdf(s), CRYPT_KDF_SCRYPT);
	/* Messages may name the setting, never the passphrase. */
	assert_null(strstr(crypt_secret_describe(s), "horse"));
	assert_int_equal(crypt_key_create(s, UUID_A, &params, &k1, &err), 0);
	assert_int_equal(params.kdf, CRYPT_KDF_SCRYPT);
	assert_int_equal(params.scrypt_n, CRYPT_SCRYPT_N);
	assert_int_equal(params.scrypt_r, CRYPT_SCRYPT_R);
	assert_int_equal(params.scrypt_p, CRYPT_SCRYPT_P);
	assert_int_equal(crypt_key_unwrap(s, &params, UUID_A, "R", &k2, &err), 0);

	Config *wrong = config_with_passphrase(f, "correct horse battery stapler");
	CryptSecret *ws = secret_of(wrong);
	CryptKey *k3 = (CryptKey *)0x1;
	assert_int_equal(crypt_key_unwrap(ws, &params, UUID_A, "R", &k3, &err), WS_FATAL);
	assert_null(k3);
	assert_string_equal(err.msg, "wrong encryption key for repository \"R\"");
	assert_null(strstr(err.detail, "horse"));
	assert_non_null(strstr(err.hint, "WALSHIP_ENCRYPTION_PASSPHRASE"));
	crypt_secret_free(ws);
	config_free(wrong);

	/* A passphrase for a key-file repository (and the reverse) names the setting needed. */
	Config *kcfg = config_with_key_file(f->keyfile);
	CryptSecret *ks = secret_of(kcfg);
	assert_int_equal(crypt_key_unwrap(ks, &params, UUID_A, "R", &k3, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "is encrypted with a passphrase"));
	assert_non_null(strstr(err.hint, "encryption-passphrase"));
	crypt_secret_free(ks);
	config_free(kcfg);

	crypt_key_free(k1);
	crypt_key_free(k2);
	crypt_secret_free(s);
	config_free(cfg);
}

static void test_wrong_or_tampered_key_refused(void **state)
{
	Fixture *f = *state;
	CryptParams params, bad;
	CryptKey *k = NULL;
	WsError err;
	Config *cfg = config_with_key_file(f->keyfile);
	CryptSecret *s = secret_of(cfg);
	assert_int_equal(crypt_key_create(s, UUID_A, &params, &k, &err), 0);
	crypt_key_free(k);

	/* Another key file. */
	char path[200];
	unsigned char other[32];
	assert_int_equal(RAND_bytes(other, sizeof(other)), 1);
	snprintf(path, sizeof(path), "%s/other.key", f->dir);
	write_file(path, other, sizeof(other), 0600);
	Config *ocfg = config_with_key_file(path);
	CryptSecret *os = secret_of(ocfg);
	k = (CryptKey *)0x1;
	assert_int_equal(crypt_key_unwrap(os, &params, UUID_A, "/var/lib/walship", &k, &err), WS_FATAL);
	assert_null(k);
	assert_string_equal(err.msg, "wrong encryption key for repository \"/var/lib/walship\"");
	assert_non_null(strstr(err.hint, "encryption-key-file"));
	crypt_secret_free(os);
	config_free(ocfg);

	/* The wrapped key copied into another repository. */
	assert_int_equal(crypt_key_unwrap(s, &params, UUID_B, "R", &k, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "wrong encryption key"));

	/* Every bit of salt and wrapped key matters. */
	for (size_t i = 0; i < sizeof(params.salt) + sizeof(params.wrapped_key); i++) {
		bad = params;
		if (i < sizeof(bad.salt))
			bad.salt[i] ^= 0x01;
		else
			bad.wrapped_key[i - sizeof(bad.salt)] ^= 0x80;
		assert_int_equal(crypt_key_unwrap(s, &bad, UUID_A, "R", &k, &err), WS_FATAL);
		assert_null(k);
	}
	assert_int_equal(crypt_key_unwrap(s, &params, UUID_A, "R", &k, &err), 0);
	crypt_key_free(k);
	crypt_secret_free(s);
	config_free(cfg);
}

static void test_key_file_checks(void **state)
{
	Fixture *f = *state;
	char path[200];
	CryptSecret *s = NULL;
	WsError err;
	unsigned char bytes[CRYPT_KEY_FILE_MAX + 1];
	memset(bytes, 'k', sizeof(bytes));
	snprintf(path, sizeof(path), "%s/k", f->dir);

	/* 31 bytes and a newline: too short. */
	bytes[31] = '\n';
	write_file(path, bytes, 32, 0600);
	Config *cfg = config_with_key_file(path);
	assert_int_equal(crypt_secret_load(cfg, &s, &err), WS_FATAL);
	assert_null(s);
	assert_non_null(strstr(err.msg, "holds 31 bytes, fewer than 32"));
	assert_non_null(strstr(err.hint, "head -c 32 /dev/urandom"));

	/* Readable by everyone: refused as every secret file is. */
	write_file(path, bytes, 40, 0644);
	assert_int_equal(crypt_secret_load(cfg, &s, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "readable by every user"));

	/* Too large to be a key file. */
	memset(bytes, 'k', sizeof(bytes));
	write_file(path, bytes, sizeof(bytes), 0600);
	assert_int_equal(crypt_secret_load(cfg, &s, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "larger than"));

	/* Missing. */
	unlink(path);
	assert_int_equal(crypt_secret_load(cfg, &s, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, path));
	config_free(cfg);

	/* Nothing configured: no secret, no error. */
	cfg = config_new();
	assert_int_equal(crypt_secret_load(cfg, &s, &err), 0);
	assert_null(s);
	config_free(cfg);

	/* Both configured: which one would be meant? */
	cfg = config_with_passphrase(f, "pass");
	assert_int_equal(config_set_option(cfg, "encryption-key-file", f->keyfile, &err), 0);
	assert_int_equal(crypt_secret_load(cfg, &s, &err), WS_USAGE);
	assert_non_null(strstr(err.msg, "both encryption-key-file and encryption-passphrase"));
	config_free(cfg);
}

/* ---- objects ---- */

static void test_chunk_boundaries_roundtrip(void **state)
{
	Fixture *f = *state;
	static const size_t sizes[] = {
		0, 1, 100, CRYPT_CHUNK - 40, CRYPT_CHUNK, CRYPT_CHUNK + 1, 3 * CRYPT_CHUNK + 17};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *data = random_bytes(sizes[i]);
		roundtrip(f->key, data, sizes[i], 0, 0);
		roundtrip(f->key, data, sizes[i], 2, 1 + sizes[i] / 7);
		free(data);
	}
	/* One byte at a time through the decoder's chunk state machine. */
	unsigned char *data = random_bytes(CRYPT_CHUNK + 5000);
	roundtrip(f->key, data, CRYPT_CHUNK + 5000, 0, 1);
	free(data);
}

static void test_empty_final_chunk_when_frame_fills_chunks_exactly(void **state)
{
	Fixture *f = *state;
	uint32_t words[8];
	/* Find a content size whose zstd frame is exactly one chunk long. */
	size_t n = CRYPT_CHUNK - 16;
	for (int tries = 0; tries < 10; tries++) {
		unsigned char *data = random_bytes(n);
		Buf obj = encode(f->key, NAME_1, data, n, 0, NULL);
		int k = chunk_layout(&obj, words, 8);
		size_t frame = 0;
		for (int i = 0; i < k; i++)
			frame += words[i] & 0x7fffffffu;
		if (frame == CRYPT_CHUNK) {
			/* A full chunk, then an empty final one: truncation after the first is visible. */
			assert_int_equal(k, 2);
			assert_int_equal(words[0], CRYPT_CHUNK);
			assert_int_equal(words[1], 0x80000000u);
			roundtrip(f->key, data, n, 0, 0);
			free(obj.p);
			free(data);
			return;
		}
		n = n + CRYPT_CHUNK - frame;
		free(obj.p);
		free(data);
	}
	fail_msg("no content size gave a frame of exactly one chunk");
}

static void test_many_mib_roundtrip_and_layout(void **state)
{
	Fixture *f = *state;
	size_t n = 9 * MIB + 333;
	unsigned char *data = random_bytes(n);
	/* Part compressible, part not: chunks of compressed bytes either way. */
	memset(data + MIB, 0, 2 * MIB);
	roundtrip(f->key, data, n, 2, 0);
	roundtrip(f->key, data, n, 0, 100000);
	uint32_t words[512];
	Buf obj = encode(f->key, NAME_1, data, n, 2, NULL);
	int k = chunk_layout(&obj, words, 512);
	for (int i = 0; i < k - 1; i++)
		assert_int_equal(words[i], CRYPT_CHUNK);
	assert_true(words[k - 1] & 0x80000000u);
	assert_true((words[k - 1] & 0x7fffffffu) < CRYPT_CHUNK);
	free(obj.p);
	free(data);
}

static void test_stored_object_hides_content(void **state)
{
	Fixture *f = *state;
	size_t n = 300000;
	unsigned char *data = text_bytes(n);
	Buf a = encode(f->key, NAME_1, data, n, 0, NULL);
	Buf b = encode(f->key, NAME_1, data, n, 0, NULL);
	assert_null(memmem(a.p, a.n, "walship plaintext", 17));
	/* Zstd would find no frame: the body starts with a chunk length, not a zstd magic. */
	assert_true(memcmp(a.p + OBJ_HEADER_SIZE_ENCRYPTED, "\x28\xb5\x2f\xfd", 4) != 0);
	/* A fresh salt per object: the same content never gives the same bytes. */
	assert_int_equal(a.n, b.n);
	assert_memory_not_equal(a.p + 24, b.p + 24, 32);
	assert_memory_not_equal(a.p + OBJ_HEADER_SIZE_ENCRYPTED, b.p + OBJ_HEADER_SIZE_ENCRYPTED, 64);
	free(a.p);
	free(b.p);
	free(data);
}

static void test_every_byte_flip_refused(void **state)
{
	Fixture *f = *state;
	/* Three chunks' worth of incompressible content, so every region is covered. */
	size_t n = 2 * CRYPT_CHUNK + 300;
	unsigned char *data = random_bytes(n);
	Buf obj = encode(f->key, NAME_1, data, n, 0, NULL);
	size_t first_chunk_end = OBJ_HEADER_SIZE_ENCRYPTED + 4 + CRYPT_CHUNK + CRYPT_TAG_SIZE;
	/* Each byte of the header, the first chunk's edges, every later byte's sample, the trailer. */
	for (size_t i = 0; i < obj.n; i++) {
		bool edge = i < OBJ_HEADER_SIZE_ENCRYPTED + 64 ||
			    (i + 64 > first_chunk_end && i < first_chunk_end + 64) || i + 200 > obj.n ||
			    i % 97 == 0;
		if (!edge)
			continue;
		for (int bit = 0; bit < 8; bit += 7) {
			Buf out = {0};
			WsError err;
			obj.p[i] ^= (unsigned char)(1u << bit);
			int rc = decode(f->key, NAME_1, obj.p, obj.n, 0, &out, NULL, &err);
			obj.p[i] ^= (unsigned char)(1u << bit);
			if (rc == 0)
				fail_msg("flip of bit %d at byte %zu of %zu decoded as good", bit, i, obj.n);
			assert_true(rc == WS_CORRUPT || rc == WS_FATAL);
			/* Nothing of a chunk reaches the writer unless its tag matched. */
			if (i < first_chunk_end)
				assert_int_equal(out.n, 0);
			free(out.p);
		}
	}
	free(obj.p);
	free(data);
}

static void test_every_byte_flip_of_small_object_refused(void **state)
{
	Fixture *f = *state;
	unsigned char *data = random_bytes(300);
	Buf obj = encode(f->key, NAME_1, data, 300, 0, NULL);
	for (size_t i = 0; i < obj.n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			Buf out = {0};
			WsError err;
			obj.p[i] ^= (unsigned char)(1u << bit);
			int rc = decode(f->key, NAME_1, obj.p, obj.n, 0, &out, NULL, &err);
			obj.p[i] ^= (unsigned char)(1u << bit);
			if (rc == 0)
				fail_msg("flip of bit %d at byte %zu decoded as good", bit, i);
			if (i < obj.n - OBJ_TRAILER_SIZE)
				assert_int_equal(out.n, 0);
			free(out.p);
		}
	}
	free(obj.p);
	free(data);
}

static void test_truncation_at_every_length_refused(void **state)
{
	Fixture *f = *state;
	size_t n = CRYPT_CHUNK + 1000;
	unsigned char *data = random_bytes(n);
	Buf obj = encode(f->key, NAME_1, data, n, 0, NULL);
	for (size_t len = 0; len < obj.n; len++) {
		/* Every length near the structure's seams; a sample elsewhere. */
		if (len > 200 && len % 61 != 0 && (len + 200 < obj.n) &&
		    (len < CRYPT_CHUNK || len > CRYPT_CHUNK + 300))
			continue;
		Buf out = {0};
		WsError err;
		int rc = decode(f->key, NAME_1, obj.p, len, 0, &out, NULL, &err);
		if (rc != WS_CORRUPT)
			fail_msg("truncation to %zu of %zu bytes: rc %d", len, obj.n, rc);
		free(out.p);
	}
	/* And trailing data. */
	unsigned char *longer = malloc(obj.n + 1);
	assert_non_null(longer);
	memcpy(longer, obj.p, obj.n);
	longer[obj.n] = 0;
	Buf out = {0};
	WsError err;
	assert_int_equal(decode(f->key, NAME_1, longer, obj.n + 1, 0, &out, NULL, &err), WS_CORRUPT);
	free(out.p);
	free(longer);
	free(obj.p);
	free(data);
}

static void test_object_bound_to_name_and_repository(void **state)
{
	Fixture *f = *state;
	size_t n = 5000;
	unsigned char *data = text_bytes(n);
	Buf obj = encode(f->key, NAME_1, data, n, 0, NULL);
	Buf out = {0};
	WsError err;

	/* Renamed: another segment's key. */
	assert_int_equal(decode(f->key, NAME_2, obj.p, obj.n, 0, &out, NULL, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "object \"" NAME_2 "\" is corrupt"));
	assert_non_null(strstr(err.msg, "failed authentication"));
	assert_non_null(strstr(err.detail, "another name"));
	assert_int_equal(out.n, 0);

	/* Another epoch: the key starts with the epoch id. */
	assert_int_equal(decode(f->key, "16-2/wal/0000000100000000/000000010000000000000001", obj.p, obj.n, 0,
				&out, NULL, &err),
			 WS_CORRUPT);
	assert_int_equal(out.n, 0);

	/* Another repository with the same key file: another UUID, another data key. */
	CryptParams params;
	CryptKey *other = NULL;
	Config *cfg = config_with_key_file(f->keyfile);
	CryptSecret *s = secret_of(cfg);
	assert_int_equal(crypt_key_create(s, UUID_B, &params, &other, &err), 0);
	assert_int_equal(decode(other, NAME_1, obj.p, obj.n, 0, &out, NULL, &err), WS_CORRUPT);
	assert_int_equal(out.n, 0);
	crypt_key_free(other);
	crypt_secret_free(s);
	config_free(cfg);

	/* Chunks swapped within an object. */
	unsigned char *big = random_bytes(3 * CRYPT_CHUNK);
	Buf b = encode(f->key, NAME_1, big, 3 * CRYPT_CHUNK, 0, NULL);
	size_t c = 4 + CRYPT_CHUNK + CRYPT_TAG_SIZE;
	unsigned char *tmp = malloc(c);
	assert_non_null(tmp);
	memcpy(tmp, b.p + OBJ_HEADER_SIZE_ENCRYPTED, c);
	memmove(b.p + OBJ_HEADER_SIZE_ENCRYPTED, b.p + OBJ_HEADER_SIZE_ENCRYPTED + c, c);
	memcpy(b.p + OBJ_HEADER_SIZE_ENCRYPTED + c, tmp, c);
	assert_int_equal(decode(f->key, NAME_1, b.p, b.n, 0, &out, NULL, &err), WS_CORRUPT);
	assert_int_equal(out.n, 0);
	free(tmp);
	free(b.p);
	free(big);

	free(obj.p);
	free(data);
}

static void test_plain_and_encrypted_objects_refused_across(void **state)
{
	Fixture *f = *state;
	unsigned char *data = text_bytes(5000);
	Buf out = {0};
	WsError err;

	/* An unencrypted object slipped into an encrypted repository. */
	Buf plain = encode(NULL, NAME_1, data, 5000, 0, NULL);
	assert_int_equal(decode(NULL, NAME_1, plain.p, plain.n, 0, &out, NULL, &err), 0);
	out.n = 0;
	assert_int_equal(decode(f->key, NAME_1, plain.p, plain.n, 0, &out, NULL, &err), WS_CORRUPT);
	assert_string_equal(err.msg, "object \"" NAME_1 "\" is not encrypted, but the repository is");
	assert_int_equal(out.n, 0);

	/* An encrypted object in an unencrypted repository. */
	Buf enc = encode(f->key, NAME_1, data, 5000, 0, NULL);
	assert_int_equal(decode(NULL, NAME_1, enc.p, enc.n, 0, &out, NULL, &err), WS_FATAL);
	assert_string_equal(err.msg, "object \"" NAME_1 "\" is encrypted, but the repository is not");
	assert_int_equal(out.n, 0);

	/* The encrypted flag cleared (header CRC recomputed): still not a plain object. */
	enc.p[14] = 0;
	uint32_t crc = crc32c(enc.p + 8, 48);
	for (int i = 0; i < 4; i++)
		enc.p[56 + i] = (unsigned char)(crc >> (8 * i));
	assert_int_equal(decode(NULL, NAME_1, enc.p, enc.n, 0, &out, NULL, &err), WS_CORRUPT);
	assert_int_equal(decode(f->key, NAME_1, enc.p, enc.n, 0, &out, NULL, &err), WS_CORRUPT);
	assert_int_equal(out.n, 0);

	free(out.p);
	free(plain.p);
	free(enc.p);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_wrap_unwrap_with_key_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_unwrap_with_passphrase, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_or_tampered_key_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_file_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunk_boundaries_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_final_chunk_when_frame_fills_chunks_exactly, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_many_mib_roundtrip_and_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stored_object_hides_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_byte_flip_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_byte_flip_of_small_object_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_truncation_at_every_length_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_object_bound_to_name_and_repository, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_and_encrypted_objects_refused_across, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
