/*
 * test_basebackup.c - BASE_BACKUP's two answer shapes driven by scripted
 * results: the 15+ typed COPY stream and the 10..14 COPY per tablespace,
 * the parts' bytes as a reader pulls them through small buffers, server
 * errors (SQLSTATE XX001 after the stop position), and answers out of shape.
 * Also SHOW sizes and the command text per version.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/basebackup.h"
#include "util/mem.h"

/* ---- a scripted connection ---- */

typedef enum EvType {
	EV_RESULT = 1,
	EV_COPY,     /* one CopyData payload */
	EV_COPY_END, /* PQgetCopyData's -1 */
	EV_LOST,     /* PQgetCopyData's -2 */
} EvType;

typedef struct Event {
	EvType type;
	BbResultKind kind;
	int nrows, ncols;
	const char *const *values;
	const char *sqlstate;
	const char *message;
	const char *data; /* EV_COPY */
	size_t len;
} Event;

typedef struct Script {
	const Event *ev;
	int n;
	int pos;
	int live; /* payloads handed out and not yet freed */
	int results_live;
} Script;

static int s_get_result(void *ctx, BbResult *out, WsError *err)
{
	(void)err;
	Script *s = ctx;
	memset(out, 0, sizeof(*out));
	if (s->pos == s->n) {
		out->kind = BB_RESULT_NONE;
		return 0;
	}
	const Event *e = &s->ev[s->pos];
	if (e->type != EV_RESULT)
		fail_msg("get_result called at event %d, which is copy data", s->pos);
	s->pos++;
	out->kind = e->kind;
	out->nrows = e->nrows;
	out->ncols = e->ncols;
	out->values = e->values;
	out->sqlstate = e->sqlstate;
	out->message = e->message;
	s->results_live++;
	return 0;
}

static void s_clear_result(void *ctx, BbResult *res)
{
	Script *s = ctx;
	s->results_live--;
	memset(res, 0, sizeof(*res));
}

static int s_get_copy(void *ctx, char **buf, size_t *len, WsError *err)
{
	Script *s = ctx;
	if (s->pos == s->n)
		fail_msg("get_copy called after the end of the script");
	const Event *e = &s->ev[s->pos];
	if (e->type == EV_RESULT)
		fail_msg("get_copy called at event %d, which is a result", s->pos);
	s->pos++;
	if (e->type == EV_COPY_END)
		return 0;
	if (e->type == EV_LOST)
		return ws_error(err, WS_FATAL,
				"could not read the base backup from the server: connection lost");
	*buf = xmalloc(e->len + 1);
	memcpy(*buf, e->data, e->len);
	(*buf)[e->len] = '\0';
	*len = e->len;
	s->live++;
	return 1;
}

static void s_free_copy(void *ctx, char *buf)
{
	Script *s = ctx;
	s->live--;
	free(buf);
}

static const BbConnOps script_ops = {s_get_result, s_clear_result, s_get_copy, s_free_copy};

#define RESULT(k, r, c, v)                                                                                   \
	{                                                                                                    \
		EV_RESULT, k, r, c, v, NULL, NULL, NULL, 0                                                   \
	}
#define ERROR_RESULT(state, msg)                                                                             \
	{                                                                                                    \
		EV_RESULT, BB_RESULT_ERROR, 0, 0, NULL, state, msg, NULL, 0                                  \
	}
#define COPY(lit)                                                                                            \
	{                                                                                                    \
		EV_COPY, 0, 0, 0, NULL, NULL, NULL, lit, sizeof(lit) - 1                                     \
	}
#define COPY_BIN(p, n)                                                                                       \
	{                                                                                                    \
		EV_COPY, 0, 0, 0, NULL, NULL, NULL, p, n                                                     \
	}
#define COPY_END                                                                                             \
	{                                                                                                    \
		EV_COPY_END, 0, 0, 0, NULL, NULL, NULL, NULL, 0                                              \
	}

static const char *const start_row[] = {"0/2000028", "1"};
static const char *const stop_row[] = {"0/3000100", "1"};
static const char *const ts_rows[] = {"16385", "/srv/ts1", "10", NULL, NULL, "20"};
static const char *const base_only[] = {NULL, NULL, "20"};

/* A payload larger than the reader's buffer, and than one zstd input chunk in real use. */
static char big[70000];

static void fill_big(void)
{
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 23);
}

/* ---- pulling parts ---- */

typedef struct Collected {
	char *data;
	size_t len;
} Collected;

/* Read the current part through a reader buffer of cap bytes. */
static int read_part(BbStream *bs, size_t cap, Collected *c, WsError *err)
{
	unsigned char *buf = xmalloc(cap);
	c->data = NULL;
	c->len = 0;
	for (;;) {
		size_t got = 99;
		int rc = bb_stream_read(bs, buf, cap, &got, err);
		if (rc != 0) {
			free(buf);
			free(c->data);
			c->data = NULL;
			return rc;
		}
		if (got == 0)
			break;
		assert_true(got <= cap);
		c->data = xrealloc(c->data, c->len + got);
		memcpy(c->data + c->len, buf, got);
		c->len += got;
	}
	/* The end is sticky: a reader asked again still gets 0. */
	size_t got = 99;
	assert_int_equal(bb_stream_read(bs, buf, cap, &got, err), 0);
	assert_int_equal(got, 0);
	free(buf);
	return 0;
}

static void expect_part(BbStream *bs, size_t cap, BbPartKind kind, const char *name, const char *data,
			size_t len)
{
	WsError err;
	BbPart part;
	Collected c;
	int rc = bb_stream_next(bs, &part, &err);
	if (rc != 1)
		fail_msg("expected part \"%s\", got %d (%s)", name, rc, err.msg);
	assert_int_equal(part.kind, kind);
	assert_string_equal(part.name, name);
	rc = read_part(bs, cap, &c, &err);
	if (rc != 0)
		fail_msg("reading \"%s\": %s", name, err.msg);
	assert_int_equal(c.len, len);
	if (len > 0)
		assert_memory_equal(c.data, data, len);
	free(c.data);
}

static void expect_no_more_parts(BbStream *bs)
{
	WsError err;
	BbPart part;
	int rc = bb_stream_next(bs, &part, &err);
	if (rc != 0)
		fail_msg("expected no more parts, got %d (%s)", rc, err.msg);
}

static BbStream *started(Script *s, int version, bool manifest)
{
	WsError err;
	BbStream *bs = bb_stream_new(&script_ops, s, version, manifest);
	int rc = bb_stream_start(bs, &err);
	if (rc != 0)
		fail_msg("start failed: %s", err.msg);
	return bs;
}

static void finish_ok(BbStream *bs, Script *s)
{
	WsError err;
	uint64_t stop = 0;
	uint32_t tli = 0;
	int rc = bb_stream_finish(bs, &stop, &tli, &err);
	if (rc != 0)
		fail_msg("finish failed: %s", err.msg);
	assert_true(stop == 0x3000100);
	assert_int_equal(tli, 1);
	assert_int_equal(s->pos, s->n);
}

static void done(BbStream *bs, Script *s)
{
	bb_stream_free(bs);
	assert_int_equal(s->live, 0);
	assert_int_equal(s->results_live, 0);
}

/* ---- 15+ ---- */

static void test_v15_archives_and_manifest(void **state)
{
	(void)state;
	static const char prog[9] = {'p', 0, 0, 0, 0, 0, 0, 0x10, 0};
	fill_big();
	char *big_d = xmalloc(sizeof(big) + 1);
	big_d[0] = 'd';
	memcpy(big_d + 1, big, sizeof(big));
	const Event ev[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 2, 3, ts_rows),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("n16385.tar\0/srv/ts1\0"),
		COPY("dhello "),
		COPY_BIN(prog, 9),
		COPY("d"),
		COPY("dworld"),
		COPY("nbase.tar\0\0"),
		COPY_BIN(big_d, sizeof(big) + 1),
		COPY_BIN(prog, 9),
		COPY("m"),
		COPY("d{\"PostgreSQL-Backup-Manifest-Version\": 1}"),
		COPY_END,
		RESULT(BB_RESULT_TUPLES, 1, 2, stop_row),
		RESULT(BB_RESULT_COMMAND, 0, 0, NULL),
	};
	/* Buffers smaller and larger than the payloads. */
	static const size_t caps[] = {1, 7, 4096, 1 << 20};
	for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
		Script s = {ev, (int)(sizeof(ev) / sizeof(ev[0])), 0, 0, 0};
		BbStream *bs = started(&s, 150020, true);
		assert_true(bb_stream_start_lsn(bs) == 0x2000028);
		assert_int_equal(bb_stream_start_tli(bs), 1);
		assert_int_equal(bb_stream_n_tablespaces(bs), 2);
		const BbTablespace *t = bb_stream_tablespace(bs, 0);
		assert_false(t->is_base);
		assert_int_equal(t->oid, 16385);
		assert_string_equal(t->location, "/srv/ts1");
		assert_true(bb_stream_tablespace(bs, 1)->is_base);
		assert_null(bb_stream_tablespace(bs, 1)->location);
		assert_null(bb_stream_tablespace(bs, 2));
		assert_true(bb_stream_estimate(bs) == 30 * 1024);

		expect_part(bs, caps[k], BB_PART_ARCHIVE, "16385.tar", "hello world", 11);
		expect_part(bs, caps[k], BB_PART_ARCHIVE, "base.tar", big, sizeof(big));
		expect_part(bs, caps[k], BB_PART_MANIFEST, "backup_manifest",
			    "{\"PostgreSQL-Backup-Manifest-Version\": 1}", 41);
		expect_no_more_parts(bs);
		expect_no_more_parts(bs);
		/* Archive bytes only, the manifest not counted. */
		assert_true(bb_stream_bytes(bs) == 11 + sizeof(big));
		finish_ok(bs, &s);
		done(bs, &s);
	}
	free(big_d);
}

static void test_v15_checksum_failure_after_stop_position(void **state)
{
	(void)state;
	const Event ev[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 1, 3, base_only),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("nbase.tar\0\0"),
		COPY("dtar"),
		COPY("m"),
		COPY("d{}"),
		COPY_END,
		RESULT(BB_RESULT_TUPLES, 1, 2, stop_row),
		ERROR_RESULT("XX001", "checksum verification failure during base backup"),
	};
	Script s = {ev, (int)(sizeof(ev) / sizeof(ev[0])), 0, 0, 0};
	BbStream *bs = started(&s, 150020, true);
	expect_part(bs, 64, BB_PART_ARCHIVE, "base.tar", "tar", 3);
	expect_part(bs, 64, BB_PART_MANIFEST, "backup_manifest", "{}", 2);
	expect_no_more_parts(bs);

	WsError err;
	uint64_t stop;
	uint32_t tli;
	assert_int_equal(bb_stream_finish(bs, &stop, &tli, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "page checksum failure"));
	assert_non_null(strstr(err.detail, "XX001"));
	assert_non_null(strstr(err.detail, "checksum verification failure during base backup"));
	assert_int_equal(s.pos, s.n);
	done(bs, &s);
}

static void test_v15_other_server_error_is_fatal(void **state)
{
	(void)state;
	const Event ev[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 1, 3, base_only),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("nbase.tar\0\0"),
		COPY("dpartial"),
		COPY_END, /* the error ended the COPY */
		ERROR_RESULT("58P01", "could not open file \"./base/1/1234\": No such file or directory"),
	};
	Script s = {ev, (int)(sizeof(ev) / sizeof(ev[0])), 0, 0, 0};
	BbStream *bs = started(&s, 160000, true);
	expect_part(bs, 64, BB_PART_ARCHIVE, "base.tar", "partial", 7);
	expect_no_more_parts(bs);
	WsError err;
	uint64_t stop;
	uint32_t tli;
	assert_int_equal(bb_stream_finish(bs, &stop, &tli, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "base backup failed: could not open file"));
	done(bs, &s);
}

static void test_v15_missing_archive_or_manifest_detected(void **state)
{
	(void)state;
	WsError err;
	uint64_t stop;
	uint32_t tli;
	/* The COPY ended after one of two archives, with no error: never a complete backup. */
	const Event ev[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 2, 3, ts_rows),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("n16385.tar\0/srv/ts1\0"),
		COPY("dx"),
		COPY_END,
		RESULT(BB_RESULT_TUPLES, 1, 2, stop_row),
		RESULT(BB_RESULT_COMMAND, 0, 0, NULL),
	};
	Script s = {ev, (int)(sizeof(ev) / sizeof(ev[0])), 0, 0, 0};
	BbStream *bs = started(&s, 150020, true);
	expect_part(bs, 64, BB_PART_ARCHIVE, "16385.tar", "x", 1);
	expect_no_more_parts(bs);
	assert_int_equal(bb_stream_finish(bs, &stop, &tli, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "1 archives for 2 tablespaces"));
	done(bs, &s);

	/* Both archives but no manifest although one was asked for. */
	const Event ev2[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 1, 3, base_only),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("nbase.tar\0\0"),
		COPY_END,
		RESULT(BB_RESULT_TUPLES, 1, 2, stop_row),
		RESULT(BB_RESULT_COMMAND, 0, 0, NULL),
	};
	Script s2 = {ev2, (int)(sizeof(ev2) / sizeof(ev2[0])), 0, 0, 0};
	bs = started(&s2, 150020, true);
	expect_part(bs, 64, BB_PART_ARCHIVE, "base.tar", "", 0);
	expect_no_more_parts(bs);
	assert_int_equal(bb_stream_finish(bs, &stop, &tli, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "no backup manifest"));
	done(bs, &s2);
}

/* One malformed message after a good start: next() must refuse it. */
static void expect_bad_message(const char *data, size_t len, const char *words)
{
	const Event ev[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 2, 3, ts_rows),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY_BIN(data, len),
	};
	Script s = {ev, 4, 0, 0, 0};
	BbStream *bs = started(&s, 150020, true);
	WsError err;
	BbPart part;
	ws_error_clear(&err);
	assert_int_equal(bb_stream_next(bs, &part, &err), WS_FATAL);
	if (strstr(err.msg, words) == NULL)
		fail_msg("message \"%s\" does not say \"%s\"", err.msg, words);
	assert_non_null(strstr(err.msg, "unexpected answer to BASE_BACKUP"));
	done(bs, &s);
}

static void test_v15_malformed_messages_refused(void **state)
{
	(void)state;
	expect_bad_message("dxyz", 4, "data outside any archive");
	expect_bad_message("x", 1, "type 0x78");
	expect_bad_message("m", 1, "after 0 of 2 archives");
	expect_bad_message("n../../etc.tar\0\0", 16, "not in the tablespace list");
	expect_bad_message("nbase.tar", 9, "without a name");
	expect_bad_message("nbase.tar\0", 10, "without a location");
	expect_bad_message("n16385.tar\0/elsewhere\0", 22, "listed as \"/srv/ts1\"");
	expect_bad_message("p123", 4, "progress message of 4 bytes");
}

static void test_v15_archive_sent_twice_refused(void **state)
{
	(void)state;
	const Event ev[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 1, 3, base_only),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("nbase.tar\0\0"),
		COPY("nbase.tar\0\0"),
	};
	Script s = {ev, (int)(sizeof(ev) / sizeof(ev[0])), 0, 0, 0};
	BbStream *bs = started(&s, 150020, true);
	expect_part(bs, 64, BB_PART_ARCHIVE, "base.tar", "", 0);
	WsError err;
	BbPart part;
	assert_int_equal(bb_stream_next(bs, &part, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "sent twice"));
	done(bs, &s);
}

static void test_next_before_part_read_is_refused(void **state)
{
	(void)state;
	const Event ev[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 1, 3, base_only),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("nbase.tar\0\0"),
		COPY("dabc"),
	};
	Script s = {ev, (int)(sizeof(ev) / sizeof(ev[0])), 0, 0, 0};
	BbStream *bs = started(&s, 150020, true);
	WsError err;
	BbPart part;
	assert_int_equal(bb_stream_next(bs, &part, &err), 1);
	unsigned char b[2];
	size_t got;
	assert_int_equal(bb_stream_read(bs, b, 2, &got, &err), 0);
	assert_int_equal(got, 2);
	assert_int_equal(bb_stream_next(bs, &part, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "not read to its end"));
	uint64_t stop;
	uint32_t tli;
	assert_int_equal(bb_stream_finish(bs, &stop, &tli, &err), WS_FATAL);
	done(bs, &s);
}

static void test_connection_lost_mid_archive(void **state)
{
	(void)state;
	const Event ev[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 1, 3, base_only),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("nbase.tar\0\0"),
		COPY("dabc"),
		{EV_LOST, 0, 0, 0, NULL, NULL, NULL, NULL, 0},
	};
	Script s = {ev, (int)(sizeof(ev) / sizeof(ev[0])), 0, 0, 0};
	BbStream *bs = started(&s, 150020, true);
	WsError err;
	BbPart part;
	Collected c;
	assert_int_equal(bb_stream_next(bs, &part, &err), 1);
	assert_int_equal(read_part(bs, 64, &c, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "connection lost"));
	done(bs, &s);
}

static void test_tablespace_locations_normalised(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out; /* out NULL: refused */
	} cases[] = {
		{"/srv/ts1", "/srv/ts1"},
		{"/srv/ts1/", "/srv/ts1"},
		{"//srv///ts1//", "/srv/ts1"},
		{"/srv/./ts1/.", "/srv/ts1"},
		{"/srv/.ts1/..x/x..", "/srv/.ts1/..x/x.."},
		{"/srv/ts 1", "/srv/ts 1"},
		{"srv/ts1", NULL},
		{"./ts1", NULL},
		{"", NULL},
		{"/", NULL},
		{"/./", NULL},
		{"/srv/../etc", NULL},
		{"/srv/ts1/..", NULL},
		{"/srv/ts\n1", NULL},
		{"/srv/ts\x7f", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[64];
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		bool ok = pg_tablespace_location_normalize(buf);
		if (ok != (cases[i].out != NULL))
			fail_msg("\"%s\": %s", cases[i].in, ok ? "accepted" : "refused");
		assert_string_equal(buf, ok ? cases[i].out : cases[i].in);
		assert_int_equal(pg_tablespace_location_ok(cases[i].in),
				 cases[i].out != NULL && strcmp(cases[i].in, cases[i].out) == 0);
	}
	char *longest = xmalloc(PG_LOCATION_MAX + 1);
	memset(longest, 'a', PG_LOCATION_MAX);
	longest[0] = '/';
	longest[PG_LOCATION_MAX] = '\0';
	assert_false(pg_tablespace_location_normalize(longest));
	longest[PG_LOCATION_MAX - 1] = '\0';
	assert_true(pg_tablespace_location_ok(longest));
	free(longest);
}

static void test_start_errors(void **state)
{
	(void)state;
	WsError err;
	/* The server refuses the command. */
	const Event ev1[] = {
		ERROR_RESULT("42501", "permission denied to start a base backup"),
	};
	Script s1 = {ev1, 1, 0, 0, 0};
	BbStream *bs = bb_stream_new(&script_ops, &s1, 150020, true);
	assert_int_equal(bb_stream_start(bs, &err), WS_FATAL);
	assert_string_equal(err.msg,
			    "could not start the base backup: permission denied to start a base backup");
	done(bs, &s1);

	/* Not an LSN; a timeline of 0; two main directories; a tablespace without location. */
	static const char *const bad_lsn[] = {"0/20000G8", "1"};
	static const char *const bad_tli[] = {"0/2000028", "0"};
	static const char *const two_bases[] = {NULL, NULL, "1", NULL, NULL, "2"};
	static const char *const no_loc[] = {"16385", NULL, "1", NULL, NULL, "2"};
	static const char *const bad_size[] = {NULL, NULL, "-5"};
	static const char *const relative[] = {"16385", "../ts1", "1", NULL, NULL, "2"};
	static const char *const dotdot[] = {"16385", "/srv/../etc", "1", NULL, NULL, "2"};
	const struct {
		const char *const *start;
		const char *const *ts;
		int ts_rows;
		const char *words;
	} cases[] = {
		{bad_lsn, base_only, 1, "is not an LSN"},
		{bad_tli, base_only, 1, "is not a timeline"},
		{start_row, two_bases, 2, "2 main data directories"},
		{start_row, no_loc, 2, "has no location"},
		{start_row, bad_size, 1, "is not a number"},
		{start_row, relative, 2, "tablespace 16385 is at \"../ts1\", not an absolute path"},
		{start_row, dotdot, 2, "tablespace 16385 is at \"/srv/../etc\", not an absolute path"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const Event ev[] = {
			RESULT(BB_RESULT_TUPLES, 1, 2, cases[i].start),
			RESULT(BB_RESULT_TUPLES, cases[i].ts_rows, 3, cases[i].ts),
		};
		Script s = {ev, 2, 0, 0, 0};
		bs = bb_stream_new(&script_ops, &s, 150020, true);
		assert_int_equal(bb_stream_start(bs, &err), WS_FATAL);
		if (strstr(err.msg, cases[i].words) == NULL)
			fail_msg("case %zu: message \"%s\" does not say \"%s\"", i, err.msg, cases[i].words);
		done(bs, &s);
	}

	/* 15+: a result where the COPY should begin. */
	const Event ev3[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 1, 3, base_only),
		RESULT(BB_RESULT_TUPLES, 1, 2, stop_row),
	};
	Script s3 = {ev3, 3, 0, 0, 0};
	bs = bb_stream_new(&script_ops, &s3, 150020, true);
	assert_int_equal(bb_stream_start(bs, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "a result set instead of a COPY stream"));
	done(bs, &s3);
}

/* ---- 10..14 ---- */

static void test_v14_copy_per_tablespace_then_manifest(void **state)
{
	(void)state;
	fill_big();
	/* Rows in the server's order: tablespaces first, the main directory (NULL oid) last. */
	const Event ev[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 2, 3, ts_rows),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("ts-tar-1"),
		COPY("ts-tar-2"),
		COPY_END,
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY_BIN(big, sizeof(big)),
		COPY("end"),
		COPY_END,
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("{\"PostgreSQL-Backup-Manifest-Version\": 1}"),
		COPY_END,
		RESULT(BB_RESULT_TUPLES, 1, 2, stop_row),
		RESULT(BB_RESULT_COMMAND, 0, 0, NULL),
	};
	char *base = xmalloc(sizeof(big) + 3);
	memcpy(base, big, sizeof(big));
	memcpy(base + sizeof(big), "end", 3);
	static const size_t caps[] = {1, 5, 65536};
	for (size_t k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
		Script s = {ev, (int)(sizeof(ev) / sizeof(ev[0])), 0, 0, 0};
		BbStream *bs = started(&s, 140007, true);
		/* The 10..14 shape reads no COPY until the first part is asked for. */
		assert_int_equal(s.pos, 2);
		assert_int_equal(bb_stream_n_tablespaces(bs), 2);
		expect_part(bs, caps[k], BB_PART_ARCHIVE, "16385.tar", "ts-tar-1ts-tar-2", 16);
		expect_part(bs, caps[k], BB_PART_ARCHIVE, "base.tar", base, sizeof(big) + 3);
		expect_part(bs, caps[k], BB_PART_MANIFEST, "backup_manifest",
			    "{\"PostgreSQL-Backup-Manifest-Version\": 1}", 41);
		expect_no_more_parts(bs);
		assert_true(bb_stream_bytes(bs) == 16 + sizeof(big) + 3);
		finish_ok(bs, &s);
		done(bs, &s);
	}
	free(base);
}

static void test_v12_has_no_manifest(void **state)
{
	(void)state;
	const Event ev[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 1, 3, base_only),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("tar"),
		COPY_END,
		RESULT(BB_RESULT_TUPLES, 1, 2, stop_row),
		RESULT(BB_RESULT_COMMAND, 0, 0, NULL),
	};
	Script s = {ev, (int)(sizeof(ev) / sizeof(ev[0])), 0, 0, 0};
	/* Asked for, but 12 cannot send one: the stream does not wait for it. */
	BbStream *bs = started(&s, 120017, true);
	expect_part(bs, 64, BB_PART_ARCHIVE, "base.tar", "tar", 3);
	expect_no_more_parts(bs);
	finish_ok(bs, &s);
	done(bs, &s);
}

static void test_v14_errors(void **state)
{
	(void)state;
	WsError err;
	uint64_t stop;
	uint32_t tli;
	BbPart part;

	/* An error ends the first COPY: the next part is refused with the server's message. */
	const Event ev1[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 2, 3, ts_rows),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("part"),
		COPY_END,
		ERROR_RESULT("58030", "could not read file \"pg_tblspc/16385/x\": Input/output error"),
	};
	Script s1 = {ev1, (int)(sizeof(ev1) / sizeof(ev1[0])), 0, 0, 0};
	BbStream *bs = started(&s1, 140007, true);
	expect_part(bs, 64, BB_PART_ARCHIVE, "16385.tar", "part", 4);
	assert_int_equal(bb_stream_next(bs, &part, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "base backup failed: could not read file"));
	done(bs, &s1);

	/* Checksum failures come after the stop position, as in 15+. */
	const Event ev2[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row),
		RESULT(BB_RESULT_TUPLES, 1, 3, base_only),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("tar"),
		COPY_END,
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),
		COPY("{}"),
		COPY_END,
		RESULT(BB_RESULT_TUPLES, 1, 2, stop_row),
		ERROR_RESULT("XX001", "checksum verification failure during base backup"),
	};
	Script s2 = {ev2, (int)(sizeof(ev2) / sizeof(ev2[0])), 0, 0, 0};
	bs = started(&s2, 130011, true);
	expect_part(bs, 64, BB_PART_ARCHIVE, "base.tar", "tar", 3);
	expect_part(bs, 64, BB_PART_MANIFEST, "backup_manifest", "{}", 2);
	expect_no_more_parts(bs);
	assert_int_equal(bb_stream_finish(bs, &stop, &tli, &err), WS_CORRUPT);
	assert_non_null(strstr(err.msg, "page checksum failure"));
	done(bs, &s2);

	/* 13+ was asked for a manifest: the stop position in its place is out of shape. */
	const Event ev3[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row), RESULT(BB_RESULT_TUPLES, 1, 3, base_only),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),    COPY_END,
		RESULT(BB_RESULT_TUPLES, 1, 2, stop_row),
	};
	Script s3 = {ev3, (int)(sizeof(ev3) / sizeof(ev3[0])), 0, 0, 0};
	bs = started(&s3, 140007, true);
	expect_part(bs, 64, BB_PART_ARCHIVE, "base.tar", "", 0);
	assert_int_equal(bb_stream_next(bs, &part, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "a result set instead of a COPY stream"));
	done(bs, &s3);

	/* No stop position at all. */
	const Event ev4[] = {
		RESULT(BB_RESULT_TUPLES, 1, 2, start_row), RESULT(BB_RESULT_TUPLES, 1, 3, base_only),
		RESULT(BB_RESULT_COPY_OUT, 0, 0, NULL),    COPY_END,
		RESULT(BB_RESULT_COMMAND, 0, 0, NULL),
	};
	Script s4 = {ev4, (int)(sizeof(ev4) / sizeof(ev4[0])), 0, 0, 0};
	bs = started(&s4, 110000, true);
	expect_part(bs, 64, BB_PART_ARCHIVE, "base.tar", "", 0);
	expect_no_more_parts(bs);
	assert_int_equal(bb_stream_finish(bs, &stop, &tli, &err), WS_FATAL);
	assert_non_null(strstr(err.msg, "no stop position"));
	done(bs, &s4);
}

/* ---- helpers ---- */

static void test_size_parse(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(pg_size_parse("16MB", &v), 0);
	assert_true(v == 16u * 1024 * 1024);
	assert_int_equal(pg_size_parse("1GB", &v), 0);
	assert_true(v == 1024u * 1024 * 1024);
	assert_int_equal(pg_size_parse("64kB", &v), 0);
	assert_true(v == 65536);
	assert_int_equal(pg_size_parse("8192", &v), 0);
	assert_true(v == 8192);
	assert_int_equal(pg_size_parse("2TB", &v), 0);
	assert_true(v == 2ull << 40);
	static const char *const bad[] = {"",     "MB",   "16 MB", "16mb",
					  "16KB", "-1MB", "1.5GB", "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (pg_size_parse(bad[i], &v) == 0)
			fail_msg("\"%s\" was accepted as a size", bad[i]);
}

static void test_command_per_version(void **state)
{
	(void)state;
	char *c = bb_command(150020, "walship backup 20260101T120000Z", true);
	assert_string_equal(
		c, "BASE_BACKUP (LABEL 'walship backup 20260101T120000Z', PROGRESS, CHECKPOINT 'fast', "
		   "WAIT false, MANIFEST 'yes', TABLESPACE_MAP, TARGET 'client')");
	free(c);
	c = bb_command(170000, "it's", false);
	assert_string_equal(
		c, "BASE_BACKUP (LABEL 'it''s', PROGRESS, CHECKPOINT 'fast', WAIT false, TABLESPACE_MAP, "
		   "TARGET 'client')");
	free(c);
	c = bb_command(140007, "x", true);
	assert_string_equal(c, "BASE_BACKUP LABEL 'x' PROGRESS FAST NOWAIT TABLESPACE_MAP MANIFEST 'yes'");
	free(c);
	c = bb_command(120017, "x", true);
	assert_string_equal(c, "BASE_BACKUP LABEL 'x' PROGRESS FAST NOWAIT TABLESPACE_MAP");
	free(c);
	assert_false(bb_manifest_supported(120017));
	assert_true(bb_manifest_supported(130000));
	bb_stream_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v15_archives_and_manifest),
		cmocka_unit_test(test_v15_checksum_failure_after_stop_position),
		cmocka_unit_test(test_v15_other_server_error_is_fatal),
		cmocka_unit_test(test_v15_missing_archive_or_manifest_detected),
		cmocka_unit_test(test_v15_malformed_messages_refused),
		cmocka_unit_test(test_v15_archive_sent_twice_refused),
		cmocka_unit_test(test_next_before_part_read_is_refused),
		cmocka_unit_test(test_connection_lost_mid_archive),
		cmocka_unit_test(test_tablespace_locations_normalised),
		cmocka_unit_test(test_start_errors),
		cmocka_unit_test(test_v14_copy_per_tablespace_then_manifest),
		cmocka_unit_test(test_v12_has_no_manifest),
		cmocka_unit_test(test_v14_errors),
		cmocka_unit_test(test_size_parse),
		cmocka_unit_test(test_command_per_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
