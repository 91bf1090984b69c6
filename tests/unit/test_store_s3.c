/*
 * test_store_s3.c - the pure parts of the S3 driver (store/s3_util.h): the
 * repository URL and endpoint, the Host header, the request paths and
 * queries in the canonical form SigV4 signs (the signer is tested in
 * test_s3_sign.c), the shared-credentials file, S3's XML answers, and which
 * answers are retried, missing, or fatal.  The driver against a real server
 * is tested in tests/integration/test_s3.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "store/s3_util.h"
#include "util/mem.h"

static void test_url(void **state)
{
	(void)state;
	char *bucket, *prefix;
	WsError err;

	assert_int_equal(s3_parse_url("s3://my-bucket", &bucket, &prefix, &err), 0);
	assert_string_equal(bucket, "my-bucket");
	assert_string_equal(prefix, "");
	free(bucket);
	free(prefix);

	assert_int_equal(s3_parse_url("s3://my.bucket/a/b/", &bucket, &prefix, &err), 0);
	assert_string_equal(bucket, "my.bucket");
	assert_string_equal(prefix, "a/b");
	free(bucket);
	free(prefix);

	assert_int_equal(s3_parse_url("s3://bkt//walship", &bucket, &prefix, &err), 0);
	assert_string_equal(prefix, "walship");
	free(bucket);
	free(prefix);

	assert_int_equal(s3_parse_url("s3://ab", &bucket, &prefix, &err), WS_USAGE);
	assert_null(bucket);
	assert_int_equal(s3_parse_url("s3://My_Bucket/x", &bucket, &prefix, &err), WS_USAGE);
	assert_non_null(strstr(err.msg, "My_Bucket"));
	assert_int_equal(s3_parse_url("s3://bucket/a//b", &bucket, &prefix, &err), WS_USAGE);
	assert_int_equal(s3_parse_url("s3://bucket/a/../b", &bucket, &prefix, &err), WS_USAGE);
	assert_int_equal(s3_parse_url("s3://bucket/a?b", &bucket, &prefix, &err), WS_USAGE);
	assert_int_equal(s3_parse_url("s3://bucket/sp ace", &bucket, &prefix, &err), WS_USAGE);
}

static void test_endpoint(void **state)
{
	(void)state;
	S3Endpoint ep;
	WsError err;

	assert_int_equal(s3_parse_endpoint("https://s3.eu-west-1.amazonaws.com", &ep, &err), 0);
	assert_true(ep.https);
	assert_string_equal(ep.host, "s3.eu-west-1.amazonaws.com");
	assert_int_equal(ep.port, 0);
	char *u = s3_base_url(&ep, "bkt", true);
	assert_string_equal(u, "https://bkt.s3.eu-west-1.amazonaws.com");
	free(u);
	u = s3_base_url(&ep, "bkt", false);
	assert_string_equal(u, "https://s3.eu-west-1.amazonaws.com/bkt");
	free(u);
	s3_endpoint_clear(&ep);

	assert_int_equal(s3_parse_endpoint("http://127.0.0.1:9000/", &ep, &err), 0);
	assert_false(ep.https);
	assert_int_equal(ep.port, 9000);
	u = s3_base_url(&ep, "bkt", false);
	assert_string_equal(u, "http://127.0.0.1:9000/bkt");
	free(u);
	s3_endpoint_clear(&ep);

	assert_int_equal(s3_parse_endpoint("HTTP://[::1]:8080", &ep, &err), 0);
	assert_string_equal(ep.host, "[::1]");
	assert_int_equal(ep.port, 8080);
	s3_endpoint_clear(&ep);

	assert_int_equal(s3_parse_endpoint("ftp://host", &ep, &err), WS_USAGE);
	assert_int_equal(s3_parse_endpoint("https://user:pw@host", &ep, &err), WS_USAGE);
	assert_null(strstr(err.msg, "pw"));
	assert_int_equal(s3_parse_endpoint("https://host/path", &ep, &err), WS_USAGE);
	assert_int_equal(s3_parse_endpoint("https://host:0", &ep, &err), WS_USAGE);
	assert_int_equal(s3_parse_endpoint("https://host:99999", &ep, &err), WS_USAGE);
	assert_int_equal(s3_parse_endpoint("https://", &ep, &err), WS_USAGE);
	assert_int_equal(s3_parse_endpoint("https://host?x=1", &ep, &err), WS_USAGE);
}

/* The Host header curl sends and SigV4 signs: the port only when it is not the scheme's default. */
static void test_host_header(void **state)
{
	(void)state;
	static const struct {
		const char *endpoint;
		bool host_style;
		const char *want;
	} cases[] = {
		{"https://s3.eu-west-1.amazonaws.com", true, "bkt.s3.eu-west-1.amazonaws.com"},
		{"https://s3.eu-west-1.amazonaws.com", false, "s3.eu-west-1.amazonaws.com"},
		{"https://S3.Example.COM:443/", true, "bkt.s3.example.com"},
		{"http://minio.lan:80", false, "minio.lan"},
		{"https://minio.lan:8443", true, "bkt.minio.lan:8443"},
		{"http://minio.lan:443", false, "minio.lan:443"},
		{"https://minio.lan:80", false, "minio.lan:80"},
		{"http://127.0.0.1:9000", false, "127.0.0.1:9000"},
		{"http://[::1]:9000", false, "[::1]:9000"},
		{"http://[::1]", false, "[::1]"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		S3Endpoint ep;
		WsError err;
		assert_int_equal(s3_parse_endpoint(cases[i].endpoint, &ep, &err), 0);
		char *h = s3_host_header(&ep, "bkt", cases[i].host_style);
		assert_string_equal(h, cases[i].want);
		free(h);
		s3_endpoint_clear(&ep);
	}
}

static void test_loopback(void **state)
{
	(void)state;
	assert_true(s3_host_is_loopback("127.0.0.1"));
	assert_true(s3_host_is_loopback("127.255.3.4"));
	assert_true(s3_host_is_loopback("localhost"));
	assert_true(s3_host_is_loopback("LOCALHOST"));
	assert_true(s3_host_is_loopback("[::1]"));
	assert_true(s3_host_is_loopback("::1"));
	assert_false(s3_host_is_loopback("128.0.0.1"));
	assert_false(s3_host_is_loopback("10.0.0.1"));
	assert_false(s3_host_is_loopback("[::2]"));
	assert_false(s3_host_is_loopback("localhost.example.com"));
	assert_false(s3_host_is_loopback("127.0.0.1.nip.io"));
	assert_false(s3_host_is_loopback("s3.amazonaws.com"));

	assert_true(s3_host_is_ip("10.1.2.3"));
	assert_true(s3_host_is_ip("[fe80::1]"));
	assert_false(s3_host_is_ip("minio.local"));
}

static void test_escape(void **state)
{
	(void)state;
	char *e = s3_escape("wal/0000000100000001/a@b c~d_e.f-g", true);
	assert_string_equal(e, "wal/0000000100000001/a%40b%20c~d_e.f-g");
	free(e);
	e = s3_escape("a/b+c=d&\xc3\xa9", false);
	assert_string_equal(e, "a%2Fb%2Bc%3Dd%26%C3%A9");
	free(e);
	e = s3_escape("", false);
	assert_string_equal(e, "");
	free(e);
}

static void test_query(void **state)
{
	(void)state;
	S3Param q[] = {{"prefix", "repo/15-1/wal/"}, {"list-type", "2"}, {"continuation-token", "a+b/c=="}};
	char *s = s3_query(q, 3);
	assert_string_equal(s, "continuation-token=a%2Bb%2Fc%3D%3D&list-type=2&prefix=repo%2F15-1%2Fwal%2F");
	free(s);

	S3Param bare[] = {{"uploads", ""}};
	s = s3_query(bare, 1);
	assert_string_equal(s, "uploads=");
	free(s);

	S3Param part[] = {{"uploadId", "x~y"}, {"partNumber", "12"}};
	s = s3_query(part, 2);
	assert_string_equal(s, "partNumber=12&uploadId=x~y");
	free(s);

	s = s3_query(NULL, 0);
	assert_string_equal(s, "");
	free(s);

	/* Sorted as escaped ("%2B" before "-" before "A"), a repeated name by value. */
	S3Param odd[] = {{"b", "2"}, {"A", ""}, {"-x", "1"}, {"+", "p"}, {"b", "10"}};
	s = s3_query(odd, 5);
	assert_string_equal(s, "%2B=p&-x=1&A=&b=10&b=2");
	free(s);
}

static void test_creds(void **state)
{
	(void)state;
	S3Creds c;
	WsError err;
	const char *text = "# comment\n"
			   "[default]\n"
			   "aws_access_key_id = AKIADEFAULT\n"
			   "aws_secret_access_key = defaultsecret\n"
			   "\n"
			   "[profile walship]\r\n"
			   "  aws_access_key_id=AKIAWALSHIP  \r\n"
			   "aws_secret_access_key = s3cr3t/with+chars=\r\n"
			   "aws_session_token = TOKEN==\r\n"
			   "region = eu-west-1\n"
			   "[other]\n"
			   "aws_access_key_id = AKIAOTHER\n";

	assert_int_equal(s3_creds_parse(text, "walship", "/x/credentials", &c, &err), 0);
	assert_string_equal(c.key_id, "AKIAWALSHIP");
	assert_string_equal(c.secret, "s3cr3t/with+chars=");
	assert_string_equal(c.token, "TOKEN==");
	s3_creds_clear(&c);
	assert_null(c.secret);

	assert_int_equal(s3_creds_parse(text, "default", "/x/credentials", &c, &err), 0);
	assert_string_equal(c.key_id, "AKIADEFAULT");
	assert_null(c.token);
	s3_creds_clear(&c);

	assert_int_equal(s3_creds_parse(text, "nope", "/x/credentials", &c, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "\"nope\""));
	assert_non_null(strstr(err.msg, "/x/credentials"));
	assert_null(c.key_id);

	assert_int_equal(s3_creds_parse(text, "other", "/x/credentials", &c, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "aws_secret_access_key"));

	/* A malformed line is reported by number, never quoted (it may hold a secret). */
	assert_int_equal(s3_creds_parse("[default]\nsupersecretvalue\n", "default", "/f", &c, &err),
			 WS_FATAL);
	assert_non_null(strstr(err.msg, "line 2"));
	assert_null(strstr(err.msg, "supersecret"));
	assert_null(strstr(err.detail, "supersecret"));
}

static void test_error_xml(void **state)
{
	(void)state;
	S3ErrorBody eb;
	const char *body =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated "
		"does not match.\nCheck your key.</Message><AWSAccessKeyId>AKIAX</AWSAccessKeyId>"
		"<RequestId>4442587FB7D0A2F9</RequestId></Error>";
	assert_true(s3_parse_error(body, strlen(body), &eb));
	assert_string_equal(eb.code, "SignatureDoesNotMatch");
	assert_string_equal(eb.message,
			    "The request signature we calculated does not match. Check your key.");
	assert_string_equal(eb.request_id, "4442587FB7D0A2F9");

	const char *redirect = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>m</Message>"
			       "<Region>eu-central-1</Region></Error>";
	assert_true(s3_parse_error(redirect, strlen(redirect), &eb));
	assert_string_equal(eb.region, "eu-central-1");

	const char *ok = "<CompleteMultipartUploadResult><ETag>\"x\"</ETag></CompleteMultipartUploadResult>";
	assert_false(s3_parse_error(ok, strlen(ok), &eb));
	assert_false(s3_parse_error("", 0, &eb));
	assert_false(s3_parse_error("<html>502 Bad Gateway", 21, &eb));

	/* External entities are never fetched nor expanded. */
	const char *xxe =
		"<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		"<Error><Code>&x;</Code><Message>m</Message></Error>";
	assert_true(s3_parse_error(xxe, strlen(xxe), &eb));
	assert_null(strstr(eb.code, "root:"));
}

static void test_list_xml(void **state)
{
	(void)state;
	S3ListPage page;
	WsError err;
	const char *body =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>bkt</Name><Prefix>repo/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
		"<IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/"
		"wm36Hy4vbOwM="
		"</NextContinuationToken>"
		"<Contents><Key>repo/walship.json</Key><LastModified>2024-05-01T10:20:30.000Z</LastModified>"
		"<ETag>\"abc\"</ETag><Size>512</Size><StorageClass>STANDARD</StorageClass></Contents>"
		"<Contents><Key>repo/a&amp;b</Key><LastModified>1970-01-02T00:00:00Z</LastModified>"
		"<Size>17179869184</Size></Contents>"
		"</ListBucketResult>";
	assert_int_equal(s3_parse_list(body, strlen(body), &page, &err), 0);
	assert_int_equal(page.n, 2);
	assert_true(page.truncated);
	assert_string_equal(page.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	assert_string_equal(page.entries[0].key, "repo/walship.json");
	assert_int_equal(page.entries[0].st.size, 512);
	assert_int_equal(page.entries[0].st.mtime, 1714558830);
	assert_string_equal(page.entries[1].key, "repo/a&b");
	assert_int_equal(page.entries[1].st.size, 17179869184ULL);
	assert_int_equal(page.entries[1].st.mtime, 86400);
	s3_list_page_clear(&page);

	const char *last = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
	assert_int_equal(s3_parse_list(last, strlen(last), &page, &err), 0);
	assert_int_equal(page.n, 0);
	assert_false(page.truncated);
	s3_list_page_clear(&page);

	const char *no_token = "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
	assert_int_equal(s3_parse_list(no_token, strlen(no_token), &page, &err), WS_FATAL);
	const char *no_size = "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>";
	assert_int_equal(s3_parse_list(no_size, strlen(no_size), &page, &err), WS_FATAL);
	const char *error = "<Error><Code>InternalError</Code></Error>";
	assert_int_equal(s3_parse_list(error, strlen(error), &page, &err), WS_FATAL);
	assert_int_equal(s3_parse_list("garbage", 7, &page, &err), WS_FATAL);
}

static void test_multipart_xml(void **state)
{
	(void)state;
	const char *init = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
			   "<UploadId>VXBsb2FkIElE-1</UploadId></InitiateMultipartUploadResult>";
	char *id = s3_parse_upload_id(init, strlen(init));
	assert_string_equal(id, "VXBsb2FkIElE-1");
	free(id);
	assert_null(s3_parse_upload_id("<Error><Code>x</Code></Error>", 29));

	char *etags[] = {"\"aa\"", "\"b&b\""};
	char *body = s3_complete_body(etags, 2);
	assert_non_null(strstr(body, "<Part><PartNumber>1</PartNumber><ETag>\"aa\"</ETag></Part>"
				     "<Part><PartNumber>2</PartNumber><ETag>\"b&amp;b\"</ETag></Part>"
				     "</CompleteMultipartUpload>"));
	assert_true(strncmp(body, "<CompleteMultipartUpload", 24) == 0);
	free(body);

	/* Two parts: MD5("hello") and MD5("world"), as S3 computes a multipart ETag. */
	const unsigned char md5s[2][16] = {
		{0x5d, 0x41, 0x40, 0x2a, 0xbc, 0x4b, 0x2a, 0x76, 0xb9, 0x71, 0x9d, 0x91, 0x10, 0x17, 0xc5,
		 0x92},
		{0x7d, 0x79, 0x30, 0x37, 0xa0, 0x76, 0x01, 0x86, 0x57, 0x4b, 0x02, 0x82, 0xf2, 0xf4, 0x35,
		 0xe7},
	};
	char etag[64];
	s3_multipart_etag(md5s, 2, etag, sizeof(etag));
	assert_string_equal(etag, "065947336a2f2a95ba8899f3675c3be6-2");
}

static void test_time(void **state)
{
	(void)state;
	assert_int_equal(s3_parse_time("2024-05-01T10:20:30.000Z"), 1714558830);
	assert_int_equal(s3_parse_time("2024-05-01T10:20:30Z"), 1714558830);
	assert_int_equal(s3_parse_time("yesterday"), -1);
	assert_int_equal(s3_parse_time("2024-05-01T10:20:30+02:00"), -1);
}

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(s3_classify_http(S3_OP_GET, 200, ""), S3_OK);
	assert_int_equal(s3_classify_http(S3_OP_GET, 206, ""), S3_OK);
	assert_int_equal(s3_classify_http(S3_OP_OTHER, 204, ""), S3_OK);

	assert_int_equal(s3_classify_http(S3_OP_GET, 404, "NoSuchKey"), S3_NOT_FOUND);
	/* Only S3's NoSuchKey proves a key missing: not a 404 page of a proxy or another server. */
	assert_int_equal(s3_classify_http(S3_OP_GET, 404, ""), S3_FATAL);
	assert_int_equal(s3_classify_http(S3_OP_GET, 404, "NotFound"), S3_FATAL);
	/* A HEAD answer has no body: its 404 is confirmed with a GET before it counts. */
	assert_int_equal(s3_classify_http(S3_OP_HEAD, 404, ""), S3_HEAD_404);
	assert_int_equal(s3_classify_http(S3_OP_HEAD, 404, "NoSuchKey"), S3_NOT_FOUND);
	assert_int_equal(s3_classify_http(S3_OP_GET, 404, "NoSuchBucket"), S3_NO_BUCKET);
	assert_int_equal(s3_classify_http(S3_OP_LIST, 404, "NoSuchBucket"), S3_NO_BUCKET);
	assert_int_equal(s3_classify_http(S3_OP_COMPLETE, 404, "NoSuchUpload"), S3_FATAL);
	assert_int_equal(s3_classify_http(S3_OP_LIST, 404, ""), S3_FATAL);

	/* 403 is never "not found": without s3:ListBucket S3 hides missing keys behind it. */
	assert_int_equal(s3_classify_http(S3_OP_GET, 403, "AccessDenied"), S3_DENIED_KEY);
	assert_int_equal(s3_classify_http(S3_OP_HEAD, 403, ""), S3_DENIED_KEY);
	assert_int_equal(s3_classify_http(S3_OP_PUT, 403, "AccessDenied"), S3_DENIED);
	assert_int_equal(s3_classify_http(S3_OP_LIST, 403, "AccessDenied"), S3_DENIED);
	assert_int_equal(s3_classify_http(S3_OP_GET, 403, "InvalidAccessKeyId"), S3_AUTH);
	assert_int_equal(s3_classify_http(S3_OP_PUT, 403, "SignatureDoesNotMatch"), S3_AUTH);
	assert_int_equal(s3_classify_http(S3_OP_LIST, 403, "RequestTimeTooSkewed"), S3_SKEW);
	assert_int_equal(s3_classify_http(S3_OP_LIST, 400, "ExpiredToken"), S3_TOKEN);
	assert_int_equal(s3_classify_http(S3_OP_LIST, 403, "InvalidToken"), S3_TOKEN);
	assert_int_equal(s3_classify_http(S3_OP_LIST, 400, "AuthorizationHeaderMalformed"), S3_REGION);
	assert_int_equal(s3_classify_http(S3_OP_LIST, 301, "PermanentRedirect"), S3_REGION);

	assert_int_equal(s3_classify_http(S3_OP_PUT, 412, "PreconditionFailed"), S3_EXISTS);
	assert_int_equal(s3_classify_http(S3_OP_COMPLETE, 412, "PreconditionFailed"), S3_EXISTS);
	assert_int_equal(s3_classify_http(S3_OP_GET, 412, "PreconditionFailed"), S3_FATAL);
	assert_int_equal(s3_classify_http(S3_OP_PUT, 409, "ConditionalRequestConflict"), S3_RETRY);
	assert_int_equal(s3_classify_http(S3_OP_PUT, 409, "BucketNotEmpty"), S3_FATAL);
	assert_int_equal(s3_classify_http(S3_OP_GET, 416, "InvalidRange"), S3_RANGE);

	assert_int_equal(s3_classify_http(S3_OP_PUT, 500, "InternalError"), S3_RETRY);
	assert_int_equal(s3_classify_http(S3_OP_PUT, 503, "SlowDown"), S3_RETRY);
	assert_int_equal(s3_classify_http(S3_OP_GET, 502, ""), S3_RETRY);
	assert_int_equal(s3_classify_http(S3_OP_GET, 504, ""), S3_RETRY);
	assert_int_equal(s3_classify_http(S3_OP_GET, 429, ""), S3_RETRY);
	assert_int_equal(s3_classify_http(S3_OP_PUT, 400, "RequestTimeout"), S3_RETRY);
	assert_int_equal(s3_classify_http(S3_OP_COMPLETE, 200, "InternalError"), S3_OK);
	assert_int_equal(s3_classify_http(S3_OP_PUT, 501, "NotImplemented"), S3_FATAL);
	assert_int_equal(s3_classify_http(S3_OP_PUT, 400, "InvalidArgument"), S3_FATAL);
	assert_int_equal(s3_classify_http(S3_OP_PUT, 400, "BadDigest"), S3_FATAL);

	assert_true(s3_curl_transient(CURLE_COULDNT_CONNECT));
	assert_true(s3_curl_transient(CURLE_OPERATION_TIMEDOUT));
	assert_true(s3_curl_transient(CURLE_RECV_ERROR));
	assert_true(s3_curl_transient(CURLE_SEND_ERROR));
	assert_true(s3_curl_transient(CURLE_GOT_NOTHING));
	assert_true(s3_curl_transient(CURLE_PARTIAL_FILE));
	assert_false(s3_curl_transient(CURLE_PEER_FAILED_VERIFICATION));
	assert_false(s3_curl_transient(CURLE_SSL_CACERT_BADFILE));
	assert_false(s3_curl_transient(CURLE_URL_MALFORMAT));
	assert_false(s3_curl_transient(CURLE_WRITE_ERROR));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),         cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_host_header), cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_escape),      cmocka_unit_test(test_query),
		cmocka_unit_test(test_creds),       cmocka_unit_test(test_error_xml),
		cmocka_unit_test(test_list_xml),    cmocka_unit_test(test_multipart_xml),
		cmocka_unit_test(test_time),        cmocka_unit_test(test_classify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
