/*
 * log.c - PostgreSQL client-tool style messages on stderr.
 *
 * Each message is formatted into one buffer and written with a single
 * write(2), so lines from parallel processes do not interleave in the
 * server log.
 */
#include "util/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *progname = "walship";
static LogLevel current_level = LOG_LEVEL_WARNING;
static _Thread_local int last_printed = 1; /* was this thread's previous error/warning printed? */

void log_init(const char *name)
{
	progname = name;
}

const char *log_progname(void)
{
	return progname;
}

void log_set_level(LogLevel level)
{
	current_level = level;
}

LogLevel log_get_level(void)
{
	return current_level;
}

int log_level_parse(const char *s)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

static void emit(const char *tag, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void emit(const char *tag, const char *fmt, va_list ap)
{
	char line[4096];
	int n = snprintf(line, sizeof(line), "%s: %s: ", progname, tag);
	if (n < 0)
		return;
	size_t used = (size_t)n;
	int m = vsnprintf(line + used, sizeof(line) - used - 1, fmt, ap);
	if (m < 0)
		return;
	used += (size_t)m;
	if (used > sizeof(line) - 2)
		used = sizeof(line) - 2;
	/* One line per message: fold embedded newlines. */
	for (size_t i = 0; i < used; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[used++] = '\n';
	(void)!write(STDERR_FILENO, line, used);
}

#define LOG_FN(fname, level, tag)                                                                            \
	void fname(const char *fmt, ...)                                                                     \
	{                                                                                                    \
		va_list ap;                                                                                  \
		last_printed = current_level >= (level);                                                     \
		if (!last_printed)                                                                           \
			return;                                                                              \
		va_start(ap, fmt);                                                                           \
		emit(tag, fmt, ap);                                                                          \
		va_end(ap);                                                                                  \
	}

LOG_FN(log_error, LOG_LEVEL_ERROR, "error")
LOG_FN(log_warning, LOG_LEVEL_WARNING, "warning")
LOG_FN(log_info, LOG_LEVEL_INFO, "info")
LOG_FN(log_debug, LOG_LEVEL_DEBUG, "debug")

void log_detail(const char *fmt, ...)
{
	va_list ap;
	if (!last_printed)
		return;
	va_start(ap, fmt);
	emit("detail", fmt, ap);
	va_end(ap);
}

void log_hint(const char *fmt, ...)
{
	va_list ap;
	if (!last_printed)
		return;
	va_start(ap, fmt);
	emit("hint", fmt, ap);
	va_end(ap);
}

static void report(const WsError *err, int warning)
{
	const char *msg = err->msg[0] ? err->msg : "unknown failure";
	if (warning)
		log_warning("%s", msg);
	else
		log_error("%s", msg);
	if (err->detail[0])
		log_detail("%s", err->detail);
	if (err->hint[0])
		log_hint("%s", err->hint);
}

void log_report(const WsError *err)
{
	report(err, 0);
}

void log_report_warning(const WsError *err)
{
	report(err, 1);
}
