/* Showing progress (util/progress.h) to the user, for the commands:
 *  - BAR: one line on a terminal, redrawn: disk, phase, a bar, bytes done of
 *    total, rate and ETA;
 *  - JSON: one JSON object per line (schema in README, "Progress"):
 *    {"type": "progress", "phase", "disk", "image", "bytes_done",
 *     "bytes_total", "rate", "eta"};
 *  - NONE: nothing.
 * Updates are rate-limited (at most one per ES_PROGRESS_INTERVAL_MS per
 * stream), so a caller may report as often as it likes; the first sample of
 * a stream, a sample that reaches the total, and the last sample of a stream
 * (when the next stream starts or the meter ends) are always shown. */
#ifndef ES_UTIL_PROGRESS_METER_H
#define ES_UTIL_PROGRESS_METER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/progress.h"

#define ES_PROGRESS_INTERVAL_MS 100

typedef enum {
    ES_PROGRESS_NONE,
    ES_PROGRESS_BAR,
    ES_PROGRESS_JSON,
} es_progress_mode;

typedef struct es_progress_meter {
    es_progress_mode mode;
    FILE *out;
    /* the current stream */
    char phase[32];
    char disk[256];
    char image[4096];
    bool has_image;
    bool active;         /* a stream has started */
    bool pending;        /* its last sample is not shown yet */
    bool line_open;      /* BAR: a bar line is on screen without its newline */
    int line_len;        /* BAR: length of that line (to blank what is left) */
    uint64_t done, total;  /* its last sample */
    uint64_t first_done;   /* done at its first sample (the rate counts from there) */
    int64_t first_ms, shown_ms;
} es_progress_meter;

void es_progress_meter_init(es_progress_meter *m, es_progress_mode mode, FILE *out);
/* An es_progress_fn: opaque is the meter. */
void es_progress_meter_update(void *opaque, const es_progress *p);
/* The sink that feeds m (fn NULL when m shows nothing). */
es_progress_sink es_progress_meter_sink(es_progress_meter *m);
/* Before printing something else on m's stream: show the pending sample
 * and end a bar line. */
void es_progress_meter_break(es_progress_meter *m);
/* A message between samples: on its own line after the bar (prefix, then
 * msg), or in JSON mode {"type": "notice", "message": msg}. */
void es_progress_meter_notice(es_progress_meter *m, const char *prefix, const char *msg);
/* The work is over: the same, and forget the stream. */
void es_progress_meter_end(es_progress_meter *m);

/* "auto", "bar", "json" or "none" into *mode (auto: BAR when tty, else
 * NONE). Returns -1 for anything else. */
int es_progress_mode_parse(const char *s, bool tty, es_progress_mode *mode);

#endif
