#include "util/text_width.h"

#include <string.h>

#include "util/text_width_table.h"

static int in_ranges(unsigned cp, const es_cp_range *r, size_t n)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

int es_char_width(unsigned cp)
{
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
        return 0;
    if (cp < 0x80)
        return 1;
    if (in_ranges(cp, es_width0, sizeof es_width0 / sizeof *es_width0))
        return 0;
    if (in_ranges(cp, es_width2, sizeof es_width2 / sizeof *es_width2))
        return 2;
    return 1;
}

size_t es_utf8_next(const char *s, size_t n, unsigned *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len;
    unsigned v, min;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    if (u[0] >= 0xC2 && u[0] <= 0xDF) {
        len = 2, v = u[0] & 0x1F, min = 0x80;
    } else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
        len = 3, v = u[0] & 0x0F, min = 0x800;
    } else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
        len = 4, v = u[0] & 0x07, min = 0x10000;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if (len > n)
        len = 0; /* truncated: invalid */
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            len = 0;
            break;
        }
        v = v << 6 | (u[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not text. */
    if (!len || v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = v;
    return len;
}

size_t es_text_width_n(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n && s[i];) {
        unsigned cp;
        size_t l = es_utf8_next(s + i, strnlen(s + i, n - i), &cp);
        w += (size_t)es_char_width(cp);
        i += l;
    }
    return w;
}

size_t es_text_width(const char *s)
{
    return es_text_width_n(s, strlen(s));
}
