/*
 * sftp_util.h - the parts of the SFTP driver that need no server: parsing
 * sftp:// URLs, quoting for the remote shell, matching known_hosts host
 * fields (plain, wildcard and hashed "|1|" entries), fingerprints,
 * telling whether a private key file is protected by a passphrase, and the
 * small helpers the driver's files share (wire integers, string arrays).
 *
 * Memory: strings returned are malloc'd: the caller frees them.  SftpUrl's
 * fields are released by sftp_url_clear; SftpKnownHostsLine points into the
 * line it was split from.
 */
#ifndef WALSHIP_STORE_SFTP_UTIL_H
#define WALSHIP_STORE_SFTP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

typedef struct SftpUrl {
	char *user; /* NULL when the URL names none */
	char *host; /* without brackets for IPv6 */
	int port;
	char *path; /* absolute, without trailing '/' (except for "/" itself) */
} SftpUrl;

/*
 * Parse "sftp://[user@]host[:port]/abs/path" (host may be "[IPv6]").  A
 * password in the URL, a missing host or path, or a bad port is WS_USAGE
 * naming the URL.  Release with sftp_url_clear.
 */
int sftp_url_parse(const char *url, SftpUrl *out, WsError *err);
void sftp_url_clear(SftpUrl *u);

/* "host:port" or "[v6]:port": how a server is named in messages. */
char *sftp_server_name(const char *host, int port);

/* The URL to show users: "sftp://user@host:port/path" (port only when not 22). */
char *sftp_url_display(const SftpUrl *u);

/* s in single quotes for a POSIX shell ("it's" -> 'it'\''s'). */
char *sftp_shell_quote(const char *s);

/* The host field OpenSSH writes for a host: "host" on port 22, else "[host]:port". */
char *sftp_knownhosts_name(const char *host, int port);

/*
 * Whether a known_hosts host field ("a,b,*.c,!d" or "|1|salt|hash") names
 * name (as sftp_knownhosts_name builds it).  Plain names compare without
 * regard to case; a negated pattern that matches excludes the line.
 */
bool sftp_knownhosts_field_matches(const char *field, const char *name);

/* The fields of one known_hosts line, pointing into the line split by sftp_knownhosts_split. */
typedef struct SftpKnownHostsLine {
	char *marker; /* "@revoked", "@cert-authority"...: a first field starting with '@', else NULL */
	char *hosts;  /* the host field, or NULL */
	char *type;   /* the key type, or NULL */
	char *blob;   /* the base64 key, or NULL */
} SftpKnownHostsLine;

/*
 * Split one known_hosts line (without its newline) in place at blanks and
 * tabs into out.  false for a blank or comment line.
 */
bool sftp_knownhosts_split(char *line, SftpKnownHostsLine *out);

/* Base64 (with padding) of len bytes. */
char *sftp_base64(const unsigned char *data, size_t len);

/* "SHA256:<base64 without padding>" of a key blob, as OpenSSH prints it. */
char *sftp_fingerprint(const unsigned char *blob, size_t len);

/* The algorithm name at the start of an SSH public key blob ("ssh-ed25519"), or NULL. */
char *sftp_blob_type(const unsigned char *blob, size_t len);

typedef enum SftpKeyProtection {
	SFTP_KEY_PLAIN = 0,
	SFTP_KEY_ENCRYPTED = 1,
	SFTP_KEY_UNKNOWN = 2, /* not a private key format recognised here */
} SftpKeyProtection;

/* Whether the text of a private key file (OpenSSH or PEM format) is encrypted. */
SftpKeyProtection sftp_key_protection(const char *text);

/* A big-endian uint32, as the SSH and SFTP wire formats write it. */
uint32_t sftp_get_u32(const unsigned char *p);
void sftp_put_u32(unsigned char *p, uint32_t v);

/*
 * A growing array of n strings (start with NULL and 0): sftp_strv_add
 * appends a copy of s, sftp_strv_add_once only if no entry equals s;
 * sftp_strv_free frees the strings and the array.
 */
void sftp_strv_add(char ***v, size_t *n, const char *s);
void sftp_strv_add_once(char ***v, size_t *n, const char *s);
void sftp_strv_free(char **v, size_t n);

#endif
