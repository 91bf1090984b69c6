/*
 * push.h - walship-push: archive_command.
 */
#ifndef WALSHIP_CMD_PUSH_H
#define WALSHIP_CMD_PUSH_H

#include "util/config.h"
#include "util/error.h"

/*
 * Store the WAL file at path (relative to pgdata's working directory, as
 * PostgreSQL passes %p) under name (%f).  Returns 0 only once the object is
 * durable (or an identical one already is); every failure is described in err.
 */
int cmd_push(const Config *cfg, const char *pgdata, const char *path, const char *name, WsError *err);

#endif
