/*
 * prefetch_runner.h - the prefetcher of walship-fetch's read-ahead: a call
 * for a segment records the request and, when no prefetcher runs for the
 * data directory, starts one.  What it fetches, when it stops and how it
 * shares the spool: src/wal/README.md.
 */
#ifndef WALSHIP_WAL_PREFETCH_RUNNER_H
#define WALSHIP_WAL_PREFETCH_RUNNER_H

#include "pg/walname.h"
#include "wal/prefetch_spool.h"

/* Seconds without a new request after which the prefetcher exits. */
#define PREFETCH_IDLE_SECONDS 20

/* Record that recovery asked for name, and start the prefetcher if none runs.  Never fails the fetch. */
void prefetch_request(Prefetch *pf, const WalName *name);

#endif
