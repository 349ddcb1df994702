#include "util/progress_meter.h"

#include <json-c/json.h>
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
static uint64_t rate_of(const es_progress_meter *m, int64_t t)
{
    int64_t ms = t - m->first_ms;
    if (ms < 200 || m->done <= m->first_done)
        return 0;
    return (m->done - m->first_done) * 1000 / (uint64_t)ms;
}

/* Seconds left, or -1 when not known. */
static int64_t eta_of(const es_progress_meter *m, uint64_t rate)
{
    if (!rate || !m->total || m->done > m->total)
        return -1;
    return (int64_t)((m->total - m->done + rate - 1) / rate);
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

static void show_bar(es_progress_meter *m, uint64_t rate, int64_t eta)
{
    char line[512], done[32], total[32], speed[48] = "", left[32] = "";
    human_size(done, sizeof done, m->done);
    human_size(total, sizeof total, m->total);
    if (rate) {
        char r[32];
        human_size(r, sizeof r, rate);
        snprintf(speed, sizeof speed, "  %s/s", r);
    }
    if (eta >= 0)
        snprintf(left, sizeof left, "  ETA %lld:%02lld", (long long)(eta / 60),
                 (long long)(eta % 60));
    int n;
    if (m->total) {
        uint64_t d = m->done < m->total ? m->done : m->total;
        int fill = (int)(d * BAR_WIDTH / m->total);
        char bar[BAR_WIDTH + 1];
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
        bar[BAR_WIDTH] = '\0';
        n = snprintf(line, sizeof line, "%s %s [%s] %5.1f%% %s / %s%s%s", m->disk, m->phase,
                     bar, 100.0 * (double)d / (double)m->total, done, total, speed, left);
    } else {
        n = snprintf(line, sizeof line, "%s %s %s%s", m->disk, m->phase, done, speed);
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

static void show_json(es_progress_meter *m, uint64_t rate, int64_t eta)
{
    json_object *o = json_object_new_object();
    if (!o)
        return;
    json_object_object_add(o, "type", json_object_new_string("progress"));
    json_object_object_add(o, "phase", json_object_new_string(m->phase));
    json_object_object_add(o, "disk", json_object_new_string(m->disk));
    json_object_object_add(o, "image", m->has_image ? json_object_new_string(m->image) : NULL);
    json_object_object_add(o, "bytes_done", json_object_new_uint64(m->done));
    json_object_object_add(o, "bytes_total", json_object_new_uint64(m->total));
    json_object_object_add(o, "rate", json_object_new_uint64(rate));
    json_object_object_add(o, "eta", eta >= 0 ? json_object_new_int64(eta) : NULL);
    fprintf(m->out, "%s\n", json_object_to_json_string_ext(o, JSON_LINE));
    fflush(m->out);
    json_object_put(o);
}

static void show(es_progress_meter *m, int64_t t)
{
    uint64_t rate = rate_of(m, t);
    int64_t eta = eta_of(m, rate);
    if (m->mode == ES_PROGRESS_BAR)
        show_bar(m, rate, eta);
    else if (m->mode == ES_PROGRESS_JSON)
        show_json(m, rate, eta);
    m->shown_ms = t;
    m->pending = false;
}

void es_progress_meter_break(es_progress_meter *m)
{
    if (m->active && m->pending)
        show(m, now_ms());
    if (m->line_open) {
        fputc('\n', m->out);
        fflush(m->out);
        m->line_open = false;
        m->line_len = 0;
    }
}

void es_progress_meter_notice(es_progress_meter *m, const char *prefix, const char *msg)
{
    es_progress_meter_break(m);
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
    es_progress_meter_break(m);
    m->active = false;
}

static void copy_name(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

void es_progress_meter_update(void *opaque, const es_progress *p)
{
    es_progress_meter *m = opaque;
    if (m->mode == ES_PROGRESS_NONE)
        return;
    int64_t t = now_ms();
    bool same = m->active && strncmp(m->phase, p->phase ? p->phase : "", sizeof m->phase - 1) == 0 &&
                strncmp(m->disk, p->disk ? p->disk : "", sizeof m->disk - 1) == 0 &&
                m->has_image == !!p->image &&
                (!p->image || strncmp(m->image, p->image, sizeof m->image - 1) == 0);
    if (!same) {
        es_progress_meter_end(m); /* the previous stream's last sample, its line ended */
        copy_name(m->phase, sizeof m->phase, p->phase);
        copy_name(m->disk, sizeof m->disk, p->disk);
        copy_name(m->image, sizeof m->image, p->image);
        m->has_image = p->image != NULL;
        m->active = true;
        m->first_done = p->done;
        m->first_ms = t;
    } else if (p->done == m->done && p->total == m->total) {
        return; /* nothing new */
    }
    bool reached = p->total && p->done >= p->total;
    m->done = p->done;
    m->total = p->total;
    m->pending = true;
    if (!same || reached || t - m->shown_ms >= ES_PROGRESS_INTERVAL_MS)
        show(m, t);
}
