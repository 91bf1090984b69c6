/*
 * test_object.c - the object format: round trips, zstd compatibility, and
 * that no damaged, truncated or oversized object ever decodes as good.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "repo/object.h"
#include "util/crc32c.h"

#define MIB (1024u * 1024u)

/* ---- helpers ---- */

typedef struct TestReader {
	const unsigned char *p;
	size_t n;
	size_t pos;
	size_t chunk; /* largest piece per read, 0 for cap */
	size_t extra; /* bytes to produce beyond n (a file that grew) */
} TestReader;

static int mem_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err)
{
	(void)err;
	TestReader *r = ctx;
	size_t k = r->n - r->pos;
	if (k == 0 && r->extra > 0) {
		k = r->extra < cap ? r->extra : cap;
		memset(buf, 'x', k);
		r->extra -= k;
		*got = k;
		return 0;
	}
	if (k > cap)
		k = cap;
	if (r->chunk > 0 && k > r->chunk)
		k = r->chunk;
	memcpy(buf, r->p + r->pos, k);
	r->pos += k;
	*got = k;
	return 0;
}

typedef struct Buf {
	unsigned char *p;
	size_t n;
	size_t cap;
	size_t fail_after; /* writer error once this many bytes arrived, 0 never */
} Buf;

static void buf_append(Buf *b, const unsigned char *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 4096;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (n > 0)
		memcpy(b->p + b->n, p, n);
	b->n += n;
}

static int buf_write(void *ctx, const unsigned char *p, size_t n, WsError *err)
{
	Buf *b = ctx;
	buf_append(b, p, n);
	if (b->fail_after > 0 && b->n >= b->fail_after)
		return ws_error(err, WS_FATAL, "could not write test sink: disk full");
	return 0;
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static unsigned char *make_random(size_t n)
{
	unsigned char *p = malloc(n ? n : 1);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(rng() >> 24);
	return p;
}

/* Something like WAL: 8 KiB pages of small records with counters, zero-filled tails, some noise. */
static void fill_walish(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		size_t in_page = i % 8192;
		if (in_page < 24)
			p[i] = (unsigned char)((i / 8192) >> (8 * (in_page % 4)));
		else if (in_page > 6000)
			p[i] = 0;
		else if (in_page % 64 < 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			p[i] = (unsigned char)x;
		} else
			p[i] = (unsigned char)(in_page % 64 + (i / 65536));
	}
}

static unsigned char *make_walish(size_t n)
{
	unsigned char *p = malloc(n ? n : 1);
	assert_non_null(p);
	fill_walish(p, n, 7);
	return p;
}

static void sha256_of(const unsigned char *p, size_t n, unsigned char out[32])
{
	unsigned int len = 0;
	assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
}

/* Encode data (known or unknown size), pulling with reads of up to cap bytes. */
static int encode_with(ObjEncoder *enc, const unsigned char *data, size_t n, bool known, size_t cap, Buf *out,
		       ObjInfo *info, WsError *err)
{
	TestReader r = {data, n, 0, 0, 0};
	unsigned char *tmp = malloc(cap);
	size_t got;
	int rc;
	assert_non_null(tmp);
	obj_encoder_reset(enc, mem_read, &r, known ? n : OBJ_SIZE_UNKNOWN);
	do {
		rc = obj_encoder_read(enc, tmp, cap, &got, err);
		if (rc < 0)
			break;
		assert_true(got <= cap);
		buf_append(out, tmp, got);
	} while (got > 0);
	free(tmp);
	if (rc == 0 && info != NULL)
		obj_encoder_info(enc, info);
	return rc;
}

static Buf encode(const unsigned char *data, size_t n, bool known)
{
	Buf out = {0};
	WsError err;
	ObjEncoder *enc = obj_encoder_new(3);
	assert_int_equal(encode_with(enc, data, n, known, 64 * 1024, &out, NULL, &err), 0);
	obj_encoder_free(enc);
	return out;
}

/* Decode obj fed in pieces of chunk bytes (0 = all at once). */
static int decode_with(ObjDecoder *dec, const unsigned char *obj, size_t len, uint64_t max_size, size_t chunk,
		       Buf *out, ObjInfo *info, WsError *err)
{
	ObjInfo dummy;
	int rc = 0;
	obj_decoder_reset(dec, max_size, buf_write, out,
			  "15-1/wal/0000000100000000/000000010000000000000001");
	for (size_t off = 0; off < len && rc == 0;) {
		size_t k = chunk == 0 ? len - off : (chunk < len - off ? chunk : len - off);
		rc = obj_decoder_write(dec, obj + off, k, err);
		off += k;
	}
	if (rc < 0)
		return rc;
	return obj_decoder_finish(dec, info ? info : &dummy, err);
}

static int decode(const unsigned char *obj, size_t len, uint64_t max_size, Buf *out, WsError *err)
{
	ObjDecoder *dec = obj_decoder_new();
	int rc = decode_with(dec, obj, len, max_size, 0, out, NULL, err);
	obj_decoder_free(dec);
	return rc;
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Rewrite a header field and make its CRC valid again, as a forger would. */
static void header_reseal(unsigned char *obj)
{
	put32(obj + 24, crc32c(obj + 8, 16));
}

static void trailer_reseal(unsigned char *trl)
{
	put32(trl + 56, crc32c(trl, 56));
}

/* ---- round trips ---- */

static void roundtrip_one(ObjEncoder *enc, ObjDecoder *dec, const unsigned char *data, size_t n, bool known)
{
	Buf obj = {0}, out = {0};
	ObjInfo ei, di;
	WsError err;
	unsigned char sha[32];

	assert_int_equal(encode_with(enc, data, n, known, 128 * 1024, &obj, &ei, &err), 0);
	sha256_of(data, n, sha);
	assert_int_equal(ei.content_size, n);
	assert_memory_equal(ei.sha256, sha, 32);
	assert_int_equal(ei.stored_size, obj.n);
	assert_true(obj.n >= OBJ_HEADER_SIZE + OBJ_TRAILER_SIZE);

	int rc = decode_with(dec, obj.p, obj.n, OBJ_SIZE_UNKNOWN, 0, &out, &di, &err);
	if (rc != 0)
		fail_msg("decode of %zu bytes (known=%d): %s", n, known, err.msg);
	assert_int_equal(out.n, n);
	if (n > 0)
		assert_memory_equal(out.p, data, n);
	assert_int_equal(di.content_size, n);
	assert_memory_equal(di.sha256, sha, 32);
	assert_int_equal(di.stored_size, obj.n);

	uint64_t hsize = 0, tsize = 0;
	unsigned char tsha[32];
	assert_int_equal(obj_header_parse(obj.p, obj.n, &hsize, &err), 0);
	assert_true(hsize == (known ? n : OBJ_SIZE_UNKNOWN));
	assert_int_equal(
		obj_trailer_parse(obj.p + obj.n - OBJ_TRAILER_SIZE, OBJ_TRAILER_SIZE, &tsize, tsha, &err), 0);
	assert_int_equal(tsize, n);
	assert_memory_equal(tsha, sha, 32);
	free(obj.p);
	free(out.p);
}

static void test_roundtrip_sizes_known_and_unknown(void **state)
{
	(void)state;
	static const size_t sizes[] = {0, 1, 4095, MIB + 7, 16 * MIB};
	ObjEncoder *enc = obj_encoder_new(3);
	ObjDecoder *dec = obj_decoder_new();
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *rnd = make_random(sizes[i]);
		unsigned char *wal = make_walish(sizes[i]);
		for (int known = 0; known <= 1; known++) {
			roundtrip_one(enc, dec, rnd, sizes[i], known);
			roundtrip_one(enc, dec, wal, sizes[i], known);
		}
		free(rnd);
		free(wal);
	}
	obj_encoder_free(enc);
	obj_decoder_free(dec);
}

static void test_roundtrip_levels_and_workers(void **state)
{
	(void)state;
	size_t n = 3 * MIB + 5;
	unsigned char *wal = make_walish(n);
	int levels[] = {-5, 1, 6, 19};
	ObjDecoder *dec = obj_decoder_new();
	for (size_t i = 0; i < 4; i++) {
		for (int w = 0; w <= 2; w++) {
			ObjEncoder *enc = obj_encoder_new(levels[i]);
			obj_encoder_set_workers(enc, w);
			roundtrip_one(enc, dec, wal, n, true);
			obj_encoder_free(enc);
		}
	}
	obj_decoder_free(dec);
	free(wal);
}

static void test_walish_content_is_compressed(void **state)
{
	(void)state;
	size_t n = 16 * MIB;
	unsigned char *wal = make_walish(n);
	Buf obj = encode(wal, n, true);
	assert_true(obj.n < n / 3);
	free(obj.p);
	free(wal);
}

static void test_zstd_cli_decompresses_object(void **state)
{
	(void)state;
	char dir[] = "/tmp/walship-test-object-XXXXXX";
	assert_non_null(mkdtemp(dir));
	size_t n = 2 * MIB + 3;
	unsigned char *wal = make_walish(n);
	for (int known = 0; known <= 1; known++) {
		Buf obj = encode(wal, n, known);
		char in_path[128], out_path[128], cmd[512];
		snprintf(in_path, sizeof(in_path), "%s/obj.zst", dir);
		snprintf(out_path, sizeof(out_path), "%s/out", dir);
		FILE *f = fopen(in_path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(obj.p, 1, obj.n, f), obj.n);
		assert_int_equal(fclose(f), 0);
		snprintf(cmd, sizeof(cmd), "/usr/bin/zstd -q -d -f -o '%s' '%s'", out_path, in_path);
		assert_int_equal(system(cmd), 0);

		f = fopen(out_path, "rb");
		assert_non_null(f);
		unsigned char *back = malloc(n + 1);
		assert_non_null(back);
		size_t got = fread(back, 1, n + 1, f);
		fclose(f);
		assert_int_equal(got, n);
		assert_memory_equal(back, wal, n);
		free(back);
		free(obj.p);
		unlink(in_path);
		unlink(out_path);
	}
	assert_int_equal(rmdir(dir), 0);
	free(wal);
}

/* ---- damage ---- */

static bool decodes_ok(ObjDecoder *dec, const unsigned char *obj, size_t len)
{
	Buf out = {0};
	WsError err;
	int rc = decode_with(dec, obj, len, OBJ_SIZE_UNKNOWN, 0, &out, NULL, &err);
	free(out.p);
	if (rc < 0) {
		assert_true(rc == WS_CORRUPT || rc == WS_FATAL);
		assert_int_equal(err.cls, rc);
		assert_true(strlen(err.msg) > 0);
	}
	return rc == 0;
}

static void test_every_single_byte_flip_of_small_object_detected(void **state)
{
	(void)state;
	unsigned char *data = make_walish(3000);
	Buf obj = encode(data, 3000, true);
	ObjDecoder *dec = obj_decoder_new();
	assert_true(decodes_ok(dec, obj.p, obj.n));
	static const unsigned char masks[] = {0x01, 0x80};
	for (size_t m = 0; m < 2; m++) {
		for (size_t i = 0; i < obj.n; i++) {
			obj.p[i] ^= masks[m];
			if (decodes_ok(dec, obj.p, obj.n))
				fail_msg("flip 0x%02x at byte %zu of %zu went undetected", masks[m], i,
					 obj.n);
			obj.p[i] ^= masks[m];
		}
	}
	assert_true(decodes_ok(dec, obj.p, obj.n));
	obj_decoder_free(dec);
	free(obj.p);
	free(data);
}

static void test_byte_flips_of_1mib_object_detected(void **state)
{
	(void)state;
	size_t n = MIB;
	unsigned char *data = make_walish(n);
	Buf obj = encode(data, n, true);
	ObjDecoder *dec = obj_decoder_new();
	size_t body_end = obj.n - OBJ_TRAILER_SIZE;
	for (size_t i = 0; i < obj.n; i++) {
		if (i >= OBJ_HEADER_SIZE && i < body_end && (i - OBJ_HEADER_SIZE) % 97 != 0)
			continue;
		unsigned char mask = (i & 1) ? 0x80 : 0x01;
		obj.p[i] ^= mask;
		if (decodes_ok(dec, obj.p, obj.n))
			fail_msg("flip 0x%02x at byte %zu of %zu went undetected", mask, i, obj.n);
		obj.p[i] ^= mask;
	}
	assert_true(decodes_ok(dec, obj.p, obj.n));
	obj_decoder_free(dec);
	free(obj.p);
	free(data);
}

static void test_truncation_at_every_position_detected(void **state)
{
	(void)state;
	unsigned char *data = make_random(2000);
	Buf obj = encode(data, 2000, false);
	ObjDecoder *dec = obj_decoder_new();
	for (size_t len = 0; len < obj.n; len++) {
		Buf out = {0};
		WsError err;
		int rc = decode_with(dec, obj.p, len, OBJ_SIZE_UNKNOWN, 0, &out, NULL, &err);
		if (rc != WS_CORRUPT)
			fail_msg("truncation to %zu of %zu bytes gave %d", len, obj.n, rc);
		if (len == 0)
			assert_non_null(strstr(err.msg, "empty"));
		else if (len < OBJ_HEADER_SIZE)
			assert_non_null(strstr(err.msg, "within the header"));
		else if (len >= obj.n - OBJ_TRAILER_SIZE + 4)
			assert_non_null(strstr(err.msg, "within the trailer"));
		free(out.p);
	}
	obj_decoder_free(dec);
	free(obj.p);
	free(data);
}

static void test_trailing_data_refused(void **state)
{
	(void)state;
	unsigned char *data = make_walish(5000);
	Buf obj = encode(data, 5000, true);
	Buf twice = {0};
	buf_append(&twice, obj.p, obj.n);
	buf_append(&twice, obj.p, obj.n);
	Buf out = {0};
	WsError err;

	assert_int_equal(decode(twice.p, obj.n + 1, OBJ_SIZE_UNKNOWN, &out, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "after the trailer"));
	out.n = 0;
	assert_int_equal(decode(twice.p, twice.n, OBJ_SIZE_UNKNOWN, &out, &err), WS_CORRUPT);
	free(out.p);
	free(twice.p);
	free(obj.p);
	free(data);
}

static void test_second_zstd_frame_refused(void **state)
{
	(void)state;
	unsigned char *data = make_walish(5000);
	Buf obj = encode(data, 5000, false);
	size_t frame = obj.n - OBJ_HEADER_SIZE - OBJ_TRAILER_SIZE;
	Buf forged = {0}, out = {0};
	WsError err;
	buf_append(&forged, obj.p, OBJ_HEADER_SIZE + frame);
	buf_append(&forged, obj.p + OBJ_HEADER_SIZE, frame);
	buf_append(&forged, obj.p + obj.n - OBJ_TRAILER_SIZE, OBJ_TRAILER_SIZE);
	assert_int_equal(decode(forged.p, forged.n, OBJ_SIZE_UNKNOWN, &out, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "more than one zstd frame"));
	assert_true(out.n <= 5000);
	free(forged.p);
	free(out.p);
	free(obj.p);
	free(data);
}

static void test_missing_content_frame_refused(void **state)
{
	(void)state;
	Buf empty = encode((const unsigned char *)"", 0, false);
	Buf forged = {0}, out = {0};
	WsError err;
	/* Header, then straight to the trailer: zstd alone would skip the trailer frame. */
	buf_append(&forged, empty.p, OBJ_HEADER_SIZE);
	buf_append(&forged, empty.p + empty.n - OBJ_TRAILER_SIZE, OBJ_TRAILER_SIZE);
	assert_int_equal(decode(forged.p, forged.n, OBJ_SIZE_UNKNOWN, &out, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "no zstd frame after the header"));
	free(forged.p);
	free(out.p);
	free(empty.p);
}

static void test_sha256_mismatch_reported_with_both_values(void **state)
{
	(void)state;
	unsigned char *data = make_walish(10000);
	Buf obj = encode(data, 10000, true);
	unsigned char *trl = obj.p + obj.n - OBJ_TRAILER_SIZE;
	Buf out = {0};
	WsError err;
	trl[20] ^= 0xFF; /* first byte of the recorded SHA-256, trailer CRC made valid again */
	trailer_reseal(trl);
	assert_int_equal(decode(obj.p, obj.n, OBJ_SIZE_UNKNOWN, &out, &err), WS_CORRUPT);
	assert_string_equal(err.msg,
			    "object \"15-1/wal/0000000100000000/000000010000000000000001\" is corrupt: "
			    "SHA-256 mismatch");
	assert_non_null(strstr(err.detail, "Recorded "));
	assert_non_null(strstr(err.detail, ", computed "));
	assert_int_equal(strlen(err.detail), strlen("Recorded , computed .") + 128);
	free(out.p);
	free(obj.p);
	free(data);
}

static void test_size_disagreements_refused(void **state)
{
	(void)state;
	unsigned char *data = make_walish(10000);
	Buf obj = encode(data, 10000, false);
	unsigned char *trl = obj.p + obj.n - OBJ_TRAILER_SIZE;
	Buf out = {0};
	WsError err;

	put64(trl + 12, 9999);
	trailer_reseal(trl);
	assert_int_equal(decode(obj.p, obj.n, OBJ_SIZE_UNKNOWN, &out, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "trailer records 9999 bytes of content, decompressed 10000"));

	/* A header size that disagrees with the trailer. */
	put64(trl + 12, 10000);
	trailer_reseal(trl);
	put64(obj.p + 16, 10001);
	header_reseal(obj.p);
	out.n = 0;
	assert_int_equal(decode(obj.p, obj.n, OBJ_SIZE_UNKNOWN, &out, &err), WS_CORRUPT);
	free(out.p);
	free(obj.p);
	free(data);
}

/* ---- caps ---- */

static void test_decoding_stops_at_recorded_size(void **state)
{
	(void)state;
	size_t n = 3 * MIB;
	unsigned char *data = make_walish(n);
	Buf obj = encode(data, n, true);
	Buf out = {0};
	WsError err;

	/* A header claiming less than the frame holds: the sink never sees more. */
	put64(obj.p + 16, 100000);
	header_reseal(obj.p);
	assert_int_equal(decode(obj.p, obj.n, OBJ_SIZE_UNKNOWN, &out, &err), WS_CORRUPT);
	assert_true(out.n <= 100000);
	assert_non_null(strstr(err.msg, "decompressed size exceeds the recorded size"));

	/* Unknown size in the header: only the caller's cap applies. */
	put64(obj.p + 16, OBJ_SIZE_UNKNOWN);
	header_reseal(obj.p);
	out.n = 0;
	assert_int_equal(decode(obj.p, obj.n, 200001, &out, &err), WS_CORRUPT);
	assert_true(out.n <= 200001);
	assert_non_null(strstr(err.msg, "exceeds the limit of 200001 bytes"));

	/* Cap exactly the size: fine. */
	out.n = 0;
	assert_int_equal(decode(obj.p, obj.n, n, &out, &err), 0);
	assert_int_equal(out.n, n);
	free(out.p);
	free(obj.p);
	free(data);
}

static void test_header_size_above_cap_refused_before_content(void **state)
{
	(void)state;
	unsigned char *data = make_walish(100000);
	Buf obj = encode(data, 100000, true);
	Buf out = {0};
	WsError err;
	assert_int_equal(decode(obj.p, obj.n, 99999, &out, &err), WS_CORRUPT);
	assert_int_equal(out.n, 0);
	assert_non_null(strstr(err.msg, "more than the limit of 99999"));
	free(out.p);
	free(obj.p);
	free(data);
}

/* ---- chunking, reuse, errors ---- */

static void test_one_byte_reads_and_writes(void **state)
{
	(void)state;
	size_t n = 300000;
	unsigned char *data = make_walish(n);
	Buf ref = encode(data, n, true);
	Buf tiny = {0}, out = {0};
	ObjEncoder *enc = obj_encoder_new(3);
	ObjDecoder *dec = obj_decoder_new();
	WsError err;
	ObjInfo info;

	assert_int_equal(encode_with(enc, data, n, true, 1, &tiny, NULL, &err), 0);
	assert_int_equal(tiny.n, ref.n);
	assert_memory_equal(tiny.p, ref.p, ref.n);

	assert_int_equal(decode_with(dec, ref.p, ref.n, OBJ_SIZE_UNKNOWN, 1, &out, &info, &err), 0);
	assert_int_equal(out.n, n);
	assert_memory_equal(out.p, data, n);
	for (size_t chunk = 2; chunk < 80; chunk += 7) {
		out.n = 0;
		assert_int_equal(decode_with(dec, ref.p, ref.n, OBJ_SIZE_UNKNOWN, chunk, &out, &info, &err),
				 0);
		assert_int_equal(out.n, n);
	}
	obj_encoder_free(enc);
	obj_decoder_free(dec);
	free(tiny.p);
	free(out.p);
	free(ref.p);
	free(data);
}

static void test_short_reads_from_input(void **state)
{
	(void)state;
	size_t n = MIB + 333;
	unsigned char *data = make_random(n);
	Buf a = {0}, b = {0};
	ObjEncoder *enc = obj_encoder_new(3);
	WsError err;
	unsigned char buf[4096];
	size_t got;
	TestReader r = {data, n, 0, 777, 0};

	assert_int_equal(encode_with(enc, data, n, true, 65536, &a, NULL, &err), 0);
	obj_encoder_reset(enc, mem_read, &r, n);
	do {
		assert_int_equal(obj_encoder_read(enc, buf, sizeof(buf), &got, &err), 0);
		buf_append(&b, buf, got);
	} while (got > 0);
	assert_int_equal(a.n, b.n);
	assert_memory_equal(a.p, b.p, a.n);
	obj_encoder_free(enc);
	free(a.p);
	free(b.p);
	free(data);
}

static void test_encoder_reuse_gives_identical_bytes(void **state)
{
	(void)state;
	size_t na = 5 * MIB, nb = 2 * MIB + 1;
	unsigned char *a = make_walish(na);
	unsigned char *b = make_random(nb);
	for (int w = 0; w <= 2; w++) {
		ObjEncoder *reused = obj_encoder_new(3);
		obj_encoder_set_workers(reused, w);
		Buf first = {0}, second = {0}, fresh_b = {0};
		WsError err;
		ObjInfo ia, ib, ifresh;
		assert_int_equal(encode_with(reused, a, na, true, 65536, &first, &ia, &err), 0);
		assert_int_equal(encode_with(reused, b, nb, false, 65536, &second, &ib, &err), 0);
		ObjEncoder *fresh = obj_encoder_new(3);
		obj_encoder_set_workers(fresh, w);
		assert_int_equal(encode_with(fresh, b, nb, false, 65536, &fresh_b, &ifresh, &err), 0);
		assert_int_equal(second.n, fresh_b.n);
		assert_memory_equal(second.p, fresh_b.p, second.n);
		assert_memory_equal(ib.sha256, ifresh.sha256, 32);
		assert_int_equal(ib.stored_size, second.n);
		assert_int_equal(ib.content_size, nb);
		obj_encoder_free(fresh);
		obj_encoder_free(reused);
		free(first.p);
		free(second.p);
		free(fresh_b.p);
	}
	free(a);
	free(b);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_plain_format_unchanged_after_encryption_was_used(void **state)
{
	(void)state;
	/* An encoder that encrypted, then set back to plain, writes today's plain format, byte for byte. */
	size_t n = 300000;
	unsigned char *data = make_walish(n);
	char dir[] = "/tmp/walship-test-object-XXXXXX", path[64], cmd[96];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/k", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("0123456789abcdef0123456789abcdef\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	Config *cfg = config_new();
	CryptSecret *secret = NULL;
	CryptKey *key = NULL;
	CryptParams params;
	WsError err;
	assert_int_equal(config_set_option(cfg, "encryption-key-file", path, &err), 0);
	assert_int_equal(crypt_secret_load(cfg, &secret, &err), 0);
	assert_int_equal(
		crypt_key_create(secret, "0b7e4b1c-4f5e-4a8e-9d2a-1c2b3c4d5e6f", &params, &key, &err), 0);

	ObjEncoder *enc = obj_encoder_new(3);
	ObjEncoder *never = obj_encoder_new(3);
	Buf encrypted = {0}, plain = {0}, reference = {0};
	obj_encoder_set_crypt(enc, key, "15-1/wal/0000000100000000/000000010000000000000001");
	assert_int_equal(encode_with(enc, data, n, true, 65536, &encrypted, NULL, &err), 0);
	obj_encoder_set_crypt(enc, NULL, "15-1/wal/0000000100000000/000000010000000000000001");
	assert_int_equal(encode_with(enc, data, n, true, 65536, &plain, NULL, &err), 0);
	assert_int_equal(encode_with(never, data, n, true, 65536, &reference, NULL, &err), 0);
	assert_int_equal(plain.n, reference.n);
	assert_memory_equal(plain.p, reference.p, plain.n);
	assert_int_equal(get32(plain.p + 4), 20);     /* the 20-byte header frame */
	assert_int_equal(plain.p[14], 0);             /* no flags */
	assert_int_equal(get32(encrypted.p + 4), 52); /* the encrypted header is longer */
	assert_int_equal(encrypted.p[14], 1);

	/* obj_header_parse reads plain headers; an encrypted one says so. */
	uint64_t size;
	assert_int_equal(obj_header_parse(plain.p, plain.n, &size, &err), 0);
	assert_int_equal(size, n);
	assert_int_equal(obj_header_parse(encrypted.p, encrypted.n, &size, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "is encrypted, but the repository is not"));
	assert_int_equal(obj_header_parse(encrypted.p, OBJ_HEADER_SIZE, &size, &err), WS_CORRUPT);

	obj_encoder_free(enc);
	obj_encoder_free(never);
	free(encrypted.p);
	free(plain.p);
	free(reference.p);
	crypt_key_free(key);
	crypt_secret_free(secret);
	config_free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(data);
}

static void test_encoder_reports_input_size_mismatch(void **state)
{
	(void)state;
	unsigned char *data = make_walish(100000);
	ObjEncoder *enc = obj_encoder_new(3);
	unsigned char buf[65536];
	size_t got;
	WsError err;
	int rc;

	/* File shrank: 99999 bytes where 100000 were announced. */
	TestReader shrunk = {data, 99999, 0, 0, 0};
	obj_encoder_reset(enc, mem_read, &shrunk, 100000);
	while ((rc = obj_encoder_read(enc, buf, sizeof(buf), &got, &err)) == 0 && got > 0)
		;
	assert_int_equal(rc, WS_FATAL);
	assert_string_equal(err.msg, "file changed while being read: expected 100000 bytes, read 99999");
	/* Sticky until the next reset. */
	assert_int_equal(obj_encoder_read(enc, buf, sizeof(buf), &got, &err), WS_FATAL);

	/* File grew. */
	TestReader grown = {data, 100000, 0, 0, 10};
	obj_encoder_reset(enc, mem_read, &grown, 100000);
	while ((rc = obj_encoder_read(enc, buf, sizeof(buf), &got, &err)) == 0 && got > 0)
		;
	assert_int_equal(rc, WS_FATAL);
	assert_non_null(
		strstr(err.msg, "file changed while being read: expected 100000 bytes, read at least"));

	/* The same encoder works again after a reset. */
	Buf ok = {0};
	assert_int_equal(encode_with(enc, data, 100000, true, 65536, &ok, NULL, &err), 0);
	free(ok.p);
	obj_encoder_free(enc);
	free(data);
}

static int failing_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err)
{
	(void)ctx;
	(void)buf;
	(void)cap;
	*got = 0;
	return ws_error(err, WS_FATAL, "could not read file \"x\": Input/output error");
}

static void test_reader_error_passed_through(void **state)
{
	(void)state;
	ObjEncoder *enc = obj_encoder_new(3);
	unsigned char buf[4096];
	size_t got;
	WsError err;
	int rc;
	obj_encoder_reset(enc, failing_read, NULL, OBJ_SIZE_UNKNOWN);
	while ((rc = obj_encoder_read(enc, buf, sizeof(buf), &got, &err)) == 0 && got > 0)
		;
	assert_int_equal(rc, WS_FATAL);
	assert_string_equal(err.msg, "could not read file \"x\": Input/output error");
	obj_encoder_free(enc);
}

static void test_writer_error_passed_through_and_sticky(void **state)
{
	(void)state;
	size_t n = MIB;
	unsigned char *data = make_walish(n);
	Buf obj = encode(data, n, true);
	ObjDecoder *dec = obj_decoder_new();
	Buf out = {0};
	out.fail_after = 1000;
	WsError err;
	ObjInfo info;
	obj_decoder_reset(dec, OBJ_SIZE_UNKNOWN, buf_write, &out, "x");
	assert_int_equal(obj_decoder_write(dec, obj.p, obj.n / 2, &err), WS_FATAL);
	assert_string_equal(err.msg, "could not write test sink: disk full");
	ws_error_clear(&err);
	assert_int_equal(obj_decoder_write(dec, obj.p + obj.n / 2, obj.n - obj.n / 2, &err), WS_FATAL);
	assert_string_equal(err.msg, "could not write test sink: disk full");
	assert_int_equal(obj_decoder_finish(dec, &info, &err), WS_FATAL);
	/* Reset clears the failure. */
	out.fail_after = 0;
	out.n = 0;
	assert_int_equal(decode_with(dec, obj.p, obj.n, OBJ_SIZE_UNKNOWN, 0, &out, &info, &err), 0);
	assert_int_equal(out.n, n);
	obj_decoder_free(dec);
	free(out.p);
	free(obj.p);
	free(data);
}

/* ---- header and trailer images ---- */

static void test_newer_format_and_flags_refused(void **state)
{
	(void)state;
	unsigned char *data = make_walish(1000);
	Buf obj = encode(data, 1000, true);
	Buf out = {0};
	WsError err;
	uint64_t size;

	obj.p[12] = 2; /* format version 2, CRC valid */
	header_reseal(obj.p);
	assert_int_equal(decode(obj.p, obj.n, OBJ_SIZE_UNKNOWN, &out, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "was written by a newer walship (format 2)"));
	assert_non_null(strstr(err.hint, "Upgrade walship"));
	assert_int_equal(obj_header_parse(obj.p, OBJ_HEADER_SIZE, &size, &err), WS_FATAL);

	/* A newer, longer header (frame size 24) is still "newer", not corrupt. */
	put32(obj.p + 4, 24);
	assert_int_equal(obj_header_parse(obj.p, OBJ_HEADER_SIZE, &size, &err), WS_FATAL);
	put32(obj.p + 4, 20);

	obj.p[12] = 1;
	obj.p[14] = 0x01; /* encrypted */
	header_reseal(obj.p);
	assert_int_equal(decode(obj.p, obj.n, OBJ_SIZE_UNKNOWN, &out, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "is encrypted"));

	obj.p[14] = 0x04;
	header_reseal(obj.p);
	assert_int_equal(decode(obj.p, obj.n, OBJ_SIZE_UNKNOWN, &out, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "unknown flags 0x0004"));
	assert_int_equal(out.n, 0);
	free(out.p);
	free(obj.p);
	free(data);
}

static void test_header_and_trailer_parse(void **state)
{
	(void)state;
	unsigned char *data = make_walish(12345);
	Buf obj = encode(data, 12345, true);
	unsigned char sha[32], got_sha[32];
	uint64_t size = 0;
	WsError err;
	sha256_of(data, 12345, sha);

	assert_int_equal(obj_header_parse(obj.p, OBJ_HEADER_SIZE, &size, &err), 0);
	assert_int_equal(size, 12345);
	assert_int_equal(obj_header_parse(obj.p, OBJ_HEADER_SIZE - 1, &size, &err), WS_CORRUPT);
	/* The trailer is the last 60 bytes of whatever tail is passed. */
	assert_int_equal(obj_trailer_parse(obj.p, obj.n, &size, got_sha, &err), 0);
	assert_int_equal(size, 12345);
	assert_memory_equal(got_sha, sha, 32);
	assert_int_equal(obj_trailer_parse(obj.p + obj.n - 59, 59, &size, got_sha, &err), WS_CORRUPT);

	for (size_t i = 0; i < OBJ_HEADER_SIZE; i++) {
		obj.p[i] ^= 0x10;
		if (obj_header_parse(obj.p, OBJ_HEADER_SIZE, &size, &err) == 0)
			fail_msg("header flip at %zu accepted", i);
		obj.p[i] ^= 0x10;
	}
	unsigned char *trl = obj.p + obj.n - OBJ_TRAILER_SIZE;
	for (size_t i = 0; i < OBJ_TRAILER_SIZE; i++) {
		/* The body CRC field is checked against the body only by the decoder. */
		if (i >= 52 && i < 56)
			continue;
		trl[i] ^= 0x10;
		if (obj_trailer_parse(trl, OBJ_TRAILER_SIZE, &size, got_sha, &err) == 0)
			fail_msg("trailer flip at %zu accepted", i);
		trl[i] ^= 0x10;
	}
	memcpy(trl, "garbage!", 8);
	assert_int_equal(obj_trailer_parse(trl, OBJ_TRAILER_SIZE, &size, got_sha, &err), WS_CORRUPT);
	obj.p[0] = 'P';
	assert_int_equal(obj_header_parse(obj.p, OBJ_HEADER_SIZE, &size, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "not a walship object"));
	free(obj.p);
	free(data);
}

static void test_plain_zstd_file_is_not_an_object(void **state)
{
	(void)state;
	unsigned char *data = make_walish(1000);
	Buf obj = encode(data, 1000, true);
	Buf out = {0};
	WsError err;
	/* The bare content frame, as `zstd` would write it. */
	assert_int_equal(decode(obj.p + OBJ_HEADER_SIZE, obj.n - OBJ_HEADER_SIZE - OBJ_TRAILER_SIZE,
				OBJ_SIZE_UNKNOWN, &out, &err),
			 WS_CORRUPT);
	assert_non_null(strstr(err.msg, "not a walship object"));
	assert_non_null(strstr(err.detail, "28 b5 2f fd"));
	free(out.p);
	free(obj.p);
	free(data);
}

/* ---- memory ---- */

typedef struct GenReader {
	uint64_t left;
	uint64_t counter;
	unsigned char page[8192];
} GenReader;

/* Endless WAL-like pages without holding the content anywhere. */
static int gen_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err)
{
	(void)err;
	GenReader *g = ctx;
	size_t n = cap < g->left ? cap : (size_t)g->left;
	for (size_t off = 0; off < n;) {
		size_t k = n - off < sizeof(g->page) ? n - off : sizeof(g->page);
		g->counter++;
		memcpy(g->page, &g->counter, sizeof(g->counter));
		g->page[100 + g->counter % 4000] ^= (unsigned char)g->counter;
		memcpy(buf + off, g->page, k);
		off += k;
	}
	g->left -= n;
	*got = n;
	return 0;
}

static int count_write(void *ctx, const unsigned char *p, size_t n, WsError *err)
{
	(void)p;
	(void)err;
	*(uint64_t *)ctx += n;
	return 0;
}

static long maxrss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/*
 * In a child, so the peak resident size is ours alone: encode 256 MiB from a
 * generator straight into a decoder, and check the peak grew by less than 16 MiB.
 */
static void test_memory_does_not_grow_with_content(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ObjEncoder *enc = obj_encoder_new(3);
		ObjDecoder *dec = obj_decoder_new();
		GenReader *g = calloc(1, sizeof(*g));
		unsigned char *chunk = malloc(256 * 1024);
		uint64_t written = 0;
		WsError err;
		ObjInfo info;
		size_t got;
		int rc = 0;
		memset(g->page, 0x5A, sizeof(g->page));

		/* Warm up with a small object: library set-up is not what we measure. */
		g->left = 4 * MIB;
		obj_encoder_reset(enc, gen_read, g, OBJ_SIZE_UNKNOWN);
		do
			rc |= obj_encoder_read(enc, chunk, 256 * 1024, &got, &err);
		while (rc == 0 && got > 0);
		long base = maxrss_kib();

		g->left = 256ull * MIB;
		obj_encoder_reset(enc, gen_read, g, 256ull * MIB);
		obj_decoder_reset(dec, OBJ_SIZE_UNKNOWN, count_write, &written, "mem");
		do {
			rc |= obj_encoder_read(enc, chunk, 256 * 1024, &got, &err);
			if (rc == 0 && got > 0)
				rc |= obj_decoder_write(dec, chunk, got, &err);
		} while (rc == 0 && got > 0);
		if (rc == 0)
			rc = obj_decoder_finish(dec, &info, &err);
		long grown = maxrss_kib() - base;
		if (rc != 0) {
			fprintf(stderr, "memory test: %s\n", err.msg);
			_exit(2);
		}
		if (info.content_size != 256ull * MIB || written != 256ull * MIB)
			_exit(3);
		if (grown >= 16 * 1024) {
			fprintf(stderr, "memory test: peak grew by %ld KiB\n", grown);
			_exit(4);
		}
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_sizes_known_and_unknown),
		cmocka_unit_test(test_roundtrip_levels_and_workers),
		cmocka_unit_test(test_walish_content_is_compressed),
		cmocka_unit_test(test_zstd_cli_decompresses_object),
		cmocka_unit_test(test_every_single_byte_flip_of_small_object_detected),
		cmocka_unit_test(test_byte_flips_of_1mib_object_detected),
		cmocka_unit_test(test_truncation_at_every_position_detected),
		cmocka_unit_test(test_trailing_data_refused),
		cmocka_unit_test(test_second_zstd_frame_refused),
		cmocka_unit_test(test_missing_content_frame_refused),
		cmocka_unit_test(test_sha256_mismatch_reported_with_both_values),
		cmocka_unit_test(test_size_disagreements_refused),
		cmocka_unit_test(test_decoding_stops_at_recorded_size),
		cmocka_unit_test(test_header_size_above_cap_refused_before_content),
		cmocka_unit_test(test_one_byte_reads_and_writes),
		cmocka_unit_test(test_short_reads_from_input),
		cmocka_unit_test(test_encoder_reuse_gives_identical_bytes),
		cmocka_unit_test(test_plain_format_unchanged_after_encryption_was_used),
		cmocka_unit_test(test_encoder_reports_input_size_mismatch),
		cmocka_unit_test(test_reader_error_passed_through),
		cmocka_unit_test(test_writer_error_passed_through_and_sticky),
		cmocka_unit_test(test_newer_format_and_flags_refused),
		cmocka_unit_test(test_header_and_trailer_parse),
		cmocka_unit_test(test_plain_zstd_file_is_not_an_object),
		cmocka_unit_test(test_memory_does_not_grow_with_content),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
