/*
 * walship - the repository commands: walship COMMAND [OPTION]...
 * Exit 0 on success, 1 on failure, 2 on a usage error; verify and check have codes of their own.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/backup.h"
#include "cmd/check.h"
#include "cmd/cli.h"
#include "cmd/init.h"
#include "cmd/list.h"
#include "cmd/prune.h"
#include "cmd/rebuild.h"
#include "cmd/upgrade.h"
#include "cmd/verify.h"
#include "util/cleanup.h"
#include "util/log.h"

#define EXIT_USAGE 2

static void usage(void)
{
	printf("walship keeps PostgreSQL's WAL and base backups in a repository.\n\n"
	       "Usage:\n"
	       "  walship COMMAND [OPTION]...\n\n"
	       "Commands:\n"
	       "  init      create a repository for a cluster:\n"
	       "            walship init --repo=URL --pgdata=DIR [--encrypt]\n"
	       "  backup    take a base backup of the running server into the repository:\n"
	       "            walship backup --repo=URL [-d CONNSTR] [--wal-timeout=SECONDS]\n"
	       "  list      show the backups and the window each timeline can be rebuilt to:\n"
	       "            walship list --repo=URL [--json]\n"
	       "  rebuild   recreate a data directory from a backup and the archived WAL:\n"
	       "            walship rebuild --repo=URL --pgdata=DIR [--backup=ID|latest] [TARGET]\n"
	       "            [--start [--port=P]] [--standby [--primary-conninfo=STR]] [--force]\n"
	       "            [--dry-run]\n"
	       "  upgrade   after pg_upgrade, add a repository epoch for the new cluster:\n"
	       "            walship upgrade --repo=URL --pgdata=DIR\n"
	       "  prune     remove old backups and the WAL no kept backup needs (for cron):\n"
	       "            walship prune --repo=URL --keep-backups=N [--keep-days=D]\n"
	       "            [--min-wal-age=AGE] [--dry-run] [--json]\n"
	       "  verify    check that the repository is whole:\n"
	       "            walship verify --repo=URL [--full] [--json]\n"
	       "  check     check that a running server archives into the repository:\n"
	       "            walship check --repo=URL [-d CONNSTR] [--timeout=SECONDS]\n\n"
	       "The WAL hooks are separate programs: walship-push (archive_command) and\n"
	       "walship-fetch (restore_command).\n\n"
	       "Options:\n"
	       "  -D, --pgdata=DIR      the cluster's data directory (init, upgrade, rebuild)\n"
	       "  -d, --dbname=CONNSTR  how to reach the server (backup, check): a libpq connection\n"
	       "                        string or database name; PG* variables apply\n"
	       "  --encrypt             init: encrypt the repository (needs encryption-key-file\n"
	       "                        or WALSHIP_ENCRYPTION_PASSPHRASE)\n"
	       "  --json                list, prune, verify: print one JSON object\n"
	       "  --wal-timeout=SECONDS how long backup waits for the next WAL file it needs\n"
	       "                        to be archived (default %d)\n"
	       "  --timeout=SECONDS     how long check waits for the switched WAL file to be\n"
	       "                        archived (default %d)\n"
	       "  --full                verify: also decode every object and check its SHA-256\n\n"
	       "Options of prune:\n"
	       "  --keep-backups=N      keep the N newest complete backups (required, N >= 1)\n"
	       "  --keep-days=D         also keep every backup of the last D days and the newest\n"
	       "                        one before them, so that the whole window can be rebuilt\n"
	       "  --min-wal-age=AGE     keep WAL archived less than AGE ago (seconds, or with a\n"
	       "                        suffix s, min, h, d), for standbys fed from the archive\n"
	       "  --dry-run             show what would be removed and remove nothing\n\n"
	       "Options of rebuild:\n"
	       "  --backup=ID|latest    the backup (default: the newest that ends before a time or\n"
	       "                        LSN target, else the newest)\n"
	       "  --target-time=TIME    recover to a time with a zone, e.g. \"2026-11-25 19:11:52+00\"\n"
	       "  --target-lsn=LSN      ... to a WAL position\n"
	       "  --target-xid=XID      ... to a transaction\n"
	       "  --target-name=NAME    ... to a restore point (pg_create_restore_point)\n"
	       "  --target-immediate    ... to the end of the backup (default: all archived WAL)\n"
	       "  --target-exclusive    stop just before the target (time, LSN, xid)\n"
	       "  --target-timeline=latest|current|N  timeline to follow (default latest)\n"
	       "  --target-action=pause|promote|shutdown  what the server does at the target\n"
	       "  --standby             set the server up as a standby (standby.signal)\n"
	       "  --primary-conninfo=STR  the standby's connection to its primary\n"
	       "  --archive=off|keep    archive_mode of the copy (default off, kept for a standby)\n"
	       "  --tablespace-map=OID=DIR  restore a tablespace elsewhere (repeatable)\n"
	       "  --config-from=FILE    postgresql.conf to use when the backup has none\n"
	       "  --start               start the server and wait for the recovery outcome\n"
	       "  --port=PORT           the port of the started server\n"
	       "  --force               replace what a non-empty data directory holds\n"
	       "  --lease=AGE           how long walship prune keeps the backup and WAL this\n"
	       "                        rebuild needs after it exits (default 7d; 0: no lease)\n"
	       "  --dry-run             show the plan and stop before writing anything\n"
	       "%s\n"
	       "Exit status: 0 success, 1 failure, 2 usage error; verify: %d when problems were\n"
	       "found; check: %d when a check failed.\n",
	       BACKUP_WAL_TIMEOUT_DEFAULT, CHECK_TIMEOUT_DEFAULT, cli_common_help, VERIFY_EXIT_PROBLEMS,
	       CHECK_EXIT_FAILED);
}

/* The options of single commands; each command refuses the others'. */
enum {
	OPT_DBNAME = CLI_EXTRA_BASE,
	OPT_WAL_TIMEOUT,
	OPT_JSON,
	OPT_BACKUP,
	OPT_TARGET_TIME,
	OPT_TARGET_LSN,
	OPT_TARGET_XID,
	OPT_TARGET_NAME,
	OPT_TARGET_IMMEDIATE,
	OPT_TARGET_EXCLUSIVE,
	OPT_TARGET_TIMELINE,
	OPT_TARGET_ACTION,
	OPT_STANDBY,
	OPT_PRIMARY_CONNINFO,
	OPT_ARCHIVE,
	OPT_TABLESPACE_MAP,
	OPT_CONFIG_FROM,
	OPT_START,
	OPT_PORT,
	OPT_FORCE,
	OPT_DRY_RUN,
	OPT_ENCRYPT,
	OPT_KEEP_BACKUPS,
	OPT_KEEP_DAYS,
	OPT_MIN_WAL_AGE,
	OPT_FULL,
	OPT_TIMEOUT,
	OPT_LEASE,
};

#define MAX_GIVEN          64
#define MAX_TABLESPACE_MAP 32

typedef struct CommandArgs {
	const char *dbname;
	const char *wal_timeout;
	bool json;
	bool encrypt;
	bool full;
	const char *keep_backups;
	const char *keep_days;
	const char *min_wal_age;
	const char *timeout;
	const char *lease;
	RebuildOptions rebuild;
	const char *targets[6]; /* the --target-* kinds given, to refuse two */
	int n_targets;
	const char *port;
	const char *tablespace_map[MAX_TABLESPACE_MAP];
	const char *given[MAX_GIVEN]; /* names of the options given, for "only valid for" errors */
	int n_given;
} CommandArgs;

static const struct option command_options[] = {
	{"dbname", required_argument, NULL, OPT_DBNAME},
	{"wal-timeout", required_argument, NULL, OPT_WAL_TIMEOUT},
	{"json", no_argument, NULL, OPT_JSON},
	{"encrypt", no_argument, NULL, OPT_ENCRYPT},
	{"backup", required_argument, NULL, OPT_BACKUP},
	{"target-time", required_argument, NULL, OPT_TARGET_TIME},
	{"target-lsn", required_argument, NULL, OPT_TARGET_LSN},
	{"target-xid", required_argument, NULL, OPT_TARGET_XID},
	{"target-name", required_argument, NULL, OPT_TARGET_NAME},
	{"target-immediate", no_argument, NULL, OPT_TARGET_IMMEDIATE},
	{"target-exclusive", no_argument, NULL, OPT_TARGET_EXCLUSIVE},
	{"target-timeline", required_argument, NULL, OPT_TARGET_TIMELINE},
	{"target-action", required_argument, NULL, OPT_TARGET_ACTION},
	{"standby", no_argument, NULL, OPT_STANDBY},
	{"primary-conninfo", required_argument, NULL, OPT_PRIMARY_CONNINFO},
	{"archive", required_argument, NULL, OPT_ARCHIVE},
	{"tablespace-map", required_argument, NULL, OPT_TABLESPACE_MAP},
	{"config-from", required_argument, NULL, OPT_CONFIG_FROM},
	{"start", no_argument, NULL, OPT_START},
	{"port", required_argument, NULL, OPT_PORT},
	{"force", no_argument, NULL, OPT_FORCE},
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},
	{"keep-backups", required_argument, NULL, OPT_KEEP_BACKUPS},
	{"keep-days", required_argument, NULL, OPT_KEEP_DAYS},
	{"min-wal-age", required_argument, NULL, OPT_MIN_WAL_AGE},
	{"full", no_argument, NULL, OPT_FULL},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"lease", required_argument, NULL, OPT_LEASE},
	{NULL, 0, NULL, 0},
};

/* A --target-* option: its kind and value. */
static void set_target(CommandArgs *a, RecoveryTargetKind kind, const char *name, const char *arg)
{
	a->rebuild.target = kind;
	a->rebuild.target_value = arg;
	if (a->n_targets < 6)
		a->targets[a->n_targets++] = name;
}

static int take_command_option(void *ctx, int opt, const char *arg, WsError *err)
{
	CommandArgs *a = ctx;
	RebuildOptions *r = &a->rebuild;
	const char *name;
	(void)err;
	switch (opt) {
	case OPT_BACKUP:
		r->backup_id = arg;
		name = "--backup";
		break;
	case OPT_TARGET_TIME:
		set_target(a, TARGET_TIME, name = "--target-time", arg);
		break;
	case OPT_TARGET_LSN:
		set_target(a, TARGET_LSN, name = "--target-lsn", arg);
		break;
	case OPT_TARGET_XID:
		set_target(a, TARGET_XID, name = "--target-xid", arg);
		break;
	case OPT_TARGET_NAME:
		set_target(a, TARGET_NAME, name = "--target-name", arg);
		break;
	case OPT_TARGET_IMMEDIATE:
		set_target(a, TARGET_IMMEDIATE, name = "--target-immediate", NULL);
		break;
	case OPT_TARGET_EXCLUSIVE:
		r->target_exclusive = true;
		name = "--target-exclusive";
		break;
	case OPT_TARGET_TIMELINE:
		r->target_timeline = arg;
		name = "--target-timeline";
		break;
	case OPT_TARGET_ACTION:
		r->target_action = arg;
		name = "--target-action";
		break;
	case OPT_STANDBY:
		r->standby = true;
		name = "--standby";
		break;
	case OPT_PRIMARY_CONNINFO:
		r->primary_conninfo = arg;
		name = "--primary-conninfo";
		break;
	case OPT_ARCHIVE:
		r->archive = arg;
		name = "--archive";
		break;
	case OPT_TABLESPACE_MAP:
		if (r->n_tablespace_map == MAX_TABLESPACE_MAP)
			return ws_error(err, WS_USAGE, "more than %d --tablespace-map options",
					MAX_TABLESPACE_MAP);
		a->tablespace_map[r->n_tablespace_map++] = arg;
		r->tablespace_map = a->tablespace_map;
		name = "--tablespace-map";
		break;
	case OPT_CONFIG_FROM:
		r->config_from = arg;
		name = "--config-from";
		break;
	case OPT_START:
		r->start = true;
		name = "--start";
		break;
	case OPT_PORT:
		a->port = arg;
		name = "--port";
		break;
	case OPT_FORCE:
		r->force = true;
		name = "--force";
		break;
	case OPT_DRY_RUN:
		r->dry_run = true;
		name = "--dry-run";
		break;
	case 'd':
	case OPT_DBNAME:
		a->dbname = arg;
		name = "--dbname";
		break;
	case OPT_WAL_TIMEOUT:
		a->wal_timeout = arg;
		name = "--wal-timeout";
		break;
	case OPT_JSON:
		a->json = true;
		name = "--json";
		break;
	case OPT_ENCRYPT:
		a->encrypt = true;
		name = "--encrypt";
		break;
	case OPT_KEEP_BACKUPS:
		a->keep_backups = arg;
		name = "--keep-backups";
		break;
	case OPT_KEEP_DAYS:
		a->keep_days = arg;
		name = "--keep-days";
		break;
	case OPT_MIN_WAL_AGE:
		a->min_wal_age = arg;
		name = "--min-wal-age";
		break;
	case OPT_FULL:
		a->full = true;
		name = "--full";
		break;
	case OPT_TIMEOUT:
		a->timeout = arg;
		name = "--timeout";
		break;
	case OPT_LEASE:
		a->lease = arg;
		name = "--lease";
		break;
	default:
		return ws_error(err, WS_USAGE, "invalid option");
	}
	if (a->n_given < MAX_GIVEN)
		a->given[a->n_given++] = name;
	return 0;
}

/* Usage error unless every command option given is one of allowed (a space-separated list). */
static int only_options(const CommandArgs *a, const char *command, const char *allowed, WsError *err)
{
	for (int i = 0; i < a->n_given; i++) {
		const char *p = strstr(allowed, a->given[i]);
		size_t len = strlen(a->given[i]);
		if (p == NULL || (p[len] != '\0' && p[len] != ' '))
			return ws_error(err, WS_USAGE, "option \"%s\" is not valid for walship %s",
					a->given[i], command);
	}
	return 0;
}

static int run_backup(Cli *cli, const CommandArgs *b, WsError *err)
{
	BackupOptions opt = {b->dbname, BACKUP_WAL_TIMEOUT_DEFAULT};
	int rc = only_options(b, "backup", "--dbname --wal-timeout", err);
	if (rc != 0)
		return rc;
	if (cli->argc != 0)
		return ws_error(err, WS_USAGE, "unexpected argument \"%s\"", cli->argv[0]);
	if (cli->pgdata != NULL) {
		ws_error(err, WS_USAGE, "walship backup takes no data directory");
		ws_error_hint(err, "It connects to the server: name it with -d \"host=... port=...\".");
		return WS_USAGE;
	}
	if (b->wal_timeout != NULL) {
		char *end;
		errno = 0;
		long v = strtol(b->wal_timeout, &end, 10);
		if (errno != 0 || end == b->wal_timeout || *end != '\0' || v < 0 || v > 7 * 24 * 3600)
			return ws_error(
				err, WS_USAGE,
				"invalid value \"%s\" for --wal-timeout: use whole seconds from 0 to 604800",
				b->wal_timeout);
		opt.wal_timeout = v;
	}
	/* Ctrl-C removes the object being written; the server ends the backup when we go. */
	cleanup_init(1);
	return cmd_backup(cli->cfg, &opt, err);
}

static int run_init(Cli *cli, const CommandArgs *a, WsError *err)
{
	int rc = only_options(a, "init", "--encrypt", err);
	if (rc != 0)
		return rc;
	if (cli->argc != 0)
		return ws_error(err, WS_USAGE, "unexpected argument \"%s\"", cli->argv[0]);
	if (cli->pgdata == NULL) {
		ws_error(err, WS_USAGE, "no data directory given");
		ws_error_hint(err, "Run walship init --repo=URL --pgdata=DIR.");
		return WS_USAGE;
	}
	return cmd_init(cli->cfg, cli->pgdata, a->encrypt, err);
}

static int run_list(Cli *cli, const CommandArgs *a, WsError *err)
{
	int rc = only_options(a, "list", "--json", err);
	if (rc != 0)
		return rc;
	if (cli->argc != 0)
		return ws_error(err, WS_USAGE, "unexpected argument \"%s\"", cli->argv[0]);
	return cmd_list(cli->cfg, a->json, err);
}

/*
 * The configuration file restore_command must name: --config's value, else
 * $WALSHIP_CONFIG (the server does not have our environment).  cli_parse
 * keeps it to itself, so look at the arguments again.
 */
static const char *config_file_given(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
	}
	if (path == NULL)
		path = getenv("WALSHIP_CONFIG");
	return path != NULL && path[0] != '\0' ? path : NULL;
}

static int parse_age(const char *s, const char *option, int64_t *out, WsError *err);

static int run_rebuild(Cli *cli, CommandArgs *a, const char *config_path, WsError *err)
{
	RebuildOptions *r = &a->rebuild;
	int rc = only_options(
		a, "rebuild",
		"--backup --target-time --target-lsn --target-xid --target-name --target-immediate "
		"--target-exclusive --target-timeline --target-action --standby --primary-conninfo "
		"--archive --tablespace-map --config-from --start --port --force --dry-run --lease",
		err);
	if (rc != 0)
		return rc;
	if (cli->argc != 0)
		return ws_error(err, WS_USAGE, "unexpected argument \"%s\"", cli->argv[0]);
	if (cli->pgdata == NULL) {
		ws_error(err, WS_USAGE, "no data directory given");
		ws_error_hint(err, "Run walship rebuild --repo=URL --pgdata=DIR.");
		return WS_USAGE;
	}
	if (a->n_targets > 1)
		return ws_error(err, WS_USAGE, "options \"%s\" and \"%s\" cannot be used together",
				a->targets[0], a->targets[1]);
	if (a->port != NULL) {
		char *end;
		errno = 0;
		long v = strtol(a->port, &end, 10);
		if (errno != 0 || end == a->port || *end != '\0' || v < 1 || v > 65535)
			return ws_error(err, WS_USAGE, "invalid value \"%s\" for --port", a->port);
		r->port = (int)v;
	}
	r->lease = REBUILD_LEASE_DEFAULT;
	if (a->lease != NULL && (rc = parse_age(a->lease, "--lease", &r->lease, err)) != 0)
		return rc;
	if (r->lease > REBUILD_LEASE_MAX)
		return ws_error(err, WS_USAGE, "invalid value \"%s\" for --lease: at most %ld days", a->lease,
				REBUILD_LEASE_MAX / 86400);
	if (cli->pgdata[0] != '/')
		return ws_error(err, WS_USAGE, "the data directory \"%s\" must be an absolute path",
				cli->pgdata);
	r->pgdata = cli->pgdata;
	/* restore_command runs in the data directory: a relative path would point elsewhere. */
	static char abs_config[PATH_MAX];
	if (config_path != NULL && config_path[0] != '/' && realpath(config_path, abs_config) != NULL)
		config_path = abs_config;
	r->config_path = config_path;
	/* Ctrl-C leaves a half-built directory that cannot start (pg_control comes last). */
	cleanup_init(1);
	return cmd_rebuild(cli->cfg, r, err);
}

static int run_upgrade(Cli *cli, const CommandArgs *a, WsError *err)
{
	int rc = only_options(a, "upgrade", "", err);
	if (rc != 0)
		return rc;
	if (cli->argc != 0)
		return ws_error(err, WS_USAGE, "unexpected argument \"%s\"", cli->argv[0]);
	if (cli->pgdata == NULL) {
		ws_error(err, WS_USAGE, "no data directory given");
		ws_error_hint(err, "Run walship upgrade --repo=URL --pgdata=DIR with the upgraded cluster's "
				   "data directory.");
		return WS_USAGE;
	}
	return cmd_upgrade(cli->cfg, cli->pgdata, err);
}

/* A whole number from min to max, or a usage error naming the option. */
static int parse_long(const char *s, const char *option, long min, long max, long *out, WsError *err)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return ws_error(err, WS_USAGE,
				"invalid value \"%s\" for %s: use a whole number from %ld to %ld", s, option,
				min, max);
	*out = v;
	return 0;
}

/* "3600", "90s", "30min", "12h", "7d": seconds. */
static int parse_age(const char *s, const char *option, int64_t *out, WsError *err)
{
	static const struct {
		const char *suffix;
		long mult;
	} units[] = {{"", 1}, {"s", 1}, {"min", 60}, {"h", 3600}, {"d", 86400}};
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno == 0 && end != s && v >= 0 && s[0] != '-' && s[0] != '+') {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strcmp(end, units[i].suffix) == 0 && v <= 100LL * 365 * 86400 / units[i].mult) {
				*out = (int64_t)(v * units[i].mult);
				return 0;
			}
		}
	}
	ws_error(err, WS_USAGE, "invalid value \"%s\" for %s", s, option);
	ws_error_hint(err, "Give seconds, or a number with the suffix s, min, h or d (e.g. 6h).");
	return WS_USAGE;
}

static int run_prune(Cli *cli, const CommandArgs *a, WsError *err)
{
	PruneOptions opt = {0, -1, 0, a->rebuild.dry_run, a->json};
	long v;
	int rc = only_options(a, "prune", "--keep-backups --keep-days --min-wal-age --dry-run --json", err);
	if (rc != 0)
		return rc;
	if (cli->argc != 0)
		return ws_error(err, WS_USAGE, "unexpected argument \"%s\"", cli->argv[0]);
	if (cli->pgdata != NULL)
		return ws_error(err, WS_USAGE, "walship prune takes no data directory");
	if (a->keep_backups == NULL) {
		ws_error(err, WS_USAGE, "--keep-backups is required");
		ws_error_hint(err, "Say how many of the newest backups to keep, e.g. --keep-backups=2.");
		return WS_USAGE;
	}
	if ((rc = parse_long(a->keep_backups, "--keep-backups", 1, 1000000, &v, err)) != 0)
		return rc;
	opt.keep_backups = (int)v;
	if (a->keep_days != NULL) {
		if ((rc = parse_long(a->keep_days, "--keep-days", 0, 36500, &v, err)) != 0)
			return rc;
		opt.keep_days = (int)v;
	}
	if (a->min_wal_age != NULL &&
	    (rc = parse_age(a->min_wal_age, "--min-wal-age", &opt.min_wal_age, err)) != 0)
		return rc;
	return cmd_prune(cli->cfg, &opt, err);
}

static int run_verify(Cli *cli, const CommandArgs *a, WsError *err)
{
	VerifyOptions opt = {a->full, a->json};
	int rc = only_options(a, "verify", "--full --json", err);
	if (rc != 0)
		return rc;
	if (cli->argc != 0)
		return ws_error(err, WS_USAGE, "unexpected argument \"%s\"", cli->argv[0]);
	if (cli->pgdata != NULL)
		return ws_error(err, WS_USAGE, "walship verify takes no data directory");
	return cmd_verify(cli->cfg, &opt, err);
}

static int run_check(Cli *cli, const CommandArgs *a, WsError *err)
{
	CheckOptions opt = {a->dbname, CHECK_TIMEOUT_DEFAULT};
	long v;
	int rc = only_options(a, "check", "--dbname --timeout", err);
	if (rc != 0)
		return rc;
	if (cli->argc != 0)
		return ws_error(err, WS_USAGE, "unexpected argument \"%s\"", cli->argv[0]);
	if (cli->pgdata != NULL) {
		ws_error(err, WS_USAGE, "walship check takes no data directory");
		ws_error_hint(err, "It connects to the server: name it with -d \"host=... port=...\".");
		return WS_USAGE;
	}
	if (a->timeout != NULL) {
		if ((rc = parse_long(a->timeout, "--timeout", 1, 24 * 3600, &v, err)) != 0)
			return rc;
		opt.timeout = (int)v;
	}
	return cmd_check(cli->cfg, &opt, err);
}

int main(int argc, char **argv)
{
	Cli cli;
	WsError err;
	CommandArgs args = {0};
	CliExtra extra = {command_options, "d:", take_command_option, &args};
	int rc;

	log_init("walship");
	ws_error_clear(&err);
	rc = cli_parse(&cli, argc, argv, CLI_OPT_PGDATA, &extra, usage, &err);
	if (rc == 0 && !cli.done) {
		const char *command = cli.argc > 0 ? cli.argv[0] : NULL;
		cli.argc--, cli.argv++;
		if (command == NULL)
			rc = ws_error(&err, WS_USAGE, "no command given");
		else if (strcmp(command, "backup") == 0)
			rc = run_backup(&cli, &args, &err);
		else if (strcmp(command, "init") == 0)
			rc = run_init(&cli, &args, &err);
		else if (strcmp(command, "list") == 0)
			rc = run_list(&cli, &args, &err);
		else if (strcmp(command, "rebuild") == 0)
			rc = run_rebuild(&cli, &args, config_file_given(argc, argv), &err);
		else if (strcmp(command, "upgrade") == 0)
			rc = run_upgrade(&cli, &args, &err);
		else if (strcmp(command, "prune") == 0)
			rc = run_prune(&cli, &args, &err);
		else if (strcmp(command, "verify") == 0)
			rc = run_verify(&cli, &args, &err);
		else if (strcmp(command, "check") == 0)
			rc = run_check(&cli, &args, &err);
		else if (strcmp(command, "help") == 0)
			usage();
		else
			rc = ws_error(&err, WS_USAGE, "unknown command \"%s\"", command);
	}
	if (rc < 0)
		cli_report(&cli, &err);
	cli_free(&cli);
	if (rc >= 0)
		return rc; /* 0, or verify's and check's own codes for what they found */
	return rc == WS_USAGE ? EXIT_USAGE : 1;
}
