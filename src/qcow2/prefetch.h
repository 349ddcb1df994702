/* Reading a chain's guest range ahead of time: the host extents the range
 * maps to, in whichever image of the chain holds them, are handed to the
 * kernel to read in the background. Data scattered in small clusters is
 * otherwise read one synchronous request at a time (readahead only helps
 * sequential reads), so a cold-cache scan of a chain waits on the disk's
 * latency instead of using its queue. */
#ifndef ES_QCOW2_PREFETCH_H
#define ES_QCOW2_PREFETCH_H

#include <stdint.h>

#include "qcow2/image.h"

/* Ask for [off, off+len) of img's guest view to be read ahead (a hint:
 * metadata errors stop it quietly; the real read reports them). */
void es_image_prefetch(es_image *img, uint64_t off, uint64_t len);

#endif
