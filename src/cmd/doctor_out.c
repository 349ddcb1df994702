/* The chain doctor's findings and plan, as text and JSON, for img doctor
 * and doctor. */
#include "cmd/doctor_out.h"

#include <stdio.h>

#include "cmd/domain_opts.h"
#include "cmd/json_out.h"

/* The content evidence (null when it was not needed: no tie). */
static json_object *content_json(const qcow2_doctor_content *ct)
{
    if (!ct->measured && !ct->unreadable)
        return NULL;
    json_object *o = es_json_new_object();
    es_json_add_bool(o, "measured", ct->measured);
    es_json_add_u64(o, "allocated-clusters", ct->allocated_clusters);
    es_json_add_u64(o, "max-sampled-clusters", ct->max_clusters);
    es_json_add_u64(o, "sampled-clusters", ct->sampled_clusters);
    es_json_add_u64(o, "sector-size", 512);
    es_json_add_u64(o, "compared-sectors", ct->compared_sectors);
    es_json_add_u64(o, "matching-sectors", ct->matching_sectors);
    es_json_add_u64(o, "matching-clusters", ct->matching_clusters);
    es_json_add_str_or_null(o, "unreadable", ct->unreadable);
    return o;
}

static json_object *candidate_json(const qcow2_doctor_candidate *c)
{
    json_object *o = es_json_new_object();
    es_json_add_str(o, "filename", c->filename);
    es_json_add_str(o, "format", qcow2_doctor_format_name(c->format));
    es_json_add_u64(o, "virtual-size", c->virtual_size);
    es_json_add_u64(o, "cluster-size", c->cluster_size);
    es_json_add_i64(o, "score", c->score);
    es_json_add_str_or_null(o, "evidence", c->evidence);
    es_json_add_str_or_null(o, "rejected", c->rejected);
    json_object_object_add(o, "content", content_json(&c->content));
    es_json_add_bool(o, "chosen", c->chosen);
    return o;
}

json_object *es_doctor_findings_json(const qcow2_doctor_report *r)
{
    json_object *list = es_json_new_array();
    for (size_t i = 0; i < r->nfindings; i++) {
        const qcow2_doctor_finding *f = &r->findings[i];
        json_object *o = es_json_new_object();
        es_json_add_str(o, "severity", qcow2_doctor_severity_name(f->severity));
        es_json_add_str(o, "kind", qcow2_doctor_kind_name(f->kind));
        es_json_add_str(o, "image", f->image);
        es_json_add_str_or_null(o, "backing-filename", f->backing);
        es_json_add_str_or_null(o, "backing-filename-format", f->backing_format);
        es_json_add_str(o, "message", f->message);
        es_json_add_str_or_null(o, "repair", f->repair);
        if (f->plan_step >= 0)
            es_json_add_i64(o, "plan-step", f->plan_step);
        else
            json_object_object_add(o, "plan-step", NULL);
        json_object *cands = es_json_new_array();
        for (size_t j = 0; j < f->ncandidates; j++)
            es_json_append(cands, candidate_json(&f->candidates[j]));
        es_json_add(o, "candidates", cands);
        es_json_append(list, o);
    }
    return list;
}

json_object *es_doctor_plan_json(const qcow2_doctor_report *r)
{
    json_object *list = es_json_new_array();
    for (size_t i = 0; i < r->nsteps; i++) {
        const qcow2_doctor_step *s = &r->steps[i];
        json_object *o = es_json_new_object();
        es_json_add_str(o, "image", s->image);
        es_json_add_str(o, "backing-filename", s->backing);
        es_json_add_str(o, "backing-filename-format", s->format);
        es_json_add_str(o, "old-backing-filename", s->old_backing);
        es_json_add_str_or_null(o, "old-backing-filename-format", s->old_format);
        es_json_append(list, o);
    }
    return list;
}

void es_doctor_print_findings(const qcow2_doctor_report *r, const char *indent)
{
    for (size_t i = 0; i < r->nfindings; i++) {
        const qcow2_doctor_finding *f = &r->findings[i];
        printf("%s%-7s %s: %s: %s", indent, qcow2_doctor_severity_name(f->severity), f->image,
               qcow2_doctor_kind_name(f->kind), f->message);
        if (f->repair)
            printf("; repair%s: %s", f->plan_step >= 0 ? " (planned)" : "", f->repair);
        printf("\n");
        for (size_t j = 0; j < f->ncandidates; j++) {
            const qcow2_doctor_candidate *c = &f->candidates[j];
            if (c->rejected)
                printf("%s        candidate %s: ruled out: %s\n", indent, c->filename, c->rejected);
            else
                printf("%s        candidate %s: %s, %d point%s: %s\n", indent, c->filename,
                       c->chosen ? "chosen" : "not chosen", c->score, c->score == 1 ? "" : "s",
                       c->evidence);
        }
    }
}

void es_doctor_print_plan(const qcow2_doctor_report *r, const char *indent)
{
    if (!r->nsteps)
        return;
    printf("%sRepair plan:\n", indent);
    for (size_t i = 0; i < r->nsteps; i++) {
        const qcow2_doctor_step *s = &r->steps[i];
        printf("%s  rebase -u %s: backing file %s (%s), was %s (%s)\n", indent, s->image, s->backing,
               s->format, s->old_backing, s->old_format ? s->old_format : "no format");
    }
}

