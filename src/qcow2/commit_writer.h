/* The commit's data writer: a second thread that writes one chunk of data
 * into BASE while the main thread reads the next chunk from the images
 * above (double buffering), so reading and writing overlap.
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

typedef struct commit_writer commit_writer;

int commit_writer_start(commit_writer **out, es_image *base, es_err *e);
/* Wait for the previous job, then hand over x[0..n) (the writer frees x). */
int commit_writer_submit(commit_writer *w, commit_io *x, size_t n, es_err *e);
/* Wait until the writer is idle; its error if the last job failed. */
int commit_writer_wait(commit_writer *w, es_err *e);
/* Wait, stop the thread, free. NULL is fine. */
void commit_writer_stop(commit_writer *w);

#endif
