#include "snap/merge.h"

#include <stdlib.h>
#include <string.h>

#include "qcow2/commit.h"
#include "qcow2/image.h"
#include "util/rootpath.h"

int snap_merge_qcow2(const char *root, const snap_merge *m, es_err *e)
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
        /* TOP stays intact: it is what makes a repeated merge idempotent. */
        es_commit_opts co = {.keep_top = true};
        const char *skip = getenv("EXTSNAP_SKIP_SPACE_CHECK");
        co.skip_space_check = skip && strcmp(skip, "1") == 0;
        rc = es_commit(top, base, &co, e);
    }
    es_image_close(top);
    free(base_host);
    return rc;
}
