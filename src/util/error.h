/*
 * error.h - the one error struct every layer fills.
 *
 * Functions return 0 on success or a negative WsStatus class, and describe the
 * failure in a WsError the caller owns.  Callers act on the class; people read
 * the message, detail and hint, printed in PostgreSQL's client-tool format.
 */
#ifndef WALSHIP_UTIL_ERROR_H
#define WALSHIP_UTIL_ERROR_H

#include <stdarg.h>

typedef enum WsStatus {
	WS_OK = 0,
	WS_NOT_FOUND = -1,   /* exactly "no such object" in a healthy store */
	WS_EXISTS = -2,      /* no-overwrite put found the key already there */
	WS_TRANSIENT = -3,   /* may succeed if tried again later */
	WS_FATAL = -4,       /* configuration, permission, missing root, I/O */
	WS_CORRUPT = -5,     /* data present but failed verification */
	WS_USAGE = -6,       /* bad arguments or input from the user */
	WS_INTERRUPTED = -7, /* SIGTERM/SIGINT arrived */
} WsStatus;

#define WS_ERROR_TEXT 1024

typedef struct WsError {
	int cls;    /* a WsStatus, WS_OK when empty */
	int errnum; /* errno at the failure, 0 if none */
	char msg[WS_ERROR_TEXT];
	char detail[WS_ERROR_TEXT];
	char hint[WS_ERROR_TEXT];
} WsError;

/* Empty the struct. */
void ws_error_clear(WsError *err);

/*
 * Set class and message (printf format, lowercase, no final period); clears
 * detail, hint and errnum.  Returns cls so callers can write
 * "return ws_error(err, WS_FATAL, ...)".  err may be NULL.
 */
int ws_error(WsError *err, int cls, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* As ws_error, with errnum recorded and ": strerror" appended to the message. */
int ws_error_errno(WsError *err, int cls, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Set (replace) the detail or hint line.  err may be NULL. */
void ws_error_detail(WsError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ws_error_hint(WsError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the message with "prefix: " keeping class, detail and hint (adds context). */
void ws_error_prefix(WsError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A short lowercase name of a class, e.g. "not found" (a string constant). */
const char *ws_status_name(int cls);

#endif
