/*
 * sftp_ext.c - OpenSSH's extensions and the remote directory sync for the
 * SFTP driver (see sftp_ext.h).
 *
 * A put without overwrite moves its temp file into place with the plain
 * SFTP v3 rename, which OpenSSH implements as link()+unlink() and which
 * therefore never replaces an existing name; a put with overwrite uses
 * posix-rename@openssh.com (rename(2), atomic).  libssh2 1.10 has no call for
 * that extension (libssh2_sftp_posix_rename_ex arrived in 1.11, and the
 * rename flags of libssh2_sftp_rename_ex are only sent to SFTP v5+ servers),
 * so this file writes the request on the SFTP channel itself.
 */
#include "store/sftp_ext.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/fsutil.h"
#include "util/mem.h"

#define SFTP_EXEC_OUT_MAX 512

/* SFTP protocol numbers the driver sends itself (draft-ietf-secsh-filexfer-02). */
#define SSH_FXP_STATUS   101
#define SSH_FXP_EXTENDED 200

int sftp_ext_fsync(SftpStore *ss, LIBSSH2_SFTP_HANDLE *h, const char *key, WsError *err)
{
	if (libssh2_sftp_fsync(h) == 0)
		return 0;
	unsigned long fx = 0;
	int rc = sftp_session_fail(ss, &SFTP_OP_WRITE, key, &fx, err);
	if (fx == LIBSSH2_FX_OP_UNSUPPORTED)
		ws_error_hint(
			err,
			"The server does not offer fsync@openssh.com (OpenSSH 6.5 and later do): walship "
			"cannot make the object durable there.");
	return rc;
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
 * The request is written on the SFTP channel and its answer read back.  This
 * is safe because every libssh2 SFTP call of this driver is blocking and
 * complete when it returns: nothing of libssh2's is in flight on the channel
 * except, possibly, answers to read-ahead requests of a closed download,
 * which libssh2 would drop anyway and which are skipped below by their
 * request id.
 */
int sftp_ext_posix_rename(SftpStore *ss, const char *from, const char *to, const char *key, WsError *err)
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

	sftp_put_u32(p, (uint32_t)plen);
	p += 4;
	*p++ = SSH_FXP_EXTENDED;
	sftp_put_u32(p, id);
	p += 4;
	sftp_put_u32(p, (uint32_t)elen);
	memcpy(p + 4, ext, elen);
	p += 4 + elen;
	sftp_put_u32(p, (uint32_t)flen);
	memcpy(p + 4, from, flen);
	p += 4 + flen;
	sftp_put_u32(p, (uint32_t)tlen);
	memcpy(p + 4, to, tlen);

	for (size_t off = 0; off < 4 + plen;) {
		ssize_t n = libssh2_channel_write(ch, (const char *)pkt + off, 4 + plen - off);
		if (n < 0) {
			rc = sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
			goto done;
		}
		off += (size_t)n;
	}
	for (;;) {
		unsigned char hdr[9];
		int e = chan_read_exact(ch, hdr, sizeof(hdr));
		if (e != 0) {
			rc = e == LIBSSH2_ERROR_CHANNEL_CLOSED
				     ? sftp_session_lost(ss, e, "SFTP channel closed", &SFTP_OP_WRITE, key,
							 err)
				     : sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
			goto done;
		}
		uint32_t len = sftp_get_u32(hdr);
		if (len < 5 || len > 1024 * 1024) {
			rc = ws_error(err, WS_FATAL,
				      "could not write \"%s\" to repository \"%s\": bad SFTP packet", key,
				      ss->base.display);
			sftp_session_drop(ss, false);
			goto done;
		}
		unsigned char rest[1024];
		size_t left = len - 5;
		bool ours = hdr[4] == SSH_FXP_STATUS && sftp_get_u32(hdr + 5) == id;
		if (ours && (left < 4 || left > sizeof(rest))) {
			rc = ws_error(err, WS_FATAL,
				      "could not write \"%s\" to repository \"%s\": bad SFTP packet", key,
				      ss->base.display);
			sftp_session_drop(ss, false);
			goto done;
		}
		while (left > 0) {
			size_t take = left < sizeof(rest) ? left : sizeof(rest);
			e = chan_read_exact(ch, rest, take);
			if (e != 0) {
				rc = e == LIBSSH2_ERROR_CHANNEL_CLOSED
					     ? sftp_session_lost(ss, e, "SFTP channel closed", &SFTP_OP_WRITE,
								 key, err)
					     : sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
				goto done;
			}
			left -= take;
		}
		if (!ours)
			continue;
		uint32_t st = sftp_get_u32(rest);
		if (st != LIBSSH2_FX_OK) {
			rc = sftp_session_status_fail(ss, st, &SFTP_OP_WRITE, key, err);
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

int sftp_ext_sync_dirs(SftpStore *ss, char **dirs, size_t ndirs, const char *key, WsError *err)
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
	sftp_strv_free(quoted, ndirs);

	char out[SFTP_EXEC_OUT_MAX] = "";
	size_t outlen = 0;
	int rc = 0;
	int status = -1;
	char *signame = NULL;
	LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(ss->session);
	if (ch == NULL) {
		rc = sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
		goto done;
	}
	if (libssh2_channel_exec(ch, cmd) != 0) {
		rc = sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
		goto done;
	}
	/* Collect what it prints (stderr merged), keeping the start for the message. */
	libssh2_channel_handle_extended_data2(ch, LIBSSH2_CHANNEL_EXTENDED_DATA_MERGE);
	for (;;) {
		char buf[1024];
		ssize_t n = libssh2_channel_read(ch, buf, sizeof(buf));
		if (n < 0) {
			rc = sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
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
		rc = sftp_session_fail(ss, &SFTP_OP_WRITE, key, NULL, err);
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

int sftp_ext_sync_up(SftpStore *ss, const char *path, const char *key, WsError *err)
{
	char **sync = NULL;
	size_t nsync = 0;
	char *dir = fs_dirname(path);
	for (;;) {
		sftp_strv_add_once(&sync, &nsync, dir);
		if (strlen(dir) <= strlen(ss->root))
			break;
		char *up = fs_dirname(dir);
		free(dir);
		dir = up;
	}
	free(dir);
	int rc = sftp_ext_sync_dirs(ss, sync, nsync, key, err);
	sftp_strv_free(sync, nsync);
	return rc;
}
