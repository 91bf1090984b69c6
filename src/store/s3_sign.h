/*
 * s3_sign.h - AWS Signature Version 4 of an S3 request, the signed-payload
 * form of AWS's "Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk": the canonical request, the string
 * to sign, the HMAC-SHA256 key chain and the Authorization header.
 *
 * walship signs its requests itself, on every libcurl, instead of using
 * CURLOPT_AWS_SIGV4: that option needs libcurl 7.75, and curl's signer signs
 * whatever headers curl adds on its own (Expect, for one), which differs
 * from one curl to the next.  Here exactly the headers given are signed, and
 * the caller sends exactly those.  No network, no libcurl: OpenSSL's HMAC and
 * SHA-256 only.
 */
#ifndef WALSHIP_STORE_S3_SIGN_H
#define WALSHIP_STORE_S3_SIGN_H

#include <stddef.h>
#include <time.h>

/* "20130524T000000Z" and its terminating zero. */
#define S3_SIGN_DATE_SIZE 17

/* One request header as it is sent. */
typedef struct S3Header {
	const char *name;  /* any case: signed lowercased */
	const char *value; /* signed trimmed, inner runs of blanks as one space */
} S3Header;

typedef struct S3SignRequest {
	const char *method; /* "GET", "PUT", ... */
	/*
	 * The URL's path exactly as sent, already escaped as S3 signs it: each
	 * segment percent-encoded (s3_escape with keep_slash), "/" kept, never
	 * normalized.  "" is signed as "/".
	 */
	const char *path;
	/* The query as sent, already canonical (s3_query): NULL or "" for none. */
	const char *query;
	/*
	 * Every header to sign, in any order: at least host (as sent, with its
	 * port when not the scheme's default), x-amz-date (the signing time,
	 * S3_SIGN_DATE_SIZE form), x-amz-content-sha256, and any other x-amz-*
	 * header sent.  A name given twice is signed once, its values joined with
	 * ",", as HTTP combines them.
	 */
	const S3Header *headers;
	size_t nheaders;
	const char *payload_sha256; /* hex SHA-256 of the body, as sent in x-amz-content-sha256 */
} S3SignRequest;

/* t (seconds since the epoch) as x-amz-date wants it: "YYYYMMDDTHHMMSSZ", in UTC. */
void s3_sign_date(time_t t, char out[S3_SIGN_DATE_SIZE]);

/*
 * The canonical request (method, path, query, headers, signed-header list,
 * payload hash, one per line); *signed_headers (may be NULL) receives the
 * list ("host;x-amz-content-sha256;x-amz-date").  Both malloc'd.
 */
char *s3_sign_canonical_request(const S3SignRequest *req, char **signed_headers);

/*
 * The value of the Authorization header for req, signed with the secret
 * for region's "s3" service: "AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/
 * s3/aws4_request, SignedHeaders=..., Signature=<64 hex>" (malloc'd).  NULL
 * when req has no valid x-amz-date header, which is the caller's mistake.
 * The secret and the keys derived from it are wiped from memory before the
 * return.
 */
char *s3_sign(const S3SignRequest *req, const char *region, const char *key_id, const char *secret);

#endif
