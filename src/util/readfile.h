/* Reading a whole (small) file into memory, through util/fileio so that the
 * fault hook sees the read. The one reader of libvirt's XML, journals and
 * pending records. */
#ifndef ES_UTIL_READFILE_H
#define ES_UTIL_READFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* Read the regular file at path, at most max bytes (a larger one is an
 * error, EFBIG). *text is malloc'd and NUL-terminated; *len excludes the
 * NUL. A missing file is an error (errnum ENOENT). */
int es_read_file(const char *path, size_t max, char **text, size_t *len, es_err *e);

/* The same, but a missing file is not an error: *exists false, *text NULL. */
int es_read_file_if_exists(const char *path, size_t max, char **text, size_t *len, bool *exists,
                           es_err *e);

#endif
