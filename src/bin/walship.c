/*
 * walship - the repository commands: walship COMMAND [OPTION]...
 * Exit 0 on success, 1 on failure, 2 on a usage error.
 */
#include <stdio.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/init.h"
#include "util/log.h"

#define EXIT_USAGE 2

static void usage(void)
{
	printf("walship keeps PostgreSQL's WAL and base backups in a repository.\n\n"
	       "Usage:\n"
	       "  walship COMMAND [OPTION]...\n\n"
	       "Commands:\n"
	       "  init      create a repository for a cluster:\n"
	       "            walship init --repo=URL --pgdata=DIR\n\n"
	       "The WAL hooks are separate programs: walship-push (archive_command) and\n"
	       "walship-fetch (restore_command).\n\n"
	       "Options:\n"
	       "  -D, --pgdata=DIR      the cluster's data directory\n"
	       "%s\n"
	       "Exit status: 0 success, 1 failure, 2 usage error.\n",
	       cli_common_help);
}

static int run_init(Cli *cli, WsError *err)
{
	if (cli->argc != 0)
		return ws_error(err, WS_USAGE, "unexpected argument \"%s\"", cli->argv[0]);
	if (cli->pgdata == NULL) {
		ws_error(err, WS_USAGE, "no data directory given");
		ws_error_hint(err, "Run walship init --repo=URL --pgdata=DIR.");
		return WS_USAGE;
	}
	return cmd_init(cli->cfg, cli->pgdata, err);
}

int main(int argc, char **argv)
{
	Cli cli;
	WsError err;
	int rc;

	log_init("walship");
	ws_error_clear(&err);
	rc = cli_parse(&cli, argc, argv, CLI_OPT_PGDATA, usage, &err);
	if (rc == 0 && !cli.done) {
		const char *command = cli.argc > 0 ? cli.argv[0] : NULL;
		cli.argc--, cli.argv++;
		if (command == NULL)
			rc = ws_error(&err, WS_USAGE, "no command given");
		else if (strcmp(command, "init") == 0)
			rc = run_init(&cli, &err);
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
