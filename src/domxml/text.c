#include "domxml/text.h"

#include <stdbool.h>
#include <stddef.h>

/* One UTF-8 sequence at s (NUL-terminated), strictly: no overlong form, no
 * surrogate, nothing past U+10FFFF. Returns the code point and its length
 * in *len, or -1. (libxml2's xmlGetUTF8Char takes overlong forms.) */
static long utf8_next(const unsigned char *s, size_t *len)
{
    unsigned c = s[0];
    size_t n;
    unsigned long cp, min;
    if (c < 0x80) {
        *len = 1;
        return (long)c;
    }
    if ((c & 0xe0) == 0xc0)
        n = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
        n = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
        n = 4, cp = c & 0x07, min = 0x10000;
    else
        return -1;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* a NUL ends here too */
            return -1;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *len = n;
    return (long)cp;
}

int domxml_check_text(const char *text, const char *what, es_err *e)
{
    if (!text)
        return 0;
    const unsigned char *s = (const unsigned char *)text;
    for (size_t at = 0; s[at];) {
        size_t n = 0;
        long cp = utf8_next(s + at, &n);
        if (cp < 0)
            return es_err_set(e, 0, NULL,
                              "%s is not valid UTF-8 at byte %zu (libvirt's files are UTF-8)",
                              what, at);
        bool control = (cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7f && cp <= 0x9f);
        if (control)
            return es_err_set(e, 0, NULL,
                              "%s holds control character U+%04lX at byte %zu (only tab and "
                              "newline are allowed)",
                              what, (unsigned long)cp, at);
        /* Outside XML 1.0's Char production: no parser would read it. */
        if (cp == 0xfffe || cp == 0xffff)
            return es_err_set(e, 0, NULL, "%s holds U+%04lX at byte %zu, which XML cannot carry",
                              what, (unsigned long)cp, at);
        at += n;
    }
    return 0;
}
