/*
 * text.c - a string that grows as it is appended to (see text.h).
 */
#include "util/text.h"

#include <string.h>

#include "util/mem.h"

void text_add(Text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (cap < t->len + n + 1)
			cap *= 2;
		t->s = xrealloc(t->s, cap);
		t->cap = cap;
	}
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
}

void text_str(Text *t, const char *s)
{
	text_add(t, s, strlen(s));
}
