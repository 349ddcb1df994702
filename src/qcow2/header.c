#include "qcow2/header.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/format.h"
#include "util/xalloc.h"

static int add_ext(qcow2_header *h, uint32_t type, const uint8_t *data, uint32_t len, es_err *e)
{
    (void)e;
    h->exts = es_xreallocarray(h->exts, h->n_exts + 1, sizeof *h->exts);
    uint8_t *copy = es_xmalloc(len);
    if (len)
        memcpy(copy, data, len);
    h->exts[h->n_exts++] = (qcow2_ext){type, len, copy};
    return 0;
}

static int fixed_fields(qcow2_header *h, const uint8_t *b, size_t len, const char *path, es_err *e)
{
    if (len < QCOW2_V2_HEADER_LEN)
        return es_err_set(e, 0, path, "truncated qcow2 header (%zu bytes, need at least %d)", len,
                          QCOW2_V2_HEADER_LEN);
    if (be32_load(b) != QCOW2_MAGIC)
        return es_err_set(e, 0, path, "not a qcow2 image (bad magic)");
    h->version = be32_load(b + 4);
    if (h->version != 2 && h->version != 3)
        return es_err_set(e, 0, path, "unsupported qcow2 version %u", h->version);
    h->backing_file_offset = be64_load(b + 8);
    h->backing_file_size = be32_load(b + 16);
    h->cluster_bits = be32_load(b + 20);
    h->size = be64_load(b + 24);
    h->crypt_method = be32_load(b + 32);
    h->l1_size = be32_load(b + 36);
    h->l1_table_offset = be64_load(b + 40);
    h->refcount_table_offset = be64_load(b + 48);
    h->refcount_table_clusters = be32_load(b + 56);
    h->nb_snapshots = be32_load(b + 60);
    h->snapshots_offset = be64_load(b + 64);
    if (h->version == 2) {
        h->refcount_order = 4;
        h->header_length = QCOW2_V2_HEADER_LEN;
        return 0;
    }
    if (len < QCOW2_V3_MIN_HEADER_LEN)
        return es_err_set(e, 0, path, "truncated qcow2 v3 header (%zu bytes)", len);
    h->incompatible_features = be64_load(b + 72);
    h->compatible_features = be64_load(b + 80);
    h->autoclear_features = be64_load(b + 88);
    h->refcount_order = be32_load(b + 96);
    h->header_length = be32_load(b + 100);
    if (h->header_length < QCOW2_V3_MIN_HEADER_LEN || h->header_length % 8)
        return es_err_set(e, 0, path, "invalid header length %u", h->header_length);
    if (h->header_length > len)
        return es_err_set(e, 0, path, "header length %u exceeds cluster 0 / end of file",
                          h->header_length);
    if (h->header_length > 104)
        h->compression_type = b[104];
    return 0;
}

/* Range checks that need the cluster size and the file size. */
static int check_fields(const qcow2_header *h, uint64_t file_size, const char *path, es_err *e)
{
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        return es_err_set(e, 0, path, "invalid cluster size (cluster_bits %u, must be 9..21)",
                          h->cluster_bits);
    uint64_t cs = 1ull << h->cluster_bits;
    if (h->header_length > cs)
        return es_err_set(e, 0, path, "header length %u larger than a cluster", h->header_length);
    uint64_t unknown = h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN;
    if (unknown)
        return es_err_set(e, 0, path, "unsupported incompatible feature bits 0x%llx",
                          (unsigned long long)unknown);
    if (h->incompatible_features & QCOW2_INCOMPAT_EXTL2 && h->cluster_bits < QCOW2_MIN_CLUSTER_BITS_EXTL2)
        return es_err_set(e, 0, path, "extended L2 entries need clusters of at least 16 KiB");
    if (h->refcount_order > QCOW2_MAX_REFCOUNT_ORDER)
        return es_err_set(e, 0, path, "invalid refcount order %u", h->refcount_order);
    if (h->version == 3 && h->header_length > 104) {
        if (h->compression_type > QCOW2_COMPRESSION_ZSTD)
            return es_err_set(e, 0, path, "unknown compression type %u", h->compression_type);
        bool flag = h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION;
        if (flag != (h->compression_type != QCOW2_COMPRESSION_ZLIB))
            return es_err_set(e, 0, path,
                              "compression type %u does not match the compression type feature bit",
                              h->compression_type);
    } else if (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) {
        return es_err_set(e, 0, path, "compression type bit set but header has no compression type");
    }
    if (h->size > (1ull << 62))
        return es_err_set(e, 0, path, "virtual size %llu too large", (unsigned long long)h->size);

    /* L1 table: large enough for the virtual size, aligned, inside the file. */
    uint64_t l2_entries = cs / ((h->incompatible_features & QCOW2_INCOMPAT_EXTL2) ? 16 : 8);
    uint64_t bytes_per_l1 = cs * l2_entries;
    uint64_t need_l1 = h->size / bytes_per_l1 + (h->size % bytes_per_l1 != 0);
    if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES)
        return es_err_set(e, 0, path, "L1 table too large (%u entries)", h->l1_size);
    if (h->l1_size < need_l1)
        return es_err_set(e, 0, path, "L1 table too small for the virtual size (%u entries, need %llu)",
                          h->l1_size, (unsigned long long)need_l1);
    if (h->l1_size) {
        if (h->l1_table_offset % cs || h->l1_table_offset == 0)
            return es_err_set(e, 0, path, "L1 table offset 0x%llx is not cluster aligned or is zero",
                              (unsigned long long)h->l1_table_offset);
        if (h->l1_table_offset > file_size || (uint64_t)h->l1_size * 8 > file_size - h->l1_table_offset)
            return es_err_set(e, 0, path, "L1 table at 0x%llx lies beyond end of file",
                              (unsigned long long)h->l1_table_offset);
    }
    /* Refcount table. */
    if (h->refcount_table_clusters == 0)
        return es_err_set(e, 0, path, "image has no refcount table");
    if ((uint64_t)h->refcount_table_clusters * cs > QCOW2_MAX_REFTABLE_BYTES)
        return es_err_set(e, 0, path, "refcount table too large (%u clusters)",
                          h->refcount_table_clusters);
    if (h->refcount_table_offset % cs)
        return es_err_set(e, 0, path, "refcount table offset 0x%llx is not cluster aligned",
                          (unsigned long long)h->refcount_table_offset);
    if (h->refcount_table_offset == 0)
        return es_err_set(e, 0, path, "refcount table overlaps the header");
    uint64_t rt_bytes = (uint64_t)h->refcount_table_clusters * cs;
    if (h->refcount_table_offset > file_size || rt_bytes > file_size - h->refcount_table_offset) {
        /* QEMU writes only the used part of the last cluster of a table, so
         * accept a table whose tail is missing but whose start is inside. */
        if (h->refcount_table_offset >= file_size)
            return es_err_set(e, 0, path, "refcount table at 0x%llx lies beyond end of file",
                              (unsigned long long)h->refcount_table_offset);
    }
    if (h->l1_size && h->l1_table_offset < h->refcount_table_offset + rt_bytes &&
        h->refcount_table_offset < h->l1_table_offset + (uint64_t)h->l1_size * 8)
        return es_err_set(e, 0, path, "L1 table overlaps the refcount table");
    /* Internal snapshot table. */
    if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
        return es_err_set(e, 0, path, "too many internal snapshots (%u)", h->nb_snapshots);
    if (h->nb_snapshots) {
        if (h->snapshots_offset % cs || h->snapshots_offset == 0)
            return es_err_set(e, 0, path, "snapshot table offset 0x%llx is not cluster aligned",
                              (unsigned long long)h->snapshots_offset);
        if (h->snapshots_offset >= file_size)
            return es_err_set(e, 0, path, "snapshot table at 0x%llx lies beyond end of file",
                              (unsigned long long)h->snapshots_offset);
    }
    return 0;
}

static int parse_exts(qcow2_header *h, const uint8_t *b, size_t len, const char *path, es_err *e)
{
    uint64_t cs = 1ull << h->cluster_bits;
    uint64_t end = len < cs ? len : cs;
    if (h->backing_file_offset && h->backing_file_offset < end)
        end = h->backing_file_offset;
    uint64_t off = h->header_length;
    for (;;) {
        if (off + 8 > end)
            return es_err_set(e, 0, path, "header extensions run past cluster 0 (at offset %llu)",
                              (unsigned long long)off);
        uint32_t type = be32_load(b + off), elen = be32_load(b + off + 4);
        off += 8;
        /* Length first, as QEMU: even END may not claim more than is left. */
        if (elen > end - off)
            return es_err_set(e, 0, path, "header extension 0x%08x of %u bytes runs past cluster 0",
                              type, elen);
        if (type == QCOW2_EXT_END)
            break;
        if (add_ext(h, type, b + off, elen, e) < 0)
            return -1;
        const uint8_t *d = b + off;
        char **target = type == QCOW2_EXT_BACKING_FORMAT ? &h->backing_format
                        : type == QCOW2_EXT_DATA_FILE    ? &h->data_file
                                                         : NULL;
        if (target) {
            free(*target);
            *target = es_xstrdup_len(d, elen);
            if (strlen(*target) != elen)
                return es_err_set(e, 0, path, "header extension 0x%08x holds a NUL byte", type);
        }
        off += ((uint64_t)elen + 7) & ~7ull;
    }
    /* Backing name: inside cluster 0 and after the extensions. */
    if (h->backing_file_offset) {
        if (h->backing_file_size > QCOW2_MAX_BACKING_NAME)
            return es_err_set(e, 0, path, "backing file name too long (%u bytes, max %d)",
                              h->backing_file_size, QCOW2_MAX_BACKING_NAME);
        if (h->backing_file_offset > cs || h->backing_file_size > cs - h->backing_file_offset)
            return es_err_set(e, 0, path, "backing file name at 0x%llx lies outside cluster 0",
                              (unsigned long long)h->backing_file_offset);
        if (h->backing_file_offset + h->backing_file_size > len)
            return es_err_set(e, 0, path, "backing file name lies beyond end of file");
        if (h->backing_file_offset < off)
            return es_err_set(e, 0, path, "backing file name overlaps the header extensions");
        if (h->backing_file_size == 0)
            return es_err_set(e, 0, path, "empty backing file name");
        h->backing_file = es_xstrdup_len(b + h->backing_file_offset, h->backing_file_size);
        if (strlen(h->backing_file) != h->backing_file_size)
            return es_err_set(e, 0, path, "backing file name holds a NUL byte");
    } else if (h->backing_file_size) {
        return es_err_set(e, 0, path, "backing file size set without a backing file offset");
    }
    return 0;
}

int qcow2_header_parse(qcow2_header *h, const uint8_t *buf, size_t len, uint64_t file_size,
                       const char *path, es_err *e)
{
    memset(h, 0, sizeof *h);
    if (fixed_fields(h, buf, len, path, e) < 0 || check_fields(h, file_size, path, e) < 0 ||
        parse_exts(h, buf, len, path, e) < 0) {
        qcow2_header_free(h);
        return -1;
    }
    return 0;
}

static uint8_t *put_ext(uint8_t *p, uint32_t type, const void *data, uint32_t len)
{
    be32_store(p, type);
    be32_store(p + 4, len);
    if (len)
        memcpy(p + 8, data, len);
    return p + 8 + ((len + 7u) & ~7u);
}

int qcow2_header_serialize(qcow2_header *h, uint8_t *buf, size_t cluster_size, const char *path,
                           es_err *e)
{
    if (h->version == 3 && h->header_length < QCOW2_HEADER_LEN_WRITTEN)
        h->header_length = QCOW2_HEADER_LEN_WRITTEN;
    uint64_t hl = h->version == 2 ? QCOW2_V2_HEADER_LEN : h->header_length;
    /* Size check first, so nothing is written into buf past cluster_size. */
    uint64_t need = hl + 8;
    if (h->backing_format)
        need += 8 + ((strlen(h->backing_format) + 7) & ~7ull);
    for (size_t i = 0; i < h->n_exts; i++)
        if (h->exts[i].type != QCOW2_EXT_BACKING_FORMAT)
            need += 8 + (((uint64_t)h->exts[i].len + 7) & ~7ull);
    size_t name_len = h->backing_file ? strlen(h->backing_file) : 0;
    if (name_len > QCOW2_MAX_BACKING_NAME)
        return es_err_set(e, 0, path, "backing file name too long (%zu bytes, max %d)", name_len,
                          QCOW2_MAX_BACKING_NAME);
    if (need + name_len > cluster_size)
        return es_err_set(e, 0, path,
                          "header, extensions and backing name (%llu bytes) do not fit in cluster 0 (%zu bytes)",
                          (unsigned long long)(need + name_len), cluster_size);

    memset(buf, 0, cluster_size);
    be32_store(buf, QCOW2_MAGIC);
    be32_store(buf + 4, h->version);
    be32_store(buf + 20, h->cluster_bits);
    be64_store(buf + 24, h->size);
    be32_store(buf + 32, h->crypt_method);
    be32_store(buf + 36, h->l1_size);
    be64_store(buf + 40, h->l1_table_offset);
    be64_store(buf + 48, h->refcount_table_offset);
    be32_store(buf + 56, h->refcount_table_clusters);
    be32_store(buf + 60, h->nb_snapshots);
    be64_store(buf + 64, h->snapshots_offset);
    if (h->version == 3) {
        be64_store(buf + 72, h->incompatible_features);
        be64_store(buf + 80, h->compatible_features);
        be64_store(buf + 88, h->autoclear_features);
        be32_store(buf + 96, h->refcount_order);
        be32_store(buf + 100, h->header_length);
        if (h->header_length > 104)
            buf[104] = h->compression_type;
    }
    uint8_t *p = buf + hl;
    if (h->backing_format)
        p = put_ext(p, QCOW2_EXT_BACKING_FORMAT, h->backing_format, (uint32_t)strlen(h->backing_format));
    for (size_t i = 0; i < h->n_exts; i++)
        if (h->exts[i].type != QCOW2_EXT_BACKING_FORMAT)
            p = put_ext(p, h->exts[i].type, h->exts[i].data, h->exts[i].len);
    p = put_ext(p, QCOW2_EXT_END, NULL, 0);
    if (name_len) {
        h->backing_file_offset = (uint64_t)(p - buf);
        h->backing_file_size = (uint32_t)name_len;
        memcpy(p, h->backing_file, name_len);
    } else {
        h->backing_file_offset = 0;
        h->backing_file_size = 0;
    }
    be64_store(buf + 8, h->backing_file_offset);
    be32_store(buf + 16, h->backing_file_size);
    return 0;
}

int qcow2_header_set_backing(qcow2_header *h, const char *name, const char *format, es_err *e)
{
    if (name && !*name)
        name = NULL;
    if (!name)
        format = NULL;
    (void)e;
    char *n = es_xstrdup(name), *f = es_xstrdup(format);
    free(h->backing_file);
    free(h->backing_format);
    h->backing_file = n;
    h->backing_format = f;
    /* The raw backing-format extension is regenerated from backing_format. */
    size_t j = 0;
    for (size_t i = 0; i < h->n_exts; i++) {
        if (h->exts[i].type == QCOW2_EXT_BACKING_FORMAT)
            free(h->exts[i].data);
        else
            h->exts[j++] = h->exts[i];
    }
    h->n_exts = j;
    return 0;
}

int qcow2_header_copy(qcow2_header *dst, const qcow2_header *src, es_err *e)
{
    *dst = *src;
    dst->exts = NULL;
    dst->n_exts = 0;
    dst->backing_file = dst->backing_format = dst->data_file = NULL;
    for (size_t i = 0; i < src->n_exts; i++)
        if (add_ext(dst, src->exts[i].type, src->exts[i].data, src->exts[i].len, e) < 0)
            goto fail;
    if ((src->backing_file && !(dst->backing_file = strdup(src->backing_file))) ||
        (src->backing_format && !(dst->backing_format = strdup(src->backing_format))) ||
        (src->data_file && !(dst->data_file = strdup(src->data_file)))) {
        es_err_set(e, ENOMEM, NULL, "out of memory");
        goto fail;
    }
    return 0;
fail:
    qcow2_header_free(dst);
    return -1;
}

void qcow2_header_free(qcow2_header *h)
{
    for (size_t i = 0; i < h->n_exts; i++)
        free(h->exts[i].data);
    free(h->exts);
    free(h->backing_file);
    free(h->backing_format);
    free(h->data_file);
    h->exts = NULL;
    h->n_exts = 0;
    h->backing_file = h->backing_format = h->data_file = NULL;
}

const qcow2_ext *qcow2_header_find_ext(const qcow2_header *h, uint32_t type)
{
    for (size_t i = 0; i < h->n_exts; i++)
        if (h->exts[i].type == type)
            return &h->exts[i];
    return NULL;
}
