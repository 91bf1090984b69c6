/*
 * sftp_auth.h - logging in to the SSH server with a public key: the key
 * file sftp-key-file names (with sftp-key-passphrase when it is protected),
 * or else the keys of the ssh-agent at $SSH_AUTH_SOCK, then ~/.ssh/id_ed25519,
 * id_ecdsa and id_rsa.  Passwords are never used.
 */
#ifndef WALSHIP_STORE_SFTP_AUTH_H
#define WALSHIP_STORE_SFTP_AUTH_H

#include "store/sftp_session.h"

/*
 * Authenticate ss's session (handshake done, host key checked) as ss->user:
 * 0, WS_FATAL with what was tried as detail and a hint, or WS_TRANSIENT when
 * the connection was lost meanwhile (the session is dropped then).
 */
int sftp_auth_login(SftpStore *ss, WsError *err);

#endif
