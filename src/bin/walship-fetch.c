/*
 * walship-fetch - restore_command: walship-fetch [OPTION]... %f %p
 * Exit 0 (written whole), 1 (not in a healthy repository), 200 (abort).
 */
#include <stdio.h>

#include "cmd/cli.h"
#include "cmd/fetch.h"
#include "util/cleanup.h"
#include "util/log.h"

static void usage(void)
{
	printf("walship-fetch restores one WAL file from a walship repository (restore_command).\n\n"
	       "Usage:\n"
	       "  walship-fetch [OPTION]... WALNAME WALPATH\n\n"
	       "In postgresql.conf:\n"
	       "  restore_command = 'walship-fetch %%f %%p'\n\n"
	       "Options:\n"
	       "  --mode=MODE           auto (default), recovery or standby: how errors are\n"
	       "                        answered (see below)\n"
	       "  -D, --pgdata=DIR      data directory (default: the current directory)\n"
	       "  --epoch=ID            read this repository epoch (default: the one of the\n"
	       "                        data directory's system identifier)\n"
	       "%s\n"
	       "Exit status: 0 when the file was written whole; 1 when the repository, read\n"
	       "and matched to this cluster, does not have it; 200 on any other error in\n"
	       "recovery, which stops PostgreSQL instead of ending recovery early. On a\n"
	       "standby, errors answer 1 (it retries, and can stream meanwhile).\n\n"
	       "During recovery, the next fetch-ahead segments (default 8; 0: off) are\n"
	       "fetched ahead into spool-path and served from there once verified.\n",
	       cli_common_help);
}

int main(int argc, char **argv)
{
	Cli cli;
	WsError err;
	FetchMode mode = FETCH_MODE_AUTO;
	int rc;

	log_init("walship-fetch");
	cleanup_init(FETCH_EXIT_ABORT);
	/* Until the mode is known, a fatal error (out of memory) aborts: never 1, "not found". */
	cleanup_set_fatal_code(FETCH_EXIT_ABORT);
	ws_error_clear(&err);
	rc = cli_parse(&cli, argc, argv, CLI_OPT_PGDATA | CLI_OPT_MODE | CLI_OPT_EPOCH, NULL, usage, &err);
	if (!cli.done && cli.mode != NULL) {
		int m = fetch_mode_parse(cli.mode);
		if (m >= 0)
			mode = (FetchMode)m;
		else if (rc == 0)
			rc = ws_error(&err, WS_USAGE,
				      "invalid value \"%s\" for --mode: use auto, recovery or standby",
				      cli.mode);
	}
	if (rc == 0 && !cli.done && cli.argc != 2)
		rc = ws_error(&err, WS_USAGE, "expected 2 arguments (WALNAME WALPATH, %%f %%p), got %d",
			      cli.argc);
	FetchRequest req = {cli.argc > 0 ? cli.argv[0] : "", cli.argc > 1 ? cli.argv[1] : "", cli.pgdata,
			    mode, cli.epoch};
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
