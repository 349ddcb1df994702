#include "domxml/snapshot.h"

#include <errno.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/domain_priv.h"
#include "domxml/files.h"
#include "domxml/indent.h"
#include "domxml/snapshot_priv.h"
#include "domxml/strbuf.h"
#include "domxml/xmlparse.h"
#include "util/readfile.h"
#include "util/str.h"
#include "util/xalloc.h"

typedef struct {
    domxml_snapshot *s;
    const char *origin;
    const xs_doc *scan;
    xmlNode **nodes; /* libxml2 node of each scanned element */
    bool seen[SNAP_SLOT_COUNT];
    snap_slot last;
    bool has_active;
} parser;

static size_t line_of(const parser *ps, const xmlNode *n)
{
    return xs_line_of(ps->scan->text, ps->scan->elems[dx_node_elem(n)].start);
}

static int span_copy(const parser *ps, size_t off, size_t len, char **out, es_err *e)
{
    return es_strdup_len(ps->scan->text + off, len, out, e);
}

/* libvirt's virXPathLongLong / virXPathInt: the whole string an integer. */
static bool parse_integer(const char *s, long long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static int add_item(parser *ps, size_t off, size_t len, es_err *e)
{
    domxml_snapshot_priv *p = ps->s->priv;
    (void)e;
    snap_item *v = p->items = es_xreallocarray(p->items, p->nitems + 1, sizeof *v);
    v[p->nitems].after = ps->last;
    if (span_copy(ps, off, len, &v[p->nitems].text, e) < 0)
        return -1;
    p->nitems++;
    return 0;
}

static bool is_offline(const char *state)
{
    return state && (strcmp(state, "shutoff") == 0 || strcmp(state, "disk-snapshot") == 0);
}

static int parse_memory(parser *ps, const xmlNode *n, es_err *e)
{
    domxml_snapshot *s = ps->s;
    char *mode = NULL;
    if (dx_prop(n, "snapshot", &mode, e) < 0 || dx_prop(n, "file", &s->memory_file, e) < 0) {
        free(mode);
        return -1;
    }
    if (mode && domxml_snapshot_mode_parse(mode, &s->memory) < 0) {
        es_err_set(e, 0, ps->origin, "line %zu: invalid memory snapshot mode '%s'", line_of(ps, n),
                   mode);
        free(mode);
        return -1;
    }
    free(mode);
    if (s->memory == DOMXML_SNAPSHOT_MANUAL)
        return es_err_set(e, 0, ps->origin, "'manual' memory snapshot mode not supported");
    /* libvirt's defaults for a redefined snapshot. */
    if (s->memory == DOMXML_SNAPSHOT_DEFAULT)
        s->memory = s->memory_file        ? DOMXML_SNAPSHOT_EXTERNAL
                    : is_offline(s->state) ? DOMXML_SNAPSHOT_NO
                                           : DOMXML_SNAPSHOT_INTERNAL;
    if (s->memory_file && s->memory != DOMXML_SNAPSHOT_EXTERNAL)
        return es_err_set(e, 0, ps->origin, "memory filename '%s' requires external snapshot",
                          s->memory_file);
    if (!s->memory_file && s->memory == DOMXML_SNAPSHOT_EXTERNAL)
        return es_err_set(e, 0, ps->origin, "external memory snapshots require a filename");
    if (s->memory_file && s->memory_file[0] != '/')
        return es_err_set(e, 0, ps->origin, "memory snapshot file path (%s) must be absolute",
                          s->memory_file);
    return 0;
}

static int parse_snap_disk(parser *ps, const xmlNode *n, domxml_snap_disk *k, es_err *e)
{
    size_t line = line_of(ps, n);
    char *v = NULL;
    if (dx_prop(n, "name", &k->name, e) < 0)
        return -1;
    if (!k->name)
        return es_err_set(e, 0, ps->origin, "line %zu: missing name from disk snapshot element",
                          line);
    if (dx_prop(n, "snapshot", &v, e) < 0)
        return -1;
    if (v && domxml_snapshot_mode_parse(v, &k->snapshot) < 0)
        goto bad_snapshot;
    free(v);
    k->type = DOMXML_STORAGE_FILE;
    if (dx_prop(n, "type", &v, e) < 0)
        return -1;
    if (v && domxml_storage_type_parse(v, &k->type) < 0)
        goto bad_type;
    free(v);
    v = NULL;
    if (k->type == DOMXML_STORAGE_VOLUME || k->type == DOMXML_STORAGE_DIR)
        return es_err_set(e, 0, ps->origin, "line %zu: unsupported disk snapshot type '%s'", line,
                          domxml_storage_type_name(k->type));

    xmlNode *src = dx_child(n, "source");
    const char *attr = k->type == DOMXML_STORAGE_BLOCK     ? "dev"
                       : k->type == DOMXML_STORAGE_NETWORK ? "name"
                       : k->type == DOMXML_STORAGE_FILE    ? "file"
                                                           : NULL;
    if (src && attr && dx_prop(src, attr, &k->source, e) < 0)
        return -1;
    xmlNode *drv = dx_child(n, "driver");
    if (drv && dx_prop(drv, "type", &k->driver_type, e) < 0)
        return -1;
    if (k->driver_type && !domxml_is_image_format(k->driver_type))
        return es_err_set(e, 0, ps->origin, "line %zu: unknown disk snapshot driver '%s'", line,
                          k->driver_type);
    if (k->source && (k->type == DOMXML_STORAGE_FILE || k->type == DOMXML_STORAGE_BLOCK) &&
        k->source[0] != '/')
        return es_err_set(e, 0, ps->origin, "line %zu: disk snapshot image path '%s' must be absolute",
                          line, k->source);
    if (k->snapshot == DOMXML_SNAPSHOT_DEFAULT && (k->source || k->driver_type))
        k->snapshot = DOMXML_SNAPSHOT_EXTERNAL;
    k->delete_in_progress = dx_child(n, "snapshotDeleteInProgress") != NULL;

    /* Keep the original text, and what the fields format to, so an untouched
     * disk is written back byte for byte (and nothing libvirt added is lost). */
    const xs_elem *el = &ps->scan->elems[dx_node_elem(n)];
    if (span_copy(ps, el->start, el->end - el->start, &k->orig_text, e) < 0)
        return -1;
    dx_buf gen = {0};
    dx_snap_disk_generate(&gen, k);
    return dx_buf_take(&gen, &k->orig_format, NULL, e);

bad_snapshot:
    es_err_set(e, 0, ps->origin, "line %zu: invalid disk snapshot mode '%s'", line, v);
    free(v);
    return -1;
bad_type:
    es_err_set(e, 0, ps->origin, "line %zu: invalid disk type '%s'", line, v);
    free(v);
    return -1;
}

/* libvirt reads every child element of <disks> as a disk. */
static int parse_disk_list(parser *ps, const xmlNode *n, domxml_snap_disk **out, size_t *count,
                           es_err *e)
{
    size_t total = 0;
    for (xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            total++;
    if (!total)
        return 0;
    *out = es_xcalloc(total, sizeof **out);
    for (xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        (*count)++;
        if (parse_snap_disk(ps, c, &(*out)[*count - 1], e) < 0)
            return -1;
    }
    return 0;
}

static int parse_domain(parser *ps, const xmlNode *n, size_t elem, es_err *e)
{
    domxml_snapshot *s = ps->s;
    char *type = NULL;
    if (dx_prop(n, "type", &type, e) < 0)
        return -1;
    bool legacy = !type || !*type;
    free(type);
    const xs_elem *el = &ps->scan->elems[elem];
    if (legacy) /* "parsing older snapshot that lacks domain": kept as is */
        return span_copy(ps, el->start, el->end - el->start, &s->priv->legacy_domain, e);

    /* Out of the snapshot, the domain stands alone: two spaces less. */
    dx_buf b = {0};
    dx_reindent(&b, ps->scan, elem, -2);
    char *text, origin[ES_ERR_PATH_MAX + 32];
    size_t len;
    if (dx_buf_take(&b, &text, &len, e) < 0)
        return -1;
    size_t line = xs_line_of(ps->scan->text, el->start);
    snprintf(origin, sizeof origin, "%s: <domain> at line %zu", ps->origin, line);
    int rc = dx_domain_parse_at(text, len, origin, line, &s->domain, e);
    free(text);
    if (rc < 0 && e) {
        snprintf(e->path, sizeof e->path, "%s", ps->origin);
        es_err_prefix(e, "in the saved <domain>");
    }
    return rc;
}

static int parse_text_child(const xmlNode *n, char **field, es_err *e)
{
    if (dx_text(n, field, e) < 0)
        return -1;
    if (!**field) { /* libvirt's string() lookups treat "" as absent */
        free(*field);
        *field = NULL;
    }
    return 0;
}

/* One child element of <domainsnapshot>: interpret it, or keep it as read
 * to be written back in the same place. */
static int parse_child(parser *ps, xmlNode *n, size_t elem, es_err *e)
{
    domxml_snapshot *s = ps->s;
    static const struct {
        const char *name;
        snap_slot slot;
    } known[] = {
        {"name", SNAP_SLOT_NAME},         {"description", SNAP_SLOT_DESCRIPTION},
        {"state", SNAP_SLOT_STATE},       {"parent", SNAP_SLOT_PARENT},
        {"creationTime", SNAP_SLOT_CREATION_TIME}, {"memory", SNAP_SLOT_MEMORY},
        {"disks", SNAP_SLOT_DISKS},       {"revertDisks", SNAP_SLOT_REVERT_DISKS},
        {"domain", SNAP_SLOT_DOMAIN},     {"active", SNAP_SLOT_ACTIVE},
    };
    snap_slot slot = SNAP_SLOT_START;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (dx_is(n, known[i].name))
            slot = known[i].slot;
    /* libvirt would read the first of two and ignore the second, which
     * the schema forbids: which one the user meant is a guess, and carried
     * along, the second would be the first after a round trip. */
    if (slot != SNAP_SLOT_START && ps->seen[slot])
        return es_err_set(e, 0, ps->origin, "line %zu: a second <%s> element", line_of(ps, n),
                          (const char *)n->name);
    if (slot == SNAP_SLOT_START) {
        const xs_elem *el = &ps->scan->elems[elem];
        return add_item(ps, el->start, el->end - el->start, e);
    }
    ps->seen[slot] = true;
    ps->last = slot;
    char *v = NULL;
    long long num;
    switch (slot) {
    case SNAP_SLOT_NAME:
        return parse_text_child(n, &s->name, e);
    case SNAP_SLOT_DESCRIPTION:
        return parse_text_child(n, &s->description, e);
    case SNAP_SLOT_STATE:
        return parse_text_child(n, &s->state, e);
    case SNAP_SLOT_PARENT:
        return dx_child_text(n, "name", &s->parent, e);
    case SNAP_SLOT_CREATION_TIME:
        if (dx_text(n, &v, e) < 0)
            return -1;
        if (!parse_integer(v, &num)) {
            es_err_set(e, 0, ps->origin, "line %zu: creationTime '%s' is not an integer",
                       line_of(ps, n), v);
            free(v);
            return -1;
        }
        free(v);
        s->creation_time = num;
        return 0;
    case SNAP_SLOT_MEMORY:
        return 0; /* after <state> is known: see domxml_snapshot_parse */
    case SNAP_SLOT_DISKS:
        return parse_disk_list(ps, n, &s->disks, &s->ndisks, e);
    case SNAP_SLOT_REVERT_DISKS:
        return parse_disk_list(ps, n, &s->revert_disks, &s->nrevert_disks, e);
    case SNAP_SLOT_DOMAIN:
        return parse_domain(ps, n, elem, e);
    case SNAP_SLOT_ACTIVE:
        if (dx_text(n, &v, e) < 0)
            return -1;
        if (!parse_integer(v, &num) || num < -2147483648LL || num > 2147483647LL) {
            es_err_set(e, 0, ps->origin, "line %zu: <active> '%s' is not an integer",
                       line_of(ps, n), v);
            free(v);
            return -1;
        }
        free(v);
        s->current = num != 0;
        ps->has_active = true;
        return 0;
    default:
        return 0;
    }
}

/* Walk the tokens of the root's content: elements and comments at depth 1
 * are the children; text between them is layout. */
static int parse_children(parser *ps, size_t root, es_err *e)
{
    const xs_doc *scan = ps->scan;
    const xs_elem *r = &scan->elems[root];
    if (r->empty)
        return 0;
    size_t t = r->stag_token + 1;
    while (t < scan->ntokens && scan->tokens[t].off < r->etag_start) {
        const xs_token *tok = &scan->tokens[t];
        if (tok->kind == XS_STAG || tok->kind == XS_EMPTY) {
            size_t elem = tok->elem;
            if (parse_child(ps, ps->nodes[elem], elem, e) < 0)
                return -1;
            size_t end = scan->elems[elem].end;
            while (t < scan->ntokens && scan->tokens[t].off < end)
                t++;
            continue;
        }
        if (tok->kind == XS_COMMENT || tok->kind == XS_PI || tok->kind == XS_CDATA)
            if (add_item(ps, tok->off, tok->len, e) < 0)
                return -1;
        t++;
    }
    return 0;
}

static int check_required(parser *ps, xmlNode *root, es_err *e)
{
    domxml_snapshot *s = ps->s;
    if (!s->name)
        return es_err_set(e, 0, ps->origin, "a redefined snapshot must have a name");
    if (!ps->seen[SNAP_SLOT_CREATION_TIME])
        return es_err_set(e, 0, ps->origin, "missing creationTime from existing snapshot");
    if (!s->state)
        return es_err_set(e, 0, ps->origin, "missing state from existing snapshot");
    if (!domxml_is_snapshot_state(s->state))
        return es_err_set(e, 0, ps->origin, "Invalid state '%s' in domain snapshot XML", s->state);
    if (!ps->has_active)
        return es_err_set(e, 0, ps->origin, "Could not find 'active' element");
    xmlNode *mem = dx_child(root, "memory");
    if (mem && parse_memory(ps, mem, e) < 0)
        return -1;
    if (!is_offline(s->state) || s->memory == DOMXML_SNAPSHOT_DEFAULT ||
        s->memory == DOMXML_SNAPSHOT_NO)
        return 0;
    return es_err_set(e, 0, ps->origin,
                      "memory state cannot be saved with offline or disk-only snapshot");
}

static int index_nodes(parser *ps, xmlNode *root, es_err *e)
{
    (void)e;
    ps->nodes = es_xcalloc(ps->scan->nelems, sizeof *ps->nodes);
    for (xmlNode *c = root->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            ps->nodes[dx_node_elem(c)] = c;
    return 0;
}

static int split_outside(parser *ps, es_err *e)
{
    const xs_elem *r = &ps->scan->elems[0];
    domxml_snapshot_priv *p = ps->s->priv;
    if (span_copy(ps, 0, r->start, &p->prolog, e) < 0)
        return -1;
    return span_copy(ps, r->end, ps->scan->len - r->end, &p->epilog, e);
}

int domxml_snapshot_parse(const char *text, size_t len, const char *origin,
                          domxml_snapshot **out, es_err *e)
{
    *out = NULL;
    if (!origin)
        origin = "(snapshot XML)";
    parser ps = {.origin = origin};
    xs_doc scan;
    xmlDoc *doc = NULL;
    if (xs_scan(text, len, origin, &scan, e) < 0)
        return -1;
    ps.scan = &scan;
    int rc = -1;
    ps.s = es_xcalloc(1, sizeof *ps.s);
    ps.s->priv = es_xcalloc(1, sizeof *ps.s->priv);
    if (dx_xml_parse(text, len, origin, &scan, &doc, e) < 0)
        goto out;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!dx_is(root, "domainsnapshot")) {
        es_err_set(e, 0, origin, "root element is <%s>, expected <domainsnapshot>",
                   (const char *)root->name);
        goto out;
    }
    if (index_nodes(&ps, root, e) < 0 || split_outside(&ps, e) < 0 ||
        parse_children(&ps, 0, e) < 0 || check_required(&ps, root, e) < 0)
        goto out;
    *out = ps.s;
    ps.s = NULL;
    rc = 0;
out:
    if (rc < 0 && e && !e->path[0])
        snprintf(e->path, sizeof e->path, "%s", origin);
    free(ps.nodes);
    domxml_snapshot_free(ps.s);
    xmlFreeDoc(doc);
    xs_free(&scan);
    return rc;
}

int domxml_snapshot_load(const char *path, domxml_snapshot **out, es_err *e)
{
    char *text;
    size_t len;
    *out = NULL;
    if (es_read_file(path, DOMXML_FILE_MAX, &text, &len, e) < 0)
        return -1;
    int rc = domxml_snapshot_parse(text, len, path, out, e);
    free(text);
    return rc;
}
