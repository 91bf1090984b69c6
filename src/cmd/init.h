/*
 * init.h - walship init: create a repository for a cluster.
 */
#ifndef WALSHIP_CMD_INIT_H
#define WALSHIP_CMD_INIT_H

#include "util/config.h"
#include "util/error.h"

/* Create the repository from pgdata's pg_control and PG_VERSION; prints a summary. */
int cmd_init(const Config *cfg, const char *pgdata, WsError *err);

#endif
