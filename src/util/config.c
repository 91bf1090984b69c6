/*
 * config.c - walship's settings from defaults, one config file, the
 * environment and the command line.
 *
 * Every key keeps one slot per source; config_get answers from the strongest
 * source that has a value, so the order in which sources are read does not
 * matter.  Secret values are stored like any other but never appear in a
 * message.
 *
 * File syntax, line by line: blank lines and lines whose first non-blank
 * character is "#" are ignored; otherwise "key = value" with blanks around key
 * and value trimmed.  An unquoted value ends at a "#" that follows a blank
 * (a trailing comment); a "#" inside a word is kept.  A value may be wrapped
 * in matching ' or " quotes, which are removed (no escapes); after the closing
 * quote only blanks or a comment may follow.  A repeated key: the last wins.
 */
#include "util/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/mem.h"

#define CONFIG_FILE_MAX (64 * 1024)

/* Sources from weakest to strongest. */
enum { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_OPTION, SRC_COUNT };

static const ConfigKey keys[] = {
	{"repo", NULL, false, NULL,
	 "repository URL: /abs/path, file:///abs/path, sftp://user@host[:port]/path or s3://bucket[/prefix]"},
	{"compress-level", "1", false, NULL, "zstd compression level"},
	{"log-level", "warning", false, NULL, "error, warning, info or debug"},
	{"spool-path", "/var/spool/walship", false, NULL,
	 "directory for parallel-push records and prefetched files (outside the data directory)"},
	{"io-timeout", "60", false, NULL, "seconds to wait on a stalled network or storage operation"},
	{"push-parallel", "4", false, NULL, "WAL files walship-push stores at once (1: one at a time)"},
	{"fetch-ahead", "8", false, NULL, "WAL segments walship-fetch prefetches during recovery (0: off)"},
	{"spool-max-size", "1024", false, NULL, "MiB the prefetched files in spool-path may take"},
	{"s3-endpoint", NULL, false, NULL, "S3 endpoint URL (default: AWS for the region)"},
	{"s3-region", NULL, false, "AWS_REGION", "S3 region"},
	{"s3-uri-style", "host", false, NULL, "S3 addressing: host (virtual-hosted) or path"},
	{"s3-key", NULL, true, "AWS_ACCESS_KEY_ID", "S3 access key id (secret)"},
	{"s3-key-secret", NULL, true, "AWS_SECRET_ACCESS_KEY", "S3 secret access key (secret)"},
	{"s3-token", NULL, true, "AWS_SESSION_TOKEN", "S3 session token (secret)"},
	{"s3-profile", "default", false, "AWS_PROFILE",
	 "profile read from ~/.aws/credentials when no key is set"},
	{"s3-ca-file", NULL, false, NULL, "CA certificates (PEM) to verify the S3 endpoint with"},
	{"s3-allow-http", "off", false, NULL, "on: allow a plain http:// endpoint that is not on loopback"},
	{"s3-part-size", "16", false, NULL, "MiB per multipart-upload part (5 to 5120)"},
	{"sftp-key-file", NULL, false, NULL,
	 "SSH private key (default: ssh-agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa)"},
	{"sftp-key-passphrase", NULL, true, NULL, "passphrase of sftp-key-file (secret)"},
	{"sftp-known-hosts", "~/.ssh/known_hosts", false, NULL,
	 "known_hosts file the server's host key is checked against"},
	{"sftp-host-key-check", "strict", false, NULL,
	 "strict: refuse unknown host keys; accept-new: record the key of a host with no entry"},
	{"sftp-dir-sync", "exec", false, NULL,
	 "exec: run sync on the server after each put; off: trust the server"},
	{"encryption-key-file", NULL, false, NULL,
	 "file holding the repository's key (encrypted repositories)"},
	{"encryption-passphrase", NULL, true, NULL, "passphrase of an encrypted repository (secret)"},
	{NULL, NULL, false, NULL, NULL},
};

#define KEY_COUNT (sizeof(keys) / sizeof(keys[0]) - 1)

struct Config {
	char *value[KEY_COUNT][SRC_COUNT]; /* SRC_DEFAULT unused: defaults come from keys[] */
	char *env_source[KEY_COUNT];       /* "environment variable X" for the variable used */
	char *file_source;                 /* "configuration file \"F\"" */
};

const ConfigKey *config_keys(void)
{
	return keys;
}

static int key_index(const char *name)
{
	for (size_t i = 0; i < KEY_COUNT; i++)
		if (strcmp(keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

Config *config_new(void)
{
	return xcalloc(1, sizeof(Config));
}

static void set_slot(Config *cfg, size_t k, int src, const char *value)
{
	free(cfg->value[k][src]);
	cfg->value[k][src] = value ? xstrdup(value) : NULL;
}

static void clear_source(Config *cfg, int src)
{
	for (size_t k = 0; k < KEY_COUNT; k++) {
		free(cfg->value[k][src]);
		cfg->value[k][src] = NULL;
		if (src == SRC_ENV) {
			free(cfg->env_source[k]);
			cfg->env_source[k] = NULL;
		}
	}
	if (src == SRC_FILE) {
		free(cfg->file_source);
		cfg->file_source = NULL;
	}
}

void config_free(Config *cfg)
{
	if (cfg == NULL)
		return;
	for (int src = 0; src < SRC_COUNT; src++)
		clear_source(cfg, src);
	free(cfg);
}

/* "WALSHIP_S3_KEY" for "s3-key", malloc'd. */
static char *env_name(const char *key)
{
	char *name = xasprintf("WALSHIP_%s", key);
	for (char *p = name + strlen("WALSHIP_"); *p; p++)
		*p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
	return name;
}

int config_set_option(Config *cfg, const char *key, const char *value, WsError *err)
{
	int k = key_index(key);
	if (k < 0) {
		ws_error(err, WS_USAGE, "unrecognized option \"--%s\"", key);
		ws_error_hint(err, "See \"walship --help\" and walship.conf(5) for the valid options.");
		return WS_USAGE;
	}
	if (keys[k].secret) {
		char *var = env_name(key);
		ws_error(err, WS_USAGE,
			 "option \"--%s\" is refused: secrets are not accepted on the command line "
			 "because they would show in ps and in archive_command",
			 key);
		ws_error_hint(err,
			      "Put \"%s\" in the configuration file (mode 0600 or 0640) or set %s%s%s in the "
			      "environment.",
			      key, var, keys[k].aws_env ? " or " : "",
			      keys[k].aws_env ? keys[k].aws_env : "");
		free(var);
		return WS_USAGE;
	}
	if (value == NULL)
		return ws_error(err, WS_USAGE, "option \"--%s\" requires a value", key);
	/* An empty value counts as unset, whatever its source. */
	set_slot(cfg, (size_t)k, SRC_OPTION, value[0] ? value : NULL);
	return 0;
}

/* Refuse loose permissions: what (e.g. "configuration file") names the file in messages. */
static int check_mode(const char *what, const char *path, mode_t mode, bool holds_secret, WsError *err)
{
	unsigned perm = (unsigned)(mode & 07777);
	if (mode & (S_IWGRP | S_IWOTH)) {
		ws_error(err, WS_FATAL, "%s \"%s\" is writable by other users", what, path);
		ws_error_detail(err,
				"Its mode is %04o: other users could change where and how WAL is archived.",
				perm);
		ws_error_hint(err, "Run \"chmod go-w %s\".", path);
		return WS_FATAL;
	}
	if (holds_secret && (mode & S_IROTH)) {
		ws_error(err, WS_FATAL, "%s \"%s\" holds secrets and is readable by every user", what, path);
		ws_error_detail(err, "Its mode is %04o.", perm);
		ws_error_hint(err, "Run \"chmod o-rwx %s\" (root:postgres 0640 is fine).", path);
		return WS_FATAL;
	}
	return 0;
}

int config_check_secret_file(const char *path, WsError *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return ws_error_errno(err, WS_FATAL, errno, "could not open file \"%s\"", path);
	int rc = 0;
	if (fstat(fd, &st) != 0)
		rc = ws_error_errno(err, WS_FATAL, errno, "could not stat file \"%s\"", path);
	else
		rc = check_mode("file", path, st.st_mode, true, err);
	close(fd);
	return rc;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/*
 * Split one NUL-terminated line in place.  Returns 1 for a blank or comment
 * line, 0 with *key and *value set, -1 with *why set on a syntax error.
 */
static int parse_line(char *line, char **key, char **value, const char **why)
{
	char *p = line;
	while (is_blank(*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 1;

	char *eq = strchr(p, '=');
	if (eq == NULL) {
		*why = "Expected \"key = value\".";
		return -1;
	}
	char *kend = eq;
	while (kend > p && is_blank(kend[-1]))
		kend--;
	if (kend == p) {
		*why = "The key before \"=\" is missing.";
		return -1;
	}
	*kend = '\0';
	*key = p;

	char *v = eq + 1;
	while (is_blank(*v))
		v++;
	if (*v == '"' || *v == '\'') {
		char *close = strchr(v + 1, *v);
		if (close == NULL) {
			*why = "The quoted value is not closed.";
			return -1;
		}
		*close = '\0';
		char *rest = close + 1;
		while (is_blank(*rest))
			rest++;
		if (*rest != '\0' && *rest != '#') {
			*why = "Only a comment may follow a quoted value.";
			return -1;
		}
		*value = v + 1;
		return 0;
	}

	/* v[-1] is "=" or a blank, so the first "#" can be checked like the others. */
	char *end = v;
	while (*end != '\0' && !(*end == '#' && is_blank(end[-1])))
		end++;
	while (end > v && is_blank(end[-1]))
		end--;
	*end = '\0';
	*value = v;
	return 0;
}

int config_parse_text(Config *cfg, const char *path, char *buf, size_t len, bool *holds_secret, WsError *err)
{
	char *line = buf;
	free(cfg->file_source);
	cfg->file_source = xasprintf("configuration file \"%s\"", path);
	unsigned lineno = 0;
	while (line < buf + len) {
		char *nl = memchr(line, '\n', (size_t)(buf + len - line));
		char *eol = nl ? nl : buf + len;
		char *key = NULL;
		char *value = NULL;
		const char *why = NULL;
		int rc;

		lineno++;
		if (memchr(line, '\0', (size_t)(eol - line)) != NULL) {
			why = "The line holds a NUL byte.";
			rc = -1;
		} else {
			*eol = '\0';
			rc = parse_line(line, &key, &value, &why);
		}
		if (rc < 0) {
			ws_error(err, WS_USAGE, "syntax error in configuration file \"%s\" line %u", path,
				 lineno);
			ws_error_detail(err, "%s", why);
			return WS_USAGE;
		}
		if (rc == 0) {
			int k = key_index(key);
			if (k < 0) {
				ws_error(err, WS_USAGE,
					 "unrecognized configuration key \"%s\" in configuration file \"%s\" "
					 "line %u",
					 key, path, lineno);
				ws_error_hint(
					err,
					"See walship.conf(5) or the README's \"Configuration\" section for "
					"the valid keys.");
				return WS_USAGE;
			}
			set_slot(cfg, (size_t)k, SRC_FILE, value[0] ? value : NULL);
			if (keys[k].secret && value[0])
				*holds_secret = true;
		}
		line = eol + 1;
	}
	return 0;
}

static int load_file(Config *cfg, const char *path, bool named, WsError *err)
{
	struct stat st;
	char *buf = NULL;
	bool holds_secret = false;
	int rc = 0;
	/* O_NONBLOCK: a FIFO given as the file must not hang the archiver. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT && !named)
			return 0;
		return ws_error_errno(err, WS_FATAL, errno, "could not open configuration file \"%s\"", path);
	}
	/* Check the file we read, not the name: it may be replaced in between. */
	if (fstat(fd, &st) != 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not stat configuration file \"%s\"", path);
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = ws_error(err, WS_FATAL, "configuration file \"%s\" is not a regular file", path);
		goto done;
	}
	rc = check_mode("configuration file", path, st.st_mode, false, err);
	if (rc != 0)
		goto done;

	buf = xmalloc(CONFIG_FILE_MAX + 1);
	ssize_t n = fs_read_full(fd, buf, CONFIG_FILE_MAX + 1);
	if (n < 0) {
		rc = ws_error_errno(err, WS_FATAL, errno, "could not read configuration file \"%s\"", path);
		goto done;
	}
	if ((size_t)n > CONFIG_FILE_MAX) {
		rc = ws_error(err, WS_FATAL, "configuration file \"%s\" is larger than %d bytes", path,
			      CONFIG_FILE_MAX);
		goto done;
	}
	rc = config_parse_text(cfg, path, buf, (size_t)n, &holds_secret, err);
	if (rc != 0)
		goto done;
	rc = check_mode("configuration file", path, st.st_mode, holds_secret, err);

done:
	if (rc != 0)
		clear_source(cfg, SRC_FILE);
	free(buf);
	close(fd);
	return rc;
}

static void load_env(Config *cfg)
{
	for (size_t k = 0; k < KEY_COUNT; k++) {
		char *name = env_name(keys[k].name);
		const char *used = name;
		const char *v = getenv(name);
		/* An empty variable counts as unset; WALSHIP_* wins over AWS_*. */
		if ((v == NULL || v[0] == '\0') && keys[k].aws_env) {
			used = keys[k].aws_env;
			v = getenv(used);
		}
		if (v != NULL && v[0] != '\0') {
			set_slot(cfg, k, SRC_ENV, v);
			cfg->env_source[k] = xasprintf("environment variable %s", used);
		}
		free(name);
	}
}

int config_load(Config *cfg, const char *explicit_path, const char *default_path, WsError *err)
{
	const char *path = explicit_path;
	bool named = true;

	if (path == NULL) {
		const char *env = getenv("WALSHIP_CONFIG");
		if (env != NULL && env[0] != '\0')
			path = env;
	}
	if (path == NULL) {
		path = default_path ? default_path : CONFIG_DEFAULT_PATH;
		named = false;
	}
	clear_source(cfg, SRC_FILE);
	clear_source(cfg, SRC_ENV);
	int rc = load_file(cfg, path, named, err);
	if (rc != 0)
		return rc;
	load_env(cfg);
	return 0;
}

const char *config_get(const Config *cfg, const char *key)
{
	int k = key_index(key);
	if (k < 0)
		return NULL;
	for (int src = SRC_COUNT - 1; src > SRC_DEFAULT; src--)
		if (cfg->value[k][src] != NULL)
			return cfg->value[k][src];
	return keys[k].def;
}

const char *config_source(const Config *cfg, const char *key)
{
	int k = key_index(key);
	if (k < 0)
		return NULL;
	if (cfg->value[k][SRC_OPTION] != NULL)
		return "command line";
	if (cfg->value[k][SRC_ENV] != NULL)
		return cfg->env_source[k];
	if (cfg->value[k][SRC_FILE] != NULL)
		return cfg->file_source;
	return "default";
}

const char *config_file_value(const Config *cfg, const char *key, const char **source)
{
	int k = key_index(key);
	if (source != NULL)
		*source = cfg->file_source;
	return k < 0 ? NULL : cfg->value[k][SRC_FILE];
}

int config_get_int(const Config *cfg, const char *key, long min, long max, long *out, WsError *err)
{
	int k = key_index(key);
	if (k < 0)
		return ws_error(err, WS_USAGE, "unrecognized configuration key \"%s\"", key);
	const char *v = config_get(cfg, key);
	if (v == NULL) {
		char *var = env_name(key);
		ws_error(err, WS_USAGE, "no value set for \"%s\"", key);
		ws_error_hint(err, "Set it in the configuration file, in %s or with --%s.", var, key);
		free(var);
		return WS_USAGE;
	}
	char *end = NULL;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (end == v || *end != '\0' || errno == ERANGE || n < min || n > max) {
		if (keys[k].secret)
			return ws_error(
				err, WS_USAGE,
				"invalid value for \"%s\" (from %s): must be an integer between %ld and %ld",
				key, config_source(cfg, key), min, max);
		return ws_error(
			err, WS_USAGE,
			"invalid value \"%s\" for \"%s\" (from %s): must be an integer between %ld and %ld",
			v, key, config_source(cfg, key), min, max);
	}
	*out = n;
	return 0;
}
