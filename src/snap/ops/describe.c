#include "snap/ops/describe.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/snapshot.h"
#include "domxml/text.h"
#include "snap/txn/plan_xml.h"

int snap_plan_describe(snap_ctx *c, const char *name, const char *text, snap_plan **out,
                       es_err *e)
{
    *out = NULL;
    if (domxml_check_text(text, "the description", e) < 0)
        return -1;
    domxml_snapshot *t = domxml_snapshot_list_find(c->snaps, name);
    if (!t)
        return es_err_set(e, 0, NULL, "domain %s has no snapshot named '%s'", c->name, name);
    const char *want = text && *text ? text : NULL;
    bool same = want ? t->description && strcmp(t->description, want) == 0 : !t->description;
    snap_plan *p = NULL;
    if (snap_plan_new("describe", c->name, &p, e) < 0)
        return -1;
    char *sum = NULL;
    int r = es_asprintf(&p->summary, e, "%s the description of snapshot %s of domain %s%s",
                        want ? "set" : "remove", name, c->name,
                        same ? ": it is so already" : "");
    if (r == 0 && same) {
        *out = p;
        return 0;
    }
    if (r == 0)
        r = domxml_set_string(&t->description, want, e);
    if (r == 0)
        r = es_asprintf(&sum, e, "snapshot %s: %s", name,
                        want ? "new <description>" : "<description> removed");
    if (r == 0)
        r = snap_plan_put_snapshot(c, p, t, sum, e);
    free(sum);
    if (r < 0) {
        snap_plan_free(p);
        return -1;
    }
    *out = p;
    return 0;
}
