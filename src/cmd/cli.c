/* cli.c - option tables, parsing and --help for walship, walship-push and walship-fetch. */
#include "cmd/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/mem.h"

/* Where the help text of an option starts. */
#define HELP_COLUMN 24

/* getopt_long's val for the row at index i of the union table (above every letter). */
#define VAL_BASE 256

/* Rows in the union of every table of a program: walship has about 40 options. */
#define MAX_ROWS 96

/* The common options' values, applied while the command line is read. */
typedef struct Common {
	Config *cfg;
	const char *pgdata;
	const char *config_path;
	const char *log_level;
	bool quiet;
	int verbose;
	bool help;
	bool version;
} Common;

static int set_config(void *dst, const CliOption *opt, const char *value, WsError *err);
static int set_log_level(void *dst, const CliOption *opt, const char *value, WsError *err);
static int count(void *dst, const CliOption *opt, const char *value, WsError *err);

/* The options of every program, in the order of their --help lines (-D's text is the command's). */
static const CliOption common_options[] = {
	{.name = "pgdata", .letters = "D", .value = "DIR", CLI_STRING(Common, pgdata)},
	{.name = "repo",
	 .value = "URL",
	 .set = set_config,
	 .help = "repository: /abs/path, file:///abs/path,\n"
		 "sftp://user@host[:port]/path or s3://bucket[/prefix]"},
	{.name = "config",
	 .value = "FILE",
	 CLI_STRING(Common, config_path),
	 .help = "configuration file (default $WALSHIP_CONFIG, else\n" CONFIG_DEFAULT_PATH ")"},
	{.name = "compress-level",
	 .value = "N",
	 .set = set_config,
	 .help = "zstd level for new objects (-7 to 19, default 1)"},
	{.name = "quiet", .letters = "q", CLI_FLAG(Common, quiet), .help = "print errors only"},
	{.name = "verbose", .letters = "v", .set = count, .help = "print progress (twice for debug)"},
	{.name = "log-level",
	 .value = "LEVEL",
	 .set = set_log_level,
	 .help = "error, warning, info or debug"},
	{.name = "help", .letters = "?h", CLI_FLAG(Common, help), .help = "show this help and exit"},
	{.name = "version", CLI_FLAG(Common, version), .help = "show the version and exit"},
	{0},
};

/* ---- setters ---- */

static void *field(void *dst, const CliOption *opt)
{
	return (char *)dst + opt->offset;
}

int cli_set_flag(void *dst, const CliOption *opt, const char *value, WsError *err)
{
	(void)value, (void)err;
	*(bool *)field(dst, opt) = true;
	return 0;
}

int cli_set_string(void *dst, const CliOption *opt, const char *value, WsError *err)
{
	(void)err;
	*(const char **)field(dst, opt) = value;
	return 0;
}

bool cli_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

int cli_set_int(void *dst, const CliOption *opt, const char *value, WsError *err)
{
	long v;
	if (!cli_parse_long(value, opt->min, opt->max, &v))
		return ws_error(err, WS_USAGE,
				"invalid value \"%s\" for --%s: use a whole number from %ld to %ld", value,
				opt->name, opt->min, opt->max);
	*(int *)field(dst, opt) = (int)v;
	return 0;
}

/* "3600", "90s", "30min", "12h", "7d": seconds, up to 100 years, and up to opt->max when set. */
int cli_set_age(void *dst, const CliOption *opt, const char *value, WsError *err)
{
	static const struct {
		const char *suffix;
		long mult;
	} units[] = {{"", 1}, {"s", 1}, {"min", 60}, {"h", 3600}, {"d", 86400}};
	char *end;
	errno = 0;
	long long v = strtoll(value, &end, 10);
	if (errno == 0 && end != value && v >= 0 && value[0] != '-' && value[0] != '+') {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strcmp(end, units[i].suffix) != 0 || v > 100LL * 365 * 86400 / units[i].mult)
				continue;
			int64_t secs = (int64_t)(v * units[i].mult);
			if (opt->max > 0 && secs > opt->max)
				return ws_error(err, WS_USAGE,
						"invalid value \"%s\" for --%s: at most %ld days", value,
						opt->name, opt->max / 86400);
			*(int64_t *)field(dst, opt) = secs;
			return 0;
		}
	}
	ws_error(err, WS_USAGE, "invalid value \"%s\" for --%s", value, opt->name);
	ws_error_hint(err, "Give seconds, or a number with the suffix s, min, h or d (e.g. 6h).");
	return WS_USAGE;
}

/* --repo, --compress-level: the setting of the same name. */
static int set_config(void *dst, const CliOption *opt, const char *value, WsError *err)
{
	return config_set_option(((Common *)dst)->cfg, opt->name, value, err);
}

static int set_log_level(void *dst, const CliOption *opt, const char *value, WsError *err)
{
	(void)opt;
	if (log_level_parse(value) < 0)
		return ws_error(err, WS_USAGE,
				"invalid value \"%s\" for --log-level: use error, warning, info or debug",
				value);
	((Common *)dst)->log_level = value;
	return 0;
}

static int count(void *dst, const CliOption *opt, const char *value, WsError *err)
{
	(void)opt, (void)value, (void)err;
	((Common *)dst)->verbose++;
	return 0;
}

/* ---- tables ---- */

static const CliOption *find_row(const CliOption *table, const char *name)
{
	for (const CliOption *o = table; o != NULL && o->name != NULL; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

/* getopt_long's tables for the union of the common options and every table of the program. */
typedef struct Union {
	const CliOption *rows[MAX_ROWS];
	struct option longopts[MAX_ROWS + 1];
	char shortopts[2 * MAX_ROWS + 2];
	int n;
	int n_common; /* rows[0..n_common) are the common options */
} Union;

static int union_add(Union *u, const CliOption *table, WsError *err)
{
	for (const CliOption *o = table; o != NULL && o->name != NULL; o++) {
		bool seen = false;
		/* An option in several tables (--json) must take a value in all or in none. */
		for (int i = 0; i < u->n && !seen; i++) {
			if (strcmp(u->rows[i]->name, o->name) != 0)
				continue;
			if ((u->rows[i]->value == NULL) != (o->value == NULL))
				return ws_error(err, WS_FATAL, "option tables disagree on --%s", o->name);
			seen = true;
		}
		if (seen)
			continue;
		if (u->n == MAX_ROWS)
			return ws_error(err, WS_FATAL, "too many options (more than %d)", MAX_ROWS);
		u->rows[u->n] = o;
		u->longopts[u->n] = (struct option){o->name, o->value ? required_argument : no_argument, NULL,
						    VAL_BASE + u->n};
		for (const char *l = o->letters; l != NULL && *l != '\0'; l++) {
			if (*l == '?' || strchr(u->shortopts, *l) != NULL)
				continue;
			size_t len = strlen(u->shortopts);
			u->shortopts[len++] = *l;
			if (o->value != NULL)
				u->shortopts[len++] = ':';
			u->shortopts[len] = '\0';
		}
		u->n++;
	}
	return 0;
}

static int union_build(Union *u, const CliProgram *program, WsError *err)
{
	int rc;
	memset(u, 0, sizeof(*u));
	strcpy(u->shortopts, ":"); /* ":" first: a missing value is reported as such */
	if ((rc = union_add(u, common_options, err)) != 0)
		return rc;
	u->n_common = u->n;
	if ((rc = union_add(u, program->self->options, err)) != 0)
		return rc;
	for (const CliCommand *const *c = program->commands; c != NULL && *c != NULL; c++)
		if ((rc = union_add(u, (*c)->options, err)) != 0)
			return rc;
	return 0;
}

/* The index of the row getopt_long answered c for, or -1. */
static int union_index(const Union *u, int c)
{
	if (c >= VAL_BASE)
		return c - VAL_BASE < u->n ? c - VAL_BASE : -1;
	for (int i = 0; c > 0 && i < u->n; i++)
		if (u->rows[i]->letters != NULL && strchr(u->rows[i]->letters, c) != NULL)
			return i;
	return -1;
}

static const CliCommand *find_command(const CliProgram *program, const char *name)
{
	for (const CliCommand *const *c = program->commands; c != NULL && *c != NULL; c++)
		if (strcmp((*c)->name, name) == 0)
			return *c;
	return NULL;
}

/* ---- suggestions ---- */

#define SUGGEST_NAME_MAX 64

/* Levenshtein distance; SIZE_MAX for names too long to be a typo of an option. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t prev[SUGGEST_NAME_MAX + 1], cur[SUGGEST_NAME_MAX + 1];
	if (la > SUGGEST_NAME_MAX || lb > SUGGEST_NAME_MAX)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			cur[j] = best;
		}
		memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
	}
	return prev[lb];
}

/* How near the row is to name: 0 when name begins it, else 1 + the edit distance (SIZE_MAX: too far). */
static size_t nearness(const char *row, const char *name)
{
	size_t len = strlen(name);
	if (strncmp(row, name, len) == 0)
		return 0;
	size_t d = edit_distance(row, name);
	return d <= 2 && 2 * d <= len ? 1 + d : SIZE_MAX;
}

typedef struct Suggestion {
	const char *name;
	size_t best;
	const CliOption *found[8];
	int n;
} Suggestion;

static void consider(Suggestion *s, const CliOption *o)
{
	size_t near = nearness(o->name, s->name);
	if (near == SIZE_MAX || near > s->best)
		return;
	if (near < s->best)
		s->best = near, s->n = 0;
	if (s->n < (int)(sizeof(s->found) / sizeof(s->found[0])))
		s->found[s->n++] = o;
}

void cli_suggest(const CliOption *table, bool with_pgdata, const char *name, char *out, size_t size)
{
	char bare[SUGGEST_NAME_MAX + 1];
	Suggestion s = {bare, SIZE_MAX, {NULL}, 0};
	size_t len = strcspn(name, "=");
	out[0] = '\0';
	if (len == 0 || len > SUGGEST_NAME_MAX)
		return;
	memcpy(bare, name, len);
	bare[len] = '\0';
	for (const CliOption *o = table; o != NULL && o->name != NULL; o++)
		consider(&s, o);
	/* The common options a --help shows: -D only where the command shows it. */
	for (const CliOption *o = common_options; o->name != NULL; o++)
		if (o->help != NULL || with_pgdata)
			consider(&s, o);
	for (int i = 0; i < s.n; i++) {
		size_t used = strlen(out);
		snprintf(out + used, size - used, "%s\"--%s\"",
			 i == 0         ? ""
			 : i == s.n - 1 ? " or "
					: ", ",
			 s.found[i]->name);
	}
}

/* The error for an option getopt_long did not know (or gave a value it does not take). */
static int unknown_option(Cli *cli, const Union *u, const char *arg, int bad_optopt, WsError *err)
{
	const CliCommand *cmd = cli->command != NULL ? cli->command : cli->program->self;
	char where[128] = "", near[512];
	int i = bad_optopt >= VAL_BASE ? union_index(u, bad_optopt) : -1;
	cli->unknown = 1;
	if (cmd->name != NULL)
		snprintf(where, sizeof(where), " for %s %s", cli->progname, cmd->name);
	if (bad_optopt != 0 && bad_optopt < VAL_BASE)
		ws_error(err, WS_USAGE, "invalid option \"-%c\"%s", bad_optopt, where);
	else
		ws_error(err, WS_USAGE, "invalid option \"%s\"%s", arg, where);
	if (i >= 0) {
		ws_error_hint(err, "\"--%s\" takes no value.", u->rows[i]->name);
	} else if (bad_optopt == 0 && strncmp(arg, "--", 2) == 0) {
		cli_suggest(cmd->options, cmd->pgdata != NULL, arg + 2, near, sizeof(near));
		if (near[0] != '\0')
			ws_error_hint(err, "Did you mean %s?", near);
	}
	return WS_USAGE;
}

/* ---- parsing ---- */

/* What stopped the reading of options; the rest of the line is only scanned for the command. */
typedef enum Stop {
	STOP_NONE,
	STOP_HELP,
	STOP_VERSION,
	STOP_ERROR,   /* err is filled */
	STOP_UNKNOWN, /* an unknown option: reported once the command is known */
} Stop;

/* Read the options of argv; the positional arguments are left in argv[optind..]. */
static Stop read_options(Cli *cli, Common *common, const Union *u, int argc, char **argv, const char **bad,
			 int *bad_optopt, WsError *err)
{
	Stop stop = STOP_NONE;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, u->shortopts, u->longopts, NULL)) != -1) {
		if (stop != STOP_NONE)
			continue;
		int i = union_index(u, c);
		const CliOption *row = i >= 0 ? u->rows[i] : NULL;
		if (c == ':') {
			ws_error(err, WS_USAGE, "option \"%s\" requires a value", argv[optind - 1]);
			stop = STOP_ERROR;
		} else if (c == '?' && optopt == '?') {
			stop = STOP_HELP; /* -?, as PostgreSQL's tools */
		} else if (c == '?' || row == NULL) {
			*bad = argv[optind - 1];
			*bad_optopt = optopt;
			stop = STOP_UNKNOWN;
		} else if (i >= u->n_common) {
			cli->given[cli->n_given++] = (CliGiven){row->name, optarg};
		} else if (row->set(common, row, optarg, err) != 0) {
			stop = STOP_ERROR;
		} else if (common->help || common->version) {
			stop = common->help ? STOP_HELP : STOP_VERSION;
		}
	}
	return stop;
}

/* The configuration file and the environment, then the log level. */
static int load_config(Cli *cli, const Common *common, WsError *err)
{
	int rc;
	if ((rc = config_load(cli->cfg, common->config_path, NULL, err)) != 0) {
		cli->config_error = 1;
		return rc;
	}
	/* Command-line verbosity beats the configured log level. */
	if (common->log_level != NULL)
		config_set_option(cli->cfg, "log-level", common->log_level, NULL);
	const char *lvl = config_get(cli->cfg, "log-level");
	int level = lvl ? log_level_parse(lvl) : LOG_LEVEL_WARNING;
	if (level < 0) {
		cli->config_error = 1;
		return ws_error(err, WS_USAGE, "invalid value \"%s\" for \"log-level\" (from %s)", lvl,
				config_source(cli->cfg, "log-level"));
	}
	if (common->quiet)
		level = LOG_LEVEL_ERROR;
	if (common->verbose)
		level = common->verbose > 1 ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
	log_set_level((LogLevel)level);

	long clevel;
	if ((rc = config_get_int(cli->cfg, "compress-level", -7, 19, &clevel, err)) != 0) {
		cli->config_error = 1;
		return rc;
	}
	return 0;
}

int cli_parse(Cli *cli, int argc, char **argv, const CliProgram *program, WsError *err)
{
	Union u;
	Common common = {0};
	const char *bad = NULL;
	int bad_optopt = 0, rc;

	memset(cli, 0, sizeof(*cli));
	cli->progname = log_progname();
	cli->program = program;
	/* A hook's command is the program itself, known even when the line cannot be read. */
	if (program->commands == NULL)
		cli->command = program->self;
	cli->cfg = config_new();
	cli->given = xcalloc((size_t)argc + 1, sizeof(CliGiven));
	common.cfg = cli->cfg;
	if ((rc = union_build(&u, program, err)) != 0)
		return rc;
	Stop stop = read_options(cli, &common, &u, argc, argv, &bad, &bad_optopt, err);
	cli->pgdata = common.pgdata;
	cli->config_path = common.config_path;
	cli->argc = argc - optind;
	cli->argv = argv + optind;
	if (program->commands != NULL && cli->argc > 0) {
		cli->command_name = cli->argv[0];
		cli->command = find_command(program, cli->command_name);
		cli->argc--, cli->argv++;
	}

	switch (stop) {
	case STOP_HELP:
		cli_print_help(cli, cli->command != NULL ? cli->command->name : NULL, NULL);
		cli->done = 1;
		return 0;
	case STOP_VERSION:
		cli_print_version(cli->progname);
		cli->done = 1;
		return 0;
	case STOP_ERROR:
		return err->cls;
	case STOP_UNKNOWN:
		return unknown_option(cli, &u, bad, bad_optopt, err);
	case STOP_NONE:
		break;
	}
	return load_config(cli, &common, err);
}

/* ---- applying a command's options ---- */

static const CliGiven *last_given(const Cli *cli, const char *name)
{
	for (int i = cli->n_given - 1; i >= 0; i--)
		if (strcmp(cli->given[i].name, name) == 0)
			return &cli->given[i];
	return NULL;
}

int cli_apply(const Cli *cli, void *dst, WsError *err)
{
	const CliOption *table = cli->command->options;
	const CliGiven *one = NULL;
	int rc;

	for (const CliOption *o = table; o != NULL && o->name != NULL; o++) {
		if (o->required != NULL && last_given(cli, o->name) == NULL) {
			ws_error(err, WS_USAGE, "--%s is required", o->name);
			ws_error_hint(err, "%s", o->required);
			return WS_USAGE;
		}
	}
	for (int i = 0; i < cli->n_given; i++) {
		const CliOption *o = find_row(table, cli->given[i].name);
		if (o == NULL || !(o->flags & CLI_ONE_OF))
			continue;
		if (one != NULL)
			return ws_error(err, WS_USAGE,
					"options \"--%s\" and \"--%s\" cannot be used together", one->name,
					cli->given[i].name);
		one = &cli->given[i];
	}
	for (const CliOption *o = table; o != NULL && o->name != NULL; o++) {
		if (o->flags & CLI_REPEAT) {
			for (int i = 0; i < cli->n_given; i++)
				if (strcmp(cli->given[i].name, o->name) == 0 &&
				    (rc = o->set(dst, o, cli->given[i].value, err)) != 0)
					return rc;
		} else {
			const CliGiven *g = last_given(cli, o->name);
			if (g != NULL && (rc = o->set(dst, o, g->value, err)) != 0)
				return rc;
		}
	}
	return 0;
}

int cli_run(Cli *cli, WsError *err)
{
	const CliCommand *cmd = cli->command;
	if (cli->command_name == NULL)
		return ws_error(err, WS_USAGE, "no command given");
	if (cmd == NULL)
		return ws_error(err, WS_USAGE, "unknown command \"%s\"", cli->command_name);
	for (int i = 0; i < cli->n_given; i++)
		if (find_row(cmd->options, cli->given[i].name) == NULL)
			return ws_error(err, WS_USAGE, "option \"--%s\" is not valid for %s %s",
					cli->given[i].name, cli->progname, cmd->name);
	if (cli->argc > cmd->args)
		return ws_error(err, WS_USAGE, "unexpected argument \"%s\"", cli->argv[cmd->args]);
	return cmd->run(cli, err);
}

/* ---- help ---- */

/* Lines of text, each indented by indent spaces (the first by first_indent). */
static void print_lines(const char *text, int first_indent, int indent)
{
	int pad = first_indent;
	for (const char *p = text; *p != '\0';) {
		size_t len = strcspn(p, "\n");
		printf("%*s%.*s\n", pad, "", (int)len, p);
		p += len + (p[len] == '\n');
		pad = indent;
	}
}

static void print_option(const CliOption *o, const char *help)
{
	char left[128];
	int n = snprintf(left, sizeof(left), "  ");
	for (const char *l = o->letters; l != NULL && *l != '\0'; l++)
		n += snprintf(left + n, sizeof(left) - (size_t)n, "-%c, ", *l);
	snprintf(left + n, sizeof(left) - (size_t)n, "--%s%s%s", o->name, o->value ? "=" : "",
		 o->value ? o->value : "");
	if (strlen(left) < HELP_COLUMN) {
		printf("%-*s", HELP_COLUMN, left);
		print_lines(help, 0, HELP_COLUMN);
	} else {
		printf("%s\n", left);
		print_lines(help, HELP_COLUMN, HELP_COLUMN);
	}
}

static void print_help(const Cli *cli, const CliCommand *cmd)
{
	const CliProgram *program = cli->program;
	printf("%s%s%s - %s\n\nUsage:\n", cli->progname, cmd->name ? " " : "", cmd->name ? cmd->name : "",
	       cmd->about);
	print_lines(cmd->usage, 2, 2);
	if (cmd->notes != NULL) {
		printf("\n");
		print_lines(cmd->notes, 0, 0);
	}
	if (cmd == program->self && program->commands != NULL) {
		printf("\nCommands:\n");
		for (const CliCommand *const *c = program->commands; *c != NULL; c++)
			printf("  %-9s %s\n", (*c)->name, (*c)->about);
	}
	if (cmd->options != NULL && cmd->options[0].name != NULL) {
		printf("\nOptions:\n");
		for (const CliOption *o = cmd->options; o->name != NULL; o++)
			print_option(o, o->help);
	}
	printf("\nCommon options:\n");
	for (const CliOption *o = common_options; o->name != NULL; o++)
		if (o->help != NULL || cmd->pgdata != NULL)
			print_option(o, o->help != NULL ? o->help : cmd->pgdata);
	if (cmd->examples != NULL) {
		printf("\nExamples:\n");
		print_lines(cmd->examples, 2, 2);
	}
	printf("\n");
	print_lines(cmd->epilog, 0, 0);
}

int cli_print_help(const Cli *cli, const char *name, WsError *err)
{
	const CliCommand *cmd = cli->program->self;
	if (name != NULL && (cmd = find_command(cli->program, name)) == NULL)
		return ws_error(err, WS_USAGE, "unknown command \"%s\"", name);
	print_help(cli, cmd);
	return 0;
}

void cli_print_version(const char *progname)
{
	printf("%s (walship) %s\n", progname, WALSHIP_VERSION);
}

void cli_free(Cli *cli)
{
	config_free(cli->cfg);
	cli->cfg = NULL;
	free(cli->given);
	cli->given = NULL;
}

void cli_report(const Cli *cli, const WsError *err)
{
	log_report(err);
	if (err->cls != WS_USAGE)
		return;
	if (cli->unknown && cli->command != NULL && cli->command->name != NULL)
		fprintf(stderr, "Try \"%s %s --help\" for more information.\n", cli->progname,
			cli->command->name);
	else
		fprintf(stderr, "Try \"%s --help\" for more information.\n", cli->progname);
}
