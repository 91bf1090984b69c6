/*
 * sftp_session.h - the SFTP driver's handle and its SSH session: what every
 * sftp_*.c file of the driver shares (and only they include).  The session
 * is dropped when a failure shows the connection is gone, and the next
 * operation connects again (sftp_conn.h); libssh2's failures become a
 * WsError here: connection problems WS_TRANSIENT, SFTP status codes and the
 * rest WS_FATAL, naming the operation, the key and the repository.
 */
#ifndef WALSHIP_STORE_SFTP_SESSION_H
#define WALSHIP_STORE_SFTP_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <libssh2.h>
#include <libssh2_sftp.h>

#include "store/driver.h"
#include "store/sftp_util.h"

/* A handle of the SFTP driver: struct Store first, the settings, the session. */
typedef struct SftpStore {
	Store base;
	SftpUrl url;
	char *user;
	char *server; /* "host:port", for messages */
	const char *root;
	long timeout_s;
	bool dir_sync;
	bool accept_new;
	char *home;
	char *known_hosts;
	char *key_file;   /* NULL: ssh-agent, then the default key files */
	char *passphrase; /* secret: never printed */
	int sock;
	LIBSSH2_SESSION *session;
	LIBSSH2_SFTP *sftp; /* NULL while not connected */
	uint32_t ext_id;    /* ids of the requests sftp_ext.c sends itself */
} SftpStore;

/* How an operation is named in messages: "could not write KEY to", "lost while writing". */
typedef struct SftpOp {
	const char *verb;
	const char *prep;
	const char *gerund;
} SftpOp;

extern const SftpOp SFTP_OP_WRITE, SFTP_OP_READ, SFTP_OP_STAT, SFTP_OP_LIST, SFTP_OP_REMOVE, SFTP_OP_OPEN;

/*
 * Close the session and the socket (polite: say goodbye first; otherwise
 * shut the socket down without waiting on the peer).  Safe when not connected.
 */
void sftp_session_drop(SftpStore *ss, bool polite);

/* Whether libssh2 error e means the connection is gone (or timed out). */
bool sftp_session_conn_error(int e);

/*
 * WS_TRANSIENT "connection to SERVER lost (or timed out) while <gerund> KEY",
 * with what (libssh2's words, may be NULL) and e as detail; drops the session.
 */
int sftp_session_lost(SftpStore *ss, int e, const char *what, const SftpOp *op, const char *key,
		      WsError *err);

/* An SFTP status in words ("no such file"); borrowed, static. */
const char *sftp_session_fx_text(unsigned long st);

/* WS_FATAL for SFTP status st the server answered for key, with a hint where one helps. */
int sftp_session_status_fail(SftpStore *ss, unsigned long st, const SftpOp *op, const char *key,
			     WsError *err);

/*
 * Convert the last libssh2 failure of an operation on key: connection
 * problems are WS_TRANSIENT (and drop the connection), the rest WS_FATAL.
 * *fx (may be NULL) receives the SFTP status, 0 if none.
 */
int sftp_session_fail(SftpStore *ss, const SftpOp *op, const char *key, unsigned long *fx, WsError *err);

/* The SFTP status of the last failure, 0 if it was not an SFTP status. */
unsigned long sftp_session_last_fx(SftpStore *ss);

#endif
