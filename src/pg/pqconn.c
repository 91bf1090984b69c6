/*
 * pqconn.c - connecting and one-row queries over libpq, with messages in
 * walship's style (see pqconn.h).
 */
#include "pg/pqconn.h"

#include <stdio.h>
#include <string.h>

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
	       PGconn **out, WsError *err)
{
	/* expand_dbname: -d may be a whole connection string; replication comes after it and wins. */
	const char *const keys[] = {"dbname", "fallback_application_name", replication ? "replication" : NULL,
				    NULL};
	const char *const vals[] = {dbname, app_name, replication ? "true" : NULL, NULL};
	char msg[1024], detail[1024];

	*out = PQconnectdbParams(keys, vals, 1);
	if (*out == NULL)
		return ws_error(err, WS_FATAL, "could not connect to the server: out of memory");
	if (PQstatus(*out) == CONNECTION_OK)
		return 0;
	pq_error_text(PQerrorMessage(*out), msg, sizeof(msg), detail, sizeof(detail));
	ws_error(err, WS_FATAL, "could not connect to the server: %s", msg);
	if (detail[0] != '\0')
		ws_error_detail(err, "%s", detail);
	ws_error_hint(err,
		      "Name the server with -d \"host=... port=... user=...\" (a libpq connection string) or "
		      "the PG* environment variables. %s",
		      role_hint);
	return WS_FATAL;
}

int pq_query_row(PGconn *conn, const char *sql, int ncols, bool allow_empty, PGresult **out, WsError *err)
{
	PGresult *res = PQexec(conn, sql);
	*out = NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char msg[1024];
		const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		const char *h = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
		pq_error_text(m ? m : PQerrorMessage(conn), msg, sizeof(msg), NULL, 0);
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
	*out = res;
	return 0;
}
