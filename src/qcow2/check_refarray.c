/* Refcount arrays in the on-disk refcount-block layout (widths 1..64 bits;
 * sub-byte widths pack from the least significant bit, wider ones are
 * big-endian), and the in-memory refcount table built by the check. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/check_internal.h"
#include "qcow2/format.h"

uint64_t refarray_get(const uint8_t *a, uint32_t order, uint64_t i)
{
    switch (order) {
    case 0: return (a[i / 8] >> (i % 8)) & 0x1;
    case 1: return (a[i / 4] >> (2 * (i % 4))) & 0x3;
    case 2: return (a[i / 2] >> (4 * (i % 2))) & 0xf;
    case 3: return a[i];
    case 4: return be16_load(a + 2 * i);
    case 5: return be32_load(a + 4 * i);
    default: return be64_load(a + 8 * i);
    }
}

void refarray_set(uint8_t *a, uint32_t order, uint64_t i, uint64_t v)
{
    if (order <= 2) {
        unsigned bits = 1u << order, per_byte = 8 / bits;
        unsigned shift = bits * (unsigned)(i % per_byte);
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << shift);
        uint8_t *b = a + i / per_byte;
        *b = (uint8_t)((*b & ~mask) | ((v << shift) & mask));
        return;
    }
    switch (order) {
    case 3: a[i] = (uint8_t)v; break;
    case 4: be16_store(a + 2 * i, (uint16_t)v); break;
    case 5: be32_store(a + 4 * i, (uint32_t)v); break;
    default: be64_store(a + 8 * i, v); break;
    }
}

/* Bytes for n entries, rounded up to whole clusters so that any refblock
 * sized slice of the array is in bounds. */
static uint64_t imrt_bytes_for(const qcow2_check_ctx *c, uint64_t n)
{
    uint64_t bytes = ((n << c->refcount_order) + 7) / 8;
    return ((bytes + c->cluster_size - 1) >> c->cluster_bits) << c->cluster_bits;
}

int imrt_resize(qcow2_check_ctx *c, uint64_t n, es_err *e)
{
    /* Offsets are below 2^56, so cluster indexes fit the shift below. */
    if (n > (1ull << 56))
        return es_err_set(e, EFBIG, c->path, "refcount array for %llu clusters is too large",
                          (unsigned long long)n);
    uint64_t bytes = imrt_bytes_for(c, n);
    if (bytes > c->imrt_bytes) {
        if (bytes > SIZE_MAX)
            return es_err_set(e, ENOMEM, c->path, "out of memory");
        uint8_t *p = realloc(c->imrt, (size_t)bytes);
        if (!p)
            return es_err_set(e, ENOMEM, c->path,
                              "out of memory for the refcounts of %llu clusters",
                              (unsigned long long)n);
        memset(p + c->imrt_bytes, 0, (size_t)(bytes - c->imrt_bytes));
        c->imrt = p;
        c->imrt_bytes = bytes;
    }
    if (n > c->imrt_n)
        c->imrt_n = n;
    return 0;
}

void imrt_clear(qcow2_check_ctx *c)
{
    if (c->imrt)
        memset(c->imrt, 0, (size_t)c->imrt_bytes);
}

int imrt_inc_range(qcow2_check_ctx *c, uint64_t off, uint64_t size, es_err *e)
{
    if (size == 0)
        return 0;
    /* The last cluster may be only partly written, so up to one cluster
     * past the end of the file is fine; more is a broken reference. */
    if (off > UINT64_MAX - size || off + size >= c->file_size + c->cluster_size) {
        check_log(c,
                  "ERROR: counting reference for region exceeding the end of the file by one "
                  "cluster or more: offset 0x%llx size 0x%llx\n",
                  (unsigned long long)off, (unsigned long long)size);
        c->res->corruptions++;
        return 0;
    }
    uint64_t first = off >> c->cluster_bits, last = (off + size - 1) >> c->cluster_bits;
    for (uint64_t k = first; k <= last; k++) {
        if (k >= c->imrt_n && imrt_resize(c, k + 1, e) < 0) {
            c->res->check_errors++;
            return -1;
        }
        uint64_t rc = refarray_get(c->imrt, c->refcount_order, k);
        if (rc == c->refcount_max) {
            check_log(c, "ERROR: overflow cluster offset=0x%llx\n",
                      (unsigned long long)(k << c->cluster_bits));
            check_log(c, "Use qemu-img amend to increase the refcount entry width or qemu-img "
                         "convert to create a clean copy if the image cannot be opened for "
                         "writing\n");
            c->res->corruptions++;
            continue;
        }
        refarray_set(c->imrt, c->refcount_order, k, rc + 1);
    }
    return 0;
}
