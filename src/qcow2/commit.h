/* Committing a backing chain: copy everything the images above BASE hold
 * (TOP and every image between) into BASE, as `qemu-img commit` does, then
 * empty TOP unless told to keep it.
 *
 * Safety (reference §5): nothing is written before every check passed (BASE
 * and TOP writable, BASE neither corrupt nor dirty, enough free space); a
 * new cluster's refcount is raised and flushed before anything points at
 * it; a pointer is cleared and flushed before the old cluster's refcount
 * drops; BASE's new virtual size is written last; TOP is emptied only after
 * BASE is complete and flushed. A crash leaves at worst leaked clusters, and
 * running the same commit again completes it with the same result. */
#ifndef ES_QCOW2_COMMIT_H
#define ES_QCOW2_COMMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "qcow2/image.h"
#include "util/progress.h"

typedef struct es_commit_opts {
    bool keep_top;          /* -d (and -b): leave TOP as it is */
    bool skip_space_check;  /* tests only: EXTSNAP_SKIP_SPACE_CHECK=1 */
    /* Told now and then of the bytes copied so far (util/progress.h), as
     * phase "commit" of progress_disk (NULL: TOP's file name). */
    es_progress_sink progress;
    const char *progress_disk;
} es_commit_opts;

/* The image of top's backing chain (below top) that is the same file as
 * path, or NULL (e says why) when there is none. */
es_image *es_commit_find_base(es_image *top, const char *path, es_err *e);
/* Same, for a chain opened under --root DIR (root NULL or "": none): path is
 * the host's name, resolved under root as the chain's names were. */
es_image *es_commit_find_base_root(es_image *top, const char *path, const char *root, es_err *e);

/* Commit top (opened with its chain, read-only is fine) into base, an image
 * of that chain below top. Images are reopened for writing as needed. */
int es_commit(es_image *top, es_image *base, const es_commit_opts *o, es_err *e);

/* Everything es_commit checks before its first write, without writing or
 * locking anything: its refusals (bitmaps, a corrupt or dirty BASE, ...),
 * BASE's metadata (refcounts, overlapping structures, the check 'verify'
 * applies), and the dry run; *need gets the bytes BASE's file may
 * grow by (qcow2/commit_space.h), for callers that check the free space of
 * several commits at once (a domain's disks on one file system). */
int es_commit_estimate(es_image *top, es_image *base, const es_commit_opts *o, uint64_t *need,
                       es_err *e);

#endif
