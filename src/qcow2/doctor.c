/* The chain doctor's diagnosis: walk an image's chain one header at a time
 * (each image opened alone, so a break does not hide what lies above it),
 * record what is wrong, and plan the header rewrites that repair it. */
#include "qcow2/doctor.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2/doctor_candidates.h"
#include "qcow2/doctor_content.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/str.h"
#include "util/xalloc.h"

const char *qcow2_doctor_kind_name(qcow2_doctor_kind k)
{
    switch (k) {
    case QCOW2_DOCTOR_MISSING_BACKING: return "missing-backing";
    case QCOW2_DOCTOR_MISSING_BACKING_FORMAT: return "missing-backing-format";
    case QCOW2_DOCTOR_WRONG_BACKING_FORMAT: return "wrong-backing-format";
    case QCOW2_DOCTOR_UNREADABLE_BACKING: return "unreadable-backing";
    case QCOW2_DOCTOR_BACKING_LOOP: return "backing-loop";
    case QCOW2_DOCTOR_CHAIN_TOO_DEEP: return "chain-too-deep";
    case QCOW2_DOCTOR_RELATIVE_BACKING: return "relative-backing-name";
    case QCOW2_DOCTOR_PROTOCOL_BACKING: return "protocol-backing";
    case QCOW2_DOCTOR_ROOT_PREFIXED_BACKING: return "root-prefixed-backing-name";
    }
    return "unknown";
}

const char *qcow2_doctor_severity_name(qcow2_doctor_severity s)
{
    return s == QCOW2_DOCTOR_ERROR ? "error" : "warning";
}

const char *qcow2_doctor_format_name(es_img_format f)
{
    return f == ES_FMT_QCOW2 ? "qcow2" : "raw";
}

static qcow2_doctor_finding *add_finding(qcow2_doctor_report *r, qcow2_doctor_severity sev,
                                         qcow2_doctor_kind kind, const es_image *img)
{
    r->findings = es_xreallocarray(r->findings, r->nfindings + 1, sizeof *r->findings);
    qcow2_doctor_finding *f = &r->findings[r->nfindings++];
    memset(f, 0, sizeof *f);
    f->severity = sev;
    f->kind = kind;
    f->image = es_xstrdup(img->filename);
    f->backing = img->hdr.backing_file ? es_xstrdup(img->hdr.backing_file) : NULL;
    f->backing_format = img->hdr.backing_format ? es_xstrdup(img->hdr.backing_format) : NULL;
    f->plan_step = -1;
    if (sev == QCOW2_DOCTOR_ERROR)
        r->errors++;
    else
        r->warnings++;
    return f;
}

static void plan(qcow2_doctor_report *r, qcow2_doctor_finding *f, const es_image *img,
                 const char *backing, const char *format)
{
    r->steps = es_xreallocarray(r->steps, r->nsteps + 1, sizeof *r->steps);
    qcow2_doctor_step *s = &r->steps[r->nsteps];
    s->image = es_xstrdup(img->filename);
    s->old_backing = es_xstrdup(img->hdr.backing_file);
    s->old_format = img->hdr.backing_format ? es_xstrdup(img->hdr.backing_format) : NULL;
    s->backing = es_xstrdup(backing);
    s->format = es_xstrdup(format);
    f->plan_step = (long)r->nsteps++;
    f->repair = es_xasprintf("rebase -u -b %s -F %s %s", backing, format, img->filename);
}

/* A host name made absolute: names under a root already are; otherwise the
 * real path of its directory (the file itself may be a link we keep). */
static char *absolute(const char *root, const char *name)
{
    if (name[0] == '/' || root)
        return es_xstrdup(name);
    char *dir = es_path_dir(name), *real = realpath(dir, NULL);
    const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    char *out = real ? es_xasprintf("%s/%s", strcmp(real, "/") ? real : "", base)
                     : es_xstrdup(name);
    free(real);
    free(dir);
    return out;
}

static bool same_dir(const char *root, const char *a, const char *b)
{
    char *da = es_path_dir(a), *db = es_path_dir(b), *pa = NULL, *pb = NULL;
    es_err ignored;
    struct stat sa, sb;
    bool same = es_root_resolve(root, da, &pa, &ignored) == 0 &&
                es_root_resolve(root, db, &pb, &ignored) == 0 && es_fs_stat(pa, &sa) == 0 &&
                es_fs_stat(pb, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    free(da);
    free(db);
    free(pa);
    free(pb);
    return same;
}

/* The name to write for the found file, in the style of the old one: a
 * relative name stays relative when the file is in the child's directory,
 * else the host's absolute name. */
static char *new_backing_name(const char *root, const es_image *child, const char *found)
{
    if (child->hdr.backing_file[0] != '/' && same_dir(root, child->filename, found))
        return es_xstrdup(strrchr(found, '/') ? strrchr(found, '/') + 1 : found);
    return absolute(root, found);
}

/* The backing file of child is missing: look for it. *next is the found
 * file, opened, when one is chosen. */
static int missing_backing(qcow2_doctor_report *r, const qcow2_doctor_opts *o, es_image *child,
                           const char *display, const qcow2_doctor_id *chain, size_t nchain,
                           es_image **next, es_err *e)
{
    *next = NULL;
    qcow2_doctor_finding *f =
        add_finding(r, QCOW2_DOCTOR_ERROR, QCOW2_DOCTOR_MISSING_BACKING, child);
    qcow2_doctor_orphan orphan = {child, display, chain, nchain};
    long chosen = -1;
    if (qcow2_doctor_find_candidates(&orphan, o, &f->candidates, &f->ncandidates, &chosen, e) < 0)
        return -1;
    size_t eligible = 0, top = 0;
    int best = INT_MIN;
    bool compared = false;
    for (size_t i = 0; i < f->ncandidates; i++) {
        const qcow2_doctor_candidate *c = &f->candidates[i];
        if (c->rejected)
            continue;
        eligible++;
        if (c->score > best) {
            best = c->score;
            top = 0;
        }
        if (c->score == best)
            top++;
        compared |= c->content.measured;
    }
    const char *nofmt = child->hdr.backing_format ? "" : " (and it names no backing format)";
    if (chosen < 0) {
        r->unrepaired_errors++;
        if (eligible)
            f->message = es_xasprintf(
                "backing file %s does not exist (looked for at %s)%s; %zu candidates have equal "
                "evidence%s: not choosing between them",
                child->hdr.backing_file, display, nofmt, top,
                compared ? ", and their content does not clearly tell them apart"
                : top > QCOW2_DOCTOR_CONTENT_MAX_CANDIDATES ? " (too many to compare their content)"
                                                           : "");
        else
            f->message = es_xasprintf(
                "backing file %s does not exist (looked for at %s)%s; no candidate found%s",
                child->hdr.backing_file, display, nofmt,
                f->ncandidates ? " (every file considered was ruled out)" : "");
        f->repair = es_xstrdup(eligible ? "by hand: find out which candidate holds the guest's "
                                          "data, then rebase -u to it"
                                        : "by hand: find the file (search more directories "
                                          "with --search), then rebase -u to it");
        return 0;
    }
    const qcow2_doctor_candidate *c = &f->candidates[chosen];
    f->message = es_xasprintf("backing file %s does not exist (looked for at %s)%s; found %s: %s",
                              child->hdr.backing_file, display, nofmt, c->filename, c->evidence);
    char *name = new_backing_name(o->root, child, c->filename);
    plan(r, f, child, name, qcow2_doctor_format_name(c->format));
    free(name);
    es_open_opts oo = {.no_backing = true, .root = o->root, .force_share = true,
                       .format = qcow2_doctor_format_name(c->format)};
    return es_image_open(next, c->filename, &oo, e);
}

/* Does the host name exist under root? */
static bool exists_under(const char *root, const char *host)
{
    char *open_path = NULL;
    es_err ignored;
    struct stat st;
    bool yes = es_root_resolve(root, host, &open_path, &ignored) == 0 &&
               es_fs_stat(open_path, &st) == 0;
    free(open_path);
    return yes;
}

/* img's backing name is DIR + host, and only host exists: plan the host's
 * name (the format kept, or qcow2 added when none is named and the file
 * is qcow2). next is that file, opened. */
static void root_prefixed(qcow2_doctor_report *r, const char *root, es_image *img,
                          const char *host, const es_image *next)
{
    qcow2_doctor_finding *f =
        add_finding(r, QCOW2_DOCTOR_ERROR, QCOW2_DOCTOR_ROOT_PREFIXED_BACKING, img);
    const char *named = img->hdr.backing_format;
    const char *fmt = named ? named : next->format == ES_FMT_QCOW2 ? "qcow2" : NULL;
    f->message = es_xasprintf("backing name %s starts with the --root directory %s (written "
                              "from the rescue system): on the host it names nothing; the file "
                              "is %s%s",
                              img->hdr.backing_file, root, host,
                              named ? "" : fmt ? " (and no backing format is named: qcow2)"
                                               : " (and no backing format is named)");
    if (fmt) {
        plan(r, f, img, host, fmt);
    } else {
        r->unrepaired_errors++;
        f->repair = es_xasprintf("by hand, once the format is known: rebase -u -b %s -F raw %s",
                                 host, img->filename);
    }
}

/* The backing file exists as named: check the format against the header. */
static void check_format(qcow2_doctor_report *r, const es_image *img, const es_image *b,
                         bool *stop)
{
    const char *named = img->hdr.backing_format, *probed = qcow2_doctor_format_name(b->format);
    if (!named) {
        qcow2_doctor_finding *f =
            add_finding(r, QCOW2_DOCTOR_ERROR, QCOW2_DOCTOR_MISSING_BACKING_FORMAT, img);
        if (b->format == ES_FMT_QCOW2) {
            f->message = es_xasprintf("no backing format for %s (QEMU 6.1 and later refuse "
                                      "to probe it); the file is qcow2",
                                      img->hdr.backing_file);
            plan(r, f, img, img->hdr.backing_file, "qcow2");
        } else {
            r->unrepaired_errors++;
            f->message = es_xasprintf("no backing format for %s, and the file has no qcow2 "
                                      "header: raw, or a format extsnap does not read; not "
                                      "guessing",
                                      img->hdr.backing_file);
            f->repair = es_xasprintf("by hand, once the format is known: rebase -u -b %s -F "
                                     "raw %s",
                                     img->hdr.backing_file, img->filename);
        }
        return;
    }
    if (strcmp(named, probed) == 0)
        return;
    qcow2_doctor_finding *f =
        add_finding(r, QCOW2_DOCTOR_ERROR, QCOW2_DOCTOR_WRONG_BACKING_FORMAT, img);
    r->unrepaired_errors++;
    if (b->format == ES_FMT_QCOW2)
        f->message = es_xasprintf("backing format %s, but %s is a qcow2 image: the guest sees "
                                  "its qcow2 metadata as disk content",
                                  named, b->filename);
    else
        f->message = es_xasprintf("backing format %s, but %s has no qcow2 header: QEMU cannot "
                                  "open the chain",
                                  named, b->filename);
    f->repair = es_xstrdup("by hand: which format the overlay was written against decides the "
                           "guest's data; not guessed");
    *stop = true;
}

int qcow2_doctor_diagnose(const char *image, const qcow2_doctor_opts *o, qcow2_doctor_report *r,
                          es_err *e)
{
    memset(r, 0, sizeof *r);
    es_open_opts oo = {.no_backing = true, .root = o->root, .force_share = true};
    es_image *cur = NULL;
    if (es_image_open(&cur, image, &oo, e) < 0)
        return -1;
    qcow2_doctor_id *chain = es_xmalloc(sizeof *chain);
    size_t nchain = 0;
    chain[nchain++] = qcow2_doctor_id_of(cur);
    r->chain_length = 1;
    int rc = 0;
    for (;;) {
        if (cur->format != ES_FMT_QCOW2 || !cur->hdr.backing_file)
            break;
        const char *name = cur->hdr.backing_file;
        if (es_backing_has_protocol(name)) {
            qcow2_doctor_finding *f =
                add_finding(r, QCOW2_DOCTOR_WARNING, QCOW2_DOCTOR_PROTOCOL_BACKING, cur);
            f->message = es_xasprintf("backing file %s uses a protocol: not followed, not "
                                      "checked",
                                      name);
            break;
        }
        if (nchain > ES_CHAIN_MAX_DEPTH) {
            qcow2_doctor_finding *f =
                add_finding(r, QCOW2_DOCTOR_ERROR, QCOW2_DOCTOR_CHAIN_TOO_DEEP, cur);
            r->unrepaired_errors++;
            f->message = es_xasprintf("backing chain is deeper than %d images",
                                      ES_CHAIN_MAX_DEPTH);
            break;
        }
        char *display = NULL, *open_path = NULL;
        es_err be;
        es_err_clear(&be);
        if (es_backing_resolve(cur->filename, name, o->root, &display, &open_path, &be) < 0) {
            qcow2_doctor_finding *f =
                add_finding(r, QCOW2_DOCTOR_ERROR, QCOW2_DOCTOR_UNREADABLE_BACKING, cur);
            r->unrepaired_errors++;
            f->message = es_xstrdup(be.msg);
            break;
        }
        if (name[0] != '/') {
            qcow2_doctor_finding *f =
                add_finding(r, QCOW2_DOCTOR_WARNING, QCOW2_DOCTOR_RELATIVE_BACKING, cur);
            f->message = es_xasprintf("relative backing name %s: it is taken from the directory "
                                      "of %s, so moving either file alone breaks the chain",
                                      name, cur->filename);
            char *abs = absolute(o->root, display);
            f->repair = es_xasprintf("if the files may move apart: rebase -u -b %s to name it "
                                     "absolutely",
                                     abs);
            free(abs);
        }
        es_image *next = NULL;
        bool stop = false;
        struct stat st;
        bool missing = es_fs_stat(open_path, &st) < 0 && errno == ENOENT;
        const char *host = missing && o->root ? es_root_strip_prefix(o->root, name) : NULL;
        if (host && exists_under(o->root, host) &&
            es_image_open(&next, host, &oo, &be) == 0) {
            for (size_t i = 0; i < nchain && !stop; i++)
                stop = chain[i].dev == next->st_dev && chain[i].ino == next->st_ino;
            if (stop) { /* not planned: the name would make a loop */
                qcow2_doctor_finding *f =
                    add_finding(r, QCOW2_DOCTOR_ERROR, QCOW2_DOCTOR_BACKING_LOOP, cur);
                r->unrepaired_errors++;
                f->message = es_xasprintf("backing name %s without the --root directory is "
                                          "%s, already in the chain: a loop",
                                          name, host);
            } else {
                root_prefixed(r, o->root, cur, host, next);
                if (cur->hdr.backing_format)
                    check_format(r, cur, next, &stop);
            }
        } else if (missing) {
            rc = missing_backing(r, o, cur, display, chain, nchain, &next, e);
        } else if (es_image_open(&next, display, &oo, &be) < 0) {
            qcow2_doctor_finding *f =
                add_finding(r, QCOW2_DOCTOR_ERROR, QCOW2_DOCTOR_UNREADABLE_BACKING, cur);
            r->unrepaired_errors++;
            f->message = es_xasprintf("backing file %s: %s", display, be.msg);
            next = NULL;
        } else {
            for (size_t i = 0; i < nchain && !stop; i++) {
                if (chain[i].dev == next->st_dev && chain[i].ino == next->st_ino) {
                    qcow2_doctor_finding *f =
                        add_finding(r, QCOW2_DOCTOR_ERROR, QCOW2_DOCTOR_BACKING_LOOP, cur);
                    r->unrepaired_errors++;
                    f->message = es_xasprintf("backing file %s is already in the chain: a loop",
                                              display);
                    stop = true;
                }
            }
            if (!stop)
                check_format(r, cur, next, &stop);
        }
        free(display);
        free(open_path);
        es_image_close(cur);
        cur = next;
        if (rc < 0 || stop || !cur)
            break;
        chain = es_xreallocarray(chain, nchain + 1, sizeof *chain);
        chain[nchain++] = qcow2_doctor_id_of(cur);
        r->chain_length++;
    }
    es_image_close(cur);
    free(chain);
    if (rc < 0)
        qcow2_doctor_report_free(r);
    return rc;
}

void qcow2_doctor_drop_step(qcow2_doctor_report *r, size_t step, const char *repair)
{
    if (step >= r->nsteps)
        return;
    qcow2_doctor_step *s = &r->steps[step];
    free(s->image);
    free(s->old_backing);
    free(s->old_format);
    free(s->backing);
    free(s->format);
    memmove(s, s + 1, (r->nsteps - step - 1) * sizeof *s);
    r->nsteps--;
    for (size_t i = 0; i < r->nfindings; i++) {
        qcow2_doctor_finding *f = &r->findings[i];
        if (f->plan_step == (long)step) {
            f->plan_step = -1;
            free(f->repair);
            f->repair = es_xstrdup(repair);
            r->unrepaired_errors++;
        } else if (f->plan_step > (long)step) {
            f->plan_step--;
        }
    }
}

void qcow2_doctor_report_free(qcow2_doctor_report *r)
{
    for (size_t i = 0; i < r->nfindings; i++) {
        qcow2_doctor_finding *f = &r->findings[i];
        free(f->image);
        free(f->backing);
        free(f->backing_format);
        free(f->message);
        free(f->repair);
        qcow2_doctor_candidates_free(f->candidates, f->ncandidates);
    }
    free(r->findings);
    for (size_t i = 0; i < r->nsteps; i++) {
        qcow2_doctor_step *s = &r->steps[i];
        free(s->image);
        free(s->old_backing);
        free(s->old_format);
        free(s->backing);
        free(s->format);
    }
    free(r->steps);
    memset(r, 0, sizeof *r);
}
