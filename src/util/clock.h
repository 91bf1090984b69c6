/*
 * clock.h - time for walship: the monotonic clock for deadlines and
 * durations, sleeps that survive signal handlers, and the UTC timestamps
 * written into walship.json, manifest.json, push records and locks.
 */
#ifndef WALSHIP_UTIL_CLOCK_H
#define WALSHIP_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* "2026-11-25T19:00:04Z" and its terminator. */
#define CLOCK_ISO_MAX 32

/* Seconds on the monotonic clock: for deadlines and durations, never for dates. */
double clock_now(void);

/* Sleep for seconds, all of them: a signal handler that returns does not cut the sleep short. */
void clock_sleep(double seconds);

/*
 * Sleep for seconds unless SIGTERM/SIGINT arrives (cleanup_interrupted, for
 * the programs whose handlers do not exit at once): 0 when the time is up,
 * -1 as soon as the signal is seen.
 */
int clock_sleep_interruptible(double seconds);

/* The absolute time ms milliseconds from now on clock id, for pthread_cond_timedwait. */
struct timespec clock_after(clockid_t id, long ms);

/* t (seconds since 1970) as "2026-11-25T19:00:04Z" into out. */
void clock_utc_iso(int64_t t, char out[CLOCK_ISO_MAX]);

/* t as "20261125T190004Z" (backup ids, lease ids) into out. */
void clock_utc_compact(int64_t t, char out[CLOCK_ISO_MAX]);

/*
 * Seconds since 1970 of "2026-11-25T19:00:04Z"; -1 when text is not of that
 * form as strptime(3) reads it (it also takes "2026-1-2T3:4:5Z": a caller
 * that wants only what clock_utc_iso writes compares the two).
 */
int64_t clock_parse_utc_iso(const char *text);

#endif
