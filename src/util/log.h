/*
 * log.h - messages on stderr in the style of PostgreSQL's client tools.
 *
 *   walship-push: error: could not open file "pg_wal/0000...": No such file or directory
 *   walship-push: detail: ...
 *   walship-push: hint: ...
 *
 * One line per message so they read well in the server log.  Levels below the
 * current one are dropped; errors are always printed.
 */
#ifndef WALSHIP_UTIL_LOG_H
#define WALSHIP_UTIL_LOG_H

#include "util/error.h"

typedef enum LogLevel {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING = 1,
	LOG_LEVEL_INFO = 2,
	LOG_LEVEL_DEBUG = 3,
} LogLevel;

/* progname is kept by pointer (pass a string literal or argv-based static); log_progname returns it. */
void log_init(const char *progname);
const char *log_progname(void);
void log_set_level(LogLevel level);
LogLevel log_get_level(void);
/* "error", "warning", "info", "debug"; returns -1 if unknown. */
int log_level_parse(const char *s);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* detail/hint lines follow the previous error or warning (printed if it was). */
void log_detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print err as an error line plus its detail and hint lines. */
void log_report(const WsError *err);
/* Same, at warning level (for errors a command survives). */
void log_report_warning(const WsError *err);

#endif
