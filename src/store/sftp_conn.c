/*
 * sftp_conn.c - connecting an SFTP handle (see sftp_conn.h).
 */
#include "store/sftp_conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "store/sftp_auth.h"
#include "store/retry.h"
#include "store/sftp_hostkey.h"
#include "util/clock.h"
#include "util/mem.h"

/*
 * A server being restarted, or one that is down, refuses: connecting is tried
 * again with a growing pause (SFTP_CONNECT_PAUSE_MS times the attempt, at most
 * SFTP_CONNECT_PAUSE_MAX_MS) until io-timeout runs out, as S3 requests are.
 * One connect waits at most SFTP_CONNECT_SLICE_MS for an answer, so that a
 * silent host is reported while it is retried.
 */
#define SFTP_CONNECT_PAUSE_MS     250LL
#define SFTP_CONNECT_PAUSE_MAX_MS 2000LL
#define SFTP_CONNECT_SLICE_MS     ((long long)(STORE_RETRY_REPORT_EVERY * 1000))

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One non-blocking connect to ai within the time left; 0 or an errno. */
static int connect_one(const struct addrinfo *ai, long long deadline, int *fd_out)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return errno;
	int e = 0;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		e = errno;
		if (e == EINPROGRESS) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			for (;;) {
				long long left = deadline - now_ms();
				int n = left > 0 ? poll(&pfd, 1, (int)(left > 60000000 ? 60000000 : left))
						 : 0;
				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0) {
					e = errno;
				} else if (n == 0) {
					e = ETIMEDOUT;
				} else {
					socklen_t len = sizeof(e);
					if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
						e = errno;
				}
				break;
			}
		}
	}
	if (e != 0) {
		close(fd);
		return e;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/*
	 * The socket stays non-blocking: libssh2's blocking calls then wait in
	 * poll() and honour libssh2_session_set_timeout; a blocking socket would
	 * hang in recv() on a silent peer.
	 */
	*fd_out = fd;
	return 0;
}

static int tcp_connect(SftpStore *ss, WsError *err)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char port[16];
	long long deadline = now_ms() + ss->timeout_s * 1000;
	int e = 0;

	str_format(port, sizeof(port), "%d", ss->url.port);
	int g = getaddrinfo(ss->url.host, port, &hints, &res);
	if (g != 0) {
		ws_error(err, g == EAI_AGAIN ? WS_TRANSIENT : WS_FATAL, "could not connect to \"%s\": %s",
			 ss->server, gai_strerror(g));
		ws_error_hint(err, "Check the host name in the repository URL and the resolver.");
		return g == EAI_AGAIN ? WS_TRANSIENT : WS_FATAL;
	}
	StoreRetry retry = {0};
	char what[400], at[400];
	str_format(what, sizeof(what), "connect to SSH server \"%s\"", ss->server);
	str_format(at, sizeof(at), "SSH server \"%s\"", ss->server);
	store_retry_start(&retry, what, at, ss->timeout_s);
	for (long long attempt = 1;; attempt++) {
		for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
			int fd = -1;
			long long slice = now_ms() + SFTP_CONNECT_SLICE_MS;
			e = connect_one(ai, slice < deadline ? slice : deadline, &fd);
			if (e == 0) {
				store_retry_done(&retry, true, NULL);
				ss->sock = fd;
				freeaddrinfo(res);
				return 0;
			}
		}
		long long pause = SFTP_CONNECT_PAUSE_MS * attempt;
		if (pause > SFTP_CONNECT_PAUSE_MAX_MS)
			pause = SFTP_CONNECT_PAUSE_MAX_MS;
		if (now_ms() + pause >= deadline)
			break;
		store_retry_note(&retry, strerror(e));
		if (clock_sleep_interruptible((double)pause / 1000.0) != 0) {
			freeaddrinfo(res);
			return ws_error(err, WS_INTERRUPTED, "interrupted while connecting to \"%s\"",
					ss->server);
		}
	}
	store_retry_done(&retry, false, strerror(e));
	freeaddrinfo(res);
	ws_error_errno(err, WS_TRANSIENT, e, "could not connect to \"%s\"", ss->server);
	ws_error_detail(err, "Tried %d time%s until io-timeout (%ld s) ran out.", retry.retries + 1,
			retry.retries == 0 ? "" : "s", ss->timeout_s);
	ws_error_hint(err, "Check that the SSH server is running and reachable (host, port, firewall).  The "
			   "operation can be tried again.");
	return WS_TRANSIENT;
}

int sftp_conn_open(SftpStore *ss, WsError *err)
{
	SftpHost host = {ss->url.host, ss->url.port, ss->server, ss->known_hosts, ss->accept_new};
	SftpHostKeys *keys = NULL;
	int rc = tcp_connect(ss, err);
	if (rc != 0)
		return rc;

	ss->session = libssh2_session_init();
	if (ss->session == NULL) {
		rc = ws_error(err, WS_FATAL, "could not start an SSH session to \"%s\"", ss->server);
		goto done;
	}
	libssh2_session_set_blocking(ss->session, 1);
	libssh2_session_set_timeout(ss->session, ss->timeout_s * 1000);
	/* MSG_NOSIGNAL on every send: a dropped connection must not raise SIGPIPE. */
	libssh2_session_flag(ss->session, LIBSSH2_FLAG_SIGPIPE, 0);

	rc = sftp_hostkey_new(&host, ss->session, &keys, err);
	if (rc != 0)
		goto done;
	sftp_hostkey_prefer(keys);

	int hs = libssh2_session_handshake(ss->session, ss->sock);
	if (hs != 0) {
		char *msg = NULL;
		libssh2_session_last_error(ss->session, &msg, NULL, 0);
		if (sftp_session_conn_error(hs)) {
			rc = ws_error(err, WS_TRANSIENT, "could not connect to \"%s\": SSH handshake failed",
				      ss->server);
			ws_error_hint(err,
				      "Check that \"%s\" is an SSH server and that it is up.  The operation "
				      "can be tried again.",
				      ss->server);
		} else {
			rc = ws_error(err, WS_FATAL, "could not connect to \"%s\": SSH handshake failed",
				      ss->server);
		}
		ws_error_detail(err, "The SSH library reported: %s (libssh2 error %d).",
				msg ? msg : "no message", hs);
		goto done;
	}
	rc = sftp_hostkey_check(keys, err);
	if (rc != 0)
		goto done;
	/* Freed while the session lives: a login that loses the connection frees the session. */
	sftp_hostkey_free(keys);
	keys = NULL;
	rc = sftp_auth_login(ss, err);
	if (rc != 0)
		goto done;

	ss->sftp = libssh2_sftp_init(ss->session);
	if (ss->sftp == NULL) {
		char *msg = NULL;
		int e = libssh2_session_last_error(ss->session, &msg, NULL, 0);
		if (sftp_session_conn_error(e)) {
			rc = sftp_session_lost(ss, e, msg, &SFTP_OP_OPEN, ss->root, err);
		} else {
			rc = ws_error(err, WS_FATAL, "could not start SFTP on \"%s\"", ss->server);
			ws_error_detail(err, "The SSH library reported: %s (libssh2 error %d).",
					msg ? msg : "no message", e);
			ws_error_hint(err, "The server must offer the sftp subsystem (Subsystem sftp in "
					   "sshd_config).");
		}
	}

done:
	sftp_hostkey_free(keys);
	if (rc != 0)
		sftp_session_drop(ss, false);
	return rc;
}

int sftp_conn_ensure(SftpStore *ss, WsError *err)
{
	if (ss->sftp != NULL)
		return 0;
	return sftp_conn_open(ss, err);
}
