/*
 * sftp_auth.c - public key authentication for the SFTP driver (see
 * sftp_auth.h).  A key named by sftp-key-file must work: every problem with
 * it is an error.  Default key files that are missing or need a passphrase
 * are passed over, and what was tried goes into the error's detail.
 */
#include "store/sftp_auth.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fsutil.h"
#include "util/mem.h"

#define SFTP_KEY_FILE_MAX (64 * 1024)

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
	if (sftp_session_conn_error(rc)) {
		sftp_session_lost(ss, rc, "authentication interrupted", &SFTP_OP_OPEN, ss->root, err);
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
		if (sftp_session_conn_error(rc)) {
			sftp_session_lost(ss, rc, "authentication interrupted", &SFTP_OP_OPEN, ss->root, err);
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

int sftp_auth_login(SftpStore *ss, WsError *err)
{
	char tried[WS_ERROR_TEXT] = "";
	unsigned ulen = (unsigned)strlen(ss->user);
	char *methods = libssh2_userauth_list(ss->session, ss->user, ulen);

	if (methods == NULL) {
		if (libssh2_userauth_authenticated(ss->session))
			return 0;
		return sftp_session_fail(ss, &SFTP_OP_OPEN, ss->root, NULL, err);
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
