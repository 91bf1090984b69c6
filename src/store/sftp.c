/*
 * sftp.c - the SFTP store driver, through libssh2.
 *
 * One SSH connection per handle, opened (host key checked, user
 * authenticated, root proven to exist) in store_sftp_open and reused for
 * every operation; after a lost connection the next operation connects again.
 *
 * A put writes ".<base>.<random>.tmp" beside the final name, sends
 * fsync@openssh.com, closes, then moves it into place: without overwrite by
 * the plain SFTP v3 rename, which OpenSSH implements as link()+unlink() and
 * which therefore never replaces an existing name; with overwrite by
 * posix-rename@openssh.com (rename(2), atomic).  libssh2 1.10 has no call for
 * that extension (libssh2_sftp_posix_rename_ex arrived in 1.11, and the
 * rename flags of libssh2_sftp_rename_ex are only sent to SFTP v5+ servers),
 * so this file sends the request itself on the SFTP channel: see
 * posix_rename().  fsync@openssh.com does not make the new directory entry
 * durable; with sftp-dir-sync = exec the driver runs coreutils' `sync DIR...`
 * on the server over an exec channel after each put.  A key a no-overwrite
 * put finds taken gets the same syncs before WS_EXISTS is answered
 * (exists_durably).  "No such file" is "not found" only once proven
 * (store_prove_absent): OpenSSH sends that status for ENOTDIR and ELOOP too.
 */
#include "store/driver.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/sftp_util.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"

#define SFTP_BUF_SIZE        (256 * 1024)
#define SFTP_DIR_MODE        0750
#define SFTP_FILE_MODE       0640
#define SFTP_TEMP_TRIES      10
#define SFTP_TEMP_BASE_MAX   200
#define SFTP_CONNECT_TRIES   3
#define SFTP_KEY_FILE_MAX    (64 * 1024)
#define SFTP_KNOWN_HOSTS_MAX (16 * 1024 * 1024)
#define SFTP_NAME_MAX        4096
#define SFTP_EXEC_OUT_MAX    512

/* SFTP protocol numbers the driver sends itself (draft-ietf-secsh-filexfer-02). */
#define SSH_FXP_STATUS   101
#define SSH_FXP_EXTENDED 200

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
	LIBSSH2_SFTP *sftp;
	uint32_t ext_id; /* ids of the requests this file sends itself */
} SftpStore;

/* How an operation is named in messages. */
typedef struct SftpOp {
	const char *verb;
	const char *prep;
	const char *gerund;
} SftpOp;

static const SftpOp OP_WRITE = {"write", "to", "writing"};
static const SftpOp OP_READ = {"read", "from", "reading"};
static const SftpOp OP_STAT = {"stat", "in", "looking up"};
static const SftpOp OP_LIST = {"list", "in", "listing"};
static const SftpOp OP_REMOVE = {"remove", "from", "removing"};
static const SftpOp OP_OPEN = {"open", "in", "opening"};

/* What known_hosts says about the server, beside libssh2's own table. */
typedef struct KnownHosts {
	LIBSSH2_KNOWNHOSTS *kh;
	char **types; /* key types listed for this host */
	size_t ntypes;
	char **revoked; /* base64 blobs of "@revoked" lines naming this host */
	size_t nrevoked;
	bool listed; /* some line names this host */
	int skipped; /* lines libssh2 could not read */
} KnownHosts;

static const char *cfg_get(const Config *cfg, const char *key, const char *def)
{
	const char *v = cfg ? config_get(cfg, key) : NULL;
	return v ? v : def;
}

/* ---------------------------------------------------------------------------------------------
 * Errors
 */

static bool conn_error(int e)
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

/* Drop the connection without waiting on it: the next operation connects again. */
static void disconnect(SftpStore *ss, bool polite)
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

static int lost(SftpStore *ss, int e, const char *what, const SftpOp *op, const char *key, WsError *err)
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
	disconnect(ss, false);
	return WS_TRANSIENT;
}

static const char *fx_text(unsigned long st)
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

/* An SFTP status the server answered (not a connection problem). */
static int status_fail(SftpStore *ss, unsigned long st, const SftpOp *op, const char *key, WsError *err)
{
	ws_error(err, WS_FATAL, "could not %s \"%s\" %s repository \"%s\": %s", op->verb, key, op->prep,
		 ss->base.display, fx_text(st));
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

/*
 * Convert the last libssh2 failure of an operation on key: connection
 * problems are WS_TRANSIENT (and drop the connection), the rest WS_FATAL.
 * *fx (may be NULL) receives the SFTP status, 0 if none.
 */
static int ssh_fail(SftpStore *ss, const SftpOp *op, const char *key, unsigned long *fx, WsError *err)
{
	char *msg = NULL;
	if (fx)
		*fx = 0;
	if (ss->session == NULL)
		return lost(ss, LIBSSH2_ERROR_SOCKET_DISCONNECT, "not connected", op, key, err);
	int e = libssh2_session_last_error(ss->session, &msg, NULL, 0);
	if (e == LIBSSH2_ERROR_SFTP_PROTOCOL && ss->sftp != NULL) {
		unsigned long st = libssh2_sftp_last_error(ss->sftp);
		if (fx)
			*fx = st;
		if (st == LIBSSH2_FX_NO_CONNECTION || st == LIBSSH2_FX_CONNECTION_LOST)
			return lost(ss, e, msg, op, key, err);
		return status_fail(ss, st, op, key, err);
	}
	if (conn_error(e))
		return lost(ss, e, msg, op, key, err);
	ws_error(err, WS_FATAL, "could not %s \"%s\" %s repository \"%s\"", op->verb, key, op->prep,
		 ss->base.display);
	ws_error_detail(err, "The SSH library reported: %s (libssh2 error %d).", msg ? msg : "no message", e);
	return WS_FATAL;
}

/* The SFTP status of the last failure, 0 if it was not an SFTP status. */
static unsigned long last_fx(SftpStore *ss)
{
	if (ss->session == NULL || ss->sftp == NULL ||
	    libssh2_session_last_errno(ss->session) != LIBSSH2_ERROR_SFTP_PROTOCOL)
		return 0;
	return libssh2_sftp_last_error(ss->sftp);
}

/* ---------------------------------------------------------------------------------------------
 * Connecting
 */

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
	/* A server being restarted refuses for a moment: a few quick tries, all within io-timeout. */
	for (int attempt = 0; attempt < SFTP_CONNECT_TRIES; attempt++) {
		if (attempt > 0) {
			long long pause = 250LL * attempt;
			if (now_ms() + pause >= deadline)
				break;
			struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)pause * 1000000L};
			nanosleep(&ts, NULL);
		}
		for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
			int fd = -1;
			e = connect_one(ai, deadline, &fd);
			if (e == 0) {
				ss->sock = fd;
				freeaddrinfo(res);
				return 0;
			}
			if (e == ETIMEDOUT)
				break;
		}
		if (e == ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	ws_error_errno(err, WS_TRANSIENT, e, "could not connect to \"%s\"", ss->server);
	if (e == ETIMEDOUT)
		ws_error_detail(err, "No answer within io-timeout (%ld s).", ss->timeout_s);
	ws_error_hint(err, "Check that the SSH server is running and reachable (host, port, firewall).  The "
			   "operation can be tried again.");
	return WS_TRANSIENT;
}

static char *expand_home(const SftpStore *ss, const char *path)
{
	if (strcmp(path, "~") == 0)
		return xstrdup(ss->home);
	if (strncmp(path, "~/", 2) == 0)
		return xasprintf("%s/%s", ss->home, path + 2);
	return xstrdup(path);
}

static void strv_add(char ***v, size_t *n, const char *s)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void known_hosts_clear(KnownHosts *k)
{
	if (k->kh != NULL)
		libssh2_knownhost_free(k->kh);
	strv_free(k->types, k->ntypes);
	strv_free(k->revoked, k->nrevoked);
	memset(k, 0, sizeof(*k));
}

/*
 * Read the known_hosts file line by line (a missing file is empty): libssh2
 * gets the lines it can read (its readfile stops at the first it cannot, such
 * as a certificate authority), and this function notes which key types and
 * revoked keys name the server.
 */
static int known_hosts_load(SftpStore *ss, KnownHosts *k, WsError *err)
{
	char *name = sftp_knownhosts_name(ss->url.host, ss->url.port);
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	memset(k, 0, sizeof(*k));
	k->kh = libssh2_knownhost_init(ss->session);
	if (k->kh == NULL) {
		free(name);
		return ws_error(err, WS_FATAL, "could not set up host key checking for \"%s\"", ss->server);
	}
	FILE *f = fopen(ss->known_hosts, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			goto done;
		ws_error_errno(err, WS_FATAL, errno, "could not read known hosts file \"%s\"",
			       ss->known_hosts);
		ws_error_hint(err, "Set sftp-known-hosts to a file the user walship runs as can read.");
		rc = WS_FATAL;
		goto done;
	}
	ssize_t len;
	while ((len = getline(&line, &cap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		char *p = line + strspn(line, " \t");
		char *copy = xstrdup(p);
		SftpKnownHostsLine kl;
		if (!sftp_knownhosts_split(copy, &kl)) {
			free(copy);
			continue;
		}
		bool names_us = kl.hosts != NULL && sftp_knownhosts_field_matches(kl.hosts, name);
		if (kl.marker != NULL) {
			if (strcmp(kl.marker, "@revoked") == 0 && kl.blob != NULL && names_us)
				strv_add(&k->revoked, &k->nrevoked, kl.blob);
		} else {
			if (names_us && kl.type != NULL) {
				k->listed = true;
				strv_add(&k->types, &k->ntypes, kl.type);
			}
			if (libssh2_knownhost_readline(k->kh, p, (size_t)(line + len - p),
						       LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
				k->skipped++;
		}
		free(copy);
	}
	if (ferror(f)) {
		ws_error_errno(err, WS_FATAL, errno, "could not read known hosts file \"%s\"",
			       ss->known_hosts);
		rc = WS_FATAL;
	}
	fclose(f);

done:
	free(line);
	free(name);
	if (rc != 0)
		known_hosts_clear(k);
	return rc;
}

/* The key type of a host key algorithm ("rsa-sha2-512" is an "ssh-rsa" key). */
static const char *alg_key_type(const char *alg)
{
	if (strcmp(alg, "rsa-sha2-512") == 0 || strcmp(alg, "rsa-sha2-256") == 0)
		return "ssh-rsa";
	return alg;
}

/*
 * As OpenSSH does, prefer the host key algorithms known_hosts already has a
 * key of for this server: otherwise a server offering several keys could
 * present one of a type never recorded, and be refused as unknown.
 */
static void prefer_known_types(SftpStore *ss, const KnownHosts *k)
{
	const char **algs = NULL;
	if (k->ntypes == 0)
		return;
	int n = libssh2_session_supported_algs(ss->session, LIBSSH2_METHOD_HOSTKEY, &algs);
	if (n <= 0)
		return;
	size_t cap = 1;
	for (int i = 0; i < n; i++)
		cap += strlen(algs[i]) + 1;
	char *pref = xcalloc(1, cap);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			bool known = false;
			for (size_t t = 0; t < k->ntypes && !known; t++)
				known = strcmp(alg_key_type(algs[i]), k->types[t]) == 0;
			if (known == (pass == 0)) {
				if (pref[0] != '\0')
					strcat(pref, ",");
				strcat(pref, algs[i]);
			}
		}
	}
	(void)libssh2_session_method_pref(ss->session, LIBSSH2_METHOD_HOSTKEY, pref);
	free(pref);
	libssh2_free(ss->session, (void *)algs);
}

static int knownhost_keybit(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return LIBSSH2_KNOWNHOST_KEY_ED25519;
	default:
		return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
	}
}

static const char *hostkey_label(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return "RSA";
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return "DSA";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return "ECDSA";
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return "ED25519";
	default:
		return "unknown";
	}
}

/* Compare the offered key with known_hosts: a LIBSSH2_KNOWNHOST_CHECK_* value, or -1 when revoked. */
static int known_hosts_check(SftpStore *ss, const KnownHosts *k, const char *key, size_t len, int type)
{
	char *b64 = sftp_base64((const unsigned char *)key, len);
	bool revoked = false;
	for (size_t i = 0; i < k->nrevoked && !revoked; i++)
		revoked = strcmp(k->revoked[i], b64) == 0;
	free(b64);
	if (revoked)
		return -1;
	return libssh2_knownhost_checkp(
		k->kh, ss->url.host, ss->url.port, key, len,
		LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | knownhost_keybit(type), NULL);
}

/* Write known_hosts plus line through a temp file and rename(2); the caller holds the lock. */
static int known_hosts_append(SftpStore *ss, const char *line, WsError *err)
{
	char *tmp = xasprintf("%s.XXXXXX", ss->known_hosts);
	int in = -1;
	int rc = 0;
	unsigned char *buf = xmalloc(64 * 1024);
	bool need_nl = false;
	mode_t mode = 0600;

	int out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not record the host key of \"%s\" in \"%s\"",
				    ss->server, ss->known_hosts);
		free(tmp);
		tmp = NULL;
		goto done;
	}
	in = open(ss->known_hosts, O_RDONLY | O_CLOEXEC);
	if (in >= 0) {
		struct stat st;
		if (fstat(in, &st) == 0)
			mode = st.st_mode & 07777;
		ssize_t n;
		while ((n = fs_read_full(in, buf, 64 * 1024)) > 0) {
			if (fs_write_all(out, buf, (size_t)n) != 0)
				goto write_error;
			need_nl = buf[n - 1] != '\n';
		}
		if (n < 0)
			goto write_error;
	} else if (errno != ENOENT) {
		goto write_error;
	}
	if ((need_nl && fs_write_all(out, "\n", 1) != 0) || fs_write_all(out, line, strlen(line)) != 0 ||
	    fchmod(out, mode) != 0 || fsync(out) != 0)
		goto write_error;
	if (close(out) != 0) {
		out = -1;
		goto write_error;
	}
	out = -1;
	if (rename(tmp, ss->known_hosts) != 0)
		goto write_error;
	free(tmp);
	tmp = NULL;
	char *dir = fs_dirname(ss->known_hosts);
	rc = fs_fsync_dir(dir, err);
	free(dir);
	goto done;

write_error:
	rc = ws_error_errno(err, WS_FATAL, errno, "could not record the host key of \"%s\" in \"%s\"",
			    ss->server, ss->known_hosts);
done:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	free(buf);
	return rc;
}

/*
 * sftp-host-key-check = accept-new for a server with no entry: record the key
 * under an exclusive lock, checking again once the lock is held (another
 * process may have recorded a key meanwhile).
 */
static int accept_new_key(SftpStore *ss, const char *key, size_t len, int type, const char *fp, WsError *err)
{
	char *dir = fs_dirname(ss->known_hosts);
	char *lock = xasprintf("%s.lock", ss->known_hosts);
	KnownHosts k = {0};
	int fd = -1;
	int rc = 0;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not create directory \"%s\" for known hosts",
				    dir);
		goto done;
	}
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) != 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not lock \"%s\"", lock);
		goto done;
	}
	rc = known_hosts_load(ss, &k, err);
	if (rc != 0)
		goto done;
	int check = known_hosts_check(ss, &k, key, len, type);
	if (check == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		goto done;
	if (check != LIBSSH2_KNOWNHOST_CHECK_NOTFOUND || k.listed) {
		rc = ws_error(err, WS_FATAL,
			      "host key of \"%s\" was recorded by another process meanwhile and differs",
			      ss->server);
		ws_error_detail(err, "The server offered the %s key %s.", hostkey_label(type), fp);
		ws_error_hint(err, "Check \"%s\" and the server's host keys before connecting again.",
			      ss->known_hosts);
		goto done;
	}
	char *name = sftp_knownhosts_name(ss->url.host, ss->url.port);
	char *ktype = sftp_blob_type((const unsigned char *)key, len);
	char *b64 = sftp_base64((const unsigned char *)key, len);
	char *line = xasprintf("%s %s %s\n", name, ktype ? ktype : "unknown", b64);
	rc = known_hosts_append(ss, line, err);
	if (rc == 0)
		log_warning("recorded the new %s host key %s of \"%s\" in \"%s\" (sftp-host-key-check = "
			    "accept-new)",
			    hostkey_label(type), fp, ss->server, ss->known_hosts);
	free(line);
	free(b64);
	free(ktype);
	free(name);

done:
	known_hosts_clear(&k);
	if (fd >= 0)
		close(fd);
	free(lock);
	free(dir);
	return rc;
}

static int check_host_key(SftpStore *ss, const KnownHosts *k, WsError *err)
{
	size_t len = 0;
	int type = 0;
	const char *key = libssh2_session_hostkey(ss->session, &len, &type);
	if (key == NULL)
		return ws_error(err, WS_FATAL, "could not get the host key of \"%s\"", ss->server);

	char *fp = sftp_fingerprint((const unsigned char *)key, len);
	const char *label = hostkey_label(type);
	int rc = 0;
	int check = known_hosts_check(ss, k, key, len, type);

	if (check == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		goto done;
	if (check == -1) {
		rc = ws_error(err, WS_FATAL, "host key of \"%s\" is revoked", ss->server);
		ws_error_detail(err, "The server offered the %s key %s, marked @revoked in \"%s\".", label,
				fp, ss->known_hosts);
		goto done;
	}
	if (check == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		rc = ws_error(err, WS_FATAL, "host key of \"%s\" has changed", ss->server);
		ws_error_detail(
			err,
			"The server offered the %s key %s, which differs from the one recorded in \"%s\".  "
			"Someone could be eavesdropping on the connection (a man-in-the-middle attack), or "
			"the server's host key was replaced.",
			label, fp, ss->known_hosts);
		ws_error_hint(err,
			      "Check the new key with the server's administrator; once it is known to be "
			      "genuine, remove the old entry with: ssh-keygen -R \"%s\" -f \"%s\".",
			      ss->url.port == 22 ? ss->url.host : ss->server, ss->known_hosts);
		goto done;
	}
	if (check != LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
		rc = ws_error(err, WS_FATAL, "could not check the host key of \"%s\" against \"%s\"",
			      ss->server, ss->known_hosts);
		goto done;
	}
	if (k->listed) {
		/* Entries for the host, none of this type: not "new", so accept-new does not apply either. */
		rc = ws_error(err, WS_FATAL, "host key of \"%s\" is not in \"%s\"", ss->server,
			      ss->known_hosts);
		ws_error_detail(
			err,
			"The server offered the %s key %s; the file lists this host only with keys of "
			"other types.",
			label, fp);
		ws_error_hint(err, "Check the key with the server's administrator and add it to \"%s\".",
			      ss->known_hosts);
		goto done;
	}
	if (ss->accept_new) {
		rc = accept_new_key(ss, key, len, type, fp, err);
		goto done;
	}
	rc = ws_error(err, WS_FATAL, "host key of \"%s\" is unknown", ss->server);
	ws_error_detail(err, "The server offered the %s key %s, and \"%s\" has no entry for \"%s\".", label,
			fp, ss->known_hosts, ss->server);
	ws_error_hint(err,
		      "Check the fingerprint with the server's administrator, then add the key with: "
		      "ssh-keyscan -p %d -t %s %s >> %s (and compare ssh-keygen -lf %s), or set "
		      "sftp-host-key-check = accept-new to record the key of a new host on first contact.",
		      ss->url.port,
		      type == LIBSSH2_HOSTKEY_TYPE_ED25519 ? "ed25519"
		      : type == LIBSSH2_HOSTKEY_TYPE_RSA   ? "rsa"
		      : type == LIBSSH2_HOSTKEY_TYPE_DSS   ? "dsa"
							   : "ecdsa",
		      ss->url.host, ss->known_hosts, ss->known_hosts);
done:
	free(fp);
	return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Authentication
 */

typedef enum KeyTry {
	KEY_ACCEPTED,
	KEY_REFUSED, /* the server refused it, or it was skipped: try the next */
	KEY_ERROR,   /* err is set: stop */
} KeyTry;

static void tried_add(char *tried, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void tried_add(char *tried, size_t size, const char *fmt, ...)
{
	size_t used = strlen(tried);
	va_list ap;
	if (used + 2 >= size)
		return;
	if (used > 0) {
		tried[used++] = ' ';
		tried[used] = '\0';
	}
	va_start(ap, fmt);
	vsnprintf(tried + used, size - used, fmt, ap);
	va_end(ap);
}

static int auth_error(SftpStore *ss, WsError *err)
{
	return ws_error(err, WS_FATAL, "could not authenticate as \"%s\" to \"%s\"", ss->user, ss->server);
}

/*
 * Offer one private key file.  explicit: named by sftp-key-file, so every
 * problem with it is an error; a default file that is missing or needs a
 * passphrase is passed over.
 */
static KeyTry try_key_file(SftpStore *ss, const char *path, bool explicit, char *tried, size_t tsize,
			   WsError *err)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	KeyTry res = KEY_REFUSED;

	if (stat(path, &st) != 0) {
		int e = errno;
		if (!explicit && e == ENOENT)
			return KEY_REFUSED;
		auth_error(ss, err);
		err->errnum = e;
		ws_error_detail(err, "Could not read the key file \"%s\" (sftp-key-file): %s.", path,
				strerror(e));
		ws_error_hint(err, "Set sftp-key-file to a private key the user walship runs as can read.");
		return KEY_ERROR;
	}
	if ((st.st_mode & 077) != 0) {
		auth_error(ss, err);
		ws_error_detail(
			err,
			"The private key file \"%s\" is accessible by other users (mode %04o); like ssh, "
			"walship refuses to use it.",
			path, (unsigned)(st.st_mode & 07777));
		ws_error_hint(err, "Restrict it with: chmod 600 \"%s\".", path);
		return KEY_ERROR;
	}
	WsError rerr;
	ws_error_clear(&rerr);
	if (fs_read_small(path, SFTP_KEY_FILE_MAX, &text, &len, &rerr) != 0) {
		auth_error(ss, err);
		ws_error_detail(err, "Could not read the key file \"%s\": %s.", path, rerr.msg);
		return KEY_ERROR;
	}
	SftpKeyProtection prot = sftp_key_protection(text);
	explicit_bzero(text, len);
	free(text);

	if (prot == SFTP_KEY_ENCRYPTED && ss->passphrase == NULL) {
		if (!explicit) {
			tried_add(tried, tsize, "The key file \"%s\" was skipped: it needs a passphrase.",
				  path);
			return KEY_REFUSED;
		}
		auth_error(ss, err);
		ws_error_detail(err, "The key file \"%s\" is protected by a passphrase and none is set.",
				path);
		ws_error_hint(err, "Set sftp-key-passphrase in the configuration file (mode 0600) or in the "
				   "environment variable WALSHIP_SFTP_KEY_PASSPHRASE.");
		return KEY_ERROR;
	}

	int rc = libssh2_userauth_publickey_fromfile_ex(ss->session, ss->user, (unsigned)strlen(ss->user),
							NULL, path,
							prot == SFTP_KEY_ENCRYPTED ? ss->passphrase : NULL);
	if (rc == 0)
		return KEY_ACCEPTED;
	if (conn_error(rc)) {
		lost(ss, rc, "authentication interrupted", &OP_OPEN, ss->root, err);
		return KEY_ERROR;
	}
	if (rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED ||
	    rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED) {
		const char *why = prot == SFTP_KEY_ENCRYPTED
					  ? "the passphrase (sftp-key-passphrase) is wrong"
					  : "libssh2 cannot read this key format or key type";
		if (!explicit) {
			tried_add(tried, tsize, "The key file \"%s\" could not be used: %s.", path, why);
			return KEY_REFUSED;
		}
		auth_error(ss, err);
		ws_error_detail(err, "The key file \"%s\" could not be used: %s.", path, why);
		if (prot == SFTP_KEY_ENCRYPTED)
			ws_error_hint(
				err,
				"Check sftp-key-passphrase (from %s); ssh-keygen -y -f \"%s\" tells whether "
				"a passphrase opens the key.",
				"the configuration file or WALSHIP_SFTP_KEY_PASSPHRASE", path);
		else
			ws_error_hint(
				err,
				"Use an Ed25519, ECDSA or RSA key in OpenSSH or PEM format (ssh-keygen -t "
				"ed25519).");
		return KEY_ERROR;
	}
	tried_add(tried, tsize, "The server did not accept the key file \"%s\".", path);
	return res;
}

static KeyTry try_agent(SftpStore *ss, const char *sock, char *tried, size_t tsize, WsError *err)
{
	LIBSSH2_AGENT *agent = libssh2_agent_init(ss->session);
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	int nkeys = 0;
	KeyTry res = KEY_REFUSED;

	if (agent == NULL)
		return KEY_REFUSED;
	if (libssh2_agent_connect(agent) != 0) {
		tried_add(tried, tsize, "The ssh-agent at \"%s\" could not be reached.", sock);
		goto done;
	}
	if (libssh2_agent_list_identities(agent) != 0) {
		tried_add(tried, tsize, "The ssh-agent at \"%s\" did not list its keys.", sock);
		goto done;
	}
	while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
		nkeys++;
		int rc = libssh2_agent_userauth(agent, ss->user, id);
		if (rc == 0) {
			res = KEY_ACCEPTED;
			goto done;
		}
		if (conn_error(rc)) {
			lost(ss, rc, "authentication interrupted", &OP_OPEN, ss->root, err);
			res = KEY_ERROR;
			goto done;
		}
		prev = id;
	}
	tried_add(tried, tsize, "The server accepted none of the %d key(s) of the ssh-agent at \"%s\".",
		  nkeys, sock);
done:
	if (ss->session != NULL)
		libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	return res;
}

static int authenticate(SftpStore *ss, WsError *err)
{
	char tried[WS_ERROR_TEXT] = "";
	unsigned ulen = (unsigned)strlen(ss->user);
	char *methods = libssh2_userauth_list(ss->session, ss->user, ulen);

	if (methods == NULL) {
		if (libssh2_userauth_authenticated(ss->session))
			return 0;
		return ssh_fail(ss, &OP_OPEN, ss->root, NULL, err);
	}
	if (strstr(methods, "publickey") == NULL) {
		auth_error(ss, err);
		ws_error_detail(err, "The server offers only: %s; walship authenticates with keys.", methods);
		ws_error_hint(err, "Enable PubkeyAuthentication on the server.");
		return WS_FATAL;
	}

	KeyTry r = KEY_REFUSED;
	if (ss->key_file != NULL) {
		r = try_key_file(ss, ss->key_file, true, tried, sizeof(tried), err);
	} else {
		const char *agent = getenv("SSH_AUTH_SOCK");
		if (agent != NULL && agent[0] != '\0')
			r = try_agent(ss, agent, tried, sizeof(tried), err);
		static const char *const defaults[] = {"id_ed25519", "id_ecdsa", "id_rsa"};
		for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]) && r == KEY_REFUSED; i++) {
			char *path = xasprintf("%s/.ssh/%s", ss->home, defaults[i]);
			r = try_key_file(ss, path, false, tried, sizeof(tried), err);
			free(path);
		}
	}
	if (r == KEY_ACCEPTED)
		return 0;
	if (r == KEY_ERROR)
		return err ? err->cls : WS_FATAL;

	auth_error(ss, err);
	if (tried[0] == '\0')
		tried_add(tried, sizeof(tried),
			  "No key was found: sftp-key-file is not set, SSH_AUTH_SOCK is not set, and "
			  "\"%s/.ssh\" "
			  "has no id_ed25519, id_ecdsa or id_rsa.",
			  ss->home);
	ws_error_detail(err, "%s", tried);
	ws_error_hint(
		err,
		"Add the public key to ~%s/.ssh/authorized_keys on the server, or set sftp-key-file to the "
		"private key it belongs to.  Through libssh2 1.10 RSA keys sign with SHA-1, which OpenSSH "
		"8.8 "
		"and later refuse: use an Ed25519 or ECDSA key.",
		ss->user);
	return WS_FATAL;
}

/* Connect, check the host key, authenticate, start SFTP. */
static int connect_session(SftpStore *ss, WsError *err)
{
	KnownHosts k = {0};
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

	rc = known_hosts_load(ss, &k, err);
	if (rc != 0)
		goto done;
	prefer_known_types(ss, &k);

	int hs = libssh2_session_handshake(ss->session, ss->sock);
	if (hs != 0) {
		char *msg = NULL;
		libssh2_session_last_error(ss->session, &msg, NULL, 0);
		if (conn_error(hs)) {
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
	rc = check_host_key(ss, &k, err);
	if (rc != 0)
		goto done;
	rc = authenticate(ss, err);
	if (rc != 0)
		goto done;

	ss->sftp = libssh2_sftp_init(ss->session);
	if (ss->sftp == NULL) {
		char *msg = NULL;
		int e = libssh2_session_last_error(ss->session, &msg, NULL, 0);
		if (conn_error(e)) {
			rc = lost(ss, e, msg, &OP_OPEN, ss->root, err);
		} else {
			rc = ws_error(err, WS_FATAL, "could not start SFTP on \"%s\"", ss->server);
			ws_error_detail(err, "The SSH library reported: %s (libssh2 error %d).",
					msg ? msg : "no message", e);
			ws_error_hint(err, "The server must offer the sftp subsystem (Subsystem sftp in "
					   "sshd_config).");
		}
	}

done:
	known_hosts_clear(&k);
	if (rc != 0)
		disconnect(ss, false);
	return rc;
}

static int ensure_connected(SftpStore *ss, WsError *err)
{
	if (ss->sftp != NULL)
		return 0;
	return connect_session(ss, err);
}

/* ---------------------------------------------------------------------------------------------
 * Paths, the root, directories
 */

static char *remote_path(const SftpStore *ss, const char *key)
{
	if (strcmp(ss->root, "/") == 0)
		return xasprintf("/%s", key);
	return xasprintf("%s/%s", ss->root, key);
}

static int root_missing(SftpStore *ss, WsError *err)
{
	ws_error(err, WS_FATAL, "repository directory \"%s\" does not exist on \"%s\"", ss->root, ss->server);
	ws_error_hint(err,
		      "Create it with walship init, check the path in the repository URL, or check that the "
		      "volume holding it is mounted on the server.");
	return WS_FATAL;
}

/* The root must be a directory; checked at open and whenever something is missing. */
static int check_root(SftpStore *ss, WsError *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	if (libssh2_sftp_stat_ex(ss->sftp, ss->root, (unsigned)strlen(ss->root), LIBSSH2_SFTP_STAT, &a) !=
	    0) {
		unsigned long fx = 0;
		int rc = ssh_fail(ss, &OP_OPEN, ss->root, &fx, err);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE)
			return root_missing(ss, err);
		if (rc == WS_FATAL)
			ws_error(err, WS_FATAL, "could not access repository directory \"%s\" on \"%s\": %s",
				 ss->root, ss->server, fx_text(fx));
		return rc;
	}
	if ((a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && !LIBSSH2_SFTP_S_ISDIR(a.permissions))
		return ws_error(err, WS_FATAL, "repository \"%s\" on \"%s\" is not a directory", ss->root,
				ss->server);
	return 0;
}

/* StoreLookFn for store_prove_absent: SFTP lstat (or stat) below the root. */
static int sftp_look(void *ctx, const char *rel, bool follow, StoreNode *node, WsError *err)
{
	SftpStore *ss = ctx;
	LIBSSH2_SFTP_ATTRIBUTES a;
	*node = STORE_NODE_DIR;
	if (rel[0] == '\0')
		return check_root(ss, err);

	char *path = remote_path(ss, rel);
	int rc = 0;
	if (libssh2_sftp_stat_ex(ss->sftp, path, (unsigned)strlen(path),
				 follow ? LIBSSH2_SFTP_STAT : LIBSSH2_SFTP_LSTAT, &a) != 0) {
		unsigned long fx = 0;
		rc = ssh_fail(ss, &OP_STAT, rel, &fx, err);
		/* OpenSSH answers ENOTDIR and ELOOP as "no such file" too: the walk up tells them apart. */
		if (fx == LIBSSH2_FX_NO_SUCH_FILE) {
			*node = STORE_NODE_ABSENT;
			rc = 0;
		}
	} else if (!(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS)) {
		*node = STORE_NODE_OTHER;
	} else if (LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
		*node = STORE_NODE_DIR;
	} else if (LIBSSH2_SFTP_S_ISREG(a.permissions)) {
		*node = STORE_NODE_FILE;
	} else if (LIBSSH2_SFTP_S_ISLNK(a.permissions)) {
		*node = STORE_NODE_LINK;
	} else {
		*node = STORE_NODE_OTHER;
	}
	free(path);
	return rc;
}

/* After "no such file" for key: "not found" only if proven (store_prove_absent). */
static int not_found(SftpStore *ss, const char *key, WsError *err)
{
	return store_prove_absent(key, ss->base.display, sftp_look, ss, err);
}

/* lstat: 1 if a directory, 0 if something else, negative (err set) on failure. */
static int is_dir(SftpStore *ss, const char *path, const SftpOp *op, const char *key, WsError *err)
{
	LIBSSH2_SFTP_ATTRIBUTES a;
	if (libssh2_sftp_stat_ex(ss->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT, &a) != 0)
		return ssh_fail(ss, op, key, NULL, err);
	return (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a.permissions) ? 1 : 0;
}

/*
 * mkdir path; an existing directory is fine (OpenSSH answers "failure" for
 * EEXIST, so look).  *created tells whether this call made it.
 */
static int make_dir(SftpStore *ss, const char *path, const SftpOp *op, const char *key, bool *created,
		    WsError *err)
{
	*created = false;
	if (libssh2_sftp_mkdir_ex(ss->sftp, path, (unsigned)strlen(path), SFTP_DIR_MODE) == 0) {
		*created = true;
		return 0;
	}
	unsigned long fx = last_fx(ss);
	if (fx == 0)
		return ssh_fail(ss, op, key, NULL, err);
	WsError ignored;
	int d = is_dir(ss, path, op, key, &ignored);
	if (d == 1)
		return 0;
	if (d < 0 && ss->sftp == NULL)
		return ssh_fail(ss, op, key, NULL, err);
	return status_fail(ss, fx, op, key, err);
}

/*
 * Run `sync DIR...` on the server: fsync@openssh.com syncs files only, so a
 * new name (and a new directory) is durable only once its directory is.
 */
static int dir_sync(SftpStore *ss, char **dirs, size_t ndirs, const char *key, WsError *err)
{
	if (!ss->dir_sync || ndirs == 0)
		return 0;
	size_t cap = 16;
	char **quoted = xcalloc(ndirs, sizeof(*quoted));
	for (size_t i = 0; i < ndirs; i++) {
		quoted[i] = sftp_shell_quote(dirs[i]);
		cap += strlen(quoted[i]) + 1;
	}
	char *cmd = xcalloc(1, cap);
	strcpy(cmd, "sync --");
	for (size_t i = 0; i < ndirs; i++) {
		strcat(cmd, " ");
		strcat(cmd, quoted[i]);
	}
	strv_free(quoted, ndirs);

	char out[SFTP_EXEC_OUT_MAX] = "";
	size_t outlen = 0;
	int rc = 0;
	int status = -1;
	char *signame = NULL;
	LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(ss->session);
	if (ch == NULL) {
		rc = ssh_fail(ss, &OP_WRITE, key, NULL, err);
		goto done;
	}
	if (libssh2_channel_exec(ch, cmd) != 0) {
		rc = ssh_fail(ss, &OP_WRITE, key, NULL, err);
		goto done;
	}
	/* Collect what it prints (stderr merged), keeping the start for the message. */
	libssh2_channel_handle_extended_data2(ch, LIBSSH2_CHANNEL_EXTENDED_DATA_MERGE);
	for (;;) {
		char buf[1024];
		ssize_t n = libssh2_channel_read(ch, buf, sizeof(buf));
		if (n < 0) {
			rc = ssh_fail(ss, &OP_WRITE, key, NULL, err);
			goto done;
		}
		if (n == 0)
			break;
		size_t take = (size_t)n < sizeof(out) - 1 - outlen ? (size_t)n : sizeof(out) - 1 - outlen;
		memcpy(out + outlen, buf, take);
		outlen += take;
		out[outlen] = '\0';
	}
	if (libssh2_channel_close(ch) != 0 || libssh2_channel_wait_closed(ch) != 0) {
		rc = ssh_fail(ss, &OP_WRITE, key, NULL, err);
		goto done;
	}
	status = libssh2_channel_get_exit_status(ch);
	libssh2_channel_get_exit_signal(ch, &signame, NULL, NULL, NULL, NULL, NULL);
	if (status != 0 || signame != NULL) {
		for (char *p = out; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		rc = ws_error(err, WS_FATAL, "could not make \"%s\" durable in repository \"%s\"", key,
			      ss->base.display);
		if (signame != NULL)
			ws_error_detail(
				err, "The command \"%s\" run on \"%s\" was killed by signal %s.  Output: %s",
				cmd, ss->server, signame, out[0] ? out : "none.");
		else
			ws_error_detail(err,
					"The command \"%s\" run on \"%s\" exited with status %d.  Output: %s",
					cmd, ss->server, status, out[0] ? out : "none.");
		ws_error_hint(
			err,
			"fsync@openssh.com does not sync directories, so walship runs sync on the server "
			"(sftp-dir-sync = exec); the account needs a shell and coreutils' sync.  Setting "
			"sftp-dir-sync = off trusts the server instead: a crash of the server right after "
			"a push could then lose the object's new name.");
	}
done:
	if (ch != NULL) {
		if (ss->session != NULL)
			libssh2_channel_free(ch);
	}
	libssh2_free(ss->session, signame);
	free(cmd);
	return rc;
}

/* Add a directory to a set to sync, once. */
static void dirs_add(char ***v, size_t *n, const char *dir)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], dir) == 0)
			return;
	strv_add(v, n, dir);
}

/*
 * Create the directories of key below the root.  Nothing is synced here: each
 * put syncs the whole chain of directories once its object is in place
 * (sync_dirs).
 */
static int make_parents(SftpStore *ss, const char *key, WsError *err)
{
	char *path = remote_path(ss, key);
	char *p = path + strlen(path) - strlen(key);
	int rc = 0;

	while ((p = strchr(p, '/')) != NULL) {
		bool created = false;
		*p = '\0';
		rc = make_dir(ss, path, &OP_WRITE, key, &created, err);
		if (rc != 0 && ss->sftp != NULL && last_fx(ss) == LIBSSH2_FX_NO_SUCH_FILE) {
			WsError rerr;
			if (check_root(ss, &rerr) != 0)
				*err = rerr;
		}
		*p++ = '/';
		if (rc != 0)
			break;
	}
	free(path);
	return rc;
}

/*
 * Sync (sftp-dir-sync) the directory of the object at path and each one above
 * it up to the root, in one command: a name is durable only once every entry
 * on its path is, and a directory made by an earlier put that died or failed
 * before its sync would otherwise never be synced.
 */
static int sync_dirs(SftpStore *ss, const char *path, const char *key, WsError *err)
{
	char **sync = NULL;
	size_t nsync = 0;
	char *dir = fs_dirname(path);
	for (;;) {
		dirs_add(&sync, &nsync, dir);
		if (strlen(dir) <= strlen(ss->root))
			break;
		char *up = fs_dirname(dir);
		free(dir);
		dir = up;
	}
	free(dir);
	int rc = dir_sync(ss, sync, nsync, key, err);
	strv_free(sync, nsync);
	return rc;
}

/* ---------------------------------------------------------------------------------------------
 * posix-rename@openssh.com, sent by hand
 */

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Read exactly n bytes of the channel; 0 or a libssh2 error (CHANNEL_CLOSED at EOF). */
static int chan_read_exact(LIBSSH2_CHANNEL *ch, unsigned char *buf, size_t n)
{
	while (n > 0) {
		ssize_t r = libssh2_channel_read(ch, (char *)buf, n);
		if (r < 0)
			return (int)r;
		if (r == 0)
			return LIBSSH2_ERROR_CHANNEL_CLOSED;
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * Rename with rename(2) semantics (replacing the target atomically).  libssh2
 * 1.10 cannot send posix-rename@openssh.com, so it is written on the SFTP
 * channel here and its answer read back.  This is safe because every libssh2
 * SFTP call of this driver is blocking and complete when it returns: nothing
 * of libssh2's is in flight on the channel except, possibly, answers to
 * read-ahead requests of a closed download, which libssh2 would drop anyway
 * and which are skipped below by their request id.
 */
static int posix_rename(SftpStore *ss, const char *from, const char *to, const char *key, WsError *err)
{
	static const char ext[] = "posix-rename@openssh.com";
	size_t elen = sizeof(ext) - 1, flen = strlen(from), tlen = strlen(to);
	size_t plen = 1 + 4 + 4 + elen + 4 + flen + 4 + tlen;
	unsigned char *pkt = xmalloc(4 + plen);
	unsigned char *p = pkt;
	LIBSSH2_CHANNEL *ch = libssh2_sftp_get_channel(ss->sftp);
	/* Ids from the top of the range: libssh2 counts its own up from 0. */
	uint32_t id = 0xF0000000u + (ss->ext_id++ & 0x0FFFFFFFu);
	int rc = 0;

	put_u32(p, (uint32_t)plen);
	p += 4;
	*p++ = SSH_FXP_EXTENDED;
	put_u32(p, id);
	p += 4;
	put_u32(p, (uint32_t)elen);
	memcpy(p + 4, ext, elen);
	p += 4 + elen;
	put_u32(p, (uint32_t)flen);
	memcpy(p + 4, from, flen);
	p += 4 + flen;
	put_u32(p, (uint32_t)tlen);
	memcpy(p + 4, to, tlen);

	for (size_t off = 0; off < 4 + plen;) {
		ssize_t n = libssh2_channel_write(ch, (const char *)pkt + off, 4 + plen - off);
		if (n < 0) {
			rc = ssh_fail(ss, &OP_WRITE, key, NULL, err);
			goto done;
		}
		off += (size_t)n;
	}
	for (;;) {
		unsigned char hdr[9];
		int e = chan_read_exact(ch, hdr, sizeof(hdr));
		if (e != 0) {
			rc = e == LIBSSH2_ERROR_CHANNEL_CLOSED
				     ? lost(ss, e, "SFTP channel closed", &OP_WRITE, key, err)
				     : ssh_fail(ss, &OP_WRITE, key, NULL, err);
			goto done;
		}
		uint32_t len = get_u32(hdr);
		if (len < 5 || len > 1024 * 1024) {
			rc = ws_error(err, WS_FATAL,
				      "could not write \"%s\" to repository \"%s\": bad SFTP packet", key,
				      ss->base.display);
			disconnect(ss, false);
			goto done;
		}
		unsigned char rest[1024];
		size_t left = len - 5;
		bool ours = hdr[4] == SSH_FXP_STATUS && get_u32(hdr + 5) == id;
		if (ours && (left < 4 || left > sizeof(rest))) {
			rc = ws_error(err, WS_FATAL,
				      "could not write \"%s\" to repository \"%s\": bad SFTP packet", key,
				      ss->base.display);
			disconnect(ss, false);
			goto done;
		}
		while (left > 0) {
			size_t take = left < sizeof(rest) ? left : sizeof(rest);
			e = chan_read_exact(ch, rest, take);
			if (e != 0) {
				rc = e == LIBSSH2_ERROR_CHANNEL_CLOSED
					     ? lost(ss, e, "SFTP channel closed", &OP_WRITE, key, err)
					     : ssh_fail(ss, &OP_WRITE, key, NULL, err);
				goto done;
			}
			left -= take;
		}
		if (!ours)
			continue;
		uint32_t st = get_u32(rest);
		if (st != LIBSSH2_FX_OK) {
			rc = status_fail(ss, st, &OP_WRITE, key, err);
			if (st == LIBSSH2_FX_OP_UNSUPPORTED)
				ws_error_hint(
					err, "The server does not offer posix-rename@openssh.com, which "
					     "walship needs to replace an object atomically (OpenSSH 4.9 and "
					     "later have it).");
		}
		break;
	}
done:
	free(pkt);
	return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The operations
 */

/* fsync@openssh.com for an open file of key. */
static int fsync_handle(SftpStore *ss, LIBSSH2_SFTP_HANDLE *h, const char *key, WsError *err)
{
	if (libssh2_sftp_fsync(h) == 0)
		return 0;
	unsigned long fx = 0;
	int rc = ssh_fail(ss, &OP_WRITE, key, &fx, err);
	if (fx == LIBSSH2_FX_OP_UNSUPPORTED)
		ws_error_hint(
			err,
			"The server does not offer fsync@openssh.com (OpenSSH 6.5 and later do): walship "
			"cannot make the object durable there.");
	return rc;
}

/*
 * A no-overwrite put found key taken at path (a: its lstat): make what is
 * there durable before answering WS_EXISTS, which callers may take for
 * "stored".  Its writer may have died (or its directory sync failed with the
 * object left in place) between the rename and the directory sync: so
 * fsync@openssh.com for the file, then the directory sync for its directory
 * and each one up to the root (a put creates missing ones).
 */
static int exists_durably(SftpStore *ss, const char *key, const char *path, const LIBSSH2_SFTP_ATTRIBUTES *a,
			  WsError *err)
{
	if (!(a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) || !LIBSSH2_SFTP_S_ISREG(a->permissions)) {
		if ((a->flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a->permissions))
			return store_dir_at_key(key, ss->base.display, err);
		return ws_error(err, WS_FATAL, "object \"%s\" in repository \"%s\" is not a regular file",
				key, ss->base.display);
	}
	LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(ss->sftp, path, (unsigned)strlen(path),
						      LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
	if (h == NULL)
		return ssh_fail(ss, &OP_WRITE, key, NULL, err);
	int rc = fsync_handle(ss, h, key, err);
	if (ss->session != NULL)
		libssh2_sftp_close_handle(h);
	if (rc != 0)
		return rc;

	rc = sync_dirs(ss, path, key, err);
	if (rc != 0)
		return rc;
	return ws_error(err, WS_EXISTS, "\"%s\" already exists in repository \"%s\"", key, ss->base.display);
}

static int sftp_put(Store *s, const char *key, WsReader src, void *src_ctx, bool no_overwrite, WsError *err)
{
	SftpStore *ss = (SftpStore *)s;
	char *path = NULL, *dir = NULL, *tmp = NULL;
	unsigned char *buf = NULL;
	LIBSSH2_SFTP_HANDLE *h = NULL;
	bool tmp_exists = false;
	int rc = store_key_reserved(key, "SFTP", err);
	if (rc != 0)
		return rc;
	rc = ensure_connected(ss, err);
	if (rc != 0)
		return rc;

	path = remote_path(ss, key);
	dir = fs_dirname(path);
	bool made_dirs = false;
	for (int i = 0; i < SFTP_TEMP_TRIES && h == NULL; i++) {
		char suffix[9];
		store_random_name(suffix, sizeof(suffix) - 1);
		free(tmp);
		tmp = xasprintf("%s/.%.*s.%s.tmp", dir, SFTP_TEMP_BASE_MAX, fs_basename(path), suffix);
		h = libssh2_sftp_open_ex(ss->sftp, tmp, (unsigned)strlen(tmp),
					 LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL,
					 SFTP_FILE_MODE, LIBSSH2_SFTP_OPENFILE);
		if (h != NULL)
			break;
		unsigned long fx = last_fx(ss);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE && !made_dirs) {
			rc = make_parents(ss, key, err);
			if (rc != 0)
				goto done;
			made_dirs = true;
			continue;
		}
		/* OpenSSH answers EEXIST with "failure": only then is another name worth a try. */
		if (fx == LIBSSH2_FX_FAILURE || fx == LIBSSH2_FX_FILE_ALREADY_EXISTS)
			continue;
		rc = ssh_fail(ss, &OP_WRITE, key, &fx, err);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE) {
			WsError rerr;
			if (check_root(ss, &rerr) != 0)
				*err = rerr;
		}
		goto done;
	}
	if (h == NULL) {
		rc = ssh_fail(ss, &OP_WRITE, key, NULL, err);
		goto done;
	}
	tmp_exists = true;

	buf = xmalloc(SFTP_BUF_SIZE);
	for (;;) {
		size_t got = 0;
		rc = src(src_ctx, buf, SFTP_BUF_SIZE, &got, err);
		if (rc != 0)
			goto done;
		if (got == 0)
			break;
		/* One call per buffer: libssh2 splits it into pipelined write requests. */
		for (size_t off = 0; off < got;) {
			ssize_t n = libssh2_sftp_write(h, (const char *)buf + off, got - off);
			if (n < 0) {
				rc = ssh_fail(ss, &OP_WRITE, key, NULL, err);
				goto done;
			}
			off += (size_t)n;
		}
	}
	rc = fsync_handle(ss, h, key, err);
	if (rc != 0)
		goto done;
	int crc = libssh2_sftp_close_handle(h);
	h = NULL;
	if (crc != 0) {
		rc = ssh_fail(ss, &OP_WRITE, key, NULL, err);
		goto done;
	}

	if (no_overwrite) {
		/* SFTP v3 rename: OpenSSH links the new name and never replaces one that exists. */
		if (libssh2_sftp_rename_ex(ss->sftp, tmp, (unsigned)strlen(tmp), path, (unsigned)strlen(path),
					   0) != 0) {
			unsigned long fx = last_fx(ss);
			if (fx == 0) {
				rc = ssh_fail(ss, &OP_WRITE, key, NULL, err);
				goto done;
			}
			LIBSSH2_SFTP_ATTRIBUTES a;
			if (libssh2_sftp_stat_ex(ss->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT,
						 &a) == 0) {
				rc = exists_durably(ss, key, path, &a, err);
				goto done;
			}
			if (last_fx(ss) == 0) {
				rc = ssh_fail(ss, &OP_WRITE, key, NULL, err);
				goto done;
			}
			rc = status_fail(ss, fx, &OP_WRITE, key, err);
			goto done;
		}
	} else {
		rc = posix_rename(ss, tmp, path, key, err);
		if (rc != 0)
			goto done;
	}
	tmp_exists = false;

	rc = sync_dirs(ss, path, key, err);
	/*
	 * The name may not survive a crash of the server: take a new object back,
	 * so that the caller's retry puts it again (a retry that still finds it,
	 * because this unlink failed too, syncs it before answering: see
	 * exists_durably).  A replaced object stays: removing it would lose the
	 * previous one too.
	 */
	if (rc != 0 && no_overwrite && ss->sftp != NULL)
		(void)libssh2_sftp_unlink_ex(ss->sftp, path, (unsigned)strlen(path));

done:
	if (h != NULL && ss->session != NULL)
		libssh2_sftp_close_handle(h);
	/* Only while the connection works: after a drop the temp name stays, invisible to list. */
	if (tmp_exists && ss->sftp != NULL)
		(void)libssh2_sftp_unlink_ex(ss->sftp, tmp, (unsigned)strlen(tmp));
	free(buf);
	free(tmp);
	free(dir);
	free(path);
	return rc;
}

static int sftp_get(Store *s, const char *key, uint64_t offset, uint64_t length, WsWriter sink,
		    void *sink_ctx, WsError *err)
{
	SftpStore *ss = (SftpStore *)s;
	unsigned char *buf = NULL;
	LIBSSH2_SFTP_HANDLE *h = NULL;
	LIBSSH2_SFTP_ATTRIBUTES a;
	uint64_t left = length;
	int rc = store_key_reserved(key, "SFTP", err);
	if (rc != 0)
		return rc;
	rc = ensure_connected(ss, err);
	if (rc != 0)
		return rc;

	char *path = remote_path(ss, key);
	h = libssh2_sftp_open_ex(ss->sftp, path, (unsigned)strlen(path), LIBSSH2_FXF_READ, 0,
				 LIBSSH2_SFTP_OPENFILE);
	if (h == NULL) {
		unsigned long fx = 0;
		rc = ssh_fail(ss, &OP_READ, key, &fx, err);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE)
			rc = not_found(ss, key, err);
		goto done;
	}
	if (libssh2_sftp_fstat_ex(h, &a, 0) != 0) {
		rc = ssh_fail(ss, &OP_READ, key, NULL, err);
		goto done;
	}
	if (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) {
		if (LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
			rc = store_dir_at_key(key, ss->base.display, err);
			goto done;
		}
		if (!LIBSSH2_SFTP_S_ISREG(a.permissions)) {
			rc = ws_error(err, WS_FATAL,
				      "object \"%s\" in repository \"%s\" is not a regular file", key,
				      ss->base.display);
			goto done;
		}
	}
	if ((a.flags & LIBSSH2_SFTP_ATTR_SIZE) && offset >= a.filesize)
		goto done;

	libssh2_sftp_seek64(h, offset);
	buf = xmalloc(SFTP_BUF_SIZE);
	while (left > 0) {
		size_t want = left < SFTP_BUF_SIZE ? (size_t)left : SFTP_BUF_SIZE;
		ssize_t n = libssh2_sftp_read(h, (char *)buf, want);
		if (n < 0) {
			rc = ssh_fail(ss, &OP_READ, key, NULL, err);
			goto done;
		}
		if (n == 0)
			break;
		rc = sink(sink_ctx, buf, (size_t)n, err);
		if (rc != 0)
			goto done;
		left -= (uint64_t)n;
	}

done:
	if (h != NULL && ss->session != NULL)
		libssh2_sftp_close_handle(h);
	free(buf);
	free(path);
	return rc;
}

static int sftp_stat(Store *s, const char *key, StoreStat *out, WsError *err)
{
	SftpStore *ss = (SftpStore *)s;
	LIBSSH2_SFTP_ATTRIBUTES a;
	int rc = store_key_reserved(key, "SFTP", err);
	if (rc != 0)
		return rc;
	rc = ensure_connected(ss, err);
	if (rc != 0)
		return rc;

	char *path = remote_path(ss, key);
	if (libssh2_sftp_stat_ex(ss->sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT, &a) != 0) {
		unsigned long fx = 0;
		rc = ssh_fail(ss, &OP_STAT, key, &fx, err);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE)
			rc = not_found(ss, key, err);
	} else if ((a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
		rc = store_dir_at_key(key, ss->base.display, err);
	} else if (!(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) || !LIBSSH2_SFTP_S_ISREG(a.permissions)) {
		rc = ws_error(err, WS_FATAL, "object \"%s\" in repository \"%s\" is not a regular file", key,
			      ss->base.display);
	} else {
		out->size = (a.flags & LIBSSH2_SFTP_ATTR_SIZE) ? a.filesize : 0;
		out->mtime = (a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (int64_t)a.mtime : 0;
	}
	free(path);
	return rc;
}

/*
 * List the directory whose key prefix is key[0..keylen) ("" or ending in '/'),
 * only names starting with filter at this level (NULL: all), depth-first in
 * bytewise key order.  key is a STORE_KEY_MAX buffer extended in place.
 */
static int list_dir(SftpStore *ss, char *key, size_t keylen, const char *filter, StoreListFn fn, void *ctx,
		    WsError *err)
{
	StoreDirList l = {0};
	size_t flen = filter ? strlen(filter) : 0;
	char *name = xmalloc(SFTP_NAME_MAX);
	int rc = 0;
	char *path = keylen == 0 ? xstrdup(ss->root) : remote_path(ss, key);
	const char *what = keylen == 0 ? "/" : key;

	LIBSSH2_SFTP_HANDLE *h =
		libssh2_sftp_open_ex(ss->sftp, path, (unsigned)strlen(path), 0, 0, LIBSSH2_SFTP_OPENDIR);
	if (h == NULL) {
		unsigned long fx = 0;
		rc = ssh_fail(ss, &OP_LIST, what, &fx, err);
		/* Absent, or not a directory: nothing under this prefix. */
		if (fx == LIBSSH2_FX_NO_SUCH_FILE || fx == LIBSSH2_FX_NOT_A_DIRECTORY ||
		    (fx == LIBSSH2_FX_FAILURE && keylen > 0)) {
			rc = check_root(ss, err);
			if (rc == 0 && err != NULL)
				ws_error_clear(err);
		}
		goto done;
	}
	for (;;) {
		LIBSSH2_SFTP_ATTRIBUTES a;
		int len = libssh2_sftp_readdir_ex(h, name, SFTP_NAME_MAX, NULL, 0, &a);
		if (len < 0) {
			rc = ssh_fail(ss, &OP_LIST, what, NULL, err);
			goto done;
		}
		if (len == 0)
			break;
		size_t nlen = (size_t)len;
		/* Temp files and names no key could have are not objects. */
		if (name[0] == '.' || (filter && strncmp(name, filter, flen) != 0) || !store_name_ok(name) ||
		    !(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS))
			continue;
		bool d = LIBSSH2_SFTP_S_ISDIR(a.permissions);
		if ((!LIBSSH2_SFTP_S_ISREG(a.permissions) && !d) || keylen + nlen + d >= STORE_KEY_MAX)
			continue;
		store_dir_add(&l, name, d, (a.flags & LIBSSH2_SFTP_ATTR_SIZE) ? a.filesize : 0,
			      (a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (int64_t)a.mtime : 0);
	}
	libssh2_sftp_close_handle(h);
	h = NULL;

	store_dir_sort(&l);
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		const StoreDirEntry *e = &l.v[i];
		memcpy(key + keylen, e->name, e->len + 1);
		if (e->dir)
			rc = list_dir(ss, key, keylen + e->len, NULL, fn, ctx, err);
		else
			rc = fn(ctx, key, &e->st, err);
	}
	key[keylen] = '\0';

done:
	if (h != NULL && ss->session != NULL)
		libssh2_sftp_close_handle(h);
	store_dir_free(&l);
	free(name);
	free(path);
	return rc;
}

static int sftp_list(Store *s, const char *prefix, StoreListFn fn, void *ctx, WsError *err)
{
	SftpStore *ss = (SftpStore *)s;
	char key[STORE_KEY_MAX];
	const char *slash = strrchr(prefix, '/');
	size_t dirlen = slash ? (size_t)(slash - prefix) + 1 : 0;
	int rc = ensure_connected(ss, err);
	if (rc != 0)
		return rc;

	/* Nothing is listed inside temp names. */
	for (size_t i = 0; i < dirlen; i++) {
		if (prefix[i] == '.' && (i == 0 || prefix[i - 1] == '/'))
			return check_root(ss, err);
	}
	memcpy(key, prefix, dirlen);
	key[dirlen] = '\0';
	const char *filter = prefix[dirlen] ? prefix + dirlen : NULL;
	return list_dir(ss, key, dirlen, filter, fn, ctx, err);
}

static int sftp_remove(Store *s, const char *key, WsError *err)
{
	SftpStore *ss = (SftpStore *)s;
	int rc = store_key_reserved(key, "SFTP", err);
	if (rc != 0)
		return rc;
	rc = ensure_connected(ss, err);
	if (rc != 0)
		return rc;

	char *path = remote_path(ss, key);
	if (libssh2_sftp_unlink_ex(ss->sftp, path, (unsigned)strlen(path)) != 0) {
		unsigned long fx = 0;
		rc = ssh_fail(ss, &OP_REMOVE, key, &fx, err);
		if (fx == LIBSSH2_FX_NO_SUCH_FILE) {
			rc = not_found(ss, key, err);
		} else if (fx != 0) {
			/* OpenSSH answers unlink of a directory with "failure": say what is there. */
			WsError ignored;
			if (is_dir(ss, path, &OP_REMOVE, key, &ignored) == 1)
				rc = store_dir_at_key(key, ss->base.display, err);
		}
	}
	free(path);
	return rc;
}

static void sftp_free(Store *s)
{
	SftpStore *ss = (SftpStore *)s;
	disconnect(ss, ss->sftp != NULL);
	if (ss->passphrase != NULL) {
		explicit_bzero(ss->passphrase, strlen(ss->passphrase));
		free(ss->passphrase);
	}
	sftp_url_clear(&ss->url);
	free(ss->user);
	free(ss->server);
	free(ss->home);
	free(ss->known_hosts);
	free(ss->key_file);
	free(ss->base.display);
	free(ss);
}

static const StoreDriver sftp_driver = {
	.name = "sftp",
	.put = sftp_put,
	.get = sftp_get,
	.stat = sftp_stat,
	.list = sftp_list,
	.remove = sftp_remove,
	.free = sftp_free,
};

/* mkdir -p of the root (walship init); each created directory's parent is synced like a put's. */
static int create_root(SftpStore *ss, WsError *err)
{
	char *path = xstrdup(ss->root);
	char **sync = NULL;
	size_t nsync = 0;
	int rc = 0;

	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		bool created = false;
		if (path[1] != '\0') {
			rc = make_dir(ss, path, &OP_OPEN, path, &created, err);
			if (rc == WS_FATAL)
				ws_error(err, WS_FATAL,
					 "could not create repository directory \"%s\" on \"%s\": %s", path,
					 ss->server, fx_text(last_fx(ss)));
		}
		if (created) {
			char *parent = fs_dirname(path);
			dirs_add(&sync, &nsync, parent);
			free(parent);
		}
		*p = c;
		if (rc != 0 || c == '\0')
			break;
	}
	if (rc == 0)
		rc = dir_sync(ss, sync, nsync, ss->root, err);
	strv_free(sync, nsync);
	free(path);
	return rc;
}

int store_sftp_open(const char *url, const Config *cfg, int flags, Store **out, WsError *err)
{
	SftpStore *ss = xcalloc(1, sizeof(*ss));
	ss->sock = -1;
	ss->base.driver = &sftp_driver;
	*out = NULL;

	int rc = sftp_url_parse(url, &ss->url, err);
	if (rc != 0)
		goto done;
	ss->root = ss->url.path;
	ss->base.display = sftp_url_display(&ss->url);
	ss->server = sftp_server_name(ss->url.host, ss->url.port);

	const char *v = cfg_get(cfg, "sftp-dir-sync", "exec");
	if (strcmp(v, "exec") == 0 || strcmp(v, "off") == 0) {
		ss->dir_sync = strcmp(v, "exec") == 0;
	} else {
		rc = ws_error(err, WS_USAGE, "invalid value \"%s\" for sftp-dir-sync", v);
		ws_error_hint(err, "Use exec (run sync on the server after each put) or off.");
		goto done;
	}
	v = cfg_get(cfg, "sftp-host-key-check", "strict");
	if (strcmp(v, "strict") == 0 || strcmp(v, "accept-new") == 0) {
		ss->accept_new = strcmp(v, "accept-new") == 0;
	} else {
		rc = ws_error(err, WS_USAGE, "invalid value \"%s\" for sftp-host-key-check", v);
		ws_error_hint(err, "Use strict (refuse unknown hosts) or accept-new.");
		goto done;
	}
	if (cfg != NULL) {
		rc = config_get_int(cfg, "io-timeout", 1, 86400, &ss->timeout_s, err);
		if (rc != 0)
			goto done;
	} else {
		ss->timeout_s = 60;
	}

	struct passwd *pw = getpwuid(geteuid());
	if (pw == NULL && (ss->url.user == NULL || cfg_get(cfg, "sftp-known-hosts", "~")[0] == '~')) {
		rc = ws_error(err, WS_FATAL, "could not find the user walship runs as (uid %u)",
			      (unsigned)geteuid());
		goto done;
	}
	ss->user = xstrdup(ss->url.user ? ss->url.user : pw->pw_name);
	ss->home = xstrdup(pw ? pw->pw_dir : "/");
	ss->known_hosts = expand_home(ss, cfg_get(cfg, "sftp-known-hosts", "~/.ssh/known_hosts"));
	v = cfg_get(cfg, "sftp-key-file", NULL);
	if (v != NULL && v[0] != '\0')
		ss->key_file = expand_home(ss, v);
	v = cfg_get(cfg, "sftp-key-passphrase", NULL);
	if (v != NULL)
		ss->passphrase = xstrdup(v);

	rc = connect_session(ss, err);
	if (rc != 0)
		goto done;
	if (flags & STORE_OPEN_CREATE) {
		rc = create_root(ss, err);
		if (rc != 0)
			goto done;
	}
	rc = check_root(ss, err);

done:
	if (rc != 0) {
		sftp_free(&ss->base);
		return rc;
	}
	*out = &ss->base;
	return 0;
}
