/*
 * test_store_sftp.c - the SFTP driver's server-free parts: sftp:// URLs and
 * how they are shown, shell quoting for the remote sync, known_hosts host
 * fields (plain, wildcard, negated, "[host]:port", hashed), fingerprints as
 * OpenSSH prints them, and whether a private key file needs a passphrase.
 * The driver itself is tested against a real sshd in tests/integration.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/sftp_util.h"
#include "store/store.h"
#include "util/mem.h"

/* ssh-keygen -t ed25519 -N '' (plain) and -N pw (encrypted), thrown-away test keys. */
static const char KEY_PLAIN[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n"
				"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
				"QyNTUxOQAAACCFpJPRgHBWthFvz2WfsGnZwVHh3NYs/GUlEm/H1DOu2AAAAIjs574a7Oe+\n"
				"GgAAAAtzc2gtZWQyNTUxOQAAACCFpJPRgHBWthFvz2WfsGnZwVHh3NYs/GUlEm/H1DOu2A\n"
				"AAAEBcbAinco1rz6+Ig5cp9EqcusipGyTu/a4WHQP2+6mHCIWkk9GAcFa2EW/PZZ+wadnB\n"
				"UeHc1iz8ZSUSb8fUM67YAAAAAXQBAgME\n"
				"-----END OPENSSH PRIVATE KEY-----\n";
static const char KEY_ENCRYPTED[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n"
				    "b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABAyoFTjsh\n"
				    "6TKaeX2v3bQ842AAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIPup32auKRE09NCh\n"
				    "7IZqa9T0ns69qUGIwQTogzgBS2Z9AAAAkKO8+rFuAbDp9u+Kh6VwOBMCjQH9OpuvckMQ1V\n"
				    "ZGEtYOREEhVK3xghmjvZuTxPJfExF1a8ZGgcpH5Tzf5Dv8y8QO8JKybDO7L2iYZkQbgB3l\n"
				    "7yQqS79iBLS5z3pSL9nQrG9cdl6Xk3gIEUaETrxVFPiNHMrqt+FhA87k4Ig/Ssu8lCHcUn\n"
				    "zCnhPQPG70EzKYLg==\n"
				    "-----END OPENSSH PRIVATE KEY-----\n";
/* The public half of KEY_PLAIN and what ssh-keygen -lf prints for it. */
static const char PUB_B64[] = "AAAAC3NzaC1lZDI1NTE5AAAAIIWkk9GAcFa2EW/PZZ+wadnBUeHc1iz8ZSUSb8fUM67Y";
static const char PUB_FP[] = "SHA256:BXO6rGy9fkFNGNGxgA9dfyJLxJbCJAnkV+jevd09FOo";
/* ssh-keygen -H of "[127.0.0.1]:2222 ...". */
static const char HASHED[] = "|1|rRwyO+V5S6UULlXnugBvkx+WEBA=|X5QgSJtB6u7n/rS1eFoNDNqEyh8=";

static void test_url_full(void **state)
{
	(void)state;
	SftpUrl u;
	WsError err;
	assert_int_equal(sftp_url_parse("sftp://backup@db1.example.com:2222/srv/wal/", &u, &err), 0);
	assert_string_equal(u.user, "backup");
	assert_string_equal(u.host, "db1.example.com");
	assert_int_equal(u.port, 2222);
	assert_string_equal(u.path, "/srv/wal");
	char *d = sftp_url_display(&u);
	assert_string_equal(d, "sftp://backup@db1.example.com:2222/srv/wal");
	free(d);
	char *s = sftp_server_name(u.host, u.port);
	assert_string_equal(s, "db1.example.com:2222");
	free(s);
	sftp_url_clear(&u);
}

static void test_url_defaults_and_ipv6(void **state)
{
	(void)state;
	SftpUrl u;
	WsError err;
	assert_int_equal(sftp_url_parse("sftp://host/", &u, &err), 0);
	assert_null(u.user);
	assert_int_equal(u.port, 22);
	assert_string_equal(u.path, "/");
	char *d = sftp_url_display(&u);
	assert_string_equal(d, "sftp://host/");
	free(d);
	sftp_url_clear(&u);

	assert_int_equal(sftp_url_parse("sftp://u@[fe80::1]:10022/r", &u, &err), 0);
	assert_string_equal(u.host, "fe80::1");
	assert_int_equal(u.port, 10022);
	char *s = sftp_server_name(u.host, u.port);
	assert_string_equal(s, "[fe80::1]:10022");
	free(s);
	d = sftp_url_display(&u);
	assert_string_equal(d, "sftp://u@[fe80::1]:10022/r");
	free(d);
	sftp_url_clear(&u);

	assert_int_equal(sftp_url_parse("sftp://[::1]/r", &u, &err), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 22);
	sftp_url_clear(&u);
}

static void test_url_refused(void **state)
{
	(void)state;
	static const char *bad[] = {
		"sftp://host",         /* no path */
		"sftp:///path",        /* no host */
		"sftp://u:secret@h/p", /* password */
		"sftp://h:0/p",        /* port */
		"sftp://h:65536/p",    /* port */
		"sftp://h:22x/p",      /* port */
		"sftp://h:/p",         /* empty port */
		"sftp://[::1/p",       /* bracket */
		"sftp://[::1]x/p",     /* after bracket */
		"sftp://@h/p",         /* empty user */
		"s3://bucket/p",       /* scheme */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		SftpUrl u;
		WsError err;
		ws_error_clear(&err);
		assert_int_equal(sftp_url_parse(bad[i], &u, &err), WS_USAGE);
		assert_null(u.host);
		assert_non_null(strstr(err.msg, "invalid SFTP repository URL"));
		/* The password never shows. */
		assert_null(strstr(err.msg, "secret"));
	}
}

static void test_shell_quote(void **state)
{
	(void)state;
	char *q = sftp_shell_quote("/srv/it's here/$(rm -rf)");
	assert_string_equal(q, "'/srv/it'\\''s here/$(rm -rf)'");
	free(q);
	q = sftp_shell_quote("");
	assert_string_equal(q, "''");
	free(q);
}

static void test_known_hosts_names(void **state)
{
	(void)state;
	char *n = sftp_knownhosts_name("db1", 22);
	assert_string_equal(n, "db1");
	free(n);
	n = sftp_knownhosts_name("127.0.0.1", 2222);
	assert_string_equal(n, "[127.0.0.1]:2222");

	/* "[" is literal in host patterns, not a character class. */
	assert_true(sftp_knownhosts_field_matches("[127.0.0.1]:2222", n));
	assert_false(sftp_knownhosts_field_matches("[127.0.0.1]:22", n));
	assert_false(sftp_knownhosts_field_matches("127.0.0.1", n));
	assert_true(sftp_knownhosts_field_matches(HASHED, n));
	assert_false(sftp_knownhosts_field_matches(HASHED, "[127.0.0.1]:2223"));
	assert_false(sftp_knownhosts_field_matches("|1|garbage", n));
	free(n);

	assert_true(sftp_knownhosts_field_matches("other,DB1.example.com", "db1.example.com"));
	assert_true(sftp_knownhosts_field_matches("*.example.com", "db1.example.com"));
	assert_true(sftp_knownhosts_field_matches("db?.example.com", "db1.example.com"));
	assert_false(sftp_knownhosts_field_matches("*.example.com,!db1.example.com", "db1.example.com"));
	assert_false(sftp_knownhosts_field_matches("db1", "db1.example.com"));
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "known_hosts pattern matching did not finish: exponential backtracking\n";
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

/* A hostile known_hosts line: many "*" against a long name that does not match. */
static void test_known_hosts_many_stars_are_not_exponential(void **state)
{
	(void)state;
	char pat[128], name[256];
	size_t n = 0;
	for (int i = 0; i < 40; i++) {
		pat[n++] = '*';
		pat[n++] = 'a';
	}
	pat[n++] = 'b';
	pat[n] = '\0';
	memset(name, 'a', 200);
	name[200] = '\0';
	/* A watchdog, not a timing: the old recursive match would run for centuries, this one is quadratic.
	 */
	signal(SIGALRM, on_alarm);
	alarm(60);
	for (int i = 0; i < 100; i++) {
		assert_false(sftp_knownhosts_field_matches(pat, name));
		assert_false(
			sftp_knownhosts_field_matches("*****************************************x", name));
	}
	name[199] = 'b';
	assert_true(sftp_knownhosts_field_matches(pat, name));
	assert_true(sftp_knownhosts_field_matches("*a*?**b", name));
	assert_true(sftp_knownhosts_field_matches("*", ""));
	assert_false(sftp_knownhosts_field_matches("?", ""));
	assert_true(sftp_knownhosts_field_matches("a*", "a"));
	assert_false(sftp_knownhosts_field_matches("*a", "b"));
	assert_true(sftp_knownhosts_field_matches("db*.example.*", "db1.example.com"));
	assert_false(sftp_knownhosts_field_matches("db*.example.*", "db1.example"));
	alarm(0);
	signal(SIGALRM, SIG_DFL);
}

static void test_known_hosts_lines_split(void **state)
{
	(void)state;
	SftpKnownHostsLine kl;
	char line[] = "  db1,10.0.0.1\tssh-ed25519  AAAAC3Nz comment words";
	assert_true(sftp_knownhosts_split(line, &kl));
	assert_null(kl.marker);
	assert_string_equal(kl.hosts, "db1,10.0.0.1");
	assert_string_equal(kl.type, "ssh-ed25519");
	assert_string_equal(kl.blob, "AAAAC3Nz");

	char revoked[] = "@revoked * ssh-rsa AAAAB3";
	assert_true(sftp_knownhosts_split(revoked, &kl));
	assert_string_equal(kl.marker, "@revoked");
	assert_string_equal(kl.hosts, "*");
	assert_string_equal(kl.blob, "AAAAB3");

	char marker_only[] = "@cert-authority";
	assert_true(sftp_knownhosts_split(marker_only, &kl));
	assert_string_equal(kl.marker, "@cert-authority");
	assert_null(kl.hosts);
	assert_null(kl.type);

	char host_only[] = "db1";
	assert_true(sftp_knownhosts_split(host_only, &kl));
	assert_string_equal(kl.hosts, "db1");
	assert_null(kl.type);
	assert_null(kl.blob);

	char comment[] = "\t# db1 ssh-ed25519 AAAA", blank[] = " \t";
	assert_false(sftp_knownhosts_split(comment, &kl));
	assert_false(sftp_knownhosts_split(blank, &kl));
}

static void test_fingerprint_and_type(void **state)
{
	(void)state;
	unsigned char blob[64];
	/* Decode PUB_B64 by hand through the module's own encoder: encode must give it back. */
	size_t len = 0;
	{
		static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		uint32_t acc = 0;
		int bits = 0;
		for (const char *p = PUB_B64; *p && *p != '='; p++) {
			acc = acc << 6 | (uint32_t)(strchr(tbl, *p) - tbl);
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				blob[len++] = (unsigned char)(acc >> bits);
			}
		}
	}
	char *b64 = sftp_base64(blob, len);
	assert_string_equal(b64, PUB_B64);
	free(b64);
	char *fp = sftp_fingerprint(blob, len);
	assert_string_equal(fp, PUB_FP);
	free(fp);
	char *type = sftp_blob_type(blob, len);
	assert_string_equal(type, "ssh-ed25519");
	free(type);
	assert_null(sftp_blob_type(blob, 3));
}

static void test_key_protection(void **state)
{
	(void)state;
	assert_int_equal(sftp_key_protection(KEY_PLAIN), SFTP_KEY_PLAIN);
	assert_int_equal(sftp_key_protection(KEY_ENCRYPTED), SFTP_KEY_ENCRYPTED);
	assert_int_equal(
		sftp_key_protection("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
				    "DEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"),
		SFTP_KEY_ENCRYPTED);
	assert_int_equal(sftp_key_protection("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIC\n"
					     "-----END ENCRYPTED PRIVATE KEY-----\n"),
			 SFTP_KEY_ENCRYPTED);
	assert_int_equal(
		sftp_key_protection("-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n"),
		SFTP_KEY_PLAIN);
	assert_int_equal(sftp_key_protection("ssh-ed25519 AAAA comment\n"), SFTP_KEY_UNKNOWN);
	assert_int_equal(sftp_key_protection("-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n"
					     "-----END OPENSSH PRIVATE KEY-----\n"),
			 SFTP_KEY_UNKNOWN);
}

static void test_open_refuses_bad_settings_before_connecting(void **state)
{
	(void)state;
	Config *cfg = config_new();
	Store *s = NULL;
	WsError err;
	assert_int_equal(config_set_option(cfg, "sftp-dir-sync", "sometimes", &err), 0);
	/* Port 1 on loopback: were the setting not checked first, this would be a connect error. */
	assert_int_equal(store_open("sftp://u@127.0.0.1:1/r", cfg, 0, &s, &err), WS_USAGE);
	assert_null(s);
	assert_non_null(strstr(err.msg, "sftp-dir-sync"));
	config_free(cfg);

	cfg = config_new();
	assert_int_equal(config_set_option(cfg, "sftp-host-key-check", "no", &err), 0);
	assert_int_equal(store_open("sftp://u@127.0.0.1:1/r", cfg, 0, &s, &err), WS_USAGE);
	assert_non_null(strstr(err.msg, "sftp-host-key-check"));
	config_free(cfg);

	cfg = config_new();
	assert_int_equal(store_open("sftp://u:pw@127.0.0.1:1/r", cfg, 0, &s, &err), WS_USAGE);
	assert_null(strstr(err.msg, "pw@"));
	config_free(cfg);
}

static void test_unreachable_is_transient(void **state)
{
	(void)state;
	Config *cfg = config_new();
	Store *s = NULL;
	WsError err;
	assert_int_equal(config_set_option(cfg, "io-timeout", "3", &err), 0);
	/* Nothing listens on port 1 of loopback: refused at once (after the few quick retries). */
	assert_int_equal(store_open("sftp://u@127.0.0.1:1/r", cfg, 0, &s, &err), WS_TRANSIENT);
	assert_non_null(strstr(err.msg, "could not connect to \"127.0.0.1:1\""));
	assert_non_null(strstr(err.msg, "Connection refused"));
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_full),
		cmocka_unit_test(test_url_defaults_and_ipv6),
		cmocka_unit_test(test_url_refused),
		cmocka_unit_test(test_shell_quote),
		cmocka_unit_test(test_known_hosts_names),
		cmocka_unit_test(test_known_hosts_lines_split),
		cmocka_unit_test(test_known_hosts_many_stars_are_not_exponential),
		cmocka_unit_test(test_fingerprint_and_type),
		cmocka_unit_test(test_key_protection),
		cmocka_unit_test(test_open_refuses_bad_settings_before_connecting),
		cmocka_unit_test(test_unreachable_is_transient),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
