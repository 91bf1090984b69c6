/*
 * init.h - walship init: create a repository for a cluster.
 */
#ifndef WALSHIP_CMD_INIT_H
#define WALSHIP_CMD_INIT_H

#include <stdbool.h>

#include "util/config.h"
#include "util/error.h"

/*
 * Create the repository from pgdata's pg_control and PG_VERSION; prints a
 * summary.  encrypt (--encrypt): an encrypted repository, which needs
 * exactly one of encryption-key-file and encryption-passphrase; without it,
 * either setting is a usage error (nobody should believe an unencrypted
 * repository is encrypted).
 */
int cmd_init(const Config *cfg, const char *pgdata, bool encrypt, WsError *err);

#endif
