/* Backing-chain check. The chain below the image is opened with the
 * engine's own es_image_open (same resolution, loop and depth rules as every
 * other command); what it accepts silently but QEMU users get bitten by
 * (probed formats, a qcow2 file used as raw) is reported here. */
#include "qcow2/check_chain.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2/format.h"
#include "qcow2/header.h"
#include "qcow2/image.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

#define HEADER_READ_MAX (1u << QCOW2_MAX_CLUSTER_BITS)

void qcow2_chain_problems_free(qcow2_chain_problems *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->msgs[i]);
    free(p->msgs);
    p->msgs = NULL;
    p->n = 0;
}

static int add(qcow2_chain_problems *p, es_err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int add(qcow2_chain_problems *p, es_err *e, const char *fmt, ...)
{
    (void)e;
    p->msgs = es_xreallocarray(p->msgs, p->n + 1, sizeof *p->msgs);
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&p->msgs[p->n], fmt, ap);
    va_end(ap);
    if (r < 0)
        es_oom();
    p->n++;
    return 0;
}

/* Backing name and format of a qcow2 file, read with the check's leniency
 * (tables past the end of the file do not matter here). */
static int read_backing_fields(const char *path, char **name, char **format, es_err *e)
{
    *name = *format = NULL;
    es_file *f;
    uint64_t size;
    if (es_file_open(&f, path, O_RDONLY, 0, e) < 0)
        return -1;
    int r = es_file_size(f, &size, e);
    size_t want = size < HEADER_READ_MAX ? (size_t)size : HEADER_READ_MAX;
    uint8_t *buf = r == 0 ? es_xmalloc(want) : NULL;
    if (r == 0)
        r = es_file_pread(f, buf, want, 0, e);
    qcow2_header h;
    if (r == 0)
        r = qcow2_header_parse(&h, buf, want, UINT64_MAX, path, e);
    free(buf);
    es_file_close(f);
    if (r < 0)
        return -1;
    *name = es_xstrdup(h.backing_file);
    *format = es_xstrdup(h.backing_format);
    qcow2_header_free(&h);
    return r;
}

static bool file_is_qcow2(es_file *f)
{
    uint8_t magic[4];
    size_t got = 0;
    es_err ignored;
    return es_file_pread_some(f, magic, sizeof magic, 0, &got, &ignored) == 0 &&
           got == sizeof magic && be32_load(magic) == QCOW2_MAGIC;
}

/* Problems es_image_open lets pass, for the image `img` named by a header
 * whose backing format was `format` (NULL: none). */
static int judge_opened(const es_image *naming, const es_image *img, const char *format,
                        qcow2_chain_problems *out, es_err *e)
{
    if (!format) {
        if (add(out, e,
                "%s names backing file '%s' without a backing format: its format is probed, "
                "which is unsafe (set it with rebase -u -F)",
                naming ? naming->filename : "image", img->filename) < 0)
            return -1;
    } else if (img->format == ES_FMT_RAW && file_is_qcow2(img->file)) {
        if (add(out, e, "backing file %s is a qcow2 image but is named with format 'raw'",
                img->filename) < 0)
            return -1;
    }
    return 0;
}

int qcow2_check_chain_names_in_root(const char *path, const char *root, es_err *e)
{
    if (!root || !root[0])
        return 0;
    char *cur = es_xstrdup(path);
    int ret = 0;
    /* A loop stops at the depth limit: headers only, so that is cheap. */
    for (int depth = 0; depth <= ES_CHAIN_MAX_DEPTH; depth++) {
        char *open_path = NULL, *name = NULL, *format = NULL, *display = NULL;
        es_err ignored;
        if (es_root_resolve(root, cur, &open_path, e) < 0) {
            ret = -1;
            break;
        }
        int r = read_backing_fields(open_path, &name, &format, &ignored);
        free(open_path);
        free(format);
        /* Not readable as qcow2, or the bottom: nothing more to resolve. */
        if (r < 0 || !name)
            break;
        /* Protocol names are never followed (the chain check says so). */
        if (es_backing_resolve(cur, name, NULL, &display, &open_path, &ignored) < 0) {
            free(name);
            break;
        }
        free(open_path);
        free(display);
        r = es_backing_resolve(cur, name, root, &display, &open_path, e);
        free(name);
        free(open_path);
        if (r < 0) {
            ret = -1;
            break;
        }
        free(cur);
        cur = display;
    }
    free(cur);
    return ret;
}

int qcow2_check_backing_chain(const char *path, qcow2_chain_problems *out, es_err *e)
{
    return qcow2_check_backing_chain_root(path, NULL, out, e);
}

int qcow2_check_backing_chain_root(const char *path, const char *root,
                                   qcow2_chain_problems *out, es_err *e)
{
    out->msgs = NULL;
    out->n = 0;
    if (root && !root[0])
        root = NULL;
    char *name, *format, *top_path;
    if (es_root_resolve(root, path, &top_path, e) < 0)
        return -1;
    int rf = read_backing_fields(top_path, &name, &format, e);
    if (rf < 0 && root && e && strcmp(e->path, top_path) == 0) {
        /* Name the image as the host does; where it was looked for after. */
        snprintf(e->path, sizeof e->path, "%s", path);
        es_err_prefix(e, "at %s", top_path);
    }
    free(top_path);
    if (rf < 0)
        return -1;
    if (!name) {
        free(format);
        return 0;
    }
    int ret = 0;
    char *display = NULL, *open_path = NULL;
    es_err oerr;
    es_image *chain = NULL;
    if (!format && add(out, e,
                       "%s names backing file '%s' without a backing format: its format is "
                       "probed, which is unsafe (set it with rebase -u -F)",
                       path, name) < 0) {
        ret = -1;
        goto done;
    }
    if (es_backing_resolve(path, name, root, &display, &open_path, &oerr) < 0) {
        char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
        ret = add(out, e, "%s", es_err_str(&oerr, buf, sizeof buf));
        goto done;
    }
    struct stat st;
    if (es_fs_stat(open_path, &st) < 0 && errno == ENOENT) {
        ret = add(out, e, "backing file '%s' of %s does not exist (resolved to %s%s%s)", name,
                  path, display, root ? " under " : "", root ? root : "");
        goto done;
    }
    /* Opened by its host name so that deeper names resolve (and are shown)
     * as the host sees them; without a root display is open_path. */
    es_open_opts opts = {.format = format, .force_share = true, .root = root};
    if (es_image_open(&chain, display, &opts, &oerr) < 0) {
        char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
        ret = add(out, e, "backing chain of %s: %s", path, es_err_str(&oerr, buf, sizeof buf));
        goto done;
    }
    /* The first backing was named by `path`, deeper ones by their parent. */
    if (format && judge_opened(NULL, chain, format, out, e) < 0) {
        ret = -1;
        goto done;
    }
    for (const es_image *i = chain; i && i->backing; i = i->backing) {
        if (judge_opened(i, i->backing, i->hdr.backing_format, out, e) < 0) {
            ret = -1;
            goto done;
        }
    }
done:
    es_image_close(chain);
    free(display);
    free(open_path);
    free(name);
    free(format);
    if (ret < 0)
        qcow2_chain_problems_free(out);
    return ret;
}
