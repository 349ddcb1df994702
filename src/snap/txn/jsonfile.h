/* extsnap's own small JSON state files (journal, inexact record): read and
 * parse in one step. */
#ifndef ES_SNAP_JSONFILE_H
#define ES_SNAP_JSONFILE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* Read path (at most max bytes) and parse it. A missing file is not an
 * error: *exists false, *out NULL. Text that is not JSON is the error
 * "<what> is not valid JSON (<why>); <hint>". */
int snap_read_json(const char *path, size_t max, const char *what, const char *hint,
                   json_object **out, bool *exists, es_err *e);

#endif
