/* Reading a whole libvirt file into memory through util/fileio. Internal. */
#ifndef ES_DOMXML_READFILE_H
#define ES_DOMXML_READFILE_H

#include <stddef.h>

#include "util/err.h"

/* libvirt's own limit for XML files it reads is 10 MiB; a bit of room. */
#define DX_MAX_XML_FILE (16u * 1024 * 1024)

/* *out is malloc'd and NUL-terminated; *len excludes the NUL. */
int dx_read_file(const char *path, char **out, size_t *len, es_err *e);

#endif
