/*
 * walship - the repository commands: walship COMMAND [OPTION]...
 * Exit 0 on success, 1 on failure, 2 on a usage error.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/backup.h"
#include "cmd/cli.h"
#include "cmd/init.h"
#include "cmd/list.h"
#include "cmd/upgrade.h"
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
	       "            walship init --repo=URL --pgdata=DIR\n"
	       "  backup    take a base backup of the running server into the repository:\n"
	       "            walship backup --repo=URL [-d CONNSTR] [--wal-timeout=SECONDS]\n"
	       "  list      show the backups and the window each timeline can be rebuilt to:\n"
	       "            walship list --repo=URL [--json]\n"
	       "  upgrade   after pg_upgrade, add a repository epoch for the new cluster:\n"
	       "            walship upgrade --repo=URL --pgdata=DIR\n\n"
	       "The WAL hooks are separate programs: walship-push (archive_command) and\n"
	       "walship-fetch (restore_command).\n\n"
	       "Options:\n"
	       "  -D, --pgdata=DIR      the cluster's data directory (init, upgrade)\n"
	       "  -d, --dbname=CONNSTR  how to reach the server (backup): a libpq connection\n"
	       "                        string or database name; PG* variables apply\n"
	       "  --json                list: print one JSON object\n"
	       "  --wal-timeout=SECONDS how long backup waits for the next WAL file it needs\n"
	       "                        to be archived (default %d)\n"
	       "%s\n"
	       "Exit status: 0 success, 1 failure, 2 usage error.\n",
	       BACKUP_WAL_TIMEOUT_DEFAULT, cli_common_help);
}

/* The options of single commands; each command refuses the others'. */
enum { OPT_DBNAME = CLI_EXTRA_BASE, OPT_WAL_TIMEOUT, OPT_JSON };

typedef struct CommandArgs {
	const char *dbname;
	const char *wal_timeout;
	bool json;
	const char *given[4]; /* names of the options given, for "only valid for" errors */
	int n_given;
} CommandArgs;

static const struct option command_options[] = {
	{"dbname", required_argument, NULL, OPT_DBNAME},
	{"wal-timeout", required_argument, NULL, OPT_WAL_TIMEOUT},
	{"json", no_argument, NULL, OPT_JSON},
	{NULL, 0, NULL, 0},
};

static int take_command_option(void *ctx, int opt, const char *arg, WsError *err)
{
	CommandArgs *a = ctx;
	const char *name;
	(void)err;
	switch (opt) {
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
	default:
		return ws_error(err, WS_USAGE, "invalid option");
	}
	if (a->n_given < 4)
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
	int rc = only_options(a, "init", "", err);
	if (rc != 0)
		return rc;
	if (cli->argc != 0)
		return ws_error(err, WS_USAGE, "unexpected argument \"%s\"", cli->argv[0]);
	if (cli->pgdata == NULL) {
		ws_error(err, WS_USAGE, "no data directory given");
		ws_error_hint(err, "Run walship init --repo=URL --pgdata=DIR.");
		return WS_USAGE;
	}
	return cmd_init(cli->cfg, cli->pgdata, err);
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
		else if (strcmp(command, "upgrade") == 0)
			rc = run_upgrade(&cli, &args, &err);
		else if (strcmp(command, "help") == 0)
			usage();
		else
			rc = ws_error(&err, WS_USAGE, "unknown command \"%s\"", command);
	}
	if (rc != 0)
		cli_report(&cli, &err);
	cli_free(&cli);
	if (rc == 0)
		return 0;
	return rc == WS_USAGE ? EXIT_USAGE : 1;
}
