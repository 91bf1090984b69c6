/* error.c - filling the one error struct. */
#include "util/error.h"

#include <stdio.h>
#include <string.h>

void ws_error_clear(WsError *err)
{
	if (err == NULL)
		return;
	err->cls = WS_OK;
	err->errnum = 0;
	err->msg[0] = err->detail[0] = err->hint[0] = '\0';
}

static int set_message(WsError *err, int cls, int errnum, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static int set_message(WsError *err, int cls, int errnum, const char *fmt, va_list ap)
{
	if (err == NULL)
		return cls;
	ws_error_clear(err);
	err->cls = cls;
	err->errnum = errnum;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (errnum != 0) {
		size_t used = strlen(err->msg);
		snprintf(err->msg + used, sizeof(err->msg) - used, ": %s", strerror(errnum));
	}
	return cls;
}

int ws_error(WsError *err, int cls, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_message(err, cls, 0, fmt, ap);
	va_end(ap);
	return cls;
}

int ws_error_errno(WsError *err, int cls, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_message(err, cls, errnum, fmt, ap);
	va_end(ap);
	return cls;
}

void ws_error_detail(WsError *err, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
}

void ws_error_hint(WsError *err, const char *fmt, ...)
{
	va_list ap;
	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
}

void ws_error_prefix(WsError *err, const char *fmt, ...)
{
	char prefix[WS_ERROR_TEXT];
	char old[WS_ERROR_TEXT];
	va_list ap;
	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
}

const char *ws_status_name(int cls)
{
	switch (cls) {
	case WS_OK:
		return "ok";
	case WS_NOT_FOUND:
		return "not found";
	case WS_EXISTS:
		return "exists";
	case WS_TRANSIENT:
		return "transient";
	case WS_FATAL:
		return "fatal";
	case WS_CORRUPT:
		return "corrupt";
	case WS_USAGE:
		return "usage";
	case WS_INTERRUPTED:
		return "interrupted";
	default:
		return "unknown";
	}
}
