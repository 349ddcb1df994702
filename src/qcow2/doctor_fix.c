/* The chain doctor's repair: its plan's header rewrites, one image at a
 * time. Each is qemu-img rebase -u's atomic write of cluster 0 under the
 * image's write lock (rebase.c); before it, the header must still say what
 * the diagnosis read, so a change made in between is not overwritten. */
#include <stdio.h>
#include <stdlib.h>

#include "qcow2/doctor.h"
#include "qcow2/rebase.h"
#include "util/rootpath.h"
#include "util/str.h"

static int still_as_diagnosed(const qcow2_doctor_step *s, const char *root, es_err *e)
{
    es_image *img = NULL;
    es_open_opts oo = {.no_backing = true, .root = root, .force_share = true};
    if (es_image_open(&img, s->image, &oo, e) < 0)
        return -1;
    int r = 0;
    if (img->format != ES_FMT_QCOW2 || !es_streq(img->hdr.backing_file, s->old_backing) ||
        !es_streq(img->hdr.backing_format, s->old_format))
        r = es_err_set(e, 0, s->image,
                       "its backing file or format changed since the diagnosis; nothing "
                       "written (run the doctor again)");
    es_image_close(img);
    return r;
}

int qcow2_doctor_apply(const qcow2_doctor_report *r, const char *root, size_t *applied,
                       es_err *e)
{
    *applied = 0;
    for (size_t i = 0; i < r->nsteps; i++) {
        const qcow2_doctor_step *s = &r->steps[i];
        char *open_path = NULL;
        if (still_as_diagnosed(s, root, e) < 0 ||
            es_root_resolve(root, s->image, &open_path, e) < 0)
            return -1;
        int rc = qcow2_rebase_unsafe(open_path, s->backing, s->format, e);
        if (rc < 0 && root)
            snprintf(e->path, sizeof e->path, "%s", s->image);
        free(open_path);
        if (rc < 0)
            return -1;
        (*applied)++;
    }
    return 0;
}
