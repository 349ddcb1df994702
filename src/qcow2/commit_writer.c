#include "qcow2/commit_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct commit_writer {
    es_image *base;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    commit_io *job;   /* NULL when idle */
    size_t njob;
    bool stop;
    bool failed;      /* the last job failed: err holds why */
    es_err err;
    uint64_t end;     /* highest byte written so far */
};

static void *writer_main(void *arg)
{
    commit_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->job && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->job)
            break;
        commit_io *x = w->job;
        size_t n = w->njob;
        pthread_mutex_unlock(&w->mu);
        es_err err;
        bool failed = false;
        uint64_t end = 0, lo = UINT64_MAX;
        for (size_t i = 0; i < n && !failed; i++) {
            if (es_file_pwrite(w->base->file, x[i].mem, (size_t)x[i].len, x[i].off, &err) < 0) {
                failed = true;
                break;
            }
            if (x[i].off + x[i].len > end)
                end = x[i].off + x[i].len;
            if (x[i].off < lo)
                lo = x[i].off;
        }
        /* Let the disk start on this chunk while the next one is read (one
         * hint for the chunk: the kernel sorts the dirty pages itself). */
        if (!failed && n)
            es_file_start_writeback(w->base->file, lo, end - lo);
        free(x);
        pthread_mutex_lock(&w->mu);
        if (failed) {
            w->failed = true;
            w->err = err;
        }
        if (end > w->end)
            w->end = end;
        w->job = NULL;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int commit_writer_start(commit_writer **out, es_image *base, es_err *e)
{
    *out = NULL;
    commit_writer *w = calloc(1, sizeof *w);
    if (!w)
        return es_err_set(e, ENOMEM, NULL, "out of memory");
    w->base = base;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int r = pthread_create(&w->thread, NULL, writer_main, w);
    if (r != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return es_err_set(e, r, NULL, "cannot start the writer thread");
    }
    *out = w;
    return 0;
}

int commit_writer_wait(commit_writer *w, es_err *e)
{
    pthread_mutex_lock(&w->mu);
    while (w->job)
        pthread_cond_wait(&w->cv, &w->mu);
    bool failed = w->failed;
    if (failed && e)
        *e = w->err;
    if (w->end > w->base->file_size)
        w->base->file_size = w->end;
    pthread_mutex_unlock(&w->mu);
    return failed ? -1 : 0;
}

int commit_writer_submit(commit_writer *w, commit_io *x, size_t n, es_err *e)
{
    if (commit_writer_wait(w, e) < 0) {
        free(x);
        return -1;
    }
    pthread_mutex_lock(&w->mu);
    w->job = x;
    w->njob = n;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

void commit_writer_stop(commit_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    while (w->job)
        pthread_cond_wait(&w->cv, &w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
