#include "domxml/xmlscan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

typedef struct {
    const char *s;
    size_t n, pos;
    const char *origin;
    xs_doc *d;
    size_t *stack;
    size_t depth, stack_cap;
    size_t cap_tokens, cap_elems, cap_attrs;
    bool root_done;
} scanner;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_name_char(char c)
{
    return !is_space(c) && c != '/' && c != '>' && c != '<' && c != '=' && c != '\'' &&
           c != '"' && c != '\0';
}

/* Make room for one more element in a growing array. */
#define GROW(arr, count, cap)                                                 \
    do {                                                                      \
        if ((count) == (cap)) {                                               \
            size_t ncap_ = (cap) ? (cap) * 2 : 64;                            \
            (arr) = es_xreallocarray((arr), ncap_, sizeof *(arr));            \
            (cap) = ncap_;                                                    \
        }                                                                     \
    } while (0)

static int syntax(scanner *sc, size_t at, const char *what, es_err *e)
{
    return es_err_set(e, 0, sc->origin, "malformed XML at line %zu: %s", xs_line_of(sc->s, at),
                      what);
}

static int add_token(scanner *sc, xs_kind kind, size_t off, size_t len, size_t elem, es_err *e)
{
    (void)e;
    xs_doc *d = sc->d;
    GROW(d->tokens, d->ntokens, sc->cap_tokens);
    d->tokens[d->ntokens++] = (xs_token){kind, off, len, elem};
    return 0;
}

/* Find needle at or after from; returns its offset or XS_NONE. */
static size_t find(const scanner *sc, size_t from, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = from; i + nl <= sc->n; i++)
        if (memcmp(sc->s + i, needle, nl) == 0)
            return i;
    return XS_NONE;
}

static bool starts(const scanner *sc, const char *lit)
{
    size_t l = strlen(lit);
    return sc->pos + l <= sc->n && memcmp(sc->s + sc->pos, lit, l) == 0;
}

static void skip_space(scanner *sc)
{
    while (sc->pos < sc->n && is_space(sc->s[sc->pos]))
        sc->pos++;
}

static size_t scan_name(scanner *sc)
{
    size_t start = sc->pos;
    while (sc->pos < sc->n && is_name_char(sc->s[sc->pos]))
        sc->pos++;
    return sc->pos - start;
}

static int scan_delimited(scanner *sc, xs_kind kind, size_t skip, const char *close, es_err *e)
{
    size_t start = sc->pos;
    size_t at = find(sc, start + skip, close);
    if (at == XS_NONE)
        return syntax(sc, start, "unterminated comment, processing instruction or CDATA", e);
    sc->pos = at + strlen(close);
    return add_token(sc, kind, start, sc->pos - start, XS_NONE, e);
}

static int scan_text(scanner *sc, es_err *e)
{
    size_t start = sc->pos;
    while (sc->pos < sc->n && sc->s[sc->pos] != '<')
        sc->pos++;
    if (sc->depth == 0) {
        for (size_t i = start; i < sc->pos; i++)
            if (!is_space(sc->s[i]))
                return syntax(sc, i, "text outside the root element", e);
    }
    return add_token(sc, XS_TEXT, start, sc->pos - start, XS_NONE, e);
}

static int scan_attrs(scanner *sc, xs_elem *el, es_err *e)
{
    xs_doc *d = sc->d;
    el->attr_first = d->nattrs;
    for (;;) {
        size_t before_space = sc->pos;
        skip_space(sc);
        if (sc->pos >= sc->n)
            return syntax(sc, el->start, "unterminated start tag", e);
        char c = sc->s[sc->pos];
        if (c == '>' || c == '/') {
            el->attrs_end = before_space;
            return 0;
        }
        if (sc->pos == before_space)
            return syntax(sc, sc->pos, "attributes must be separated by white space", e);
        size_t name_off = sc->pos;
        size_t name_len = scan_name(sc);
        if (!name_len)
            return syntax(sc, sc->pos, "bad attribute name", e);
        skip_space(sc);
        if (sc->pos >= sc->n || sc->s[sc->pos] != '=')
            return syntax(sc, sc->pos, "attribute without a value", e);
        sc->pos++;
        skip_space(sc);
        if (sc->pos >= sc->n || (sc->s[sc->pos] != '\'' && sc->s[sc->pos] != '"'))
            return syntax(sc, sc->pos, "attribute value must be quoted", e);
        char quote = sc->s[sc->pos++];
        size_t value_off = sc->pos;
        while (sc->pos < sc->n && sc->s[sc->pos] != quote) {
            if (sc->s[sc->pos] == '<')
                return syntax(sc, sc->pos, "'<' in an attribute value", e);
            sc->pos++;
        }
        if (sc->pos >= sc->n)
            return syntax(sc, value_off, "unterminated attribute value", e);
        size_t value_len = sc->pos - value_off;
        sc->pos++;
        GROW(d->attrs, d->nattrs, sc->cap_attrs);
        d->attrs[d->nattrs++] = (xs_attr){name_off, name_len, value_off, value_len, quote};
        el->nattrs++;
    }
}

static int push(scanner *sc, size_t idx, es_err *e)
{
    (void)e;
    GROW(sc->stack, sc->depth, sc->stack_cap);
    sc->stack[sc->depth++] = idx;
    return 0;
}

static int scan_start_tag(scanner *sc, es_err *e)
{
    xs_doc *d = sc->d;
    if (sc->depth == 0 && sc->root_done)
        return syntax(sc, sc->pos, "more than one root element", e);
    GROW(d->elems, d->nelems, sc->cap_elems);
    size_t idx = d->nelems;
    xs_elem el = {0};
    el.start = sc->pos;
    sc->pos++;
    el.name_off = sc->pos;
    el.name_len = scan_name(sc);
    if (!el.name_len)
        return syntax(sc, el.start, "bad element name", e);
    el.parent = sc->depth ? sc->stack[sc->depth - 1] : XS_NONE;
    el.first_child = el.last_child = el.next_sibling = XS_NONE;
    if (scan_attrs(sc, &el, e) < 0)
        return -1;
    if (sc->s[sc->pos] == '/') {
        if (sc->pos + 1 >= sc->n || sc->s[sc->pos + 1] != '>')
            return syntax(sc, sc->pos, "expected '/>'", e);
        sc->pos += 2;
        el.empty = true;
    } else {
        sc->pos++;
    }
    el.stag_end = sc->pos;
    if (el.empty) {
        el.etag_start = el.end = el.stag_end;
        if (sc->depth == 0)
            sc->root_done = true;
    }
    el.stag_token = d->ntokens;
    d->elems[d->nelems++] = el;
    if (el.parent != XS_NONE) {
        xs_elem *p = &d->elems[el.parent];
        if (p->last_child == XS_NONE)
            p->first_child = idx;
        else
            d->elems[p->last_child].next_sibling = idx;
        p->last_child = idx;
    }
    if (add_token(sc, el.empty ? XS_EMPTY : XS_STAG, el.start, el.stag_end - el.start, idx, e) < 0)
        return -1;
    return el.empty ? 0 : push(sc, idx, e);
}

static int scan_end_tag(scanner *sc, es_err *e)
{
    xs_doc *d = sc->d;
    size_t start = sc->pos;
    sc->pos += 2;
    size_t name_off = sc->pos;
    size_t name_len = scan_name(sc);
    skip_space(sc);
    if (sc->pos >= sc->n || sc->s[sc->pos] != '>')
        return syntax(sc, start, "bad end tag", e);
    sc->pos++;
    if (sc->depth == 0)
        return syntax(sc, start, "end tag without a start tag", e);
    size_t idx = sc->stack[--sc->depth];
    xs_elem *el = &d->elems[idx];
    if (el->name_len != name_len || memcmp(sc->s + el->name_off, sc->s + name_off, name_len) != 0)
        return syntax(sc, start, "end tag does not match the open element", e);
    el->etag_start = start;
    el->end = sc->pos;
    if (sc->depth == 0)
        sc->root_done = true;
    return add_token(sc, XS_ETAG, start, sc->pos - start, idx, e);
}

int xs_scan(const char *text, size_t len, const char *origin, xs_doc *out, es_err *e)
{
    memset(out, 0, sizeof *out);
    out->text = text;
    out->len = len;
    scanner sc = {.s = text, .n = len, .origin = origin, .d = out};
    /* A UTF-8 byte order mark is allowed and stays part of the prolog. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        sc.pos = 3;
    int rc = -1;
    while (sc.pos < sc.n) {
        int r;
        if (text[sc.pos] != '<')
            r = scan_text(&sc, e);
        else if (starts(&sc, "<!--"))
            r = scan_delimited(&sc, XS_COMMENT, 4, "-->", e);
        else if (starts(&sc, "<?"))
            r = scan_delimited(&sc, XS_PI, 2, "?>", e);
        else if (starts(&sc, "<![CDATA[")) {
            if (sc.depth == 0)
                r = syntax(&sc, sc.pos, "CDATA outside the root element", e);
            else
                r = scan_delimited(&sc, XS_CDATA, 9, "]]>", e);
        } else if (starts(&sc, "<!"))
            r = syntax(&sc, sc.pos, "document type declarations are not supported", e);
        else if (starts(&sc, "</"))
            r = scan_end_tag(&sc, e);
        else
            r = scan_start_tag(&sc, e);
        if (r < 0)
            goto out;
    }
    if (sc.depth) {
        syntax(&sc, out->elems[sc.stack[sc.depth - 1]].start, "element is never closed", e);
        goto out;
    }
    if (!out->nelems) {
        es_err_set(e, 0, origin, "malformed XML: no root element");
        goto out;
    }
    rc = 0;
out:
    free(sc.stack);
    if (rc < 0)
        xs_free(out);
    return rc;
}

void xs_free(xs_doc *d)
{
    free(d->tokens);
    free(d->elems);
    free(d->attrs);
    memset(d, 0, sizeof *d);
}

bool xs_name_is(const xs_doc *d, const xs_elem *el, const char *name)
{
    size_t l = strlen(name);
    return el->name_len == l && memcmp(d->text + el->name_off, name, l) == 0;
}

size_t xs_child(const xs_doc *d, size_t elem, const char *name)
{
    for (size_t c = d->elems[elem].first_child; c != XS_NONE; c = d->elems[c].next_sibling)
        if (xs_name_is(d, &d->elems[c], name))
            return c;
    return XS_NONE;
}

const xs_attr *xs_attr_find(const xs_doc *d, size_t elem, const char *name)
{
    const xs_elem *el = &d->elems[elem];
    size_t l = strlen(name);
    for (size_t i = 0; i < el->nattrs; i++) {
        const xs_attr *a = &d->attrs[el->attr_first + i];
        if (a->name_len == l && memcmp(d->text + a->name_off, name, l) == 0)
            return a;
    }
    return NULL;
}

size_t xs_line_of(const char *text, size_t off)
{
    size_t line = 1;
    for (size_t i = 0; i < off; i++)
        if (text[i] == '\n')
            line++;
    return line;
}

void xs_indent_of(const xs_doc *d, size_t elem, size_t *off, size_t *len)
{
    size_t start = d->elems[elem].start, i = start;
    while (i > 0 && (d->text[i - 1] == ' ' || d->text[i - 1] == '\t'))
        i--;
    if (i == 0 || d->text[i - 1] == '\n') {
        *off = i;
        *len = start - i;
    } else {
        *off = start;
        *len = 0;
    }
}
