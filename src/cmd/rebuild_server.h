/*
 * rebuild_server.h - walship rebuild --start: the rebuilt server started with
 * pg_ctl as the data directory's owner, watched until recovery does what the
 * settings ask, and the outcome reported.
 *
 * The outcome is read from the server's log (walship-rebuild.log in the data
 * directory) by PostgreSQL's English messages, so the server is started with
 * lc_messages=C whatever postgresql.conf says; a Debian cluster started with
 * pg_ctlcluster logs where its configuration says, in its own lc_messages, and
 * is watched mostly through its connection.
 */
#ifndef WALSHIP_CMD_REBUILD_SERVER_H
#define WALSHIP_CMD_REBUILD_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "cmd/rebuild_plan.h"
#include "pg/pgcommon.h"
#include "util/error.h"

/* The user the server runs as: the data directory's owner. */
typedef struct RebuildOwner {
	uid_t uid;
	gid_t gid;
	char name[128];
} RebuildOwner;

/* What the recovery settings ask of the server. */
typedef enum RebuildWant {
	REBUILD_WANT_PROMOTED,
	REBUILD_WANT_PAUSED,
	REBUILD_WANT_SHUTDOWN,
	REBUILD_WANT_STANDBY,
} RebuildWant;

/* What o's settings ask: standby, promotion, pause or shutdown at the target. */
RebuildWant rebuild_want(const RebuildOptions *o);

/* How the wait ended. */
typedef enum RebuildOutcome {
	REBUILD_REACHED,          /* running as wanted: promoted, paused at the target, or a standby */
	REBUILD_SHUT_DOWN,        /* shut down at the target, as asked (or while pausing) */
	REBUILD_ENDED_EARLY,      /* recovery ended before the target was reached */
	REBUILD_STOPPED,          /* the server stopped during recovery */
	REBUILD_NOT_STARTED,      /* no postmaster.pid within 60 seconds */
	REBUILD_PROMOTED_INSTEAD, /* promoted instead of pausing or running as a standby */
} RebuildOutcome;

typedef struct RebuildServer RebuildServer;

/*
 * Start the server of pgdata (pg_ctl -W start of PostgreSQL pg_major, as
 * ow, port unless 0, lc_messages=C), its log in pgdata/walship-rebuild.log
 * (an old one removed first).  With deb (pgdata is that Debian cluster's data
 * directory): pg_ctlcluster VERSION NAME start instead, so that its
 * configuration in /etc is used (and systemd knows the service where it runs
 * the clusters), its log read from where it ended before the start.  *out,
 * also after a failure: rebuild_server_free.
 */
int rebuild_server_start(const char *pgdata, int pg_major, int port, const PgCommonCluster *deb,
			 const RebuildOwner *ow, RebuildServer **out, WsError *err);

/* The server's log file; borrowed from s. */
const char *rebuild_server_log(const RebuildServer *s);

/* Watch the started server until it does what want says, or fails. */
RebuildOutcome rebuild_server_wait(RebuildServer *s, RebuildWant want);

/*
 * Print the outcome (where recovery ended or the standby is, and where the
 * server listens): 0 when it is what want asked, else WS_FATAL with the log's
 * last lines printed and err saying what happened.
 */
int rebuild_server_report(RebuildServer *s, RebuildWant want, RebuildOutcome out, const RebuildOptions *o,
			  const RebuildPlan *pl, WsError *err);

/* Close the connection (the server keeps running) and free s (NULL is fine). */
void rebuild_server_free(RebuildServer *s);

#endif
