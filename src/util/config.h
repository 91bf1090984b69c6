/*
 * config.h - walship's settings, merged from four sources.
 *
 * Precedence (later wins): built-in defaults; the config file (--config FILE,
 * else $WALSHIP_CONFIG, else /etc/walship/walship.conf, which may be missing);
 * the environment (WALSHIP_<KEY> with dashes as underscores, and for S3 the
 * usual AWS_* variables); command-line options.  File lines are "key = value";
 * "#" starts a comment; values may be quoted with ' or ".
 *
 * Secrets (keys marked secret below) are never accepted on the command line.
 * A config file is refused when it is group- or world-writable (anyone could
 * point the archive elsewhere), and when it holds a secret and is
 * world-readable.
 *
 * Memory: the strings config_get and config_source return are borrowed from
 * cfg (valid until config_free); config_keys is a static table.
 */
#ifndef WALSHIP_UTIL_CONFIG_H
#define WALSHIP_UTIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

#define CONFIG_DEFAULT_PATH "/etc/walship/walship.conf"

typedef struct Config Config;

typedef struct ConfigKey {
	const char *name;    /* "compress-level" */
	const char *def;     /* default value, or NULL */
	bool secret;         /* never from the command line, never printed */
	const char *aws_env; /* AWS_* environment variable also read, or NULL */
	const char *help;    /* one line for --help and the README */
} ConfigKey;

/* The table of known keys, terminated by a NULL name. */
const ConfigKey *config_keys(void);

Config *config_new(void);
void config_free(Config *cfg);

/*
 * Record a command-line value.  An unknown key, or a secret, is a usage error
 * (WS_USAGE) whose message names the option.
 */
int config_set_option(Config *cfg, const char *key, const char *value, WsError *err);

/*
 * Read the config file and the environment.  explicit_path is --config's value
 * or NULL.  A named file (--config or $WALSHIP_CONFIG) that is missing is an
 * error; the default path may be missing.  Bad syntax, unknown keys and loose
 * permissions are errors (WS_USAGE for syntax/keys, WS_FATAL for permissions)
 * naming the file and line.  default_path may be NULL for CONFIG_DEFAULT_PATH.
 */
int config_load(Config *cfg, const char *explicit_path, const char *default_path, WsError *err);

/*
 * The parsing part of config_load: the len bytes at buf are the text of the
 * configuration file path (named in messages), taken as the file's values.
 * buf must have room for len + 1 bytes: lines are cut in place.
 * *holds_secret is set when a secret key gets a value.  Errors as
 * config_load's for syntax and unknown keys.
 */
int config_parse_text(Config *cfg, const char *path, char *buf, size_t len, bool *holds_secret, WsError *err);

/* The merged value, or NULL if unset with no default. */
const char *config_get(const Config *cfg, const char *key);

/* Where the value came from: "default", "configuration file \"F\"", "environment variable WALSHIP_X",
 * "command line". */
const char *config_source(const Config *cfg, const char *key);

/* The configuration file's own value, NULL if the file sets none, whatever the environment or the
 * command line say; *source (if not NULL) gets config_source's wording for the file. */
const char *config_file_value(const Config *cfg, const char *key, const char **source);

/* Parse an integer value in [min, max]; error names the key and its source. */
int config_get_int(const Config *cfg, const char *key, long min, long max, long *out, WsError *err);

/*
 * Refuse a file holding secrets that is world-readable, or group- or
 * world-writable (Debian's root:postgres 0640 is fine).  WS_FATAL with a hint
 * giving the chmod to run.
 */
int config_check_secret_file(const char *path, WsError *err);

#endif
