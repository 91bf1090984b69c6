/*
 * object.c - walship's object format (see object.h): an encoder that hashes
 * and compresses in one pass as it is read from, and a decoder that checks
 * every stored byte as it is written to.  Both keep fixed buffers and reuse
 * their zstd and digest contexts across objects, so memory does not grow with
 * the content and a hook process pays the set-up cost once.  An encrypted
 * object's zstd frame passes through one chunk buffer, sealed in place
 * (encoder) or opened and verified in place before zstd sees it (decoder).
 */
#include "repo/object.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <zstd.h>

#include "util/crc32c.h"
#include "util/mem.h"
#include "util/shapipe.h"

#define HDR_MAGIC          0x184D2A5Eu
#define TRL_MAGIC          0x184D2A5Fu
#define HDR_FRAME_SIZE     20u
#define HDR_FRAME_SIZE_ENC 52u
#define TRL_FRAME_SIZE     52u
#define FLAG_ENCRYPTED     0x0001u
#define CHUNK_FINAL        0x80000000u
#define CHUNK_STORED_MAX   (4 + CRYPT_CHUNK + CRYPT_TAG_SIZE)

/*
 * Content is read (encoder) or decompressed (decoder) into a ring of buffers
 * of this size that a second thread hashes while zstd works on them.
 */
#define PIPE_CHUNK (256 * 1024)
#define PIPE_BUFS  4

/*
 * zstd worker threads by default.  On a 2-core machine with SHA-NI, 16 MiB of
 * pgbench WAL at level 3 encoded at about 370 MB/s inline, 470 MB/s with one
 * worker and 540 MB/s with two (the caller reads and hashes while both
 * compress), for about the same CPU time; levels 1 and 6 ranked the same.
 * With the other core busy, two workers were about even with inline.
 */
#define ENC_DEFAULT_WORKERS 2

/*
 * Size of a worker's job.  zstd's default (4 window sizes) buffers 8 MiB per
 * job at level 3.  768 KiB kept walship-push's peak RSS under 14 MB on
 * incompressible segments (16-20 MB with 1 MiB jobs) at the same speed and a
 * ratio within 1%; 512 KiB was slower.
 */
#define ENC_JOB_SIZE (768 * 1024)

static const unsigned char zstd_magic[4] = {0x28, 0xB5, 0x2F, 0xFD};

enum { ENC_HEADER, ENC_BODY, ENC_TRAILER, ENC_DONE, ENC_FAILED };
enum { DEC_HEADER, DEC_FRAME, DEC_CHUNK, DEC_TRAILER, DEC_DONE };

struct ObjEncoder {
	ZSTD_CCtx *cctx;
	ShaPipe *pipe;
	int workers;
	ZSTD_inBuffer in;
	bool in_eof;
	WsReader reader;
	void *reader_ctx;
	uint64_t expected;
	uint64_t read_total;
	uint64_t emitted;
	uint32_t crc;
	int phase;
	unsigned char image[OBJ_TRAILER_SIZE]; /* the header, later the trailer */
	size_t image_len;
	size_t image_pos;
	unsigned char sha256[32];
	WsError fail; /* why the object could not be started */
	/* Encryption: the key and name set for later objects, and this object's state. */
	const CryptKey *key;
	char *name;
	bool encrypting;
	CryptObject *crypt;
	unsigned char header[OBJ_HEADER_SIZE_ENCRYPTED]; /* kept for the trailer's HMAC */
	unsigned char *cbuf;                             /* length word, chunk, tag */
	size_t clen, cpos;
	uint64_t chunk_index;
	bool frame_ended;
	bool sealed_final;
};

struct ObjDecoder {
	ZSTD_DCtx *dctx;
	ShaPipe *pipe;
	WsWriter out;
	void *out_ctx;
	char what[256];
	uint64_t max_size;
	uint64_t limit; /* content may not exceed this */
	uint64_t hdr_size;
	uint64_t produced;
	uint64_t stored;
	uint32_t crc;
	int state;
	size_t magic_seen; /* bytes of the content frame's zstd magic checked so far */
	unsigned char image[OBJ_TRAILER_SIZE];
	size_t image_len;
	size_t hdr_want; /* bytes of header to collect: 28, or 60 for an encrypted one */
	bool frame_done;
	uint64_t trl_size;
	unsigned char sha256[32];
	bool failed;
	WsError fail;
	/* Encryption: the key and name set for later objects, and this object's state. */
	const CryptKey *key;
	char *name;
	bool encrypted;
	CryptObject *crypt;
	unsigned char header[OBJ_HEADER_SIZE_ENCRYPTED];
	unsigned char *cbuf;
	size_t cfill, cneed;
	uint64_t chunk_index;
	bool chunk_final;
};

static void put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get_u16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* "object "X"" or "object" for messages. */
static const char *object_name(const char *what, char *buf, size_t size)
{
	if (what == NULL || what[0] == '\0')
		return "object";
	snprintf(buf, size, "object \"%s\"", what);
	return buf;
}

static int corrupt(WsError *err, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* WS_CORRUPT with the message "object "X" is corrupt: <fmt>". */
static int corrupt(WsError *err, const char *what, const char *fmt, ...)
{
	char name[300];
	char text[WS_ERROR_TEXT];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return ws_error(err, WS_CORRUPT, "%s is corrupt: %s", object_name(what, name, sizeof(name)), text);
}

/*
 * b holds OBJ_HEADER_SIZE bytes, or OBJ_HEADER_SIZE_ENCRYPTED when its frame
 * size says it is an encrypted header.  want_encrypted: the repository is
 * encrypted.  *encrypted and salt (may be NULL) describe the object.
 */
static int parse_header(const unsigned char *b, const char *what, bool want_encrypted, uint64_t *content_size,
			bool *encrypted, unsigned char *salt, WsError *err)
{
	char name[300];
	uint32_t fsize = get_u32(b + 4);
	uint16_t version = get_u16(b + 12);
	uint16_t flags = get_u16(b + 14);
	bool known_size = fsize == HDR_FRAME_SIZE || fsize == HDR_FRAME_SIZE_ENC;
	bool crc_ok = fsize == HDR_FRAME_SIZE       ? crc32c(b + 8, 16) == get_u32(b + 24)
		      : fsize == HDR_FRAME_SIZE_ENC ? crc32c(b + 8, 48) == get_u32(b + 56)
						    : false;

	if (get_u32(b) != HDR_MAGIC) {
		int rc = corrupt(err, what, "not a walship object (no header frame)");
		ws_error_detail(err, "The object starts with the bytes %02x %02x %02x %02x.", b[0], b[1],
				b[2], b[3]);
		return rc;
	}
	if (memcmp(b + 8, "WSHP", 4) != 0)
		return corrupt(err, what, "not a walship object (the header tag is not \"WSHP\")");
	/* A later format may have a longer header; only a damaged one of ours fails its CRC. */
	if (version > OBJ_FORMAT_VERSION && (!known_size || crc_ok)) {
		ws_error(err, WS_FATAL, "%s was written by a newer walship (format %u)",
			 object_name(what, name, sizeof(name)), version);
		ws_error_detail(err, "This walship reads object format %d.", OBJ_FORMAT_VERSION);
		ws_error_hint(err, "Upgrade walship to a version that supports object format %u.", version);
		return WS_FATAL;
	}
	if (!known_size)
		return corrupt(err, what, "header frame has %" PRIu32 " bytes, expected %u", fsize,
			       want_encrypted ? HDR_FRAME_SIZE_ENC : HDR_FRAME_SIZE);
	if (!crc_ok)
		return corrupt(err, what, "header checksum mismatch");
	if (version == 0)
		return corrupt(err, what, "header has format version 0");
	if (flags & FLAG_ENCRYPTED && !want_encrypted) {
		ws_error(err, WS_FATAL, "%s is encrypted, but the repository is not",
			 object_name(what, name, sizeof(name)));
		ws_error_detail(err, "walship.json of the repository has no encryption, so no object in it "
				     "should be encrypted.");
		ws_error_hint(err, "Check where the object came from: it may have been copied from an "
				   "encrypted repository.");
		return WS_FATAL;
	}
	if (flags & ~FLAG_ENCRYPTED)
		return corrupt(err, what, "header has unknown flags 0x%04x", (unsigned)flags);
	if (!(flags & FLAG_ENCRYPTED) && want_encrypted) {
		ws_error(err, WS_CORRUPT, "%s is not encrypted, but the repository is",
			 object_name(what, name, sizeof(name)));
		ws_error_detail(err,
				"walship encrypts every object of an encrypted repository: this one was "
				"put there by something else, or copied from an unencrypted repository.");
		return WS_CORRUPT;
	}
	if (fsize != (want_encrypted ? HDR_FRAME_SIZE_ENC : HDR_FRAME_SIZE))
		return corrupt(err, what, "header frame has %" PRIu32 " bytes, expected %u", fsize,
			       want_encrypted ? HDR_FRAME_SIZE_ENC : HDR_FRAME_SIZE);
	*content_size = get_u64(b + 16);
	if (encrypted != NULL)
		*encrypted = want_encrypted;
	if (salt != NULL && want_encrypted)
		memcpy(salt, b + 24, CRYPT_SALT_SIZE);
	return 0;
}

static int parse_trailer(const unsigned char *b, const char *what, uint64_t *content_size,
			 unsigned char sha256[32], uint32_t *body_crc, WsError *err)
{
	uint32_t fsize = get_u32(b + 4);
	if (get_u32(b) != TRL_MAGIC)
		return corrupt(err, what, "trailer frame missing after the compressed content");
	if (fsize != TRL_FRAME_SIZE)
		return corrupt(err, what, "trailer frame has %" PRIu32 " bytes, expected %u", fsize,
			       TRL_FRAME_SIZE);
	if (memcmp(b + 8, "WSTR", 4) != 0)
		return corrupt(err, what, "the trailer tag is not \"WSTR\"");
	if (crc32c(b, 56) != get_u32(b + 56))
		return corrupt(err, what, "trailer checksum mismatch");
	*content_size = get_u64(b + 12);
	memcpy(sha256, b + 20, 32);
	*body_crc = get_u32(b + 52);
	return 0;
}

int obj_header_parse(const unsigned char *buf, size_t len, uint64_t *content_size, WsError *err)
{
	size_t want = OBJ_HEADER_SIZE;
	if (len >= 8 && get_u32(buf + 4) == HDR_FRAME_SIZE_ENC)
		want = OBJ_HEADER_SIZE_ENCRYPTED;
	if (len < want)
		return corrupt(err, NULL, "header has %zu bytes, expected %zu", len, want);
	return parse_header(buf, NULL, false, content_size, NULL, NULL, err);
}

int obj_trailer_parse(const unsigned char *buf, size_t len, uint64_t *content_size, unsigned char sha256[32],
		      WsError *err)
{
	uint32_t body_crc;
	if (len < OBJ_TRAILER_SIZE)
		return corrupt(err, NULL, "trailer has %zu bytes, expected %d", len, OBJ_TRAILER_SIZE);
	return parse_trailer(buf + len - OBJ_TRAILER_SIZE, NULL, content_size, sha256, &body_crc, err);
}

/* ---- encoder ---- */

ObjEncoder *obj_encoder_new(int level)
{
	ObjEncoder *enc = xcalloc(1, sizeof(*enc));
	enc->cctx = xneed(ZSTD_createCCtx(), "a zstd compression context");
	enc->pipe = sha_pipe_new(PIPE_CHUNK, PIPE_BUFS);
	/* Level and checksum survive the per-object session resets. */
	(void)ZSTD_CCtx_setParameter(enc->cctx, ZSTD_c_compressionLevel, level);
	(void)ZSTD_CCtx_setParameter(enc->cctx, ZSTD_c_checksumFlag, 1);
	enc->workers = ENC_DEFAULT_WORKERS;
	enc->phase = ENC_DONE;
	return enc;
}

void obj_encoder_free(ObjEncoder *enc)
{
	if (enc == NULL)
		return;
	ZSTD_freeCCtx(enc->cctx);
	sha_pipe_free(enc->pipe);
	crypt_object_free(enc->crypt);
	free(enc->cbuf);
	free(enc->name);
	free(enc);
}

void obj_encoder_set_workers(ObjEncoder *enc, int n)
{
	enc->workers = n < 0 ? 0 : n;
}

void obj_encoder_set_crypt(ObjEncoder *enc, const CryptKey *key, const char *name)
{
	free(enc->name);
	enc->name = xstrdup(name ? name : "");
	enc->key = key;
	if (key != NULL && enc->crypt == NULL) {
		enc->crypt = crypt_object_new();
		enc->cbuf = xmalloc(CHUNK_STORED_MAX);
	}
}

void obj_encoder_reset(ObjEncoder *enc, WsReader in, void *in_ctx, uint64_t content_size)
{
	unsigned char *h = enc->image;

	ZSTD_CCtx_reset(enc->cctx, ZSTD_reset_session_only);
	/* A libzstd built without threads refuses workers: it then compresses inline. */
	if (ZSTD_isError(ZSTD_CCtx_setParameter(enc->cctx, ZSTD_c_nbWorkers, enc->workers)))
		(void)ZSTD_CCtx_setParameter(enc->cctx, ZSTD_c_nbWorkers, 0);
	else if (enc->workers > 0)
		(void)ZSTD_CCtx_setParameter(enc->cctx, ZSTD_c_jobSize, ENC_JOB_SIZE);
	if (content_size != OBJ_SIZE_UNKNOWN)
		(void)ZSTD_CCtx_setPledgedSrcSize(enc->cctx, content_size);
	sha_pipe_reset(enc->pipe);

	enc->reader = in;
	enc->reader_ctx = in_ctx;
	enc->expected = content_size;
	enc->read_total = 0;
	enc->emitted = 0;
	enc->in.src = NULL;
	enc->in.size = 0;
	enc->in.pos = 0;
	enc->in_eof = false;
	enc->crc = CRC32C_INIT;
	memset(enc->sha256, 0, sizeof(enc->sha256));
	ws_error_clear(&enc->fail);
	enc->encrypting = enc->key != NULL;
	enc->clen = 0;
	enc->cpos = 0;
	enc->chunk_index = 0;
	enc->frame_ended = false;
	enc->sealed_final = false;

	put_u32(h, HDR_MAGIC);
	put_u32(h + 4, enc->encrypting ? HDR_FRAME_SIZE_ENC : HDR_FRAME_SIZE);
	memcpy(h + 8, "WSHP", 4);
	put_u16(h + 12, OBJ_FORMAT_VERSION);
	put_u16(h + 14, enc->encrypting ? FLAG_ENCRYPTED : 0);
	put_u64(h + 16, content_size);
	if (enc->encrypting) {
		crypt_random(h + 24, CRYPT_SALT_SIZE);
		put_u32(h + 56, crc32c(h + 8, 48));
		enc->image_len = OBJ_HEADER_SIZE_ENCRYPTED;
		memcpy(enc->header, h, OBJ_HEADER_SIZE_ENCRYPTED);
	} else {
		put_u32(h + 24, crc32c(h + 8, 16));
		enc->image_len = OBJ_HEADER_SIZE;
	}
	enc->image_pos = 0;
	enc->phase = ENC_HEADER;
	/* The reader reports a failure here at its first call: reset has no error to return. */
	if (enc->encrypting &&
	    crypt_object_start(enc->crypt, enc->key, h + 24, enc->name, true, &enc->fail) != 0)
		enc->phase = ENC_FAILED;
}

static int encoder_refill(ObjEncoder *enc, WsError *err)
{
	size_t got = 0;
	unsigned char *buf = sha_pipe_acquire(enc->pipe);
	int rc = enc->reader(enc->reader_ctx, buf, PIPE_CHUNK, &got, err);
	if (rc < 0)
		return rc;
	enc->in.src = buf;
	enc->in.size = got;
	enc->in.pos = 0;
	if (got == 0) {
		enc->in_eof = true;
		if (enc->expected != OBJ_SIZE_UNKNOWN && enc->read_total != enc->expected)
			return ws_error(err, WS_FATAL,
					"file changed while being read: expected %" PRIu64
					" bytes, read %" PRIu64,
					enc->expected, enc->read_total);
		return 0;
	}
	enc->read_total += got;
	if (enc->expected != OBJ_SIZE_UNKNOWN && enc->read_total > enc->expected)
		return ws_error(err, WS_FATAL,
				"file changed while being read: expected %" PRIu64
				" bytes, read at least %" PRIu64,
				enc->expected, enc->read_total);
	/* Hashed on the pipe's thread while zstd compresses the same bytes here. */
	/* Hashed on the pipe's thread while zstd compresses the same bytes here. */
	sha_pipe_submit(enc->pipe, got);
	return 0;
}

static void encoder_build_trailer(ObjEncoder *enc)
{
	unsigned char *t = enc->image;
	sha_pipe_final(enc->pipe, enc->sha256);
	put_u32(t, TRL_MAGIC);
	put_u32(t + 4, TRL_FRAME_SIZE);
	memcpy(t + 8, "WSTR", 4);
	put_u64(t + 12, enc->read_total);
	if (enc->encrypting)
		crypt_object_mac(enc->crypt, enc->header, OBJ_HEADER_SIZE_ENCRYPTED, enc->read_total,
				 enc->sha256, t + 20);
	else
		memcpy(t + 20, enc->sha256, 32);
	put_u32(t + 52, crc32c_final(enc->crc));
	put_u32(t + 56, crc32c(t, 56));
	enc->image_len = OBJ_TRAILER_SIZE;
	enc->image_pos = 0;
}

/* Compressed bytes into out until it is full or the frame has ended. */
static int encoder_body(ObjEncoder *enc, unsigned char *out, size_t cap, size_t *produced, WsError *err)
{
	ZSTD_outBuffer ob = {out, cap, 0};
	int rc = 0;
	for (;;) {
		if (enc->in.pos == enc->in.size && !enc->in_eof) {
			rc = encoder_refill(enc, err);
			if (rc < 0)
				break;
		}
		ZSTD_EndDirective mode = enc->in_eof ? ZSTD_e_end : ZSTD_e_continue;
		size_t r = ZSTD_compressStream2(enc->cctx, &ob, &enc->in, mode);
		if (ZSTD_isError(r)) {
			rc = ws_error(err, WS_FATAL, "could not compress: %s", ZSTD_getErrorName(r));
			break;
		}
		if (mode == ZSTD_e_end && r == 0) {
			enc->crc = crc32c_update(enc->crc, out, ob.pos);
			encoder_build_trailer(enc);
			enc->phase = ENC_TRAILER;
			break;
		}
		if (ob.pos == ob.size)
			break;
	}
	if (enc->phase == ENC_BODY)
		enc->crc = crc32c_update(enc->crc, out, ob.pos);
	*produced = ob.pos;
	return rc;
}

/*
 * Compress into the chunk buffer until it is full or the frame has ended,
 * then seal it in place.  Every chunk but the final one is full; a frame
 * that ends exactly at a chunk's end is followed by an empty final chunk.
 */
static int encoder_seal_chunk(ObjEncoder *enc, WsError *err)
{
	unsigned char *plain = enc->cbuf + 4;
	ZSTD_outBuffer ob = {plain, CRYPT_CHUNK, 0};
	while (!enc->frame_ended) {
		if (enc->in.pos == enc->in.size && !enc->in_eof) {
			int rc = encoder_refill(enc, err);
			if (rc < 0)
				return rc;
		}
		ZSTD_EndDirective mode = enc->in_eof ? ZSTD_e_end : ZSTD_e_continue;
		size_t r = ZSTD_compressStream2(enc->cctx, &ob, &enc->in, mode);
		if (ZSTD_isError(r))
			return ws_error(err, WS_FATAL, "could not compress: %s", ZSTD_getErrorName(r));
		if (mode == ZSTD_e_end && r == 0)
			enc->frame_ended = true;
		else if (ob.pos == ob.size)
			break;
	}
	bool final = enc->frame_ended && ob.pos < CRYPT_CHUNK;
	int rc = crypt_object_seal(enc->crypt, enc->chunk_index, final, plain, ob.pos, plain + ob.pos, err);
	if (rc < 0)
		return rc;
	put_u32(enc->cbuf, (uint32_t)ob.pos | (final ? CHUNK_FINAL : 0));
	enc->chunk_index++;
	enc->clen = 4 + ob.pos + CRYPT_TAG_SIZE;
	enc->cpos = 0;
	enc->sealed_final = final;
	return 0;
}

/* Sealed chunks into out until it is full or the final chunk has gone out. */
static int encoder_body_encrypted(ObjEncoder *enc, unsigned char *out, size_t cap, size_t *produced,
				  WsError *err)
{
	size_t n = 0;
	int rc = 0;
	while (n < cap) {
		if (enc->cpos == enc->clen) {
			if (enc->sealed_final) {
				encoder_build_trailer(enc);
				enc->phase = ENC_TRAILER;
				break;
			}
			if ((rc = encoder_seal_chunk(enc, err)) < 0)
				break;
		}
		size_t k = enc->clen - enc->cpos;
		if (k > cap - n)
			k = cap - n;
		memcpy(out + n, enc->cbuf + enc->cpos, k);
		enc->crc = crc32c_update(enc->crc, out + n, k);
		enc->cpos += k;
		n += k;
	}
	*produced = n;
	return rc;
}

int obj_encoder_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err)
{
	ObjEncoder *enc = ctx;
	size_t n = 0;
	*got = 0;
	if (enc->phase == ENC_FAILED) {
		if (enc->fail.cls != WS_OK) {
			if (err != NULL)
				*err = enc->fail;
			return enc->fail.cls;
		}
		return ws_error(err, WS_FATAL, "object encoder read after an earlier error");
	}
	while (n < cap && enc->phase != ENC_DONE) {
		if (enc->phase == ENC_BODY) {
			size_t k = 0;
			int rc = enc->encrypting ? encoder_body_encrypted(enc, buf + n, cap - n, &k, err)
						 : encoder_body(enc, buf + n, cap - n, &k, err);
			if (rc < 0) {
				enc->phase = ENC_FAILED;
				return rc;
			}
			n += k;
		} else {
			size_t k = enc->image_len - enc->image_pos;
			if (k > cap - n)
				k = cap - n;
			memcpy(buf + n, enc->image + enc->image_pos, k);
			if (enc->phase == ENC_HEADER)
				enc->crc = crc32c_update(enc->crc, buf + n, k);
			enc->image_pos += k;
			n += k;
			if (enc->image_pos == enc->image_len)
				enc->phase = enc->phase == ENC_HEADER ? ENC_BODY : ENC_DONE;
		}
	}
	enc->emitted += n;
	*got = n;
	return 0;
}

void obj_encoder_info(const ObjEncoder *enc, ObjInfo *info)
{
	info->content_size = enc->read_total;
	memcpy(info->sha256, enc->sha256, sizeof(info->sha256));
	info->stored_size = enc->emitted;
}

/* ---- decoder ---- */

ObjDecoder *obj_decoder_new(void)
{
	ObjDecoder *dec = xcalloc(1, sizeof(*dec));
	dec->dctx = xneed(ZSTD_createDCtx(), "a zstd decompression context");
	dec->pipe = sha_pipe_new(PIPE_CHUNK, PIPE_BUFS);
	dec->state = DEC_DONE;
	return dec;
}

void obj_decoder_free(ObjDecoder *dec)
{
	if (dec == NULL)
		return;
	ZSTD_freeDCtx(dec->dctx);
	sha_pipe_free(dec->pipe);
	crypt_object_free(dec->crypt);
	free(dec->cbuf);
	free(dec->name);
	free(dec);
}

void obj_decoder_reset(ObjDecoder *dec, uint64_t max_size, WsWriter out, void *out_ctx, const char *what)
{
	ZSTD_DCtx_reset(dec->dctx, ZSTD_reset_session_only);
	sha_pipe_reset(dec->pipe);
	dec->out = out;
	dec->out_ctx = out_ctx;
	snprintf(dec->what, sizeof(dec->what), "%s", what ? what : "");
	dec->max_size = max_size;
	dec->limit = max_size;
	dec->hdr_size = OBJ_SIZE_UNKNOWN;
	dec->produced = 0;
	dec->stored = 0;
	dec->crc = CRC32C_INIT;
	dec->state = DEC_HEADER;
	dec->magic_seen = 0;
	dec->image_len = 0;
	dec->hdr_want = OBJ_HEADER_SIZE;
	dec->frame_done = false;
	dec->encrypted = false;
	dec->cfill = 0;
	dec->cneed = 4;
	dec->chunk_index = 0;
	dec->chunk_final = false;
	dec->trl_size = 0;
	memset(dec->sha256, 0, sizeof(dec->sha256));
	dec->failed = false;
	ws_error_clear(&dec->fail);
}

void obj_decoder_set_crypt(ObjDecoder *dec, const CryptKey *key, const char *name)
{
	free(dec->name);
	dec->name = xstrdup(name ? name : "");
	dec->key = key;
	if (key != NULL && dec->crypt == NULL) {
		dec->crypt = crypt_object_new();
		dec->cbuf = xmalloc(CHUNK_STORED_MAX);
	}
}

static int decoder_header_done(ObjDecoder *dec, WsError *err)
{
	unsigned char salt[CRYPT_SALT_SIZE];
	int rc = parse_header(dec->image, dec->what, dec->key != NULL, &dec->hdr_size, &dec->encrypted, salt,
			      err);
	if (rc < 0)
		return rc;
	if (dec->encrypted) {
		memcpy(dec->header, dec->image, OBJ_HEADER_SIZE_ENCRYPTED);
		if ((rc = crypt_object_start(dec->crypt, dec->key, salt, dec->name, false, err)) < 0)
			return rc;
	}
	if (dec->hdr_size != OBJ_SIZE_UNKNOWN && dec->hdr_size > dec->max_size)
		return corrupt(err, dec->what,
			       "header records %" PRIu64 " bytes of content, more than the limit of %" PRIu64,
			       dec->hdr_size, dec->max_size);
	if (dec->hdr_size < dec->limit)
		dec->limit = dec->hdr_size;
	dec->state = dec->encrypted ? DEC_CHUNK : DEC_FRAME;
	dec->image_len = 0;
	return 0;
}

static int decoder_trailer_done(ObjDecoder *dec, WsError *err)
{
	unsigned char recorded[32];
	char hex_rec[65], hex_comp[65];
	uint32_t body_crc;
	int rc = parse_trailer(dec->image, dec->what, &dec->trl_size, recorded, &body_crc, err);
	if (rc < 0)
		return rc;
	if (dec->hdr_size != OBJ_SIZE_UNKNOWN && dec->hdr_size != dec->trl_size)
		return corrupt(err, dec->what,
			       "header records %" PRIu64 " bytes of content, trailer %" PRIu64, dec->hdr_size,
			       dec->trl_size);
	if (dec->trl_size != dec->produced)
		return corrupt(err, dec->what,
			       "trailer records %" PRIu64 " bytes of content, decompressed %" PRIu64,
			       dec->trl_size, dec->produced);
	if (body_crc != crc32c_final(dec->crc)) {
		rc = corrupt(err, dec->what, "CRC-32C mismatch");
		ws_error_detail(err, "Recorded %08" PRIx32 ", computed %08" PRIx32 ".", body_crc,
				crc32c_final(dec->crc));
		return rc;
	}
	sha_pipe_final(dec->pipe, dec->sha256);
	if (dec->encrypted) {
		unsigned char mac[32];
		crypt_object_mac(dec->crypt, dec->header, OBJ_HEADER_SIZE_ENCRYPTED, dec->trl_size,
				 dec->sha256, mac);
		if (CRYPTO_memcmp(mac, recorded, sizeof(mac)) != 0) {
			rc = corrupt(err, dec->what, "HMAC mismatch in the trailer");
			ws_error_detail(err,
					"The object was changed after walship wrote it, or it was written "
					"under another name or in another repository.");
			return rc;
		}
		dec->state = DEC_DONE;
		return 0;
	}
	if (memcmp(recorded, dec->sha256, 32) != 0) {
		hex_encode(recorded, 32, hex_rec);
		hex_encode(dec->sha256, 32, hex_comp);
		rc = corrupt(err, dec->what, "SHA-256 mismatch");
		ws_error_detail(err, "Recorded %s, computed %s.", hex_rec, hex_comp);
		return rc;
	}
	dec->state = DEC_DONE;
	return 0;
}

/* Feed compressed bytes to zstd; *used stops at the end of the frame. */
static int decoder_frame(ObjDecoder *dec, const unsigned char *p, size_t n, size_t *used, WsError *err)
{
	ZSTD_inBuffer in = {p, n, 0};
	int rc = 0;

	/* zstd would skip a skippable frame here silently: the content must be a real frame. */
	for (size_t i = 0; dec->magic_seen < sizeof(zstd_magic) && i < n; i++, dec->magic_seen++)
		if (p[i] != zstd_magic[dec->magic_seen])
			return corrupt(err, dec->what, "no zstd frame after the header");

	for (;;) {
		unsigned char *chunk = sha_pipe_acquire(dec->pipe);
		ZSTD_outBuffer ob = {chunk, PIPE_CHUNK, 0};
		size_t r = ZSTD_decompressStream(dec->dctx, &ob, &in);
		if (ZSTD_isError(r)) {
			rc = corrupt(err, dec->what, "could not decompress: %s", ZSTD_getErrorName(r));
			break;
		}
		if (ob.pos > 0) {
			if (ob.pos > dec->limit - dec->produced) {
				if (dec->limit == dec->hdr_size)
					rc = corrupt(err, dec->what,
						     "decompressed size exceeds the recorded size of %" PRIu64
						     " bytes",
						     dec->hdr_size);
				else
					rc = corrupt(err, dec->what,
						     "decompressed size exceeds the limit of %" PRIu64
						     " bytes",
						     dec->limit);
				break;
			}
			/* Hashed on the pipe's thread while the chunk is written out here. */
			sha_pipe_submit(dec->pipe, ob.pos);
			dec->produced += ob.pos;
			rc = dec->out(dec->out_ctx, chunk, ob.pos, err);
			if (rc < 0)
				break;
		}
		if (r == 0) {
			dec->frame_done = true;
			break;
		}
		if (in.pos == in.size && ob.pos < ob.size)
			break;
	}
	*used = in.pos;
	return rc;
}

/* The chunk collected in cbuf: verify and decrypt it, then decompress it. */
static int decoder_chunk_done(ObjDecoder *dec, WsError *err)
{
	size_t len = dec->cneed - 4 - CRYPT_TAG_SIZE, off = 0;
	unsigned char *plain = dec->cbuf + 4;
	int rc = crypt_object_open(dec->crypt, dec->chunk_index, dec->chunk_final, plain, len, plain + len,
				   err);
	if (rc == WS_CORRUPT) {
		rc = corrupt(err, dec->what, "chunk %" PRIu64 " failed authentication", dec->chunk_index);
		ws_error_detail(
			err, "The object was changed after walship wrote it, it was encrypted with "
			     "another key, or it was written under another name or in another repository.");
		return rc;
	}
	if (rc < 0)
		return rc;
	while (off < len) {
		size_t k = 0;
		if (dec->frame_done)
			return corrupt(err, dec->what, "data after the compressed content");
		if ((rc = decoder_frame(dec, plain + off, len - off, &k, err)) < 0)
			return rc;
		off += k;
	}
	if (dec->chunk_final) {
		if (!dec->frame_done)
			return corrupt(err, dec->what, "the compressed content ends within its zstd frame");
		dec->state = DEC_TRAILER;
		dec->image_len = 0;
	}
	dec->chunk_index++;
	dec->cfill = 0;
	dec->cneed = 4;
	return 0;
}

/* The 4-byte length word of the next chunk has arrived. */
static int decoder_chunk_length(ObjDecoder *dec, WsError *err)
{
	uint32_t word = get_u32(dec->cbuf);
	uint32_t len = word & ~CHUNK_FINAL;
	dec->chunk_final = (word & CHUNK_FINAL) != 0;
	if (dec->chunk_final ? len >= CRYPT_CHUNK : len != CRYPT_CHUNK)
		return corrupt(err, dec->what, "%schunk %" PRIu64 " has a length of %" PRIu32 " bytes",
			       dec->chunk_final ? "final " : "", dec->chunk_index, len);
	dec->cneed = 4 + len + CRYPT_TAG_SIZE;
	return 0;
}

static int decoder_write(ObjDecoder *dec, const unsigned char *buf, size_t len, WsError *err)
{
	size_t off = 0;
	while (off < len) {
		const unsigned char *p = buf + off;
		size_t n = len - off, k = 0;
		int rc = 0;
		switch (dec->state) {
		case DEC_HEADER:
			/* 8 bytes first: the frame size says how long the header is. */
			k = (dec->image_len < 8 ? 8 : dec->hdr_want) - dec->image_len;
			k = k < n ? k : n;
			memcpy(dec->image + dec->image_len, p, k);
			dec->crc = crc32c_update(dec->crc, p, k);
			dec->image_len += k;
			if (dec->image_len >= 4 && dec->image_len - k < 4 &&
			    get_u32(dec->image) != HDR_MAGIC) {
				rc = parse_header(dec->image, dec->what, dec->key != NULL, &dec->hdr_size,
						  NULL, NULL, err);
			} else if (dec->image_len == 8) {
				if (get_u32(dec->image + 4) == HDR_FRAME_SIZE_ENC)
					dec->hdr_want = OBJ_HEADER_SIZE_ENCRYPTED;
			} else if (dec->image_len == dec->hdr_want) {
				rc = decoder_header_done(dec, err);
			}
			break;
		case DEC_FRAME:
			rc = decoder_frame(dec, p, n, &k, err);
			dec->crc = crc32c_update(dec->crc, p, k);
			if (rc == 0 && dec->frame_done) {
				dec->state = DEC_TRAILER;
				dec->image_len = 0;
			}
			break;
		case DEC_CHUNK:
			k = dec->cneed - dec->cfill;
			k = k < n ? k : n;
			memcpy(dec->cbuf + dec->cfill, p, k);
			dec->crc = crc32c_update(dec->crc, p, k);
			dec->cfill += k;
			if (dec->cfill == 4 && dec->cneed == 4)
				rc = decoder_chunk_length(dec, err);
			else if (dec->cfill == dec->cneed)
				rc = decoder_chunk_done(dec, err);
			break;
		case DEC_TRAILER:
			k = OBJ_TRAILER_SIZE - dec->image_len;
			k = k < n ? k : n;
			memcpy(dec->image + dec->image_len, p, k);
			dec->image_len += k;
			if (dec->image_len >= 4 && dec->image_len - k < 4 &&
			    get_u32(dec->image) != TRL_MAGIC) {
				if (memcmp(dec->image, zstd_magic, 4) == 0)
					rc = corrupt(err, dec->what, "more than one zstd frame");
				else
					rc = corrupt(err, dec->what,
						     "trailer frame missing after the compressed content");
			} else if (dec->image_len == OBJ_TRAILER_SIZE) {
				rc = decoder_trailer_done(dec, err);
			}
			break;
		default:
			return corrupt(err, dec->what, "unexpected data after the trailer");
		}
		if (rc < 0)
			return rc;
		off += k;
		dec->stored += k;
	}
	return 0;
}

int obj_decoder_write(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	ObjDecoder *dec = ctx;
	int rc;
	if (!dec->failed) {
		rc = decoder_write(dec, buf, len, &dec->fail);
		if (rc == 0)
			return 0;
		if (dec->fail.cls == WS_OK)
			dec->fail.cls = rc;
		dec->failed = true;
	}
	if (err != NULL)
		*err = dec->fail;
	return dec->fail.cls;
}

int obj_decoder_finish(ObjDecoder *dec, ObjInfo *info, WsError *err)
{
	memset(info, 0, sizeof(*info));
	if (dec->failed) {
		if (err != NULL)
			*err = dec->fail;
		return dec->fail.cls;
	}
	switch (dec->state) {
	case DEC_HEADER:
		if (dec->stored == 0)
			return corrupt(err, dec->what, "empty");
		return corrupt(err, dec->what, "truncated within the header (%zu of %zu bytes)",
			       dec->image_len, dec->hdr_want);
	case DEC_FRAME:
	case DEC_CHUNK:
		return corrupt(err, dec->what,
			       "truncated within the compressed content (after %" PRIu64 " bytes)",
			       dec->stored);
	case DEC_TRAILER:
		return corrupt(err, dec->what, "truncated within the trailer (%zu of %d bytes)",
			       dec->image_len, OBJ_TRAILER_SIZE);
	default:
		break;
	}
	info->content_size = dec->produced;
	memcpy(info->sha256, dec->sha256, sizeof(info->sha256));
	info->stored_size = dec->stored;
	return 0;
}
