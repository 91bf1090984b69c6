/*
 * walship-fetch - restore_command: walship-fetch [OPTION]... %f %p
 * Exit 0 (written whole), 1 (not in a healthy repository), 200 (abort).
 */
#include <stdio.h>

#include "cmd/cli.h"
#include "cmd/fetch.h"
#include "util/cleanup.h"
#include "util/log.h"

typedef struct FetchArgs {
	const char *mode;  /* NULL if not given */
	const char *epoch; /* NULL if not given */
} FetchArgs;

static const CliOption fetch_options[] = {
	{.name = "mode",
	 .value = "MODE",
	 CLI_STRING(FetchArgs, mode),
	 .help = "auto (default), recovery or standby: how errors are\n"
		 "answered (see below)"},
	{.name = "epoch",
	 .value = "ID",
	 CLI_STRING(FetchArgs, epoch),
	 .help = "read this repository epoch (default: the one of the\n"
		 "data directory's system identifier)"},
	{0},
};

static const CliCommand fetch_command = {
	.about = "restore one WAL file from a walship repository (restore_command)",
	.usage = "walship-fetch [OPTION]... WALNAME WALPATH",
	.notes = "In postgresql.conf:\n"
		 "  restore_command = 'walship-fetch %f %p'",
	.options = fetch_options,
	.pgdata = "data directory (default: the current directory)",
	.epilog = "Exit status: 0 when the file was written whole; 1 when the repository, read\n"
		  "and matched to this cluster, does not have it; 200 on any other error in\n"
		  "recovery, which stops PostgreSQL instead of ending recovery early. On a\n"
		  "standby, errors answer 1 (it retries, and can stream meanwhile).\n\n"
		  "During recovery, the next fetch-ahead segments (default 8; 0: off) are\n"
		  "fetched ahead into spool-path and served from there once verified.",
};

static const CliProgram fetch_program = {&fetch_command, NULL};

int main(int argc, char **argv)
{
	Cli cli;
	WsError err;
	FetchArgs args = {NULL, NULL};
	FetchMode mode = FETCH_MODE_AUTO;
	int rc;

	log_init("walship-fetch");
	cleanup_init(FETCH_EXIT_ABORT);
	/* Until the mode is known, a fatal error (out of memory) aborts: never 1, "not found". */
	cleanup_set_fatal_code(FETCH_EXIT_ABORT);
	ws_error_clear(&err);
	rc = cli_parse(&cli, argc, argv, &fetch_program, &err);
	/*
	 * Strings only: nothing to refuse.  Read also after a configuration error,
	 * whose exit code depends on the mode.
	 */
	if (!cli.done)
		cli_apply(&cli, &args, NULL);
	if (!cli.done && args.mode != NULL) {
		int m = fetch_mode_parse(args.mode);
		if (m >= 0)
			mode = (FetchMode)m;
		else if (rc == 0)
			rc = ws_error(&err, WS_USAGE,
				      "invalid value \"%s\" for --mode: use auto, recovery or standby",
				      args.mode);
	}
	if (rc == 0 && !cli.done && cli.argc != 2)
		rc = ws_error(&err, WS_USAGE, "expected 2 arguments (WALNAME WALPATH, %%f %%p), got %d",
			      cli.argc);
	FetchRequest req = {cli.argc > 0 ? cli.argv[0] : "", cli.argc > 1 ? cli.argv[1] : "", cli.pgdata,
			    mode, args.epoch};
	if (rc == 0 && !cli.done)
		rc = cmd_fetch(cli.cfg, &req, &mode, &err);
	/* "Not found" is quiet: PostgreSQL asks for files past the end as a matter of course. */
	if (rc != 0 && rc != WS_NOT_FOUND)
		cli_report(&cli, &err);
	int code = fetch_exit_code(rc, mode);
	/* A broken configuration is an error like any other: a standby answers 1 and retries. */
	if (rc != 0 && cli.config_error && cli.argc == 2)
		code = fetch_exit_code(WS_FATAL, fetch_mode_of(&req));
	cli_free(&cli);
	return code;
}
