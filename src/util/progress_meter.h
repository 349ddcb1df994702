/* Showing progress (util/progress.h) to the user, for the commands:
 *  - BAR: one line on a terminal, redrawn: disk, phase, a bar, bytes done of
 *    total, rate and ETA; a stream that reaches its total leaves its line;
 *  - JSON: one JSON object per line (schema in README, "Progress"):
 *    {"type": "progress", "phase", "disk", "image", "bytes_done",
 *     "bytes_total", "rate", "eta"};
 *  - NONE: nothing.
 * Streams (util/progress.h) may interleave (QEMU's jobs run side by side);
 * each keeps its own rate. Updates are rate-limited (a stream's JSON lines,
 * and the bar, at most once per ES_PROGRESS_INTERVAL_MS), so a caller may
 * report as often as it likes; a stream's first sample and a sample that
 * reaches the total are always shown, and the last sample of every stream
 * is shown when the meter breaks or ends. */
#ifndef ES_UTIL_PROGRESS_METER_H
#define ES_UTIL_PROGRESS_METER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/progress.h"

#define ES_PROGRESS_INTERVAL_MS 100
#define ES_PROGRESS_STREAMS 16 /* remembered at once (more: the oldest is forgotten) */

typedef enum {
    ES_PROGRESS_NONE,
    ES_PROGRESS_BAR,
    ES_PROGRESS_JSON,
} es_progress_mode;

typedef struct es_progress_stream {
    bool used;
    char *phase, *disk, *image; /* copies of the sample's (image may be NULL) */
    bool pending;          /* its last sample is not shown yet */
    uint64_t done, total;  /* its last sample */
    uint64_t first_done;   /* done at its first sample (the rate counts from there) */
    int64_t first_ms, shown_ms, seen_ms;
} es_progress_stream;

typedef struct es_progress_meter {
    es_progress_mode mode;
    FILE *out;
    es_progress_stream streams[ES_PROGRESS_STREAMS];
    bool line_open;   /* BAR: a bar line is on screen without its newline */
    int line_len;     /* BAR: its length (to blank what a longer one left) */
    int64_t bar_ms;   /* BAR: when it was last drawn */
} es_progress_meter;

void es_progress_meter_init(es_progress_meter *m, es_progress_mode mode, FILE *out);
/* An es_progress_fn: opaque is the meter. */
void es_progress_meter_update(void *opaque, const es_progress *p);
/* The sink that feeds m (fn NULL when m shows nothing). */
es_progress_sink es_progress_meter_sink(es_progress_meter *m);
/* A message between samples: on its own line after the bar (prefix, then
 * msg), or in JSON mode {"type": "notice", "message": msg}. */
void es_progress_meter_notice(es_progress_meter *m, const char *prefix, const char *msg);
/* The work is over: the same, and forget the streams. */
void es_progress_meter_end(es_progress_meter *m);

/* "auto", "bar", "json" or "none" into *mode (auto: BAR when tty, else
 * NONE). Returns -1 for anything else. */
int es_progress_mode_parse(const char *s, bool tty, es_progress_mode *mode);

#endif
