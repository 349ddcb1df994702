/* The chain doctor's content evidence (doctor_candidates.c's helper): when
 * candidates for a missing backing file tie on everything the headers say,
 * compare a bounded sample of the child's data with each one's guest view.
 * The rule and its score are explained in doctor_content.c. */
#ifndef ES_QCOW2_DOCTOR_CONTENT_H
#define ES_QCOW2_DOCTOR_CONTENT_H

#include <stddef.h>

#include "qcow2/doctor.h"
#include "qcow2/image.h"

/* The sample's bounds: at most this many of the child's data clusters, and
 * at most this many bytes of them, spread evenly over the image. */
#define QCOW2_DOCTOR_SAMPLE_CLUSTERS 64
#define QCOW2_DOCTOR_SAMPLE_BYTES (16u << 20)
/* More tied candidates than this are not read (the tie stays). */
#define QCOW2_DOCTOR_CONTENT_MAX_CANDIDATES 8
/* A clear winner: at least this many equal sectors, and at least
 * QCOW2_DOCTOR_CONTENT_MARGIN times the runner-up's. */
#define QCOW2_DOCTOR_CONTENT_MIN_MATCH 8
#define QCOW2_DOCTOR_CONTENT_MARGIN 2

/* Measure the content evidence of the eligible candidates whose score is
 * `score` (the tie at the top), filling their `content`, and return the
 * index of the one the content clearly points to, or -1 (a tie stays a
 * tie). child is the image whose backing file is missing; it and the
 * candidates are opened again, read-only, without locks. Reading problems
 * are recorded in the candidates, never fatal. */
long qcow2_doctor_content_rank(const es_image *child, const char *root,
                               qcow2_doctor_candidate *c, size_t n, int score);

#endif
