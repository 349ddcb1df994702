#include "qcow2/commit_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/xalloc.h"

struct commit_writer {
    es_image *base;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    commit_job job;
    bool busy;        /* job is waiting or running */
    bool stop;
    bool failed;      /* the last job failed: err holds why */
    es_err err;
    uint64_t end;     /* highest byte written so far */
};

static void job_free(commit_job *j)
{
    free(j->writes);
    free(j->copies);
    *j = (commit_job){0};
}

static void extend(uint64_t off, uint64_t len, uint64_t *lo, uint64_t *end)
{
    if (off < *lo)
        *lo = off;
    if (off + len > *end)
        *end = off + len;
}

static int run_job(commit_writer *w, const commit_job *j, uint64_t *lo, uint64_t *end,
                   es_err *err)
{
    es_file *f = w->base->file;
    for (size_t i = 0; i < j->ncopies; i++) {
        const commit_copy *c = &j->copies[i];
        if (es_file_copy(c->src->file, c->src_off, f, c->dst_off, c->len, err) < 0)
            return -1;
        extend(c->dst_off, c->len, lo, end);
    }
    for (size_t i = 0; i < j->nwrites; i++) {
        const commit_io *x = &j->writes[i];
        if (es_file_pwrite(f, x->mem, (size_t)x->len, x->off, err) < 0)
            return -1;
        extend(x->off, x->len, lo, end);
    }
    return 0;
}

static void *writer_main(void *arg)
{
    commit_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->busy && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->busy)
            break;
        commit_job job = w->job;
        pthread_mutex_unlock(&w->mu);
        es_err err;
        uint64_t end = 0, lo = UINT64_MAX;
        bool failed = run_job(w, &job, &lo, &end, &err) < 0;
        /* Let the disk start on this chunk while the next one is read (one
         * hint for the chunk: the kernel sorts the dirty pages itself). */
        if (!failed && end)
            es_file_start_writeback(w->base->file, lo, end - lo);
        job_free(&job);
        pthread_mutex_lock(&w->mu);
        if (failed) {
            w->failed = true;
            w->err = err;
        }
        if (end > w->end)
            w->end = end;
        w->job = (commit_job){0};
        w->busy = false;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int commit_writer_start(commit_writer **out, es_image *base, es_err *e)
{
    *out = NULL;
    commit_writer *w = es_xcalloc(1, sizeof *w);
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
    while (w->busy)
        pthread_cond_wait(&w->cv, &w->mu);
    bool failed = w->failed;
    if (failed && e)
        *e = w->err;
    if (w->end > w->base->file_size)
        w->base->file_size = w->end;
    pthread_mutex_unlock(&w->mu);
    return failed ? -1 : 0;
}

int commit_writer_submit(commit_writer *w, commit_job job, es_err *e)
{
    if (commit_writer_wait(w, e) < 0) {
        job_free(&job);
        return -1;
    }
    pthread_mutex_lock(&w->mu);
    w->job = job;
    w->busy = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

void commit_writer_stop(commit_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    while (w->busy)
        pthread_cond_wait(&w->cv, &w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
