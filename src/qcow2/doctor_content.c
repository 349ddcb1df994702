/* Content evidence between candidates for a missing backing file.
 *
 * Why it is evidence: when the guest writes part of a cluster of an
 * overlay, QEMU fills the rest of that cluster from the backing chain as it
 * is at that moment (copy-on-write). So the child's allocated clusters hold,
 * beside what the guest wrote, the true backing file's bytes at the same
 * guest offsets.
 *
 * The score: over a sample of the child's data clusters (at most
 * QCOW2_DOCTOR_SAMPLE_CLUSTERS, spread evenly over all of them), the child's
 * data is compared with each candidate's guest view (read through the
 * candidate's own backing chain) one 512-byte sector at a time. A sector
 * that is zero on both sides is no evidence (any empty image has zeroes
 * there) and is not counted. The score is the number of equal sectors among
 * the rest. What the guest wrote differs from every candidate alike and
 * adds to no score; copied-up sectors add to the true backing file's score
 * (and to any copy of it: copies tie, and stay refused).
 *
 * The decision: the top score wins only by a clear margin (doctor_content.h):
 * enough equal sectors, and a multiple of the runner-up's. Zero-only
 * evidence, copies and images too alike to tell apart stay a tie. */
#include "qcow2/doctor_content.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/str.h"
#include "util/xalloc.h"

#define SECTOR 512

static bool holds_data(es_bs_kind k)
{
    return k == ES_BS_DATA || k == ES_BS_COMPRESSED;
}

/* The child's data clusters, in order; a pass either counts them (pick
 * NULL) or keeps those whose rank is the next of the evenly spread picks. */
typedef struct sample {
    uint64_t seen;   /* data clusters passed so far */
    uint64_t total;  /* all of them (from the counting pass) */
    uint64_t want;   /* how many to keep */
    uint64_t *pick;  /* kept cluster indexes, or NULL: count only */
    uint64_t npick;
} sample;

static void visit(sample *s, uint64_t cluster)
{
    /* Pick k is the cluster of rank k * total / want: spread evenly. */
    if (s->pick && s->npick < s->want && s->seen == s->npick * s->total / s->want)
        s->pick[s->npick++] = cluster;
    s->seen++;
}

static int walk(es_image *child, sample *s, es_err *e)
{
    uint64_t cs = child->cluster_size, last = UINT64_MAX, off = 0;
    while (off < child->virtual_size) {
        es_block_status bs;
        if (es_image_block_status(child, off, child->virtual_size - off, &bs, e) < 0)
            return -1;
        if (bs.len == 0)
            return es_err_set(e, EIO, child->filename, "internal error: empty block status");
        if (holds_data(bs.kind)) {
            for (uint64_t c = off / cs; c <= (off + bs.len - 1) / cs; c++) {
                if (c != last) /* extended L2: one cluster, several runs */
                    visit(s, c);
                last = c;
            }
        }
        off += bs.len;
    }
    return 0;
}

static bool zero_sector(const uint8_t *p, size_t n)
{
    return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* Compare one cluster's data runs of the child with cand's guest view. */
static int compare_cluster(es_image *child, es_image *cand, uint64_t cluster, uint8_t *a,
                           uint8_t *b, qcow2_doctor_content *ct, es_err *e)
{
    uint64_t cs = child->cluster_size, off = cluster * cs;
    uint64_t end = off + cs < child->virtual_size ? off + cs : child->virtual_size;
    bool matched = false;
    while (off < end) {
        es_block_status bs;
        if (es_image_block_status(child, off, end - off, &bs, e) < 0)
            return -1;
        uint64_t len = bs.len && bs.len <= end - off ? bs.len : end - off;
        if (holds_data(bs.kind)) {
            if (es_image_read(child, a, len, off, e) < 0 || es_image_read(cand, b, len, off, e) < 0)
                return -1;
            for (uint64_t i = 0; i < len; i += SECTOR) {
                size_t n = len - i < SECTOR ? (size_t)(len - i) : SECTOR;
                if (zero_sector(a + i, n) && zero_sector(b + i, n))
                    continue;
                ct->compared_sectors++;
                if (memcmp(a + i, b + i, n) == 0) {
                    ct->matching_sectors++;
                    matched = true;
                }
            }
        }
        off += len;
    }
    ct->matching_clusters += matched;
    return 0;
}

static void unreadable(qcow2_doctor_candidate *c, const char *what, const es_err *e)
{
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    free(c->content.unreadable);
    c->content.unreadable = es_xasprintf("%s: %s", what, es_err_str(e, buf, sizeof buf));
}

static void measure(es_image *child, const sample *s, const char *root,
                    qcow2_doctor_candidate *c, uint8_t *a, uint8_t *b)
{
    es_err e;
    es_err_clear(&e);
    es_image *cand = NULL;
    es_open_opts oo = {.root = root, .force_share = true,
                       .format = qcow2_doctor_format_name(c->format)};
    if (es_image_open(&cand, c->filename, &oo, &e) < 0) {
        unreadable(c, "its chain does not open", &e);
        return;
    }
    for (uint64_t i = 0; i < s->npick; i++) {
        if (compare_cluster(child, cand, s->pick[i], a, b, &c->content, &e) < 0) {
            unreadable(c, "reading failed", &e);
            es_image_close(cand);
            return;
        }
    }
    c->content.sampled_clusters = s->npick;
    c->content.measured = true;
    es_image_close(cand);
}

static bool tied(const qcow2_doctor_candidate *c, int score)
{
    return !c->rejected && c->score == score;
}

long qcow2_doctor_content_rank(const es_image *orphan, const char *root,
                               qcow2_doctor_candidate *c, size_t n, int score)
{
    size_t ntied = 0;
    for (size_t i = 0; i < n; i++)
        ntied += tied(&c[i], score);
    if (ntied < 2 || ntied > QCOW2_DOCTOR_CONTENT_MAX_CANDIDATES)
        return -1;
    es_err e;
    es_err_clear(&e);
    es_image *child = NULL;
    es_open_opts oo = {.no_backing = true, .root = root, .force_share = true};
    sample s = {0};
    if (es_image_open(&child, orphan->filename, &oo, &e) < 0 || walk(child, &s, &e) < 0) {
        for (size_t i = 0; i < n; i++)
            if (tied(&c[i], score))
                unreadable(&c[i], "the image's data could not be read", &e);
        es_image_close(child);
        return -1;
    }
    uint64_t cs = child->cluster_size;
    uint64_t bound = QCOW2_DOCTOR_SAMPLE_BYTES / cs;
    if (bound > QCOW2_DOCTOR_SAMPLE_CLUSTERS)
        bound = QCOW2_DOCTOR_SAMPLE_CLUSTERS;
    if (bound == 0)
        bound = 1;
    s.want = bound;
    if (s.want > s.seen)
        s.want = s.seen;
    s.total = s.seen;
    s.seen = 0;
    s.pick = es_xcalloc(s.want + 1, sizeof *s.pick);
    uint8_t *a = es_io_alloc(cs), *b = es_io_alloc(cs);
    if (walk(child, &s, &e) < 0)
        s.npick = 0; /* the first pass read the same tables: not expected */
    for (size_t i = 0; i < n; i++) {
        if (!tied(&c[i], score))
            continue;
        c[i].content.allocated_clusters = s.total;
        c[i].content.max_clusters = bound;
        measure(child, &s, root, &c[i], a, b);
    }
    free(a);
    free(b);
    free(s.pick);
    es_image_close(child);
    /* The decision: every tied candidate measured, one clearly ahead. */
    long best = -1;
    uint64_t top = 0, second = 0;
    for (size_t i = 0; i < n; i++) {
        if (!tied(&c[i], score))
            continue;
        if (!c[i].content.measured)
            return -1;
        uint64_t m = c[i].content.matching_sectors;
        if (best < 0 || m > top) {
            second = best < 0 ? 0 : top;
            top = m;
            best = (long)i;
        } else if (m > second) {
            second = m;
        }
    }
    if (top < QCOW2_DOCTOR_CONTENT_MIN_MATCH || top < QCOW2_DOCTOR_CONTENT_MARGIN * second)
        return -1;
    return best;
}
