#include "domxml/backing_nest.h"

#include <string.h>

bool dx_backing_store_is_empty(const xs_doc *scan, size_t elem)
{
    const xs_elem *el = &scan->elems[elem];
    return el->nattrs == 0 && el->first_child == XS_NONE;
}

/* text[from, to) with two more spaces after each line break. */
static void add_deeper(dx_buf *b, const char *text, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        dx_buf_add(b, &text[i], 1);
        if (text[i] == '\n')
            dx_buf_adds(b, "  ");
    }
}

static void indent_line(dx_buf *b, const xs_doc *scan, size_t elem, int extra)
{
    size_t off, len;
    xs_indent_of(scan, elem, &off, &len);
    dx_buf_add(b, "\n", 1);
    dx_buf_add(b, scan->text + off, len);
    for (int i = 0; i < extra; i++)
        dx_buf_adds(b, " ");
}

void dx_backing_store_nest(const xs_doc *scan, size_t src, size_t bs, const char *type,
                           const char *format, dx_buf *b)
{
    const char *t = scan->text;
    dx_buf_adds(b, "<backingStore type='");
    dx_buf_add_escaped(b, type);
    dx_buf_adds(b, "'>");
    indent_line(b, scan, bs, 2);
    dx_buf_adds(b, "<format type='");
    dx_buf_add_escaped(b, format);
    dx_buf_adds(b, "'/>");
    if (src != XS_NONE) {
        const xs_elem *s = &scan->elems[src];
        indent_line(b, scan, bs, 2);
        const xs_attr *policy = xs_attr_find(scan, src, "startupPolicy");
        if (policy) {
            /* From the blank before the attribute name to its closing quote. */
            size_t cut = policy->name_off;
            while (cut > s->start && (t[cut - 1] == ' ' || t[cut - 1] == '\t' ||
                                      t[cut - 1] == '\n' || t[cut - 1] == '\r'))
                cut--;
            add_deeper(b, t, s->start, cut);
            add_deeper(b, t, policy->value_off + policy->value_len + 1, s->end);
        } else {
            add_deeper(b, t, s->start, s->end);
        }
    }
    indent_line(b, scan, bs, 2);
    add_deeper(b, t, scan->elems[bs].start, scan->elems[bs].end);
    indent_line(b, scan, bs, 0);
    dx_buf_adds(b, "</backingStore>");
}
