/* The qcow2 layer ends some refusals with "run 'extsnap img check -r all'"
 * about the image the error names; it does not know how the command
 * reached that image. The img commands complete the command line: the
 * image, and --root when they ran under one (the path shown is then the
 * host's view, which this system reaches only through --root). */
#ifndef ES_CMD_CHECK_HINT_H
#define ES_CMD_CHECK_HINT_H

#include "util/err.h"

/* Rewrite e's hint, if any, as the whole command. root may be NULL. */
void es_img_check_hint(es_err *e, const char *root);

#endif
