/* The commit's data writer: a second thread that writes one chunk of data
 * into BASE while the main thread reads the next chunk from the images
 * above (double buffering), so reading and writing overlap. Whole clusters
 * that come unchanged from one image are copied inside the kernel instead
 * (no user-space copy, the page cache's readahead does the reading).
 *
 * One job at a time, in submission order, so the order of writes (and the
 * fault-injection points) stays deterministic. The main thread does every
 * other write and flush, always after commit_writer_wait(). The writer
 * never touches shared image state: img->file_size is updated by wait(). */
#ifndef ES_QCOW2_COMMIT_WRITER_H
#define ES_QCOW2_COMMIT_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "qcow2/image.h"

typedef struct commit_io {
    es_image *img;  /* reads: the source image; writes: BASE */
    uint64_t off;   /* host offset */
    uint8_t *mem;
    uint64_t len;
} commit_io;

/* A copy from an image above BASE straight into BASE (es_file_copy). */
typedef struct commit_copy {
    es_image *src;
    uint64_t src_off; /* host offset in src */
    uint64_t dst_off; /* host offset in BASE */
    uint64_t len;
} commit_copy;

/* One chunk's work; the writer frees both arrays. */
typedef struct commit_job {
    commit_io *writes;
    size_t nwrites;
    commit_copy *copies;
    size_t ncopies;
} commit_job;

typedef struct commit_writer commit_writer;

int commit_writer_start(commit_writer **out, es_image *base, es_err *e);
/* Wait for the previous job, then hand over this one (the writer frees its
 * arrays, also when this fails). */
int commit_writer_submit(commit_writer *w, commit_job job, es_err *e);
/* Wait until the writer is idle; its error if the last job failed. */
int commit_writer_wait(commit_writer *w, es_err *e);
/* Wait, stop the thread, free. NULL is fine. */
void commit_writer_stop(commit_writer *w);

#endif
