/* What to do about an image another process holds (QEMU's image locks):
 * the lock layer reports who holds it, the command adds what it offers,
 * since only the command knows its options (img info has --force-share,
 * img commit has --qmp). */
#ifndef ES_CMD_BUSY_HINT_H
#define ES_CMD_BUSY_HINT_H

#include "util/err.h"

#define ES_HINT_FORCE_SHARE "use --force-share to read it anyway"
#define ES_HINT_QMP                                                                            \
    "to commit through the QEMU that holds it, use --qmp PATH (its QMP socket) with "       \
    "--device or --node"

/* Append "; hint" to e's message when e is an image-lock conflict. */
void es_busy_hint(es_err *e, const char *hint);

#endif
