/*
 * object.h - walship's object format, streamed through fixed buffers.
 *
 * The design and formats behind it: src/repo/README.md, "object".
 */
#ifndef WALSHIP_REPO_OBJECT_H
#define WALSHIP_REPO_OBJECT_H

#include <stdbool.h>
#include <stdint.h>

#include "repo/crypt.h"
#include "util/error.h"
#include "util/stream.h"

#define OBJ_SIZE_UNKNOWN          UINT64_MAX
#define OBJ_HEADER_SIZE           28
#define OBJ_HEADER_SIZE_ENCRYPTED 60
#define OBJ_TRAILER_SIZE          60
#define OBJ_FORMAT_VERSION        1

typedef struct ObjInfo {
	uint64_t content_size;
	unsigned char sha256[32]; /* of the content, also for an encrypted object (never stored in clear) */
	uint64_t stored_size;     /* bytes of the whole object */
} ObjInfo;

typedef struct ObjEncoder ObjEncoder;

/* level: zstd level 1..19 (negative for zstd's fast levels). */
ObjEncoder *obj_encoder_new(int level);
void obj_encoder_free(ObjEncoder *enc);

/*
 * zstd worker threads (0: compress in the calling thread).  With workers,
 * compression overlaps with reading and hashing; the default (2) was the
 * fastest on two cores.  Takes effect at the next obj_encoder_reset.
 */
void obj_encoder_set_workers(ObjEncoder *enc, int n);

/*
 * Start an object whose content is read from in (content_size, or
 * OBJ_SIZE_UNKNOWN).  A known size that the input does not match is an error
 * (the file changed under us).  The encoder and its buffers are reused.
 */
void obj_encoder_reset(ObjEncoder *enc, WsReader in, void *in_ctx, uint64_t content_size);

/*
 * Encrypt the objects of later obj_encoder_reset calls under key (not
 * copied: it must outlive them), bound to name, the repository key the
 * object is stored under.  key NULL: unencrypted objects.
 */
void obj_encoder_set_crypt(ObjEncoder *enc, const CryptKey *key, const char *name);

/* A WsReader (ctx = the encoder) that produces the object's bytes. */
int obj_encoder_read(void *enc, unsigned char *buf, size_t cap, size_t *got, WsError *err);

/* After obj_encoder_read reported the end: content size, SHA-256, stored size. */
void obj_encoder_info(const ObjEncoder *enc, ObjInfo *info);

typedef struct ObjDecoder ObjDecoder;

ObjDecoder *obj_decoder_new(void);
void obj_decoder_free(ObjDecoder *dec);

/*
 * Start decoding an object; content goes to out.  max_size caps the content
 * (OBJ_SIZE_UNKNOWN for no cap beyond the header's size): decoding stops with
 * WS_CORRUPT as soon as the content would exceed the cap or the size the
 * header records.  what names the object in messages.
 */
void obj_decoder_reset(ObjDecoder *dec, uint64_t max_size, WsWriter out, void *out_ctx, const char *what);

/*
 * Decode the objects of later obj_decoder_reset calls as objects of an
 * encrypted repository with key (not copied), stored under name.  With a
 * key, an unencrypted object is WS_CORRUPT ("is not encrypted, but the
 * repository is"), and any changed byte, an object of another name or
 * another repository is WS_CORRUPT naming the object.  key NULL: an
 * encrypted object is WS_FATAL ("is encrypted, but the repository is not").
 */
void obj_decoder_set_crypt(ObjDecoder *dec, const CryptKey *key, const char *name);

/* A WsWriter (ctx = the decoder) to feed the object's bytes to. */
int obj_decoder_write(void *dec, const unsigned char *buf, size_t len, WsError *err);

/*
 * The object ended: WS_CORRUPT unless header, content and trailer were all
 * present and every size, CRC and the SHA-256 matched.  Fills info.
 */
int obj_decoder_finish(ObjDecoder *dec, ObjInfo *info, WsError *err);

/*
 * Parse a trailer image (the last OBJ_TRAILER_SIZE bytes of an object; a
 * longer buf is read from its end).  Checks magic, frame size and the
 * trailer's own CRC; the CRC of the body needs the body (the decoder).  Of
 * an encrypted object, sha256 gets the HMAC.
 */
int obj_trailer_parse(const unsigned char *buf, size_t len, uint64_t *content_size, unsigned char sha256[32],
		      WsError *err);

/*
 * Parse an unencrypted object's header image (the first OBJ_HEADER_SIZE
 * bytes of buf); an encrypted object's header is WS_FATAL.
 */
int obj_header_parse(const unsigned char *buf, size_t len, uint64_t *content_size, WsError *err);

#endif
