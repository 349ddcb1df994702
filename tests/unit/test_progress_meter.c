/* util/progress_meter: rate limiting, the last sample of every stream,
 * interleaved streams, JSON lines and the bar. */
#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/progress_meter.h"

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What was written to f, as one string (caller frees). */
static char *slurp(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    char *buf = calloc(1, (size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    rewind(f);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    return buf;
}

typedef struct line {
    char disk[16];
    uint64_t done, total;
} line;

/* Parse the JSON lines of text into v (at most max); returns the count. */
static size_t parse_lines(char *text, line *v, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_object *o = json_tokener_parse(l);
        ck_assert_msg(o != NULL, "not JSON: %s", l);
        json_object *d, *t, *k;
        ck_assert(json_object_object_get_ex(o, "bytes_done", &d));
        ck_assert(json_object_object_get_ex(o, "bytes_total", &t));
        ck_assert(json_object_object_get_ex(o, "disk", &k));
        ck_assert(json_object_object_get_ex(o, "eta", NULL));
        ck_assert(json_object_object_get_ex(o, "rate", NULL));
        ck_assert(json_object_object_get_ex(o, "image", NULL));
        if (n < max) {
            snprintf(v[n].disk, sizeof v[n].disk, "%s", json_object_get_string(k));
            v[n].done = json_object_get_uint64(d);
            v[n].total = json_object_get_uint64(t);
        }
        n++;
        json_object_put(o);
    }
    return n;
}

static void feed(es_progress_meter *m, const char *disk, uint64_t done, uint64_t total)
{
    es_progress p = {"commit", disk, NULL, done, total};
    es_progress_meter_update(m, &p);
}

START_TEST(rate_limited_first_and_last_shown)
{
    FILE *f = tmpfile();
    es_progress_meter m;
    es_progress_meter_init(&m, ES_PROGRESS_JSON, f);
    const uint64_t total = 1000000;
    int64_t t0 = ms_now();
    for (uint64_t d = 0; d <= total; d++)
        feed(&m, "vda", d, total);
    int64_t took = ms_now() - t0;
    es_progress_meter_end(&m);
    char *text = slurp(f);
    line v[4096];
    size_t n = parse_lines(text, v, 4096);
    /* One line per interval at most, plus the first and the last. */
    ck_assert_int_le((int64_t)n, took / ES_PROGRESS_INTERVAL_MS + 3);
    ck_assert_uint_ge(n, 2);
    ck_assert_uint_eq(v[0].done, 0);
    ck_assert_uint_eq(v[n - 1].done, total);
    for (size_t i = 1; i < n && i < 4096; i++)
        ck_assert_uint_ge(v[i].done, v[i - 1].done);
    free(text);
    fclose(f);
}
END_TEST

START_TEST(interleaved_streams_keep_their_last_sample)
{
    FILE *f = tmpfile();
    es_progress_meter m;
    es_progress_meter_init(&m, ES_PROGRESS_JSON, f);
    feed(&m, "vda", 0, 100);
    feed(&m, "vdb", 0, 200);
    feed(&m, "vda", 40, 100); /* within the interval: held back */
    feed(&m, "vdb", 90, 200);
    es_progress_meter_end(&m); /* shows both held-back samples */
    char *text = slurp(f);
    line v[8];
    size_t n = parse_lines(text, v, 8);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(v[0].disk, "vda");
    ck_assert_uint_eq(v[0].done, 0);
    ck_assert_str_eq(v[1].disk, "vdb");
    ck_assert_uint_eq(v[1].done, 0);
    int a = strcmp(v[2].disk, "vda") == 0 ? 2 : 3, b = 5 - a;
    ck_assert_str_eq(v[a].disk, "vda");
    ck_assert_uint_eq(v[a].done, 40);
    ck_assert_str_eq(v[b].disk, "vdb");
    ck_assert_uint_eq(v[b].done, 90);
    free(text);
    fclose(f);
}
END_TEST

START_TEST(reaching_the_total_is_always_shown)
{
    FILE *f = tmpfile();
    es_progress_meter m;
    es_progress_meter_init(&m, ES_PROGRESS_JSON, f);
    feed(&m, "vda", 0, 100);
    feed(&m, "vda", 100, 100); /* within the interval, but the end */
    char *text = slurp(f); /* before es_progress_meter_end */
    line v[4];
    ck_assert_uint_eq(parse_lines(text, v, 4), 2);
    ck_assert_uint_eq(v[1].done, 100);
    es_progress_meter_end(&m);
    free(text);
    fclose(f);
}
END_TEST

START_TEST(bar_line_and_none)
{
    FILE *f = tmpfile();
    es_progress_meter m;
    es_progress_meter_init(&m, ES_PROGRESS_BAR, f);
    feed(&m, "vda", 0, 2 << 20);
    feed(&m, "vda", 2 << 20, 2 << 20);
    es_progress_meter_end(&m);
    char *text = slurp(f);
    ck_assert_msg(strstr(text, "\rvda commit [....................]   0.0% 0 B / 2.0 MiB") != NULL,
                  "%s", text);
    ck_assert_msg(strstr(text, "\rvda commit [####################] 100.0% 2.0 MiB / 2.0 MiB\n") !=
                      NULL,
                  "%s", text);
    free(text);
    fclose(f);

    f = tmpfile();
    es_progress_meter_init(&m, ES_PROGRESS_NONE, f);
    ck_assert_ptr_null(es_progress_meter_sink(&m).fn);
    feed(&m, "vda", 0, 10);
    es_progress_meter_end(&m);
    ck_assert_int_eq(ftell(f), 0);
    fclose(f);
}
END_TEST

START_TEST(mode_parse)
{
    es_progress_mode mode;
    ck_assert_int_eq(es_progress_mode_parse("auto", true, &mode), 0);
    ck_assert_int_eq(mode, ES_PROGRESS_BAR);
    ck_assert_int_eq(es_progress_mode_parse("auto", false, &mode), 0);
    ck_assert_int_eq(mode, ES_PROGRESS_NONE);
    ck_assert_int_eq(es_progress_mode_parse("json", false, &mode), 0);
    ck_assert_int_eq(mode, ES_PROGRESS_JSON);
    ck_assert_int_eq(es_progress_mode_parse("bar", false, &mode), 0);
    ck_assert_int_eq(mode, ES_PROGRESS_BAR);
    ck_assert_int_eq(es_progress_mode_parse("fancy", false, &mode), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("progress_meter");
    TCase *tc = tcase_create("meter");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rate_limited_first_and_last_shown);
    tcase_add_test(tc, interleaved_streams_keep_their_last_sample);
    tcase_add_test(tc, reaching_the_total_is_always_shown);
    tcase_add_test(tc, bar_line_and_none);
    tcase_add_test(tc, mode_parse);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
