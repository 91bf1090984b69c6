/*
 * cli.h - the command lines of walship, walship-push and walship-fetch, read
 * from one table of options per command.
 *
 * A command's table (CliOption rows) names each option once: its long name,
 * its short letter, the name of its value, the setter that stores it and its
 * --help text.  getopt_long's table, the --help text and the unknown-option
 * suggestions all come from the rows, and tests/integration/test_help.py
 * checks each command's --help against its section of the man page.  The
 * options every program shares (--repo, --config, -q, -v, --help...) are
 * cli.c's own table.
 *
 * Two steps, so that a command line with several mistakes reports the same
 * one whatever the command:
 *   cli_parse  reads the whole line with the union of every table (so that an
 *              option of another command is "not valid for" this one rather
 *              than unknown), applies the common options at once, prints
 *              --help or --version, loads the configuration and keeps the
 *              command's own options as given;
 *   cli_apply  checks required and mutually exclusive options and runs the
 *              setters, in table order, into the command's options struct.
 * walship's commands run through cli_run, which refuses another command's
 * options and extra arguments before calling the command's run function.
 */
#ifndef WALSHIP_CMD_CLI_H
#define WALSHIP_CMD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/config.h"
#include "util/error.h"

typedef struct CliOption CliOption;
typedef struct Cli Cli;

/*
 * Stores value (NULL for an option without one) into the struct at dst, at
 * the row's offset; a usage error, naming the option, when it does not parse.
 */
typedef int (*CliSetter)(void *dst, const CliOption *opt, const char *value, WsError *err);

/* CliOption.flags */
enum {
	CLI_REPEAT = 1 << 0, /* repeatable: the setter sees every value, in order (else only the last) */
	CLI_ONE_OF = 1 << 1, /* at most one option so flagged (and only once) per command line */
};

struct CliOption {
	const char *name;     /* long name, without "--"; NULL ends a table */
	const char *letters;  /* short options, e.g. "d", or NULL; "?" is recognised without getopt */
	const char *value;    /* the value's name in --help ("SECONDS"); NULL: the option takes none */
	CliSetter set;        /* NULL: cli.c handles it (only among the common options) */
	size_t offset;        /* of the field set, in the struct given to cli_apply */
	long min, max;        /* the numeric setters' range; cli_set_age: max only (0: none) */
	int tag;              /* for a program's own setter: which of its kinds the row is */
	unsigned flags;       /* CLI_REPEAT, CLI_ONE_OF */
	const char *required; /* non-NULL: must be given, and this is the hint when it is not */
	const char *help;     /* --help text: lines of at most 56 columns, separated by \n */
};

/*
 * The setters of common kinds, and macros that name the setter and check at
 * compile time that the field has the type it stores:
 * {.name = "json", CLI_FLAG(ListArgs, json), .help = "..."}.
 */
int cli_set_flag(void *dst, const CliOption *opt, const char *value, WsError *err);   /* bool = true */
int cli_set_string(void *dst, const CliOption *opt, const char *value, WsError *err); /* borrowed */
int cli_set_int(void *dst, const CliOption *opt, const char *value, WsError *err);    /* min..max */
int cli_set_age(void *dst, const CliOption *opt, const char *value, WsError *err);    /* int64_t s */

#define CLI_FIELD(T, f, type) _Generic(((T *)0)->f, type : offsetof(T, f))
#define CLI_FLAG(T, f)        .set = cli_set_flag, .offset = CLI_FIELD(T, f, bool)
#define CLI_STRING(T, f)      .set = cli_set_string, .offset = CLI_FIELD(T, f, const char *)
#define CLI_INT(T, f)         .set = cli_set_int, .offset = CLI_FIELD(T, f, int)
#define CLI_AGE(T, f)         .set = cli_set_age, .offset = CLI_FIELD(T, f, int64_t)

/*
 * The whole number at s from min to max (as strtol reads it, all of s), the
 * core of the numeric setters; false when it is not one.
 */
bool cli_parse_long(const char *s, long min, long max, long *out);

/*
 * A command (walship's init, rebuild...) or a whole program (the hooks, and
 * walship's own overview).  Its --help is, in this order: "TITLE - about",
 * Usage, notes, the list of commands (walship's overview), Options (its
 * table), Common options (with -D first when pgdata is set), Examples and
 * epilog.  TITLE is the program's name, followed by the command's.
 */
typedef struct CliCommand {
	const char *name;             /* "rebuild"; NULL for a whole program */
	const char *about;            /* one line, no final period: what it does */
	const char *usage;            /* usage lines, separated by \n */
	const char *notes;            /* NULL, or a paragraph after the usage */
	const CliOption *options;     /* its own options; NULL for none */
	const char *pgdata;           /* -D's --help text for it; NULL: its --help does not show -D */
	const char *examples;         /* NULL, or command lines, separated by \n */
	const char *epilog;           /* the exit status and anything after it */
	int args;                     /* positional arguments after the command that cli_run allows */
	int (*run)(Cli *, WsError *); /* walship's commands: called by cli_run */
} CliCommand;

typedef struct CliProgram {
	const CliCommand *self;            /* the program's help, and the hooks' own options */
	const CliCommand *const *commands; /* walship's commands, NULL-terminated; NULL for a hook */
} CliProgram;

/* An option of the command given on the command line (the common ones are applied at once). */
typedef struct CliGiven {
	const char *name;  /* its long name, also when given by its letter or abbreviated */
	const char *value; /* NULL for an option without a value */
} CliGiven;

struct Cli {
	const char *progname;
	const CliProgram *program;
	Config *cfg;
	const char *pgdata;        /* -D, or NULL */
	const char *config_path;   /* --config, or NULL */
	const char *command_name;  /* walship: the first positional argument, or NULL */
	const CliCommand *command; /* the command named (the hooks: the program itself), or NULL */
	int argc;                  /* the positional arguments (after walship's command) */
	char **argv;
	CliGiven *given; /* the command's options in command-line order (owned) */
	int n_given;
	int done;         /* --help or --version printed: exit 0 */
	int config_error; /* the failure came from the configuration, not the command line */
	int unknown;      /* the failure is an unknown option: the Try line names the command */
};

/*
 * Parse argv and load the configuration.  Returns 0 (cli filled, config
 * loaded, log level set; or done), or WS_USAGE / another class with err
 * filled (the caller prints it with cli_report).  Options and positional
 * arguments may be mixed.  An unknown option's error says which command it
 * was given to and suggests the nearest valid options.  Free with cli_free,
 * also after an error.
 */
int cli_parse(Cli *cli, int argc, char **argv, const CliProgram *program, WsError *err);

/*
 * Check and store the options given for cli->command into dst (the struct its
 * rows' offsets are in), in the order of its table: a missing required
 * option, then two CLI_ONE_OF options, then the first setter that fails.
 */
int cli_apply(const Cli *cli, void *dst, WsError *err);

/*
 * walship's commands: "no command given", an unknown command, an option of
 * another command ("not valid for"), an unexpected argument, or what the
 * command's run function returns.
 */
int cli_run(Cli *cli, WsError *err);

/*
 * Print the help of the command called name (NULL: the program's own) to
 * stdout.  WS_USAGE, err filled, when there is no such command.
 */
int cli_print_help(const Cli *cli, const char *name, WsError *err);

void cli_free(Cli *cli);

/*
 * Print err and, for usage errors, `Try "PROG --help" for more information.`
 * (`PROG COMMAND --help` for an unknown option given to a known command; the
 * other usage errors keep the line they always had).
 */
void cli_report(const Cli *cli, const WsError *err);

/* The --version line. */
void cli_print_version(const char *progname);

/*
 * The options of table that are nearest to the mistyped name (an option
 * without its "--" and "=value"): those it begins (an ambiguous
 * abbreviation), else those within a small edit distance, and -D's pgdata when
 * with_pgdata; as "\"--a\" or \"--b\"" in out, empty when none is near.
 */
void cli_suggest(const CliOption *table, bool with_pgdata, const char *name, char *out, size_t size);

#endif
