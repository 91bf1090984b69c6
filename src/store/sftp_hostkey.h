/*
 * sftp_hostkey.h - checking an SSH server's host key against known_hosts,
 * as OpenSSH does: plain, wildcard and hashed host fields, "@revoked"
 * lines, keys of other types, and (sftp-host-key-check = accept-new) the
 * key of a new host recorded on first contact.
 *
 * Use: sftp_hostkey_new before the handshake (it reads the file),
 * sftp_hostkey_prefer (ask for the key types known_hosts has for the host),
 * the handshake, sftp_hostkey_check, sftp_hostkey_free.
 */
#ifndef WALSHIP_STORE_SFTP_HOSTKEY_H
#define WALSHIP_STORE_SFTP_HOSTKEY_H

#include <stdbool.h>

#include <libssh2.h>

#include "util/error.h"

/* The server and what its key is checked against; borrowed by SftpHostKeys. */
typedef struct SftpHost {
	const char *host; /* as the URL names it, without brackets */
	int port;
	const char *server;      /* "host:port", for messages */
	const char *known_hosts; /* the known_hosts file (missing: empty) */
	bool accept_new;         /* sftp-host-key-check = accept-new */
} SftpHost;

typedef struct SftpHostKeys SftpHostKeys;

/*
 * Read host->known_hosts for session: 0 with *out set (free with
 * sftp_hostkey_free), or WS_FATAL.  host and session are borrowed and must
 * outlive *out.
 */
int sftp_hostkey_new(const SftpHost *host, LIBSSH2_SESSION *session, SftpHostKeys **out, WsError *err);
void sftp_hostkey_free(SftpHostKeys *k);

/*
 * Before the handshake: prefer the host key algorithms known_hosts already
 * has a key of for this server (OpenSSH does the same).
 */
void sftp_hostkey_prefer(const SftpHostKeys *k);

/*
 * After the handshake: 0 if the key the server offered is recorded for it
 * (or, with accept_new, was recorded now for a host with no entry);
 * otherwise WS_FATAL saying why (unknown, changed, revoked, only other key
 * types listed), with the fingerprint and a hint.
 */
int sftp_hostkey_check(const SftpHostKeys *k, WsError *err);

#endif
