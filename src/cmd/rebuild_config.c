/*
 * rebuild_config.c - the configuration of a rebuilt copy (see
 * rebuild_config.h): the sanitiser, the sources it reads included files
 * from (the backup's config object, or this host for --config-from), and
 * what is written into the copy.
 */
#include "cmd/rebuild_config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pg/pgconf.h"
#include "repo/keys.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"

#define PGCONF_MAX    (16 * 1024 * 1024)
#define INCLUDE_DEPTH 10 /* PostgreSQL's CONF_FILE_MAX_DEPTH */
#define MARK_WORDS    "# walship rebuild:"
#define MARK          MARK_WORDS " "

/* ---- growing text ---- */

/* ---- the sanitiser ---- */

typedef struct San {
	const char *datadir, *confdir, *pgdata;
	const RebuildConfSource *src;
	RebuildConf *out;
} San;

/* path is dir or below it; never for no directory or the root (a source cluster's directory is neither). */
static bool within(const char *path, const char *dir)
{
	return dir != NULL && dir[strspn(dir, "/")] != '\0' && fs_path_within(path, dir);
}

/*
 * value made absolute against dir and canonical ("." and ".." components and
 * repeated slashes gone), as PostgreSQL's AbsoluteConfigLocation and
 * canonicalize_path make it: pg_file_settings records paths in that form.
 */
static char *absolute(const char *value, const char *dir)
{
	char *joined = value[0] == '/' ? xstrdup(value) : xasprintf("%s/%s", dir, value);
	char *out = xmalloc(strlen(joined) + 2);
	size_t n = 0;
	for (char *p = joined, *next; p != NULL; p = next) {
		next = strchr(p, '/');
		if (next != NULL)
			*next++ = '\0';
		if (*p == '\0' || strcmp(p, ".") == 0)
			continue;
		if (strcmp(p, "..") == 0) {
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
			continue;
		}
		out[n++] = '/';
		size_t k = strlen(p);
		memcpy(out + n, p, k);
		n += k;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	free(joined);
	return out;
}

static RebuildConfFile *add_file(RebuildConf *c, const char *rel)
{
	c->files = xrealloc(c->files, (size_t)(c->nfiles + 1) * sizeof(*c->files));
	RebuildConfFile *f = &c->files[c->nfiles++];
	memset(f, 0, sizeof(*f));
	f->rel = xstrdup(rel);
	return f;
}

/* A name in the copy's data directory for an included file or directory: free, and none of PostgreSQL's. */
static char *pick_name(San *s, const char *base)
{
	static const char *const reserved[] = {"postgresql.conf",
					       "postgresql.auto.conf",
					       "pg_hba.conf",
					       "pg_ident.conf",
					       "base",
					       "global",
					       "PG_VERSION",
					       "backup_label",
					       "tablespace_map",
					       "recovery.conf",
					       "recovery.signal",
					       "standby.signal",
					       "current_logfiles",
					       "log",
					       NULL};
	for (int n = 1;; n++) {
		char *name = n == 1 ? xstrdup(base) : xasprintf("walship-%d-%s", n, base);
		bool taken = name[0] == '.' || name[0] == '\0' || strncmp(name, "pg_", 3) == 0 ||
			     strncmp(name, "postmaster.", 11) == 0 ||
			     strncmp(name, "walship-rebuild", 15) == 0;
		for (int i = 0; !taken && reserved[i]; i++)
			taken = strcmp(name, reserved[i]) == 0;
		for (int i = 0; !taken && i < s->out->nfiles; i++) {
			const char *r = s->out->files[i].rel;
			size_t k = strlen(name);
			taken = strncmp(r, name, k) == 0 && (r[k] == '\0' || r[k] == '/');
		}
		char *p = xasprintf("%s/%s", s->pgdata, name);
		struct stat st;
		taken = taken || lstat(p, &st) == 0;
		free(p);
		if (!taken)
			return name;
		free(name);
	}
}

static int refuse(const char *path, int line, WsError *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(const char *path, int line, WsError *err, const char *fmt, ...)
{
	char what[WS_ERROR_TEXT];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return ws_error(err, WS_FATAL, "%s:%d: %s", path, line, what);
}

/* "# walship rebuild: <what>: <the line as it was>" */
static void mark(San *s, Text *o, const char *what, const char *line, size_t n)
{
	text_str(o, MARK);
	text_str(o, what);
	text_str(o, ": ");
	text_add(o, line, n);
	text_str(o, "\n");
	s->out->nchanges++;
}

static int san_file(San *s, const char *path, const char *text, size_t len, const char *rel, int depth,
		    WsError *err);

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* include_dir: each "*.conf" file of the directory (not hidden), in name order, into the copy's dir. */
static int san_dir(San *s, const char *path, int line, const char *dir, Text *o, const char *orig, size_t n,
		   int depth, WsError *err)
{
	char **names = NULL;
	int count = 0, rc;
	WsError e;
	ws_error_clear(&e);
	rc = s->src->list(s->src->ctx, dir, &names, &count, &e);
	if (rc == WS_NOT_FOUND && s->src->from_backup) {
		mark(s, o, "removed (the backup holds no file of this directory)", orig, n);
		s->out->nwarnings++;
		return 0;
	}
	if (rc == WS_NOT_FOUND) {
		refuse(path, line, err, "include_dir names \"%s\", which is not a directory here", dir);
		ws_error_hint(err, "Create it, or remove the line from a copy of the file and use that.");
		return WS_FATAL;
	}
	if (rc != 0) {
		*err = e;
		return rc;
	}
	qsort(names, (size_t)count, sizeof(*names), cmp_names);
	char *dname = pick_name(s, fs_basename(dir));
	add_file(s->out, dname)->text = NULL;
	for (int i = 0; rc == 0 && i < count; i++) {
		size_t k = strlen(names[i]);
		if (names[i][0] == '.' || k < 6 || strcmp(names[i] + k - 5, ".conf") != 0)
			continue;
		char *full = xasprintf("%s/%s", dir, names[i]);
		char *frel = xasprintf("%s/%s", dname, names[i]);
		char *t = NULL;
		size_t tl = 0;
		if ((rc = s->src->read(s->src->ctx, full, &t, &tl, err)) == 0)
			rc = san_file(s, full, t, tl, frel, depth + 1, err);
		free(t);
		free(frel);
		free(full);
	}
	if (rc == 0) {
		char *to = xasprintf("%s/%s", s->pgdata, dname);
		mark(s, o, "rewritten to the copy's own directory, was", orig, n);
		pgconf_setting(o, "include_dir", to);
		free(to);
	}
	free(dname);
	for (int i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* include / include_if_exists: the file sanitised into the copy, the directive pointed at it. */
static int san_include(San *s, const char *path, int line, const PgConfLine *l, Text *o, const char *orig,
		       size_t n, int depth, WsError *err)
{
	char *dir = fs_dirname(path);
	char *target = absolute(l->value, dir);
	free(dir);
	int rc;
	if (pgconf_name_is(l->name, "include_dir")) {
		rc = san_dir(s, path, line, target, o, orig, n, depth, err);
		free(target);
		return rc;
	}
	bool if_exists = pgconf_name_is(l->name, "include_if_exists");
	char *t = NULL;
	size_t tl = 0;
	WsError e;
	ws_error_clear(&e);
	rc = s->src->read(s->src->ctx, target, &t, &tl, &e);
	if (rc == WS_NOT_FOUND && (if_exists || s->src->from_backup)) {
		mark(s, o,
		     if_exists ? "removed (the file does not exist)"
			       : "removed (the backup does not hold the file: it had no setting or could not "
				 "be "
				 "read)",
		     orig, n);
		if (!if_exists)
			s->out->nwarnings++;
		rc = 0;
	} else if (rc == WS_NOT_FOUND) {
		refuse(path, line, err, "%s names \"%s\", which does not exist", l->name, target);
		ws_error_hint(err,
			      "Correct the path, or remove the line from a copy of the file and use that.");
		rc = WS_FATAL;
	} else if (rc != 0) {
		*err = e;
	} else {
		char *name = pick_name(s, fs_basename(target));
		if ((rc = san_file(s, target, t, tl, name, depth + 1, err)) == 0) {
			char *to = xasprintf("%s/%s", s->pgdata, name);
			mark(s, o, "rewritten to the copy's own file, was", orig, n);
			pgconf_setting(o, l->name, to);
			free(to);
		}
		free(name);
	}
	free(t);
	free(target);
	return rc;
}

static const char hint_shared[] =
	"The copy would share it with the source cluster.  Put what the copy needs in a file of its own, "
	"and rebuild with --config-from=FILE naming an edited copy of the configuration.";

/* Any other setting: nothing may point at the source cluster's files. */
static int san_value(San *s, const char *path, int line, const PgConfLine *l, Text *o, const char *orig,
		     size_t n, WsError *err)
{
	const char *v = l->value;
	if (s->datadir != NULL && within(v, s->datadir)) {
		char *to = xasprintf("%s%s", s->pgdata, v + strlen(s->datadir));
		mark(s, o, "rewritten into the copy's data directory, was", orig, n);
		pgconf_setting(o, l->name, to);
		free(to);
		return 0;
	}
	if (s->confdir != NULL && within(v, s->confdir)) {
		refuse(path, line, err, "%s points into the source cluster's configuration directory \"%s\"",
		       l->name, s->confdir);
		ws_error_hint(err, "%s", hint_shared);
		return WS_FATAL;
	}
	for (int k = 0; k < 2; k++) {
		const char *d = k == 0 ? s->datadir : s->confdir;
		char *probe = d != NULL ? xasprintf("%s/", d) : NULL;
		bool named = probe != NULL && strlen(d) > 1 && strstr(v, probe) != NULL;
		free(probe);
		if (named) {
			refuse(path, line, err, "%s names the source cluster's %s", l->name,
			       k == 0 ? "data directory" : "configuration directory");
			ws_error_detail(err, "Its value is %s.", orig);
			ws_error_hint(err, "%s", hint_shared);
			return WS_FATAL;
		}
	}
	text_add(o, orig, n);
	text_str(o, "\n");
	return 0;
}

static int san_line(San *s, const char *path, int line, const char *orig, size_t n, Text *o, int depth,
		    WsError *err)
{
	PgConfLine l;
	int rc = 0;
	PgConfKind kind = pgconf_parse_line(orig, n, &l);
	if (kind == PGCONF_ERROR) {
		refuse(path, line, err, "syntax error: %s", l.error);
		ws_error_hint(err, "PostgreSQL would not read this file either: correct it.");
		rc = WS_FATAL;
	} else if (kind == PGCONF_BLANK) {
		text_add(o, orig, n);
		text_str(o, "\n");
	} else if (pgconf_name_is(l.name, "data_directory")) {
		mark(s, o, "removed (the copy's data directory is where it is started)", orig, n);
	} else if (pgconf_name_is(l.name, "external_pid_file") ||
		   pgconf_name_is(l.name, "stats_temp_directory")) {
		mark(s, o, "removed (it names the source cluster's file)", orig, n);
	} else if (pgconf_name_is(l.name, "hba_file") || pgconf_name_is(l.name, "ident_file")) {
		char **keep = pgconf_name_is(l.name, "hba_file") ? &s->out->hba_file : &s->out->ident_file;
		free(*keep);
		*keep = s->datadir != NULL ? absolute(l.value, s->datadir) : xstrdup(l.value);
		mark(s, o, "removed (the copy has its own file beside postgresql.conf)", orig, n);
	} else if (pgconf_name_is(l.name, "include") || pgconf_name_is(l.name, "include_if_exists") ||
		   pgconf_name_is(l.name, "include_dir")) {
		rc = san_include(s, path, line, &l, o, orig, n, depth, err);
	} else {
		rc = san_value(s, path, line, &l, o, orig, n, err);
	}
	pgconf_line_clear(&l);
	return rc;
}

static int san_file(San *s, const char *path, const char *text, size_t len, const char *rel, int depth,
		    WsError *err)
{
	Text o = {NULL, 0, 0};
	int rc = 0, line = 0;
	int before = s->out->nchanges;

	if (depth > INCLUDE_DEPTH)
		return ws_error(err, WS_FATAL, "%s: includes nested more than %d deep", path, INCLUDE_DEPTH);
	/* Its place first: the files it includes come after it. */
	int index = s->out->nfiles;
	add_file(s->out, rel);
	text_add(&o, "", 0);
	for (size_t pos = 0; rc == 0 && pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		line++;
		rc = san_line(s, path, line, text + pos, n, &o, depth, err);
		pos += n + (nl ? 1 : 0);
	}
	RebuildConfFile *f = &s->out->files[index];
	if (rc == 0 && s->out->nchanges == before) {
		/* Nothing to change: the file as it was, byte for byte. */
		f->text = xmalloc(len + 1);
		memcpy(f->text, text, len);
		f->text[len] = '\0';
		f->len = len;
		free(o.s);
	} else {
		f->text = o.s;
		f->len = o.len;
	}
	return rc;
}

int rebuild_conf_sanitise(const char *path, const char *text, size_t len, const char *src_datadir,
			  const char *src_confdir, const char *pgdata, const RebuildConfSource *src,
			  RebuildConf *out, WsError *err)
{
	memset(out, 0, sizeof(*out));
	San s = {src_datadir, src_confdir, pgdata, src, out};
	int rc = san_file(&s, path, text, len, "postgresql.conf", 0, err);
	if (rc == 0 && out->nchanges > 0) {
		char *head =
			xasprintf(MARK "written from \"%s\"; %d line%s changed, each marked as this one\n",
				  path, out->nchanges, out->nchanges == 1 ? "" : "s");
		RebuildConfFile *f = &out->files[0];
		char *t = xasprintf("%s%s", head, f->text);
		f->len += strlen(head);
		free(f->text);
		f->text = t;
		free(head);
	}
	return rc;
}

void rebuild_conf_free(RebuildConf *c)
{
	for (int i = 0; i < c->nfiles; i++) {
		free(c->files[i].rel);
		free(c->files[i].text);
	}
	free(c->files);
	free(c->hba_file);
	free(c->ident_file);
	memset(c, 0, sizeof(*c));
}

/* ---- where included files come from ---- */

/* The backup's config object: the files one after the other, as manifest.json lists them. */
typedef struct Held {
	const BackupConfig *c;
	const char *blob;
} Held;

static const char *held_find(const Held *h, const char *path, size_t *len)
{
	size_t off = 0;
	for (int i = 0; h->blob != NULL && i < h->c->n_files; i++) {
		if (strcmp(h->c->files[i].path, path) == 0) {
			*len = (size_t)h->c->files[i].size;
			return h->blob + off;
		}
		off += (size_t)h->c->files[i].size;
	}
	return NULL;
}

static int held_read(void *ctx, const char *path, char **text, size_t *len, WsError *err)
{
	const char *p = held_find(ctx, path, len);
	if (p == NULL)
		return ws_error(err, WS_NOT_FOUND, "the backup holds no \"%s\"", path);
	*text = xmalloc(*len + 1);
	memcpy(*text, p, *len);
	(*text)[*len] = '\0';
	return 0;
}

static int held_list(void *ctx, const char *dir, char ***names, int *n, WsError *err)
{
	const Held *h = ctx;
	*names = NULL;
	*n = 0;
	for (int i = 0; i < h->c->n_files; i++) {
		const char *p = h->c->files[i].path;
		char *d = fs_dirname(p);
		if (strcmp(d, dir) == 0) {
			*names = xrealloc(*names, (size_t)(*n + 1) * sizeof(**names));
			(*names)[(*n)++] = xstrdup(fs_basename(p));
		}
		free(d);
	}
	/* None: the directory held no file with a setting (pg_file_settings) nor one an include names. */
	(void)err;
	return 0;
}

static int local_read(void *ctx, const char *path, char **text, size_t *len, WsError *err)
{
	(void)ctx;
	return fs_read_small(path, PGCONF_MAX, text, len, err);
}

static int local_list(void *ctx, const char *dir, char ***names, int *n, WsError *err)
{
	(void)ctx;
	return fs_dir_names(dir, names, n, err);
}

/* The backup's config object, checked against manifest.json file by file (*blob malloc'd). */
static int load_held(Repo *repo, const char *epoch, const BackupMeta *b, char **blob, WsError *err)
{
	const BackupConfig *c = &b->config;
	char key[STORE_KEY_MAX];
	MemWriter w = {NULL, 0, 0, (size_t)c->obj.size, "the configuration files"};
	ObjInfo info;
	size_t off = 0;
	int rc;

	*blob = NULL;
	if (backup_key(epoch, b->id, c->obj.name, key, sizeof(key)) != 0)
		return ws_error(err, WS_FATAL, "repository key too long");
	rc = repo_get_object(repo, key, c->obj.size, mem_writer_write, &w, &info, err);
	if (rc == 0 && (info.content_size != c->obj.size || memcmp(info.sha256, c->obj.sha256, 32) != 0))
		rc = ws_error(err, WS_CORRUPT, "object \"%s\" is not the one manifest.json describes", key);
	for (int i = 0; rc == 0 && i < c->n_files; i++) {
		unsigned char md[32];
		unsigned int mdlen = 32;
		EVP_Digest(w.buf + off, (size_t)c->files[i].size, md, &mdlen, EVP_sha256(), NULL);
		if (memcmp(md, c->files[i].sha256, 32) != 0)
			rc = ws_error(err, WS_CORRUPT, "\"%s\" in object \"%s\" does not match manifest.json",
				      c->files[i].path, key);
		off += (size_t)c->files[i].size;
	}
	if (rc != 0) {
		ws_error_prefix(err, "could not restore the server's configuration files");
		free(w.buf);
		return rc;
	}
	*blob = w.buf != NULL ? w.buf : xstrdup("");
	return 0;
}

/* ---- the copy's files ---- */

static const char empty_conf[] =
	MARK "the backup had no postgresql.conf and kept none from outside its data\n" MARK
	     "directory.  Every setting has its default; add what this server needs.\n";

static const char minimal_hba[] = MARK "the backup holds no pg_hba.conf: connections from this host only.\n"
				       "# TYPE  DATABASE     USER  ADDRESS        METHOD\n"
				       "local   all          all                  peer\n"
				       "local   replication  all                  peer\n"
				       "host    all          all   127.0.0.1/32   scram-sha-256\n"
				       "host    all          all   ::1/128        scram-sha-256\n";

static const char minimal_ident[] = MARK "the backup holds no pg_ident.conf: no user name maps.\n";

static int write_conf_file(const char *pgdata, const char *rel, const char *text, size_t len, uid_t uid,
			   gid_t gid, WsError *err)
{
	FsFileOpts o = {.mode = 0600, .chown = geteuid() == 0, .uid = uid, .gid = gid, .durable = true};
	char *path = xasprintf("%s/%s", pgdata, rel);
	int rc = fs_write_file(path, text, len, &o, err);
	free(path);
	return rc;
}

static int write_conf_dir(const char *pgdata, const char *rel, uid_t uid, gid_t gid, WsError *err)
{
	char *path = xasprintf("%s/%s", pgdata, rel);
	int rc = fs_mkdir_durable(path, 0700, NULL, err);
	if (rc == 0 && geteuid() == 0 && chown(path, uid, gid) != 0)
		rc = ws_error_errno(err, WS_FATAL, errno, "could not change the owner of \"%s\"", path);
	free(path);
	return rc;
}

/* What a rebuild reads the configuration from. */
typedef struct Origin {
	const BackupMeta *b;
	const char *config_from;
	const char *pgdata;
	Held held;
} Origin;

/*
 * pg_hba.conf or pg_ident.conf for the copy: the file named (named, else the
 * backup's recorded one, else beside --config-from's file), from this host
 * for --config-from, else from the backup or, when it was inside the
 * source's data directory, from the copy.  *from says where (static or
 * borrowed); NULL text: nowhere.
 */
static char *aux_text(const Origin *g, const char *named, const char *recorded, const char *base, size_t *len,
		      const char **from)
{
	WsError e;
	char *text = NULL;
	ws_error_clear(&e);
	if (g->config_from != NULL) {
		char *dir = fs_dirname(g->config_from);
		char *beside = xasprintf("%s/%s", dir, base);
		const char *path = named != NULL ? named : beside;
		if (fs_read_small(path, PGCONF_MAX, &text, len, &e) == 0)
			*from = named != NULL ? "named by --config-from's file"
					      : "beside --config-from's file";
		free(beside);
		free(dir);
		if (text != NULL)
			return text;
	}
	const char *path = recorded != NULL ? recorded : named;
	const char *dd = g->b->config.data_directory;
	if (path == NULL)
		return NULL;
	if (dd != NULL && within(path, dd)) {
		char *in_copy = xasprintf("%s%s", g->pgdata, path + strlen(dd));
		if (fs_read_small(in_copy, PGCONF_MAX, &text, len, &e) == 0)
			*from = "from the backup's data directory";
		free(in_copy);
		return text;
	}
	if (held_read((void *)&g->held, path, &text, len, &e) == 0)
		*from = "from the backup";
	return text;
}

/* pg_hba.conf (hba) or pg_ident.conf beside the copy's postgresql.conf, unless base.tar had it. */
static int write_aux(const Origin *g, const RebuildConf *rc_conf, bool hba, uid_t uid, gid_t gid,
		     const char **what, WsError *err)
{
	const char *base = hba ? "pg_hba.conf" : "pg_ident.conf";
	char *dest = xasprintf("%s/%s", g->pgdata, base);
	bool present = access(dest, F_OK) == 0;
	free(dest);
	if (present) {
		*what = "from base.tar";
		return 0;
	}
	size_t len = 0;
	const char *from = NULL;
	char *text = aux_text(g, hba ? rc_conf->hba_file : rc_conf->ident_file,
			      hba ? g->b->config.hba_file : g->b->config.ident_file, base, &len, &from);
	if (text == NULL) {
		text = xstrdup(hba ? minimal_hba : minimal_ident);
		len = strlen(text);
		from = hba ? "MINIMAL (local connections only)" : "empty";
		if (hba) {
			log_warning(
				"the backup holds no pg_hba.conf: the copy gets a minimal one that lets only "
				"local connections in");
			log_detail(
				"local: peer authentication; host 127.0.0.1/32 and ::1/128: scram-sha-256.");
			log_hint("Put the rules the copy needs in its pg_hba.conf, or back up with a role "
				 "that "
				 "may read the server's files (see walship backup in walship(1)).");
		}
	}
	*what = from;
	int rc = write_conf_file(g->pgdata, base, text, len, uid, gid, err);
	free(text);
	return rc;
}

/* postgresql.conf and its included files: sanitised from config_from or the backup, else empty. */
static int write_main(Origin *g, RebuildConf *conf, const char **from, uid_t uid, gid_t gid, WsError *err)
{
	const BackupConfig *c = &g->b->config;
	const char *dd = c->data_directory;
	char *confdir =
		c->config_file != NULL && !within(c->config_file, dd) ? fs_dirname(c->config_file) : NULL;
	char *text = NULL;
	size_t len = 0;
	int rc = 0;
	RebuildConfSource local = {local_read, local_list, NULL, false};
	RebuildConfSource held = {held_read, held_list, &g->held, true};
	const RebuildConfSource *src = NULL;
	const char *path = NULL;

	if (g->config_from != NULL) {
		if ((rc = fs_read_small(g->config_from, PGCONF_MAX, &text, &len, err)) != 0)
			goto done;
		src = &local;
		path = g->config_from;
		*from = "from --config-from";
	} else if (c->config_file != NULL && held_read(&g->held, c->config_file, &text, &len, err) == 0) {
		src = &held;
		path = c->config_file;
		*from = "from the backup";
	} else {
		ws_error_clear(err);
		*from = "empty (the backup kept none)";
		rc = write_conf_file(g->pgdata, "postgresql.conf", empty_conf, strlen(empty_conf), uid, gid,
				     err);
		goto done;
	}
	/* Directives name the copy's files by absolute path: they are read wherever the server starts. */
	char *abs = fs_resolve(g->pgdata);
	rc = rebuild_conf_sanitise(path, text, len, dd, confdir, abs ? abs : g->pgdata, src, conf, err);
	free(abs);
	if (rc != 0) {
		ws_error_prefix(err, "cannot give the copy the configuration of \"%s\"", path);
		if (err->hint[0] == '\0')
			ws_error_hint(err,
				      "Rebuild with --config-from=FILE naming a configuration for the copy.");
		goto done;
	}
	for (int i = 0; rc == 0 && i < conf->nfiles; i++) {
		const RebuildConfFile *f = &conf->files[i];
		rc = f->text == NULL ? write_conf_dir(g->pgdata, f->rel, uid, gid, err)
				     : write_conf_file(g->pgdata, f->rel, f->text, f->len, uid, gid, err);
	}
done:
	free(text);
	free(confdir);
	return rc;
}

int rebuild_config_write(Repo *repo, const char *epoch, const BackupMeta *b, const char *config_from,
			 const char *pgdata, uid_t uid, gid_t gid, bool in_place, WsError *err)
{
	Origin g = {b, config_from, pgdata, {&b->config, NULL}};
	RebuildConf conf;
	char *blob = NULL;
	const char *from = NULL, *hba = NULL, *ident = NULL;
	int rc;

	memset(&conf, 0, sizeof(conf));
	/* The backed-up cluster's own data directory: its configuration elsewhere is the one to use. */
	char *here = fs_resolve(pgdata);
	in_place = in_place || (here != NULL && b->config.data_directory != NULL &&
				strcmp(here, b->config.data_directory) == 0);
	free(here);
	if (in_place) {
		log_info("the configuration of this data directory's cluster stays as it is");
		return 0;
	}
	char *own = xasprintf("%s/postgresql.conf", pgdata);
	bool has_conf = access(own, F_OK) == 0;
	free(own);
	if (has_conf) {
		/* initdb's layout: base.tar had the configuration, as the server used it. */
		if (config_from != NULL)
			log_warning("the backup has its own postgresql.conf: --config-from=\"%s\" not used",
				    config_from);
		return 0;
	}
	if (b->config.n_files > 0 && (rc = load_held(repo, epoch, b, &blob, err)) != 0)
		return rc;
	g.held.blob = blob;
	if ((rc = write_main(&g, &conf, &from, uid, gid, err)) != 0 ||
	    (rc = write_aux(&g, &conf, true, uid, gid, &hba, err)) != 0 ||
	    (rc = write_aux(&g, &conf, false, uid, gid, &ident, err)) != 0)
		goto done;
	if (conf.nwarnings > 0)
		log_warning("%d include%s of the configuration %s not in the backup and %s removed from the "
			    "copy's (see \"" MARK_WORDS "\" in its postgresql.conf)",
			    conf.nwarnings, conf.nwarnings == 1 ? "" : "s",
			    conf.nwarnings == 1 ? "was" : "were", conf.nwarnings == 1 ? "was" : "were");
	int included = 0;
	for (int i = 1; i < conf.nfiles; i++)
		included += conf.files[i].text != NULL;
	char inc[64] = "";
	if (included > 0)
		snprintf(inc, sizeof(inc), " with %d included file%s", included, included == 1 ? "" : "s");
	printf("configuration: postgresql.conf %s%s, %d line%s changed (marked \"" MARK_WORDS
	       "\"); pg_hba.conf "
	       "%s; pg_ident.conf %s\n",
	       from, inc, conf.nchanges, conf.nchanges == 1 ? "" : "s", hba, ident);
done:
	rebuild_conf_free(&conf);
	free(blob);
	return rc;
}

/* ---- what the copy will listen on ---- */

/* The settings the server's listening depends on, as the copy's files set them (NULL: the default). */
typedef struct RebuildListen {
	int port; /* 0: not set */
	char *listen_addresses;
	char *unix_socket_directories;
} RebuildListen;

static void listen_file(const char *path, RebuildListen *l, int depth)
{
	char *text = NULL;
	size_t len = 0;
	WsError e;
	ws_error_clear(&e);
	if (depth > INCLUDE_DEPTH || fs_read_small(path, PGCONF_MAX, &text, &len, &e) != 0)
		return;
	char *dir = fs_dirname(path);
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		PgConfLine pl;
		if (pgconf_parse_line(text + pos, n, &pl) == PGCONF_SETTING) {
			if (pgconf_name_is(pl.name, "port")) {
				l->port = atoi(pl.value);
			} else if (pgconf_name_is(pl.name, "listen_addresses")) {
				free(l->listen_addresses);
				l->listen_addresses = xstrdup(pl.value);
			} else if (pgconf_name_is(pl.name, "unix_socket_directories")) {
				free(l->unix_socket_directories);
				l->unix_socket_directories = xstrdup(pl.value);
			} else if (pgconf_name_is(pl.name, "include") ||
				   pgconf_name_is(pl.name, "include_if_exists")) {
				char *t = absolute(pl.value, dir);
				listen_file(t, l, depth + 1);
				free(t);
			} else if (pgconf_name_is(pl.name, "include_dir")) {
				char *t = absolute(pl.value, dir);
				char **names = NULL;
				int count = 0;
				if (local_list(NULL, t, &names, &count, &e) == 0) {
					qsort(names, (size_t)count, sizeof(*names), cmp_names);
					for (int i = 0; i < count; i++) {
						size_t k = strlen(names[i]);
						if (names[i][0] != '.' && k > 5 &&
						    strcmp(names[i] + k - 5, ".conf") == 0) {
							char *f = xasprintf("%s/%s", t, names[i]);
							listen_file(f, l, depth + 1);
							free(f);
						}
					}
				}
				for (int i = 0; i < count; i++)
					free(names[i]);
				free(names);
				free(t);
			}
		}
		pgconf_line_clear(&pl);
		pos += n + (nl ? 1 : 0);
	}
	free(dir);
	free(text);
}

static void rebuild_listen_read(const char *pgdata, RebuildListen *out)
{
	memset(out, 0, sizeof(*out));
	char *conf = xasprintf("%s/postgresql.conf", pgdata);
	char *autoconf = xasprintf("%s/postgresql.auto.conf", pgdata);
	listen_file(conf, out, 0);
	listen_file(autoconf, out, 0);
	free(autoconf);
	free(conf);
}

static void rebuild_listen_clear(RebuildListen *l)
{
	free(l->listen_addresses);
	free(l->unix_socket_directories);
	memset(l, 0, sizeof(*l));
}

/* The server whose socket lock file in dir names port: "data directory \"D\" (process P)", or NULL. */
static char *lock_owner(const char *dir, int port)
{
	char *path = xasprintf("%s/.s.PGSQL.%d.lock", dir, port);
	char *text = NULL, *who = NULL;
	size_t len;
	WsError e;
	ws_error_clear(&e);
	if (fs_read_small(path, 64 * 1024, &text, &len, &e) == 0) {
		char *nl = strchr(text, '\n');
		char *dd = nl ? nl + 1 : NULL;
		char *end = dd ? strchr(dd, '\n') : NULL;
		if (end != NULL) {
			*end = '\0';
			who = xasprintf("the server of data directory \"%s\" (process %ld)", dd,
					strtol(text, NULL, 10));
		}
	}
	free(text);
	free(path);
	return who;
}

/* A server answers on dir/.s.PGSQL.port. */
static bool socket_live(const char *dir, int port)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (str_format(sa.sun_path, sizeof(sa.sun_path), "%s/.s.PGSQL.%d", dir, port) != 0)
		return false;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return live;
}

/* Something listens on port at host (NULL: every address): a bind fails with EADDRINUSE. */
static bool tcp_taken(const char *host, int port)
{
	struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char ps[16];
	bool taken = false;
	snprintf(ps, sizeof(ps), "%d", port);
	if (getaddrinfo(host, ps, &hints, &res) != 0)
		return false;
	for (struct addrinfo *a = res; a != NULL && !taken; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		int one = 1;
		if (fd < 0)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (a->ai_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		taken = bind(fd, a->ai_addr, a->ai_addrlen) != 0 && errno == EADDRINUSE;
		close(fd);
	}
	freeaddrinfo(res);
	return taken;
}

/* The next item of a comma-separated list (a setting's value), trimmed, into buf; NULL at the end. */
static const char *next_item(const char *p, char *buf, size_t size)
{
	while (*p == ' ' || *p == ',' || *p == '\t')
		p++;
	if (*p == '\0')
		return NULL;
	size_t n = 0;
	while (*p && *p != ',' && n + 1 < size)
		buf[n++] = *p++;
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	if (n >= 2 && buf[0] == '"' && buf[n - 1] == '"') {
		memmove(buf, buf + 1, n - 2);
		buf[n - 2] = '\0';
	}
	return p;
}

int rebuild_config_check_port(const char *pgdata, int port, WsError *err)
{
	/* Debian's compiled-in socket directory; /tmp is the one of PostgreSQL's own builds. */
	static const char default_sockets[] = "/var/run/postgresql, /tmp";
	RebuildListen l;
	char item[4096];
	char *who = NULL;
	const char *where = NULL;
	bool taken = false;

	rebuild_listen_read(pgdata, &l);
	if (port <= 0)
		port = l.port > 0 ? l.port : 5432;
	const char *socks = l.unix_socket_directories ? l.unix_socket_directories : default_sockets;
	for (const char *p = socks; !taken && (p = next_item(p, item, sizeof(item))) != NULL;) {
		if (item[0] == '@' || !socket_live(item, port))
			continue;
		taken = true;
		who = lock_owner(item, port);
		where = "socket directory";
	}
	const char *addrs = l.listen_addresses ? l.listen_addresses : "localhost";
	for (const char *p = addrs; !taken && (p = next_item(p, item, sizeof(item))) != NULL;) {
		taken = tcp_taken(strcmp(item, "*") == 0 ? NULL : item, port);
		where = "address";
	}
	/* The owner of a TCP port: a server with its socket where Debian and PostgreSQL put them. */
	for (const char *p = default_sockets; taken && who == NULL && (p = next_item(p, item, sizeof(item)));)
		who = lock_owner(item, port);
	int rc = 0;
	if (taken) {
		rc = ws_error(err, WS_FATAL, "port %d is in use by %s: the copy was not started", port,
			      who ? who : "another program");
		ws_error_detail(err, "The copy would listen on port %d (%s); that %s is taken.", port,
				l.port > 0 ? "its postgresql.conf says so" : "--port or the default", where);
		ws_error_hint(
			err,
			"Pass --port=PORT with a free port.  The data directory is ready: start it with "
			"pg_ctl -D %s -o \"-p PORT\" start, or rebuild again with --force --start "
			"--port=PORT.",
			pgdata);
	}
	free(who);
	rebuild_listen_clear(&l);
	return rc;
}
