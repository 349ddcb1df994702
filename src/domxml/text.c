#include "domxml/text.h"

#include <libxml/xmlstring.h>
#include <stdbool.h>
#include <string.h>

int domxml_check_text(const char *text, const char *what, es_err *e)
{
    if (!text)
        return 0;
    /* libxml2's own UTF-8 rules: the parser that reads the file back. */
    if (!xmlCheckUTF8((const xmlChar *)text))
        return es_err_set(e, 0, NULL, "%s is not valid UTF-8 (libvirt's files are UTF-8)", what);
    size_t len = strlen(text);
    for (size_t at = 0; at < len;) {
        int n = (int)(len - at > 4 ? 4 : len - at);
        int cp = xmlGetUTF8Char((const xmlChar *)text + at, &n);
        if (cp < 0 || n <= 0)
            return es_err_set(e, 0, NULL, "%s is not valid UTF-8 at byte %zu", what, at);
        bool control = (cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7f && cp <= 0x9f);
        if (control)
            return es_err_set(e, 0, NULL,
                              "%s holds control character U+%04X at byte %zu (only tab and "
                              "newline are allowed)",
                              what, (unsigned)cp, at);
        /* Outside XML 1.0's Char production: no parser would read it. */
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
            return es_err_set(e, 0, NULL, "%s holds U+%04X at byte %zu, which XML cannot carry",
                              what, (unsigned)cp, at);
        at += (size_t)n;
    }
    return 0;
}
