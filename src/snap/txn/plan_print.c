#include "snap/txn/plan_print.h"

#include <string.h>

#include "snap/txn/plan_json.h"

void snap_plan_print_title(FILE *out, const snap_plan *p, const char *title)
{
    fprintf(out, "%s %s\n", title, p->summary ? p->summary : p->op);
}

/* In the order they run: saves with the overlays, restores after the XML. */
static void print_vmcopies(FILE *out, const snap_plan *p, bool restore)
{
    for (size_t i = 0; i < p->nvmcopies; i++) {
        const snap_vmcopy *v = &p->vmcopies[i];
        if (v->restore == restore)
            fprintf(out, "  %-12s %s\n               %s, from %s\n",
                    restore ? "restore" : "save", v->to,
                    strcmp(v->what, "tpm") == 0 ? "the vTPM state" : "the NVRAM", v->from);
    }
}

void snap_plan_print(FILE *out, const snap_plan *p, const char *title)
{
    snap_plan_print_title(out, p, title);
    for (size_t i = 0; i < p->noverlays; i++) {
        const snap_overlay *o = &p->overlays[i];
        fprintf(out, "  new overlay  %s\n               disk %s, backing file %s (%s)\n", o->path,
                o->disk, o->backing, o->backing_format);
    }
    print_vmcopies(out, p, false);
    for (size_t i = 0; i < p->nmerges; i++) {
        /* Every image merged, not only the top: the ones between appear
         * otherwise only as deleted. */
        const snap_merge *m = &p->merges[i];
        fprintf(out, "  merge        %s\n", m->top);
        for (size_t k = 0; k < m->images.n; k++)
            if (strcmp(m->images.v[k], m->top) != 0)
                fprintf(out, "               and %s\n", m->images.v[k]);
        fprintf(out, "               into %s (disk %s)\n", m->base, m->disk);
    }
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
    print_vmcopies(out, p, true);
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
