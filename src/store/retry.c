/*
 * retry.c - saying that a store is being retried (see retry.h).
 */
#include "store/retry.h"

#include <stdio.h>

#include "util/clock.h"
#include "util/log.h"

void store_retry_start(StoreRetry *r, const char *what, const char *where, long budget_s)
{
	snprintf(r->what, sizeof(r->what), "%s", what);
	snprintf(r->where, sizeof(r->where), "%s", where);
	r->budget_s = budget_s;
	r->start = clock_now();
	r->next_report = r->start + STORE_RETRY_REPORT_EVERY;
	r->retries = 0;
}

void store_retry_note(StoreRetry *r, const char *error)
{
	double now = clock_now();
	r->retries++;
	if (r->retries == 1) {
		log_warning("could not %s: %s; retrying for up to %ld s (io-timeout)", r->what, error,
			    r->budget_s);
		log_hint("Until then this call waits; PostgreSQL keeps the file and its archiver tries it "
			 "again after a failure.  A shorter io-timeout fails sooner.");
		r->next_report = now + STORE_RETRY_REPORT_EVERY;
	} else if (now >= r->next_report) {
		log_warning("still retrying to %s: failed %d time%s in %.0f s, last: %s; gives up after "
			    "io-timeout (%ld s)",
			    r->what, r->retries, r->retries == 1 ? "" : "s", now - r->start, error,
			    r->budget_s);
		r->next_report = now + STORE_RETRY_REPORT_EVERY;
	}
}

void store_retry_done(StoreRetry *r, bool ok, const char *error)
{
	if (r->retries == 0)
		return;
	double took = clock_now() - r->start;
	if (ok)
		log_warning("could %s after %d retr%s in %.1f s: %s answers again", r->what, r->retries,
			    r->retries == 1 ? "y" : "ies", took, r->where);
	else
		log_warning("gave up trying to %s after %d retr%s in %.0f s (io-timeout is %ld s): %s",
			    r->what, r->retries, r->retries == 1 ? "y" : "ies", took, r->budget_s, error);
}
