/* How many terminal columns UTF-8 text takes: 2 for East Asian wide and
 * fullwidth characters (CJK), 0 for combining marks and format characters,
 * 1 otherwise. It does not depend on the locale: libvirt's names are UTF-8
 * whatever LANG says, and a rescue system may have no locale data at all.
 * A byte that does not start a valid UTF-8 sequence counts as one column
 * (terminals show one replacement character); control characters as 0. */
#ifndef ES_UTIL_TEXT_WIDTH_H
#define ES_UTIL_TEXT_WIDTH_H

#include <stddef.h>

/* Columns of the n bytes at s (stops early at a NUL). */
size_t es_text_width_n(const char *s, size_t n);
size_t es_text_width(const char *s);

/* Decode the character at s (n bytes available, n > 0): its code point in
 * *cp (0xFFFD for an invalid byte) and its length in bytes (>= 1). */
size_t es_utf8_next(const char *s, size_t n, unsigned *cp);

/* Columns of one code point. */
int es_char_width(unsigned cp);

#endif
