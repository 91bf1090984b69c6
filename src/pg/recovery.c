/*
 * recovery.c - telling, from inside restore_command, whether PostgreSQL is
 * in targeted recovery, running a standby, or whether a frontend tool such
 * as pg_rewind is the caller.  fetch answers errors differently in each.
 *
 * When in doubt the answer is "recovery": calling a standby "recovery" makes
 * an error stop it (loud, fixable), while calling recovery "standby" would
 * make an error read as the end of the archive and promote too early.
 */
#include "pg/recovery.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "pg/pgconf.h"
#include "pg/pgmajor.h"
#include "util/fsutil.h"
#include "util/mem.h"

/* recovery.conf is a few lines; anything bigger is not one PostgreSQL wrote. */
#define RECOVERY_CONF_MAX (1024 * 1024)

int fetch_mode_parse(const char *s)
{
	if (s == NULL)
		return -1;
	if (strcasecmp(s, "auto") == 0)
		return FETCH_MODE_AUTO;
	if (strcasecmp(s, "recovery") == 0)
		return FETCH_MODE_RECOVERY;
	if (strcasecmp(s, "standby") == 0)
		return FETCH_MODE_STANDBY;
	return -1;
}

const char *fetch_mode_str(FetchMode mode)
{
	switch (mode) {
	case FETCH_MODE_AUTO:
		return "auto";
	case FETCH_MODE_RECOVERY:
		return "recovery";
	case FETCH_MODE_STANDBY:
		return "standby";
	case FETCH_MODE_FRONTEND:
		return "frontend";
	}
	return "unknown";
}

/* As PostgreSQL's parse_bool_with_len (src/backend/utils/adt/bool.c). */
int pg_parse_bool(const char *s)
{
	size_t len;

	if (s == NULL)
		return -1;
	len = strlen(s);
	switch (*s) {
	case 't':
	case 'T':
		if (len <= 4 && strncasecmp(s, "true", len) == 0)
			return 1;
		break;
	case 'f':
	case 'F':
		if (len <= 5 && strncasecmp(s, "false", len) == 0)
			return 0;
		break;
	case 'y':
	case 'Y':
		if (len <= 3 && strncasecmp(s, "yes", len) == 0)
			return 1;
		break;
	case 'n':
	case 'N':
		if (len <= 2 && strncasecmp(s, "no", len) == 0)
			return 0;
		break;
	case 'o':
	case 'O':
		/* "o" alone could be on or off: at least two characters are needed. */
		if (len == 2 && strncasecmp(s, "on", 2) == 0)
			return 1;
		if (len >= 2 && len <= 3 && strncasecmp(s, "off", len) == 0)
			return 0;
		break;
	case '1':
		if (len == 1)
			return 1;
		break;
	case '0':
		if (len == 1)
			return 0;
		break;
	default:
		break;
	}
	return -1;
}

static bool is_frontend_path(const char *target_path)
{
	const char *base;

	if (target_path == NULL)
		return false;
	base = fs_basename(target_path);
	return strcmp(base, "RECOVERYXLOG") != 0 && strcmp(base, "RECOVERYHISTORY") != 0;
}

static bool file_exists(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	struct stat st;
	bool found = stat(path, &st) == 0;
	free(path);
	return found;
}

/* standby_mode from DIR/recovery.conf: 1 on, 0 off or absent. */
static int recovery_conf_standby(const char *datadir)
{
	char *path = xasprintf("%s/recovery.conf", datadir);
	char *text = NULL;
	size_t len = 0;
	int standby = 0;

	if (fs_read_small(path, RECOVERY_CONF_MAX, &text, &len, NULL) != 0)
		goto done;
	for (const char *line = text; line < text + len;) {
		const char *eol = memchr(line, '\n', (size_t)(text + len - line));
		if (eol == NULL)
			eol = text + len;
		/*
		 * Later settings override earlier ones, as in PostgreSQL; names are compared
		 * exactly, as PostgreSQL up to 11 does for recovery.conf.  Malformed lines
		 * are PostgreSQL's to refuse.
		 */
		PgConfLine l;
		if (pgconf_parse_line(line, (size_t)(eol - line), &l) == PGCONF_SETTING &&
		    strcmp(l.name, "standby_mode") == 0)
			standby = pg_parse_bool(l.value) == 1;
		pgconf_line_clear(&l);
		line = eol + 1;
	}

done:
	free(text);
	free(path);
	return standby;
}

FetchMode fetch_mode_detect(FetchMode requested, const char *datadir, int pg_major, const char *target_path)
{
	if (is_frontend_path(target_path))
		return FETCH_MODE_FRONTEND;
	if (requested != FETCH_MODE_AUTO)
		return requested;
	if (datadir == NULL)
		datadir = ".";
	if (!pg_has_recovery_conf(pg_major))
		return file_exists(datadir, "standby.signal") ? FETCH_MODE_STANDBY : FETCH_MODE_RECOVERY;
	return recovery_conf_standby(datadir) ? FETCH_MODE_STANDBY : FETCH_MODE_RECOVERY;
}
