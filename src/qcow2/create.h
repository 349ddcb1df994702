/* Creating new images: qcow2 (byte-identical to what `qemu-img create`
 * writes with the same options) and raw (a sparse file). */
#ifndef ES_QCOW2_CREATE_H
#define ES_QCOW2_CREATE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

typedef struct qcow2_create_opts {
    uint64_t size;             /* virtual size in bytes (rounded up to 512, as QEMU) */
    bool size_set;             /* false: take the backing file's virtual size */
    uint32_t cluster_size;     /* 512 .. 2 MiB, a power of two */
    uint32_t version;          /* 2 (compat=0.10) or 3 (compat=1.1) */
    uint32_t refcount_bits;    /* 1, 2, 4 .. 64 */
    bool extended_l2;
    bool lazy_refcounts;
    uint8_t compression_type;  /* QCOW2_COMPRESSION_ZLIB / _ZSTD */
    const char *backing_file;  /* written into the header as given; NULL = none */
    const char *backing_format;/* "qcow2" or "raw"; required with backing_file */
    bool unsafe;               /* do not open the backing file (qemu-img -u) */
    const char *root;          /* resolve the backing file under this directory (NULL: /) */
} qcow2_create_opts;

/* qemu-img's defaults: v3, 64 KiB clusters, 16-bit refcounts, zlib. */
void qcow2_create_opts_init(qcow2_create_opts *o);

/* Check the options alone (no file access), with qemu-img's rules:
 * cluster size, refcount width, features that need v3, -F with -b, a size
 * when there is nothing to take it from, a backing name QEMU can store. */
int qcow2_create_check_opts(const qcow2_create_opts *o, es_err *e);

/* Create a qcow2 image at path. Unless o->unsafe, the backing file is
 * opened first with its whole chain (relative names resolve against path's
 * directory) to check that it exists and has the given format, and to take
 * its size when none is given. path must not exist or be an empty file
 * (libvirt pre-creates empty files); nothing else is ever overwritten. All
 * metadata is written and flushed before the header, so an interrupted
 * create never leaves something that looks like a valid image; on failure
 * the file is removed (or truncated back to empty if it existed). */
int qcow2_create(const char *path, const qcow2_create_opts *o, es_err *e);

/* Create a raw image: a sparse file of `size` bytes rounded up to 512. */
int raw_create(const char *path, uint64_t size, es_err *e);

/* Limits QEMU enforces on the virtual size. */
#define QCOW2_CREATE_MAX_SIZE 0x7fffffffffffffffull

#endif
