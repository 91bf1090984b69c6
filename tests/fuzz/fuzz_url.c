/*
 * fuzz_url.c - repository URLs and store keys: sftp:// URLs
 * (store/sftp_util.c), s3:// URLs and S3 endpoints (store/s3_util.c), and
 * the key rules every store applies (store/store.c).
 *
 * Input: one URL (bytes up to a NUL), tried as each kind.  What parses must
 * print back as a URL that parses to the same parts; an accepted S3 prefix
 * must be a valid key; an accepted key must name no component "." or ".."
 * and never start with "/".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store/s3_util.h"
#include "store/sftp_util.h"
#include "store/store.h"
#include "util/mem.h"

static bool same_str(const char *a, const char *b)
{
	return (a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0);
}

static void check_sftp(const char *s)
{
	SftpUrl u, again;
	WsError err;
	if (sftp_url_parse(s, &u, &err) != 0)
		return;
	FUZZ_CHECK(u.host[0] != '\0' && u.path[0] == '/' && u.port >= 1 && u.port <= 65535);
	char *shown = sftp_url_display(&u);
	FUZZ_CHECK(sftp_url_parse(shown, &again, &err) == 0);
	FUZZ_CHECK(same_str(u.user, again.user) && strcmp(u.host, again.host) == 0 && u.port == again.port &&
		   strcmp(u.path, again.path) == 0);
	free(sftp_server_name(u.host, u.port));
	free(sftp_knownhosts_name(u.host, u.port));
	free(sftp_shell_quote(u.path));
	free(shown);
	sftp_url_clear(&again);
	sftp_url_clear(&u);
}

static void check_s3(const char *s)
{
	char *bucket = NULL, *prefix = NULL, *b2 = NULL, *p2 = NULL;
	WsError err;
	if (s3_parse_url(s, &bucket, &prefix, &err) == 0) {
		FUZZ_CHECK(prefix[0] == '\0' || store_key_check(prefix, &err) == 0);
		char *url = xasprintf("s3://%s%s%s", bucket, prefix[0] ? "/" : "", prefix);
		FUZZ_CHECK(s3_parse_url(url, &b2, &p2, &err) == 0);
		FUZZ_CHECK(strcmp(bucket, b2) == 0 && strcmp(prefix, p2) == 0);
		free(url);
	}
	free(bucket);
	free(prefix);
	free(b2);
	free(p2);

	S3Endpoint ep, ep2;
	if (s3_parse_endpoint(s, &ep, &err) == 0) {
		char port[16] = "";
		if (ep.port != 0)
			snprintf(port, sizeof(port), ":%d", ep.port);
		char *again = xasprintf("%s://%s%s", ep.https ? "https" : "http", ep.host, port);
		FUZZ_CHECK(s3_parse_endpoint(again, &ep2, &err) == 0 && ep2.https == ep.https &&
			   ep2.port == ep.port && strcmp(ep2.host, ep.host) == 0);
		free(s3_base_url(&ep, "walship-bucket", true));
		free(s3_base_url(&ep, "walship-bucket", false));
		(void)s3_host_is_loopback(ep.host);
		(void)s3_host_is_ip(ep.host);
		free(again);
		s3_endpoint_clear(&ep2);
		s3_endpoint_clear(&ep);
	}
	char *esc = s3_escape(s, true);
	free(esc);
}

static void check_key(const char *s)
{
	WsError err;
	if (store_key_check(s, &err) != 0)
		return;
	FUZZ_CHECK(s[0] != '/' && strncmp(s, "../", 3) != 0 && strstr(s, "/../") == NULL &&
		   strstr(s, "/./") == NULL && strncmp(s, "./", 2) != 0 && strcmp(s, "..") != 0);
	size_t n = strlen(s);
	FUZZ_CHECK(n < STORE_KEY_MAX && s[n - 1] != '/');
	FUZZ_CHECK(!(n >= 3 && strcmp(s + n - 3, "/..") == 0) && !(n >= 2 && strcmp(s + n - 2, "/.") == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	check_sftp(s);
	check_s3(s);
	check_key(s);
	free(s);
	return 0;
}
