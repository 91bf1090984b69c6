/*
 * s3.c - the S3 store driver: libcurl for HTTP, libxml2 for the answers
 * (both loaded when the first S3 store is opened, s3_lib.h), walship's own
 * SigV4 signer (s3_sign.h) and OpenSSL for the payload digests.
 *
 * Each attempt is signed with its own time, over exactly the headers walship
 * writes, Host included, and nothing curl adds on its own: every request
 * carries x-amz-content-sha256 with the body's real SHA-256, and paths and
 * queries are written already canonical (s3_util.c), so that what is sent is
 * what is signed on every libcurl, old or new.  A put holds at most one part
 * in memory: a source that ends within the part size becomes one PutObject,
 * a longer one a multipart upload whose parts are hashed before they are
 * sent.  With no_overwrite, If-None-Match: * on the PutObject or on the
 * CompleteMultipartUpload makes S3 refuse an existing key atomically.
 *
 * Every request is retried on 5xx, throttling, timeouts and dropped
 * connections, with exponential backoff and full jitter, for at most
 * io-timeout seconds; a retried upload resends the same buffered bytes.
 * Nothing secret is ever logged: debug lines show method, path and status.
 */
#include "store/driver.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "store/retry.h"
#include "store/s3_lib.h"
#include "store/s3_sign.h"
#include "store/s3_util.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"

#ifndef WALSHIP_VERSION
#define WALSHIP_VERSION "dev"
#endif

#define S3_EMPTY_SHA256   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_MIB            ((size_t)1024 * 1024)
#define S3_LOOKAHEAD      (64 * 1024)
#define S3_MAX_PARTS      10000
#define S3_ERROR_BODY_MAX (64 * 1024)
#define S3_LIST_BODY_MAX  (16 * S3_MIB)
#define S3_BACKOFF_BASE   0.1 /* seconds */
#define S3_BACKOFF_CAP    5.0
#define S3_CREDS_MAX      (64 * 1024)
#define S3_MAX_HEADERS    10

/*
 * CURLOPT_PROTOCOLS_STR is libcurl 7.85's, which deprecates the bitmask of
 * CURLOPT_PROTOCOLS: older headers lack it, and which one to use depends on
 * the libcurl loaded, not on the headers (set_protocols).
 */
#define S3_CURL_PROTOCOLS_STR_SINCE 0x075500 /* 7.85.0 */
#if LIBCURL_VERSION_NUM < S3_CURL_PROTOCOLS_STR_SINCE
#define CURLOPT_PROTOCOLS_STR ((CURLoption)(CURLOPTTYPE_STRINGPOINT + 318))
#endif

typedef struct S3Store {
	Store base;
	CURL *curl;
	char *bucket;
	char *prefix;      /* "" or "a/b", no slashes at either end */
	char *base_url;    /* requests go to base_url + path */
	char *bucket_path; /* path of bucket-level requests: "/" (host style) or "" (path style) */
	char *url_path;    /* what base_url adds to the URL's path: "" (host style) or "/bucket" */
	char *host;        /* the Host header: base_url's host, with its port unless the default */
	char *endpoint;    /* for messages: "https://s3.eu-west-1.amazonaws.com" */
	char *region;
	char *ca_file;
	char *creds_source; /* where the access key came from, for hints */
	S3Creds creds;
	long io_timeout;
	size_t part_size;
	char errbuf[CURL_ERROR_SIZE];
} S3Store;

typedef struct Buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
	bool overflow;
} Buf;

typedef struct S3Req {
	S3Op op;
	const char *method;
	const char *action; /* "read", "write", "list", ... for messages */
	const char *key;    /* the key as the caller named it, NULL for the bucket */
	char *path;         /* escaped, appended to base_url */
	char *query;        /* canonical, or NULL */
	const unsigned char *body;
	size_t body_len;
	const char *content_type;
	bool if_none_match;
	bool one_attempt;

	/* GET: bytes [offset, offset+length) go to the sink, resumed on a retry. */
	WsWriter sink;
	void *sink_ctx;
	uint64_t offset;
	uint64_t length;
	uint64_t delivered;
	uint64_t range_start; /* first byte asked for in this attempt */
	bool skip_pending;
	uint64_t skip; /* bytes to drop first (a server that ignored Range) */
	int sink_rc;
	WsError sink_err;
	char get_etag[256]; /* of the first answer, for If-Match on resumption */

	/* The last attempt's answer. */
	long status;
	bool status_known;
	Buf resp;
	char etag[256];
	S3ErrorBody eb;
	size_t upload_pos;
	int attempts;
	char last[600]; /* the last failure, for messages */
	bool interrupted;
} S3Req;

static double random_unit(void)
{
	uint32_t v;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = (uint32_t)rand();
	return (double)v / 4294967296.0;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, sizeof(md), out);
}

static void buf_append(Buf *b, const void *data, size_t len)
{
	if (b->overflow || len == 0)
		return;
	if (b->len + len > b->max) {
		b->overflow = true;
		return;
	}
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		if (b->cap > b->max + 1)
			b->cap = b->max + 1;
		b->data = xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static void req_free(S3Req *r)
{
	free(r->path);
	free(r->query);
	free(r->resp.data);
}

/* "/prefix/key" escaped per segment, or "/key". */
static char *object_path(const S3Store *s, const char *key)
{
	char *full = s->prefix[0] ? xasprintf("%s/%s", s->prefix, key) : xstrdup(key);
	char *esc = s3_escape(full, true);
	char *path = xasprintf("/%s", esc);
	free(esc);
	free(full);
	return path;
}

/* ------------------------------------------------------------------ */
/* curl callbacks */

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
	S3Req *r = ctx;
	size_t n = size * nmemb;

	if (r->sink == NULL || r->status < 200 || r->status >= 300) {
		buf_append(&r->resp, data, n);
		return n;
	}
	const unsigned char *p = (const unsigned char *)data;
	size_t left = n;
	if (r->skip_pending) {
		/* A server that ignores Range sends the whole object: drop what precedes the offset. */
		r->skip_pending = false;
		if (r->status == 200)
			r->skip = r->range_start;
	}
	if (r->skip > 0) {
		size_t drop = r->skip < left ? (size_t)r->skip : left;
		p += drop;
		left -= drop;
		r->skip -= drop;
	}
	if (r->length != STORE_TO_END) {
		uint64_t want = r->length - r->delivered;
		if (left > want)
			left = (size_t)want;
	}
	if (left == 0)
		return n;
	int rc = r->sink(r->sink_ctx, p, left, &r->sink_err);
	if (rc != 0) {
		r->sink_rc = rc;
		return 0; /* CURLE_WRITE_ERROR */
	}
	r->delivered += left;
	return n;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
	S3Req *r = ctx;
	size_t n = size * nmemb;

	if (n > 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new answer (also after "100 Continue"): forget the previous one. */
		const char *sp = memchr(data, ' ', n);
		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		r->status_known = true;
		r->etag[0] = '\0';
		return n;
	}
	if (n > 5 && strncasecmp(data, "etag:", 5) == 0) {
		const char *v = data + 5;
		size_t vlen = n - 5;
		while (vlen > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vlen--;
		}
		while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
			vlen--;
		if (vlen < sizeof(r->etag)) {
			memcpy(r->etag, v, vlen);
			r->etag[vlen] = '\0';
		}
	}
	return n;
}

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *ctx)
{
	S3Req *r = ctx;
	size_t want = size * nmemb;
	size_t left = r->body_len - r->upload_pos;
	if (want > left)
		want = left;
	if (want > 0)
		memcpy(buf, r->body + r->upload_pos, want);
	r->upload_pos += want;
	return want;
}

static int seek_cb(void *ctx, curl_off_t offset, int origin)
{
	S3Req *r = ctx;
	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > r->body_len)
		return CURL_SEEKFUNC_FAIL;
	r->upload_pos = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int progress_cb(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	S3Req *r = ctx;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (cleanup_interrupted()) {
		r->interrupted = true;
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* one request */

static struct curl_slist *add_header(struct curl_slist *list, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static struct curl_slist *add_header(struct curl_slist *list, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *h = xvasprintf(fmt, ap);
	va_end(ap);
	struct curl_slist *out = s3_lib.slist_append(list, h);
	/* The token header holds a secret: wipe the copy we made. */
	memset(h, 0, strlen(h));
	free(h);
	if (out == NULL) {
		s3_lib.slist_free_all(list);
		cleanup_fatal("out of memory (adding a request header)");
	}
	return out;
}

/* The headers walship writes on a request: all of them are signed. */
typedef struct ReqHeaders {
	S3Header v[S3_MAX_HEADERS];
	size_t n;
	char date[S3_SIGN_DATE_SIZE];
	char range[80];
} ReqHeaders;

static void header_set(ReqHeaders *hs, const char *name, const char *value)
{
	if (hs->n == S3_MAX_HEADERS)
		cleanup_fatal("too many headers on an S3 request (\"%s\")", name);
	hs->v[hs->n++] = (S3Header){name, value};
}

typedef enum AttemptResult {
	ATTEMPT_DONE,  /* r->status holds an HTTP answer (any status) */
	ATTEMPT_RETRY, /* a transport failure worth retrying; r->last says what */
	ATTEMPT_FAIL,  /* err is filled */
} AttemptResult;

/* A request's state before an attempt: nothing of the previous one counts. */
static void attempt_reset(S3Store *s, S3Req *r)
{
	r->status = 0;
	r->status_known = false;
	r->resp.len = 0;
	r->resp.overflow = false;
	if (r->resp.data)
		r->resp.data[0] = '\0';
	r->etag[0] = '\0';
	r->upload_pos = 0;
	r->skip = 0;
	r->skip_pending = false;
	r->range_start = 0;
	memset(&r->eb, 0, sizeof(r->eb));
	s->errbuf[0] = '\0';
}

/*
 * Only http and https, whatever the URL says (no redirect is followed
 * either): CURLOPT_PROTOCOLS_STR from libcurl 7.85, the bitmask before, which
 * newer curls still accept but deprecate.
 */
static void set_protocols(CURL *c)
{
	if (s3_lib.curl_version >= S3_CURL_PROTOCOLS_STR_SINCE) {
		s3_curl_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
		return;
	}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	s3_curl_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#pragma GCC diagnostic pop
}

/* What every request sets: the URL, timeouts, TLS and the callbacks. */
static void attempt_set_common(S3Store *s, S3Req *r, CURL *c, const char *url)
{
	s3_curl_setopt(c, CURLOPT_URL, url);
	s3_curl_setopt(c, CURLOPT_NOSIGNAL, 1L);
	set_protocols(c);
	s3_curl_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	s3_curl_setopt(c, CURLOPT_USERAGENT, "walship/" WALSHIP_VERSION);
	s3_curl_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
	s3_curl_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	s3_curl_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
	s3_curl_setopt(c, CURLOPT_TCP_KEEPINTVL, 15L);
	s3_curl_setopt(c, CURLOPT_CONNECTTIMEOUT, s->io_timeout);
	s3_curl_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	s3_curl_setopt(c, CURLOPT_LOW_SPEED_TIME, s->io_timeout);
	s3_curl_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	s3_curl_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (s->ca_file)
		s3_curl_setopt(c, CURLOPT_CAINFO, s->ca_file);
	s3_curl_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	s3_curl_setopt(c, CURLOPT_WRITEDATA, r);
	s3_curl_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	s3_curl_setopt(c, CURLOPT_HEADERDATA, r);
	s3_curl_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
	s3_curl_setopt(c, CURLOPT_XFERINFODATA, r);
	s3_curl_setopt(c, CURLOPT_NOPROGRESS, 0L);
}

/* The method's own options and headers (a GET's range, a PUT's body). */
static void attempt_set_method(S3Req *r, CURL *c, ReqHeaders *hs)
{
	char *range = hs->range;
	size_t range_size = sizeof(hs->range);

	if (strcmp(r->method, "HEAD") == 0) {
		s3_curl_setopt(c, CURLOPT_NOBODY, 1L);
		s3_curl_setopt(c, CURLOPT_FILETIME, 1L);
	} else if (strcmp(r->method, "GET") == 0) {
		if (r->sink != NULL) {
			uint64_t start = r->offset + r->delivered;
			r->range_start = start;
			r->skip_pending = true;
			range[0] = '\0';
			if (r->length == STORE_TO_END) {
				if (start > 0)
					snprintf(range, range_size, "bytes=%llu-", (unsigned long long)start);
			} else {
				uint64_t last = r->offset + r->length - 1;
				if (last < r->offset) /* wrapped: the rest of the object */
					snprintf(range, range_size, "bytes=%llu-", (unsigned long long)start);
				else
					snprintf(range, range_size, "bytes=%llu-%llu",
						 (unsigned long long)start, (unsigned long long)last);
			}
			if (range[0])
				header_set(hs, "Range", range);
			if (r->delivered > 0 && r->get_etag[0])
				header_set(hs, "If-Match", r->get_etag);
		}
	} else if (strcmp(r->method, "PUT") == 0) {
		s3_curl_setopt(c, CURLOPT_UPLOAD, 1L);
		s3_curl_setopt(c, CURLOPT_READFUNCTION, read_cb);
		s3_curl_setopt(c, CURLOPT_READDATA, r);
		s3_curl_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
		s3_curl_setopt(c, CURLOPT_SEEKDATA, r);
		s3_curl_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
	} else if (strcmp(r->method, "POST") == 0) {
		s3_curl_setopt(c, CURLOPT_POST, 1L);
		s3_curl_setopt(c, CURLOPT_POSTFIELDS, r->body ? (const char *)r->body : "");
		s3_curl_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	} else {
		s3_curl_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	}
}

/*
 * The request's headers for curl: those walship writes, signed, then the
 * Authorization header.  curl sends "Expect: 100-continue" with a PUT (and
 * a large POST) and waits for the answer before the body: a round trip per
 * object (a 1 s stall with servers that never answer it), to spare a body
 * the server would refuse.  The open's listing has proven the credentials
 * and a refused PUT (412) is rare: "Expect:" removes the header, unsigned,
 * and the body goes at once.
 */
static struct curl_slist *attempt_headers(const S3Store *s, const S3Req *r, const ReqHeaders *hs,
					  const char *sha)
{
	char *path = xasprintf("%s%s", s->url_path, r->path);
	S3SignRequest sr = {.method = r->method,
			    .path = path,
			    .query = r->query,
			    .headers = hs->v,
			    .nheaders = hs->n,
			    .payload_sha256 = sha};
	char *auth = s3_sign(&sr, s->region, s->creds.key_id, s->creds.secret);
	if (auth == NULL)
		cleanup_fatal("could not sign an S3 request: no valid x-amz-date");
	free(path);

	struct curl_slist *h = NULL;
	for (size_t i = 0; i < hs->n; i++)
		h = add_header(h, "%s: %s", hs->v[i].name, hs->v[i].value);
	h = add_header(h, "Authorization: %s", auth);
	if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0)
		h = add_header(h, "Expect:");
	free(auth);
	return h;
}

/* Turns curl's result and the HTTP status into the attempt's result. */
static AttemptResult attempt_outcome(S3Store *s, S3Req *r, CURLcode cres, WsError *err)
{
	AttemptResult res = ATTEMPT_DONE;

	if (r->interrupted || cres == CURLE_ABORTED_BY_CALLBACK) {
		ws_error(err, WS_INTERRUPTED, "interrupted while talking to S3 at \"%s\"", s->endpoint);
		res = ATTEMPT_FAIL;
	} else if (cres == CURLE_WRITE_ERROR && r->sink_rc != 0) {
		*err = r->sink_err;
		res = ATTEMPT_FAIL;
	} else if (cres != CURLE_OK) {
		const char *what = s->errbuf[0] ? s->errbuf : s3_lib.easy_strerror(cres);
		snprintf(r->last, sizeof(r->last), "%s", what);
		if (s3_curl_transient(cres)) {
			res = ATTEMPT_RETRY;
		} else {
			ws_error(err, WS_FATAL, "could not reach S3 at \"%s\": %s", s->endpoint, what);
			if (cres == CURLE_PEER_FAILED_VERIFICATION || cres == CURLE_SSL_CACERT_BADFILE ||
			    cres == CURLE_SSL_CERTPROBLEM || cres == CURLE_SSL_ISSUER_ERROR)
				ws_error_hint(err,
					      "The endpoint's TLS certificate could not be verified: set "
					      "s3-ca-file to the CA certificate that signed it.");
			else if (cres == CURLE_UNSUPPORTED_PROTOCOL || cres == CURLE_URL_MALFORMAT)
				ws_error_hint(err, "Check s3-endpoint.");
			res = ATTEMPT_FAIL;
		}
	} else if (r->status < 200 || r->status >= 300 || r->op == S3_OP_COMPLETE) {
		/* CompleteMultipartUpload can answer 200 and still fail, with <Error> in the body. */
		bool is_error = s3_parse_error(r->resp.data, r->resp.len, &r->eb);
		if (r->op == S3_OP_COMPLETE && r->status >= 200 && r->status < 300 && is_error)
			r->status = 500;
	}
	return res;
}

static AttemptResult attempt(S3Store *s, S3Req *r, const char *sha, WsError *err)
{
	CURL *c = s->curl;
	ReqHeaders hs = {0};

	/* curl_easy_reset keeps the open connection, so requests still share it. */
	s3_lib.easy_reset(c);
	attempt_reset(s, r);
	char *url = xasprintf("%s%s%s%s", s->base_url, r->path, r->query && r->query[0] ? "?" : "",
			      r->query ? r->query : "");
	attempt_set_common(s, r, c, url);
	/*
	 * Signed at each attempt with its own time: a retry late in a long
	 * io-timeout is not refused as too old (S3 accepts 15 minutes).  Host
	 * is written here too, as s3_host_header says curl would, so that the
	 * Host signed is the Host sent whatever curl's version.
	 */
	s3_sign_date(time(NULL), hs.date);
	header_set(&hs, "Host", s->host);
	header_set(&hs, "x-amz-date", hs.date);
	header_set(&hs, "x-amz-content-sha256", sha);
	if (s->creds.token)
		header_set(&hs, "x-amz-security-token", s->creds.token);
	if (r->if_none_match)
		header_set(&hs, "If-None-Match", "*");
	if (r->content_type)
		header_set(&hs, "Content-Type", r->content_type);
	attempt_set_method(r, c, &hs);

	struct curl_slist *h = attempt_headers(s, r, &hs, sha);
	s3_curl_setopt(c, CURLOPT_HTTPHEADER, h);

	CURLcode cres = s3_lib.easy_perform(c);
	if (!r->status_known) {
		long code = 0;
		s3_curl_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		r->status = code;
	}
	log_debug("S3 %s %s: %s%ld", r->method, r->path, cres == CURLE_OK ? "HTTP " : "failed, HTTP ",
		  r->status);

	AttemptResult res = attempt_outcome(s, r, cres, err);
	s3_lib.slist_free_all(h);
	free(url);
	return res;
}

/* ------------------------------------------------------------------ */
/* errors */

static const char *key_id(const S3Store *s)
{
	return s->creds.key_id ? s->creds.key_id : "";
}

/* "\"KEY\" in repository \"s3://b/p\"" or "repository \"s3://b/p\"" into buf. */
static const char *where(const S3Store *s, const S3Req *r, char *buf, size_t size)
{
	if (r->key)
		snprintf(buf, size, "\"%s\" in repository \"%s\"", r->key, s->base.display);
	else
		snprintf(buf, size, "repository \"%s\"", s->base.display);
	return buf;
}

static void detail_answer(const S3Store *s, const S3Req *r, WsError *err)
{
	if (r->eb.message[0] && r->eb.request_id[0])
		ws_error_detail(err, "S3 at \"%s\" said: %s (request id %s).", s->endpoint, r->eb.message,
				r->eb.request_id);
	else if (r->eb.message[0])
		ws_error_detail(err, "S3 at \"%s\" said: %s.", s->endpoint, r->eb.message);
}

static int verdict_error(S3Store *s, S3Req *r, S3Verdict v, WsError *err)
{
	char w[STORE_KEY_MAX + 600];
	char answer[200];
	where(s, r, w, sizeof(w));
	snprintf(answer, sizeof(answer), "HTTP %ld%s%s", r->status, r->eb.code[0] ? " " : "", r->eb.code);

	switch (v) {
	case S3_OK:
	case S3_RANGE:
		return 0;
	case S3_NOT_FOUND:
		return ws_error(err, WS_NOT_FOUND, "object \"%s\" not found in repository \"%s\"",
				r->key ? r->key : "", s->base.display);
	case S3_EXISTS:
		return ws_error(err, WS_EXISTS, "\"%s\" already exists in repository \"%s\"",
				r->key ? r->key : "", s->base.display);
	case S3_AUTH:
		ws_error(err, WS_FATAL, "could not %s %s: S3 refused access key id \"%s\" (%s)", r->action, w,
			 key_id(s), answer);
		detail_answer(s, r, err);
		ws_error_hint(err,
			      "Check the access key id and its secret for bucket \"%s\" (the key comes from "
			      "%s); the "
			      "secret is never printed.",
			      s->bucket, s->creds_source);
		return WS_FATAL;
	case S3_TOKEN:
		ws_error(err, WS_FATAL,
			 "could not %s %s: S3 refused the session token of access key id \"%s\" (%s)",
			 r->action, w, key_id(s), answer);
		detail_answer(s, r, err);
		ws_error_hint(
			err, "Renew the temporary credentials (s3-token or AWS_SESSION_TOKEN, with their key "
			     "id and secret).");
		return WS_FATAL;
	case S3_SKEW:
		ws_error(err, WS_FATAL, "could not %s %s: S3 refused the request time (%s)", r->action, w,
			 answer);
		detail_answer(s, r, err);
		ws_error_hint(err,
			      "This machine's clock is off by more than S3 accepts (15 minutes): fix it, for "
			      "example by enabling NTP (timedatectl set-ntp true).");
		return WS_FATAL;
	case S3_NO_BUCKET:
		ws_error(err, WS_FATAL, "bucket \"%s\" does not exist at S3 endpoint \"%s\"", s->bucket,
			 s->endpoint);
		detail_answer(s, r, err);
		ws_error_hint(
			err,
			"Create the bucket first (walship never creates buckets), or check the repository "
			"URL, s3-endpoint and s3-region.");
		return WS_FATAL;
	case S3_DENIED_KEY:
		ws_error(err, WS_FATAL, "could not %s %s: access denied for access key id \"%s\" (%s)",
			 r->action, w, key_id(s), answer);
		ws_error_detail(
			err,
			"S3 answers 403 instead of 404 for a missing object when the caller may not list "
			"the bucket, so walship cannot tell a missing object from a forbidden one.");
		ws_error_hint(err,
			      "Grant s3:ListBucket on bucket \"%s\" (and s3:GetObject on its objects) to "
			      "access key "
			      "id \"%s\".",
			      s->bucket, key_id(s));
		return WS_FATAL;
	case S3_DENIED:
		ws_error(err, WS_FATAL,
			 "could not %s %s: access denied for access key id \"%s\" on bucket \"%s\" (%s)",
			 r->action, w, key_id(s), s->bucket, answer);
		detail_answer(s, r, err);
		ws_error_hint(err,
			      "Grant s3:ListBucket on the bucket and s3:GetObject, s3:PutObject, "
			      "s3:DeleteObject and "
			      "s3:AbortMultipartUpload on its objects to access key id \"%s\".",
			      key_id(s));
		return WS_FATAL;
	case S3_REGION:
		ws_error(err, WS_FATAL, "could not %s %s: bucket \"%s\" is not in region \"%s\" (%s)",
			 r->action, w, s->bucket, s->region, answer);
		detail_answer(s, r, err);
		if (r->eb.region[0])
			ws_error_hint(err, "Set s3-region = %s.", r->eb.region);
		else
			ws_error_hint(err, "Set s3-region (and s3-endpoint) to the bucket's region.");
		return WS_FATAL;
	case S3_RETRY:
		/* Only reached with one_attempt. */
		return ws_error(err, WS_TRANSIENT, "could not %s %s at \"%s\": %s", r->action, w, s->endpoint,
				answer);
	case S3_HEAD_404:
		/* Only reached when a HEAD's 404 was not confirmed by a GET (see s3_stat_key). */
		ws_error(err, WS_FATAL, "could not %s %s: S3 answered %s to HEAD, which cannot tell why",
			 r->action, w, answer);
		return WS_FATAL;
	case S3_FATAL:
	default:
		ws_error(err, WS_FATAL, "could not %s %s: S3 answered %s", r->action, w, answer);
		detail_answer(s, r, err);
		if (r->status == 404 && r->eb.code[0] == '\0') {
			ws_error_detail(
				err,
				"The answer's body is not an S3 error document, so it may not come from S3: "
				"only S3's NoSuchKey error is taken for a missing object.");
			ws_error_hint(
				err, "Check s3-endpoint, s3-uri-style and any proxy between walship and S3.");
		}
		return WS_FATAL;
	}
}

/*
 * Run r until it gets an answer that is not worth retrying, within the
 * io-timeout budget.  0 for a 2xx (and for 416 on a ranged GET); otherwise
 * a negative WsStatus with err filled.  *verdict_out (may be NULL) tells the
 * classified answer.
 */
static int perform(S3Store *s, S3Req *r, S3Verdict *verdict_out, WsError *err)
{
	const char *sha = S3_EMPTY_SHA256;
	char body_sha[65];
	double start = clock_now();
	double deadline = start + (double)s->io_timeout;
	S3Verdict v = S3_FATAL;
	StoreRetry retry = {0};
	char w[STORE_KEY_MAX + 600], what[STORE_KEY_MAX + 900], at[300];

	snprintf(at, sizeof(at), "S3 at \"%s\"", s->endpoint);
	snprintf(what, sizeof(what), "%s %s (%s)", r->action, where(s, r, w, sizeof(w)), at);
	store_retry_start(&retry, what, at, s->io_timeout);

	if (r->body != NULL && r->body_len > 0) {
		sha256_hex(r->body, r->body_len, body_sha);
		sha = body_sha;
	}
	if (r->resp.max == 0)
		r->resp.max = S3_ERROR_BODY_MAX;

	for (r->attempts = 1;; r->attempts++) {
		AttemptResult ar = attempt(s, r, sha, err);
		if (ar == ATTEMPT_FAIL) {
			store_retry_done(&retry, false, err ? err->msg : "failed");
			return err ? err->cls : WS_FATAL;
		}
		if (ar == ATTEMPT_RETRY) {
			v = S3_RETRY;
		} else {
			v = s3_classify_http(r->op, r->status, r->eb.code);
			if (v != S3_OK && v != S3_RETRY)
				snprintf(r->last, sizeof(r->last), "HTTP %ld %s", r->status, r->eb.code);
			else if (v == S3_RETRY)
				snprintf(r->last, sizeof(r->last), "HTTP %ld%s%s", r->status,
					 r->eb.code[0] ? " " : "", r->eb.code);
		}
		if (verdict_out)
			*verdict_out = v;
		if (v == S3_OK && r->sink && r->delivered == 0 && r->get_etag[0] == '\0')
			snprintf(r->get_etag, sizeof(r->get_etag), "%s", r->etag);
		if (v == S3_OK || v == S3_RANGE) {
			store_retry_done(&retry, true, NULL);
			return 0;
		}
		if (v != S3_RETRY || r->one_attempt) {
			int rc = verdict_error(s, r, v, err);
			store_retry_done(&retry, false, err ? err->msg : r->last);
			return rc;
		}

		/* A resumed GET keeps what reached the sink; remember the object it came from. */
		if (r->sink && r->delivered > 0 && r->get_etag[0] == '\0')
			snprintf(r->get_etag, sizeof(r->get_etag), "%s", r->etag);
		if (r->sink && r->length != STORE_TO_END && r->delivered >= r->length) {
			store_retry_done(&retry, true, NULL);
			return 0;
		}

		double ceiling = S3_BACKOFF_BASE * (double)(1u << (r->attempts < 16 ? r->attempts : 16));
		if (ceiling > S3_BACKOFF_CAP)
			ceiling = S3_BACKOFF_CAP;
		double pause = ceiling * random_unit();
		double now = clock_now();
		if (now + pause >= deadline)
			break;
		log_debug("S3 %s %s: %s, retrying in %.2f s", r->method, r->path, r->last, pause);
		store_retry_note(&retry, r->last);
		if (clock_sleep_interruptible(pause) != 0)
			return ws_error(err, WS_INTERRUPTED, "interrupted while talking to S3 at \"%s\"",
					s->endpoint);
	}

	store_retry_done(&retry, false, r->last);
	ws_error(err, WS_TRANSIENT, "could not %s %s: S3 at \"%s\" failed: %s", r->action,
		 where(s, r, w, sizeof(w)), s->endpoint, r->last);
	ws_error_detail(err, "Tried %d time%s over %.0f seconds (io-timeout is %ld seconds).", r->attempts,
			r->attempts == 1 ? "" : "s", clock_now() - start, s->io_timeout);
	ws_error_hint(err,
		      "Check that the S3 endpoint is reachable and healthy; raise io-timeout to retry for "
		      "longer.");
	return WS_TRANSIENT;
}

/* ------------------------------------------------------------------ */
/* operations */

static int discard_sink(void *ctx, const unsigned char *buf, size_t len, WsError *err)
{
	(void)ctx;
	(void)buf;
	(void)len;
	(void)err;
	return 0;
}

/*
 * A HEAD of key answered 404, which has no body to say NoSuchKey: ask for its
 * first byte, whose 404 does.  WS_NOT_FOUND when S3 says NoSuchKey, 0 when the
 * key is there after all, an error for anything else (an HTML 404 of a proxy).
 */
static int confirm_missing(S3Store *s, const char *key, WsError *err)
{
	S3Req r = {.op = S3_OP_GET, .method = "GET", .action = "stat", .key = key};
	r.path = object_path(s, key);
	r.sink = discard_sink;
	r.offset = 0;
	r.length = 1;
	int rc = perform(s, &r, NULL, err);
	req_free(&r);
	return rc;
}

static int s3_stat_key(S3Store *s, const char *key, StoreStat *st, char *etag, size_t etag_size, WsError *err)
{
	for (int round = 0;; round++) {
		S3Req r = {.op = S3_OP_HEAD, .method = "HEAD", .action = "stat", .key = key};
		S3Verdict v = S3_OK;
		r.path = object_path(s, key);
		int rc = perform(s, &r, &v, err);
		if (rc == 0) {
			curl_off_t len = -1, mtime = -1;
			s3_curl_getinfo(s->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
			s3_curl_getinfo(s->curl, CURLINFO_FILETIME_T, &mtime);
			if (st) {
				st->size = len >= 0 ? (uint64_t)len : 0;
				st->mtime = mtime >= 0 ? (int64_t)mtime : 0;
			}
			if (etag)
				snprintf(etag, etag_size, "%s", r.etag);
		}
		req_free(&r);
		if (rc == 0 || v != S3_HEAD_404)
			return rc;
		rc = confirm_missing(s, key, err);
		if (rc != 0)
			return rc;
		/* There after all: written between the two requests.  Look once more. */
		if (round > 0)
			return ws_error(err, WS_TRANSIENT,
					"S3 answered HEAD of \"%s\" in repository \"%s\" with 404 although "
					"the object "
					"can be read",
					key, s->base.display);
	}
}

static int s3_stat(Store *st, const char *key, StoreStat *out, WsError *err)
{
	return s3_stat_key((S3Store *)st, key, out, NULL, 0, err);
}

static int s3_get(Store *st, const char *key, uint64_t offset, uint64_t length, WsWriter sink, void *sink_ctx,
		  WsError *err)
{
	S3Store *s = (S3Store *)st;
	if (length == 0)
		return s3_stat_key(s, key, NULL, NULL, 0, err);

	S3Req r = {.op = S3_OP_GET, .method = "GET", .action = "read", .key = key};
	r.path = object_path(s, key);
	r.sink = sink;
	r.sink_ctx = sink_ctx;
	r.offset = offset;
	r.length = length;
	S3Verdict v = S3_OK;
	/* An offset past the end reads nothing, as on local disk (S3 answers 416, or 200 with less). */
	int rc = perform(s, &r, &v, err);
	if (rc != 0 && r.status == 412 && r.delivered > 0) {
		ws_error(err, WS_TRANSIENT,
			 "could not read \"%s\" in repository \"%s\": the object changed while it "
			 "was read",
			 key, s->base.display);
		rc = WS_TRANSIENT;
	}
	req_free(&r);
	return rc;
}

/* Read from src until buf is full or the source ends; *eof tells which. */
static int fill(WsReader src, void *ctx, unsigned char *buf, size_t cap, size_t *len, bool *eof, WsError *err)
{
	*eof = false;
	while (*len < cap) {
		size_t got = 0;
		int rc = src(ctx, buf + *len, cap - *len, &got, err);
		if (rc != 0)
			return rc;
		if (got == 0) {
			*eof = true;
			break;
		}
		*len += got;
	}
	return 0;
}

static void abort_upload(S3Store *s, const char *key, const char *upload_id)
{
	WsError ignored;
	S3Param q[] = {{"uploadId", upload_id}};
	S3Req r = {.op = S3_OP_OTHER, .method = "DELETE", .action = "abort the upload of", .key = key};
	r.path = object_path(s, key);
	r.query = s3_query(q, 1);
	if (perform(s, &r, NULL, &ignored) != 0)
		log_warning("could not abort the multipart upload of \"%s\" in repository \"%s\": %s", key,
			    s->base.display, ignored.msg);
	req_free(&r);
}

static int put_part(S3Store *s, const char *key, const char *upload_id, size_t number,
		    const unsigned char *data, size_t len, char **etag_out, WsError *err)
{
	char num[24];
	snprintf(num, sizeof(num), "%zu", number);
	S3Param q[] = {{"partNumber", num}, {"uploadId", upload_id}};
	S3Req r = {.op = S3_OP_PUT,
		   .method = "PUT",
		   .action = "write",
		   .key = key,
		   .body = data,
		   .body_len = len};
	r.path = object_path(s, key);
	r.query = s3_query(q, 2);
	int rc = perform(s, &r, NULL, err);
	if (rc == 0) {
		if (r.etag[0] == '\0')
			rc = ws_error(err, WS_FATAL,
				      "could not write \"%s\" in repository \"%s\": S3 answered part %zu "
				      "without an ETag",
				      key, s->base.display, number);
		else
			*etag_out = xstrdup(r.etag);
	}
	req_free(&r);
	return rc;
}

static void md5_of(const unsigned char *data, size_t len, unsigned char out[16])
{
	unsigned int mdlen = 0;
	EVP_Digest(data, len, out, &mdlen, EVP_md5(), NULL);
}

/* Strip the quotes around an ETag. */
static void etag_bare(const char *in, char *out, size_t size)
{
	size_t len = strlen(in);
	if (len >= 2 && in[0] == '"' && in[len - 1] == '"')
		snprintf(out, size, "%.*s", (int)(len - 2), in + 1);
	else
		snprintf(out, size, "%s", in);
}

static int put_multipart(S3Store *s, const char *key, WsReader src, void *src_ctx, unsigned char *buf,
			 size_t len, const unsigned char *look, size_t look_len, bool no_overwrite,
			 WsError *err)
{
	char *upload_id = NULL;
	char **etags = NULL;
	unsigned char(*md5s)[16] = NULL;
	size_t nparts = 0, cap = 0;
	char *body = NULL;
	bool eof = false;
	int rc;

	S3Param cq[] = {{"uploads", ""}};
	S3Req cr = {.op = S3_OP_OTHER, .method = "POST", .action = "write", .key = key};
	cr.path = object_path(s, key);
	cr.query = s3_query(cq, 1);
	cr.content_type = "application/octet-stream";
	rc = perform(s, &cr, NULL, err);
	if (rc == 0) {
		upload_id = s3_parse_upload_id(cr.resp.data, cr.resp.len);
		if (upload_id == NULL)
			rc = ws_error(
				err, WS_FATAL,
				"could not write \"%s\" in repository \"%s\": S3 started a multipart upload "
				"without an upload id",
				key, s->base.display);
	}
	req_free(&cr);
	if (rc != 0)
		goto done;

	for (;;) {
		if (nparts == S3_MAX_PARTS) {
			rc = ws_error(
				err, WS_FATAL,
				"could not write \"%s\" in repository \"%s\": more than %d parts of %zu MiB",
				key, s->base.display, S3_MAX_PARTS, s->part_size / S3_MIB);
			ws_error_hint(err, "Raise s3-part-size.");
			goto done;
		}
		if (nparts == cap) {
			cap = cap ? cap * 2 : 16;
			etags = xrealloc(etags, cap * sizeof(*etags));
			md5s = xrealloc(md5s, cap * sizeof(*md5s));
		}
		md5_of(buf, len, md5s[nparts]);
		etags[nparts] = NULL;
		rc = put_part(s, key, upload_id, nparts + 1, buf, len, &etags[nparts], err);
		if (rc != 0)
			goto done;
		nparts++;
		if (eof)
			break;

		/* The next part starts with what the look-ahead read. */
		memcpy(buf, look, look_len);
		len = look_len;
		look_len = 0;
		rc = fill(src, src_ctx, buf, s->part_size, &len, &eof, err);
		if (rc != 0)
			goto done;
		if (!eof) {
			size_t got = 0;
			rc = src(src_ctx, (unsigned char *)look, S3_LOOKAHEAD, &got, err);
			if (rc != 0)
				goto done;
			look_len = got;
			eof = got == 0;
		}
	}

	body = s3_complete_body(etags, nparts);
	S3Param q[] = {{"uploadId", upload_id}};
	S3Req r = {.op = S3_OP_COMPLETE, .method = "POST", .action = "write", .key = key};
	r.path = object_path(s, key);
	r.query = s3_query(q, 1);
	r.body = (const unsigned char *)body;
	r.body_len = strlen(body);
	r.content_type = "application/xml";
	r.if_none_match = no_overwrite;
	r.resp.max = S3_ERROR_BODY_MAX;
	rc = perform(s, &r, NULL, err);
	if (rc == WS_FATAL && r.attempts > 1 && strcmp(r.eb.code, "NoSuchUpload") == 0) {
		/* An earlier attempt completed the upload but its answer was lost: check the object is ours.
		 */
		char want[64], got_raw[256], got[256];
		WsError herr;
		s3_multipart_etag((const unsigned char(*)[16])md5s, nparts, want, sizeof(want));
		if (s3_stat_key(s, key, NULL, got_raw, sizeof(got_raw), &herr) == 0) {
			etag_bare(got_raw, got, sizeof(got));
			if (strcmp(got, want) == 0) {
				rc = 0;
				ws_error_clear(err);
			}
		}
	}
	req_free(&r);
	if (rc == 0) {
		free(upload_id);
		upload_id = NULL; /* done: nothing to abort */
	}

done:
	if (upload_id != NULL)
		abort_upload(s, key, upload_id);
	free(upload_id);
	for (size_t i = 0; i < nparts; i++)
		free(etags[i]);
	free(etags);
	free(md5s);
	free(body);
	return rc;
}

/* Bounded by the part size: (part size + 64 KiB) whatever the source's length. */
static int s3_put(Store *st, const char *key, WsReader src, void *src_ctx, bool no_overwrite, WsError *err)
{
	S3Store *s = (S3Store *)st;
	unsigned char *buf = xmalloc(s->part_size);
	unsigned char *look = xmalloc(S3_LOOKAHEAD);
	size_t len = 0, look_len = 0;
	bool eof = false;

	int rc = fill(src, src_ctx, buf, s->part_size, &len, &eof, err);
	if (rc == 0 && !eof) {
		rc = src(src_ctx, look, S3_LOOKAHEAD, &look_len, err);
		eof = look_len == 0;
	}
	if (rc != 0)
		goto done;

	if (eof) {
		S3Req r = {.op = S3_OP_PUT,
			   .method = "PUT",
			   .action = "write",
			   .key = key,
			   .body = buf,
			   .body_len = len};
		r.path = object_path(s, key);
		r.if_none_match = no_overwrite;
		rc = perform(s, &r, NULL, err);
		req_free(&r);
	} else {
		rc = put_multipart(s, key, src, src_ctx, buf, len, look, look_len, no_overwrite, err);
	}

done:
	free(look);
	free(buf);
	return rc;
}

static int s3_list(Store *st, const char *prefix, StoreListFn fn, void *ctx, WsError *err)
{
	S3Store *s = (S3Store *)st;
	char *full = s->prefix[0] ? xasprintf("%s/%s", s->prefix, prefix) : xstrdup(prefix);
	size_t strip = s->prefix[0] ? strlen(s->prefix) + 1 : 0;
	char *token = NULL;
	int rc = 0;

	for (;;) {
		S3Param q[4];
		size_t n = 0;
		q[n++] = (S3Param){"list-type", "2"};
		if (token)
			q[n++] = (S3Param){"continuation-token", token};
		if (full[0])
			q[n++] = (S3Param){"prefix", full};
		S3Req r = {.op = S3_OP_LIST,
			   .method = "GET",
			   .action = "list",
			   .key = prefix[0] ? prefix : NULL};
		r.path = xstrdup(s->bucket_path);
		r.query = s3_query(q, n);
		r.resp.max = S3_LIST_BODY_MAX;
		rc = perform(s, &r, NULL, err);
		if (rc == 0 && r.resp.overflow)
			rc = ws_error(err, WS_FATAL,
				      "S3 answered a listing of repository \"%s\" larger than %zu MiB",
				      s->base.display, S3_LIST_BODY_MAX / S3_MIB);
		S3ListPage page = {0};
		if (rc == 0)
			rc = s3_parse_list(r.resp.data, r.resp.len, &page, err);
		req_free(&r);
		if (rc != 0)
			break;

		for (size_t i = 0; i < page.n && rc == 0; i++) {
			const char *k = page.entries[i].key;
			if (strncmp(k, full, strlen(full)) != 0 || strlen(k) <= strip)
				continue;
			/* Objects no key could name (written by other tools) are not shown. */
			if (store_key_check(k + strip, NULL) != 0)
				continue;
			rc = fn(ctx, k + strip, &page.entries[i].st, err);
		}
		free(token);
		token = page.truncated && rc == 0 ? xstrdup(page.next_token) : NULL;
		s3_list_page_clear(&page);
		if (token == NULL)
			break;
	}
	free(token);
	free(full);
	return rc;
}

static int s3_remove(Store *st, const char *key, WsError *err)
{
	S3Store *s = (S3Store *)st;
	/* S3 answers 204 for a missing key too: look first, so absence is reported. */
	int rc = s3_stat_key(s, key, NULL, NULL, 0, err);
	if (rc != 0)
		return rc;
	S3Req r = {.op = S3_OP_OTHER, .method = "DELETE", .action = "remove", .key = key};
	r.path = object_path(s, key);
	rc = perform(s, &r, NULL, err);
	req_free(&r);
	return rc;
}

static void s3_free(Store *st)
{
	S3Store *s = (S3Store *)st;
	if (s == NULL)
		return;
	if (s->curl)
		s3_lib.easy_cleanup(s->curl);
	s3_creds_clear(&s->creds);
	free(s->base.display);
	free(s->bucket);
	free(s->prefix);
	free(s->base_url);
	free(s->bucket_path);
	free(s->endpoint);
	free(s->region);
	free(s->url_path);
	free(s->host);
	free(s->ca_file);
	free(s->creds_source);
	free(s);
}

static const StoreDriver s3_driver = {
	.name = "s3",
	.put = s3_put,
	.get = s3_get,
	.stat = s3_stat,
	.list = s3_list,
	.remove = s3_remove,
	.free = s3_free,
};

/* ------------------------------------------------------------------ */
/* open */

static int parse_bool(const Config *cfg, const char *name, bool *out, WsError *err)
{
	const char *v = config_get(cfg, name);
	if (v == NULL || strcasecmp(v, "off") == 0 || strcasecmp(v, "false") == 0 ||
	    strcasecmp(v, "no") == 0 || strcmp(v, "0") == 0) {
		*out = false;
		return 0;
	}
	if (strcasecmp(v, "on") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
	    strcmp(v, "1") == 0) {
		*out = true;
		return 0;
	}
	return ws_error(err, WS_USAGE, "invalid value \"%s\" for \"%s\" (from %s): must be on or off", v,
			name, config_source(cfg, name));
}

static char *credentials_path(bool *explicit_path)
{
	const char *env = getenv("AWS_SHARED_CREDENTIALS_FILE");
	*explicit_path = env != NULL && env[0] != '\0';
	if (*explicit_path)
		return xstrdup(env);
	const char *home = getenv("HOME");
	if (home == NULL || home[0] == '\0') {
		struct passwd *pw = getpwuid(geteuid());
		home = pw ? pw->pw_dir : NULL;
	}
	return home ? xasprintf("%s/.aws/credentials", home) : NULL;
}

static int load_credentials(S3Store *s, const Config *cfg, WsError *err)
{
	const char *key = config_get(cfg, "s3-key");
	const char *secret = config_get(cfg, "s3-key-secret");
	const char *token = config_get(cfg, "s3-token");

	if (key != NULL || secret != NULL) {
		if (key == NULL || secret == NULL) {
			ws_error(err, WS_USAGE, "\"%s\" is set (from %s) but \"%s\" is not",
				 key ? "s3-key" : "s3-key-secret",
				 config_source(cfg, key ? "s3-key" : "s3-key-secret"),
				 key ? "s3-key-secret" : "s3-key");
			ws_error_hint(err, "Set both s3-key and s3-key-secret (or AWS_ACCESS_KEY_ID and "
					   "AWS_SECRET_ACCESS_KEY), or neither to use ~/.aws/credentials.");
			return WS_USAGE;
		}
		s->creds.key_id = xstrdup(key);
		s->creds.secret = xstrdup(secret);
		s->creds.token = token ? xstrdup(token) : NULL;
		s->creds_source = xstrdup(config_source(cfg, "s3-key"));
		return 0;
	}

	bool explicit_path = false;
	char *path = credentials_path(&explicit_path);
	const char *profile = config_get(cfg, "s3-profile");
	char *text = NULL;
	size_t len = 0;
	int rc = 0;
	if (profile == NULL || profile[0] == '\0')
		profile = "default";

	if (path == NULL || (!explicit_path && access(path, F_OK) != 0)) {
		ws_error(err, WS_FATAL, "no S3 credentials for repository \"%s\"", s->base.display);
		ws_error_hint(
			err,
			"Set s3-key and s3-key-secret in the configuration file, set AWS_ACCESS_KEY_ID and "
			"AWS_SECRET_ACCESS_KEY, or write them to %s.",
			path ? path : "~/.aws/credentials");
		rc = WS_FATAL;
		goto done;
	}
	rc = config_check_secret_file(path, err);
	if (rc == 0)
		rc = fs_read_small(path, S3_CREDS_MAX, &text, &len, err);
	if (rc == 0)
		rc = s3_creds_parse(text, profile, path, &s->creds, err);
	if (rc == 0) {
		if (token != NULL) {
			free(s->creds.token);
			s->creds.token = xstrdup(token);
		}
		s->creds_source = xasprintf("profile \"%s\" of \"%s\"", profile, path);
	}

done:
	if (text) {
		memset(text, 0, len);
		free(text);
	}
	free(path);
	return rc;
}

/*
 * The endpoint of the configuration (s3-region, s3-endpoint, s3-uri-style,
 * s3-allow-http) into s and *ep, refusing what cannot work or would cross the
 * network in the clear.
 */
static int open_endpoint(S3Store *s, const Config *cfg, S3Endpoint *ep, bool *host_style_out, WsError *err)
{
	bool allow_http = false, host_style = true;
	int rc;

	const char *region = config_get(cfg, "s3-region");
	s->region = xstrdup(region && region[0] ? region : "us-east-1");
	for (const char *p = s->region; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
			return ws_error(err, WS_USAGE, "invalid value \"%s\" for \"s3-region\" (from %s)",
					s->region, config_source(cfg, "s3-region"));
		}
	}
	const char *endpoint = config_get(cfg, "s3-endpoint");
	s->endpoint = endpoint && endpoint[0] ? xstrdup(endpoint)
					      : xasprintf("https://s3.%s.amazonaws.com", s->region);
	size_t elen = strlen(s->endpoint);
	if (elen > 0 && s->endpoint[elen - 1] == '/')
		s->endpoint[elen - 1] = '\0';
	rc = s3_parse_endpoint(s->endpoint, ep, err);
	if (rc != 0)
		return rc;

	const char *style = config_get(cfg, "s3-uri-style");
	if (style == NULL || strcmp(style, "host") == 0) {
		host_style = true;
	} else if (strcmp(style, "path") == 0) {
		host_style = false;
	} else {
		return ws_error(err, WS_USAGE,
				"invalid value \"%s\" for \"s3-uri-style\" (from %s): must be host or path",
				style, config_source(cfg, "s3-uri-style"));
	}
	if (host_style && (s3_host_is_ip(ep->host) || strcasecmp(ep->host, "localhost") == 0)) {
		ws_error(err, WS_USAGE, "S3 endpoint \"%s\" cannot be addressed in host style", s->endpoint);
		ws_error_detail(err, "Host style puts the bucket in front of the host name (\"%s.%s\").",
				s->bucket, ep->host);
		ws_error_hint(err, "Set s3-uri-style = path.");
		return WS_USAGE;
	}
	if (host_style && ep->https && strchr(s->bucket, '.') != NULL)
		log_warning(
			"bucket \"%s\" has a \".\" in its name: the endpoint's wildcard certificate will not "
			"match in host style; set s3-uri-style = path if TLS verification fails",
			s->bucket);

	rc = parse_bool(cfg, "s3-allow-http", &allow_http, err);
	if (rc != 0)
		return rc;
	if (!ep->https && !allow_http && !s3_host_is_loopback(ep->host)) {
		ws_error(err, WS_USAGE, "refusing plain http to S3 endpoint \"%s\"", s->endpoint);
		ws_error_detail(err, "Requests and objects would cross the network unencrypted.");
		ws_error_hint(
			err,
			"Use an https:// endpoint, or set s3-allow-http = on if the network is trusted.");
		return WS_USAGE;
	}
	*host_style_out = host_style;
	return 0;
}

/* One listing proves the bucket, the credentials, the region and the clock, once per process. */
static int open_prove_bucket(S3Store *s, WsError *err)
{
	int rc;

	char *probe = s->prefix[0] ? xasprintf("%s/", s->prefix) : xstrdup("");
	S3Param q[3];
	size_t n = 0;
	q[n++] = (S3Param){"list-type", "2"};
	q[n++] = (S3Param){"max-keys", "1"};
	if (probe[0])
		q[n++] = (S3Param){"prefix", probe};
	S3Req r = {.op = S3_OP_LIST, .method = "GET", .action = "open"};
	r.path = xstrdup(s->bucket_path);
	r.query = s3_query(q, n);
	S3Verdict v = S3_OK;
	rc = perform(s, &r, &v, err);
	if (rc == WS_FATAL && v == S3_DENIED)
		ws_error_hint(err,
			      "walship needs s3:ListBucket on bucket \"%s\" (without it S3 answers "
			      "403 for a "
			      "missing object), and s3:GetObject, s3:PutObject, s3:DeleteObject and "
			      "s3:AbortMultipartUpload on its objects, for access key id \"%s\".",
			      s->bucket, key_id(s));
	req_free(&r);
	free(probe);
	return rc;
}

int store_s3_open(const char *url, const Config *cfg, int flags, Store **out, WsError *err)
{
	S3Store *s = xcalloc(1, sizeof(*s));
	S3Endpoint ep = {0};
	bool host_style = true;
	long part_mib = 16;
	int rc;

	/* S3 has no directories, and walship never creates buckets: only STORE_OPEN_PROVEN counts. */
	*out = NULL;
	s->base.driver = &s3_driver;
	rc = s3_parse_url(url, &s->bucket, &s->prefix, err);
	if (rc != 0)
		goto done;
	s->base.display = s->prefix[0] ? xasprintf("s3://%s/%s", s->bucket, s->prefix)
				       : xasprintf("s3://%s", s->bucket);
	rc = s3_lib_load(err);
	if (rc != 0)
		goto done;

	rc = open_endpoint(s, cfg, &ep, &host_style, err);
	if (rc != 0)
		goto done;

	rc = config_get_int(cfg, "s3-part-size", 5, 5120, &part_mib, err);
	if (rc != 0)
		goto done;
	s->part_size = (size_t)part_mib * S3_MIB;
	rc = config_get_int(cfg, "io-timeout", 1, 86400, &s->io_timeout, err);
	if (rc != 0)
		goto done;

	const char *ca = config_get(cfg, "s3-ca-file");
	if (ca && ca[0]) {
		if (access(ca, R_OK) != 0) {
			rc = ws_error_errno(err, WS_FATAL, errno,
					    "could not read CA file \"%s\" (s3-ca-file)", ca);
			goto done;
		}
		s->ca_file = xstrdup(ca);
	}

	rc = load_credentials(s, cfg, err);
	if (rc != 0)
		goto done;

	s->base_url = s3_base_url(&ep, s->bucket, host_style);
	s->bucket_path = xstrdup(host_style ? "/" : "");
	s->url_path = host_style ? xstrdup("") : xasprintf("/%s", s->bucket);
	s->host = s3_host_header(&ep, s->bucket, host_style);

	if ((s->curl = s3_lib.easy_init()) == NULL) {
		rc = ws_error(err, WS_FATAL, "could not initialize libcurl");
		goto done;
	}

	if (!(flags & STORE_OPEN_PROVEN))
		rc = open_prove_bucket(s, err);

done:
	s3_endpoint_clear(&ep);
	if (rc != 0) {
		s3_free(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
