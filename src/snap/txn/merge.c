#include "snap/txn/merge.h"

#include <stdlib.h>

#include "qcow2/commit.h"
#include "qcow2/image.h"
#include "util/rootpath.h"

int snap_merge_qcow2(const char *root, const snap_merge *m, const es_progress_sink *pr,
                     es_err *e)
{
    char *base_host = NULL;
    if (es_root_resolve(root, m->base, &base_host, e) < 0)
        return -1;
    es_open_opts oo = {.format = "qcow2", .root = root};
    es_image *top = NULL;
    if (es_image_open(&top, m->top, &oo, e) < 0) {
        free(base_host);
        return -1;
    }
    int rc = -1;
    es_image *base = es_commit_find_base(top, base_host, e);
    if (base) {
        /* TOP stays intact: it is what makes a repeated merge idempotent.
         * The free space was checked before the journal (plan_check.h),
         * summed over every merge of the operation on one file system; a
         * check per merge here would come past the point of no return. */
        es_commit_opts co = {.keep_top = true, .skip_space_check = true, .progress_disk = m->disk};
        if (pr)
            co.progress = *pr;
        rc = es_commit(top, base, &co, e);
    }
    es_image_close(top);
    free(base_host);
    return rc;
}
