/*
 * text.h - a string that grows as it is appended to, always terminated.
 *
 *   Text t = {0};
 *   text_str(&t, "name = ");
 *   text_add(&t, value, len);
 *   ... t.s, t.len ...
 *   free(t.s);
 *
 * Out of memory ends the program (xrealloc), as everywhere in walship.
 */
#ifndef WALSHIP_UTIL_TEXT_H
#define WALSHIP_UTIL_TEXT_H

#include <stddef.h>

typedef struct Text {
	char *s; /* NULL until the first append */
	size_t len;
	size_t cap;
} Text;

/* Appends n bytes of s. */
void text_add(Text *t, const char *s, size_t n);

/* Appends the string s. */
void text_str(Text *t, const char *s);

#endif
