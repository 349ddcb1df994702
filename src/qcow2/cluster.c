/* Block status of one image: what its L1/L2 tables say about a guest range.
 * Every entry is validated before it is trusted; runs are merged across
 * clusters and L2 tables, and a zero L1 entry skips its whole range, so the
 * work is proportional to the metadata actually present. */
#include <errno.h>
#include <string.h>

#include "qcow2/compress.h"
#include "qcow2/format.h"
#include "qcow2/l2_cache.h"

/* What one L2 entry (and bitmap) says about one unit: a cluster, or a
 * subcluster with extended L2. */
typedef struct unit_status {
    es_bs_kind kind;
    uint64_t host; /* DATA: host offset of the start of the unit */
} unit_status;

typedef struct l2_ctx {
    es_image *img;
    uint64_t l2_off;     /* host offset of the L2 table */
    uint64_t guest_off;  /* guest offset of the cluster the entry maps */
} l2_ctx;

static int bad_entry(const l2_ctx *c, uint64_t entry, const char *what, uint64_t val, es_err *e)
{
    return es_err_set(e, 0, c->img->filename,
                      "L2 entry 0x%016llx for guest offset 0x%llx (L2 table at 0x%llx): %s 0x%llx",
                      (unsigned long long)entry, (unsigned long long)c->guest_off,
                      (unsigned long long)c->l2_off, what, (unsigned long long)val);
}

/* Validate a whole L2 entry once per cluster; returns the cluster type in
 * *kind (UNALLOC / DATA / ZERO / COMPRESSED, with DATA meaning "has a host
 * cluster" for extended L2) and its host offset. */
static int check_l2_entry(const l2_ctx *c, uint64_t entry, uint64_t bitmap, es_bs_kind *kind,
                          uint64_t *host, es_err *e)
{
    es_image *img = c->img;
    *host = 0;
    if (entry & QCOW2_OFLAG_COMPRESSED) {
        if (entry & QCOW2_OFLAG_COPIED)
            return bad_entry(c, entry, "compressed cluster has the COPIED flag set, entry", entry, e);
        if (img->extended_l2 && bitmap)
            return bad_entry(c, entry, "compressed cluster has a non-zero subcluster bitmap", bitmap,
                             e);
        uint64_t off, nbytes;
        qcow2_compressed_range(img->cluster_bits, entry, &off, &nbytes);
        if (off >= img->file_size)
            return bad_entry(c, entry, "compressed cluster lies beyond end of file at", off, e);
        *kind = ES_BS_COMPRESSED;
        *host = off;
        return 0;
    }
    uint64_t reserved = QCOW2_L2E_STD_RESERVED_MASK;
    bool zero_flag_valid = !img->extended_l2 && img->hdr.version >= 3;
    if (!zero_flag_valid)
        reserved |= QCOW2_OFLAG_ZERO;
    if (entry & reserved)
        return bad_entry(c, entry, "reserved bits set:", entry & reserved, e);
    uint64_t off = entry & QCOW2_L2E_OFFSET_MASK;
    if (off && (off & (img->cluster_size - 1)))
        return bad_entry(c, entry, "cluster offset not cluster aligned:", off, e);
    if (zero_flag_valid && (entry & QCOW2_OFLAG_ZERO)) {
        *kind = ES_BS_ZERO; /* plain or preallocated: reads as zeroes either way */
        return 0;
    }
    if (img->extended_l2 && (bitmap >> 32) & bitmap)
        return bad_entry(c, entry, "invalid subcluster bitmap (allocated and zero bits both set)",
                         bitmap, e);
    if (!off) {
        if (img->extended_l2 && (bitmap & 0xffffffffull))
            return bad_entry(c, entry,
                             "invalid subcluster bitmap (allocated subclusters without a cluster)",
                             bitmap, e);
        *kind = ES_BS_UNALLOC;
        return 0;
    }
    if (off >= img->file_size)
        return bad_entry(c, entry, "data cluster lies beyond end of file at", off, e);
    *kind = ES_BS_DATA;
    *host = off;
    return 0;
}

/* Status of subcluster sc of a cluster already checked by check_l2_entry. */
static unit_status subcluster_status(const es_image *img, es_bs_kind cluster_kind, uint64_t host,
                                     uint64_t bitmap, unsigned sc)
{
    unit_status u = {ES_BS_UNALLOC, 0};
    if (cluster_kind == ES_BS_COMPRESSED)
        u.kind = ES_BS_COMPRESSED;
    else if (bitmap & (1ull << (32 + sc)))
        u.kind = ES_BS_ZERO;
    else if (bitmap & (1ull << sc)) {
        u.kind = ES_BS_DATA;
        u.host = host + (uint64_t)sc * img->subcluster_size;
    }
    return u;
}

/* An L2 entry (and its bitmap) of all zero bits: unallocated, nothing to
 * validate. */
static inline bool entry_is_zero(const uint8_t *p, bool extended)
{
    uint64_t w0, w1 = 0;
    memcpy(&w0, p, 8);
    if (extended)
        memcpy(&w1, p + 8, 8);
    return (w0 | w1) == 0;
}

/* Run-merging state for one block_status call. */
typedef struct run {
    es_block_status *bs;
    uint64_t start;  /* guest offset the run starts at */
    bool started;
    bool done;
} run;

/* Extend the run with a unit [pos, unit_end) of status u; host is the host
 * offset for pos (DATA). Returns false when the unit does not belong to the
 * run (the run then ends at pos). */
static bool run_add(run *r, es_bs_kind kind, uint64_t pos, uint64_t host, uint64_t entry,
                    uint64_t bitmap)
{
    if (!r->started) {
        r->started = true;
        r->bs->kind = kind;
        r->bs->host_off = host;
        r->bs->l2_entry = entry;
        r->bs->l2_bitmap = bitmap;
        if (kind == ES_BS_COMPRESSED)
            r->done = true; /* one compressed cluster per run */
        return true;
    }
    if (kind != r->bs->kind || kind == ES_BS_COMPRESSED)
        return false;
    if (kind == ES_BS_DATA && host != r->bs->host_off + (pos - r->start))
        return false;
    return true;
}

int es_image_block_status(es_image *img, uint64_t off, uint64_t max_len, es_block_status *bs,
                          es_err *e)
{
    memset(bs, 0, sizeof *bs);
    bs->kind = ES_BS_UNALLOC;
    if (off >= img->virtual_size || max_len == 0) {
        bs->len = max_len;
        return 0;
    }
    if (max_len > img->virtual_size - off)
        max_len = img->virtual_size - off;
    if (img->format == ES_FMT_RAW) {
        bs->kind = ES_BS_DATA;
        bs->host_off = off;
        bs->len = max_len;
        return 0;
    }

    const uint64_t cs = img->cluster_size;
    const uint32_t l2_bits = (uint32_t)__builtin_ctzll(img->l2_entries);
    const uint32_t l1_shift = img->cluster_bits + l2_bits;
    const uint64_t end = off + max_len;
    run r = {bs, off, false, false};
    uint64_t pos = off;

    while (pos < end && !r.done) {
        uint64_t l1_idx = pos >> l1_shift;
        uint64_t l1_range_end = (l1_idx + 1) << l1_shift;
        if (l1_range_end > end || l1_range_end == 0)
            l1_range_end = end;
        if (l1_idx >= img->l1_size) /* header guarantees l1 covers the virtual size */
            return es_err_set(e, 0, img->filename, "guest offset 0x%llx is not covered by the L1 table",
                              (unsigned long long)pos);
        uint64_t l1e = img->l1[l1_idx];
        if (l1e & QCOW2_L1E_RESERVED_MASK)
            return es_err_set(e, 0, img->filename,
                              "L1 entry %llu (0x%016llx) has reserved bits set",
                              (unsigned long long)l1_idx, (unsigned long long)l1e);
        uint64_t l2_off = l1e & QCOW2_L1E_OFFSET_MASK;
        if (!l2_off) {
            if (!run_add(&r, ES_BS_UNALLOC, pos, 0, 0, 0))
                break;
            pos = l1_range_end;
            continue;
        }
        if (l2_off & (cs - 1))
            return es_err_set(e, 0, img->filename,
                              "L1 entry %llu: L2 table offset 0x%llx is not cluster aligned",
                              (unsigned long long)l1_idx, (unsigned long long)l2_off);
        if (l2_off >= img->file_size)
            return es_err_set(e, 0, img->filename,
                              "L2 table at 0x%llx lies beyond end of file (L1 entry %llu, file size 0x%llx)",
                              (unsigned long long)l2_off, (unsigned long long)l1_idx,
                              (unsigned long long)img->file_size);
        const uint8_t *table;
        if (qcow2_l2_get(img, l2_off, &table, e) < 0)
            return -1;

        /* Walk entries of this table until the run ends or the range does. */
        while (pos < l1_range_end && !r.done) {
            uint64_t l2_idx = (pos >> img->cluster_bits) & (img->l2_entries - 1);
            const uint8_t *p = table + l2_idx * img->l2_entry_bytes;
            if (r.started && bs->kind == ES_BS_UNALLOC) {
                /* An unallocated run goes on over all-zero entries (valid
                 * as they are): skipped in a tight loop, as a deep chain's
                 * scan spends most of its time here. */
                uint64_t last = ((l1_range_end - 1) >> img->cluster_bits) & (img->l2_entries - 1);
                uint64_t i = l2_idx;
                while (i <= last && entry_is_zero(table + i * img->l2_entry_bytes, img->extended_l2))
                    i++;
                if (i > l2_idx) {
                    pos = (pos & ~((1ull << l1_shift) - 1)) + (i << img->cluster_bits);
                    if (pos > l1_range_end || i > last)
                        pos = l1_range_end;
                    continue;
                }
            }
            uint64_t entry = be64_load(p);
            uint64_t bitmap = img->extended_l2 ? be64_load(p + 8) : 0;
            l2_ctx c = {img, l2_off, pos & ~(cs - 1)};
            es_bs_kind ckind;
            uint64_t chost;
            if (check_l2_entry(&c, entry, bitmap, &ckind, &chost, e) < 0)
                return -1;
            uint64_t cluster_end = c.guest_off + cs;
            if (cluster_end > l1_range_end)
                cluster_end = l1_range_end;
            if (!img->extended_l2 || ckind == ES_BS_COMPRESSED || ckind == ES_BS_ZERO) {
                uint64_t host = ckind == ES_BS_DATA ? chost + (pos - c.guest_off) : chost;
                if (!run_add(&r, ckind, pos, host, entry, bitmap))
                    goto out;
                pos = cluster_end;
                continue;
            }
            /* Extended L2: subcluster by subcluster within the cluster. */
            while (pos < cluster_end) {
                unsigned sc = (unsigned)((pos - c.guest_off) / img->subcluster_size);
                unit_status u = subcluster_status(img, ckind, chost, bitmap, sc);
                uint64_t sc_start = c.guest_off + (uint64_t)sc * img->subcluster_size;
                uint64_t host = u.kind == ES_BS_DATA ? u.host + (pos - sc_start) : 0;
                if (!run_add(&r, u.kind, pos, host, entry, bitmap))
                    goto out;
                pos = sc_start + img->subcluster_size;
                if (pos > cluster_end)
                    pos = cluster_end;
            }
        }
    }
out:
    if (pos > end)
        pos = end;
    bs->len = pos - off;
    return 0;
}
