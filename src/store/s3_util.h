/*
 * s3_util.h - the pure parts of the S3 driver (s3.c): repository URL and
 * endpoint parsing, request paths and query strings as SigV4 needs them
 * written, the AWS shared-credentials file, the XML answers S3 gives and the
 * classification of its answers.  Nothing here touches the network.  The
 * XML parsers load libcurl and libxml2 on first use (s3_lib_load): a library
 * that cannot be loaded makes them find no document.
 *
 * Memory: strings returned (char *, and s3_parse_url's outputs) are malloc'd:
 * the caller frees them; structs filled here are released with their _clear.
 */
#ifndef WALSHIP_STORE_S3_UTIL_H
#define WALSHIP_STORE_S3_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "store/store.h"
#include "util/error.h"

/*
 * "s3://bucket[/prefix]" into the bucket and the prefix without leading or
 * trailing "/" ("" when none).  WS_USAGE on a malformed URL.
 */
int s3_parse_url(const char *url, char **bucket, char **prefix, WsError *err);

typedef struct S3Endpoint {
	bool https;
	char *host; /* as written in the URL, "[::1]" with its brackets */
	int port;   /* 0: the scheme's default */
} S3Endpoint;

/* "http[s]://host[:port][/]": WS_USAGE on anything else (user info, paths, queries). */
int s3_parse_endpoint(const char *url, S3Endpoint *ep, WsError *err);
void s3_endpoint_clear(S3Endpoint *ep);

/* localhost, 127.0.0.0/8 or ::1 (host as in S3Endpoint, brackets allowed). */
bool s3_host_is_loopback(const char *host);
/* An IPv4 or IPv6 literal: no bucket can be put in front of it. */
bool s3_host_is_ip(const char *host);

/*
 * The URL requests go to, without a trailing "/": "https://bucket.host[:port]"
 * (host style) or "http://host[:port]/bucket" (path style).
 */
char *s3_base_url(const S3Endpoint *ep, const char *bucket, bool host_style);

/*
 * The Host header of requests, as curl writes it from the base URL and as
 * SigV4 signs it: "bucket.host" (host style) or "host", with ":port" only
 * when the port is not the scheme's default.
 */
char *s3_host_header(const S3Endpoint *ep, const char *bucket, bool host_style);

/* Percent-encode all but RFC 3986's unreserved characters, uppercase hex; keep '/' when keep_slash. */
char *s3_escape(const char *s, bool keep_slash);

typedef struct S3Param {
	const char *name;
	const char *value; /* NULL or "": a bare parameter, written "name=" */
} S3Param;

/*
 * The query string in SigV4's canonical form, which is also what is sent:
 * names and values escaped, sorted by escaped name then value, e.g.
 * "list-type=2&prefix=a%2Fb" ("" for n = 0).
 */
char *s3_query(const S3Param *params, size_t n);

typedef struct S3Creds {
	char *key_id;
	char *secret;
	char *token;
} S3Creds;

/*
 * Read profile from the text of an AWS shared-credentials file ("[name]" or
 * "[profile name]" sections, "key = value" lines; aws_access_key_id,
 * aws_secret_access_key, aws_session_token).  path only names the file in
 * errors.  A missing profile or a profile without both keys is WS_FATAL.
 */
int s3_creds_parse(const char *text, const char *profile, const char *path, S3Creds *out, WsError *err);
/* Wipe and free the fields (the struct itself is the caller's). */
void s3_creds_clear(S3Creds *c);

typedef struct S3ErrorBody {
	char code[128];
	char message[512];
	char request_id[128];
	char region[64];
} S3ErrorBody;

/* True when body is an <Error> document; its fields are copied (truncated) into out. */
bool s3_parse_error(const char *body, size_t len, S3ErrorBody *out);

typedef struct S3ListEntry {
	char *key; /* the full object key as S3 gives it */
	StoreStat st;
} S3ListEntry;

typedef struct S3ListPage {
	S3ListEntry *entries;
	size_t n;
	bool truncated;
	char *next_token; /* NULL when not truncated */
} S3ListPage;

/* Parse a ListObjectsV2 answer; WS_FATAL when it is not one, or when libxml2 cannot be loaded. */
int s3_parse_list(const char *body, size_t len, S3ListPage *page, WsError *err);
void s3_list_page_clear(S3ListPage *page);

/* The UploadId of an InitiateMultipartUploadResult, or NULL. */
char *s3_parse_upload_id(const char *body, size_t len);

/* "2024-05-01T10:20:30.000Z" to seconds since the epoch; -1 when malformed. */
int64_t s3_parse_time(const char *iso);

/* The CompleteMultipartUpload body for parts 1..n with the given ETags. */
char *s3_complete_body(char *const *etags, size_t n);

/* What a request was doing, for classifying its answer. */
typedef enum S3Op {
	S3_OP_LIST,     /* ListObjectsV2, also the check at open */
	S3_OP_HEAD,     /* HEAD of an object */
	S3_OP_GET,      /* GET of an object */
	S3_OP_PUT,      /* PutObject, UploadPart */
	S3_OP_COMPLETE, /* CompleteMultipartUpload */
	S3_OP_OTHER,    /* CreateMultipartUpload, AbortMultipartUpload, DeleteObject */
} S3Op;

typedef enum S3Verdict {
	S3_OK,
	S3_RETRY,      /* transient: retry with backoff within the budget */
	S3_NOT_FOUND,  /* no such key: a 404 with S3's NoSuchKey error */
	S3_HEAD_404,   /* a 404 to HEAD (no body, so no error code): to confirm with a GET */
	S3_EXISTS,     /* If-None-Match: * found the key */
	S3_RANGE,      /* 416 on a ranged GET: the offset is past the end */
	S3_AUTH,       /* the credentials are refused */
	S3_TOKEN,      /* the session token is refused or expired */
	S3_SKEW,       /* the clock is off */
	S3_NO_BUCKET,  /* the bucket does not exist */
	S3_DENIED_KEY, /* 403 reading a key: possibly missing, without s3:ListBucket */
	S3_DENIED,     /* 403 on anything else */
	S3_REGION,     /* the bucket is in another region */
	S3_FATAL,      /* anything else */
} S3Verdict;

/* Classify an HTTP answer; code is the <Error><Code> or "" (HEAD answers have no body). */
S3Verdict s3_classify_http(S3Op op, long status, const char *code);

/* True for transport failures worth retrying (timeouts, refused or dropped connections). */
bool s3_curl_transient(CURLcode rc);

/*
 * The expected ETag of a multipart object: hex MD5 of the parts' binary MD5s
 * followed by "-<n>" (out: at least 48 bytes).
 */
void s3_multipart_etag(const unsigned char (*md5s)[16], size_t n, char *out, size_t outsize);

#endif
