#include "util/progress_meter.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BAR_WIDTH 20
#define JSON_LINE (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void es_progress_meter_init(es_progress_meter *m, es_progress_mode mode, FILE *out)
{
    memset(m, 0, sizeof *m);
    m->mode = mode;
    m->out = out;
}

es_progress_sink es_progress_meter_sink(es_progress_meter *m)
{
    es_progress_sink s = {NULL, NULL};
    if (m && m->mode != ES_PROGRESS_NONE) {
        s.fn = es_progress_meter_update;
        s.opaque = m;
    }
    return s;
}

int es_progress_mode_parse(const char *s, bool tty, es_progress_mode *mode)
{
    if (strcmp(s, "auto") == 0)
        *mode = tty ? ES_PROGRESS_BAR : ES_PROGRESS_NONE;
    else if (strcmp(s, "bar") == 0)
        *mode = ES_PROGRESS_BAR;
    else if (strcmp(s, "json") == 0)
        *mode = ES_PROGRESS_JSON;
    else if (strcmp(s, "none") == 0)
        *mode = ES_PROGRESS_NONE;
    else
        return -1;
    return 0;
}

/* Bytes per second since the stream's first sample; 0 while too early to say. */
static uint64_t rate_of(const es_progress_stream *s, int64_t t)
{
    int64_t ms = t - s->first_ms;
    if (ms < 200 || s->done <= s->first_done)
        return 0;
    return (s->done - s->first_done) * 1000 / (uint64_t)ms;
}

/* Seconds left, or -1 when not known. */
static int64_t eta_of(const es_progress_stream *s, uint64_t rate)
{
    if (!rate || !s->total || s->done > s->total)
        return -1;
    return (int64_t)((s->total - s->done + rate - 1) / rate);
}

static void human_size(char *buf, size_t len, uint64_t v)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double d = (double)v;
    size_t u = 0;
    while (d >= 1024.0 && u + 1 < sizeof units / sizeof *units) {
        d /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)v);
    else
        snprintf(buf, len, "%.1f %s", d, units[u]);
}

static void end_line(es_progress_meter *m)
{
    if (m->line_open) {
        fputc('\n', m->out);
        fflush(m->out);
        m->line_open = false;
        m->line_len = 0;
    }
}

static void show_bar(es_progress_meter *m, const es_progress_stream *s, uint64_t rate, int64_t eta)
{
    char line[512], done[32], total[32], speed[48] = "", left[32] = "";
    human_size(done, sizeof done, s->done);
    human_size(total, sizeof total, s->total);
    if (rate) {
        char r[32];
        human_size(r, sizeof r, rate);
        snprintf(speed, sizeof speed, "  %s/s", r);
    }
    if (eta >= 0)
        snprintf(left, sizeof left, "  ETA %lld:%02lld", (long long)(eta / 60),
                 (long long)(eta % 60));
    int n;
    if (s->total) {
        uint64_t d = s->done < s->total ? s->done : s->total;
        int fill = (int)(d * BAR_WIDTH / s->total);
        char bar[BAR_WIDTH + 1];
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
        bar[BAR_WIDTH] = '\0';
        n = snprintf(line, sizeof line, "%s %s [%s] %5.1f%% %s / %s%s%s", s->disk, s->phase, bar,
                     100.0 * (double)d / (double)s->total, done, total, speed, left);
    } else {
        n = snprintf(line, sizeof line, "%s %s %s%s", s->disk, s->phase, done, speed);
    }
    if (n < 0)
        return;
    if (n >= (int)sizeof line)
        n = (int)sizeof line - 1;
    /* Blank what a longer previous line left behind. */
    int pad = m->line_open && m->line_len > n ? m->line_len - n : 0;
    fprintf(m->out, "\r%s%*s", line, pad, "");
    fflush(m->out);
    m->line_open = true;
    m->line_len = n;
}

static void show_json(es_progress_meter *m, const es_progress_stream *s, uint64_t rate,
                      int64_t eta)
{
    json_object *o = json_object_new_object();
    if (!o)
        return;
    json_object_object_add(o, "type", json_object_new_string("progress"));
    json_object_object_add(o, "phase", json_object_new_string(s->phase));
    json_object_object_add(o, "disk", json_object_new_string(s->disk));
    json_object_object_add(o, "image", s->image ? json_object_new_string(s->image) : NULL);
    json_object_object_add(o, "bytes_done", json_object_new_uint64(s->done));
    json_object_object_add(o, "bytes_total", json_object_new_uint64(s->total));
    json_object_object_add(o, "rate", json_object_new_uint64(rate));
    json_object_object_add(o, "eta", eta >= 0 ? json_object_new_int64(eta) : NULL);
    fprintf(m->out, "%s\n", json_object_to_json_string_ext(o, JSON_LINE));
    fflush(m->out);
    json_object_put(o);
}

/* Show s's last sample; a bar that reached the total keeps its line. */
static void show(es_progress_meter *m, es_progress_stream *s, int64_t t)
{
    uint64_t rate = rate_of(s, t);
    int64_t eta = eta_of(s, rate);
    if (m->mode == ES_PROGRESS_BAR) {
        show_bar(m, s, rate, eta);
        m->bar_ms = t;
        if (s->total && s->done >= s->total)
            end_line(m);
    } else if (m->mode == ES_PROGRESS_JSON) {
        show_json(m, s, rate, eta);
    }
    s->shown_ms = t;
    s->pending = false;
}

static void stream_free(es_progress_stream *s)
{
    free(s->phase);
    free(s->disk);
    free(s->image);
    memset(s, 0, sizeof *s);
}

/* Before printing something else on m's stream: show every stream's
 * pending sample and end a bar line. */
static void meter_break(es_progress_meter *m)
{
    int64_t t = now_ms();
    for (size_t i = 0; i < ES_PROGRESS_STREAMS; i++) {
        es_progress_stream *s = &m->streams[i];
        if (s->used && s->pending) {
            show(m, s, t);
            end_line(m);
        }
    }
    end_line(m);
}

void es_progress_meter_notice(es_progress_meter *m, const char *prefix, const char *msg)
{
    meter_break(m);
    if (m->mode == ES_PROGRESS_JSON) {
        json_object *o = json_object_new_object();
        if (!o)
            return;
        json_object_object_add(o, "type", json_object_new_string("notice"));
        json_object_object_add(o, "message", json_object_new_string(msg));
        fprintf(m->out, "%s\n", json_object_to_json_string_ext(o, JSON_LINE));
        json_object_put(o);
    } else {
        fprintf(m->out, "%s%s\n", prefix, msg);
    }
    fflush(m->out);
}

void es_progress_meter_end(es_progress_meter *m)
{
    meter_break(m);
    for (size_t i = 0; i < ES_PROGRESS_STREAMS; i++)
        stream_free(&m->streams[i]);
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* p's stream, or a new one (*is_new); NULL when out of memory. */
static es_progress_stream *stream_of(es_progress_meter *m, const es_progress *p, int64_t t,
                                     bool *is_new)
{
    es_progress_stream *slot = NULL;
    for (size_t i = 0; i < ES_PROGRESS_STREAMS; i++) {
        es_progress_stream *s = &m->streams[i];
        if (s->used && same_str(s->phase, p->phase ? p->phase : "") &&
            same_str(s->disk, p->disk ? p->disk : "") && same_str(s->image, p->image)) {
            *is_new = false;
            return s;
        }
        if (!slot || (slot->used && (!s->used || s->seen_ms < slot->seen_ms)))
            slot = s;
    }
    if (slot->used) { /* the stream heard from longest ago makes room */
        if (slot->pending)
            show(m, slot, t);
        end_line(m);
        stream_free(slot);
    }
    slot->phase = dup_or_empty(p->phase);
    slot->disk = dup_or_empty(p->disk);
    slot->image = p->image ? strdup(p->image) : NULL;
    if (!slot->phase || !slot->disk || (p->image && !slot->image)) {
        stream_free(slot);
        return NULL;
    }
    slot->used = true;
    slot->first_done = p->done;
    slot->first_ms = t;
    *is_new = true;
    return slot;
}

void es_progress_meter_update(void *opaque, const es_progress *p)
{
    es_progress_meter *m = opaque;
    if (m->mode == ES_PROGRESS_NONE)
        return;
    int64_t t = now_ms();
    bool is_new = false;
    es_progress_stream *s = stream_of(m, p, t, &is_new);
    if (!s)
        return; /* out of memory: this sample goes unseen */
    if (!is_new && p->done == s->done && p->total == s->total)
        return; /* nothing new */
    s->done = p->done;
    s->total = p->total;
    s->seen_ms = t;
    s->pending = true;
    bool reached = p->total && p->done >= p->total;
    int64_t last = m->mode == ES_PROGRESS_BAR ? m->bar_ms : s->shown_ms;
    if (is_new || reached || t - last >= ES_PROGRESS_INTERVAL_MS)
        show(m, s, t);
}
