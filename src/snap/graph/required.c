#include "snap/graph/required.h"

#include "domxml/domain.h"
#include "domxml/snapshot.h"
#include "domxml/snapshot_list.h"

static bool is_file(domxml_storage_type t)
{
    return t == DOMXML_STORAGE_FILE || t == DOMXML_STORAGE_BLOCK;
}

void snap_required_files(const snap_ctx *c, snap_required_fn fn, void *arg)
{
    for (size_t i = 0; i < c->config->ndisks; i++)
        if (is_file(c->config->disks[i].type))
            fn(c->config->disks[i].source, "the domain config", arg);
    for (size_t i = 0; c->snaps && i < c->snaps->n; i++) {
        const domxml_snapshot *s = c->snaps->snaps[i];
        for (size_t k = 0; s->domain && k < s->domain->ndisks; k++)
            if (is_file(s->domain->disks[k].type))
                fn(s->domain->disks[k].source, s->name, arg);
        for (size_t k = 0; k < s->nrevert_disks; k++)
            fn(s->revert_disks[k].source, s->name, arg);
        if (s->current && !s->nrevert_disks)
            for (size_t k = 0; k < s->ndisks; k++)
                fn(s->disks[k].source, s->name, arg);
    }
}
