/*
 * s3_sign.c - AWS Signature Version 4 for S3 (see s3_sign.h).
 *
 * The canonical request is built from exactly what the caller sends: the
 * path and query as written on the request line (s3_util.c writes both in
 * canonical form already, so nothing is encoded twice) and the headers
 * given.  The signing key is the HMAC-SHA256 chain "AWS4" + secret, date,
 * region, "s3", "aws4_request"; OpenSSL's one-shot HMAC() is the same in
 * 1.1.1 and 3.
 */
#include "store/s3_sign.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/cleanup.h"
#include "util/mem.h"
#include "util/text.h"

#define S3_SIGN_ALGORITHM  "AWS4-HMAC-SHA256"
#define S3_SIGN_SERVICE    "s3"
#define S3_SIGN_TERMINATOR "aws4_request"

void s3_sign_date(time_t t, char out[S3_SIGN_DATE_SIZE])
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, S3_SIGN_DATE_SIZE, "%Y%m%dT%H%M%SZ", &tm) != S3_SIGN_DATE_SIZE - 1)
		cleanup_fatal("could not format the time %lld for an S3 request", (long long)t);
}

/* One header of the canonical list: its name lowercased, its value trimmed with blanks squeezed. */
typedef struct Canon {
	char *name;
	char *value;
} Canon;

static char *canon_name(const char *name)
{
	char *out = xstrdup(name);
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

static char *canon_value(const char *value)
{
	char *out = xmalloc(strlen(value) + 1);
	char *o = out;
	bool blank = false;
	for (const char *p = value; *p; p++) {
		if (*p == ' ' || *p == '\t') {
			blank = o != out;
			continue;
		}
		if (blank)
			*o++ = ' ';
		blank = false;
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

static int canon_cmp(const void *a, const void *b)
{
	return strcmp(((const Canon *)a)->name, ((const Canon *)b)->name);
}

/* The headers sorted by lowercased name, a repeated name once with its values joined by ","; *n updated. */
static Canon *canon_headers(const S3Header *headers, size_t *n)
{
	Canon *c = xmalloc((*n ? *n : 1) * sizeof(*c));
	for (size_t i = 0; i < *n; i++) {
		c[i].name = canon_name(headers[i].name);
		c[i].value = canon_value(headers[i].value ? headers[i].value : "");
	}
	/* qsort is not stable: a repeated name's values must keep the order they are sent in. */
	for (size_t i = 1; i < *n; i++) {
		Canon cur = c[i];
		size_t j = i;
		while (j > 0 && canon_cmp(&c[j - 1], &cur) > 0) {
			c[j] = c[j - 1];
			j--;
		}
		c[j] = cur;
	}
	size_t out = 0;
	for (size_t i = 0; i < *n; i++) {
		if (out > 0 && strcmp(c[out - 1].name, c[i].name) == 0) {
			char *joined = xasprintf("%s,%s", c[out - 1].value, c[i].value);
			free(c[out - 1].value);
			c[out - 1].value = joined;
			free(c[i].name);
			free(c[i].value);
			continue;
		}
		c[out++] = c[i];
	}
	*n = out;
	return c;
}

static void canon_free(Canon *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* The session token is a header: wipe it with the others. */
		OPENSSL_cleanse(c[i].value, strlen(c[i].value));
		free(c[i].name);
		free(c[i].value);
	}
	free(c);
}

char *s3_sign_canonical_request(const S3SignRequest *req, char **signed_headers)
{
	size_t n = req->nheaders;
	Canon *c = canon_headers(req->headers, &n);
	Text t = {0}, names = {0};

	text_str(&t, req->method);
	text_str(&t, "\n");
	text_str(&t, req->path && req->path[0] ? req->path : "/");
	text_str(&t, "\n");
	text_str(&t, req->query ? req->query : "");
	text_str(&t, "\n");
	text_str(&names, "");
	for (size_t i = 0; i < n; i++) {
		text_str(&t, c[i].name);
		text_str(&t, ":");
		text_str(&t, c[i].value);
		text_str(&t, "\n");
		if (i > 0)
			text_str(&names, ";");
		text_str(&names, c[i].name);
	}
	text_str(&t, "\n");
	text_str(&t, names.s);
	text_str(&t, "\n");
	text_str(&t, req->payload_sha256);
	canon_free(c, n);
	if (signed_headers)
		*signed_headers = names.s;
	else
		free(names.s);
	return t.s;
}

static void hmac_sha256(const void *key, size_t key_len, const char *data, unsigned char out[32])
{
	unsigned int len = 0;
	if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, strlen(data), out, &len) ==
		    NULL ||
	    len != 32)
		cleanup_fatal("could not compute HMAC-SHA256 to sign an S3 request");
}

static void sha256_hex(const char *data, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	if (EVP_Digest(data, strlen(data), md, &len, EVP_sha256(), NULL) != 1 || len != 32)
		cleanup_fatal("could not compute SHA-256 to sign an S3 request");
	hex_encode(md, sizeof(md), out);
}

/* The request's x-amz-date, if it has the YYYYMMDDTHHMMSSZ form. */
static const char *amz_date(const S3SignRequest *req)
{
	for (size_t i = 0; i < req->nheaders; i++) {
		const char *v = req->headers[i].value;
		if (strcasecmp(req->headers[i].name, "x-amz-date") != 0 || v == NULL)
			continue;
		if (strlen(v) != S3_SIGN_DATE_SIZE - 1 || v[8] != 'T' || v[15] != 'Z')
			return NULL;
		for (int k = 0; k < 15; k++)
			if (k != 8 && !(v[k] >= '0' && v[k] <= '9'))
				return NULL;
		return v;
	}
	return NULL;
}

char *s3_sign(const S3SignRequest *req, const char *region, const char *key_id, const char *secret)
{
	const char *date = amz_date(req);
	if (date == NULL)
		return NULL;
	char day[9], hash[65], signature[65];
	snprintf(day, sizeof(day), "%.8s", date);

	char *signed_headers = NULL;
	char *canonical = s3_sign_canonical_request(req, &signed_headers);
	sha256_hex(canonical, hash);
	char *scope = xasprintf("%s/%s/%s/%s", day, region, S3_SIGN_SERVICE, S3_SIGN_TERMINATOR);
	char *to_sign = xasprintf("%s\n%s\n%s\n%s", S3_SIGN_ALGORITHM, date, scope, hash);

	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), "s3"), "aws4_request") */
	unsigned char a[32], b[32];
	char *first = xasprintf("AWS4%s", secret);
	hmac_sha256(first, strlen(first), day, a);
	OPENSSL_cleanse(first, strlen(first));
	free(first);
	hmac_sha256(a, sizeof(a), region, b);
	hmac_sha256(b, sizeof(b), S3_SIGN_SERVICE, a);
	hmac_sha256(a, sizeof(a), S3_SIGN_TERMINATOR, b);
	hmac_sha256(b, sizeof(b), to_sign, a);
	hex_encode(a, sizeof(a), signature);
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));

	char *auth = xasprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s", S3_SIGN_ALGORITHM,
			       key_id, scope, signed_headers, signature);
	free(to_sign);
	free(scope);
	OPENSSL_cleanse(canonical, strlen(canonical));
	free(canonical);
	free(signed_headers);
	return auth;
}
