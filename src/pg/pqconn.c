/*
 * pqconn.c - connecting, one-row queries and the base backup stream over libpq, with messages in
 * walship's style (see pqconn.h).
 */
#include "pg/pqconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "util/mem.h"

struct PqConn {
	PGconn *conn;
	PqNoticeFn notice;
	void *notice_arg;
	char message[1024]; /* a libpq-made error's text, when the server sent none */
};

struct PqRow {
	PGresult *res;
};

/* Copy len bytes of from into out (size bytes), runs of white space made one space, none at the ends. */
static void squeeze(const char *from, size_t len, char *out, size_t size)
{
	size_t j = 0;
	bool space = false;
	if (size == 0)
		return;
	for (size_t i = 0; i < len && j + 1 < size; i++) {
		char c = from[i];
		if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
			space = j > 0;
			continue;
		}
		if (space && j + 2 < size)
			out[j++] = ' ';
		space = false;
		out[j++] = c;
	}
	out[j] = '\0';
}

void pq_error_text(const char *text, char *msg, size_t msize, char *detail, size_t dsize)
{
	const char *nl = strchr(text, '\n');
	size_t first = nl != NULL && detail != NULL ? (size_t)(nl - text) : strlen(text);
	squeeze(text, first, msg, msize);
	if (detail != NULL)
		squeeze(text + first, strlen(text) - first, detail, dsize);
}

int pq_connect(const char *dbname, bool replication, const char *app_name, const char *role_hint,
	       PqConn **out, WsError *err)
{
	/* expand_dbname: -d may be a whole connection string; replication comes after it and wins. */
	const char *const keys[] = {"dbname", "fallback_application_name", replication ? "replication" : NULL,
				    NULL};
	const char *const vals[] = {dbname, app_name, replication ? "true" : NULL, NULL};
	char msg[1024], detail[1024];

	*out = NULL;
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL)
		return ws_error(err, WS_FATAL, "could not connect to the server: out of memory");
	if (PQstatus(conn) == CONNECTION_OK) {
		*out = xcalloc(1, sizeof(**out));
		(*out)->conn = conn;
		return 0;
	}
	pq_error_text(PQerrorMessage(conn), msg, sizeof(msg), detail, sizeof(detail));
	PQfinish(conn);
	ws_error(err, WS_FATAL, "could not connect to the server: %s", msg);
	if (detail[0] != '\0')
		ws_error_detail(err, "%s", detail);
	ws_error_hint(err,
		      "Name the server with -d \"host=... port=... user=...\" (a libpq connection string) or "
		      "the PG* environment variables. %s",
		      role_hint);
	return WS_FATAL;
}

PqConn *pq_connect_params(const char *const *keys, const char *const *vals)
{
	PGconn *conn = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(conn) != CONNECTION_OK) {
		PQfinish(conn);
		return NULL;
	}
	PqConn *c = xcalloc(1, sizeof(*c));
	c->conn = conn;
	return c;
}

void pq_close(PqConn *c)
{
	if (c == NULL)
		return;
	PQfinish(c->conn);
	free(c);
}

int pq_server_version(const PqConn *c)
{
	return PQserverVersion(c->conn);
}

static void notice_receiver(void *arg, const PGresult *res)
{
	PqConn *c = arg;
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (msg != NULL)
		c->notice(c->notice_arg, PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED), msg);
}

void pq_set_notice(PqConn *c, PqNoticeFn fn, void *arg)
{
	c->notice = fn;
	c->notice_arg = arg;
	PQsetNoticeReceiver(c->conn, notice_receiver, c);
}

int pq_send_query(PqConn *c, const char *sql, const char *what, WsError *err)
{
	char msg[1024];
	if (PQsendQuery(c->conn, sql))
		return 0;
	pq_error_text(PQerrorMessage(c->conn), msg, sizeof(msg), NULL, 0);
	return ws_error(err, WS_FATAL, "could not send %s to the server: %s", what, msg);
}

int pq_query_row(PqConn *c, const char *sql, int ncols, bool allow_empty, PqRow **out, WsError *err)
{
	PGresult *res = PQexec(c->conn, sql);
	*out = NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char msg[1024];
		const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		const char *h = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
		pq_error_text(m ? m : PQerrorMessage(c->conn), msg, sizeof(msg), NULL, 0);
		ws_error(err, WS_FATAL, "could not run \"%s\" on the server: %s", sql, msg);
		if (h != NULL)
			ws_error_hint(err, "The server says: %s", h);
		PQclear(res);
		return WS_FATAL;
	}
	int rows = PQntuples(res);
	if (PQnfields(res) < ncols || rows > 1 || (rows == 0 && !allow_empty)) {
		ws_error(err, WS_FATAL, "unexpected answer to \"%s\" from the server: %d rows of %d columns",
			 sql, rows, PQnfields(res));
		PQclear(res);
		return WS_FATAL;
	}
	if (rows == 0) {
		PQclear(res);
		return 0;
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->res = res;
	return 0;
}

int pq_query_value(PqConn *c, const char *sql, char *buf, size_t size, WsError *err)
{
	PqRow *res;
	int rc = pq_query_row(c, sql, 1, true, &res, err);
	buf[0] = '\0';
	if (rc == 0 && res != NULL) {
		snprintf(buf, size, "%s", pq_row_value(res, 0));
		pq_row_free(res);
	}
	return rc;
}

char *pq_quote_literal(PqConn *c, const char *s)
{
	char *q = PQescapeLiteral(c->conn, s, strlen(s));
	char *out = q != NULL ? xstrdup(q) : NULL;
	PQfreemem(q);
	return out;
}

const char *pq_row_value(const PqRow *r, int col)
{
	/* PQgetvalue gives "" for NULL. */
	return PQgetvalue(r->res, 0, col);
}

void pq_row_free(PqRow *r)
{
	if (r == NULL)
		return;
	PQclear(r->res);
	free(r);
}

/* ---- the base backup stream's connection (pg/basebackup.h) ---- */

static int bb_get_result(void *ctx, BbResult *out, WsError *err)
{
	PqConn *c = ctx;
	(void)err;
	memset(out, 0, sizeof(*out));
	PGresult *res = PQgetResult(c->conn);
	if (res == NULL) {
		out->kind = BB_RESULT_NONE;
		return 0;
	}
	out->impl = res;
	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK: {
		out->kind = BB_RESULT_TUPLES;
		out->nrows = PQntuples(res);
		out->ncols = PQnfields(res);
		const char **v = xcalloc((size_t)out->nrows * (size_t)out->ncols + 1, sizeof(char *));
		for (int i = 0; i < out->nrows; i++)
			for (int j = 0; j < out->ncols; j++)
				v[i * out->ncols + j] = PQgetisnull(res, i, j) ? NULL : PQgetvalue(res, i, j);
		out->values = v;
		break;
	}
	case PGRES_COMMAND_OK:
		out->kind = BB_RESULT_COMMAND;
		break;
	case PGRES_COPY_OUT:
		out->kind = BB_RESULT_COPY_OUT;
		break;
	default:
		out->kind = BB_RESULT_ERROR;
		out->sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		out->message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		out->detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		out->hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
		if (out->message == NULL) {
			/* Made by libpq (a lost connection): its text is the whole story. */
			pq_error_text(PQerrorMessage(c->conn), c->message, sizeof(c->message), NULL, 0);
			if (c->message[0] == '\0')
				snprintf(c->message, sizeof(c->message), "%s",
					 PQresStatus(PQresultStatus(res)));
			out->message = c->message;
		}
		break;
	}
	return 0;
}

static void bb_clear_result(void *ctx, BbResult *res)
{
	(void)ctx;
	free((void *)res->values);
	PQclear(res->impl);
	memset(res, 0, sizeof(*res));
}

static int bb_get_copy(void *ctx, char **buf, size_t *len, WsError *err)
{
	PqConn *c = ctx;
	char msg[1024];
	int n = PQgetCopyData(c->conn, buf, 0);
	if (n > 0) {
		*len = (size_t)n;
		return 1;
	}
	if (n == -1)
		return 0;
	pq_error_text(PQerrorMessage(c->conn), msg, sizeof(msg), NULL, 0);
	return ws_error(err, WS_FATAL, "could not read the base backup from the server: %s", msg);
}

static void bb_free_copy(void *ctx, char *buf)
{
	(void)ctx;
	PQfreemem(buf);
}

const BbConnOps pq_bb_ops = {
	.get_result = bb_get_result,
	.clear_result = bb_clear_result,
	.get_copy = bb_get_copy,
	.free_copy = bb_free_copy,
};
