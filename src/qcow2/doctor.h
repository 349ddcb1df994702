/* The chain doctor for one image (extsnap img doctor): what is broken or
 * risky in an image's backing chain, and the header rewrites (rebase -u)
 * that repair what can be repaired without guessing.
 *
 * Headers are read; guest data only to tell apart candidates for a missing
 * backing file that tie on everything else (doctor_content.h, a bounded
 * sample). Nothing is written until qcow2_doctor_apply. Names are host names (under --root when one is
 * given), as the other image commands show them. */
#ifndef ES_QCOW2_DOCTOR_H
#define ES_QCOW2_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcow2/image.h"
#include "util/err.h"

typedef enum {
    QCOW2_DOCTOR_WARNING, /* a risk: the chain opens today */
    QCOW2_DOCTOR_ERROR,   /* a break: QEMU cannot open the chain as it is meant */
} qcow2_doctor_severity;

typedef enum {
    QCOW2_DOCTOR_MISSING_BACKING,        /* the backing file named is not there */
    QCOW2_DOCTOR_MISSING_BACKING_FORMAT, /* no backing format (newer QEMU refuses) */
    QCOW2_DOCTOR_WRONG_BACKING_FORMAT,   /* the format named is not the file's */
    QCOW2_DOCTOR_UNREADABLE_BACKING,     /* there, but does not open as an image */
    QCOW2_DOCTOR_BACKING_LOOP,           /* the backing file is already in the chain */
    QCOW2_DOCTOR_CHAIN_TOO_DEEP,
    QCOW2_DOCTOR_RELATIVE_BACKING,       /* a relative name: breaks if the overlay moves alone */
    QCOW2_DOCTOR_PROTOCOL_BACKING,       /* nbd:, json: ...: not followed, not checked */
    QCOW2_DOCTOR_ROOT_PREFIXED_BACKING,  /* names --root's DIR itself: breaks on the host */
} qcow2_doctor_kind;

/* What a candidate's guest content says (doctor_content.h): measured only
 * when candidates tie on every other piece of evidence. */
typedef struct qcow2_doctor_content {
    bool measured;
    uint64_t allocated_clusters; /* the child's clusters holding data */
    uint64_t sampled_clusters;   /* of those, compared (at most max_clusters) */
    uint64_t max_clusters;       /* the sample's bound */
    uint64_t compared_sectors;   /* 512-byte sectors not zero on both sides */
    uint64_t matching_sectors;   /* of those, equal */
    uint64_t matching_clusters;  /* sampled clusters with at least one equal sector */
    char *unreadable;            /* why it could not be measured; NULL: fine */
} qcow2_doctor_content;

/* A file considered for a missing backing file. */
typedef struct qcow2_doctor_candidate {
    char *filename;        /* host name */
    es_img_format format;
    uint64_t virtual_size;
    uint64_t cluster_size; /* 0 for raw */
    int score;             /* evidence points (eligible ones only) */
    char *evidence;        /* what speaks for it, in words */
    char *rejected;        /* why it is never proposed; NULL: eligible */
    qcow2_doctor_content content;
    bool chosen;
} qcow2_doctor_candidate;

typedef struct qcow2_doctor_finding {
    qcow2_doctor_severity severity;
    qcow2_doctor_kind kind;
    char *image;            /* the image whose header is at fault (host name) */
    char *backing;          /* its backing name as written, NULL: none */
    char *backing_format;   /* its backing format as written, NULL: none */
    char *message;          /* what is wrong */
    char *repair;           /* the repair in words (planned, or to do by hand); NULL: none */
    long plan_step;         /* index in the plan, -1: nothing planned */
    qcow2_doctor_candidate *candidates; /* MISSING_BACKING: every file considered */
    size_t ncandidates;
} qcow2_doctor_finding;

/* One header rewrite: rebase -u of image to backing/format. */
typedef struct qcow2_doctor_step {
    char *image;          /* host name */
    char *old_backing, *old_format; /* as found (format NULL: none) */
    char *backing, *format;         /* as it will be */
} qcow2_doctor_step;

typedef struct qcow2_doctor_report {
    qcow2_doctor_finding *findings;
    size_t nfindings;
    qcow2_doctor_step *steps;
    size_t nsteps;
    size_t errors, warnings;
    size_t unrepaired_errors; /* errors with no planned step */
    size_t chain_length;      /* images walked (after the planned repairs) */
} qcow2_doctor_report;

/* What a domain's snapshot metadata recorded: the file `backing` was the
 * disk's image, and `child` the overlay the snapshot put over it. Evidence
 * for backing as child's missing backing file. */
typedef struct qcow2_doctor_record {
    uint64_t child_dev, child_ino;
    uint64_t backing_dev, backing_ino;
    const char *why; /* in words: "snapshot s1 recorded ..." */
} qcow2_doctor_record;

typedef struct qcow2_doctor_opts {
    const char *root;          /* --root DIR, or NULL */
    const char *const *search; /* host directories to look for candidates in */
    size_t nsearch;            /* 0: the broken image's directory and the missing name's */
    /* Files never proposed (dev, ino pairs: 2 * nexclude numbers), and why:
     * e.g. the disks' current images, which change (a backing file must not). */
    const uint64_t *exclude;
    size_t nexclude;
    const char *exclude_why;
    const qcow2_doctor_record *records;
    size_t nrecords;
} qcow2_doctor_opts;

/* Walk image's chain (image: a host name) and fill *r. Fails (-1) only
 * when image itself cannot be opened or memory/IO fails; every problem
 * below it is a finding. */
int qcow2_doctor_diagnose(const char *image, const qcow2_doctor_opts *o, qcow2_doctor_report *r,
                          es_err *e);

/* Apply r's plan, step by step (each one atomic: qcow2_rebase_unsafe, with
 * the image locks). *applied counts the steps done; stops at the first
 * failure. */
int qcow2_doctor_apply(const qcow2_doctor_report *r, const char *root, size_t *applied,
                       es_err *e);

/* Take step out of r's plan: its finding becomes an error without a
 * planned repair, `repair` (copied) saying what to do by hand. */
void qcow2_doctor_drop_step(qcow2_doctor_report *r, size_t step, const char *repair);

void qcow2_doctor_report_free(qcow2_doctor_report *r);

const char *qcow2_doctor_kind_name(qcow2_doctor_kind k);
const char *qcow2_doctor_severity_name(qcow2_doctor_severity s);
const char *qcow2_doctor_format_name(es_img_format f);

#endif
