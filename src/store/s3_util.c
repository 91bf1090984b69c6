/*
 * s3_util.c - the pure parts of the S3 driver: parsing, escaping, the
 * credentials file, S3's XML and the classification of its answers.
 *
 * Paths and queries are built here already in SigV4's canonical form (each
 * path segment escaped with uppercase hex, query parameters sorted by
 * escaped name), so that what is sent is exactly what s3_sign.c signs.  XML goes through libxml2 (loaded
 * by s3_lib.c) with the network off and entities left unexpanded.
 */
#include "store/s3_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>

#include "store/s3_lib.h"
#include "util/mem.h"
#include "util/text.h"

#define S3_URL_HINT "A repository in S3 is s3://bucket or s3://bucket/prefix."

/* ------------------------------------------------------------------ */
/* URLs */

static bool bucket_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

int s3_parse_url(const char *url, char **bucket, char **prefix, WsError *err)
{
	*bucket = NULL;
	*prefix = NULL;
	if (strncmp(url, "s3://", 5) != 0) {
		ws_error(err, WS_USAGE, "invalid S3 repository \"%s\"", url);
		ws_error_hint(err, S3_URL_HINT);
		return WS_USAGE;
	}
	const char *b = url + 5;
	size_t blen = strcspn(b, "/");
	if (blen < 3 || blen > 63) {
		ws_error(err, WS_USAGE,
			 "invalid S3 repository \"%s\": bucket name must have 3 to 63 characters", url);
		ws_error_hint(err, S3_URL_HINT);
		return WS_USAGE;
	}
	for (size_t i = 0; i < blen; i++) {
		if (!bucket_char_ok(b[i])) {
			ws_error(err, WS_USAGE,
				 "invalid S3 repository \"%s\": bucket name \"%.*s\" is not valid", url,
				 (int)blen, b);
			ws_error_detail(err, "Bucket names are made of lowercase letters, digits, \".\" and "
					     "\"-\".");
			return WS_USAGE;
		}
	}
	const char *p = b + blen;
	while (*p == '/')
		p++;
	size_t plen = strlen(p);
	while (plen > 0 && p[plen - 1] == '/')
		plen--;
	char *pre = xstrndup(p, plen);
	if (plen > 0) {
		WsError kerr;
		if (store_key_check(pre, &kerr) != 0 || plen > STORE_KEY_MAX / 2) {
			ws_error(err, WS_USAGE, "invalid S3 repository \"%s\": prefix \"%s\" is not valid",
				 url, pre);
			ws_error_detail(err,
					"A prefix is made of letters, digits, \".\", \"_\", \"@\", \"-\" and "
					"\"/\" between components, at most %d characters.",
					STORE_KEY_MAX / 2);
			free(pre);
			return WS_USAGE;
		}
	}
	*bucket = xstrndup(b, blen);
	*prefix = pre;
	return 0;
}

int s3_parse_endpoint(const char *url, S3Endpoint *ep, WsError *err)
{
	memset(ep, 0, sizeof(*ep));
	const char *p;
	if (strncasecmp(url, "https://", 8) == 0) {
		ep->https = true;
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		p = url + 7;
	} else {
		ws_error(err, WS_USAGE, "invalid S3 endpoint \"%s\": must start with https:// or http://",
			 url);
		ws_error_hint(err, "Set s3-endpoint to a URL such as https://s3.eu-west-1.amazonaws.com.");
		return WS_USAGE;
	}

	size_t hlen;
	if (*p == '[') {
		const char *close = strchr(p, ']');
		if (close == NULL)
			goto bad;
		hlen = (size_t)(close - p) + 1;
	} else {
		hlen = strcspn(p, ":/?#@");
	}
	if (hlen == 0)
		goto bad;
	for (size_t i = 0; i < hlen; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || c == '[' || c == ']' || c == ':'))
			goto bad;
	}
	const char *rest = p + hlen;
	if (*rest == ':') {
		char *end = NULL;
		long port = strtol(rest + 1, &end, 10);
		if (end == rest + 1 || port < 1 || port > 65535)
			goto bad;
		ep->port = (int)port;
		rest = end;
	}
	if (strcmp(rest, "") != 0 && strcmp(rest, "/") != 0)
		goto bad;
	ep->host = xstrndup(p, hlen);
	for (char *c = ep->host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return 0;

bad:
	/* user:password@ must not reach a log. */
	if (strchr(url, '@') != NULL)
		ws_error(err, WS_USAGE, "invalid S3 endpoint: user information is not allowed");
	else
		ws_error(err, WS_USAGE, "invalid S3 endpoint \"%s\"", url);
	ws_error_detail(err, "An endpoint is http[s]://host[:port], with no path, user or query.");
	return WS_USAGE;
}

void s3_endpoint_clear(S3Endpoint *ep)
{
	free(ep->host);
	ep->host = NULL;
}

/* The host without IPv6 brackets, in buf. */
static const char *bare_host(const char *host, char *buf, size_t size)
{
	size_t len = strlen(host);
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		if (len - 2 >= size)
			return "";
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		return buf;
	}
	return host;
}

bool s3_host_is_loopback(const char *host)
{
	char buf[64];
	const char *h = bare_host(host, buf, sizeof(buf));
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(h, "localhost") == 0 || strcasecmp(h, "localhost.") == 0)
		return true;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return memcmp(&a6, &in6addr_loopback, sizeof(a6)) == 0;
	return false;
}

bool s3_host_is_ip(const char *host)
{
	char buf[64];
	const char *h = bare_host(host, buf, sizeof(buf));
	struct in_addr a4;
	struct in6_addr a6;
	return inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1;
}

char *s3_base_url(const S3Endpoint *ep, const char *bucket, bool host_style)
{
	char port[16] = "";
	if (ep->port != 0)
		snprintf(port, sizeof(port), ":%d", ep->port);
	const char *scheme = ep->https ? "https" : "http";
	if (host_style)
		return xasprintf("%s://%s.%s%s", scheme, bucket, ep->host, port);
	return xasprintf("%s://%s%s/%s", scheme, ep->host, port, bucket);
}

char *s3_host_header(const S3Endpoint *ep, const char *bucket, bool host_style)
{
	char port[16] = "";
	if (ep->port != 0 && ep->port != (ep->https ? 443 : 80))
		snprintf(port, sizeof(port), ":%d", ep->port);
	if (host_style)
		return xasprintf("%s.%s%s", bucket, ep->host, port);
	return xasprintf("%s%s", ep->host, port);
}

/* RFC 3986's unreserved characters, whatever the locale (isalnum would follow it). */
static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_' || c == '~';
}

char *s3_escape(const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(s);
	char *out = xmalloc(len * 3 + 1);
	char *o = out;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (unreserved(c) || (keep_slash && c == '/')) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

typedef struct EscapedParam {
	char *name;
	char *value;
} EscapedParam;

/* SigV4 sorts the escaped names bytewise, then the escaped values of a repeated name. */
static int param_cmp(const void *a, const void *b)
{
	const EscapedParam *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c != 0 ? c : strcmp(x->value, y->value);
}

char *s3_query(const S3Param *params, size_t n)
{
	EscapedParam *e = xmalloc((n ? n : 1) * sizeof(*e));
	for (size_t i = 0; i < n; i++) {
		e[i].name = s3_escape(params[i].name, false);
		e[i].value = s3_escape(params[i].value ? params[i].value : "", false);
	}
	qsort(e, n, sizeof(*e), param_cmp);

	Text out = {0};
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			text_str(&out, "&");
		text_str(&out, e[i].name);
		text_str(&out, "=");
		text_str(&out, e[i].value);
		free(e[i].name);
		free(e[i].value);
	}
	free(e);
	return out.s ? out.s : xstrdup("");
}

/* ------------------------------------------------------------------ */
/* credentials file */

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		s[--len] = '\0';
	return s;
}

static void wipe_free(char *s)
{
	if (s == NULL)
		return;
	/* volatile: keep the compiler from dropping the wipe of memory about to be freed. */
	for (volatile char *p = s; *p; p++)
		*p = '\0';
	free(s);
}

void s3_creds_clear(S3Creds *c)
{
	wipe_free(c->key_id);
	wipe_free(c->secret);
	wipe_free(c->token);
	c->key_id = c->secret = c->token = NULL;
}

int s3_creds_parse(const char *text, const char *profile, const char *path, S3Creds *out, WsError *err)
{
	char *copy = xstrdup(text);
	char *save = NULL;
	bool in_profile = false, seen = false;
	int rc = 0;
	unsigned lineno = 0;

	memset(out, 0, sizeof(*out));
	/* strtok_r would skip empty lines and so miscount; walk by hand. */
	for (char *line = copy; line != NULL; line = save) {
		char *nl = strchr(line, '\n');
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		char *l = trim(line);
		if (*l == '\0' || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *close = strchr(l, ']');
			if (close == NULL) {
				rc = ws_error(err, WS_FATAL, "invalid line %u in credentials file \"%s\"",
					      lineno, path);
				goto done;
			}
			*close = '\0';
			char *name = trim(l + 1);
			if (strncmp(name, "profile ", 8) == 0)
				name = trim(name + 8);
			in_profile = strcmp(name, profile) == 0;
			seen = seen || in_profile;
			continue;
		}
		char *eq = strchr(l, '=');
		if (eq == NULL) {
			/* Never quote the line: it may hold a secret. */
			rc = ws_error(err, WS_FATAL, "invalid line %u in credentials file \"%s\"", lineno,
				      path);
			ws_error_detail(err, "Lines are \"[profile]\" or \"key = value\".");
			goto done;
		}
		if (!in_profile)
			continue;
		*eq = '\0';
		char *key = trim(l);
		char *value = trim(eq + 1);
		char **slot = NULL;
		if (strcasecmp(key, "aws_access_key_id") == 0)
			slot = &out->key_id;
		else if (strcasecmp(key, "aws_secret_access_key") == 0)
			slot = &out->secret;
		else if (strcasecmp(key, "aws_session_token") == 0)
			slot = &out->token;
		if (slot != NULL && *value != '\0') {
			wipe_free(*slot);
			*slot = xstrdup(value);
		}
	}
	if (!seen) {
		rc = ws_error(err, WS_FATAL, "profile \"%s\" not found in credentials file \"%s\"", profile,
			      path);
		ws_error_hint(err,
			      "Set s3-profile (or AWS_PROFILE) to a profile of that file, or set s3-key and "
			      "s3-key-secret.");
	} else if (out->key_id == NULL || out->secret == NULL) {
		rc = ws_error(err, WS_FATAL, "profile \"%s\" in credentials file \"%s\" lacks %s", profile,
			      path, out->key_id == NULL ? "aws_access_key_id" : "aws_secret_access_key");
	}

done:
	wipe_free(copy);
	if (rc != 0)
		s3_creds_clear(out);
	return rc;
}

/* ------------------------------------------------------------------ */
/* XML */

/*
 * The parsers load libxml2 themselves (a no-op after store_s3_open), so that
 * they can be used, and tested, without opening a store.
 */
static xmlDocPtr xml_read(const char *body, size_t len)
{
	if (len == 0 || len > INT32_MAX || s3_lib_load(NULL) != 0)
		return NULL;
	/* No XML_PARSE_NOENT or DTDLOAD: entities stay unexpanded and nothing is fetched. */
	return s3_lib.read_memory(body, (int)len, "s3.xml", NULL,
				  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
					  XML_PARSE_NOBLANKS);
}

static bool name_is(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr n = parent->children; n != NULL; n = n->next)
		if (name_is(n, name))
			return n;
	return NULL;
}

/* The text of parent's child name, malloc'd (xmlFree), or NULL. */
static char *child_text(xmlNodePtr parent, const char *name)
{
	xmlNodePtr n = child(parent, name);
	return n ? (char *)s3_lib.node_get_content(n) : NULL;
}

static void copy_text(xmlNodePtr parent, const char *name, char *out, size_t size)
{
	char *t = child_text(parent, name);
	out[0] = '\0';
	if (t != NULL) {
		snprintf(out, size, "%s", t);
		s3_xml_free(t);
	}
	/* The text ends up in one-line log messages. */
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

bool s3_parse_error(const char *body, size_t len, S3ErrorBody *out)
{
	memset(out, 0, sizeof(*out));
	xmlDocPtr doc = xml_read(body, len);
	if (doc == NULL)
		return false;
	xmlNodePtr root = s3_lib.doc_get_root_element(doc);
	bool is_error = root != NULL && name_is(root, "Error");
	if (is_error) {
		copy_text(root, "Code", out->code, sizeof(out->code));
		copy_text(root, "Message", out->message, sizeof(out->message));
		copy_text(root, "RequestId", out->request_id, sizeof(out->request_id));
		copy_text(root, "Region", out->region, sizeof(out->region));
	}
	s3_lib.free_doc(doc);
	return is_error;
}

int64_t s3_parse_time(const char *iso)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return -1;
	if (*end == '.') {
		end++;
		while (isdigit((unsigned char)*end))
			end++;
	}
	if (strcmp(end, "Z") != 0 && strcmp(end, "") != 0 && strcmp(end, "+00:00") != 0)
		return -1;
	return (int64_t)timegm(&tm);
}

void s3_list_page_clear(S3ListPage *page)
{
	for (size_t i = 0; i < page->n; i++)
		free(page->entries[i].key);
	free(page->entries);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

int s3_parse_list(const char *body, size_t len, S3ListPage *page, WsError *err)
{
	size_t cap = 0;
	memset(page, 0, sizeof(*page));
	int rc = s3_lib_load(err);
	if (rc != 0)
		return rc;
	xmlDocPtr doc = xml_read(body, len);
	xmlNodePtr root = doc ? s3_lib.doc_get_root_element(doc) : NULL;
	if (root == NULL || !name_is(root, "ListBucketResult")) {
		rc = ws_error(err, WS_FATAL,
			      "S3 answered a listing with something that is not a ListBucketResult");
		goto done;
	}
	for (xmlNodePtr n = root->children; n != NULL; n = n->next) {
		if (name_is(n, "IsTruncated")) {
			char *t = (char *)s3_lib.node_get_content(n);
			page->truncated = t != NULL && strcmp(t, "true") == 0;
			s3_xml_free(t);
		} else if (name_is(n, "NextContinuationToken")) {
			char *t = (char *)s3_lib.node_get_content(n);
			free(page->next_token);
			page->next_token = xstrdup(t ? t : "");
			s3_xml_free(t);
		} else if (name_is(n, "Contents")) {
			char *key = child_text(n, "Key");
			char *size = child_text(n, "Size");
			char *mtime = child_text(n, "LastModified");
			char *end = NULL;
			unsigned long long sz = size ? strtoull(size, &end, 10) : 0;
			bool ok = key != NULL && size != NULL && end != size && *end == '\0';
			if (ok) {
				if (page->n == cap) {
					cap = cap ? cap * 2 : 256;
					page->entries = xrealloc(page->entries, cap * sizeof(*page->entries));
				}
				S3ListEntry *e = &page->entries[page->n++];
				e->key = xstrdup(key);
				e->st.size = (uint64_t)sz;
				e->st.mtime = mtime ? s3_parse_time(mtime) : 0;
				if (e->st.mtime < 0)
					e->st.mtime = 0;
			}
			s3_xml_free(key);
			s3_xml_free(size);
			s3_xml_free(mtime);
			if (!ok) {
				rc = ws_error(err, WS_FATAL,
					      "S3 answered a listing with an entry lacking its key or size");
				goto done;
			}
		}
	}
	if (page->truncated && (page->next_token == NULL || page->next_token[0] == '\0'))
		rc = ws_error(err, WS_FATAL, "S3 answered a truncated listing without a continuation token");

done:
	if (doc != NULL)
		s3_lib.free_doc(doc);
	if (rc != 0)
		s3_list_page_clear(page);
	return rc;
}

char *s3_parse_upload_id(const char *body, size_t len)
{
	char *id = NULL;
	xmlDocPtr doc = xml_read(body, len);
	xmlNodePtr root = doc ? s3_lib.doc_get_root_element(doc) : NULL;
	if (root != NULL && name_is(root, "InitiateMultipartUploadResult")) {
		char *t = child_text(root, "UploadId");
		if (t != NULL && t[0] != '\0')
			id = xstrdup(t);
		s3_xml_free(t);
	}
	if (doc != NULL)
		s3_lib.free_doc(doc);
	return id;
}

/* Escape the few characters XML text may not hold as such. */
static char *xml_text(const char *s)
{
	size_t len = 0;
	for (const char *p = s; *p; p++)
		len += (*p == '&') ? 5 : (*p == '<' || *p == '>') ? 4 : 1;
	char *out = xmalloc(len + 1);
	char *o = out;
	for (const char *p = s; *p; p++) {
		const char *rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : NULL;
		if (rep) {
			memcpy(o, rep, strlen(rep));
			o += strlen(rep);
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

char *s3_complete_body(char *const *etags, size_t n)
{
	size_t cap = 128 + n * 128, len = 0;
	char *out = xmalloc(cap);
	len += (size_t)snprintf(
		out, cap, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (size_t i = 0; i < n; i++) {
		char *etag = xml_text(etags[i]);
		char *part =
			xasprintf("<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1, etag);
		size_t plen = strlen(part);
		if (len + plen + 64 > cap) {
			cap = (len + plen + 64) * 2;
			out = xrealloc(out, cap);
		}
		memcpy(out + len, part, plen + 1);
		len += plen;
		free(part);
		free(etag);
	}
	snprintf(out + len, cap - len, "</CompleteMultipartUpload>");
	return out;
}

/* ------------------------------------------------------------------ */
/* classification */

static bool code_is(const char *code, const char *want)
{
	return code != NULL && strcmp(code, want) == 0;
}

S3Verdict s3_classify_http(S3Op op, long status, const char *code)
{
	if (code == NULL)
		code = "";
	if (status >= 200 && status < 300)
		return S3_OK;

	/* Codes first: they are the same whatever status a server pairs them with. */
	if (code_is(code, "NoSuchBucket"))
		return S3_NO_BUCKET;
	if (code_is(code, "InvalidAccessKeyId") || code_is(code, "SignatureDoesNotMatch") ||
	    code_is(code, "InvalidClientTokenId") || code_is(code, "AuthFailure"))
		return S3_AUTH;
	if (code_is(code, "ExpiredToken") || code_is(code, "InvalidToken") ||
	    code_is(code, "TokenRefreshRequired"))
		return S3_TOKEN;
	if (code_is(code, "RequestTimeTooSkewed"))
		return S3_SKEW;
	if (code_is(code, "AuthorizationHeaderMalformed") || code_is(code, "PermanentRedirect") ||
	    code_is(code, "IllegalLocationConstraintException"))
		return S3_REGION;
	if (code_is(code, "SlowDown") || code_is(code, "InternalError") ||
	    code_is(code, "ServiceUnavailable") || code_is(code, "RequestTimeout") ||
	    code_is(code, "ConditionalRequestConflict") || code_is(code, "OperationAborted") ||
	    code_is(code, "RequestTimeoutException"))
		return S3_RETRY;

	switch (status) {
	case 301:
	case 307:
		return S3_REGION;
	case 403:
		if (code[0] == '\0' || code_is(code, "AccessDenied"))
			return (op == S3_OP_GET || op == S3_OP_HEAD) ? S3_DENIED_KEY : S3_DENIED;
		return S3_DENIED;
	case 404:
		/*
		 * Only S3's own NoSuchKey error proves a key missing: a 404 without it
		 * may be a misrouting proxy's or a wrong endpoint's page.  A HEAD
		 * answer has no body to tell, so it must be confirmed (s3.c).
		 */
		if (code_is(code, "NoSuchKey"))
			return S3_NOT_FOUND;
		if (code[0] == '\0' && op == S3_OP_HEAD)
			return S3_HEAD_404;
		return S3_FATAL;
	case 408:
	case 429:
		return S3_RETRY;
	case 409:
		return S3_FATAL;
	case 412:
		if (op == S3_OP_PUT || op == S3_OP_COMPLETE)
			return S3_EXISTS;
		return S3_FATAL;
	case 416:
		return op == S3_OP_GET ? S3_RANGE : S3_FATAL;
	case 500:
	case 502:
	case 503:
	case 504:
		return S3_RETRY;
	default:
		/* 501 NotImplemented and other 5xx that no retry will change. */
		return status > 504 && status < 600 ? S3_RETRY : S3_FATAL;
	}
}

bool s3_curl_transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
#if LIBCURL_VERSION_NUM >= 0x074400 /* 7.68.0: older headers lack it, and older curls never answer it */
	case CURLE_HTTP3:
#endif
		return true;
	default:
		return false;
	}
}

void s3_multipart_etag(const unsigned char (*md5s)[16], size_t n, char *out, size_t outsize)
{
	unsigned char digest[16];
	char hex[33];
	unsigned int dlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
	for (size_t i = 0; i < n; i++)
		EVP_DigestUpdate(ctx, md5s[i], 16);
	EVP_DigestFinal_ex(ctx, digest, &dlen);
	EVP_MD_CTX_free(ctx);
	hex_encode(digest, sizeof(digest), hex);
	snprintf(out, outsize, "%s-%zu", hex, n);
}
