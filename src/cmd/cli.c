/* cli.c - option parsing shared by walship, walship-push and walship-fetch. */
#include "cmd/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

const char cli_common_help[] =
	"Common options:\n"
	"  --repo=URL            repository: /abs/path, file:///abs/path,\n"
	"                        sftp://user@host[:port]/path or s3://bucket[/prefix]\n"
	"  --config=FILE         configuration file (default $WALSHIP_CONFIG, else\n"
	"                        " CONFIG_DEFAULT_PATH ")\n"
	"  --compress-level=N    zstd level for new objects (-7 to 19, default 1)\n"
	"  -q, --quiet           print errors only\n"
	"  -v, --verbose         print progress (twice for debug)\n"
	"  --log-level=LEVEL     error, warning, info or debug\n"
	"  --help                show this help and exit\n"
	"  --version             show the version and exit\n";

enum {
	OPT_REPO = 256,
	OPT_CONFIG,
	OPT_COMPRESS_LEVEL,
	OPT_LOG_LEVEL,
	OPT_HELP,
	OPT_VERSION,
	OPT_MODE,
	OPT_EPOCH,
};

void cli_print_version(const char *progname)
{
	printf("%s (walship) %s\n", progname, WALSHIP_VERSION);
}

#define MAX_LONGOPTS 64

int cli_parse(Cli *cli, int argc, char **argv, unsigned opts, const CliExtra *extra, void (*usage)(void),
	      WsError *err)
{
	static const struct option common[] = {
		{"repo", required_argument, NULL, OPT_REPO},
		{"config", required_argument, NULL, OPT_CONFIG},
		{"compress-level", required_argument, NULL, OPT_COMPRESS_LEVEL},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, OPT_HELP},
		{"version", no_argument, NULL, OPT_VERSION},
		{"pgdata", required_argument, NULL, 'D'},
		{"mode", required_argument, NULL, OPT_MODE},
		{"epoch", required_argument, NULL, OPT_EPOCH},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = NULL;
	const char *log_level = NULL;
	int verbose = 0, quiet = 0;
	int c, rc;

	struct option longopts[MAX_LONGOPTS];
	char shortopts[32] = ":qvD:"; /* ":" first: a missing value is reported as such */
	size_t n = 0;

	memset(cli, 0, sizeof(*cli));
	cli->progname = log_progname();
	cli->cfg = config_new();
	for (const struct option *o = common; o->name != NULL; o++)
		longopts[n++] = *o;
	if (extra != NULL) {
		for (const struct option *o = extra->longopts; o != NULL && o->name != NULL; o++)
			if (n < MAX_LONGOPTS - 1)
				longopts[n++] = *o;
		if (extra->shortopts != NULL)
			strncat(shortopts, extra->shortopts, sizeof(shortopts) - strlen(shortopts) - 1);
	}
	memset(&longopts[n], 0, sizeof(longopts[n]));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case OPT_REPO:
			if ((rc = config_set_option(cli->cfg, "repo", optarg, err)) != 0)
				return rc;
			break;
		case OPT_COMPRESS_LEVEL:
			if ((rc = config_set_option(cli->cfg, "compress-level", optarg, err)) != 0)
				return rc;
			break;
		case OPT_CONFIG:
			config_path = optarg;
			break;
		case OPT_LOG_LEVEL:
			if (log_level_parse(optarg) < 0)
				return ws_error(err, WS_USAGE,
						"invalid value \"%s\" for --log-level: use error, warning, "
						"info or debug",
						optarg);
			log_level = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'v':
			verbose++;
			break;
		case OPT_HELP:
			usage();
			cli->done = 1;
			return 0;
		case OPT_VERSION:
			cli_print_version(cli->progname);
			cli->done = 1;
			return 0;
		case 'D':
			if (!(opts & CLI_OPT_PGDATA))
				goto unknown;
			cli->pgdata = optarg;
			break;
		case OPT_MODE:
			if (!(opts & CLI_OPT_MODE))
				goto unknown;
			cli->mode = optarg;
			break;
		case OPT_EPOCH:
			if (!(opts & CLI_OPT_EPOCH))
				goto unknown;
			cli->epoch = optarg;
			break;
		case ':':
			return ws_error(err, WS_USAGE, "option \"%s\" requires a value", argv[optind - 1]);
		case '?':
		unknown:
			if (optopt != 0 && optopt < 256)
				return ws_error(err, WS_USAGE, "invalid option \"-%c\"", optopt);
			return ws_error(err, WS_USAGE, "invalid option \"%s\"", argv[optind - 1]);
		default:
			if (extra == NULL || extra->handle == NULL)
				goto unknown;
			if ((rc = extra->handle(extra->ctx, c, optarg, err)) != 0)
				return rc;
			break;
		}
	}
	cli->argc = argc - optind;
	cli->argv = argv + optind;

	if ((rc = config_load(cli->cfg, config_path, NULL, err)) != 0) {
		cli->config_error = 1;
		return rc;
	}

	/* Command-line verbosity beats the configured log level. */
	if (log_level != NULL)
		config_set_option(cli->cfg, "log-level", log_level, NULL);
	const char *lvl = config_get(cli->cfg, "log-level");
	int level = lvl ? log_level_parse(lvl) : LOG_LEVEL_WARNING;
	if (level < 0) {
		cli->config_error = 1;
		return ws_error(err, WS_USAGE, "invalid value \"%s\" for \"log-level\" (from %s)", lvl,
				config_source(cli->cfg, "log-level"));
	}
	if (quiet)
		level = LOG_LEVEL_ERROR;
	if (verbose)
		level = verbose > 1 ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
	log_set_level((LogLevel)level);

	long clevel;
	if ((rc = config_get_int(cli->cfg, "compress-level", -7, 19, &clevel, err)) != 0) {
		cli->config_error = 1;
		return rc;
	}
	return 0;
}

void cli_free(Cli *cli)
{
	config_free(cli->cfg);
	cli->cfg = NULL;
}

void cli_report(const Cli *cli, const WsError *err)
{
	log_report(err);
	if (err->cls == WS_USAGE)
		fprintf(stderr, "Try \"%s --help\" for more information.\n", cli->progname);
}
