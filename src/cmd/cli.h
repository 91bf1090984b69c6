/*
 * cli.h - the options every walship program shares, parsed once.
 *
 * getopt_long over the common options (--repo, --config, --compress-level,
 * -q, -v, --log-level, --help, --version) plus the ones a program adds.
 * Settings go into a Config, which is then loaded from the file and the
 * environment; the positional arguments are left for the caller.
 */
#ifndef WALSHIP_CMD_CLI_H
#define WALSHIP_CMD_CLI_H

#include <getopt.h>

#include "util/config.h"
#include "util/error.h"

/* Program-specific options (beyond the common ones). */
enum {
	CLI_OPT_PGDATA = 1 << 0, /* --pgdata=DIR, -D DIR */
	CLI_OPT_MODE = 1 << 1,   /* --mode=auto|recovery|standby */
	CLI_OPT_EPOCH = 1 << 2,  /* --epoch=ID */
};

/*
 * Options a program adds beyond the common ones (walship's commands): their
 * getopt_long entries (val >= CLI_EXTRA_BASE, or a short option letter also
 * in shortopts) and a handler called with each one found.
 */
#define CLI_EXTRA_BASE 1000
typedef struct CliExtra {
	const struct option *longopts; /* terminated by an all-zero entry */
	const char *shortopts;         /* e.g. "d:" */
	int (*handle)(void *ctx, int opt, const char *arg, WsError *err);
	void *ctx;
} CliExtra;

typedef struct Cli {
	const char *progname;
	Config *cfg;
	const char *pgdata; /* NULL if not given */
	const char *mode;   /* NULL if not given */
	const char *epoch;  /* NULL if not given */
	int argc;           /* positional arguments */
	char **argv;
	int done;         /* --help or --version printed: exit 0 */
	int config_error; /* the failure came from the configuration, not the command line */
} Cli;

/*
 * Parse argv and load the configuration.  usage prints the program's --help text.  Returns 0 (cli filled,
 * config loaded, log level set), or WS_USAGE / another class with err filled
 * (the caller prints it and the "Try ... --help" line).  Options and
 * positional arguments may be mixed.
 */
int cli_parse(Cli *cli, int argc, char **argv, unsigned opts, const CliExtra *extra, void (*usage)(void),
	      WsError *err);

void cli_free(Cli *cli);

/* Print err and, for usage errors, `Try "PROG --help" for more information.` */
void cli_report(const Cli *cli, const WsError *err);

/* The --version line. */
void cli_print_version(const char *progname);

/* The common option lines for --help texts. */
extern const char cli_common_help[];

#endif
