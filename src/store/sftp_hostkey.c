/*
 * sftp_hostkey.c - the server's host key against known_hosts (see
 * sftp_hostkey.h).  libssh2 keeps its own table of the lines it can read;
 * this file notes beside it what libssh2 does not: which key types and
 * revoked keys name the server.
 */
#include "store/sftp_hostkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/sftp_util.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"

struct SftpHostKeys {
	const SftpHost *host;
	LIBSSH2_SESSION *session;
	LIBSSH2_KNOWNHOSTS *kh;
	char **types; /* key types listed for this host */
	size_t ntypes;
	char **revoked; /* base64 blobs of "@revoked" lines naming this host */
	size_t nrevoked;
	bool listed; /* some line names this host */
	int skipped; /* lines libssh2 could not read */
};

/* Release what load read, keeping host and session. */
static void clear(SftpHostKeys *k)
{
	if (k->kh != NULL)
		libssh2_knownhost_free(k->kh);
	sftp_strv_free(k->types, k->ntypes);
	sftp_strv_free(k->revoked, k->nrevoked);
	*k = (SftpHostKeys){.host = k->host, .session = k->session};
}

/*
 * Read the known_hosts file line by line (a missing file is empty): libssh2
 * gets the lines it can read (its readfile stops at the first it cannot, such
 * as a certificate authority), and this function notes which key types and
 * revoked keys name the server.
 */
static int load(SftpHostKeys *k, WsError *err)
{
	char *name = sftp_knownhosts_name(k->host->host, k->host->port);
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	clear(k);
	k->kh = libssh2_knownhost_init(k->session);
	if (k->kh == NULL) {
		free(name);
		return ws_error(err, WS_FATAL, "could not set up host key checking for \"%s\"",
				k->host->server);
	}
	FILE *f = fopen(k->host->known_hosts, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			goto done;
		ws_error_errno(err, WS_FATAL, errno, "could not read known hosts file \"%s\"",
			       k->host->known_hosts);
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
				sftp_strv_add(&k->revoked, &k->nrevoked, kl.blob);
		} else {
			if (names_us && kl.type != NULL) {
				k->listed = true;
				sftp_strv_add(&k->types, &k->ntypes, kl.type);
			}
			if (libssh2_knownhost_readline(k->kh, p, (size_t)(line + len - p),
						       LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0)
				k->skipped++;
		}
		free(copy);
	}
	if (ferror(f)) {
		ws_error_errno(err, WS_FATAL, errno, "could not read known hosts file \"%s\"",
			       k->host->known_hosts);
		rc = WS_FATAL;
	}
	fclose(f);

done:
	free(line);
	free(name);
	if (rc != 0)
		clear(k);
	return rc;
}

/* The key type of a host key algorithm ("rsa-sha2-512" is an "ssh-rsa" key). */
static const char *alg_key_type(const char *alg)
{
	if (strcmp(alg, "rsa-sha2-512") == 0 || strcmp(alg, "rsa-sha2-256") == 0)
		return "ssh-rsa";
	return alg;
}

void sftp_hostkey_prefer(const SftpHostKeys *k)
{
	const char **algs = NULL;
	if (k->ntypes == 0)
		return;
	int n = libssh2_session_supported_algs(k->session, LIBSSH2_METHOD_HOSTKEY, &algs);
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
	(void)libssh2_session_method_pref(k->session, LIBSSH2_METHOD_HOSTKEY, pref);
	free(pref);
	libssh2_free(k->session, (void *)algs);
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
static int check_key(const SftpHostKeys *k, const char *key, size_t len, int type)
{
	char *b64 = sftp_base64((const unsigned char *)key, len);
	bool revoked = false;
	for (size_t i = 0; i < k->nrevoked && !revoked; i++)
		revoked = strcmp(k->revoked[i], b64) == 0;
	free(b64);
	if (revoked)
		return -1;
	return libssh2_knownhost_checkp(
		k->kh, k->host->host, k->host->port, key, len,
		LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | knownhost_keybit(type), NULL);
}

/* Write known_hosts plus line through a temp file and rename(2); the caller holds the lock. */
static int append(const SftpHost *h, const char *line, WsError *err)
{
	char *tmp = xasprintf("%s.XXXXXX", h->known_hosts);
	int in = -1;
	int rc = 0;
	unsigned char *buf = xmalloc(64 * 1024);
	bool need_nl = false;
	mode_t mode = 0600;

	int out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not record the host key of \"%s\" in \"%s\"",
				    h->server, h->known_hosts);
		free(tmp);
		tmp = NULL;
		goto done;
	}
	in = open(h->known_hosts, O_RDONLY | O_CLOEXEC);
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
	if (rename(tmp, h->known_hosts) != 0)
		goto write_error;
	free(tmp);
	tmp = NULL;
	char *dir = fs_dirname(h->known_hosts);
	rc = fs_fsync_dir(dir, err);
	free(dir);
	goto done;

write_error:
	rc = ws_error_errno(err, WS_FATAL, errno, "could not record the host key of \"%s\" in \"%s\"",
			    h->server, h->known_hosts);
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
static int accept_new(const SftpHostKeys *k, const char *key, size_t len, int type, const char *fp,
		      WsError *err)
{
	char *dir = fs_dirname(k->host->known_hosts);
	char *lock = xasprintf("%s.lock", k->host->known_hosts);
	SftpHostKeys again = {.host = k->host, .session = k->session};
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
	rc = load(&again, err);
	if (rc != 0)
		goto done;
	int check = check_key(&again, key, len, type);
	if (check == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		goto done;
	if (check != LIBSSH2_KNOWNHOST_CHECK_NOTFOUND || again.listed) {
		rc = ws_error(err, WS_FATAL,
			      "host key of \"%s\" was recorded by another process meanwhile and differs",
			      k->host->server);
		ws_error_detail(err, "The server offered the %s key %s.", hostkey_label(type), fp);
		ws_error_hint(err, "Check \"%s\" and the server's host keys before connecting again.",
			      k->host->known_hosts);
		goto done;
	}
	char *name = sftp_knownhosts_name(k->host->host, k->host->port);
	char *ktype = sftp_blob_type((const unsigned char *)key, len);
	char *b64 = sftp_base64((const unsigned char *)key, len);
	char *line = xasprintf("%s %s %s\n", name, ktype ? ktype : "unknown", b64);
	rc = append(k->host, line, err);
	if (rc == 0)
		log_warning("recorded the new %s host key %s of \"%s\" in \"%s\" (sftp-host-key-check = "
			    "accept-new)",
			    hostkey_label(type), fp, k->host->server, k->host->known_hosts);
	free(line);
	free(b64);
	free(ktype);
	free(name);

done:
	clear(&again);
	if (fd >= 0)
		close(fd);
	free(lock);
	free(dir);
	return rc;
}

int sftp_hostkey_check(const SftpHostKeys *k, WsError *err)
{
	size_t len = 0;
	int type = 0;
	const char *key = libssh2_session_hostkey(k->session, &len, &type);
	if (key == NULL)
		return ws_error(err, WS_FATAL, "could not get the host key of \"%s\"", k->host->server);

	char *fp = sftp_fingerprint((const unsigned char *)key, len);
	const char *label = hostkey_label(type);
	int rc = 0;
	int check = check_key(k, key, len, type);

	if (check == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		goto done;
	if (check == -1) {
		rc = ws_error(err, WS_FATAL, "host key of \"%s\" is revoked", k->host->server);
		ws_error_detail(err, "The server offered the %s key %s, marked @revoked in \"%s\".", label,
				fp, k->host->known_hosts);
		goto done;
	}
	if (check == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		rc = ws_error(err, WS_FATAL, "host key of \"%s\" has changed", k->host->server);
		ws_error_detail(
			err,
			"The server offered the %s key %s, which differs from the one recorded in \"%s\".  "
			"Someone could be eavesdropping on the connection (a man-in-the-middle attack), or "
			"the server's host key was replaced.",
			label, fp, k->host->known_hosts);
		ws_error_hint(err,
			      "Check the new key with the server's administrator; once it is known to be "
			      "genuine, remove the old entry with: ssh-keygen -R \"%s\" -f \"%s\".",
			      k->host->port == 22 ? k->host->host : k->host->server, k->host->known_hosts);
		goto done;
	}
	if (check != LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
		rc = ws_error(err, WS_FATAL, "could not check the host key of \"%s\" against \"%s\"",
			      k->host->server, k->host->known_hosts);
		goto done;
	}
	if (k->listed) {
		/* Entries for the host, none of this type: not "new", so accept-new does not apply either. */
		rc = ws_error(err, WS_FATAL, "host key of \"%s\" is not in \"%s\"", k->host->server,
			      k->host->known_hosts);
		ws_error_detail(
			err,
			"The server offered the %s key %s; the file lists this host only with keys of "
			"other types.",
			label, fp);
		ws_error_hint(err, "Check the key with the server's administrator and add it to \"%s\".",
			      k->host->known_hosts);
		goto done;
	}
	if (k->host->accept_new) {
		rc = accept_new(k, key, len, type, fp, err);
		goto done;
	}
	rc = ws_error(err, WS_FATAL, "host key of \"%s\" is unknown", k->host->server);
	ws_error_detail(err, "The server offered the %s key %s, and \"%s\" has no entry for \"%s\".", label,
			fp, k->host->known_hosts, k->host->server);
	ws_error_hint(err,
		      "Check the fingerprint with the server's administrator, then add the key with: "
		      "ssh-keyscan -p %d -t %s %s >> %s (and compare ssh-keygen -lf %s), or set "
		      "sftp-host-key-check = accept-new to record the key of a new host on first contact.",
		      k->host->port,
		      type == LIBSSH2_HOSTKEY_TYPE_ED25519 ? "ed25519"
		      : type == LIBSSH2_HOSTKEY_TYPE_RSA   ? "rsa"
		      : type == LIBSSH2_HOSTKEY_TYPE_DSS   ? "dsa"
							   : "ecdsa",
		      k->host->host, k->host->known_hosts, k->host->known_hosts);
done:
	free(fp);
	return rc;
}

int sftp_hostkey_new(const SftpHost *host, LIBSSH2_SESSION *session, SftpHostKeys **out, WsError *err)
{
	SftpHostKeys *k = xcalloc(1, sizeof(*k));
	k->host = host;
	k->session = session;
	*out = NULL;
	int rc = load(k, err);
	if (rc != 0) {
		free(k);
		return rc;
	}
	*out = k;
	return 0;
}

void sftp_hostkey_free(SftpHostKeys *k)
{
	if (k == NULL)
		return;
	clear(k);
	free(k);
}
