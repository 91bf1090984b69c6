/*
 * walship-push - archive_command: walship-push [OPTION]... %p %f
 * Exit 0 only once the WAL file is durable in the repository; 1 otherwise.
 */
#include <stdio.h>

#include "cmd/cli.h"
#include "cmd/push.h"
#include "util/cleanup.h"
#include "util/log.h"

/* walship-push has only the common options (cmd/cli.c). */
static const CliCommand push_command = {
	.about = "store one WAL file in a walship repository (archive_command)",
	.usage = "walship-push [OPTION]... WALPATH WALNAME",
	.notes = "In postgresql.conf:\n"
		 "  archive_command = 'walship-push %p %f'",
	.pgdata = "data directory (default: the current directory, where\n"
		  "PostgreSQL runs archive_command)",
	.epilog = "Exit status: 0 when the file is durably stored (or an identical copy already\n"
		  "is), 1 on any failure (PostgreSQL keeps the file and retries).",
};

static const CliProgram push_program = {&push_command, NULL};

int main(int argc, char **argv)
{
	Cli cli;
	WsError err;
	int rc;

	log_init("walship-push");
	cleanup_init(1);
	ws_error_clear(&err);
	rc = cli_parse(&cli, argc, argv, &push_program, &err);
	if (rc == 0 && !cli.done && cli.argc != 2)
		rc = ws_error(&err, WS_USAGE, "expected 2 arguments (WALPATH WALNAME, %%p %%f), got %d",
			      cli.argc);
	if (rc == 0 && !cli.done)
		rc = cmd_push(cli.cfg, cli.pgdata ? cli.pgdata : ".", cli.argv[0], cli.argv[1], &err);
	if (rc != 0)
		cli_report(&cli, &err);
	cli_free(&cli);
	return rc == 0 ? 0 : 1;
}
