#include "domxml/vmstate_edit.h"

#include <stdlib.h>
#include <string.h>

#include "domxml/domain.h"
#include "domxml/domain_priv.h"
#include "domxml/splice.h"
#include "domxml/strbuf.h"
#include "domxml/xmlscan.h"

/* One saved copy: <extsnap:WHAT path='PATH' copy='COPY'/> on its own line. */
static void format_copy(dx_buf *b, const char *what, const char *path, const char *copy,
                        const char *ind, size_t il)
{
    dx_buf_add(b, ind, il);
    dx_buf_addf(b, "  <extsnap:%s path='", what);
    dx_buf_add_escaped(b, path);
    dx_buf_adds(b, "' copy='");
    dx_buf_add_escaped(b, copy);
    dx_buf_adds(b, "'/>\n");
}

/* The element, its lines indented by ind (its own first line not). */
static void format_record(dx_buf *b, const domxml_vmstate *v, const char *ind, size_t il)
{
    dx_buf_adds(b, "<extsnap:vmstate xmlns:extsnap='" DOMXML_VMSTATE_NS "' snapshot='");
    dx_buf_add_escaped(b, v->snapshot);
    dx_buf_addf(b, "' creationTime='%lld'>\n", v->creation_time);
    if (v->nvram)
        format_copy(b, "nvram", v->nvram, v->nvram_copy, ind, il);
    if (v->tpm)
        format_copy(b, "tpm", v->tpm, v->tpm_copy, ind, il);
    dx_buf_add(b, ind, il);
    dx_buf_adds(b, "</extsnap:vmstate>");
}

/* [from, to) of elem with its indentation and the line end after it, when
 * it stands alone on its lines. */
static void line_span(const xs_doc *s, size_t elem, size_t *from, size_t *to)
{
    size_t ioff, ilen;
    xs_indent_of(s, elem, &ioff, &ilen);
    *from = ilen || (ioff > 0 && s->text[ioff - 1] == '\n') ? ioff : s->elems[elem].start;
    *to = s->elems[elem].end;
    if (*from == ioff && *to < s->len && s->text[*to] == '\n')
        (*to)++;
}

static bool only_child(const xs_doc *s, size_t parent, size_t child)
{
    return s->elems[parent].first_child == child && s->elems[child].next_sibling == XS_NONE;
}

/* Where a new <metadata> goes: after <name>, <uuid>, <genid>, <title>,
 * <description> (libvirt's order), as the last of those there is. */
static size_t metadata_anchor(const xs_doc *s)
{
    static const char *const before[] = {"name", "uuid", "genid", "title", "description"};
    size_t at = XS_NONE;
    for (size_t c = s->elems[0].first_child; c != XS_NONE; c = s->elems[c].next_sibling)
        for (size_t k = 0; k < sizeof before / sizeof *before; k++)
            if (xs_name_is(s, &s->elems[c], before[k]))
                at = c;
    return at;
}

int domxml_domain_set_vmstate(const domxml_domain *d, const domxml_vmstate *v, domxml_domain **out,
                              es_err *e)
{
    *out = NULL;
    const xs_doc *s = &d->priv->scan;
    size_t md = d->priv->metadata_elem, vs = d->priv->vmstate_elem;
    bool keep = v && (v->nvram || v->tpm);
    dx_splices sp = {0};
    dx_buf b = {0};
    /* The root's children's indentation (two spaces in libvirt's files). */
    size_t ioff = 0, il = 0;
    if (s->elems[0].first_child != XS_NONE)
        xs_indent_of(s, s->elems[0].first_child, &ioff, &il);
    const char *ind = s->text + ioff;
    if (!keep && vs == XS_NONE)
        return domxml_domain_parse(d->text, d->len, d->origin, out, e);
    /* Two levels: the record's lines inside a new or existing <metadata>. */
    dx_buf ind2 = {0};
    dx_buf_add(&ind2, ind, il);
    dx_buf_add(&ind2, ind, il);
    if (!keep) {
        size_t from, to;
        line_span(s, only_child(s, md, vs) ? md : vs, &from, &to);
        dx_splices_add(&sp, from, to - from, "");
    } else if (vs != XS_NONE) {
        size_t voff, vl;
        xs_indent_of(s, vs, &voff, &vl);
        format_record(&b, v, s->text + voff, vl);
        dx_splices_add_buf(&sp, s->elems[vs].start, s->elems[vs].end - s->elems[vs].start, &b);
    } else if (md != XS_NONE && !s->elems[md].empty) {
        /* Last in <metadata>, on a line of its own before </metadata>. */
        size_t at = s->elems[md].etag_start;
        while (at > s->elems[md].stag_end && (s->text[at - 1] == ' ' || s->text[at - 1] == '\t'))
            at--;
        if (at == s->elems[md].stag_end || s->text[at - 1] != '\n') {
            dx_buf_adds(&b, "\n");
            at = s->elems[md].etag_start;
        }
        dx_buf_add(&b, ind2.data, ind2.len);
        format_record(&b, v, ind2.data, ind2.len);
        dx_buf_adds(&b, "\n");
        if (at == s->elems[md].etag_start)
            dx_buf_add(&b, ind, il);
        dx_splices_add_buf(&sp, at, 0, &b);
    } else {
        dx_buf_adds(&b, "<metadata>\n");
        dx_buf_add(&b, ind2.data, ind2.len);
        format_record(&b, v, ind2.data, ind2.len);
        dx_buf_adds(&b, "\n");
        dx_buf_add(&b, ind, il);
        dx_buf_adds(&b, "</metadata>");
        if (md != XS_NONE) { /* <metadata/> */
            dx_splices_add_buf(&sp, s->elems[md].start, s->elems[md].end - s->elems[md].start,
                               &b);
        } else {
            size_t at = metadata_anchor(s);
            if (at == XS_NONE) {
                dx_splices_free(&sp);
                dx_buf_free(&b);
                dx_buf_free(&ind2);
                return es_err_set(e, 0, d->origin, "domain has no <name> to put <metadata> after");
            }
            dx_buf rb2 = {0};
            dx_buf_adds(&rb2, "\n");
            dx_buf_add(&rb2, ind, il);
            dx_buf_add(&rb2, b.data, b.len);
            dx_buf_free(&b);
            dx_splices_add_buf(&sp, s->elems[at].end, 0, &rb2);
        }
    }
    char *text = NULL;
    size_t len = 0;
    int rc = dx_splices_apply(&sp, d->text, d->len, &text, &len, e);
    dx_splices_free(&sp);
    dx_buf_free(&b);
    dx_buf_free(&ind2);
    if (rc < 0)
        return -1;
    rc = domxml_domain_parse(text, len, d->origin, out, e);
    free(text);
    return rc;
}
