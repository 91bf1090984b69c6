/*
 * crypt.h - encryption at rest: the repository's data key and the chunked
 * AEAD of its objects.
 *
 * Encryption is a property of the whole repository (walship.json's
 * "encryption" member); every object of an encrypted repository is
 * encrypted, and an object without the encrypted flag is refused there.
 *
 * Keys
 *   A random 32-byte data key is made once, at walship init --encrypt, and
 *   kept in walship.json wrapped with AES-256-GCM under a key-encryption key
 *   (KEK), with the associated data "walship data key v1", the repository
 *   UUID and the KDF name (so a wrapped key copied into another repository
 *   does not open):
 *     encryption-key-file    KEK = HKDF-SHA256(the file's bytes, salt,
 *                            "walship key file v1").  The file holds at least
 *                            32 bytes of key material, e.g. from "head -c 32
 *                            /dev/urandom" or "openssl rand -base64 32"; a
 *                            file of printable text loses its final newline
 *                            (binary bytes are used as given, also a final
 *                            0x0a).  It is a secret (config_check_secret_file).  Opening
 *                            costs microseconds: the choice for the hooks.
 *     encryption-passphrase  KEK = scrypt(passphrase, salt, N, r, p), by
 *                            default N = 2^15, r = 8, p = 1 (32 MiB, about
 *                            0.1 s): paid by every walship-push and
 *                            walship-fetch process.
 *   The salt (32 bytes) and the scrypt parameters are stored beside the
 *   wrapped key.  A wrong key or passphrase fails the wrapped key's GCM tag.
 *
 * Objects (the byte layout is in object.h)
 *   Each object has a random 32-byte salt in its header; HKDF-SHA256(data
 *   key, salt, "walship object v1") gives a 32-byte AES-256-GCM key and a
 *   32-byte HMAC-SHA256 key.  The zstd stream is sealed in chunks of
 *   CRYPT_CHUNK bytes (the last one shorter, possibly empty), each with
 *     nonce  u64 LE chunk index, u32 LE final flag (0 or 1)
 *     AAD    repository UUID, 0x00, object name (its repository key, which
 *            starts with the epoch id: "15-1/wal/..."), 0x00, u64 LE chunk
 *            index, u8 final flag
 *   so a chunk moved within the object, to another object, another name or
 *   another repository, and an object cut at a chunk boundary, all fail.
 *   The per-object key never repeats (random salt), so counter nonces are
 *   safe, and each GCM message is one chunk, far below GCM's 64 GiB limit.
 *   The trailer holds HMAC-SHA256(mac key, header bytes, u64 LE content
 *   size, SHA-256 of the content, UUID, 0x00, name) where an unencrypted
 *   object holds the SHA-256: the content's checksum is never stored in
 *   clear.
 *
 * What is not encrypted: walship.json, object names (the repository keys:
 * epochs, timelines and WAL file names), object sizes, and the content size
 * in each object's header.
 */
#ifndef WALSHIP_REPO_CRYPT_H
#define WALSHIP_REPO_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/config.h"
#include "util/error.h"

#define CRYPT_KEY_SIZE     32
#define CRYPT_SALT_SIZE    32
#define CRYPT_TAG_SIZE     16
#define CRYPT_NONCE_SIZE   12
#define CRYPT_WRAPPED_SIZE (CRYPT_NONCE_SIZE + CRYPT_KEY_SIZE + CRYPT_TAG_SIZE)
#define CRYPT_CHUNK        (64 * 1024)
#define CRYPT_KEY_FILE_MIN 32
#define CRYPT_KEY_FILE_MAX 4096
#define CRYPT_CIPHER       "aes-256-gcm"
#define CRYPT_SCRYPT_N     32768u
#define CRYPT_SCRYPT_R     8u
#define CRYPT_SCRYPT_P     1u
/* Accepted scrypt parameters when reading walship.json (memory stays under 1 GiB). */
#define CRYPT_SCRYPT_N_MIN 16384u
#define CRYPT_SCRYPT_N_MAX 1048576u
#define CRYPT_SCRYPT_R_MAX 32u
#define CRYPT_SCRYPT_P_MAX 16u

typedef enum CryptKdf {
	CRYPT_KDF_KEY_FILE = 1, /* "key-file" */
	CRYPT_KDF_SCRYPT = 2,   /* "scrypt" */
} CryptKdf;

/* walship.json's "encryption" member (meta.c reads and writes it). */
typedef struct CryptParams {
	CryptKdf kdf;
	uint32_t scrypt_n, scrypt_r, scrypt_p; /* scrypt only */
	unsigned char salt[CRYPT_SALT_SIZE];
	unsigned char wrapped_key[CRYPT_WRAPPED_SIZE]; /* nonce, ciphertext, tag */
} CryptParams;

/* "key-file" / "scrypt"; and back (false for an unknown name). */
const char *crypt_kdf_name(CryptKdf kdf);
bool crypt_kdf_parse(const char *name, CryptKdf *kdf);

/* ---- the configured secret ---- */

typedef struct CryptSecret CryptSecret;

/*
 * The secret the configuration holds: the key file's bytes
 * (encryption-key-file) or the passphrase (encryption-passphrase).  None:
 * 0 with *out NULL.  Both: WS_USAGE.  A key file that cannot be read, is
 * not private (config_check_secret_file), or holds fewer than
 * CRYPT_KEY_FILE_MIN or more than CRYPT_KEY_FILE_MAX bytes: WS_FATAL with a
 * hint.  Messages never contain the secret.
 */
int crypt_secret_load(const Config *cfg, CryptSecret **out, WsError *err);
CryptKdf crypt_secret_kdf(const CryptSecret *s);
/* "encryption-key-file \"PATH\"" or "encryption-passphrase (from SOURCE)", for messages. */
const char *crypt_secret_describe(const CryptSecret *s);
/* Wipes the secret. */
void crypt_secret_free(CryptSecret *s);

/* ---- the data key ---- */

typedef struct CryptKey CryptKey;

/* A new random data key for the repository uuid, wrapped under s into params. */
int crypt_key_create(const CryptSecret *s, const char *uuid, CryptParams *params, CryptKey **out,
		     WsError *err);

/*
 * Unwrap params' data key with s.  A kdf of params that is not s's kind:
 * WS_FATAL naming the setting needed.  A wrong key or passphrase (or a
 * tampered wrapped key, salt or UUID): WS_FATAL "wrong encryption key for
 * repository "<repo>"".
 */
int crypt_key_unwrap(const CryptSecret *s, const CryptParams *params, const char *uuid, const char *repo,
		     CryptKey **out, WsError *err);
/* Wipes the key. */
void crypt_key_free(CryptKey *key);

/* ---- one object ---- */

typedef struct CryptObject CryptObject;

/* Cipher contexts reused across objects. */
CryptObject *crypt_object_new(void);
void crypt_object_free(CryptObject *c);

/*
 * Start sealing (encrypt) or opening an object stored under name, with the
 * per-object salt from its header.  Derives the object's keys.
 */
int crypt_object_start(CryptObject *c, const CryptKey *key, const unsigned char salt[CRYPT_SALT_SIZE],
		       const char *name, bool encrypt, WsError *err);

/* Encrypt len bytes of chunk index in place and write its tag.  WS_FATAL only if OpenSSL fails. */
int crypt_object_seal(CryptObject *c, uint64_t index, bool final, unsigned char *buf, size_t len,
		      unsigned char tag[CRYPT_TAG_SIZE], WsError *err);

/*
 * Decrypt len bytes of chunk index in place and check its tag: WS_CORRUPT
 * (message "chunk N failed authentication") when it does not match; buf
 * then holds nothing usable.
 */
int crypt_object_open(CryptObject *c, uint64_t index, bool final, unsigned char *buf, size_t len,
		      const unsigned char tag[CRYPT_TAG_SIZE], WsError *err);

/* The trailer's HMAC over the header image, the content size and the content's SHA-256. */
void crypt_object_mac(const CryptObject *c, const unsigned char *header, size_t header_len,
		      uint64_t content_size, const unsigned char sha256[32], unsigned char mac[32]);

/* Random bytes from OpenSSL; exits (as out of memory does) if there are none. */
void crypt_random(unsigned char *buf, size_t len);

#endif
