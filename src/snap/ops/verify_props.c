/* verify: what disk descriptions say about their image files, against the
 * files. */
#include "snap/ops/verify_props.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/snapshot.h"
#include "snap/ops/verify_report.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

typedef struct pctx {
    const snap_ctx *c;
    const snap_graph *g;
    snap_verify_report *r;
    bool *reported; /* per node: already reported, so each file is told once */
} pctx;

static int report(pctx *p, es_err *e, size_t node, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int report(pctx *p, es_err *e, size_t node, const char *code, const char *fmt, ...)
{
    if (p->reported[node])
        return 0;
    p->reported[node] = true;
    va_list ap;
    va_start(ap, fmt);
    int rc = snap_verify_problemv(p->r, e, code, SNAP_SEV_ERROR, p->g->v[node].path, fmt, ap);
    va_end(ap);
    return rc;
}

/* Does the file begin with a LUKS header (either version)? */
static bool has_luks_magic(const pctx *p, const char *path)
{
    static const unsigned char magic[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};
    char *host = NULL;
    es_err ignored = {0};
    if (es_root_resolve(p->c->env->root, path, &host, &ignored) < 0)
        return false;
    es_file *f = NULL;
    unsigned char buf[6] = {0};
    size_t got = 0;
    bool yes = es_file_open(&f, host, O_RDONLY, 0, &ignored) == 0 &&
               es_file_pread_some(f, buf, sizeof buf, 0, &got, &ignored) == 0 &&
               got == sizeof buf && memcmp(buf, magic, sizeof magic) == 0;
    es_file_close(f);
    free(host);
    return yes;
}

static const char *whose(const domxml_snapshot *s, char *buf, size_t len)
{
    if (!s)
        return "the domain config";
    snprintf(buf, len, "snapshot %s's saved definition", s->name);
    return buf;
}

static int check_encryption(pctx *p, const domxml_snapshot *s, const domxml_disk *k,
                            size_t node, es_err *e)
{
    const snap_gnode *n = &p->g->v[node];
    char who[600];
    whose(s, who, sizeof who);
    /* The engine refuses encrypted qcow2 images: one it opened has none. */
    if (n->format && strcmp(n->format, "qcow2") == 0)
        return report(p, e, node, "encryption-mismatch",
                      "%s gives disk %s <encryption format='%s'>, but the image's qcow2 header "
                      "has no encryption (an overlay that inherited its backing image's "
                      "<encryption>?): QEMU refuses to open it with those options%s%s%s",
                      who, k->target_dev, k->encryption_format,
                      n->backing != SNAP_GNONE ? ", and without them it shows the guest " : "",
                      n->backing != SNAP_GNONE ? p->g->v[n->backing].path : "",
                      n->backing != SNAP_GNONE ? " as it is" : "");
    bool luks = strncmp(k->encryption_format, "luks", 4) == 0;
    if (luks && n->format && strcmp(n->format, "raw") == 0 && !has_luks_magic(p, k->source))
        return report(p, e, node, "encryption-mismatch",
                      "%s gives disk %s <encryption format='%s'>, but the file has no LUKS "
                      "header",
                      who, k->target_dev, k->encryption_format);
    return 0;
}

/* qcow2 overlays whose header names an image described as encrypted: QEMU
 * opens that backing file without the secret. */
static int check_encrypted_backing(pctx *p, const domxml_snapshot *s, const domxml_disk *k,
                                   size_t node, es_err *e)
{
    char who[600];
    whose(s, who, sizeof who);
    for (size_t i = 0; i < p->g->n; i++) {
        const snap_gnode *u = &p->g->v[i];
        if (u->backing != node || !u->format || strcmp(u->format, "qcow2") != 0)
            continue;
        if (report(p, e, i, "encrypted-backing",
                   "its header names %s as %s backing file, but %s describes that image with "
                   "<encryption format='%s'> (disk %s): QEMU opens it without the secret, so "
                   "the guest sees the encrypted container itself",
                   p->g->v[node].path, u->backing_format ? u->backing_format : "a probed", who,
                   k->encryption_format, k->target_dev) < 0)
            return -1;
    }
    return 0;
}

static int check_slice(pctx *p, const domxml_snapshot *s, const domxml_disk *k, size_t node,
                       es_err *e)
{
    const snap_gnode *n = &p->g->v[node];
    if (!n->format || strcmp(n->format, "qcow2") != 0 || !n->backing_name)
        return 0;
    char who[600];
    whose(s, who, sizeof who);
    return report(p, e, node, "slice-on-overlay",
                  "%s gives disk %s a <slices> slice, but its image is a qcow2 overlay (backing "
                  "file %s): the slice belonged to the image below, and on the overlay it cuts "
                  "the qcow2 file itself",
                  who, k->target_dev, n->backing_name);
}

static int check_domain(pctx *p, const domxml_snapshot *s, const domxml_domain *d, es_err *e)
{
    for (size_t i = 0; d && i < d->ndisks; i++) {
        const domxml_disk *k = &d->disks[i];
        if (k->type != DOMXML_STORAGE_FILE || !k->source)
            continue;
        size_t node = snap_graph_find(p->g, p->c->env->root, k->source);
        if (node == SNAP_GNONE || !p->g->v[node].exists)
            continue; /* reported as missing */
        if (k->encryption_format && (check_encryption(p, s, k, node, e) < 0 ||
                                     check_encrypted_backing(p, s, k, node, e) < 0))
            return -1;
        if (k->has_slices && check_slice(p, s, k, node, e) < 0)
            return -1;
    }
    return 0;
}

int snap_verify_image_props(const snap_ctx *c, const snap_graph *g, snap_verify_report *r,
                            es_err *e)
{
    pctx p = {.c = c, .g = g, .r = r, .reported = es_xcalloc(g->n + 1, sizeof(bool))};
    int rc = check_domain(&p, NULL, c->config, e);
    for (size_t i = 0; rc == 0 && i < c->snaps->n; i++)
        rc = check_domain(&p, c->snaps->snaps[i], c->snaps->snaps[i]->domain, e);
    free(p.reported);
    return rc;
}
