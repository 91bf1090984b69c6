/*
 * sftp_conn.h - connecting an SFTP handle: TCP, tried again while the server
 * refuses or is silent until io-timeout runs out (reported, store/retry.h), the SSH handshake with the
 * host key checked (sftp_hostkey.h), the login (sftp_auth.h), the SFTP
 * subsystem.  Every libssh2 wait is limited to io-timeout: the socket stays
 * non-blocking so that libssh2 waits in poll().
 */
#ifndef WALSHIP_STORE_SFTP_CONN_H
#define WALSHIP_STORE_SFTP_CONN_H

#include "store/sftp_session.h"

/*
 * Connect, check the host key, authenticate, start SFTP: 0, or the error
 * (WS_TRANSIENT for what may pass: no answer, a refused or dropped
 * connection; WS_FATAL otherwise) with the session dropped.
 */
int sftp_conn_open(SftpStore *ss, WsError *err);

/* sftp_conn_open unless connected: after a lost connection, the next operation connects again. */
int sftp_conn_ensure(SftpStore *ss, WsError *err);

#endif
