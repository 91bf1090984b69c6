/*
 * basebackup.c - the two shapes of BASE_BACKUP's answer, turned into parts a
 * consumer pulls from.  Only one CopyData payload is held at a time, plus (in
 * the 15+ shape) the 'n' or 'm' message that begins the next part, which the
 * reader of the current part has to see to know its part ended.
 */
#include "pg/basebackup.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/lsn.h"
#include "pg/walname.h"
#include "util/mem.h"

#define MANIFEST_NAME "backup_manifest"

struct BbStream {
	const BbConnOps *ops;
	void *ctx;
	bool new_shape; /* 15+: one typed COPY stream */
	bool want_manifest;

	uint64_t start_lsn;
	uint32_t start_tli;
	int n_ts;
	BbTablespace *ts;
	bool *ts_seen;

	int archives_done; /* archives begun */
	bool manifest_done;
	bool in_part;    /* a part was handed out by bb_stream_next */
	bool part_ended; /* and its data ended */
	BbPartKind part_kind;
	bool copy_ended; /* 15+: the one COPY is over */

	char *cur; /* the CopyData payload being handed out */
	size_t cur_len, cur_pos;
	char *pending; /* 15+: an 'n' or 'm' that begins the next part */
	size_t pending_len;

	uint64_t bytes;
};

/* ---- tablespace locations ---- */

bool pg_tablespace_location_normalize(char *location)
{
	size_t n = strlen(location), o = 0;
	if (location[0] != '/' || n >= PG_LOCATION_MAX)
		return false;
	for (const char *c = location; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	char *out = xmalloc(n + 1);
	for (const char *c = location; *c;) {
		while (*c == '/')
			c++;
		size_t len = strcspn(c, "/");
		if (len == 2 && c[0] == '.' && c[1] == '.') {
			free(out);
			return false;
		}
		if (len > 0 && !(len == 1 && c[0] == '.')) {
			out[o++] = '/';
			memcpy(out + o, c, len);
			o += len;
		}
		c += len;
	}
	out[o] = '\0';
	if (o > 0)
		memcpy(location, out, o + 1);
	free(out);
	return o > 0;
}

bool pg_tablespace_location_ok(const char *location)
{
	char *copy = xstrdup(location);
	bool ok = pg_tablespace_location_normalize(copy) && strcmp(copy, location) == 0;
	free(copy);
	return ok;
}

/* ---- sizes ---- */

int pg_size_parse(const char *s, uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = {
		{"", 1},
		{"B", 1},
		{"kB", 1024},
		{"MB", 1024 * 1024},
		{"GB", 1024 * 1024 * 1024},
		{"TB", 1024ull * 1024 * 1024 * 1024},
	};
	uint64_t v = 0;
	const char *p = s;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) == 0) {
			if (v > UINT64_MAX / units[i].mult)
				return -1;
			*out = v * units[i].mult;
			return 0;
		}
	}
	return -1;
}

/* ---- the command ---- */

bool bb_manifest_supported(int server_version)
{
	return server_version >= 130000;
}

char *bb_command(int server_version, const char *label, bool manifest)
{
	/* A replication-protocol string literal: only the quote is special. */
	size_t n = strlen(label);
	char *q = xmalloc(2 * n + 1);
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if (label[i] == '\'')
			q[j++] = '\'';
		q[j++] = label[i];
	}
	q[j] = '\0';
	manifest = manifest && bb_manifest_supported(server_version);

	/*
	 * WAIT false: walship waits for the WAL itself, in the repository, with a
	 * timeout; the server's own wait for archive_command has none and would
	 * hold the backup forever behind a broken archive_command.
	 */
	char *cmd;
	if (server_version >= 150000)
		cmd = xasprintf("BASE_BACKUP (LABEL '%s', PROGRESS, CHECKPOINT 'fast', WAIT false,%s "
				"TABLESPACE_MAP, TARGET 'client')",
				q, manifest ? " MANIFEST 'yes'," : "");
	else
		cmd = xasprintf("BASE_BACKUP LABEL '%s' PROGRESS FAST NOWAIT TABLESPACE_MAP%s", q,
				manifest ? " MANIFEST 'yes'" : "");
	free(q);
	return cmd;
}

/* ---- errors ---- */

static int protocol_error(WsError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int protocol_error(WsError *err, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	ws_error(err, WS_FATAL, "unexpected answer to BASE_BACKUP from the server: %s", text);
	ws_error_hint(err, "Check that the server is a PostgreSQL version walship supports (10 to 17).");
	return WS_FATAL;
}

static int server_error(WsError *err, const BbResult *r, const char *what)
{
	ws_error(err, WS_FATAL, "%s: %s", what, r->message ? r->message : "unknown server error");
	if (r->detail != NULL)
		ws_error_detail(err, "%s", r->detail);
	if (r->hint != NULL)
		ws_error_hint(err, "%s", r->hint);
	return WS_FATAL;
}

static const char *result_kind_str(BbResultKind k)
{
	switch (k) {
	case BB_RESULT_NONE:
		return "the end of the results";
	case BB_RESULT_TUPLES:
		return "a result set";
	case BB_RESULT_COMMAND:
		return "a command status";
	case BB_RESULT_COPY_OUT:
		return "a COPY stream";
	case BB_RESULT_ERROR:
		return "an error";
	}
	return "an unknown result";
}

/* ---- results ---- */

static const char *cell(const BbResult *r, int row, int col)
{
	return r->values[row * r->ncols + col];
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9' || v > (max - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

/* A position result set: one row of (LSN, timeline). */
static int parse_position(const BbResult *r, const char *which, uint64_t *lsn, uint32_t *tli, WsError *err)
{
	uint64_t t;
	if (r->nrows != 1 || r->ncols < 2)
		return protocol_error(err, "the %s position has %d rows of %d columns, expected 1 of 2",
				      which, r->nrows, r->ncols);
	if (cell(r, 0, 0) == NULL || lsn_parse(cell(r, 0, 0), lsn, NULL) != 0)
		return protocol_error(err, "the %s position \"%.40s\" is not an LSN", which,
				      cell(r, 0, 0) ? cell(r, 0, 0) : "NULL");
	if (parse_uint(cell(r, 0, 1), UINT32_MAX, &t) != 0 || t == 0)
		return protocol_error(err, "the %s timeline \"%.40s\" is not a timeline", which,
				      cell(r, 0, 1) ? cell(r, 0, 1) : "NULL");
	*tli = (uint32_t)t;
	return 0;
}

static int parse_tablespaces(BbStream *s, const BbResult *r, WsError *err)
{
	int bases = 0;
	if (r->ncols < 3 || r->nrows < 1)
		return protocol_error(err, "the tablespace list has %d rows of %d columns", r->nrows,
				      r->ncols);
	s->ts = xcalloc((size_t)r->nrows, sizeof(BbTablespace));
	s->ts_seen = xcalloc((size_t)r->nrows, sizeof(bool));
	for (int i = 0; i < r->nrows; i++) {
		BbTablespace *t = &s->ts[s->n_ts++];
		const char *oid = cell(r, i, 0), *loc = cell(r, i, 1), *size = cell(r, i, 2);
		uint64_t v;
		if (oid == NULL) {
			t->is_base = true;
			bases++;
			snprintf(t->name, sizeof(t->name), "base.tar");
		} else {
			if (parse_uint(oid, UINT32_MAX, &v) != 0 || v == 0)
				return protocol_error(err, "tablespace OID \"%.40s\" is not an OID", oid);
			t->oid = (uint32_t)v;
			snprintf(t->name, sizeof(t->name), "%" PRIu32 ".tar", t->oid);
			if (loc == NULL || loc[0] == '\0')
				return protocol_error(err, "tablespace %" PRIu32 " has no location", t->oid);
			for (int j = 0; j < i; j++)
				if (!s->ts[j].is_base && s->ts[j].oid == t->oid)
					return protocol_error(err, "tablespace %" PRIu32 " is listed twice",
							      t->oid);
			t->location = xstrdup(loc);
			/* Refused now, not after the data: manifest.json could not record it. */
			char *norm = xstrdup(loc);
			bool usable = pg_tablespace_location_normalize(norm);
			free(norm);
			if (!usable) {
				char shown[WALNAME_ESCAPE_MAX + 8];
				walname_escape(loc, strlen(loc), shown, sizeof(shown));
				ws_error(err, WS_FATAL,
					 "tablespace %" PRIu32 " is at \"%s\", not an absolute path", t->oid,
					 shown);
				ws_error_detail(
					err, "walship records where each tablespace belongs, to restore it "
					     "there; a relative path, a \"..\" component or a control "
					     "character cannot be recorded.");
				ws_error_hint(err,
					      "With the server stopped, make pg_tblspc/%" PRIu32
					      " a symbolic link to the tablespace's absolute path.",
					      t->oid);
				return WS_FATAL;
			}
		}
		t->size_kb = -1;
		if (size != NULL) {
			if (parse_uint(size, INT64_MAX / 1024, &v) != 0)
				return protocol_error(err, "tablespace size \"%.40s\" is not a number", size);
			t->size_kb = (int64_t)v;
		}
	}
	if (bases != 1)
		return protocol_error(err, "the tablespace list has %d main data directories", bases);
	return 0;
}

/* The next result, which must be of kind want; a server error is reported as what failed. */
static int expect_result(BbStream *s, BbResultKind want, const char *what, BbResult *r, WsError *err)
{
	int rc = s->ops->get_result(s->ctx, r, err);
	if (rc != 0)
		return rc;
	if (r->kind == want)
		return 0;
	if (r->kind == BB_RESULT_ERROR)
		rc = server_error(err, r, what);
	else
		rc = protocol_error(err, "%s instead of %s", result_kind_str(r->kind), result_kind_str(want));
	s->ops->clear_result(s->ctx, r);
	return rc;
}

/* ---- the stream ---- */

BbStream *bb_stream_new(const BbConnOps *ops, void *ctx, int server_version, bool manifest)
{
	BbStream *s = xcalloc(1, sizeof(*s));
	s->ops = ops;
	s->ctx = ctx;
	s->new_shape = server_version >= 150000;
	s->want_manifest = manifest && bb_manifest_supported(server_version);
	return s;
}

void bb_stream_free(BbStream *s)
{
	if (s == NULL)
		return;
	if (s->cur != NULL)
		s->ops->free_copy(s->ctx, s->cur);
	if (s->pending != NULL)
		s->ops->free_copy(s->ctx, s->pending);
	for (int i = 0; i < s->n_ts; i++)
		free(s->ts[i].location);
	free(s->ts);
	free(s->ts_seen);
	free(s);
}

int bb_stream_start(BbStream *s, WsError *err)
{
	BbResult r;
	int rc = expect_result(s, BB_RESULT_TUPLES, "could not start the base backup", &r, err);
	if (rc != 0)
		return rc;
	rc = parse_position(&r, "start", &s->start_lsn, &s->start_tli, err);
	s->ops->clear_result(s->ctx, &r);
	if (rc != 0)
		return rc;

	if ((rc = expect_result(s, BB_RESULT_TUPLES, "could not start the base backup", &r, err)) != 0)
		return rc;
	rc = parse_tablespaces(s, &r, err);
	s->ops->clear_result(s->ctx, &r);
	if (rc != 0 || !s->new_shape)
		return rc;

	if ((rc = expect_result(s, BB_RESULT_COPY_OUT, "base backup failed", &r, err)) != 0)
		return rc;
	s->ops->clear_result(s->ctx, &r);
	return 0;
}

uint64_t bb_stream_start_lsn(const BbStream *s)
{
	return s->start_lsn;
}

uint32_t bb_stream_start_tli(const BbStream *s)
{
	return s->start_tli;
}

int bb_stream_n_tablespaces(const BbStream *s)
{
	return s->n_ts;
}

const BbTablespace *bb_stream_tablespace(const BbStream *s, int i)
{
	return i >= 0 && i < s->n_ts ? &s->ts[i] : NULL;
}

uint64_t bb_stream_estimate(const BbStream *s)
{
	uint64_t total = 0;
	for (int i = 0; i < s->n_ts; i++)
		if (s->ts[i].size_kb > 0)
			total += (uint64_t)s->ts[i].size_kb * 1024;
	return total;
}

uint64_t bb_stream_bytes(const BbStream *s)
{
	return s->bytes;
}

/* 15+: the next payload that is not a progress report; 0 at the end of the COPY. */
static int next_message(BbStream *s, char **buf, size_t *len, WsError *err)
{
	for (;;) {
		int rc = s->ops->get_copy(s->ctx, buf, len, err);
		if (rc <= 0)
			return rc;
		if (*len == 0) {
			s->ops->free_copy(s->ctx, *buf);
			return protocol_error(err, "an empty CopyData message");
		}
		if ((*buf)[0] != 'p')
			return 1;
		/* Progress counts bytes the server processed; walship counts what it stored. */
		size_t plen = *len;
		s->ops->free_copy(s->ctx, *buf);
		if (plen != 9)
			return protocol_error(err, "a progress message of %zu bytes", plen);
	}
}

/* 15+: an 'n' message: the archive's name and location, which must match the list. */
static int begin_archive(BbStream *s, const char *msg, size_t len, BbPart *part, WsError *err)
{
	const char *name = msg + 1;
	const char *end = msg + len;
	const char *nul = memchr(name, '\0', (size_t)(end - name));
	if (nul == NULL)
		return protocol_error(err, "a new-archive message without a name");
	const char *loc = nul + 1;
	const char *nul2 = loc < end ? memchr(loc, '\0', (size_t)(end - loc)) : NULL;
	if (nul2 == NULL)
		return protocol_error(err, "a new-archive message without a location");
	for (int i = 0; i < s->n_ts; i++) {
		BbTablespace *t = &s->ts[i];
		if (strcmp(t->name, name) != 0)
			continue;
		if (strcmp(t->location ? t->location : "", loc) != 0)
			return protocol_error(
				err, "archive \"%.64s\" is of location \"%.200s\", listed as \"%.200s\"",
				name, loc, t->location ? t->location : "");
		if (s->ts_seen[i])
			return protocol_error(err, "archive \"%.64s\" was sent twice", name);
		if (s->manifest_done)
			return protocol_error(err, "archive \"%.64s\" after the manifest", name);
		s->ts_seen[i] = true;
		part->kind = BB_PART_ARCHIVE;
		part->tablespace = t;
		part->name = t->name;
		return 0;
	}
	return protocol_error(err, "archive \"%.64s\" of location \"%.200s\" is not in the tablespace list",
			      name, loc);
}

static int begin_manifest(BbStream *s, BbPart *part, WsError *err)
{
	if (!s->want_manifest || s->manifest_done)
		return protocol_error(err, "a backup manifest that was not asked for");
	if (s->archives_done != s->n_ts)
		return protocol_error(err, "the backup manifest after %d of %d archives", s->archives_done,
				      s->n_ts);
	s->manifest_done = true;
	part->kind = BB_PART_MANIFEST;
	part->tablespace = NULL;
	part->name = MANIFEST_NAME;
	return 0;
}

static int next_new_shape(BbStream *s, BbPart *part, WsError *err)
{
	char *buf = s->pending;
	size_t len = s->pending_len;
	int rc;

	s->pending = NULL;
	if (buf == NULL) {
		if (s->copy_ended)
			return 0;
		rc = next_message(s, &buf, &len, err);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			s->copy_ended = true;
			return 0;
		}
	}
	switch (buf[0]) {
	case 'n':
		rc = begin_archive(s, buf, len, part, err);
		if (rc == 0)
			s->archives_done++;
		break;
	case 'm':
		rc = begin_manifest(s, part, err);
		break;
	case 'd':
		rc = protocol_error(err, "data outside any archive");
		break;
	default:
		rc = protocol_error(err, "a CopyData message of type 0x%02x", (unsigned char)buf[0]);
		break;
	}
	s->ops->free_copy(s->ctx, buf);
	return rc < 0 ? rc : 1;
}

static int next_old_shape(BbStream *s, BbPart *part, WsError *err)
{
	BbResult r;
	int rc;
	if (s->archives_done < s->n_ts) {
		if ((rc = expect_result(s, BB_RESULT_COPY_OUT, "base backup failed", &r, err)) != 0)
			return rc;
		s->ops->clear_result(s->ctx, &r);
		BbTablespace *t = &s->ts[s->archives_done++];
		part->kind = BB_PART_ARCHIVE;
		part->tablespace = t;
		part->name = t->name;
		return 1;
	}
	if (s->want_manifest && !s->manifest_done) {
		if ((rc = expect_result(s, BB_RESULT_COPY_OUT, "base backup failed", &r, err)) != 0)
			return rc;
		s->ops->clear_result(s->ctx, &r);
		s->manifest_done = true;
		part->kind = BB_PART_MANIFEST;
		part->tablespace = NULL;
		part->name = MANIFEST_NAME;
		return 1;
	}
	return 0;
}

int bb_stream_next(BbStream *s, BbPart *part, WsError *err)
{
	if (s->in_part && !s->part_ended)
		return ws_error(err, WS_FATAL,
				"internal error: the previous part of the base backup was not read "
				"to its end");
	s->in_part = false;
	s->part_ended = false;
	int rc = s->new_shape ? next_new_shape(s, part, err) : next_old_shape(s, part, err);
	if (rc == 1) {
		s->in_part = true;
		s->part_kind = part->kind;
	}
	return rc;
}

int bb_stream_read(void *ctx, unsigned char *buf, size_t cap, size_t *got, WsError *err)
{
	BbStream *s = ctx;
	size_t n = 0;
	int rc = 0;

	*got = 0;
	if (!s->in_part || s->part_ended)
		return 0;
	while (n < cap) {
		if (s->cur != NULL && s->cur_pos < s->cur_len) {
			size_t k = s->cur_len - s->cur_pos;
			if (k > cap - n)
				k = cap - n;
			memcpy(buf + n, s->cur + s->cur_pos, k);
			s->cur_pos += k;
			n += k;
			continue;
		}
		if (s->cur != NULL) {
			s->ops->free_copy(s->ctx, s->cur);
			s->cur = NULL;
		}
		/* Hand over what there is rather than wait for the network. */
		if (n > 0)
			break;

		char *msg;
		size_t len;
		rc = s->new_shape ? next_message(s, &msg, &len, err)
				  : s->ops->get_copy(s->ctx, &msg, &len, err);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			s->part_ended = true;
			s->copy_ended = s->new_shape;
			break;
		}
		if (!s->new_shape) {
			s->cur = msg;
			s->cur_len = len;
			s->cur_pos = 0;
		} else if (msg[0] == 'd') {
			s->cur = msg;
			s->cur_len = len;
			s->cur_pos = 1;
		} else if (msg[0] == 'n' || msg[0] == 'm') {
			/* The next part begins: keep its header for bb_stream_next. */
			s->pending = msg;
			s->pending_len = len;
			s->part_ended = true;
			break;
		} else {
			unsigned char type = (unsigned char)msg[0];
			s->ops->free_copy(s->ctx, msg);
			return protocol_error(err, "a CopyData message of type 0x%02x", type);
		}
	}
	if (s->part_kind == BB_PART_ARCHIVE)
		s->bytes += n;
	*got = n;
	return 0;
}

static int finish_error(const BbResult *r, WsError *err)
{
	if (r->sqlstate != NULL && strcmp(r->sqlstate, PG_SQLSTATE_DATA_CORRUPTED) == 0) {
		ws_error(err, WS_CORRUPT,
			 "base backup failed: the server found damaged data pages (page "
			 "checksum failure)");
		ws_error_detail(err,
				"The server reported \"%s\" (SQLSTATE %s); its warnings name the files "
				"and blocks.",
				r->message ? r->message : "", r->sqlstate);
		ws_error_hint(err,
			      "The backup is not usable. Repair or restore the damaged relations, then take "
			      "a new backup.");
		return WS_CORRUPT;
	}
	return server_error(err, r, "base backup failed");
}

int bb_stream_finish(BbStream *s, uint64_t *stop_lsn, uint32_t *stop_tli, WsError *err)
{
	BbResult r;
	bool have_stop = false;
	int failed = 0;
	int rc;

	if (s->in_part && !s->part_ended)
		return ws_error(err, WS_FATAL,
				"internal error: the last part of the base backup was not read "
				"to its end");
	if (s->new_shape && (!s->copy_ended || s->pending != NULL))
		return protocol_error(err, "more data after the last part");

	/* Every result until the last: the checksum verdict comes after the stop position. */
	for (;;) {
		if ((rc = s->ops->get_result(s->ctx, &r, err)) != 0)
			return rc;
		if (r.kind == BB_RESULT_NONE)
			break;
		if (failed == 0) {
			if (r.kind == BB_RESULT_ERROR) {
				failed = finish_error(&r, err);
			} else if (r.kind == BB_RESULT_TUPLES && !have_stop) {
				failed = parse_position(&r, "stop", stop_lsn, stop_tli, err);
				have_stop = failed == 0;
			} else if (r.kind != BB_RESULT_COMMAND) {
				failed = protocol_error(err, "%s after the backup", result_kind_str(r.kind));
				s->ops->clear_result(s->ctx, &r);
				/* A COPY cannot be skipped by asking for results: stop here. */
				return failed;
			}
		}
		s->ops->clear_result(s->ctx, &r);
	}
	if (failed != 0)
		return failed;
	if (s->archives_done != s->n_ts)
		return protocol_error(err, "%d archives for %d tablespaces", s->archives_done, s->n_ts);
	if (s->want_manifest && !s->manifest_done)
		return protocol_error(err, "no backup manifest");
	if (!have_stop)
		return protocol_error(err, "no stop position");
	return 0;
}
