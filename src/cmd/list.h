/*
 * list.h - walship list: the backups of each epoch and the points in WAL one
 * can rebuild to on each timeline (repo/catalog.h computes them), as text or
 * JSON.
 */
#ifndef WALSHIP_CMD_LIST_H
#define WALSHIP_CMD_LIST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "repo/catalog.h"
#include "util/config.h"
#include "util/error.h"

/*
 * The "recoverable" line(s) of one window, each starting with two spaces and
 * ending with '\n', as walship list prints them:
 *   timeline 1: from 0/2000138 (backup ID, 2026-11-25 19:00:04) to 0/6000000 (end of NAME)
 * followed, in LSN order, by "; gap: NAME missing (N segments)" and the next
 * "from ... to ..." (or ", WAL after it is not reachable" when no backup
 * follows the gap).  Backups that cannot be rebuilt along their own timeline
 * get a line each.
 */
void list_print_window(FILE *f, const CatalogWindow *w, uint32_t seg_size);

/*
 * walship list: every epoch's backups and windows, as text or (json) one JSON
 * object, on stdout.  A manifest.json or history file that cannot be read is
 * reported on stderr and the listing goes on; the return is then WS_CORRUPT
 * with a message counting the problems.  No backup at all is not an error.
 */
int cmd_list(const Config *cfg, bool json, WsError *err);

#endif
