/* clock.c - monotonic time, whole sleeps and UTC timestamps (see clock.h). */
#include "util/clock.h"

#include <errno.h>
#include <string.h>

#include "util/cleanup.h"

double clock_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timespec span(double seconds)
{
	struct timespec ts = {0, 0};
	if (seconds > 0) {
		ts.tv_sec = (time_t)seconds;
		ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
		if (ts.tv_nsec > 999999999L)
			ts.tv_nsec = 999999999L;
	}
	return ts;
}

void clock_sleep(double seconds)
{
	struct timespec ts = span(seconds);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int clock_sleep_interruptible(double seconds)
{
	struct timespec ts = span(seconds);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		if (cleanup_interrupted())
			return -1;
	return 0;
}

struct timespec clock_after(clockid_t id, long ms)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static struct tm utc(int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	return tm;
}

void clock_utc_iso(int64_t t, char out[CLOCK_ISO_MAX])
{
	struct tm tm = utc(t);
	strftime(out, CLOCK_ISO_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void clock_utc_compact(int64_t t, char out[CLOCK_ISO_MAX])
{
	struct tm tm = utc(t);
	strftime(out, CLOCK_ISO_MAX, "%Y%m%dT%H%M%SZ", &tm);
}

int64_t clock_parse_utc_iso(const char *text)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	return (int64_t)timegm(&tm);
}
