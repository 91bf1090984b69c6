/*
 * recovery.h - what kind of caller restore_command has, from the data directory.
 *
 * PostgreSQL 12+: standby.signal means standby (it wins over recovery.signal).
 * 9.6-11: recovery.conf with standby_mode = on (any boolean spelling
 * PostgreSQL accepts: on/true/yes/1 and unique prefixes, any case, quoted or
 * not).  A %p whose base name is not RECOVERYXLOG or RECOVERYHISTORY is a
 * frontend tool such as pg_rewind.
 *
 * Memory: fetch_mode_str returns a static string.
 */
#ifndef WALSHIP_PG_RECOVERY_H
#define WALSHIP_PG_RECOVERY_H

#include <stdbool.h>

#include "util/error.h"

typedef enum FetchMode {
	FETCH_MODE_AUTO = 0,
	FETCH_MODE_RECOVERY,
	FETCH_MODE_STANDBY,
	FETCH_MODE_FRONTEND, /* never given by the user: detected from %p */
} FetchMode;

/* "auto", "recovery", "standby" -> mode; -1 otherwise. */
int fetch_mode_parse(const char *s);
const char *fetch_mode_str(FetchMode mode);

/*
 * Resolve FETCH_MODE_AUTO for this call.  datadir is where restore_command
 * runs (the data directory), pg_major from PG_VERSION, target_path is %p.
 * An explicit mode is returned unchanged, except that a frontend %p is
 * always FETCH_MODE_FRONTEND.
 */
FetchMode fetch_mode_detect(FetchMode requested, const char *datadir, int pg_major, const char *target_path);

/* Parse a PostgreSQL boolean ("on", "TRUE", "y", "1", "of"f...); -1 if not one. */
int pg_parse_bool(const char *s);

#endif
