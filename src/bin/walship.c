/*
 * walship - the repository commands: walship COMMAND [OPTION]...
 * Exit 0 on success, 1 on failure, 2 on a usage error; verify and check have codes of their own.
 *
 * Each command is a CliCommand below: its option table (cmd/cli.h), its
 * --help text and the function that runs it.
 */
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
#include "pg/pgcommon.h"
#include "cmd/upgrade.h"
#include "cmd/verify.h"
#include "util/cleanup.h"
#include "util/log.h"

#define EXIT_USAGE 2

/* A number in a --help text. */
#define STR_(x) #x
#define STR(x)  STR_(x)

#define DBNAME_HELP                                                                                          \
	"how to reach the server: a libpq connection string\n"                                               \
	"or database name; PG* variables apply"

/* The data directory: required by some commands, refused by others with a word on why. */
static int need_pgdata(const Cli *cli, const char *hint, WsError *err)
{
	if (cli->pgdata != NULL)
		return 0;
	ws_error(err, WS_USAGE, "no data directory given");
	ws_error_hint(err, "%s", hint);
	return WS_USAGE;
}

static int no_pgdata(const Cli *cli, const char *hint, WsError *err)
{
	if (cli->pgdata == NULL)
		return 0;
	ws_error(err, WS_USAGE, "walship %s takes no data directory", cli->command->name);
	if (hint != NULL)
		ws_error_hint(err, "%s", hint);
	return WS_USAGE;
}

#define CONNECTS_HINT "It connects to the server: name it with -d \"host=... port=...\"."

/* ---- init ---- */

typedef struct InitArgs {
	bool encrypt;
} InitArgs;

static const CliOption init_options[] = {
	{.name = "encrypt",
	 CLI_FLAG(InitArgs, encrypt),
	 .help = "encrypt the repository (needs encryption-key-file or\n"
		 "WALSHIP_ENCRYPTION_PASSPHRASE; cannot change later)"},
	{0},
};

static int run_init(Cli *cli, WsError *err)
{
	InitArgs a = {false};
	int rc;
	if ((rc = need_pgdata(cli, "Run walship init --repo=URL --pgdata=DIR.", err)) != 0 ||
	    (rc = cli_apply(cli, &a, err)) != 0)
		return rc;
	return cmd_init(cli->cfg, cli->pgdata, a.encrypt, err);
}

static const CliCommand init_command = {
	.name = "init",
	.about = "create a repository for a cluster",
	.usage = "walship init --repo=URL --pgdata=DIR [--encrypt]",
	.notes = "Reads the cluster's global/pg_control and writes walship.json with the first\n"
		 "epoch. Only init creates a repository, and it never replaces one.",
	.options = init_options,
	.pgdata = "the cluster's data directory (required)",
	.examples = "walship init --repo=/var/lib/walship --pgdata=/var/lib/postgresql/15/main\n"
		    "walship init --repo=s3://backups/main --pgdata=/var/lib/postgresql/15/main \\\n"
		    "    --encrypt",
	.epilog = "Exit status: 0 created; 1 failure (already initialised, unreadable data\n"
		  "directory, store error); 2 usage error.",
	.run = run_init,
};

/* ---- backup ---- */

/* --wal-timeout's own message, older than the table. */
static int set_wal_timeout(void *dst, const CliOption *opt, const char *value, WsError *err)
{
	long v;
	if (!cli_parse_long(value, opt->min, opt->max, &v))
		return ws_error(err, WS_USAGE,
				"invalid value \"%s\" for --%s: use whole seconds from %ld to %ld", value,
				opt->name, opt->min, opt->max);
	((BackupOptions *)dst)->wal_timeout = v;
	return 0;
}

static const CliOption backup_options[] = {
	{.name = "dbname",
	 .letters = "d",
	 .value = "CONNSTR",
	 CLI_STRING(BackupOptions, dbname),
	 .help = DBNAME_HELP},
	{.name = "wal-timeout",
	 .value = "SECONDS",
	 .set = set_wal_timeout,
	 .min = 0,
	 .max = 7 * 24 * 3600,
	 .help = "how long to wait for the next WAL file the backup\n"
		 "needs to be archived (default " STR(BACKUP_WAL_TIMEOUT_DEFAULT) ")"},
	{0},
};

static int run_backup(Cli *cli, WsError *err)
{
	BackupOptions opt = {NULL, BACKUP_WAL_TIMEOUT_DEFAULT};
	int rc;
	if ((rc = no_pgdata(cli, CONNECTS_HINT, err)) != 0 || (rc = cli_apply(cli, &opt, err)) != 0)
		return rc;
	/* Ctrl-C removes the object being written; the server ends the backup when we go. */
	cleanup_init(1);
	return cmd_backup(cli->cfg, &opt, err);
}

static const CliCommand backup_command = {
	.name = "backup",
	.about = "take a base backup of the running server into the repository",
	.usage = "walship backup --repo=URL [-d CONNSTR] [--wal-timeout=SECONDS]",
	.notes = "First makes walship check's archive settings checks: a failure stops it at\n"
		 "once. Streams the server's base backup into the repository, then waits until\n"
		 "every WAL file it needs is archived, saying every 5 s what pg_stat_archiver\n"
		 "reports: only then does the backup exist. The user needs the REPLICATION\n"
		 "attribute.",
	.options = backup_options,
	.examples = "walship backup --repo=/var/lib/walship\n"
		    "walship backup -d \"host=/var/run/postgresql port=5433 user=postgres\"",
	.epilog = "Exit status: 0 the backup is complete; 1 failure; 2 usage error.",
	.run = run_backup,
};

/* ---- list ---- */

typedef struct ListArgs {
	bool json;
} ListArgs;

static const CliOption list_options[] = {
	{.name = "json", CLI_FLAG(ListArgs, json), .help = "print the same as one JSON object"},
	{0},
};

static int run_list(Cli *cli, WsError *err)
{
	ListArgs a = {false};
	int rc = cli_apply(cli, &a, err);
	if (rc != 0)
		return rc;
	return cmd_list(cli->cfg, a.json, err);
}

static const CliCommand list_command = {
	.name = "list",
	.about = "show the backups and the window each timeline can be rebuilt to",
	.usage = "walship list --repo=URL [--json]",
	.notes = "For each epoch: the complete backups, the WAL of each timeline, what can be\n"
		 "rebuilt and the gaps; then the leases of walship rebuild.",
	.options = list_options,
	.examples = "walship list --repo=/var/lib/walship\n"
		    "walship list --json",
	.epilog = "Exit status: 0; 1 failure (also when a manifest.json or a history file cannot\n"
		  "be read: the rest is still listed); 2 usage error.",
	.run = run_list,
};

/* ---- rebuild ---- */

#define MAX_TABLESPACE_MAP 32

typedef struct RebuildArgs {
	RebuildOptions opt;
	const char *cluster;
	const char *tablespace_map[MAX_TABLESPACE_MAP];
} RebuildArgs;

/* A --target-* option: its kind is the row's tag. */
static int set_target(void *dst, const CliOption *opt, const char *value, WsError *err)
{
	RebuildOptions *r = &((RebuildArgs *)dst)->opt;
	(void)err;
	r->target = (RecoveryTargetKind)opt->tag;
	r->target_value = value;
	return 0;
}

static int add_tablespace_map(void *dst, const CliOption *opt, const char *value, WsError *err)
{
	RebuildArgs *a = dst;
	if (a->opt.n_tablespace_map == MAX_TABLESPACE_MAP)
		return ws_error(err, WS_USAGE, "more than %d --%s options", MAX_TABLESPACE_MAP, opt->name);
	a->tablespace_map[a->opt.n_tablespace_map++] = value;
	a->opt.tablespace_map = a->tablespace_map;
	return 0;
}

/* --port's own message, older than the table. */
static int set_port(void *dst, const CliOption *opt, const char *value, WsError *err)
{
	long v;
	if (!cli_parse_long(value, opt->min, opt->max, &v))
		return ws_error(err, WS_USAGE, "invalid value \"%s\" for --%s", value, opt->name);
	((RebuildArgs *)dst)->opt.port = (int)v;
	return 0;
}

/* The order is --help's, and that in which values are checked. */
static const CliOption rebuild_options[] = {
	{.name = "backup",
	 .value = "ID|latest",
	 CLI_STRING(RebuildArgs, opt.backup_id),
	 .help = "the backup (default: the newest that ends before a\n"
		 "time or LSN target, else the newest)"},
	{.name = "target-time",
	 .value = "TIME",
	 .set = set_target,
	 .tag = TARGET_TIME,
	 .flags = CLI_ONE_OF,
	 .help = "recover to a time with a zone, for example\n"
		 "\"2026-11-25 19:11:52+00\""},
	{.name = "target-lsn",
	 .value = "LSN",
	 .set = set_target,
	 .tag = TARGET_LSN,
	 .flags = CLI_ONE_OF,
	 .help = "... to a WAL position"},
	{.name = "target-xid",
	 .value = "XID",
	 .set = set_target,
	 .tag = TARGET_XID,
	 .flags = CLI_ONE_OF,
	 .help = "... to a transaction"},
	{.name = "target-name",
	 .value = "NAME",
	 .set = set_target,
	 .tag = TARGET_NAME,
	 .flags = CLI_ONE_OF,
	 .help = "... to a restore point (pg_create_restore_point)"},
	{.name = "target-immediate",
	 .set = set_target,
	 .tag = TARGET_IMMEDIATE,
	 .flags = CLI_ONE_OF,
	 .help = "... to the end of the backup (default: all WAL)"},
	{.name = "target-exclusive",
	 CLI_FLAG(RebuildArgs, opt.target_exclusive),
	 .help = "stop just before the target (time, LSN, xid)"},
	{.name = "target-timeline",
	 .value = "latest|current|N",
	 CLI_STRING(RebuildArgs, opt.target_timeline),
	 .help = "timeline to follow (default latest)"},
	{.name = "target-action",
	 .value = "pause|promote|shutdown",
	 CLI_STRING(RebuildArgs, opt.target_action),
	 .help = "what the server does at the target"},
	{.name = "standby",
	 CLI_FLAG(RebuildArgs, opt.standby),
	 .help = "set the server up as a standby (standby.signal)"},
	{.name = "primary-conninfo",
	 .value = "STR",
	 CLI_STRING(RebuildArgs, opt.primary_conninfo),
	 .help = "the standby's connection to its primary"},
	{.name = "archive",
	 .value = "off|keep",
	 CLI_STRING(RebuildArgs, opt.archive),
	 .help = "archive_mode of the copy (default off, kept for a\nstandby)"},
	{.name = "tablespace-map",
	 .value = "OID=DIR",
	 .set = add_tablespace_map,
	 .flags = CLI_REPEAT,
	 .help = "restore a tablespace elsewhere (repeatable)"},
	{.name = "config-from",
	 .value = "FILE",
	 CLI_STRING(RebuildArgs, opt.config_from),
	 .help = "postgresql.conf to use when the backup has none"},
	{.name = "start",
	 CLI_FLAG(RebuildArgs, opt.start),
	 .help = "start the server and wait for the recovery outcome"},
	{.name = "port",
	 .value = "PORT",
	 .set = set_port,
	 .min = 1,
	 .max = 65535,
	 .help = "the port of the started server"},
	{.name = "force",
	 CLI_FLAG(RebuildArgs, opt.force),
	 .help = "replace what a non-empty data directory holds"},
	{.name = "lease",
	 .value = "AGE",
	 CLI_AGE(RebuildArgs, opt.lease),
	 .max = REBUILD_LEASE_MAX,
	 .help = "how long walship prune keeps the backup and WAL\n"
		 "this rebuild needs after it exits (default 7d;\n"
		 "0: no lease)"},
	{.name = "dry-run",
	 CLI_FLAG(RebuildArgs, opt.dry_run),
	 .help = "show the plan and stop before writing anything"},
	{.name = "cluster",
	 .value = "VERSION/NAME",
	 CLI_STRING(RebuildArgs, cluster),
	 .help = "the Debian cluster (pg_lsclusters: 15/main) whose data\n"
		 "directory to rebuild, instead of --pgdata"},
	{.name = "recovery-ended",
	 CLI_FLAG(RebuildArgs, opt.recovery_ended),
	 .help = "only remove the recovery targets from\n"
		 "postgresql.auto.conf (the recovery_end_command\n"
		 "rebuild writes; needs no repository)"},
	{0},
};

/* --cluster=15/main names the data directory of that Debian cluster; with --pgdata, the same one. */
static int cluster_pgdata(Cli *cli, const RebuildArgs *a, WsError *err)
{
	PgCommonCluster c;
	int rc;
	if (a->cluster == NULL)
		return 0;
	if ((rc = pgcommon_cluster_named(PGCOMMON_ETC, a->cluster, &c, err)) != 0)
		return rc;
	static char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", c.data_dir);
	pgcommon_cluster_free(&c);
	if (cli->pgdata != NULL && strcmp(cli->pgdata, dir) != 0) {
		ws_error(err, WS_USAGE, "--pgdata=%s is not the data directory of cluster %s (\"%s\")",
			 cli->pgdata, a->cluster, dir);
		ws_error_hint(err, "Give one of them.");
		return WS_USAGE;
	}
	cli->pgdata = dir;
	return 0;
}

static int run_rebuild(Cli *cli, WsError *err)
{
	RebuildArgs a = {.opt = {.lease = REBUILD_LEASE_DEFAULT}};
	RebuildOptions *r = &a.opt;
	int rc;
	if ((rc = cli_apply(cli, &a, err)) != 0 || (rc = cluster_pgdata(cli, &a, err)) != 0 ||
	    (rc = need_pgdata(cli, "Run walship rebuild --repo=URL --pgdata=DIR (or --cluster=15/main).",
			      err)) != 0)
		return rc;
	if (cli->pgdata[0] != '/')
		return ws_error(err, WS_USAGE, "the data directory \"%s\" must be an absolute path",
				cli->pgdata);
	r->pgdata = cli->pgdata;
	if (r->recovery_ended)
		return cmd_rebuild_recovery_ended(r->pgdata, err);
	/*
	 * The configuration file restore_command must name: --config's value, else
	 * $WALSHIP_CONFIG (the server does not have our environment), made absolute:
	 * restore_command runs in the data directory.
	 */
	static char abs_config[PATH_MAX];
	const char *config_path = cli->config_path != NULL ? cli->config_path : getenv("WALSHIP_CONFIG");
	if (config_path != NULL && config_path[0] == '\0')
		config_path = NULL;
	if (config_path != NULL && config_path[0] != '/' && realpath(config_path, abs_config) != NULL)
		config_path = abs_config;
	r->config_path = config_path;
	/* Ctrl-C leaves a half-built directory that cannot start (pg_control comes last). */
	cleanup_init(1);
	return cmd_rebuild(cli->cfg, r, err);
}

static const CliCommand rebuild_command = {
	.name = "rebuild",
	.about = "recreate a data directory from a backup and the archived WAL",
	.usage = "walship rebuild --repo=URL --pgdata=DIR [--backup=ID|latest] [TARGET]\n"
		 "        [--start [--port=PORT]] [--standby [--primary-conninfo=STR]]\n"
		 "        [--force] [--dry-run] [OPTION]...",
	.notes = "TARGET is one of the --target-time, --target-lsn, --target-xid, --target-name\n"
		 "and --target-immediate options; without one, recovery replays all the archived\n"
		 "WAL and the server is promoted. Every WAL file up to the target is proven to\n"
		 "be in the repository before anything is written.",
	.options = rebuild_options,
	.pgdata = "the data directory to create, an absolute path\n(required)",
	.examples = "walship rebuild --pgdata=/srv/pitr \\\n"
		    "    --target-time=\"2026-11-25 19:11:52+00\" --dry-run\n"
		    "walship rebuild --pgdata=/srv/pitr \\\n"
		    "    --target-time=\"2026-11-25 19:11:52+00\" \\\n"
		    "    --target-action=promote --start --port=5433\n"
		    "walship rebuild --pgdata=/var/lib/postgresql/15/main --standby \\\n"
		    "    --primary-conninfo=\"host=primary.example.com user=replicator\" --start",
	.epilog = "Exit status: 0 rebuilt (with --start: the target was reached and acted on,\n"
		  "the server was promoted, or the standby runs); 1 failure; 2 usage error, also\n"
		  "for a backup, timeline or target the repository cannot satisfy.",
	.run = run_rebuild,
};

/* ---- upgrade ---- */

static int run_upgrade(Cli *cli, WsError *err)
{
	int rc = need_pgdata(cli,
			     "Run walship upgrade --repo=URL --pgdata=DIR with the upgraded cluster's "
			     "data directory.",
			     err);
	if (rc != 0)
		return rc;
	return cmd_upgrade(cli->cfg, cli->pgdata, err);
}

static const CliCommand upgrade_command = {
	.name = "upgrade",
	.about = "after pg_upgrade, add a repository epoch for the new cluster",
	.usage = "walship upgrade --repo=URL --pgdata=DIR",
	.notes = "Run it once, with the upgraded cluster's data directory: until then\n"
		 "walship-push refuses the new cluster. The old epoch stays readable.",
	.pgdata = "the upgraded cluster's data directory (required)",
	.examples = "walship upgrade --pgdata=/var/lib/postgresql/16/main",
	.epilog = "Exit status: 0 added, or already up to date; 1 failure; 2 usage error.",
	.run = run_upgrade,
};

/* ---- prune ---- */

static const CliOption prune_options[] = {
	{.name = "keep-backups",
	 .value = "N",
	 CLI_INT(PruneOptions, keep_backups),
	 .min = 1,
	 .max = 1000000,
	 .required = "Say how many of the newest backups to keep, e.g. --keep-backups=2.",
	 .help = "keep the N newest complete backups (required,\nN >= 1)"},
	{.name = "keep-days",
	 .value = "D",
	 CLI_INT(PruneOptions, keep_days),
	 .min = 0,
	 .max = 36500,
	 .help = "also keep every backup of the last D days and the\n"
		 "newest one before them, so that the whole window\n"
		 "can be rebuilt"},
	{.name = "min-wal-age",
	 .value = "AGE",
	 CLI_AGE(PruneOptions, min_wal_age),
	 .help = "keep WAL archived less than AGE ago (seconds, or\n"
		 "with a suffix s, min, h, d), for standbys fed from\n"
		 "the archive"},
	{.name = "dry-run",
	 CLI_FLAG(PruneOptions, dry_run),
	 .help = "show what would be removed and remove nothing"},
	{.name = "json", CLI_FLAG(PruneOptions, json), .help = "print one JSON object"},
	{0},
};

static int run_prune(Cli *cli, WsError *err)
{
	PruneOptions opt = {0, -1, 0, false, false};
	int rc;
	if ((rc = no_pgdata(cli, NULL, err)) != 0 || (rc = cli_apply(cli, &opt, err)) != 0)
		return rc;
	return cmd_prune(cli->cfg, &opt, err);
}

static const CliCommand prune_command = {
	.name = "prune",
	.about = "remove old backups and the WAL no kept backup needs (for cron)",
	.usage = "walship prune --repo=URL --keep-backups=N [--keep-days=D]\n"
		 "        [--min-wal-age=AGE] [--dry-run] [--json]",
	.notes = "Holds the repository lock. History files and a backup being written are never\n"
		 "removed; killed at any moment, the next prune finishes the job.",
	.options = prune_options,
	.examples = "walship prune -q --keep-backups=2 --keep-days=14 --min-wal-age=1d\n"
		    "walship prune --keep-backups=2 --dry-run",
	.epilog = "With -q only errors are printed (cron mails any output).\n"
		  "Exit status: 0; 1 failure (nothing, or only part, removed; the repository\n"
		  "stays consistent); 2 usage error.",
	.run = run_prune,
};

/* ---- verify ---- */

static const CliOption verify_options[] = {
	{.name = "full",
	 CLI_FLAG(VerifyOptions, full),
	 .help = "also decode every object and check its SHA-256"},
	{.name = "json", CLI_FLAG(VerifyOptions, json), .help = "print one JSON object"},
	{0},
};

static int run_verify(Cli *cli, WsError *err)
{
	VerifyOptions opt = {false, false};
	int rc;
	if ((rc = no_pgdata(cli, NULL, err)) != 0 || (rc = cli_apply(cli, &opt, err)) != 0)
		return rc;
	return cmd_verify(cli->cfg, &opt, err);
}

static const CliCommand verify_command = {
	.name = "verify",
	.about = "check that the repository is whole",
	.usage = "walship verify --repo=URL [--full] [--json]",
	.notes = "Checks every object's header and trailer, each backup against its manifest,\n"
		 "that the WAL has no hole along every timeline, and looks for orphans.",
	.options = verify_options,
	.examples = "walship verify --repo=/var/lib/walship\n"
		    "walship verify -q --full",
	.epilog = "Exit status: 0 the repository is whole; " STR(
		VERIFY_EXIT_PROBLEMS) " problems were found; 1 verify\n"
				      "could not run; 2 usage error.",
	.run = run_verify,
};

/* ---- check ---- */

static const CliOption check_options[] = {
	{.name = "dbname",
	 .letters = "d",
	 .value = "CONNSTR",
	 CLI_STRING(CheckOptions, dbname),
	 .help = DBNAME_HELP},
	{.name = "timeout",
	 .value = "SECONDS",
	 CLI_INT(CheckOptions, timeout),
	 .min = 1,
	 .max = 24 * 3600,
	 .help = "how long to wait for the switched WAL file to be\n"
		 "archived (default " STR(CHECK_TIMEOUT_DEFAULT) ")"},
	{0},
};

static int run_check(Cli *cli, WsError *err)
{
	CheckOptions opt = {NULL, CHECK_TIMEOUT_DEFAULT};
	int rc;
	if ((rc = no_pgdata(cli, CONNECTS_HINT, err)) != 0 || (rc = cli_apply(cli, &opt, err)) != 0)
		return rc;
	return cmd_check(cli->cfg, &opt, err);
}

static const CliCommand check_command = {
	.name = "check",
	.about = "check that a running server archives into the repository",
	.usage = "walship check --repo=URL [-d CONNSTR] [--timeout=SECONDS]",
	.notes = "Checks archive_mode, archive_command, that the repository belongs to the\n"
		 "cluster and answers \"not found\" as it must, then switches to a new WAL file\n"
		 "and waits until it is archived.",
	.options = check_options,
	.examples = "walship check --repo=/var/lib/walship\n"
		    "walship check -d \"port=5433\" --timeout=120",
	.epilog = "Exit status: 0 every check holds; " STR(
		CHECK_EXIT_FAILED) " a check failed; 1 check could not\n"
				   "run; 2 usage error.",
	.run = run_check,
};

/* ---- help ---- */

static int run_help(Cli *cli, WsError *err)
{
	return cli_print_help(cli, cli->argc > 0 ? cli->argv[0] : NULL, err);
}

static const CliCommand help_command = {
	.name = "help",
	.about = "show the commands, or a command's usage, options and examples",
	.usage = "walship help [COMMAND]",
	.examples = "walship help rebuild",
	.epilog = "Exit status: 0; 2 for an unknown command.",
	.args = 1,
	.run = run_help,
};

/* ---- the program ---- */

static const CliCommand walship_command = {
	.about = "keep PostgreSQL's WAL and base backups in a repository",
	.usage = "walship COMMAND [OPTION]...\n"
		 "walship help COMMAND",
	.pgdata = "the cluster's data directory (init, upgrade, rebuild)",
	.epilog = "\"walship COMMAND --help\" shows the options and examples of a command.\n"
		  "The WAL hooks are separate programs: walship-push (archive_command) and\n"
		  "walship-fetch (restore_command).\n\n"
		  "Exit status: 0 success, 1 failure, 2 usage error; verify: " STR(
			  VERIFY_EXIT_PROBLEMS) " when problems\n"
						"were found; check: " STR(
							CHECK_EXIT_FAILED) " when a check failed.",
};

static const CliCommand *const walship_commands[] = {
	&init_command,  &backup_command, &list_command,  &rebuild_command, &upgrade_command,
	&prune_command, &verify_command, &check_command, &help_command,    NULL,
};

static const CliProgram walship = {&walship_command, walship_commands};

int main(int argc, char **argv)
{
	Cli cli;
	WsError err;
	int rc;

	log_init("walship");
	ws_error_clear(&err);
	rc = cli_parse(&cli, argc, argv, &walship, &err);
	if (rc == 0 && !cli.done)
		rc = cli_run(&cli, &err);
	if (rc < 0)
		cli_report(&cli, &err);
	cli_free(&cli);
	if (rc >= 0)
		return rc; /* 0, or verify's and check's own codes for what they found */
	return rc == WS_USAGE ? EXIT_USAGE : 1;
}
