/*
 * crypt.c - encryption at rest (see crypt.h): the configured secret, the
 * wrapped data key, and per-object AES-256-GCM chunks with OpenSSL's EVP
 * interface (AES-NI where the CPU has it).  Secrets are wiped when freed and
 * never written into messages.
 */
#include "repo/crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "util/cleanup.h"
#include "util/mem.h"

#define WRAP_AAD_TAG   "walship data key v1"
#define KEY_FILE_INFO  "walship key file v1"
#define OBJECT_INFO    "walship object v1"
#define NAME_MAX_BYTES 1024

struct CryptSecret {
	CryptKdf kdf;
	unsigned char *bytes; /* key file content or passphrase */
	size_t len;
	char *describe;
};

struct CryptKey {
	unsigned char key[CRYPT_KEY_SIZE];
	char uuid[40];
};

struct CryptObject {
	EVP_CIPHER_CTX *ctx;
	bool encrypt;
	unsigned char mac_key[32];
	/* AAD: uuid, 0, name, 0, then index and final flag written per chunk. */
	unsigned char aad[40 + 1 + NAME_MAX_BYTES + 1 + 9];
	size_t aad_prefix;
};

void crypt_random(unsigned char *buf, size_t len)
{
	if (RAND_bytes(buf, (int)len) != 1) {
		/* Without randomness no key or salt is safe to use. */
		cleanup_fatal("could not generate random bytes for encryption");
	}
}

const char *crypt_kdf_name(CryptKdf kdf)
{
	return kdf == CRYPT_KDF_SCRYPT ? "scrypt" : "key-file";
}

bool crypt_kdf_parse(const char *name, CryptKdf *kdf)
{
	if (strcmp(name, "key-file") == 0)
		*kdf = CRYPT_KDF_KEY_FILE;
	else if (strcmp(name, "scrypt") == 0)
		*kdf = CRYPT_KDF_SCRYPT;
	else
		return false;
	return true;
}

static int openssl_failed(WsError *err, const char *what)
{
	return ws_error(err, WS_FATAL, "could not %s: OpenSSL failed", what);
}

/* HKDF-SHA256 of ikm into out. */
static int hkdf(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt, size_t salt_len,
		const char *info, unsigned char *out, size_t out_len)
{
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	int ok = pctx != NULL && EVP_PKEY_derive_init(pctx) > 0 &&
		 EVP_PKEY_CTX_set_hkdf_md(pctx, EVP_sha256()) > 0 &&
		 EVP_PKEY_CTX_set1_hkdf_salt(pctx, salt, (int)salt_len) > 0 &&
		 EVP_PKEY_CTX_set1_hkdf_key(pctx, ikm, (int)ikm_len) > 0 &&
		 EVP_PKEY_CTX_add1_hkdf_info(pctx, (const unsigned char *)info, (int)strlen(info)) > 0 &&
		 EVP_PKEY_derive(pctx, out, &out_len) > 0;
	EVP_PKEY_CTX_free(pctx);
	return ok ? 0 : -1;
}

/* ---- the configured secret ---- */

static const char key_file_hint[] =
	"Make one with \"(umask 077; head -c 32 /dev/urandom > /etc/walship/repo.key)\", give it to the "
	"postgres user (\"chown postgres /etc/walship/repo.key\"), and keep a copy in a safe place: without "
	"it "
	"the repository cannot be read.";

static bool is_text(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	return true;
}

static int read_key_file(const char *path, CryptSecret *s, WsError *err)
{
	unsigned char buf[CRYPT_KEY_FILE_MAX + 1];
	size_t len = 0;
	int rc = config_check_secret_file(path, err);
	if (rc != 0)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not open encryption key file \"%s\"",
				      path);
	while (len < sizeof(buf)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ws_error_errno(err, WS_FATAL, errno, "could not read encryption key file \"%s\"",
					    path);
			goto done;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > CRYPT_KEY_FILE_MAX) {
		rc = ws_error(err, WS_FATAL, "encryption key file \"%s\" is larger than %d bytes", path,
			      CRYPT_KEY_FILE_MAX);
		ws_error_detail(err, "A key file holds at least %d bytes of random key material.",
				CRYPT_KEY_FILE_MIN);
		ws_error_hint(err, "Check that encryption-key-file names the key file.");
		goto done;
	}
	/*
	 * "openssl rand -base64 32 > F" and editors end a text key with a
	 * newline that is not part of it; random binary bytes that happen to end
	 * in 0x0a are.
	 */
	size_t text_len = len;
	if (text_len > 0 && buf[text_len - 1] == '\n')
		text_len--;
	if (text_len > 0 && buf[text_len - 1] == '\r')
		text_len--;
	if (text_len < len && is_text(buf, text_len))
		len = text_len;
	if (len < CRYPT_KEY_FILE_MIN) {
		rc = ws_error(err, WS_FATAL, "encryption key file \"%s\" holds %zu bytes, fewer than %d",
			      path, len, CRYPT_KEY_FILE_MIN);
		ws_error_hint(err, "%s", key_file_hint);
		goto done;
	}
	s->bytes = xmalloc(len);
	memcpy(s->bytes, buf, len);
	s->len = len;
done:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return rc;
}

int crypt_secret_load(const Config *cfg, CryptSecret **out, WsError *err)
{
	const char *path = config_get(cfg, "encryption-key-file");
	const char *pass = config_get(cfg, "encryption-passphrase");
	*out = NULL;
	if (path != NULL && path[0] == '\0')
		path = NULL;
	if (pass != NULL && pass[0] == '\0')
		pass = NULL;
	if (path == NULL && pass == NULL)
		return 0;
	if (path != NULL && pass != NULL) {
		ws_error(err, WS_USAGE, "both encryption-key-file and encryption-passphrase are set");
		ws_error_detail(err, "encryption-key-file comes from %s, encryption-passphrase from %s.",
				config_source(cfg, "encryption-key-file"),
				config_source(cfg, "encryption-passphrase"));
		ws_error_hint(err, "Set only the one the repository was created with.");
		return WS_USAGE;
	}
	CryptSecret *s = xcalloc(1, sizeof(*s));
	if (path != NULL) {
		int rc = read_key_file(path, s, err);
		if (rc != 0) {
			crypt_secret_free(s);
			return rc;
		}
		s->kdf = CRYPT_KDF_KEY_FILE;
		s->describe = xasprintf("encryption-key-file \"%s\"", path);
	} else {
		s->kdf = CRYPT_KDF_SCRYPT;
		s->len = strlen(pass);
		s->bytes = (unsigned char *)xstrdup(pass);
		s->describe = xasprintf("encryption-passphrase (from %s)",
					config_source(cfg, "encryption-passphrase"));
	}
	*out = s;
	return 0;
}

CryptKdf crypt_secret_kdf(const CryptSecret *s)
{
	return s->kdf;
}

const char *crypt_secret_describe(const CryptSecret *s)
{
	return s->describe;
}

void crypt_secret_free(CryptSecret *s)
{
	if (s == NULL)
		return;
	if (s->bytes != NULL)
		OPENSSL_cleanse(s->bytes, s->len);
	free(s->bytes);
	free(s->describe);
	free(s);
}

/* ---- the data key ---- */

static int derive_kek(const CryptSecret *s, const CryptParams *p, unsigned char kek[CRYPT_KEY_SIZE],
		      WsError *err)
{
	if (s->kdf == CRYPT_KDF_KEY_FILE) {
		if (hkdf(s->bytes, s->len, p->salt, sizeof(p->salt), KEY_FILE_INFO, kek, CRYPT_KEY_SIZE) != 0)
			return openssl_failed(err, "derive the key-encryption key");
		return 0;
	}
	/* scrypt needs 128 * r * (N + p) bytes and a little more; allow exactly that. */
	uint64_t maxmem = 128ull * p->scrypt_r * ((uint64_t)p->scrypt_n + p->scrypt_p + 2) + 1024 * 1024;
	if (EVP_PBE_scrypt((const char *)s->bytes, s->len, p->salt, sizeof(p->salt), p->scrypt_n, p->scrypt_r,
			   p->scrypt_p, maxmem, kek, CRYPT_KEY_SIZE) != 1)
		return openssl_failed(err, "derive the key-encryption key with scrypt");
	return 0;
}

/* The wrapped key's associated data: it belongs to this repository and this kind of secret. */
static size_t wrap_aad(const CryptParams *p, const char *uuid, unsigned char *buf, size_t size)
{
	int n = snprintf((char *)buf, size, "%s%c%s%c%s", WRAP_AAD_TAG, 0, uuid, 0, crypt_kdf_name(p->kdf));
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* AES-256-GCM of one short message in one go; decrypt returns 1 when the tag matched. */
static int gcm_once(bool encrypt, const unsigned char key[32], const unsigned char nonce[CRYPT_NONCE_SIZE],
		    const unsigned char *aad, size_t aad_len, const unsigned char *in, size_t len,
		    unsigned char *out, unsigned char tag[CRYPT_TAG_SIZE])
{
	EVP_CIPHER_CTX *ctx = xneed(EVP_CIPHER_CTX_new(), "a cipher context");
	int n = 0, ok;
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, encrypt ? 1 : 0) == 1 &&
	     EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1 &&
	     EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1;
	if (ok && !encrypt)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPT_TAG_SIZE, tag) == 1;
	if (ok)
		ok = EVP_CipherFinal_ex(ctx, out + n, &n) == 1;
	if (ok && encrypt)
		ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPT_TAG_SIZE, tag) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 1 : 0;
}

int crypt_key_create(const CryptSecret *s, const char *uuid, CryptParams *params, CryptKey **out,
		     WsError *err)
{
	unsigned char kek[CRYPT_KEY_SIZE];
	unsigned char aad[128];
	unsigned char *w;
	CryptKey *key = xcalloc(1, sizeof(*key));
	int rc;

	*out = NULL;
	memset(params, 0, sizeof(*params));
	w = params->wrapped_key;
	params->kdf = s->kdf;
	if (s->kdf == CRYPT_KDF_SCRYPT) {
		params->scrypt_n = CRYPT_SCRYPT_N;
		params->scrypt_r = CRYPT_SCRYPT_R;
		params->scrypt_p = CRYPT_SCRYPT_P;
	}
	crypt_random(params->salt, sizeof(params->salt));
	crypt_random(key->key, sizeof(key->key));
	snprintf(key->uuid, sizeof(key->uuid), "%s", uuid);
	if ((rc = derive_kek(s, params, kek, err)) != 0)
		goto done;
	crypt_random(w, CRYPT_NONCE_SIZE);
	size_t aad_len = wrap_aad(params, uuid, aad, sizeof(aad));
	if (!gcm_once(true, kek, w, aad, aad_len, key->key, CRYPT_KEY_SIZE, w + CRYPT_NONCE_SIZE,
		      w + CRYPT_NONCE_SIZE + CRYPT_KEY_SIZE)) {
		rc = openssl_failed(err, "wrap the repository's data key");
		goto done;
	}
	*out = key;
	key = NULL;
done:
	OPENSSL_cleanse(kek, sizeof(kek));
	crypt_key_free(key);
	return rc;
}

int crypt_key_unwrap(const CryptSecret *s, const CryptParams *params, const char *uuid, const char *repo,
		     CryptKey **out, WsError *err)
{
	unsigned char kek[CRYPT_KEY_SIZE];
	unsigned char aad[128];
	unsigned char tag[CRYPT_TAG_SIZE];
	const unsigned char *w = params->wrapped_key;
	CryptKey *key = NULL;
	int rc;

	*out = NULL;
	if (params->kdf != s->kdf) {
		bool file = params->kdf == CRYPT_KDF_KEY_FILE;
		ws_error(err, WS_FATAL, "repository \"%s\" is encrypted with a %s, but %s is set", repo,
			 file ? "key file" : "passphrase", crypt_secret_describe(s));
		ws_error_hint(err, "%s",
			      file ? "Set encryption-key-file to the repository's key file instead."
				   : "Set encryption-passphrase (or WALSHIP_ENCRYPTION_PASSPHRASE) to the "
				     "repository's passphrase instead.");
		return WS_FATAL;
	}
	if ((rc = derive_kek(s, params, kek, err)) != 0)
		goto done;
	key = xcalloc(1, sizeof(*key));
	snprintf(key->uuid, sizeof(key->uuid), "%s", uuid);
	memcpy(tag, w + CRYPT_NONCE_SIZE + CRYPT_KEY_SIZE, sizeof(tag));
	size_t aad_len = wrap_aad(params, uuid, aad, sizeof(aad));
	if (!gcm_once(false, kek, w, aad, aad_len, w + CRYPT_NONCE_SIZE, CRYPT_KEY_SIZE, key->key, tag)) {
		rc = ws_error(err, WS_FATAL, "wrong encryption key for repository \"%s\"", repo);
		ws_error_detail(err, "The data key in %s could not be unwrapped with %s.", "walship.json",
				crypt_secret_describe(s));
		ws_error_hint(
			err, "%s",
			s->kdf == CRYPT_KDF_KEY_FILE
				? "Set encryption-key-file to the key file the repository was created with."
				: "Set encryption-passphrase (or WALSHIP_ENCRYPTION_PASSPHRASE) to the "
				  "passphrase the repository was created with.");
		goto done;
	}
	*out = key;
	key = NULL;
done:
	OPENSSL_cleanse(kek, sizeof(kek));
	crypt_key_free(key);
	return rc;
}

void crypt_key_free(CryptKey *key)
{
	if (key == NULL)
		return;
	OPENSSL_cleanse(key, sizeof(*key));
	free(key);
}

/* ---- one object ---- */

CryptObject *crypt_object_new(void)
{
	CryptObject *c = xcalloc(1, sizeof(*c));
	c->ctx = xneed(EVP_CIPHER_CTX_new(), "a cipher context");
	return c;
}

void crypt_object_free(CryptObject *c)
{
	if (c == NULL)
		return;
	EVP_CIPHER_CTX_free(c->ctx);
	OPENSSL_cleanse(c->mac_key, sizeof(c->mac_key));
	free(c);
}

int crypt_object_start(CryptObject *c, const CryptKey *key, const unsigned char salt[CRYPT_SALT_SIZE],
		       const char *name, bool encrypt, WsError *err)
{
	unsigned char keys[64];
	size_t ulen = strlen(key->uuid), nlen = strlen(name);
	int rc = 0;

	if (nlen > NAME_MAX_BYTES)
		return ws_error(err, WS_FATAL, "object name of %zu bytes is too long to encrypt", nlen);
	if (hkdf(key->key, sizeof(key->key), salt, CRYPT_SALT_SIZE, OBJECT_INFO, keys, sizeof(keys)) != 0) {
		rc = openssl_failed(err, "derive an object's keys");
		goto done;
	}
	/* The key schedule is set once here; each chunk then sets only its nonce. */
	if (EVP_CipherInit_ex(c->ctx, EVP_aes_256_gcm(), NULL, keys, NULL, encrypt ? 1 : 0) != 1) {
		rc = openssl_failed(err, "set up AES-256-GCM");
		goto done;
	}
	memcpy(c->mac_key, keys + 32, 32);
	c->encrypt = encrypt;
	memcpy(c->aad, key->uuid, ulen);
	c->aad[ulen] = 0;
	memcpy(c->aad + ulen + 1, name, nlen);
	c->aad[ulen + 1 + nlen] = 0;
	c->aad_prefix = ulen + nlen + 2;
done:
	OPENSSL_cleanse(keys, sizeof(keys));
	return rc;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Nonce and AAD of a chunk into the context; then the data goes through. */
static int chunk_begin(CryptObject *c, uint64_t index, bool final)
{
	unsigned char nonce[CRYPT_NONCE_SIZE];
	int n = 0;
	put_le(nonce, index, 8);
	put_le(nonce + 8, final ? 1 : 0, 4);
	put_le(c->aad + c->aad_prefix, index, 8);
	c->aad[c->aad_prefix + 8] = final ? 1 : 0;
	return EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, nonce, c->encrypt ? 1 : 0) == 1 &&
	       EVP_CipherUpdate(c->ctx, NULL, &n, c->aad, (int)(c->aad_prefix + 9)) == 1;
}

int crypt_object_seal(CryptObject *c, uint64_t index, bool final, unsigned char *buf, size_t len,
		      unsigned char tag[CRYPT_TAG_SIZE], WsError *err)
{
	int n = 0, m = 0;
	if (!chunk_begin(c, index, final) || EVP_CipherUpdate(c->ctx, buf, &n, buf, (int)len) != 1 ||
	    EVP_CipherFinal_ex(c->ctx, buf + n, &m) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_GET_TAG, CRYPT_TAG_SIZE, tag) != 1)
		return openssl_failed(err, "encrypt");
	return 0;
}

int crypt_object_open(CryptObject *c, uint64_t index, bool final, unsigned char *buf, size_t len,
		      const unsigned char tag[CRYPT_TAG_SIZE], WsError *err)
{
	int n = 0, m = 0;
	if (!chunk_begin(c, index, final) || EVP_CipherUpdate(c->ctx, buf, &n, buf, (int)len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_GCM_SET_TAG, CRYPT_TAG_SIZE, (void *)tag) != 1)
		return openssl_failed(err, "decrypt");
	if (EVP_CipherFinal_ex(c->ctx, buf + n, &m) != 1) {
		/* Never let unauthenticated plaintext linger where a caller could use it. */
		OPENSSL_cleanse(buf, len);
		return ws_error(err, WS_CORRUPT, "chunk %llu failed authentication",
				(unsigned long long)index);
	}
	return 0;
}

void crypt_object_mac(const CryptObject *c, const unsigned char *header, size_t header_len,
		      uint64_t content_size, const unsigned char sha256[32], unsigned char mac[32])
{
	unsigned char size[8];
	unsigned int len = 32;
	put_le(size, content_size, 8);
	/* One-shot over the concatenation: header, size, SHA-256, then UUID and name (the AAD prefix). */
	size_t total = header_len + 8 + 32 + c->aad_prefix;
	unsigned char *buf = xmalloc(total);
	memcpy(buf, header, header_len);
	memcpy(buf + header_len, size, 8);
	memcpy(buf + header_len + 8, sha256, 32);
	memcpy(buf + header_len + 40, c->aad, c->aad_prefix);
	if (HMAC(EVP_sha256(), c->mac_key, sizeof(c->mac_key), buf, total, mac, &len) == NULL) {
		/* Only an allocation can fail here: as xmalloc does. */
		cleanup_fatal("out of memory (computing an HMAC)");
	}
	free(buf);
}
