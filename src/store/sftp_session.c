/*
 * sftp_session.c - the SFTP driver's session state and libssh2's failures as
 * WsError (see sftp_session.h).
 */
#include "store/sftp_session.h"

#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

const SftpOp SFTP_OP_WRITE = {"write", "to", "writing"};
const SftpOp SFTP_OP_READ = {"read", "from", "reading"};
const SftpOp SFTP_OP_STAT = {"stat", "in", "looking up"};
const SftpOp SFTP_OP_LIST = {"list", "in", "listing"};
const SftpOp SFTP_OP_REMOVE = {"remove", "from", "removing"};
const SftpOp SFTP_OP_OPEN = {"open", "in", "opening"};

bool sftp_session_conn_error(int e)
{
	switch (e) {
	case LIBSSH2_ERROR_SOCKET_NONE:
	case LIBSSH2_ERROR_BANNER_RECV:
	case LIBSSH2_ERROR_BANNER_SEND:
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_CHANNEL_CLOSED:
	case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_BAD_SOCKET:
		return true;
	default:
		return false;
	}
}

void sftp_session_drop(SftpStore *ss, bool polite)
{
	if (!polite && ss->sock >= 0)
		shutdown(ss->sock, SHUT_RDWR);
	if (ss->sftp != NULL)
		libssh2_sftp_shutdown(ss->sftp);
	ss->sftp = NULL;
	if (ss->session != NULL) {
		if (polite)
			libssh2_session_disconnect(ss->session, "walship done");
		libssh2_session_free(ss->session);
	}
	ss->session = NULL;
	if (ss->sock >= 0)
		close(ss->sock);
	ss->sock = -1;
}

int sftp_session_lost(SftpStore *ss, int e, const char *what, const SftpOp *op, const char *key, WsError *err)
{
	if (e == LIBSSH2_ERROR_TIMEOUT)
		ws_error(err, WS_TRANSIENT, "connection to \"%s\" timed out while %s \"%s\"", ss->server,
			 op->gerund, key);
	else
		ws_error(err, WS_TRANSIENT, "connection to \"%s\" lost while %s \"%s\"", ss->server,
			 op->gerund, key);
	ws_error_detail(err, "The SSH library reported: %s (libssh2 error %d).", what ? what : "no message",
			e);
	ws_error_hint(err,
		      "Check the network and that the SSH server is up; each wait is limited to io-timeout "
		      "(%ld s).  The operation can be tried again.",
		      ss->timeout_s);
	sftp_session_drop(ss, false);
	return WS_TRANSIENT;
}

const char *sftp_session_fx_text(unsigned long st)
{
	switch (st) {
	case LIBSSH2_FX_EOF:
		return "end of file";
	case LIBSSH2_FX_NO_SUCH_FILE:
		return "no such file";
	case LIBSSH2_FX_PERMISSION_DENIED:
		return "permission denied";
	case LIBSSH2_FX_FAILURE:
		return "failure";
	case LIBSSH2_FX_BAD_MESSAGE:
		return "bad message";
	case LIBSSH2_FX_OP_UNSUPPORTED:
		return "operation unsupported";
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
		return "no space left on device";
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		return "quota exceeded";
	default:
		return "error";
	}
}

int sftp_session_status_fail(SftpStore *ss, unsigned long st, const SftpOp *op, const char *key, WsError *err)
{
	ws_error(err, WS_FATAL, "could not %s \"%s\" %s repository \"%s\": %s", op->verb, key, op->prep,
		 ss->base.display, sftp_session_fx_text(st));
	ws_error_detail(err, "The SFTP server \"%s\" answered status %lu for \"%s/%s\".", ss->server, st,
			ss->root, key);
	switch (st) {
	case LIBSSH2_FX_PERMISSION_DENIED:
		ws_error_hint(
			err,
			"The repository directory on the server must be readable and writable by the SSH "
			"user \"%s\".",
			ss->user);
		break;
	case LIBSSH2_FX_FAILURE:
		ws_error_hint(err,
			      "OpenSSH reports most errors (a full disk among them) as \"failure\": see the "
			      "server's log and free space on \"%s\".",
			      ss->root);
		break;
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		ws_error_hint(err,
			      "Free space (or raise the quota) on the server's filesystem holding \"%s\".",
			      ss->root);
		break;
	default:
		break;
	}
	return WS_FATAL;
}

int sftp_session_fail(SftpStore *ss, const SftpOp *op, const char *key, unsigned long *fx, WsError *err)
{
	char *msg = NULL;
	if (fx)
		*fx = 0;
	if (ss->session == NULL)
		return sftp_session_lost(ss, LIBSSH2_ERROR_SOCKET_DISCONNECT, "not connected", op, key, err);
	int e = libssh2_session_last_error(ss->session, &msg, NULL, 0);
	if (e == LIBSSH2_ERROR_SFTP_PROTOCOL && ss->sftp != NULL) {
		unsigned long st = libssh2_sftp_last_error(ss->sftp);
		if (fx)
			*fx = st;
		if (st == LIBSSH2_FX_NO_CONNECTION || st == LIBSSH2_FX_CONNECTION_LOST)
			return sftp_session_lost(ss, e, msg, op, key, err);
		return sftp_session_status_fail(ss, st, op, key, err);
	}
	if (sftp_session_conn_error(e))
		return sftp_session_lost(ss, e, msg, op, key, err);
	ws_error(err, WS_FATAL, "could not %s \"%s\" %s repository \"%s\"", op->verb, key, op->prep,
		 ss->base.display);
	ws_error_detail(err, "The SSH library reported: %s (libssh2 error %d).", msg ? msg : "no message", e);
	return WS_FATAL;
}

unsigned long sftp_session_last_fx(SftpStore *ss)
{
	if (ss->session == NULL || ss->sftp == NULL ||
	    libssh2_session_last_errno(ss->session) != LIBSSH2_ERROR_SFTP_PROTOCOL)
		return 0;
	return libssh2_sftp_last_error(ss->sftp);
}
