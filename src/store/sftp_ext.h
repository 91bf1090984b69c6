/*
 * sftp_ext.h - what the SFTP driver needs beyond SFTP v3 and libssh2 1.10:
 * fsync@openssh.com for a file, posix-rename@openssh.com to replace an
 * object atomically (sent by hand: libssh2 1.10 has no call for it), and
 * the directory sync run as `sync DIR...` over an exec channel
 * (sftp-dir-sync = exec), since fsync@openssh.com syncs files only.
 */
#ifndef WALSHIP_STORE_SFTP_EXT_H
#define WALSHIP_STORE_SFTP_EXT_H

#include <stddef.h>

#include "store/sftp_session.h"

/* fsync@openssh.com for the open file h of key; a server without it is WS_FATAL with a hint. */
int sftp_ext_fsync(SftpStore *ss, LIBSSH2_SFTP_HANDLE *h, const char *key, WsError *err);

/*
 * Rename from to to with rename(2) semantics (replacing to atomically) by
 * posix-rename@openssh.com; key names the object in messages.
 */
int sftp_ext_posix_rename(SftpStore *ss, const char *from, const char *to, const char *key, WsError *err);

/*
 * With sftp-dir-sync = exec, run `sync -- DIR...` for dirs (server paths)
 * on the server: 0 once it exited 0, WS_FATAL with its output otherwise.
 * Nothing to do (0) with sftp-dir-sync = off or no directory.
 */
int sftp_ext_sync_dirs(SftpStore *ss, char **dirs, size_t ndirs, const char *key, WsError *err);

/*
 * Sync the directory of the object at path and each one above it up to the
 * root, in one command (sftp_ext_sync_dirs): a name is durable only once
 * every entry on its path is, and a directory made by an earlier put that
 * died or failed before its sync would otherwise never be synced.
 */
int sftp_ext_sync_up(SftpStore *ss, const char *path, const char *key, WsError *err);

#endif
