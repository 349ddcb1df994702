/* The one writer of libvirt's files, for the transaction engine (both
 * directions of a plan) and domxml/store.h alike. Atomic (util/atomic_file),
 * through temporary files libvirt never reads: <config>.new beside a domain
 * config (libvirt loads only *.xml there) and
 * <snapshot-dir>/.<domain>-<snap>.xml.tmp for snapshot metadata (libvirt
 * parses every entry of <snapshot-dir>/<domain>/, so nothing temporary may
 * go in there). The crash sweeps look for leftovers by these names. */
#ifndef ES_DOMXML_WRITER_H
#define ES_DOMXML_WRITER_H

#include <stddef.h>

#include "util/err.h"

typedef enum { DOMXML_FILE_SNAPSHOT, DOMXML_FILE_CONFIG } domxml_file_kind;

/* One libvirt file: its host path and, for snapshot metadata, the domain
 * and snapshot names (they name the temporary file). */
typedef struct domxml_file {
    domxml_file_kind kind;
    const char *host;     /* <config-dir>/<dom>.xml or <snapshot-dir>/<dom>/<snap>.xml */
    const char *domain;   /* SNAPSHOT only */
    const char *snapshot; /* SNAPSHOT only */
} domxml_file;

/* The temporary file a write of f goes through (*out, malloc'd). */
int domxml_file_tmp_path(const domxml_file *f, char **out, es_err *e);

/* Make f hold the len bytes of text, or not exist when text is NULL.
 * Writes nothing when it already holds them; removes a stale temporary
 * file either way. A snapshot's directory <snapshot-dir>/<dom> is created
 * (mode 0755) when missing. A new file gets mode 0600; an existing one
 * keeps owner and mode. */
int domxml_file_put(const domxml_file *f, const char *text, size_t len, es_err *e);

#endif
