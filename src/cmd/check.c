/*
 * check.c - walship check: proves, against the running server, that it
 * archives into this repository.
 *
 * Settings are read from the server (what it really runs with, not what a
 * file says), each check prints one line, and every check runs even after a
 * failure so that one run lists everything to change.  The WAL switch comes
 * last and only when everything before it holds: it is the end-to-end proof,
 * and it would only time out otherwise.
 */
#include "cmd/check.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "pg/basebackup.h"
#include "pg/cluster.h"
#include "pg/pgmajor.h"
#include "pg/pqconn.h"
#include "pg/walname.h"
#include "repo/keys.h"
#include "repo/repo.h"
#include "store/s3_util.h"
#include "store/sftp_util.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/mem.h"

/* How often the repository is asked again for the switched WAL file. */
#define POLL_S 0.25

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
static void read_push_args(const Word *w, size_t n, CheckPushCall *out)
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

int check_parse_archive_command(const char *cmd, CheckPushCall *out)
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
		check_push_call_clear(out);
	words_free(&w);
	free(marked);
	return rc;
}

void check_push_call_clear(CheckPushCall *c)
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

char *check_repo_normalize(const char *url)
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

bool check_repo_same(const char *a, const char *b)
{
	char *na = check_repo_normalize(a), *nb = check_repo_normalize(b);
	bool same = strcmp(na, nb) == 0;
	free(na);
	free(nb);
	return same;
}

/* Also the same when two local paths lead to one directory (symlinks, bind mounts seen as links). */
static bool repo_same_here(const char *a, const char *b)
{
	if (check_repo_same(a, b))
		return true;
	char *na = check_repo_normalize(a), *nb = check_repo_normalize(b);
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

/* ---- output: one line per check ---- */

typedef struct CheckRun {
	PqConn *conn;
	int failed;
	const char *repo_url; /* the repo setting, as given */
	const char *repo;     /* as the store shows it */
} CheckRun;

static void print_line(const char *tag, const char *text)
{
	/* One line each: values from the server may hold newlines. */
	fputs(tag, stdout);
	for (const char *p = text; *p; p++)
		putchar(*p == '\n' || *p == '\r' || *p == '\t' ? ' ' : *p);
	putchar('\n');
}

static void say(const char *tag, const WsError *e)
{
	print_line(tag, e->msg);
	if (e->detail[0])
		print_line("  detail: ", e->detail);
	if (e->hint[0])
		print_line("  hint: ", e->hint);
	fflush(stdout);
}

static void say_failed(CheckRun *r, const WsError *e)
{
	r->failed++;
	say("failed: ", e);
}

static void say_warning(const WsError *e)
{
	say("warning: ", e);
}

static void say_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say_ok(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	if (log_get_level() <= LOG_LEVEL_ERROR)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	print_line("ok: ", line);
	fflush(stdout);
}

/* ---- the server ---- */

static int connect_server(const char *dbname, PqConn **out, WsError *err)
{
	return pq_connect(dbname, false, "walship check",
			  "check needs a superuser (or a role allowed to run pg_switch_wal and to read "
			  "archive_command).",
			  out, err);
}

/* A one-value answer copied into buf ("" for NULL or no row). */
static int query_value(PqConn *conn, const char *sql, char *buf, size_t size, WsError *err)
{
	PqRow *res;
	int rc = pq_query_row(conn, sql, 1, true, &res, err);
	buf[0] = '\0';
	if (rc == 0 && res != NULL) {
		snprintf(buf, size, "%s", pq_row_value(res, 0));
		pq_row_free(res);
	}
	return rc;
}

typedef struct Server {
	int version;
	int major;
	uint64_t sysid;
	uint32_t seg_size;
} Server;

static int identify(PqConn *conn, Server *sv, WsError *err)
{
	char v[128], *end;
	int rc;

	sv->version = pq_server_version(conn);
	if (sv->version < 100000) {
		ws_error(err, WS_FATAL, "the server's PostgreSQL version %d is not supported by walship",
			 sv->version);
		ws_error_hint(err, "walship archives PostgreSQL 10 and later.");
		return WS_FATAL;
	}
	sv->major = pg_major_of_version_num(sv->version);

	if ((rc = query_value(conn, "SELECT pg_is_in_recovery()", v, sizeof(v), err)) != 0)
		return rc;
	if (strcmp(v, "t") == 0) {
		ws_error(err, WS_FATAL, "the server is in recovery (a standby)");
		ws_error_detail(
			err, "A standby cannot switch WAL, and with archive_mode = on it archives nothing.");
		ws_error_hint(err, "Run walship check against the primary.");
		return WS_FATAL;
	}

	if ((rc = query_value(conn, "SELECT system_identifier FROM pg_control_system()", v, sizeof(v),
			      err)) != 0)
		return rc;
	errno = 0;
	unsigned long long id = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || end == v || id == 0)
		return ws_error(err, WS_FATAL, "unexpected system identifier \"%.64s\" from the server", v);
	sv->sysid = (uint64_t)id;

	if ((rc = query_value(conn, "SHOW wal_segment_size", v, sizeof(v), err)) != 0)
		return rc;
	uint64_t seg;
	if (pg_size_parse(v, &seg) != 0 || seg > UINT32_MAX || !wal_segsize_valid((uint32_t)seg))
		return ws_error(err, WS_FATAL, "unexpected wal_segment_size \"%.64s\" from the server", v);
	sv->seg_size = (uint32_t)seg;
	return 0;
}

/* ---- the checks ---- */

static int check_archive_mode(CheckRun *r, bool *on, WsError *err)
{
	PqRow *res;
	WsError e;
	int rc = pq_query_row(r->conn,
			      "SELECT setting, pending_restart FROM pg_settings WHERE name = 'archive_mode'",
			      2, true, &res, err);
	*on = false;
	if (rc != 0)
		return rc;
	if (res == NULL)
		return ws_error(err, WS_FATAL, "the server has no setting \"archive_mode\"");
	const char *mode = pq_row_value(res, 0);
	bool pending = strcmp(pq_row_value(res, 1), "t") == 0;

	ws_error_clear(&e);
	if (strcmp(mode, "on") == 0) {
		*on = true;
		say_ok("archive_mode = on");
	} else if (strcmp(mode, "always") == 0) {
		*on = true;
		ws_error(&e, WS_FATAL, "archive_mode = always: set it to on");
		ws_error_detail(
			&e, "With always, standbys archive too, and a standby's copy of a segment may differ "
			    "from the primary's; walship-push refuses a differing segment, so archiving "
			    "would stop.");
		ws_error_hint(&e, "Set archive_mode = on in postgresql.conf and restart the server.");
		say_failed(r, &e);
	} else {
		ws_error(&e, WS_FATAL, "archive_mode = %s: the server archives nothing", mode);
		if (pending)
			ws_error_detail(
				&e, "The configuration file has a new value that takes effect at the next "
				    "restart.");
		ws_error_hint(&e,
			      "Set archive_mode = on in postgresql.conf and restart the server (archive_mode "
			      "changes only at server start).");
		say_failed(r, &e);
	}
	pq_row_free(res);
	return 0;
}

/*
 * The archive_command the server runs.  While archive_mode is off the server
 * shows "(disabled)": the configuration files' value is read then, when this
 * role may (pg_file_settings), to check both settings in one run.
 */
static int archive_command_value(CheckRun *r, bool archiving, char **out, bool *from_files, WsError *err)
{
	PqRow *res;
	*out = NULL;
	*from_files = false;
	if (archiving) {
		int rc;
		if ((rc = pq_query_row(r->conn, "SHOW archive_command", 1, true, &res, err)) != 0)
			return rc;
		*out = xstrdup(res ? pq_row_value(res, 0) : "");
		pq_row_free(res);
		return 0;
	}
	WsError ignored;
	ws_error_clear(&ignored);
	if (pq_query_row(
		    r->conn,
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
static char *push_repo_from_config(const CheckPushCall *call, char **source, WsError *e)
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
	const char *v = config_get(c, "repo");
	const char *src = config_source(c, "repo");
	if (v == NULL || strncmp(src, "configuration file", 18) != 0) {
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

static int check_archive_command(CheckRun *r, bool archiving, WsError *err)
{
	CheckPushCall call = {0};
	char *cmd = NULL, *push_repo = NULL, *source = NULL;
	bool from_files;
	WsError e;
	int rc;

	ws_error_clear(&e);
	if (pq_server_version(r->conn) >= 150000) {
		char lib[1024];
		if ((rc = query_value(r->conn, "SHOW archive_library", lib, sizeof(lib), err)) != 0)
			return rc;
		if (lib[0] != '\0') {
			ws_error(&e, WS_FATAL,
				 "archive_library = \"%s\": the server does not run archive_command", lib);
			ws_error_hint(
				&e,
				"Set archive_library = '' and archive_command = 'walship-push --repo=%s "
				"%%p %%f' in postgresql.conf, then reload the server.",
				r->repo);
			say_failed(r, &e);
			return 0;
		}
	}

	if ((rc = archive_command_value(r, archiving, &cmd, &from_files, err)) != 0)
		return rc;
	const char *where = from_files ? "archive_command in the configuration files" : "archive_command";
	if (cmd == NULL) {
		if (log_get_level() > LOG_LEVEL_ERROR)
			print_line("skipped: ",
				   "archive_command (the server shows it only while archive_mode is on)");
		goto done;
	}
	int found = check_parse_archive_command(cmd, &call);
	if (found <= 0) {
		if (cmd[0] == '\0')
			ws_error(&e, WS_FATAL, "archive_command is empty");
		else if (found < 0)
			ws_error(&e, WS_FATAL, "%s cannot be read (an unterminated quote): \"%s\"", where,
				 cmd);
		else
			ws_error(&e, WS_FATAL, "%s does not call walship-push: \"%s\"", where, cmd);
		ws_error_hint(
			&e,
			"Set archive_command = 'walship-push --repo=%s %%p %%f' in postgresql.conf, then "
			"reload the server.",
			r->repo_url);
		say_failed(r, &e);
		goto done;
	}
	if (!call.args_ok) {
		ws_error(&e, WS_FATAL, "%s calls walship-push with \"%s\" instead of \"%%p %%f\"", where,
			 call.args);
		ws_error_hint(&e,
			      "walship-push needs the file's path and name: end its arguments with %%p %%f.");
		say_failed(r, &e);
	}
	if (!call.status_kept) {
		ws_error(&e, WS_FATAL, "%s hides walship-push's exit status: \"%s\"", where, cmd);
		ws_error_detail(
			&e, "PostgreSQL recycles a WAL file when archive_command answers 0; a command that "
			    "goes on after walship-push (\";\", \"||\", \"|\", \"&\") can answer 0 for a "
			    "file that was not stored.");
		ws_error_hint(&e, "Let walship-push be the last command, or join commands with \"&&\".");
		say_failed(r, &e);
	}

	if (call.dynamic) {
		ws_error(&e, WS_FATAL, "cannot tell which repository archive_command's walship-push uses");
		ws_error_detail(&e, "Its arguments use shell expansions ($ or `): \"%s\".", cmd);
		ws_error_hint(&e, "The WAL switch below decides; an explicit --repo=%s makes it certain.",
			      r->repo_url);
		say_warning(&e);
		goto done;
	}
	if (call.repo != NULL)
		push_repo = xstrdup(call.repo);
	else if ((push_repo = push_repo_from_config(&call, &source, &e)) == NULL) {
		ws_error_hint(
			&e,
			"The WAL switch below decides; add --repo=%s to archive_command to make it certain.",
			r->repo_url);
		say_warning(&e);
		goto done;
	}
	if (!repo_same_here(push_repo, r->repo_url)) {
		ws_error(&e, WS_FATAL, "%s stores WAL in repository \"%s\", not in \"%s\"", where, push_repo,
			 r->repo_url);
		if (source != NULL)
			ws_error_detail(&e, "It passes no --repo; \"%s\" comes from %s.", push_repo, source);
		ws_error_hint(&e,
			      "Give walship-push --repo=%s in archive_command and reload the server, or run "
			      "walship check with --repo=%s if that is the repository you meant.",
			      r->repo_url, push_repo);
		say_failed(r, &e);
		goto done;
	}
	if (call.args_ok && call.status_kept) {
		if (source != NULL)
			say_ok("archive_command calls walship-push %%p %%f with repository \"%s\" (from %s)",
			       push_repo, source);
		else
			say_ok("archive_command calls walship-push %%p %%f with repository \"%s\"",
			       push_repo);
	}
done:
	check_push_call_clear(&call);
	free(cmd);
	free(push_repo);
	free(source);
	return 0;
}

static void check_epoch(CheckRun *r, const Repo *repo, const Server *sv, const RepoEpoch **epoch)
{
	ClusterInfo ci = {0};
	WsError e;
	char v[16], s[32];

	ws_error_clear(&e);
	ci.control.sysid = sv->sysid;
	ci.control.seg_size = sv->seg_size;
	ci.pg_major = sv->major;
	if (cluster_push_epoch(repo_meta(repo), &ci, r->repo, epoch, &e) != 0) {
		*epoch = NULL;
		/* cluster.c speaks of a data directory: here the cluster is the server. */
		say_failed(r, &e);
		return;
	}
	say_ok("repository \"%s\" belongs to this cluster (epoch \"%s\": system identifier %" PRIu64
	       ", PostgreSQL %s, %s WAL segments)",
	       r->repo, (*epoch)->id, sv->sysid, pg_major_str(sv->major, v, sizeof(v)),
	       cluster_size_str(sv->seg_size, s, sizeof(s)));
}

/* restore_command must be able to tell "not in the archive" from a failure: ask for a key that cannot exist.
 */
static int check_not_found(CheckRun *r, Repo *repo, const RepoEpoch *epoch)
{
	unsigned char rnd[8];
	char hex[17], key[STORE_KEY_MAX];
	StoreStat st;
	WsError e;

	ws_error_clear(&e);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0x5a, sizeof(rnd));
	hex_encode(rnd, sizeof(rnd), hex);
	snprintf(key, sizeof(key), "%s/wal/check-%s", epoch ? epoch->id : repo_meta(repo)->epochs[0].id, hex);
	int rc = store_stat(repo_store(repo), key, &st, &e);
	if (rc == WS_NOT_FOUND) {
		say_ok("repository \"%s\" answers \"not found\" for a missing WAL file", r->repo);
		return 0;
	}
	if (rc == WS_INTERRUPTED) {
		return rc;
	}
	if (rc == 0) {
		ws_error(&e, WS_FATAL, "repository \"%s\" reports a key that cannot exist (\"%s\")", r->repo,
			 key);
		ws_error_hint(
			&e, "Check the repository's storage: walship-fetch relies on \"not found\" answers.");
	} else {
		ws_error_prefix(&e, "repository \"%s\" does not answer \"not found\" for a missing WAL file",
				r->repo);
		if (e.detail[0] == '\0')
			ws_error_detail(
				&e,
				"restore_command must tell a file the archive does not have from a failure; "
				"with this answer recovery could never end normally.");
	}
	say_failed(r, &e);
	return 0;
}

/* What pg_stat_archiver says, as a detail for a file that did not arrive. */
static void archiver_detail(CheckRun *r, const char *wal, WsError *e)
{
	PqRow *res;
	WsError ignored;
	ws_error_clear(&ignored);
	if (pq_query_row(r->conn,
			 "SELECT failed_count, coalesce(last_failed_wal, ''), "
			 "coalesce(last_failed_time::text, ''), "
			 "coalesce(last_archived_wal, ''), coalesce(last_archived_time::text, ''), "
			 "last_failed_time IS NOT NULL AND (last_archived_time IS NULL OR "
			 "last_failed_time > last_archived_time) FROM pg_stat_archiver",
			 6, true, &res, &ignored) != 0 ||
	    res == NULL) {
		ws_error_detail(e, "pg_stat_archiver could not be read: %s.", ignored.msg);
		return;
	}
	const char *failed_count = pq_row_value(res, 0), *failed_wal = pq_row_value(res, 1),
		   *failed_time = pq_row_value(res, 2), *archived_wal = pq_row_value(res, 3),
		   *archived_time = pq_row_value(res, 4);
	bool failing = strcmp(pq_row_value(res, 5), "t") == 0;
	char last[256] = "It has archived nothing since its statistics were reset.";
	if (archived_wal[0])
		snprintf(last, sizeof(last), "It last archived \"%s\" at %s.", archived_wal, archived_time);

	if (failing)
		ws_error_detail(
			e,
			"pg_stat_archiver: archive_command has failed %s times, last on \"%s\" at %s. "
			"%s",
			failed_count, failed_wal, failed_time, last);
	else if (archived_wal[0] && strncmp(archived_wal, wal, 24) >= 0)
		ws_error_detail(e,
				"pg_stat_archiver: the server archived \"%s\" at %s, but it is not in this "
				"repository: archive_command stores WAL elsewhere.",
				archived_wal, archived_time);
	else
		ws_error_detail(
			e,
			"pg_stat_archiver reports no failure since the last success. %s The archiver may "
			"be behind.",
			last);
	pq_row_free(res);
}

static int check_switch(CheckRun *r, Repo *repo, const RepoEpoch *epoch, int timeout, WsError *err)
{
	char wal[64], key[STORE_KEY_MAX];
	WalName name;
	WsError e;
	int rc;

	ws_error_clear(&e);
	/* A switch on an empty segment does nothing: write a WAL record first, touching no table. */
	char ignored[64];
	if ((rc = query_value(r->conn, "SELECT pg_logical_emit_message(false, 'walship', 'check')", ignored,
			      sizeof(ignored), err)) != 0)
		return rc;
	if ((rc = query_value(r->conn, "SELECT pg_walfile_name(pg_switch_wal())", wal, sizeof(wal), err)) !=
	    0)
		return rc;
	if (walname_parse(wal, &name, err) != 0 || name.kind != WAL_SEGMENT)
		return ws_error(err, WS_FATAL, "unexpected WAL file name \"%.64s\" from the server", wal);
	if (repo_key_wal(epoch, &name, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "repository key for \"%s\" is too long", wal);
	log_info("switched to a new WAL file; waiting for \"%s\" in repository \"%s\"", wal, r->repo);

	double start = clock_now(), deadline = start + timeout;
	for (;;) {
		StoreStat st;
		WsError se;
		ws_error_clear(&se);
		rc = store_stat(repo_store(repo), key, &st, &se);
		if (rc == 0) {
			say_ok("WAL file \"%s\" reached repository \"%s\" %.1f seconds after the switch", wal,
			       r->repo, clock_now() - start);
			return 0;
		}
		if (rc == WS_INTERRUPTED) {
			*err = se;
			return rc;
		}
		if (rc != WS_NOT_FOUND && rc != WS_TRANSIENT) {
			ws_error_prefix(&se, "could not look for WAL file \"%s\" in the repository", wal);
			say_failed(r, &se);
			return 0;
		}
		if (cleanup_interrupted())
			return ws_error(err, WS_INTERRUPTED, "interrupted while waiting for WAL file \"%s\"",
					wal);
		if (clock_now() >= deadline)
			break;
		(void)clock_sleep_interruptible(POLL_S);
	}
	ws_error(&e, WS_FATAL,
		 "WAL file \"%s\" did not reach repository \"%s\" within %d seconds of the switch", wal,
		 r->repo, timeout);
	archiver_detail(r, wal, &e);
	ws_error_hint(&e, "See the server log for walship-push's messages and fix what they report, or wait "
			  "longer with --timeout.");
	say_failed(r, &e);
	return 0;
}

int cmd_check(const Config *cfg, const CheckOptions *opt, WsError *err)
{
	CheckRun r = {0};
	Repo *repo = NULL;
	Server sv = {0};
	const RepoEpoch *epoch = NULL;
	bool archiving = false;
	int timeout = opt->timeout > 0 ? opt->timeout : CHECK_TIMEOUT_DEFAULT;
	int rc;

	r.repo_url = config_get(cfg, "repo");
	if ((rc = connect_server(opt->dbname, &r.conn, err)) != 0)
		goto done;
	if ((rc = identify(r.conn, &sv, err)) != 0)
		goto done;
	if ((rc = repo_open(cfg, &repo, err)) != 0)
		goto done;
	r.repo = repo_display(repo);

	if ((rc = check_archive_mode(&r, &archiving, err)) != 0)
		goto done;
	if ((rc = check_archive_command(&r, archiving, err)) != 0)
		goto done;
	check_epoch(&r, repo, &sv, &epoch);
	if ((rc = check_not_found(&r, repo, epoch)) != 0)
		goto done;

	if (r.failed > 0) {
		if (log_get_level() > LOG_LEVEL_ERROR)
			print_line("skipped: ", "WAL switch (fix the failures above first)");
	} else if ((rc = check_switch(&r, repo, epoch, timeout, err)) != 0) {
		goto done;
	}

	if (r.failed > 0) {
		printf("%d check%s failed\n", r.failed, r.failed == 1 ? "" : "s");
		rc = CHECK_EXIT_FAILED;
	} else if (log_get_level() > LOG_LEVEL_ERROR) {
		printf("all checks passed: the server archives into repository \"%s\"\n", r.repo);
	}
	fflush(stdout);
done:
	repo_free(repo);
	pq_close(r.conn);
	return rc;
}
