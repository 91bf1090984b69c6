/*
 * fuzz_recovery.c - PostgreSQL's configuration files in a data directory as
 * walship reads them: recovery.conf's standby_mode (pg/recovery.c: from it
 * walship-fetch decides how to answer errors, 9.6 to 11), and the lines of
 * postgresql.auto.conf that walship rebuild keeps or replaces
 * (pg/recoveryconf.c).
 *
 * Input: the text of such a file, put in a scratch data directory as
 * recovery.conf and as postgresql.auto.conf.  After rebuild's settings are
 * written over it, walship-fetch must see exactly the mode written (a
 * standby stays a standby whatever the old file held), and writing the same
 * settings twice must give the same postgresql.auto.conf.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "pg/pgmajor.h"
#include "pg/recovery.h"
#include "pg/recoveryconf.h"
#include "util/fsutil.h"
#include "util/mem.h"

#define AUTO_CONF_MAX (1024 * 1024)

static char *dir, *recovery_conf, *auto_conf;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	dir = xasprintf("%s/data", fuzz_scratch());
	recovery_conf = xasprintf("%s/recovery.conf", dir);
	auto_conf = xasprintf("%s/postgresql.auto.conf", dir);
	return 0;
}

static void fresh_dir(const uint8_t *data, size_t size)
{
	fuzz_rm_tree(dir);
	FUZZ_CHECK(mkdir(dir, 0700) == 0);
	fuzz_write_file(recovery_conf, data, size);
	fuzz_write_file(auto_conf, data, size);
}

static char *read_auto_conf(void)
{
	char *text = NULL;
	size_t len = 0;
	WsError err;
	FUZZ_CHECK(fs_read_small(auto_conf, AUTO_CONF_MAX, &text, &len, &err) == 0);
	return text;
}

/* Rebuild's settings for pg_major written over the fuzzed files; what walship-fetch then sees. */
static void write_settings(const uint8_t *data, size_t size, int pg_major, bool standby)
{
	RecoverySettings rs = {0};
	WsError err;

	rs.restore_command = "walship-fetch --mode=standby %f %p";
	rs.target = TARGET_LATEST;
	rs.target_timeline = "latest";
	rs.standby = standby;
	rs.archive_off = true;
	fresh_dir(data, size);
	if (!pg_has_recovery_conf(pg_major))
		(void)unlink(recovery_conf); /* 12 and later refuse to write beside one */
	if (recovery_settings_write(dir, pg_major, &rs, &err) != 0)
		return; /* e.g. a file too large to edit: refused whole */
	FetchMode m = fetch_mode_detect(FETCH_MODE_AUTO, dir, pg_major, "pg_wal/RECOVERYXLOG");
	FUZZ_CHECK(m == (standby ? FETCH_MODE_STANDBY : FETCH_MODE_RECOVERY));
	char *once = read_auto_conf();
	FUZZ_CHECK(recovery_settings_write(dir, pg_major, &rs, &err) == 0);
	char *twice = read_auto_conf();
	FUZZ_CHECK(strcmp(once, twice) == 0);
	free(once);
	free(twice);
	(void)recovery_targets_clear(dir, pg_major, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fresh_dir(data, size);
	(void)fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR(11), "pg_wal/RECOVERYXLOG");
	(void)fetch_mode_detect(FETCH_MODE_AUTO, dir, PG_MAJOR_9_6, "pg_wal/RECOVERYXLOG");
	char *text = fuzz_cstr(data, size < 64 ? size : 64);
	(void)pg_parse_bool(text);
	free(text);
	/* A standby or not, from the input: every write reads each file into a buffer of its largest size. */
	write_settings(data, size, PG_MAJOR(11), size % 2 == 1);
	write_settings(data, size, PG_MAJOR(15), size % 2 == 1);
	return 0;
}
