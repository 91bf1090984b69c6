/*
 * retry.h - saying that a store is being retried.  An archive_command that
 * retries an unreachable store in silence for io-timeout seconds looks hung in
 * the server log, so a driver's retry loop reports: a warning at the first
 * retry (what failed, where, for how long it will go on), one line every
 * STORE_RETRY_REPORT_EVERY seconds while it retries, and a last line when it
 * succeeds after retries or gives up.  Nothing when the first attempt settles.
 */
#ifndef WALSHIP_STORE_RETRY_H
#define WALSHIP_STORE_RETRY_H

#include <stdbool.h>

#define STORE_RETRY_REPORT_EVERY 10.0 /* seconds */

typedef struct StoreRetry {
	char what[900];  /* "write \"key\" in repository \"...\" (S3 at \"http://...\")" */
	char where[300]; /* "S3 at \"http://...\"", "SSH server \"host:22\"": who answers again */
	long budget_s;   /* io-timeout */
	double start;
	double next_report;
	int retries;
} StoreRetry;

/* Start counting; what and where are copied. */
void store_retry_start(StoreRetry *r, const char *what, const char *where, long budget_s);

/* About to retry after an attempt that failed with error (a short phrase). */
void store_retry_note(StoreRetry *r, const char *error);

/*
 * The operation is over: ok, or given up with error.  Prints the last line
 * only when there were retries.
 */
void store_retry_done(StoreRetry *r, bool ok, const char *error);

#endif
