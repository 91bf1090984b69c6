/*
 * pqconn.h - the libpq pieces walship's server-facing commands share
 * (backup, check): a connection named by -d or the PG* variables, libpq's
 * messages in walship's one-line style, and one-row queries.
 *
 * Only walship itself links libpq: the WAL hooks never call these.
 */
#ifndef WALSHIP_PG_PQCONN_H
#define WALSHIP_PG_PQCONN_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "util/error.h"

/*
 * libpq's text (PQerrorMessage or a result's message): the first line into
 * msg and the lines after it (libpq's own hints, e.g. "Is the server
 * running...") into detail; with detail NULL everything goes to msg.  Runs of
 * white space become one space.
 */
void pq_error_text(const char *text, char *msg, size_t msize, char *detail, size_t dsize);

/*
 * Connect: dbname may be a whole connection string (expand_dbname) or NULL
 * for the PG* defaults; replication adds replication=true after it.  On
 * failure WS_FATAL "could not connect to the server: ..." with libpq's lines
 * as detail and a hint naming -d and the PG* variables, followed by
 * role_hint (what the role needs).  *out is set whenever libpq made a
 * connection object: PQfinish it, also after a failure.
 */
int pq_connect(const char *dbname, bool replication, const char *app_name, const char *role_hint,
	       PGconn **out, WsError *err);

/*
 * Run sql and return its single row (PQclear *out) with at least ncols
 * columns; with allow_empty no row is fine too (*out NULL).  Anything else is
 * WS_FATAL naming the query, with the server's message and hint.
 */
int pq_query_row(PGconn *conn, const char *sql, int ncols, bool allow_empty, PGresult **out, WsError *err);

#endif
