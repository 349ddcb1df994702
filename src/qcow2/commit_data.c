/* Moving the data of one chunk of ops: every op gets a slot of one unit in
 * a chunk buffer; slots are filled (BASE's own view where nothing above
 * covers, zeroes, decompressed clusters, then the data reads) and handed to
 * the writer thread, which writes them to their destinations while the next
 * chunk is read into the other buffer. Ops arrive in source order (image,
 * host offset) and new clusters were allocated in that order, so both the
 * reads and the writes coalesce into large sequential requests.
 *
 * Most ops are whole clusters that one image above holds as plain data:
 * those skip the buffer and are copied inside the kernel by the writer
 * (es_file_copy): one copy less and less CPU than read + write, which
 * matters on a busy host; the page cache's readahead does the reading.
 * Where TOP and BASE are on one file system that can share extents (XFS
 * reflink=1, btrfs) and the clusters are block-aligned (qcow2 clusters of
 * 4 KiB and up always are), es_file_copy shares them instead: the merge
 * writes metadata only. Compressed clusters, zeroes and partial clusters
 * (subclusters, BASE's own bytes kept) go through the buffer. A shared
 * cluster is made durable by the same fdatasync of BASE as a copied one,
 * before TOP's clusters are freed (see es_file_copy). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/commit_internal.h"
#include "qcow2/commit_writer.h"
#include "qcow2/overlap.h"
#include "util/xalloc.h"

static int cmp_read(const void *pa, const void *pb)
{
    const commit_io *a = pa, *b = pb;
    if (a->img != b->img)
        return a->img->depth < b->img->depth ? -1 : 1;
    return a->off < b->off ? -1 : a->off > b->off;
}

static int cmp_write(const void *pa, const void *pb)
{
    const commit_io *a = pa, *b = pb;
    return a->off < b->off ? -1 : a->off > b->off;
}

static int cmp_copy(const void *pa, const void *pb)
{
    const commit_copy *a = pa, *b = pb;
    if (a->src != b->src)
        return a->src->depth < b->src->depth ? -1 : 1;
    return a->src_off < b->src_off ? -1 : a->src_off > b->src_off;
}

/* Merge copies contiguous both in the source and in BASE (sorted input). */
static size_t merge_copies(commit_copy *x, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && x[m - 1].src == x[i].src && x[m - 1].src_off + x[m - 1].len == x[i].src_off &&
            x[m - 1].dst_off + x[m - 1].len == x[i].dst_off) {
            x[m - 1].len += x[i].len;
            continue;
        }
        x[m++] = x[i];
    }
    return m;
}

/* Where in BASE the bytes of the op at guest offset g go. */
static uint64_t dest_of(const commit_ctx *c, const commit_op *op, uint64_t g)
{
    return c->raw_base ? g : op->dest + (g - op->guest);
}

/* Can the op go by kernel copies alone? Every segment is plain data, and
 * (qcow2) the op writes its whole cluster from them: nothing of BASE's own
 * view, no zeroes, nothing past the virtual end. A raw BASE takes the
 * covered bytes only, so plain data segments are enough. */
static bool op_copies_only(const commit_ctx *c, const commit_op *op)
{
    for (uint32_t j = 0; j < op->nseg; j++)
        if (c->segs[op->seg_first + j].kind != SEG_DATA)
            return false;
    if (c->raw_base)
        return op->nseg > 0;
    uint32_t all = c->nsub >= 32 ? UINT32_MAX : (1u << c->nsub) - 1;
    return op->action == OP_DATA && op->write_mask == all && op->full_mask == all &&
           op->eff_end == op->guest + c->unit;
}

/* Merge extents contiguous both on disk and in memory (sorted input). */
static size_t merge(commit_io *x, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && x[m - 1].img == x[i].img && x[m - 1].off + x[m - 1].len == x[i].off &&
            x[m - 1].mem + x[m - 1].len == x[i].mem) {
            x[m - 1].len += x[i].len;
            continue;
        }
        x[m++] = x[i];
    }
    return m;
}

static int read_host(es_image *img, uint8_t *mem, uint64_t len, uint64_t off, es_err *e)
{
    size_t got = 0;
    if (off < img->file_size &&
        es_file_pread_some(img->file, mem, (size_t)len, off, &got, e) < 0)
        return -1;
    if (got < len) /* past the end of the file: zeroes, as QEMU reads them */
        memset(mem + got, 0, (size_t)(len - got));
    return 0;
}

/* BASE's own view of the uncovered parts of the op's written subclusters. */
static int fill_from_base(commit_ctx *c, const commit_op *op, uint8_t *slot, es_err *e)
{
    uint32_t need = op->write_mask & ~op->full_mask;
    for (uint32_t k = 0; k < c->nsub;) {
        if (!(need & (1u << k))) {
            k++;
            continue;
        }
        uint32_t k1 = k;
        while (k1 < c->nsub && (need & (1u << k1)))
            k1++;
        uint64_t a = op->guest + k * c->sub, b = op->guest + k1 * c->sub;
        if (b > op->eff_end)
            b = op->eff_end;
        if (a < b && es_image_read(c->base, slot + (a - op->guest), b - a, a, e) < 0)
            return es_err_prefix(e, "reading BASE to complete cluster at guest offset 0x%llx",
                                 (unsigned long long)op->guest);
        k = k1;
    }
    return 0;
}

/* Write extents of one op: whole units, runs of subclusters, or (raw) the
 * covered bytes only. */
static size_t op_writes(const commit_ctx *c, const commit_op *op, uint8_t *slot, commit_io *w)
{
    size_t n = 0;
    if (c->raw_base) {
        for (uint32_t i = 0; i < op->nseg; i++) {
            const commit_seg *s = &c->segs[op->seg_first + i];
            w[n++] = (commit_io){c->base, s->guest, slot + (s->guest - op->guest), s->len};
        }
        return n;
    }
    for (uint32_t k = 0; k < c->nsub;) {
        if (!(op->write_mask & (1u << k))) {
            k++;
            continue;
        }
        uint32_t k1 = k;
        while (k1 < c->nsub && (op->write_mask & (1u << k1)))
            k1++;
        w[n++] = (commit_io){c->base, op->dest + k * c->sub, slot + k * c->sub, (k1 - k) * c->sub};
        k = k1;
    }
    return n;
}

int commit_data_chunk(commit_ctx *c, const uint32_t *idx, size_t n, es_err *e)
{
    size_t nseg = 0;
    for (size_t i = 0; i < n; i++)
        nseg += c->ops[idx[i]].nseg;
    size_t max_w = nseg > n * c->nsub ? nseg : n * c->nsub;
    commit_io *rd = es_xcalloc(nseg, sizeof *rd);
    commit_io *wr = es_xcalloc(max_w, sizeof *wr);
    commit_copy *cp = es_xcalloc(nseg, sizeof *cp);
    int r = -1;
    size_t nr = 0, nw = 0, ncp = 0;
    uint64_t covered = 0;
    for (size_t i = 0; i < n; i++) {
        const commit_op *op = &c->ops[idx[i]];
        if (op_copies_only(c, op)) {
            for (uint32_t j = 0; j < op->nseg; j++) {
                const commit_seg *s = &c->segs[op->seg_first + j];
                cp[ncp++] = (commit_copy){s->src, s->host, dest_of(c, op, s->guest), s->len};
                covered += s->len;
            }
            continue;
        }
        uint8_t *slot = c->bufs[c->cur] + i * c->unit;
        if (!c->raw_base) {
            if (op->eff_end < op->guest + c->unit) /* past the virtual end */
                memset(slot + (op->eff_end - op->guest), 0,
                       (size_t)(op->guest + c->unit - op->eff_end));
            if (fill_from_base(c, op, slot, e) < 0)
                goto out;
        }
        for (uint32_t j = 0; j < op->nseg; j++) {
            const commit_seg *s = &c->segs[op->seg_first + j];
            uint8_t *mem = slot + (s->guest - op->guest);
            covered += s->len;
            if (s->kind == SEG_ZERO) {
                memset(mem, 0, (size_t)s->len);
            } else if (s->kind == SEG_COMP) {
                /* Inflated by the read path (it keeps the last cluster). */
                if (es_image_read(s->src, mem, s->len, s->guest, e) < 0)
                    goto out;
            } else {
                rd[nr++] = (commit_io){s->src, s->host, mem, s->len};
            }
        }
        nw += op_writes(c, op, slot, wr + nw);
    }
    qsort(cp, ncp, sizeof *cp, cmp_copy);
    ncp = merge_copies(cp, ncp);
    qsort(rd, nr, sizeof *rd, cmp_read);
    nr = merge(rd, nr);
    for (size_t i = 0; i < nr; i++)
        if (read_host(rd[i].img, rd[i].mem, rd[i].len, rd[i].off, e) < 0)
            goto out;
    qsort(wr, nw, sizeof *wr, cmp_write);
    nw = merge(wr, nw);
    /* Guest data must land on no metadata of BASE (overlap.h). */
    for (size_t i = 0; i < ncp; i++)
        if (qcow2_write_guard(c->base, QCOW2_OL_DATA, cp[i].dst_off, cp[i].len, e) < 0)
            goto out;
    for (size_t i = 0; i < nw; i++)
        if (qcow2_write_guard(c->base, QCOW2_OL_DATA, wr[i].off, wr[i].len, e) < 0)
            goto out;
    /* The writer owns the arrays from here, and this buffer until the next
     * submit. */
    r = commit_writer_submit(c->writer, (commit_job){wr, nw, cp, ncp}, e);
    wr = NULL;
    cp = NULL;
    c->cur ^= 1;
    if (r < 0)
        goto out;
    c->done_bytes += covered;
    commit_report_progress(c);
    r = 0;
out:
    free(rd);
    free(wr);
    free(cp);
    return r;
}
