/* 'setup DOMAIN PATH' (from the original script): move each writable disk's
 * image to PATH/disks/<domain>-<target>.base and point the config at it,
 * before the domain has any snapshot (its overlays are then made beside
 * the base images: PATH/disks/<domain>-<target>.<snapshot>).
 *
 * Refused: once the domain has snapshots; an image with a backing file (a
 * chain cannot be moved piecewise: flatten it first); an image another
 * domain, or another image's backing link, uses (moving it would break
 * them); a target name that exists with other content.
 *
 * The move is staged before the journal: on the same file system a hard
 * link under the new name; across file systems (or where the link is
 * refused) a sparse copy (SEEK_DATA / SEEK_HOLE, holes stay holes; extents
 * shared where the file system can) to a temporary name, flushed, compared with
 * the original byte for byte, then renamed into place. The plan then
 * writes the config (journal, all disks at once) and removes the original
 * names after the commit point. Staged files of a run that fails before
 * its commit point are removed; after a crash they stay, and the next
 * setup takes them over when they hold the same bytes. */
#ifndef ES_SNAP_SETUP_H
#define ES_SNAP_SETUP_H

#include <stdbool.h>
#include <stddef.h>

#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"

typedef struct snap_setup_move {
    char *target;  /* disk (vda) */
    char *src;     /* its image now (as libvirt names it) */
    char *dst;     /* PATH/disks/<domain>-<target>.base */
    bool ready;    /* dst already holds it (same file, or the same bytes) */
    bool staged;   /* made by this run (removed again if the run fails) */
} snap_setup_move;

typedef struct snap_setup {
    char *disks_dir;   /* PATH/disks */
    bool make_dir;     /* it does not exist yet */
    snap_setup_move *v;
    size_t n;
    size_t in_place;   /* disks already at their new name (nothing to do for them) */
} snap_setup;

/* Check and plan (config write, originals deleted after the commit point).
 * A domain whose images are all in place already gets an empty plan. */
int snap_plan_setup(snap_ctx *c, const char *path, snap_setup **s, snap_plan **out, es_err *e);
/* Put the images in place under their new names (not for --dry-run). */
int snap_setup_stage(snap_ctx *c, snap_setup *s, es_err *e);
/* Remove what stage made (after a failure before the commit point). */
void snap_setup_unstage(snap_ctx *c, snap_setup *s);
void snap_setup_free(snap_setup *s);

#endif
