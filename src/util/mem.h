/*
 * mem.h - allocation helpers that exit on out-of-memory, and small string helpers.
 *
 * walship cannot do anything useful without memory; rather than thread an
 * out-of-memory error through every caller, these print one line and exit
 * through cleanup_fatal (util/cleanup.h) with the program's fatal code: 1
 * for walship and walship-push, 200 for walship-fetch in recovery (1 there
 * would read as "not found" and end recovery early).
 *
 * Memory: the strings xstrdup, xstrndup, xasprintf and xvasprintf return are
 * malloc'd: the caller frees them.  fmt_size returns buf.
 */
#ifndef WALSHIP_UTIL_MEM_H
#define WALSHIP_UTIL_MEM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* p, or exit as on out of memory: for library constructors (EVP, zstd contexts) that fail only so. */
void *xneed(void *p, const char *what);

/* snprintf that reports truncation: returns 0 if it fit, -1 if not. */
int str_format(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void hex_encode(const unsigned char *in, size_t len, char *out);

/* "512 B", "22.5 MiB": a size for people, in binary units. */
const char *fmt_size(uint64_t bytes, char *buf, size_t size);

#endif
