/*
 * archcheck.c - the server's archive settings against a repository (walship
 * check prints each finding, walship backup stops on a failure before it
 * starts), and pg_stat_archiver.
 *
 * archive_command is read as PostgreSQL and /bin/sh would, without running
 * anything: the walship-push call, its arguments, its repository (from
 * --repo, WALSHIP_REPO=, or the configuration file it reads) and whether its
 * exit status reaches the server.
 */
#include "pg/archcheck.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg/pgcommon.h"
#include "pg/walname.h"
#include "repo/keys.h"
#include "store/s3_util.h"
#include "store/sftp_util.h"
#include "util/config.h"
#include "util/mem.h"

/* ---- reading an archive_command ---- */

/* %p and %f after PostgreSQL's substitution, kept apart from literal text. */
#define MARK_P '\x01'
#define MARK_F '\x02'

/* ---- reading an archive_command ---- */

typedef struct Word {
	char *text;
	bool dynamic; /* holds a $ or ` expansion */
	bool op;      /* an operator: text is ";", "&&", "||", "|", "&", "(", ")" or "\n" */
} Word;

typedef struct Words {
	Word *v;
	size_t n, cap;
} Words;

typedef struct Buf {
	char *s;
	size_t len, cap;
} Buf;

static void buf_add(Buf *b, char c)
{
	if (b->len + 2 > b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->s = xrealloc(b->s, b->cap);
	}
	b->s[b->len++] = c;
	b->s[b->len] = '\0';
}

static void words_add(Words *w, const char *text, size_t len, bool dynamic, bool op)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
	}
	w->v[w->n++] = (Word){xstrndup(text, len), dynamic, op};
}

static void words_free(Words *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].text);
	free(w->v);
}

/* PostgreSQL replaces %p, %f and %% before the shell sees the command; other % stay. */
static char *percent_marks(const char *cmd)
{
	Buf b = {0};
	buf_add(&b, '\0');
	b.len = 0;
	for (const char *p = cmd; *p; p++) {
		if (p[0] == '%' && (p[1] == 'p' || p[1] == 'f' || p[1] == '%')) {
			buf_add(&b, p[1] == 'p' ? MARK_P : p[1] == 'f' ? MARK_F : '%');
			p++;
		} else {
			buf_add(&b, *p);
		}
	}
	return b.s;
}

/* A copy of s with the marks shown as %p and %f again. */
static char *unmark(const char *s)
{
	Buf b = {0};
	buf_add(&b, '\0');
	b.len = 0;
	for (; *s; s++) {
		if (*s == MARK_P || *s == MARK_F) {
			buf_add(&b, '%');
			buf_add(&b, *s == MARK_P ? 'p' : 'f');
		} else {
			buf_add(&b, *s);
		}
	}
	return b.s;
}

/*
 * Split s into words and operators as /bin/sh would, without expanding
 * anything.  Redirections and their targets are dropped.  -1 on an
 * unterminated quote.
 */
static int sh_split(const char *s, Words *out)
{
	Buf b = {0};
	bool in_word = false, dynamic = false, skip_next = false;
	int rc = 0;

#define END_WORD()                                                                                           \
	do {                                                                                                 \
		if (in_word) {                                                                               \
			if (!skip_next)                                                                      \
				words_add(out, b.s ? b.s : "", b.len, dynamic, false);                       \
			skip_next = false;                                                                   \
		}                                                                                            \
		in_word = false, dynamic = false, b.len = 0;                                                 \
		if (b.s)                                                                                     \
			b.s[0] = '\0';                                                                       \
	} while (0)

	for (size_t i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		if (c == ' ' || c == '\t') {
			END_WORD();
		} else if (c == '#' && !in_word) {
			while (s[i + 1] != '\0' && s[i + 1] != '\n')
				i++;
		} else if (c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')') {
			END_WORD();
			size_t len = (c == '&' || c == '|' || c == ';') && s[i + 1] == c ? 2 : 1;
			words_add(out, s + i, len, false, true);
			i += len - 1;
		} else if (c == '<' || c == '>') {
			/* "2>file": the digits before the operator are a descriptor, not a word. */
			bool fd = in_word && b.len > 0 && strspn(b.s, "0123456789") == b.len;
			if (fd)
				in_word = false, b.len = 0;
			END_WORD();
			if (s[i + 1] == '>' || s[i + 1] == '&' || s[i + 1] == '|' ||
			    (c == '<' && s[i + 1] == '<'))
				i++;
			skip_next = true;
		} else if (c == '\'') {
			const char *end = strchr(s + i + 1, '\'');
			if (end == NULL) {
				rc = -1;
				goto done;
			}
			for (const char *p = s + i + 1; p < end; p++)
				buf_add(&b, *p);
			in_word = true;
			i = (size_t)(end - s);
		} else if (c == '"') {
			in_word = true;
			for (i++;; i++) {
				if (s[i] == '\0') {
					rc = -1;
					goto done;
				}
				if (s[i] == '"')
					break;
				if (s[i] == '\\' && s[i + 1] != '\0' &&
				    strchr("$`\"\\\n", s[i + 1]) != NULL) {
					if (s[++i] != '\n')
						buf_add(&b, s[i]);
					continue;
				}
				if (s[i] == '$' || s[i] == '`')
					dynamic = true;
				buf_add(&b, s[i]);
			}
		} else if (c == '\\') {
			if (s[i + 1] == '\0')
				continue;
			i++;
			if (s[i] == '\n')
				continue; /* a line continuation */
			buf_add(&b, s[i]);
			in_word = true;
		} else {
			if (c == '$' || c == '`')
				dynamic = true;
			buf_add(&b, c);
			in_word = true;
		}
	}
	END_WORD();
#undef END_WORD
done:
	free(b.s);
	return rc;
}

/* NAME=value with a valid shell name. */
static bool is_assignment(const char *w, const char *name, const char **value)
{
	const char *eq = strchr(w, '=');
	if (eq == NULL || eq == w || !(isalpha((unsigned char)w[0]) || w[0] == '_'))
		return false;
	for (const char *p = w; p < eq; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_'))
			return false;
	if (name != NULL && ((size_t)(eq - w) != strlen(name) || strncmp(w, name, strlen(name)) != 0))
		return false;
	if (value != NULL)
		*value = eq + 1;
	return true;
}

static bool names_walship_push(const char *w)
{
	const char *slash = strrchr(w, '/');
	return strcmp(slash ? slash + 1 : w, "walship-push") == 0;
}

/* walship-push's long options (cmd/cli.c), to read them as getopt_long does, abbreviations included. */
static const struct {
	const char *name;
	bool has_arg;
} push_options[] = {
	{"repo", true},   {"config", true},   {"compress-level", true}, {"log-level", true},
	{"quiet", false}, {"verbose", false}, {"help", false},          {"version", false},
	{"pgdata", true}, {"mode", true},     {"epoch", true},
};

static int push_option(const char *name, size_t len)
{
	int found = -1;
	for (int i = 0; i < (int)(sizeof(push_options) / sizeof(push_options[0])); i++) {
		if (strncmp(push_options[i].name, name, len) != 0)
			continue;
		if (strlen(push_options[i].name) == len)
			return i;
		found = found == -1 ? i : -2; /* -2: ambiguous */
	}
	return found;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = unmark(v);
}

/* The words of one walship-push call: options as getopt_long reads them, then %p %f. */
static void read_push_args(const Word *w, size_t n, ArchPushCall *out)
{
	Buf pos = {0};
	int npos = 0;
	bool args_ok = true, only_pos = false;

	buf_add(&pos, '\0');
	pos.len = 0;
	for (size_t i = 0; i < n; i++) {
		const char *a = w[i].text;
		if (w[i].dynamic)
			out->dynamic = true;
		if (!only_pos && strcmp(a, "--") == 0) {
			only_pos = true;
		} else if (!only_pos && strncmp(a, "--", 2) == 0) {
			const char *eq = strchr(a, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			int o = push_option(a + 2, len);
			const char *val = eq ? eq + 1 : NULL;
			if (o >= 0 && push_options[o].has_arg && val == NULL && i + 1 < n) {
				val = w[++i].text;
				if (w[i].dynamic)
					out->dynamic = true;
			}
			if (o >= 0 && val != NULL && strcmp(push_options[o].name, "repo") == 0)
				set_str(&out->repo, val);
			else if (o >= 0 && val != NULL && strcmp(push_options[o].name, "config") == 0)
				set_str(&out->config, val);
		} else if (!only_pos && a[0] == '-' && a[1] != '\0') {
			/* Clustered short options; -D takes the rest or the next word. */
			for (const char *p = a + 1; *p; p++)
				if (*p == 'D') {
					if (p[1] == '\0' && i + 1 < n)
						i++;
					break;
				}
		} else {
			char *shown = unmark(a);
			if (npos > 0)
				buf_add(&pos, ' ');
			for (const char *p = shown; *p; p++)
				buf_add(&pos, *p);
			free(shown);
			if (npos > 1 || strcmp(a, npos == 0 ? "\x01" : "\x02") != 0)
				args_ok = false;
			npos++;
		}
	}
	out->args = pos.s;
	out->args_ok = args_ok && npos == 2;
}

int archcheck_parse_command(const char *cmd, ArchPushCall *out)
{
	Words w = {0};
	char *marked = percent_marks(cmd);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (sh_split(marked, &w) != 0) {
		rc = -1;
		goto done;
	}
	for (size_t start = 0; start < w.n && rc == 0;) {
		size_t end = start;
		while (end < w.n && !w.v[end].op)
			end++;
		const char *env_repo = NULL, *env_config = NULL;
		bool env_dynamic = false;
		for (size_t j = start; j < end; j++) {
			const char *v;
			if (is_assignment(w.v[j].text, "WALSHIP_REPO", &v))
				env_repo = v, env_dynamic |= w.v[j].dynamic;
			else if (is_assignment(w.v[j].text, "WALSHIP_CONFIG", &v))
				env_config = v, env_dynamic |= w.v[j].dynamic;
			else if (!is_assignment(w.v[j].text, NULL, NULL) && names_walship_push(w.v[j].text)) {
				out->program = unmark(w.v[j].text);
				out->dynamic = w.v[j].dynamic || env_dynamic;
				read_push_args(w.v + j + 1, end - j - 1, out);
				if (out->repo == NULL && env_repo != NULL)
					set_str(&out->repo, env_repo);
				if (out->config == NULL && env_config != NULL)
					set_str(&out->config, env_config);
				/* Its status is the command's unless a later command or pipe replaces it. */
				size_t k = end;
				while (k < w.n && w.v[k].op && strcmp(w.v[k].text, ")") == 0)
					k++;
				out->status_kept = true;
				if (k < w.n && w.v[k].op && strcmp(w.v[k].text, "&&") != 0) {
					bool more = false;
					for (size_t m = k + 1; m < w.n; m++)
						if (!w.v[m].op)
							more = true;
					bool sep = strcmp(w.v[k].text, ";") == 0 ||
						   strcmp(w.v[k].text, "\n") == 0;
					out->status_kept = sep && !more;
				}
				rc = 1;
				break;
			}
		}
		start = end + 1;
	}
done:
	if (rc != 1)
		archcheck_push_call_clear(out);
	words_free(&w);
	free(marked);
	return rc;
}

void archcheck_push_call_clear(ArchPushCall *c)
{
	free(c->program);
	free(c->repo);
	free(c->config);
	free(c->args);
	memset(c, 0, sizeof(*c));
}

/* ---- comparing repository URLs ---- */

static char *normalize_path(const char *p)
{
	Buf b = {0};
	buf_add(&b, '\0');
	b.len = 0;
	for (const char *s = p; *s;) {
		while (*s == '/')
			s++;
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len > 0 && !(len == 1 && s[0] == '.')) {
			buf_add(&b, '/');
			for (size_t i = 0; i < len; i++)
				buf_add(&b, s[i]);
		}
		s += len;
	}
	if (b.len == 0)
		buf_add(&b, '/');
	return b.s;
}

char *archcheck_repo_normalize(const char *url)
{
	if (strncmp(url, "file://", 7) == 0 && url[7] == '/')
		return normalize_path(url + 7);
	if (url[0] == '/')
		return normalize_path(url);
	if (strncmp(url, "sftp://", 7) == 0) {
		SftpUrl u;
		if (sftp_url_parse(url, &u, NULL) == 0) {
			char *path = normalize_path(u.path);
			free(u.path);
			u.path = path;
			char *s = sftp_url_display(&u);
			sftp_url_clear(&u);
			return s;
		}
	} else if (strncmp(url, "s3://", 5) == 0) {
		char *bucket, *prefix;
		if (s3_parse_url(url, &bucket, &prefix, NULL) == 0) {
			char *s = prefix[0] ? xasprintf("s3://%s/%s", bucket, prefix)
					    : xasprintf("s3://%s", bucket);
			free(bucket);
			free(prefix);
			return s;
		}
	}
	return xstrdup(url);
}

bool archcheck_repo_same(const char *a, const char *b)
{
	char *na = archcheck_repo_normalize(a), *nb = archcheck_repo_normalize(b);
	bool same = strcmp(na, nb) == 0;
	free(na);
	free(nb);
	return same;
}

/* Also the same when two local paths lead to one directory (symlinks, bind mounts seen as links). */
static bool repo_same_here(const char *a, const char *b)
{
	if (archcheck_repo_same(a, b))
		return true;
	char *na = archcheck_repo_normalize(a), *nb = archcheck_repo_normalize(b);
	bool same = false;
	if (na[0] == '/' && nb[0] == '/') {
		char *ra = realpath(na, NULL), *rb = realpath(nb, NULL);
		same = ra != NULL && rb != NULL && strcmp(ra, rb) == 0;
		free(ra);
		free(rb);
	}
	free(na);
	free(nb);
	return same;
}

/* ---- where a setting comes from ---- */

void archcheck_setting_source(PqConn *conn, const char *name, char *buf, size_t size, char *file,
			      size_t fsize)
{
	char sql[256];
	PqRow *res;
	WsError ignored;

	buf[0] = '\0';
	if (file != NULL && fsize > 0)
		file[0] = '\0';
	ws_error_clear(&ignored);
	snprintf(sql, sizeof(sql),
		 "SELECT source, coalesce(sourcefile, ''), coalesce(sourceline::text, ''), current_user "
		 "FROM pg_settings WHERE name = '%s'",
		 name);
	/* A replication connection runs no SELECT: then where is not known, and not said. */
	if (pq_query_row(conn, sql, 4, true, &res, &ignored) != 0 || res == NULL)
		return;
	const char *source = pq_row_value(res, 0), *sourcefile = pq_row_value(res, 1),
		   *sourceline = pq_row_value(res, 2), *role = pq_row_value(res, 3);
	if (sourcefile[0] != '\0') {
		snprintf(buf, size, "set in %s line %s", sourcefile, sourceline);
		if (file != NULL && fsize > 0)
			snprintf(file, fsize, "%s", sourcefile);
	} else if (strcmp(source, "default") == 0) {
		snprintf(buf, size, "the default: no configuration file sets it");
	} else if (strcmp(source, "configuration file") == 0) {
		snprintf(buf, size,
			 "where it is set is not visible to role \"%s\" (it needs superuser or "
			 "pg_read_all_settings)",
			 role);
	} else {
		snprintf(buf, size, "set by the %s", source);
	}
	pq_row_free(res);
}

static bool is_auto_conf(const char *file)
{
	const char *slash = strrchr(file, '/');
	return strcmp(slash ? slash + 1 : file, "postgresql.auto.conf") == 0;
}

/* How to change a setting made in file ("" when not known), for a hint. */
static const char *where_to_set(const char *file, char *buf, size_t size)
{
	if (file[0] == '\0')
		snprintf(buf, size, "in postgresql.conf");
	else if (is_auto_conf(file))
		snprintf(buf, size, "with ALTER SYSTEM (it is set in %s, which overrides postgresql.conf)",
			 file);
	else
		snprintf(buf, size, "in %s", file);
	return buf;
}

/* ---- the checks ---- */

static void report(const ArchCheck *ac, ArchFinding kind, const WsError *e)
{
	ac->report(ac->arg, kind, e);
}

static void report_text(const ArchCheck *ac, ArchFinding kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report_text(const ArchCheck *ac, ArchFinding kind, const char *fmt, ...)
{
	WsError e;
	va_list ap;
	ws_error_clear(&e);
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	report(ac, kind, &e);
}

/*
 * How to restart this server, as a hint says it: pg_ctlcluster for a Debian
 * cluster (pg_ctl -D ignores /etc/postgresql), pg_ctl -D for another data
 * directory this role may see, else in words.
 */
static const char *restart_how(PqConn *conn, char *buf, size_t size)
{
	char dir[1024];
	WsError ignored;
	PgCommonCluster c;
	ws_error_clear(&ignored);
	if (pq_query_value(conn, "SHOW data_directory", dir, sizeof(dir), &ignored) != 0 || dir[0] != '/')
		return "restart the server";
	if (pgcommon_cluster_of(PGCOMMON_ETC, dir, &c) == 1) {
		snprintf(buf, size, "restart the server (pg_ctlcluster %s %s restart)", c.version, c.name);
		pgcommon_cluster_free(&c);
	} else {
		snprintf(buf, size, "restart the server (pg_ctl -D %s restart)", dir);
	}
	return buf;
}

static void archive_mode_hint(const ArchCheck *ac, WsError *e, const char *file)
{
	char how[1200];
	const char *restart = restart_how(ac->conn, how, sizeof(how));
	if (is_auto_conf(file)) {
		ws_error_detail(e, "postgresql.auto.conf is written by ALTER SYSTEM (and by walship rebuild, "
				   "which turns archiving off in a rebuilt copy unless --archive=keep) and "
				   "overrides postgresql.conf and the files it includes.");
		ws_error_hint(
			e,
			"Run ALTER SYSTEM RESET archive_mode (it removes that line; or ALTER SYSTEM SET "
			"archive_mode = on), then %s: archive_mode changes only at server start.",
			restart);
	} else {
		ws_error_hint(
			e, "Set archive_mode = on in %s and %s: archive_mode changes only at server start.",
			file[0] ? file : "postgresql.conf", restart);
	}
}

static int check_archive_mode(const ArchCheck *ac, bool *on, WsError *err)
{
	char mode[64], pending[16], src[1200], file[1024];
	WsError e, ignored;
	int rc;

	*on = false;
	if ((rc = pq_query_value(ac->conn, "SHOW archive_mode", mode, sizeof(mode), err)) != 0)
		return rc;
	if (strcmp(mode, "on") == 0) {
		*on = true;
		report_text(ac, ARCH_OK, "archive_mode = on");
		return 0;
	}
	ws_error_clear(&e);
	ws_error_clear(&ignored);
	archcheck_setting_source(ac->conn, "archive_mode", src, sizeof(src), file, sizeof(file));
	const char *open = src[0] ? " (" : "", *close = src[0] ? ")" : "";
	if (strcmp(mode, "always") == 0) {
		*on = true;
		ws_error(&e, WS_FATAL, "archive_mode = always%s%s%s: set it to on", open, src, close);
		ws_error_detail(
			&e, "With always, standbys archive too, and a standby's copy of a segment may differ "
			    "from the primary's; walship-push refuses a differing segment, so archiving "
			    "would stop.");
		char how[1200], restart[1200];
		ws_error_hint(&e, "Set archive_mode = on %s and %s.", where_to_set(file, how, sizeof(how)),
			      restart_how(ac->conn, restart, sizeof(restart)));
	} else {
		ws_error(&e, WS_FATAL, "archive_mode = %s%s%s%s: the server archives nothing", mode, open,
			 src, close);
		archive_mode_hint(ac, &e, file);
		if (pq_query_value(ac->conn,
				   "SELECT pending_restart FROM pg_settings WHERE name = 'archive_mode'",
				   pending, sizeof(pending), &ignored) == 0 &&
		    strcmp(pending, "t") == 0)
			ws_error_detail(&e, "The configuration file has a new value that takes effect at the "
					    "next restart.");
	}
	report(ac, ARCH_FAILED, &e);
	return 0;
}

/*
 * The archive_command the server runs.  While archive_mode is off the server
 * shows "(disabled)": the configuration files' value is read then, when this
 * role may (pg_file_settings), to check both settings in one run.
 */
static int archive_command_value(const ArchCheck *ac, bool archiving, char **out, bool *from_files,
				 WsError *err)
{
	PqRow *res;
	*out = NULL;
	*from_files = false;
	if (archiving) {
		int rc;
		if ((rc = pq_query_row(ac->conn, "SHOW archive_command", 1, true, &res, err)) != 0)
			return rc;
		*out = xstrdup(res ? pq_row_value(res, 0) : "");
		pq_row_free(res);
		return 0;
	}
	WsError ignored;
	ws_error_clear(&ignored);
	if (pq_query_row(
		    ac->conn,
		    "SELECT setting FROM pg_file_settings WHERE name = 'archive_command' AND error IS NULL "
		    "ORDER BY seqno DESC LIMIT 1",
		    1, true, &res, &ignored) == 0 &&
	    res != NULL) {
		*out = xstrdup(pq_row_value(res, 0));
		*from_files = true;
		pq_row_free(res);
	}
	return 0;
}

/*
 * The repository a walship-push call without --repo uses: the repo setting of
 * the configuration file it reads.  NULL with why in e when that cannot be
 * known from here (the server's own environment may set it).
 */
static char *push_repo_from_config(const ArchPushCall *call, char **source, WsError *e)
{
	Config *c = config_new();
	char *repo = NULL;
	const char *path = call->config;
	*source = NULL;

	if (path == NULL && access(CONFIG_DEFAULT_PATH, F_OK) != 0) {
		ws_error(e, WS_FATAL, "cannot tell which repository archive_command's walship-push uses");
		ws_error_detail(e,
				"It passes no --repo or --config and \"%s\" does not exist, so only the "
				"server's environment (WALSHIP_REPO) could name one.",
				CONFIG_DEFAULT_PATH);
		goto done;
	}
	if (config_load(c, path ? path : CONFIG_DEFAULT_PATH, NULL, e) != 0) {
		ws_error_prefix(e, "cannot tell which repository archive_command's walship-push uses");
		goto done;
	}
	/* The file's own value: the server's environment, not this program's, could override it. */
	const char *src;
	const char *v = config_file_value(c, "repo", &src);
	if (v == NULL) {
		ws_error(e, WS_FATAL, "cannot tell which repository archive_command's walship-push uses");
		ws_error_detail(e,
				"It passes no --repo and \"%s\" sets no repo, so it depends on the server's "
				"environment (WALSHIP_REPO).",
				path ? path : CONFIG_DEFAULT_PATH);
		goto done;
	}
	repo = xstrdup(v);
	*source = xstrdup(src);
done:
	config_free(c);
	return repo;
}

/* archive_library (15+) replaces archive_command when set. */
static int check_archive_library(const ArchCheck *ac, bool *set, WsError *err)
{
	char lib[1024], src[1200], file[1024], how[1200];
	WsError e;
	int rc;

	*set = false;
	if (pq_server_version(ac->conn) < 150000)
		return 0;
	if ((rc = pq_query_value(ac->conn, "SHOW archive_library", lib, sizeof(lib), err)) != 0)
		return rc;
	if (lib[0] == '\0')
		return 0;
	*set = true;
	ws_error_clear(&e);
	archcheck_setting_source(ac->conn, "archive_library", src, sizeof(src), file, sizeof(file));
	ws_error(&e, WS_FATAL, "archive_library = \"%s\"%s%s%s: the server does not run archive_command", lib,
		 src[0] ? " (" : "", src, src[0] ? ")" : "");
	ws_error_hint(&e,
		      "Set archive_library = '' and archive_command = 'walship-push --repo=%s %%p %%f' %s, "
		      "then reload the server.",
		      ac->repo_url, where_to_set(file, how, sizeof(how)));
	report(ac, ARCH_FAILED, &e);
	return 0;
}

/* The walship-push call's repository against ac->repo_url; false when not the same or not known. */
static bool check_push_repo(const ArchCheck *ac, const ArchPushCall *call, const char *cmd, const char *where,
			    const char *src)
{
	char *push_repo = NULL, *source = NULL;
	bool same = false;
	WsError e;
	const char *decides = strcmp(ac->command, "walship check") == 0
				      ? "The WAL switch below decides"
				      : "walship check's WAL switch decides";

	ws_error_clear(&e);
	if (call->dynamic) {
		ws_error(&e, WS_FATAL, "cannot tell which repository archive_command's walship-push uses");
		ws_error_detail(&e, "Its arguments use shell expansions ($ or `): \"%s\".", cmd);
		ws_error_hint(&e, "%s; an explicit --repo=%s makes it certain.", decides, ac->repo_url);
		report(ac, ARCH_WARNING, &e);
		goto done;
	}
	if (call->repo != NULL) {
		push_repo = xstrdup(call->repo);
	} else if ((push_repo = push_repo_from_config(call, &source, &e)) == NULL) {
		ws_error_hint(&e, "%s; add --repo=%s to archive_command to make it certain.", decides,
			      ac->repo_url);
		report(ac, ARCH_WARNING, &e);
		goto done;
	}
	if (!repo_same_here(push_repo, ac->repo_url)) {
		ws_error(&e, WS_FATAL, "%s stores WAL in repository \"%s\", not in \"%s\"%s%s%s", where,
			 push_repo, ac->repo_url, src[0] ? " (" : "", src, src[0] ? ")" : "");
		if (source != NULL)
			ws_error_detail(&e, "It passes no --repo; \"%s\" comes from %s.", push_repo, source);
		ws_error_hint(&e,
			      "Give walship-push --repo=%s in archive_command and reload the server, or run "
			      "%s with --repo=%s if that is the repository you meant.",
			      ac->repo_url, ac->command, push_repo);
		report(ac, ARCH_FAILED, &e);
		goto done;
	}
	same = true;
	if (call->args_ok && call->status_kept) {
		if (source != NULL)
			report_text(
				ac, ARCH_OK,
				"archive_command calls walship-push %%p %%f with repository \"%s\" (from %s)",
				push_repo, source);
		else
			report_text(ac, ARCH_OK,
				    "archive_command calls walship-push %%p %%f with repository \"%s\"",
				    push_repo);
	}
done:
	free(push_repo);
	free(source);
	return same;
}

static int check_archive_command(const ArchCheck *ac, bool archiving, WsError *err)
{
	ArchPushCall call = {0};
	char *cmd = NULL, src[1200], file[1024], how[1200];
	bool from_files, library;
	WsError e;
	int rc;

	ws_error_clear(&e);
	if ((rc = check_archive_library(ac, &library, err)) != 0 || library)
		return rc;
	if ((rc = archive_command_value(ac, archiving, &cmd, &from_files, err)) != 0)
		return rc;
	const char *where = from_files ? "archive_command in the configuration files" : "archive_command";
	if (cmd == NULL) {
		report_text(ac, ARCH_SKIPPED,
			    "archive_command (the server shows it only while archive_mode is on)");
		goto done;
	}
	archcheck_setting_source(ac->conn, "archive_command", src, sizeof(src), file, sizeof(file));
	const char *open = src[0] ? " (" : "", *close = src[0] ? ")" : "";
	int found = archcheck_parse_command(cmd, &call);
	if (found <= 0) {
		if (cmd[0] == '\0')
			ws_error(&e, WS_FATAL, "archive_command is empty%s%s%s", open, src, close);
		else if (found < 0)
			ws_error(&e, WS_FATAL, "%s cannot be read (an unterminated quote): \"%s\"%s%s%s",
				 where, cmd, open, src, close);
		else
			ws_error(&e, WS_FATAL, "%s does not call walship-push: \"%s\"%s%s%s", where, cmd,
				 open, src, close);
		ws_error_hint(
			&e,
			"Set archive_command = 'walship-push --repo=%s %%p %%f' %s, then reload the server.",
			ac->repo_url, where_to_set(file, how, sizeof(how)));
		report(ac, ARCH_FAILED, &e);
		goto done;
	}
	if (!call.args_ok) {
		ws_error(&e, WS_FATAL, "%s calls walship-push with \"%s\" instead of \"%%p %%f\"%s%s%s",
			 where, call.args, open, src, close);
		ws_error_hint(&e,
			      "walship-push needs the file's path and name: end its arguments with %%p %%f.");
		report(ac, ARCH_FAILED, &e);
	}
	if (!call.status_kept) {
		ws_error(&e, WS_FATAL, "%s hides walship-push's exit status: \"%s\"%s%s%s", where, cmd, open,
			 src, close);
		ws_error_detail(
			&e, "PostgreSQL recycles a WAL file when archive_command answers 0; a command that "
			    "goes on after walship-push (\";\", \"||\", \"|\", \"&\") can answer 0 for a "
			    "file that was not stored.");
		ws_error_hint(&e, "Let walship-push be the last command, or join commands with \"&&\".");
		report(ac, ARCH_FAILED, &e);
	}
	(void)check_push_repo(ac, &call, cmd, where, src);
done:
	archcheck_push_call_clear(&call);
	free(cmd);
	return 0;
}

int archcheck_settings(const ArchCheck *ac, bool *archiving, WsError *err)
{
	int rc = check_archive_mode(ac, archiving, err);
	if (rc != 0)
		return rc;
	return check_archive_command(ac, *archiving, err);
}

int archcheck_archiver(PqConn *conn, ArchiverStat *out, WsError *err)
{
	PqRow *res;
	memset(out, 0, sizeof(*out));
	int rc = pq_query_row(conn,
			      "SELECT archived_count, coalesce(last_archived_wal, ''), "
			      "coalesce(last_archived_time::text, ''), failed_count, "
			      "coalesce(last_failed_wal, ''), coalesce(last_failed_time::text, ''), "
			      "last_failed_time IS NOT NULL AND (last_archived_time IS NULL OR "
			      "last_failed_time > last_archived_time) FROM pg_stat_archiver",
			      7, false, &res, err);
	if (rc != 0)
		return rc;
	snprintf(out->archived_count, sizeof(out->archived_count), "%s", pq_row_value(res, 0));
	snprintf(out->last_archived_wal, sizeof(out->last_archived_wal), "%s", pq_row_value(res, 1));
	snprintf(out->last_archived_time, sizeof(out->last_archived_time), "%s", pq_row_value(res, 2));
	snprintf(out->failed_count, sizeof(out->failed_count), "%s", pq_row_value(res, 3));
	snprintf(out->last_failed_wal, sizeof(out->last_failed_wal), "%s", pq_row_value(res, 4));
	snprintf(out->last_failed_time, sizeof(out->last_failed_time), "%s", pq_row_value(res, 5));
	out->failing = strcmp(pq_row_value(res, 6), "t") == 0;
	pq_row_free(res);
	return 0;
}

/* ---- the current timeline's history file ---- */

/* Whether the server still has name to archive (pg_wal/archive_status/NAME.ready); false when not known. */
static bool archive_pending(PqConn *conn, const char *name)
{
	char sql[256], v[16];
	WsError ignored;
	ws_error_clear(&ignored);
	/* pg_ls_archive_statusdir: 12 and later, superuser or pg_monitor. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name = '%s.ready'",
		 name);
	return pq_query_value(conn, sql, v, sizeof(v), &ignored) == 0 && strcmp(v, "1") == 0;
}

int archcheck_history(const ArchCheck *ac, Repo *repo, const RepoEpoch *epoch, uint32_t tli, WsError *err)
{
	char text[WAL_NAME_MAX], key[STORE_KEY_MAX], datadir[1024];
	WalName name;
	StoreStat st;
	WsError e, ignored;
	int rc;

	if (tli <= 1)
		return 0;
	snprintf(text, sizeof(text), "%08" PRIX32 ".history", tli);
	if ((rc = walname_parse(text, &name, err)) != 0)
		return rc;
	if (repo_key_wal(epoch, &name, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "repository key for \"%s\" is too long", text);
	ws_error_clear(&e);
	rc = store_stat(repo_store(repo), key, &st, &e);
	if (rc == 0) {
		report_text(ac, ARCH_OK,
			    "timeline %" PRIu32 ": its history file \"%s\" is in repository \"%s\"", tli,
			    text, repo_display(repo));
		return 0;
	}
	if (rc == WS_INTERRUPTED) {
		*err = e;
		return rc;
	}
	if (rc != WS_NOT_FOUND) {
		ws_error_prefix(&e, "could not look for history file \"%s\" in the repository", text);
		report(ac, ARCH_FAILED, &e);
		return 0;
	}
	ws_error_clear(&e);
	if (archive_pending(ac->conn, text)) {
		ws_error(&e, WS_FATAL, "timeline %" PRIu32 "'s history file \"%s\" is not archived yet", tli,
			 text);
		ws_error_detail(&e,
				"pg_wal/archive_status holds \"%s.ready\": the archiver has it still to do.",
				text);
		report(ac, ARCH_WARNING, &e);
		return 0;
	}
	ws_error_clear(&ignored);
	if (pq_query_value(ac->conn, "SHOW data_directory", datadir, sizeof(datadir), &ignored) != 0 ||
	    datadir[0] == '\0')
		snprintf(datadir, sizeof(datadir), "DATADIR");
	ws_error(&e, WS_FATAL,
		 "the server is on timeline %" PRIu32
		 ", but its history file \"%s\" is not in repository \"%s\" "
		 "(epoch \"%s\")",
		 tli, text, repo_display(repo), epoch->id);
	ws_error_detail(
		&e,
		"Rebuilds and standbys that follow timeline %" PRIu32 " need it. PostgreSQL archives it "
		"once, at the promotion that made the timeline, and only if archive_mode was on then "
		"(not after a recovery with archive_mode = off); it is still in the server's pg_wal/.",
		tli);
	ws_error_hint(
		&e, "Archive it by hand, as the server's user: walship-push --repo=%s -D %s %s/pg_wal/%s %s",
		ac->repo_url, datadir, datadir, text, text);
	report(ac, ARCH_FAILED, &e);
	return 0;
}
