/* How long work reports how far it got: the library calls a callback from
 * its options (never prints); the command decides what the user sees
 * (util/progress_meter.h draws a bar or writes JSON lines). */
#ifndef ES_UTIL_PROGRESS_H
#define ES_UTIL_PROGRESS_H

#include <stdint.h>

/* One sample of one stream of work. A stream is a (phase, disk, image)
 * triple: "commit" of an image into its backing file, or of a domain's
 * disk; "copy" of a disk by setup, ... Within a stream done never
 * decreases and never exceeds total; total may grow (a running guest
 * writes while QEMU copies). */
typedef struct es_progress {
    const char *phase; /* what is being done */
    const char *disk;  /* which disk (a target name, or the image named on the
                          command line) */
    const char *image; /* the file whose data is read (a merge's TOP, a copy's
                          source); NULL: none beyond disk */
    uint64_t done;     /* bytes done */
    uint64_t total;    /* bytes in all (0: not known yet) */
} es_progress;

typedef void (*es_progress_fn)(void *opaque, const es_progress *p);

/* Where an operation reports; fn NULL: nobody listens. */
typedef struct es_progress_sink {
    es_progress_fn fn;
    void *opaque;
} es_progress_sink;

/* Report one sample to s (s or s->fn may be NULL). */
static inline void es_progress_report(const es_progress_sink *s, const char *phase,
                                      const char *disk, const char *image, uint64_t done,
                                      uint64_t total)
{
    if (s && s->fn) {
        es_progress p = {phase, disk, image, done, total};
        s->fn(s->opaque, &p);
    }
}

#endif
