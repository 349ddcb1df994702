#include "snap/txn/plan_print.h"

#include "snap/txn/plan_json.h"

void snap_plan_print(FILE *out, const snap_plan *p, const char *title)
{
    fprintf(out, "%s %s\n", title, p->summary ? p->summary : p->op);
    for (size_t i = 0; i < p->noverlays; i++) {
        const snap_overlay *o = &p->overlays[i];
        fprintf(out, "  new overlay  %s\n               disk %s, backing file %s (%s)\n", o->path,
                o->disk, o->backing, o->backing_format);
    }
    for (size_t i = 0; i < p->nmerges; i++)
        fprintf(out, "  merge        %s\n               into %s (disk %s)\n", p->merges[i].top,
                p->merges[i].base, p->merges[i].disk);
    for (size_t i = 0; i < p->nrebases; i++) {
        const snap_rebase *r = &p->rebases[i];
        fprintf(out, "  rebase       %s\n               backing file %s (%s), was %s\n", r->path,
                r->backing ? r->backing : "none", r->backing_format ? r->backing_format : "-",
                r->old_backing ? r->old_backing : "none");
    }
    for (size_t i = 0; i < p->nxml; i++) {
        const snap_xml_write *w = &p->xml[i];
        fprintf(out, "  %-12s %s\n", snap_xml_action(w), w->path);
        if (w->summary)
            fprintf(out, "               %s\n", w->summary);
    }
    for (size_t i = 0; i < p->ndeletes; i++) {
        fprintf(out, "  delete       %s\n", p->deletes[i].path);
        if (p->deletes[i].reason)
            fprintf(out, "               %s\n", p->deletes[i].reason);
    }
    if (snap_plan_empty(p))
        fprintf(out, "  (nothing to change)\n");
    for (size_t i = 0; i < p->notes.n; i++)
        fprintf(out, "  note: %s\n", p->notes.v[i]);
}
