/*
 * test_s3_sign.c - walship's SigV4 signer (store/s3_sign.h) against AWS's
 * published examples ("Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk", S3 API reference: GET Object with
 * a Range, PUT Object, GET Bucket Lifecycle, Get Bucket (List Objects)), with
 * their canonical requests and strings to sign; then requests as the S3
 * driver writes them (keys with spaces, '+', '~', '%' and UTF-8, queries
 * with reserved characters, a session token, a port), whose signatures were
 * computed with botocore 1.43 (botocore.auth.S3SigV4Auth), an independent
 * implementation.  tests/integration/test_s3*.py check the signer against a
 * server that verifies every request with AWS's JavaScript signer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "store/s3_sign.h"
#include "store/s3_util.h"
#include "util/mem.h"

/* AWS's example credentials (public, not a real key). */
#define AKID    "AKIAIOSFODNN7EXAMPLE"
#define SECRET  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define EXHOST  "examplebucket.s3.amazonaws.com"
#define EXDATE  "20130524T000000Z"
#define EMPTY   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define EXSCOPE AKID "/20130524/us-east-1/s3/aws4_request"

/* The signature alone, from an Authorization value. */
static const char *signature_of(const char *auth)
{
	const char *p = strstr(auth, "Signature=");
	assert_non_null(p);
	return p + strlen("Signature=");
}

static void test_aws_get_object_with_range(void **state)
{
	(void)state;
	S3Header h[] = {{"Host", EXHOST},
			{"Range", "bytes=0-9"},
			{"x-amz-content-sha256", EMPTY},
			{"x-amz-date", EXDATE}};
	S3SignRequest r = {
		.method = "GET", .path = "/test.txt", .headers = h, .nheaders = 4, .payload_sha256 = EMPTY};
	char *names = NULL;
	char *canon = s3_sign_canonical_request(&r, &names);
	assert_string_equal(canon, "GET\n"
				   "/test.txt\n"
				   "\n"
				   "host:examplebucket.s3.amazonaws.com\n"
				   "range:bytes=0-9\n"
				   "x-amz-content-sha256:" EMPTY "\n"
				   "x-amz-date:20130524T000000Z\n"
				   "\n"
				   "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY);
	assert_string_equal(names, "host;range;x-amz-content-sha256;x-amz-date");
	free(canon);
	free(names);

	char *auth = s3_sign(&r, "us-east-1", AKID, SECRET);
	assert_string_equal(auth,
			    "AWS4-HMAC-SHA256 Credential=" EXSCOPE ", "
			    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
			    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	free(auth);
}

static void test_aws_put_object(void **state)
{
	(void)state;
	/* "Welcome to Amazon S3." to test$file.text, with Date and a storage class signed too. */
	const char *sha = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
	S3Header h[] = {{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
			{"x-amz-date", EXDATE},
			{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
			{"x-amz-content-sha256", sha},
			{"Host", EXHOST}};
	char *path = s3_escape("/test$file.text", true);
	assert_string_equal(path, "/test%24file.text");
	S3SignRequest r = {.method = "PUT", .path = path, .headers = h, .nheaders = 5, .payload_sha256 = sha};
	char *canon = s3_sign_canonical_request(&r, NULL);
	assert_string_equal(
		canon,
		"PUT\n"
		"/test%24file.text\n"
		"\n"
		"date:Fri, 24 May 2013 00:00:00 GMT\n"
		"host:examplebucket.s3.amazonaws.com\n"
		"x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
		"x-amz-date:20130524T000000Z\n"
		"x-amz-storage-class:REDUCED_REDUNDANCY\n"
		"\n"
		"date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
		"44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	free(canon);
	char *auth = s3_sign(&r, "us-east-1", AKID, SECRET);
	assert_string_equal(signature_of(auth),
			    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	free(auth);
	free(path);
}

static void test_aws_get_bucket_lifecycle(void **state)
{
	(void)state;
	S3Header h[] = {{"Host", EXHOST}, {"x-amz-content-sha256", EMPTY}, {"x-amz-date", EXDATE}};
	S3Param q[] = {{"lifecycle", NULL}};
	char *query = s3_query(q, 1);
	S3SignRequest r = {.method = "GET",
			   .path = "/",
			   .query = query,
			   .headers = h,
			   .nheaders = 3,
			   .payload_sha256 = EMPTY};
	char *canon = s3_sign_canonical_request(&r, NULL);
	assert_string_equal(canon, "GET\n/\nlifecycle=\n"
				   "host:examplebucket.s3.amazonaws.com\n"
				   "x-amz-content-sha256:" EMPTY "\n"
				   "x-amz-date:20130524T000000Z\n"
				   "\n"
				   "host;x-amz-content-sha256;x-amz-date\n" EMPTY);
	free(canon);
	char *auth = s3_sign(&r, "us-east-1", AKID, SECRET);
	assert_string_equal(signature_of(auth),
			    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	free(auth);
	/* The bucket's root: "" is signed as "/". */
	r.path = "";
	auth = s3_sign(&r, "us-east-1", AKID, SECRET);
	assert_string_equal(signature_of(auth),
			    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	free(auth);
	free(query);
}

static void test_aws_list_objects(void **state)
{
	(void)state;
	S3Header h[] = {{"Host", EXHOST}, {"x-amz-content-sha256", EMPTY}, {"x-amz-date", EXDATE}};
	/* Given in the other order: the query is sorted by name. */
	S3Param q[] = {{"prefix", "J"}, {"max-keys", "2"}};
	char *query = s3_query(q, 2);
	assert_string_equal(query, "max-keys=2&prefix=J");
	S3SignRequest r = {.method = "GET",
			   .path = "/",
			   .query = query,
			   .headers = h,
			   .nheaders = 3,
			   .payload_sha256 = EMPTY};
	char *auth = s3_sign(&r, "us-east-1", AKID, SECRET);
	assert_string_equal(signature_of(auth),
			    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	free(auth);
	free(query);
}

/* Header names in any case, values trimmed, inner blanks squeezed, a repeated name joined. */
static void test_canonical_headers(void **state)
{
	(void)state;
	S3Header h[] = {{"X-Amz-Meta-Note", "  two   words\there  "},
			{"HOST", "b.example.com:9000"},
			{"x-amz-date", EXDATE},
			{"X-Amz-Meta-Note", "second"},
			{"x-amz-content-sha256", EMPTY}};
	S3SignRequest r = {
		.method = "DELETE", .path = "/k", .headers = h, .nheaders = 5, .payload_sha256 = EMPTY};
	char *names = NULL;
	char *canon = s3_sign_canonical_request(&r, &names);
	assert_string_equal(canon, "DELETE\n/k\n\n"
				   "host:b.example.com:9000\n"
				   "x-amz-content-sha256:" EMPTY "\n"
				   "x-amz-date:20130524T000000Z\n"
				   "x-amz-meta-note:two words here,second\n"
				   "\n"
				   "host;x-amz-content-sha256;x-amz-date;x-amz-meta-note\n" EMPTY);
	assert_string_equal(names, "host;x-amz-content-sha256;x-amz-date;x-amz-meta-note");
	free(names);
	free(canon);
}

/* x-amz-date gives the signing time: without it, or malformed, nothing is signed. */
static void test_needs_amz_date(void **state)
{
	(void)state;
	S3Header h[] = {{"Host", EXHOST}, {"x-amz-content-sha256", EMPTY}};
	S3SignRequest r = {
		.method = "GET", .path = "/", .headers = h, .nheaders = 2, .payload_sha256 = EMPTY};
	assert_null(s3_sign(&r, "us-east-1", AKID, SECRET));
	S3Header bad[] = {{"Host", EXHOST}, {"X-Amz-Date", "2013-05-24T00:00:00Z"}};
	r.headers = bad;
	assert_null(s3_sign(&r, "us-east-1", AKID, SECRET));
}

static void test_date(void **state)
{
	(void)state;
	char d[S3_SIGN_DATE_SIZE];
	s3_sign_date(1369353600, d);
	assert_string_equal(d, EXDATE);
	s3_sign_date(951868799, d); /* a leap day, one second before midnight */
	assert_string_equal(d, "20000229T235959Z");
}

/*
 * A PutObject as the driver writes it, path style on a port, with a session
 * token, If-None-Match and a key with a space, '+', '~', '%' and UTF-8
 * ("wal dir/a+b~c%d/é.txt").  Expected signature from botocore.
 */
static void test_driver_put_with_token(void **state)
{
	(void)state;
	S3Endpoint ep;
	WsError err;
	assert_int_equal(s3_parse_endpoint("http://127.0.0.1:9000", &ep, &err), 0);
	char *host = s3_host_header(&ep, "bkt", false);
	assert_string_equal(host, "127.0.0.1:9000");
	char *key = s3_escape("wal dir/a+b~c%d/\xc3\xa9.txt", true);
	char *path = xasprintf("/bkt/%s", key);
	assert_string_equal(path, "/bkt/wal%20dir/a%2Bb~c%25d/%C3%A9.txt");
	const char *sha =
		"b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"; /* "hello world" */
	S3Header h[] = {{"Host", host},
			{"x-amz-date", "20240229T235959Z"},
			{"x-amz-content-sha256", sha},
			{"x-amz-security-token", "FQoGZXIvYXdzE+tok/en=="},
			{"If-None-Match", "*"}};
	S3SignRequest r = {.method = "PUT", .path = path, .headers = h, .nheaders = 5, .payload_sha256 = sha};
	char *auth = s3_sign(&r, "eu-west-1", "AKIDWALSHIPTEST", "s3cr3t/with+special=chars");
	assert_string_equal(auth,
			    "AWS4-HMAC-SHA256 Credential=AKIDWALSHIPTEST/20240229/eu-west-1/s3/aws4_request, "
			    "SignedHeaders=host;if-none-match;x-amz-content-sha256;x-amz-date;"
			    "x-amz-security-token, "
			    "Signature=9bdf50482dc309ba90f992f78d28b8215d47b7638b6e8dd4767570c731714f80");
	free(auth);
	free(path);
	free(key);
	free(host);
	s3_endpoint_clear(&ep);
}

/*
 * A ListObjectsV2 in host style with a prefix and a continuation token full
 * of reserved characters: the query as s3_query writes it, sent and signed.
 */
static void test_driver_list_with_query(void **state)
{
	(void)state;
	S3Endpoint ep;
	WsError err;
	assert_int_equal(s3_parse_endpoint("https://s3.eu-west-1.amazonaws.com:443", &ep, &err), 0);
	char *host = s3_host_header(&ep, "bkt", true);
	assert_string_equal(host, "bkt.s3.eu-west-1.amazonaws.com"); /* the default port is not written */
	S3Param q[] = {
		{"prefix", "a b/c+d~\xc3\xa9%"}, {"list-type", "2"}, {"continuation-token", "1/2+3=="}};
	char *query = s3_query(q, 3);
	assert_string_equal(query,
			    "continuation-token=1%2F2%2B3%3D%3D&list-type=2&prefix=a%20b%2Fc%2Bd~%C3%A9%25");
	S3Header h[] = {{"Host", host}, {"x-amz-date", "20240101T000000Z"}, {"x-amz-content-sha256", EMPTY}};
	S3SignRequest r = {.method = "GET",
			   .path = "/",
			   .query = query,
			   .headers = h,
			   .nheaders = 3,
			   .payload_sha256 = EMPTY};
	char *auth = s3_sign(&r, "eu-west-1", AKID, SECRET);
	assert_string_equal(signature_of(auth),
			    "dfe6c9ed736acaba2f9b019db1db59b918eb86452c488fd87d5ba3195725adbe");
	free(auth);
	free(query);
	free(host);
	s3_endpoint_clear(&ep);
}

/* A ranged GET resumed with If-Match, path style on an IPv6 loopback. */
static void test_driver_resumed_get(void **state)
{
	(void)state;
	S3Endpoint ep;
	WsError err;
	assert_int_equal(s3_parse_endpoint("http://[::1]:8080", &ep, &err), 0);
	char *host = s3_host_header(&ep, "bkt", false);
	assert_string_equal(host, "[::1]:8080");
	S3Header h[] = {{"Host", host},
			{"x-amz-date", "20240101T000000Z"},
			{"x-amz-content-sha256", EMPTY},
			{"Range", "bytes=100-199"},
			{"If-Match", "\"9b2cf535f27731c974343645a3985328\""}};
	S3SignRequest r = {.method = "GET",
			   .path = "/bkt/15-1/wal/0000000100000000/000000010000000000000001",
			   .headers = h,
			   .nheaders = 5,
			   .payload_sha256 = EMPTY};
	char *auth = s3_sign(&r, "us-east-1", AKID, SECRET);
	assert_string_equal(signature_of(auth),
			    "e0523878d38b7ef2dab1133040af4b2d95c697d3df82ff818fe603d0af293709");
	free(auth);
	free(host);
	s3_endpoint_clear(&ep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aws_get_object_with_range),
		cmocka_unit_test(test_aws_put_object),
		cmocka_unit_test(test_aws_get_bucket_lifecycle),
		cmocka_unit_test(test_aws_list_objects),
		cmocka_unit_test(test_canonical_headers),
		cmocka_unit_test(test_needs_amz_date),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_driver_put_with_token),
		cmocka_unit_test(test_driver_list_with_query),
		cmocka_unit_test(test_driver_resumed_get),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
