/*
 * recoveryconf.h - writing the recovery settings of a restored data directory
 * in the form its PostgreSQL major version reads.
 *
 * 9.6, 10, 11: recovery.conf (and archive_mode in postgresql.auto.conf).
 * 12 and later: postgresql.auto.conf plus recovery.signal or standby.signal.
 *
 * Values are written as PostgreSQL configuration-file strings: in single
 * quotes, with ' and \ doubled (the file parser, guc-file.l, reads '' as a
 * quote and processes backslash escapes), so every value reads back exactly.
 * Files are replaced atomically (temporary file in the data directory, fsync,
 * rename, fsync of the directory).  A file that existed keeps its mode and
 * owner; a new one gets mode 0600 and the data directory's owner and group,
 * so that settings written by root can be read by the server's user.

 */
#ifndef WALSHIP_PG_RECOVERYCONF_H
#define WALSHIP_PG_RECOVERYCONF_H

#include <stdbool.h>

#include "util/error.h"

typedef enum RecoveryTargetKind {
	TARGET_LATEST = 0, /* the end of the archive: no target line */
	TARGET_IMMEDIATE,  /* recovery_target = 'immediate': the end of the backup */
	TARGET_TIME,       /* recovery_target_time */
	TARGET_LSN,        /* recovery_target_lsn (PostgreSQL 10 and later) */
	TARGET_XID,        /* recovery_target_xid */
	TARGET_NAME,       /* recovery_target_name (a restore point) */
} RecoveryTargetKind;

typedef struct RecoverySettings {
	const char *restore_command; /* required, non-empty */
	RecoveryTargetKind target;
	/*
	 * Required (non-empty) for time/lsn/xid/name, NULL otherwise.  An LSN is
	 * "X/X" with 1 to 8 hex digits each side; an XID a decimal number above 0
	 * without leading zeros (PostgreSQL reads "010" as octal); a name at most
	 * 63 bytes.  Times are checked by PostgreSQL itself.
	 */
	const char *target_value;
	bool target_exclusive;        /* recovery_target_inclusive = false; time/lsn/xid only */
	const char *target_timeline;  /* required: "latest", "current" or a decimal 1..4294967295 */
	const char *target_action;    /* "pause", "promote", "shutdown", or NULL: not written */
	bool standby;                 /* standby.signal / standby_mode = on */
	const char *primary_conninfo; /* standby only, may be NULL (not written) */
	bool archive_off;             /* write archive_mode = off */
	/*
	 * 12 and later, may be NULL: recovery_end_command, the command the server
	 * runs once recovery has ended (walship rebuild --recovery-ended, which
	 * calls recovery_targets_clear).  Checked like the other values.
	 */
	const char *end_command;
} RecoverySettings;

/*
 * Write the recovery settings s into the data directory pgdata for PostgreSQL
 * major version pg_major (90600 for 9.6, 100000 ... 170000: pgmajor.h).
 *
 * Every value is checked first: a missing or malformed value, one containing
 * a line break, a combination PostgreSQL would not accept (an LSN target on
 * 9.6, an action or exclusive flag that applies to no target, a conninfo
 * without standby) or an unsupported pg_major is WS_USAGE, and nothing is
 * written.  Values are otherwise written as given.
 *
 * 12 and later: refuses with WS_FATAL (nothing written) while recovery.conf
 * exists, since PostgreSQL would not start.  postgresql.auto.conf keeps every
 * line except those setting restore_command, recovery_target and
 * recovery_target_* (any), standby_mode, primary_conninfo and
 * primary_slot_name (only when s->standby), archive_mode (only when
 * s->archive_off), recovery_end_command (only when s->end_command), matched by name in any case and spacing
 * as PostgreSQL reads them (commented-out lines are kept), and walship's own comment lines from earlier runs.
 * Then it appends "# Added by walship rebuild" and: restore_command, recovery_target_timeline, the target
 * line, recovery_target_inclusive (when exclusive), recovery_target_action (when given), primary_conninfo
 * (standby, when given), archive_mode = 'off' (when archive_off),
 * recovery_end_command (when given).  A new
 * postgresql.auto.conf starts with the two comment lines PostgreSQL's ALTER
 * SYSTEM writes.  recovery.signal and standby.signal are removed, then
 * exactly one is created, empty and mode 0600: standby.signal for a standby,
 * else recovery.signal.  postgresql.conf is not read: a target set there
 * (rare; on Debian it lives in /etc) still conflicts with the one written.
 *
 * 9.6 to 11: recovery.conf is replaced whole (mode 0600) by "# Written by
 * walship rebuild" and the same settings, with standby_mode = 'on' before
 * primary_conninfo for a standby.  recovery_target_timeline 'current'
 * is the default there and not a value those versions accept, so it is left
 * out with a comment saying so.  archive_off rewrites postgresql.auto.conf as
 * above, removing only archive_mode lines.  Stray signal files are removed.
 *
 * Writing the same settings twice gives the same files.  I/O errors are
 * WS_FATAL; a failure after the first file was replaced can leave the
 * directory half updated (each file is whole), and running again fixes it.
 */
int recovery_settings_write(const char *pgdata, int pg_major, const RecoverySettings *s, WsError *err);

/*
 * After recovery ended, remove the recovery target settings so that a later
 * start or rebuild does not meet them again.
 *
 * 12 and later: postgresql.auto.conf loses every recovery_target and
 * recovery_target_* line (timeline and action included: the defaults are
 * right for a running cluster) and recovery_end_command line (the one
 * recovery_settings_write added runs this), and gets a comment saying so.
 * 9.6 to 11: PostgreSQL renames recovery.conf to recovery.done when recovery
 * ends, so this does nothing unless recovery.conf still exists (a standby);
 * then recovery_target, _name, _time, _xid, _lsn, _inclusive and _action
 * lines are removed from it.  recovery_target_timeline stays: a 9.6-11
 * standby defaults to the backup's timeline and would stop following its
 * primary across a promotion without 'latest'.
 *
 * A file with nothing to remove, or missing, is left alone.  WS_USAGE for an
 * unsupported pg_major, WS_FATAL for I/O errors.
 */
int recovery_targets_clear(const char *pgdata, int pg_major, WsError *err);

#endif
