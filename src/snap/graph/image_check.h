/* Checks on the images a plan builds on, done while planning so that a
 * plan that cannot work is refused before anything is written. */
#ifndef ES_SNAP_IMAGE_CHECK_H
#define ES_SNAP_IMAGE_CHECK_H

#include "snap/txn/plan.h"
#include "util/err.h"

/* The image at path (as seen under root) opens with its whole backing chain
 * and is of the given format (qcow2 or raw). */
int snap_check_image(const char *root, const char *path, const char *format, es_err *e);

/* Refuse an image 'verify' would call corrupt: a domain operation that
 * reads or writes it would spread or deepen the damage. `what` names the
 * operation and `disk` the disk in the message. */
int snap_check_image_sound(const char *root, const char *path, const char *what,
                           const char *disk, es_err *e);

/* Fill o->uid/gid/mode from the image below (the new overlay's backing):
 * same owner, same permission bits plus owner write (the VM writes the
 * overlay even when the image below was made read-only). */
int snap_owner_from(const char *root, const char *below, snap_overlay *o, es_err *e);

/* Can an overlay be created at path? It must not exist, or be an empty
 * regular file (as libvirt, which then uses it: *existed_empty true). */
int snap_check_new_overlay(const char *root, const char *path, const char *disk,
                           bool *existed_empty, es_err *e);

#endif
