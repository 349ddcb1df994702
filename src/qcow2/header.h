/* qcow2 header and header extensions: parse, validate, serialize.
 * Extensions are kept raw and in file order so that unknown ones survive a
 * rewrite byte for byte; the known ones are also decoded for convenience. */
#ifndef ES_QCOW2_HEADER_H
#define ES_QCOW2_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct qcow2_ext {
    uint32_t type;
    uint32_t len;
    uint8_t *data; /* len bytes */
} qcow2_ext;

typedef struct qcow2_header {
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;

    /* Extensions in file order (END excluded), raw. */
    qcow2_ext *exts;
    size_t n_exts;

    /* Decoded views (NUL-terminated copies; NULL when absent). */
    char *backing_file;
    char *backing_format;
    char *data_file;
} qcow2_header;

/* Parse and validate cluster 0 (buf holds `len` bytes from offset 0; len is at
 * least min(cluster size, file size)). file_size is used for range checks.
 * `path` only names the file in errors. */
int qcow2_header_parse(qcow2_header *h, const uint8_t *buf, size_t len, uint64_t file_size,
                       const char *path, es_err *e);

/* Serialize header, extensions (backing format first, then the others in
 * their original order), END and the backing name into buf (cluster_size
 * bytes, zero-filled first). Updates backing_file_offset/size and
 * header_length in h. Fails when it does not fit in cluster 0. */
int qcow2_header_serialize(qcow2_header *h, uint8_t *buf, size_t cluster_size, const char *path,
                           es_err *e);

/* Replace the backing file name and format (either may be NULL = remove).
 * Removing the backing file also removes the backing format extension. */
int qcow2_header_set_backing(qcow2_header *h, const char *name, const char *format, es_err *e);

/* Deep copy / free. */
int qcow2_header_copy(qcow2_header *dst, const qcow2_header *src, es_err *e);
void qcow2_header_free(qcow2_header *h);

/* Header-only helper: the extension of a given type, or NULL. */
const qcow2_ext *qcow2_header_find_ext(const qcow2_header *h, uint32_t type);

#endif
