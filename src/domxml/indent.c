#include "domxml/indent.h"

#include <stdbool.h>

static bool whitespace_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/* Whitespace between tags is layout; whitespace that is an element's whole
 * content (<x>  </x>) is data. */
static bool is_layout(const xs_doc *d, size_t t)
{
    const xs_token *tok = &d->tokens[t];
    if (tok->kind != XS_TEXT || !whitespace_only(d->text + tok->off, tok->len))
        return false;
    if (t > 0 && t + 1 < d->ntokens && d->tokens[t - 1].kind == XS_STAG &&
        d->tokens[t + 1].kind == XS_ETAG && d->tokens[t - 1].elem == d->tokens[t + 1].elem)
        return false;
    return true;
}

static void shift_layout(dx_buf *b, const char *s, size_t n, int delta)
{
    size_t last_nl = n;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\n')
            last_nl = i;
    if (last_nl == n) {
        dx_buf_add(b, s, n);
        return;
    }
    /* Only the line holding the next tag moves; blank lines stay blank. */
    dx_buf_add(b, s, last_nl + 1);
    size_t i = last_nl + 1;
    if (delta > 0) {
        for (int k = 0; k < delta; k++)
            dx_buf_add(b, " ", 1);
    } else {
        for (int k = 0; k < -delta && i < n && s[i] == ' '; k++)
            i++;
    }
    dx_buf_add(b, s + i, n - i);
}

void dx_reindent(dx_buf *b, const xs_doc *d, size_t elem, int delta)
{
    const xs_elem *el = &d->elems[elem];
    for (size_t t = el->stag_token; t < d->ntokens && d->tokens[t].off < el->end; t++) {
        const xs_token *tok = &d->tokens[t];
        if (delta && is_layout(d, t))
            shift_layout(b, d->text + tok->off, tok->len, delta);
        else
            dx_buf_add(b, d->text + tok->off, tok->len);
    }
}
