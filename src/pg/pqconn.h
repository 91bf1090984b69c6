/*
 * pqconn.h - walship's one way to a PostgreSQL server (backup, check,
 * rebuild): a connection named by -d or the PG* variables or by libpq
 * keywords, libpq's messages in walship's one-line style, one-row queries,
 * and the base backup stream's connection (pg/basebackup.h's BbConnOps).
 * libpq's own types stay in pqconn.c: nothing above src/pg/ includes
 * libpq-fe.h.
 *
 * Only walship itself links libpq: the WAL hooks never call these.
 * Strings returned here are borrowed from the connection or the row.
 */
#ifndef WALSHIP_PG_PQCONN_H
#define WALSHIP_PG_PQCONN_H

#include <stdbool.h>
#include <stddef.h>

#include "pg/basebackup.h"
#include "util/error.h"

/* One connection to a server. */
typedef struct PqConn PqConn;
/* One row of a query's answer. */
typedef struct PqRow PqRow;

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
 * role_hint (what the role needs).  *out is NULL after a failure; else
 * pq_close it.
 */
int pq_connect(const char *dbname, bool replication, const char *app_name, const char *role_hint,
	       PqConn **out, WsError *err);

/*
 * Connect with libpq's keywords and values (NULL-terminated lists, no
 * connection string expanded): NULL when it failed, the reason dropped (for
 * a caller that tries again until a server it started accepts).
 */
PqConn *pq_connect_params(const char *const *keys, const char *const *vals);

/* Close the connection (NULL is fine). */
void pq_close(PqConn *c);

/* The server's server_version_num, e.g. 150004. */
int pq_server_version(const PqConn *c);

/*
 * Have the server's notices and warnings passed to fn with their
 * untranslated severity ("WARNING", "NOTICE", ...; may be NULL) and
 * primary message, instead of libpq printing them.
 */
typedef void (*PqNoticeFn)(void *arg, const char *severity, const char *message);
void pq_set_notice(PqConn *c, PqNoticeFn fn, void *arg);

/*
 * Send sql without waiting for its results (as PQsendQuery), which then come
 * through pq_bb_ops; WS_FATAL "could not send <what> to the server: ..." if
 * it could not be sent.
 */
int pq_send_query(PqConn *c, const char *sql, const char *what, WsError *err);

/* The base backup stream's connection ops over libpq; their ctx is the PqConn. */
extern const BbConnOps pq_bb_ops;

/*
 * Run sql and return its single row (pq_row_free *out) with at least ncols
 * columns; with allow_empty no row is fine too (*out NULL).  Anything else is
 * WS_FATAL naming the query, with the server's message and hint.
 */
int pq_query_row(PqConn *c, const char *sql, int ncols, bool allow_empty, PqRow **out, WsError *err);

/* A one-value answer copied into buf ("" for NULL or no row); pq_query_row's errors. */
int pq_query_value(PqConn *c, const char *sql, char *buf, size_t size, WsError *err);

/* s as an SQL string literal for this connection (PQescapeLiteral), malloc'd; NULL if libpq refused it. */
char *pq_quote_literal(PqConn *c, const char *s);

/* Column col of the row as text, "" for SQL NULL; borrowed from r. */
const char *pq_row_value(const PqRow *r, int col);

/* Free the row (NULL is fine). */
void pq_row_free(PqRow *r);

#endif
