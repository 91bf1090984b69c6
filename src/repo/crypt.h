/*
 * crypt.h - encryption at rest: the repository's data key and the chunked
 * AEAD of its objects.
 *
 * The design and formats behind it: src/repo/README.md, "crypt".
 *
 * Memory: crypt_kdf_name is static; crypt_secret_describe is borrowed (lives as long as the
 * secret).
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
