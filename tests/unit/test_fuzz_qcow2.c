/* Deterministic mutation fuzzing of the qcow2 engine through the library
 * API: seed images made by qemu-img/qemu-io (several cluster sizes, v2/v3,
 * extended L2, refcount widths 1/16/64, zlib and zstd compressed clusters,
 * an internal snapshot, a bitmap, a lazy-refcounts image left dirty, two
 * backing chains) are damaged in targeted ways (header fields, extensions,
 * backing names, L1/L2 entries, compressed descriptors and data, refcount
 * table and blocks, snapshot table, bitmap directory; truncation; offsets
 * swapped to point at other metadata or past the end; chain loops), then
 * every reader runs on the mutant and, on copies, the writers (check -r all,
 * rebase -u, commit of a damaged top into a good base and of a good top into
 * a damaged base, create over a damaged backing).
 *
 * Every call must return 0 or -1 with a message, finish within a few
 * seconds, stay ASan/UBSan clean, leave read-only inputs unchanged, and a
 * commit into an undamaged qcow2 base must leave that base without
 * corruptions. Cases run in forked children, in batches (LeakSanitizer runs
 * at each child's exit); a failing case is reported with its seed, index
 * and mutations.
 *
 * Environment: FUZZ_SEED (default 1), FUZZ_ITERS (cases per test, see
 * below; the end of the range), FUZZ_FIRST=N starts the range at case N
 * (a batch's state carries from case to case), FUZZ_ITER=N runs case N
 * alone and prints its mutations,
 * FUZZ_SAVE=DIR with FUZZ_ITER also writes that case's files into DIR,
 * FUZZ_CASE_TIMEOUT seconds per case (default 10), FUZZ_STATS=1 prints how
 * far the damaged images got (opened, checked, committed ...). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "qcow2/check.h"
#include "qcow2/check_chain.h"
#include "qcow2/commit.h"
#include "qcow2/create.h"
#include "qcow2/info.h"
#include "qcow2/map_status.h"
#include "qcow2/rebase.h"
#include "qcow2_test_util.h"
#include "tu_skip.h"

/* ------------------------------------------------------------------ */
/* Seeds and their structure                                            */

enum region_kind {
    R_HEADER, R_EXTS, R_BACKING, R_L1, R_L2, R_REFTABLE, R_REFBLOCK, R_SNAPTABLE,
    R_SNAPL1, R_BITMAPDIR, R_BITMAPTABLE, R_COMPRESSED, R_DATA, R_KINDS
};
static const char *const region_names[R_KINDS] = {
    "header", "extensions", "backing-name", "L1", "L2", "reftable", "refblock",
    "snapshot-table", "snapshot-L1", "bitmap-dir", "bitmap-table", "compressed-data", "data"};

typedef struct region {
    uint64_t off, len;
    int kind;
} region;

#define MAX_REGIONS 256
#define MAX_ENTRIES 1024
#define MAX_META 64

typedef struct seed_file {
    char name[32];
    uint8_t *buf;
    size_t len;
    uint32_t cluster_bits;
    uint32_t version;
    region regions[MAX_REGIONS];
    int n_regions;
    uint64_t entries[MAX_ENTRIES]; /* file offsets of non-zero 8-byte table entries */
    int entry_kind[MAX_ENTRIES];
    int n_entries;
    uint64_t compressed[MAX_ENTRIES]; /* file offsets of compressed L2 entries */
    int n_compressed;
    uint64_t meta[MAX_META];          /* host offsets of metadata, for swaps */
    int n_meta;
} seed_file;

/* A unit of fuzzing: one image, or a chain (files[0] = base ... top last). */
typedef struct seed_set {
    const char *label;
    seed_file files[3];
    int n;
} seed_set;

#define MAX_SETS 16
static seed_set sets[MAX_SETS];
static int n_sets;

static uint64_t rd_be(const uint8_t *b, size_t len, uint64_t off, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | (off + (uint64_t)i < len ? b[off + i] : 0);
    return v;
}

static void add_region(seed_file *s, int kind, uint64_t off, uint64_t len)
{
    if (s->n_regions >= MAX_REGIONS || off >= s->len || len == 0)
        return;
    if (len > s->len - off)
        len = s->len - off;
    s->regions[s->n_regions++] = (region){off, len, kind};
}

static void add_meta(seed_file *s, uint64_t off)
{
    if (off && s->n_meta < MAX_META)
        s->meta[s->n_meta++] = off;
}

static void add_entries(seed_file *s, int kind, uint64_t off, uint64_t len, uint64_t stride)
{
    for (uint64_t p = off; p + 8 <= off + len && p + 8 <= s->len; p += stride) {
        if (rd_be(s->buf, s->len, p, 8) && s->n_entries < MAX_ENTRIES) {
            s->entry_kind[s->n_entries] = kind;
            s->entries[s->n_entries++] = p;
        }
    }
}

/* A small independent reading of the seed's layout, only to aim mutations
 * (seeds are valid qemu-img output). */
static void map_seed(seed_file *s)
{
    const uint8_t *b = s->buf;
    size_t n = s->len;
    s->version = (uint32_t)rd_be(b, n, 4, 4);
    s->cluster_bits = (uint32_t)rd_be(b, n, 20, 4);
    uint64_t cs = 1ull << s->cluster_bits;
    uint64_t hlen = s->version >= 3 ? rd_be(b, n, 100, 4) : 72;
    add_region(s, R_HEADER, 0, hlen);
    /* extensions */
    uint64_t p = hlen;
    while (p + 8 <= n && p + 8 <= cs) {
        uint32_t type = (uint32_t)rd_be(b, n, p, 4), len = (uint32_t)rd_be(b, n, p + 4, 4);
        p += 8 + ((len + 7ull) & ~7ull);
        if (!type)
            break;
    }
    add_region(s, R_EXTS, hlen, p - hlen);
    uint64_t bfo = rd_be(b, n, 8, 8), bfs = rd_be(b, n, 16, 4);
    if (bfo)
        add_region(s, R_BACKING, bfo, bfs);
    bool extl2 = s->version >= 3 && (rd_be(b, n, 72, 8) & 0x10);
    uint64_t esz = extl2 ? 16 : 8;
    /* L1 and the L2 tables it names */
    uint64_t l1 = rd_be(b, n, 40, 8), l1n = rd_be(b, n, 36, 4);
    add_region(s, R_L1, l1, l1n * 8);
    add_entries(s, R_L1, l1, l1n * 8, 8);
    add_meta(s, l1);
    uint32_t x = 62 - (s->cluster_bits - 8);
    for (uint64_t i = 0; i < l1n; i++) {
        uint64_t l2 = rd_be(b, n, l1 + 8 * i, 8) & 0x00fffffffffffe00ull;
        if (!l2 || l2 >= n)
            continue;
        add_region(s, R_L2, l2, cs);
        add_entries(s, R_L2, l2, cs, 8);
        add_meta(s, l2);
        for (uint64_t q = l2; q + 8 <= l2 + cs && q + 8 <= n; q += esz) {
            uint64_t ent = rd_be(b, n, q, 8);
            if (ent & (1ull << 62)) {
                if (s->n_compressed < MAX_ENTRIES)
                    s->compressed[s->n_compressed++] = q;
                uint64_t off = ent & ((1ull << x) - 1);
                uint64_t sectors = ((ent >> x) & ((1ull << (s->cluster_bits - 8)) - 1)) + 1;
                add_region(s, R_COMPRESSED, off, sectors * 512 - (off & 511));
            } else if (ent & 0x00fffffffffffe00ull) {
                add_region(s, R_DATA, ent & 0x00fffffffffffe00ull, cs);
            }
        }
    }
    /* refcounts */
    uint64_t rt = rd_be(b, n, 48, 8), rtc = rd_be(b, n, 56, 4);
    add_region(s, R_REFTABLE, rt, rtc * cs);
    add_entries(s, R_REFTABLE, rt, rtc * cs, 8);
    add_meta(s, rt);
    for (uint64_t i = 0; i < rtc * cs / 8; i++) {
        uint64_t rb = rd_be(b, n, rt + 8 * i, 8) & ~0x1ffull;
        if (rb && rb < n) {
            add_region(s, R_REFBLOCK, rb, cs);
            add_meta(s, rb);
        }
    }
    /* internal snapshots */
    uint64_t nsn = rd_be(b, n, 60, 4), so = rd_be(b, n, 64, 8);
    if (nsn) {
        add_meta(s, so);
        uint64_t q = so;
        for (uint64_t i = 0; i < nsn && q + 40 <= n; i++) {
            uint64_t sl1 = rd_be(b, n, q, 8), sl1n = rd_be(b, n, q + 8, 4);
            uint64_t idl = rd_be(b, n, q + 12, 2), nml = rd_be(b, n, q + 14, 2);
            uint64_t extra = rd_be(b, n, q + 36, 4);
            uint64_t len = (40 + extra + idl + nml + 7) & ~7ull;
            add_region(s, R_SNAPTABLE, q, len);
            add_region(s, R_SNAPL1, sl1, sl1n * 8);
            add_entries(s, R_SNAPL1, sl1, sl1n * 8, 8);
            add_meta(s, sl1);
            q += len;
        }
    }
    /* bitmaps: find the extension again */
    p = hlen;
    while (p + 8 <= n && p + 8 <= cs) {
        uint32_t type = (uint32_t)rd_be(b, n, p, 4), len = (uint32_t)rd_be(b, n, p + 4, 4);
        if (!type)
            break;
        if (type == 0x23852875u && len == 24) {
            uint64_t dsz = rd_be(b, n, p + 16, 8), doff = rd_be(b, n, p + 24, 8);
            add_region(s, R_BITMAPDIR, doff, dsz);
            add_meta(s, doff);
            if (doff + 24 <= n) {
                uint64_t bt = rd_be(b, n, doff, 8), btn = rd_be(b, n, doff + 8, 4);
                add_region(s, R_BITMAPTABLE, bt, btn * 8);
                add_entries(s, R_BITMAPTABLE, bt, btn * 8, 8);
                add_meta(s, bt);
            }
        }
        p += 8 + ((len + 7ull) & ~7ull);
    }
    add_meta(s, cs);
    add_meta(s, n & ~(cs - 1));
    add_meta(s, (n + cs) & ~(cs - 1));
    add_meta(s, n);
    add_meta(s, n + 16 * cs);
}

static void load_seed(seed_file *s, const char *name)
{
    snprintf(s->name, sizeof s->name, "%s", name);
    s->buf = tu_slurp(name, &s->len);
    map_seed(s);
}

static seed_set *new_set(const char *label)
{
    ck_assert_int_lt(n_sets, MAX_SETS);
    seed_set *ss = &sets[n_sets++];
    memset(ss, 0, sizeof *ss);
    ss->label = label;
    return ss;
}

static void make_single(const char *label, const char *name)
{
    seed_set *ss = new_set(label);
    load_seed(&ss->files[0], name);
    ss->n = 1;
}

#define QIO "qemu-io -f qcow2"

static void make_seeds(void)
{
    /* 64 KiB clusters, v3: data, a zero cluster, a partial cluster */
    tu_sh("qemu-img create -q -f qcow2 s64.qcow2 4M && " QIO
          " -c 'write -P 1 0 64k' -c 'write -P 2 1M 100k' -c 'write -z 2M 64k'"
          " -c 'write -P 3 3M 4k' s64.qcow2");
    make_single("64k-v3", "s64.qcow2");
    /* 512-byte clusters, 1-bit refcounts */
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=1 s512.qcow2 256k && " QIO
          " -c 'write -P 4 0 2k' -c 'write -P 5 100k 1k' -c 'write -z 200k 1k' s512.qcow2");
    make_single("512-rc1", "s512.qcow2");
    /* 4 KiB clusters, v2 */
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=4k,compat=0.10 s4kv2.qcow2 1M && " QIO
          " -c 'write -P 6 0 8k' -c 'write -P 7 512k 4k' s4kv2.qcow2");
    make_single("4k-v2", "s4kv2.qcow2");
    /* 4 KiB clusters, 64-bit refcounts, then an internal snapshot and a
     * write after it (shared clusters, COPIED cleared) */
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=4k,refcount_bits=64 ssnap.qcow2 1M && " QIO
          " -c 'write -P 8 4k 8k' -c 'write -z 64k 4k' ssnap.qcow2 && "
          "qemu-img snapshot -c s1 ssnap.qcow2 && " QIO " -c 'write -P 13 4k 4k' ssnap.qcow2");
    make_single("4k-rc64-snapshot", "ssnap.qcow2");
    /* extended L2: subcluster data and zeroes */
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=64k,extended_l2=on sxl2.qcow2 4M && " QIO
          " -c 'write -P 9 4k 4k' -c 'write -z 8k 4k' -c 'write -P 10 1M 64k'"
          " -c 'write -z 2M 64k' sxl2.qcow2");
    make_single("64k-extl2", "sxl2.qcow2");
    /* compressed: zlib with 4 KiB clusters, zstd with 512-byte clusters */
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=4k src.qcow2 256k && " QIO
          " -c 'write -P 11 0 32k' -c 'write -P 12 64k 4k' src.qcow2 && "
          "qemu-img convert -c -O qcow2 -o cluster_size=4k src.qcow2 szlib.qcow2 && "
          "qemu-img convert -c -O qcow2 -o cluster_size=512,compression_type=zstd src.qcow2 "
          "szstd.qcow2");
    make_single("4k-zlib", "szlib.qcow2");
    make_single("512-zstd", "szstd.qcow2");
    /* a persistent bitmap */
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=4k sbm.qcow2 1M && "
          "qemu-img bitmap --add sbm.qcow2 bm0 && " QIO " -c 'write -P 14 0 4k' sbm.qcow2");
    make_single("4k-bitmap", "sbm.qcow2");
    /* lazy refcounts, process killed: dirty bit set, refcounts stale */
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=4k,lazy_refcounts=on slazy.qcow2 1M && "
          "{ " QIO " -c 'write -P 15 0 12k' -c abort slazy.qcow2 2>/dev/null || true; }");
    make_single("4k-lazy-dirty", "slazy.qcow2");
    /* chain A: three 4 KiB images, zero cluster in the top */
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=4k c0.qcow2 1M && " QIO
          " -c 'write -P 16 0 64k' c0.qcow2 && "
          "qemu-img create -q -f qcow2 -o cluster_size=4k -b c0.qcow2 -F qcow2 c1.qcow2 && " QIO
          " -c 'write -P 17 4k 8k' c1.qcow2 && "
          "qemu-img create -q -f qcow2 -o cluster_size=4k -b c1.qcow2 -F qcow2 c2.qcow2 && " QIO
          " -c 'write -P 18 8k 8k' -c 'write -z 32k 4k' c2.qcow2");
    seed_set *a = new_set("chain-4k");
    load_seed(&a->files[0], "c0.qcow2");
    load_seed(&a->files[1], "c1.qcow2");
    load_seed(&a->files[2], "c2.qcow2");
    a->n = 3;
    /* chain B: v2 512-byte base under an extended-L2 top with a compressed
     * cluster */
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=512,compat=0.10 d0.qcow2 256k && " QIO
          " -c 'write -P 20 0 64k' -c 'write -P 21 128k 1k' d0.qcow2 && "
          "qemu-img create -q -f qcow2 -o cluster_size=64k,extended_l2=on -b d0.qcow2 -F qcow2 "
          "d1.qcow2 && " QIO
          " -c 'write -c -P 22 64k 64k' -c 'write -P 23 4k 2k' -c 'write -z 160k 4k' d1.qcow2");
    seed_set *b = new_set("chain-extl2-over-v2");
    load_seed(&b->files[0], "d0.qcow2");
    load_seed(&b->files[1], "d1.qcow2");
    b->n = 2;
}

/* ------------------------------------------------------------------ */
/* Mutations                                                            */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnd(rng *r) /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint64_t below(rng *r, uint64_t n)
{
    return n ? rnd(r) % n : 0;
}

/* The mutated case: per file, a buffer and its length. */
typedef struct mutant {
    int set;
    int target;        /* index of the damaged file */
    uint8_t *buf[3];
    size_t len[3];
    size_t cap[3];
    char desc[1024];
} mutant;

static void describe(mutant *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void describe(mutant *m, const char *fmt, ...)
{
    size_t used = strlen(m->desc);
    if (used + 4 >= sizeof m->desc)
        return;
    if (used)
        memcpy(m->desc + used, "; ", 3), used += 2;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->desc + used, sizeof m->desc - used, fmt, ap);
    va_end(ap);
}

static void put_be(mutant *m, uint64_t off, int bytes, uint64_t v)
{
    int t = m->target;
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        if (off + (uint64_t)i < m->len[t])
            m->buf[t][off + i] = (uint8_t)v;
}

static uint64_t get_be(const mutant *m, uint64_t off, int bytes)
{
    return rd_be(m->buf[m->target], m->len[m->target], off, bytes);
}

/* A value likely to hit a boundary, for a field of `bytes` bytes. */
static uint64_t interesting(rng *r, const seed_file *s, int bytes)
{
    uint64_t cs = 1ull << s->cluster_bits;
    const uint64_t common[] = {0, 1, 2, 7, 8, 9, 0x7f, 0x80, 0xff, 0x100, 0x1ff, 0x200, 0x3ff,
                               0x7fff, 0x8000, 0xffff, 0x10000, 14, 16, 21, 22, 31, 32, 63, 64,
                               1023, 1024, 65535, 65536, 0x7fffffff, 0x80000000, 0xffffffff,
                               cs - 1, cs, cs + 1, 2 * cs, s->len, s->len - 8, s->len + 1};
    const uint64_t wide[] = {1ull << 32, 1ull << 40, (1ull << 55) - 512, 1ull << 55, 1ull << 56,
                             1ull << 61, 1ull << 62, 1ull << 63, INT64_MAX, UINT64_MAX,
                             UINT64_MAX - 511, 0x00fffffffffffe00ull, 0x8000000000000000ull | cs,
                             0x4000000000000000ull | s->len};
    uint64_t v;
    switch (below(r, 4)) {
    case 0: v = s->n_meta ? s->meta[below(r, (uint64_t)s->n_meta)] : 0; break;
    case 1: v = bytes == 8 ? wide[below(r, sizeof wide / sizeof wide[0])] : rnd(r); break;
    default: v = common[below(r, sizeof common / sizeof common[0])]; break;
    }
    if (bytes < 8)
        v &= (1ull << (8 * bytes)) - 1;
    return v;
}

static const region *pick_region(rng *r, const seed_file *s, int want_kind)
{
    if (!s->n_regions)
        return NULL;
    if (want_kind >= 0) {
        int idx[MAX_REGIONS], k = 0;
        for (int i = 0; i < s->n_regions; i++)
            if (s->regions[i].kind == want_kind)
                idx[k++] = i;
        if (k)
            return &s->regions[idx[below(r, (uint64_t)k)]];
    }
    /* By kind first, so that many data regions do not drown the rest. */
    int kind = s->regions[below(r, (uint64_t)s->n_regions)].kind;
    for (int tries = 0; tries < 8; tries++) {
        const region *g = &s->regions[below(r, (uint64_t)s->n_regions)];
        if (g->kind == kind)
            return g;
    }
    return &s->regions[below(r, (uint64_t)s->n_regions)];
}

/* Header fields: offset, size. v3 fields are skipped for v2 images. */
static const struct { uint8_t off, size; const char *name; } header_fields[] = {
    {0, 4, "magic"}, {4, 4, "version"}, {8, 8, "backing_file_offset"},
    {16, 4, "backing_file_size"}, {20, 4, "cluster_bits"}, {24, 8, "size"},
    {32, 4, "crypt_method"}, {36, 4, "l1_size"}, {40, 8, "l1_table_offset"},
    {48, 8, "refcount_table_offset"}, {56, 4, "refcount_table_clusters"},
    {60, 4, "nb_snapshots"}, {64, 8, "snapshots_offset"}, {72, 8, "incompatible_features"},
    {80, 8, "compatible_features"}, {88, 8, "autoclear_features"}, {96, 4, "refcount_order"},
    {100, 4, "header_length"}, {104, 1, "compression_type"},
};

static void mut_header_field(rng *r, mutant *m, const seed_file *s)
{
    size_t nf = s->version >= 3 ? sizeof header_fields / sizeof header_fields[0] : 13;
    size_t i = below(r, nf);
    uint64_t v;
    if (header_fields[i].off == 72 || header_fields[i].off == 88) /* feature bits */
        v = get_be(m, header_fields[i].off, 8) ^ (1ull << below(r, below(r, 2) ? 6 : 64));
    else
        v = interesting(r, s, header_fields[i].size);
    put_be(m, header_fields[i].off, header_fields[i].size, v);
    describe(m, "%s: header %s = 0x%llx", s->name, header_fields[i].name, (unsigned long long)v);
}

/* An 8-byte table entry: keep its flag bits, point it somewhere else, or
 * set it to a boundary value. */
static void mut_entry(rng *r, mutant *m, const seed_file *s)
{
    if (!s->n_entries)
        return;
    int i = (int)below(r, (uint64_t)s->n_entries);
    uint64_t off = s->entries[i];
    uint64_t old = get_be(m, off, 8), v;
    uint64_t cs = 1ull << s->cluster_bits;
    switch (below(r, 6)) {
    case 0: /* swap the offset for other metadata or a place past EOF */
        v = (old & 0xff000000000001ffull) |
            ((s->n_meta ? s->meta[below(r, (uint64_t)s->n_meta)] : 0) & 0x00fffffffffffe00ull);
        break;
    case 1: v = old ^ (1ull << below(r, 64)); break;
    case 2: v = old + (below(r, 2) ? cs : 512) * (below(r, 2) ? 1 : (uint64_t)-1); break;
    case 3: v = (old & 0xc000000000000000ull) | (rnd(r) & 0x3fffffffffffffffull); break;
    default: v = interesting(r, s, 8); break;
    }
    put_be(m, off, 8, v);
    describe(m, "%s: %s entry at 0x%llx: 0x%llx -> 0x%llx", s->name, region_names[s->entry_kind[i]],
             (unsigned long long)off, (unsigned long long)old, (unsigned long long)v);
}

/* Compressed cluster descriptors: size and offset fields at their edges,
 * or the compressed stream itself. */
static void mut_compressed(rng *r, mutant *m, const seed_file *s)
{
    if (!s->n_compressed)
        return;
    uint64_t off = s->compressed[below(r, (uint64_t)s->n_compressed)];
    uint64_t old = get_be(m, off, 8), v = old;
    uint32_t x = 62 - (s->cluster_bits - 8);
    uint64_t omask = (1ull << x) - 1, smask = ((1ull << (s->cluster_bits - 8)) - 1) << x;
    switch (below(r, 5)) {
    case 0: v = (old & ~smask) | (below(r, 2) ? smask : 0); break;       /* sector count */
    case 1: v = (old & ~omask) | (s->len - below(r, 600)); break;         /* near EOF */
    case 2: v = (old & ~omask) | ((old & omask) + below(r, 4096) - 2048); break;
    case 3: v = (old & ~omask) | (interesting(r, s, 8) & omask); break;
    default: { /* damage the stream */
        uint64_t x0 = old & omask;
        uint64_t at = x0 + below(r, 64);
        uint8_t val = (uint8_t)rnd(r);
        if (at < m->len[m->target])
            m->buf[m->target][at] = val;
        describe(m, "%s: compressed stream byte 0x%llx = 0x%02x", s->name,
                 (unsigned long long)at, val);
        return;
    }
    }
    put_be(m, off, 8, v);
    describe(m, "%s: compressed entry at 0x%llx: 0x%llx -> 0x%llx", s->name,
             (unsigned long long)off, (unsigned long long)old, (unsigned long long)v);
}

static void mut_bits(rng *r, mutant *m, const seed_file *s)
{
    const region *g = pick_region(r, s, -1);
    if (!g)
        return;
    int flips = 1 + (int)below(r, 4);
    for (int k = 0; k < flips; k++) {
        uint64_t at = g->off + below(r, g->len);
        unsigned bit = (unsigned)below(r, 8);
        if (at < m->len[m->target])
            m->buf[m->target][at] ^= (uint8_t)(1u << bit);
        describe(m, "%s: flip bit %u of %s byte 0x%llx", s->name, bit, region_names[g->kind],
                 (unsigned long long)at);
    }
}

static void mut_bytes(rng *r, mutant *m, const seed_file *s)
{
    const region *g = pick_region(r, s, -1);
    if (!g)
        return;
    static const int sizes[] = {1, 2, 4, 8};
    int bytes = sizes[below(r, 4)];
    uint64_t at = g->off + (below(r, g->len) & ~(uint64_t)(bytes - 1));
    uint64_t v = interesting(r, s, bytes);
    put_be(m, at, bytes, v);
    describe(m, "%s: %s: %d bytes at 0x%llx = 0x%llx", s->name, region_names[g->kind], bytes,
             (unsigned long long)at, (unsigned long long)v);
}

static void mut_truncate(rng *r, mutant *m, const seed_file *s)
{
    size_t *len = &m->len[m->target];
    uint64_t at;
    const region *g = pick_region(r, s, -1);
    if (g && below(r, 2))
        at = g->off + (below(r, 2) ? 0 : g->len) + below(r, 17) - 8;
    else
        at = below(r, *len + 1);
    if (at < *len) {
        *len = (size_t)at;
        describe(m, "%s: truncate to 0x%llx", s->name, (unsigned long long)at);
    }
}

/* Header extensions: their type and length words, and their contents. */
static void mut_ext(rng *r, mutant *m, const seed_file *s)
{
    const region *g = pick_region(r, s, R_EXTS);
    if (!g || g->kind != R_EXTS)
        return;
    /* Walk to a random extension header. */
    uint64_t p = g->off, hdrs[32];
    int n = 0;
    while (p + 8 <= g->off + g->len && n < 32) {
        hdrs[n++] = p;
        uint32_t len = (uint32_t)get_be(m, p + 4, 4);
        if (!get_be(m, p, 4))
            break;
        p += 8 + ((len + 7ull) & ~7ull);
    }
    if (!n)
        return;
    uint64_t h = hdrs[below(r, (uint64_t)n)];
    static const uint32_t types[] = {0, 0xe2792aca, 0x6803f857, 0x23852875, 0x0537be77,
                                     0x44415441, 0x12345678};
    switch (below(r, 3)) {
    case 0: {
        uint32_t t = types[below(r, sizeof types / sizeof types[0])];
        put_be(m, h, 4, t);
        describe(m, "%s: extension at 0x%llx: type = 0x%08x", s->name, (unsigned long long)h, t);
        break;
    }
    case 1: {
        uint64_t v = interesting(r, s, 4);
        put_be(m, h + 4, 4, v);
        describe(m, "%s: extension at 0x%llx: length = 0x%llx", s->name, (unsigned long long)h,
                 (unsigned long long)v);
        break;
    }
    default: {
        uint64_t at = h + 8 + below(r, 24);
        uint64_t v = interesting(r, s, 8);
        put_be(m, at, 8, v);
        describe(m, "%s: extension data at 0x%llx = 0x%llx", s->name, (unsigned long long)at,
                 (unsigned long long)v);
        break;
    }
    }
}

/* Backing names: another member of the chain (loops), protocols, paths
 * that do not exist or are not files, a NUL byte, a size that cuts or
 * overruns the name. */
static void mut_backing(rng *r, mutant *m, const seed_set *ss, const seed_file *s)
{
    uint64_t bfo = get_be(m, 8, 8), bfs = get_be(m, 16, 4);
    if (!bfo || bfo >= m->len[m->target])
        return;
    char name[64];
    switch (below(r, 7)) {
    case 0: case 1: case 2: /* another member, often itself or one above it */
        snprintf(name, sizeof name, "%s", ss->files[below(r, (uint64_t)ss->n)].name);
        break;
    case 3: snprintf(name, sizeof name, "nbd:x:1"); break;
    case 4: snprintf(name, sizeof name, "."); break;
    case 5: snprintf(name, sizeof name, "/dev/null"); break;
    default: {
        uint64_t v = below(r, 3) == 0 ? 0 : bfs + below(r, 9) - 4;
        put_be(m, 16, 4, v);
        describe(m, "%s: backing_file_size = %llu", s->name, (unsigned long long)v);
        return;
    }
    }
    size_t len = strlen(name);
    uint64_t cs = 1ull << s->cluster_bits;
    if (bfo + len > cs || bfo + len > m->len[m->target])
        return;
    memcpy(m->buf[m->target] + bfo, name, len);
    put_be(m, 16, 4, len);
    describe(m, "%s: backing name = '%s'", s->name, name);
}

/* Copy one metadata cluster over another (an L2 table where a refcount
 * block was, the header over the L1 ...). */
static void mut_copy(rng *r, mutant *m, const seed_file *s)
{
    const region *a = pick_region(r, s, -1), *b = pick_region(r, s, -1);
    if (!a || !b || a == b)
        return;
    uint64_t n = a->len < b->len ? a->len : b->len;
    size_t len = m->len[m->target];
    if (a->off + n > len || b->off + n > len)
        return;
    memmove(m->buf[m->target] + b->off, s->buf + a->off, (size_t)n);
    describe(m, "%s: copy %s at 0x%llx over %s at 0x%llx (%llu bytes)", s->name,
             region_names[a->kind], (unsigned long long)a->off, region_names[b->kind],
             (unsigned long long)b->off, (unsigned long long)n);
}

/* A refcount in a refcount block, at the image's width: 0 makes the
 * allocator hand out a cluster in use (metadata included), the maximum
 * makes increments overflow. */
static void mut_refcount(rng *r, mutant *m, const seed_file *s)
{
    const region *g = pick_region(r, s, R_REFBLOCK);
    if (!g || g->kind != R_REFBLOCK)
        return;
    uint32_t order = s->version >= 3 ? (uint32_t)rd_be(s->buf, s->len, 96, 4) : 4;
    uint32_t bits = 1u << order;
    /* mostly the clusters in use, at the start of the first block */
    uint64_t used = (s->len + (1ull << s->cluster_bits) - 1) >> s->cluster_bits;
    uint64_t per_block = (g->len * 8) / bits;
    uint64_t idx = below(r, used < per_block && below(r, 4) ? used : per_block);
    uint64_t max = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
    const uint64_t vals[] = {0, 0, 1, 2, max, max - 1};
    uint64_t v = vals[below(r, sizeof vals / sizeof vals[0])] & max;
    uint8_t *blk = m->buf[m->target] + g->off;
    if (g->off + g->len > m->len[m->target])
        return;
    if (bits < 8) {
        uint64_t bit = idx * bits;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
        blk[bit / 8] = (uint8_t)((blk[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
    } else {
        put_be(m, g->off + idx * (bits / 8), (int)(bits / 8), v);
    }
    describe(m, "%s: refcount of cluster %llu (refblock at 0x%llx, %u bits) = 0x%llx", s->name,
             (unsigned long long)idx, (unsigned long long)g->off, bits, (unsigned long long)v);
}

/* A field of an internal snapshot table entry or a bitmap directory
 * entry: table offsets and sizes, string lengths, extra data size. */
static void mut_table_field(rng *r, mutant *m, const seed_file *s)
{
    static const struct { uint8_t off, size; const char *name; } snap[] = {
        {0, 8, "l1_table_offset"}, {8, 4, "l1_size"}, {12, 2, "id_len"}, {14, 2, "name_len"},
        {32, 4, "vm_state_size"}, {36, 4, "extra_data_size"}, {40, 8, "vm_state_size_large"},
        {48, 8, "disk_size"}},
        bitmap[] = {{0, 8, "table_offset"}, {8, 4, "table_size"}, {12, 4, "flags"},
                    {16, 1, "type"}, {17, 1, "granularity_bits"}, {18, 2, "name_size"},
                    {20, 4, "extra_data_size"}};
    bool is_snap = below(r, 2);
    const region *g = pick_region(r, s, is_snap ? R_SNAPTABLE : R_BITMAPDIR);
    if (!g || (g->kind != R_SNAPTABLE && g->kind != R_BITMAPDIR))
        return;
    is_snap = g->kind == R_SNAPTABLE;
    size_t n = is_snap ? sizeof snap / sizeof snap[0] : sizeof bitmap / sizeof bitmap[0];
    size_t i = below(r, n);
    uint8_t off = is_snap ? snap[i].off : bitmap[i].off;
    uint8_t size = is_snap ? snap[i].size : bitmap[i].size;
    uint64_t v = interesting(r, s, size);
    put_be(m, g->off + off, size, v);
    describe(m, "%s: %s entry at 0x%llx: %s = 0x%llx", s->name, region_names[g->kind],
             (unsigned long long)g->off, is_snap ? snap[i].name : bitmap[i].name,
             (unsigned long long)v);
}

static void mutant_free(mutant *m)
{
    for (int i = 0; i < 3; i++)
        free(m->buf[i]);
    memset(m, 0, sizeof *m);
}

/* Case `iter` of run `seed`: which seed set, which file, which damage. */
static void make_mutant(uint64_t seed, uint64_t iter, mutant *m)
{
    memset(m, 0, sizeof *m);
    rng r = {seed * 0x2545f4914f6cdd1dull ^ (iter + 1) * 0x9e3779b97f4a7c15ull};
    rnd(&r);
    /* Every set gets its share; chains (the last sets) a double one. */
    m->set = (int)(iter % (uint64_t)(n_sets + 2));
    if (m->set >= n_sets)
        m->set -= 2;
    const seed_set *ss = &sets[m->set];
    for (int i = 0; i < ss->n; i++) {
        m->len[i] = ss->files[i].len;
        m->cap[i] = ss->files[i].len;
        m->buf[i] = malloc(m->cap[i] ? m->cap[i] : 1);
        ck_assert_ptr_nonnull(m->buf[i]);
        memcpy(m->buf[i], ss->files[i].buf, ss->files[i].len);
    }
    m->target = (int)below(&r, (uint64_t)ss->n);
    const seed_file *s = &ss->files[m->target];
    int count = below(&r, 10) < 6 ? 1 : 2 + (int)below(&r, 3);
    for (int k = 0; k < count; k++) {
        switch (below(&r, 24)) {
        case 0: case 1: case 2: case 3: mut_header_field(&r, m, s); break;
        case 4: case 5: case 6: case 7: mut_entry(&r, m, s); break;
        case 8: case 9: mut_compressed(&r, m, s); break;
        case 10: case 11: case 12: mut_bits(&r, m, s); break;
        case 13: case 14: mut_bytes(&r, m, s); break;
        case 15: mut_truncate(&r, m, s); break;
        case 16: case 17: mut_ext(&r, m, s); break;
        case 18: mut_backing(&r, m, ss, s); break;
        case 19: case 20: mut_refcount(&r, m, s); break;
        case 21: mut_table_field(&r, m, s); break;
        default: mut_copy(&r, m, s); break;
        }
    }
    if (!m->desc[0])
        describe(m, "%s: unchanged", s->name);
}

/* ------------------------------------------------------------------ */
/* Running one case (in a child process)                                */

/* Shared with the parent: which case runs, and why it failed. */
enum { ST_CHANGED, ST_OPEN_OK, ST_OPEN_FAIL, ST_READ_FAIL, ST_CHECK_OK, ST_CHECK_FAIL,
       ST_REPAIR_FAIL, ST_COMMIT_OK, ST_COMMIT_FAIL, ST_COUNTERS };
static const char *const stat_names[ST_COUNTERS] = {
    "damaged", "opened", "refused at open", "read/status errors", "check completed",
    "check failed", "check -r all failed", "commits done", "commits refused/failed"};

typedef struct shared_state {
    volatile uint64_t current;
    volatile int done;
    char msg[2048];
    uint64_t stats[ST_COUNTERS]; /* FUZZ_STATS=1 prints them: is the damage reaching deep? */
} shared_state;

static shared_state *shared;
static FILE *devnull;
static char case_dir[4200], work_dir[4200];
static char shm_dir[64]; /* scratch directory on tmpfs, "" when not used */

static void case_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void case_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(shared->msg, sizeof shared->msg, fmt, ap);
    va_end(ap);
    _exit(3);
}

static void tally(int what)
{
    shared->stats[what]++;
}

/* Every call returns 0, or -1 with a message. */
static int expect(int r, const es_err *e, const char *what)
{
    if (r == 0)
        return 0;
    if (r != -1)
        case_fail("%s returned %d", what, r);
    if (!e->msg[0])
        case_fail("%s failed without a message", what);
    return -1;
}

#define MAX_CALLS 20000
#define MAX_READ_BYTES (8u << 20)
#define READ_CHUNK (256u << 10)

static uint8_t *read_buf;

/* Block status of one image over its whole disk (bounded). */
static void walk_block_status(es_image *img)
{
    uint64_t off = 0, vs = img->virtual_size;
    for (int calls = 0; off < vs && calls < MAX_CALLS; calls++) {
        es_block_status bs;
        es_err e = {0};
        if (expect(es_image_block_status(img, off, vs - off, &bs, &e), &e, "es_image_block_status")) {
            tally(ST_READ_FAIL);
            return;
        }
        if (bs.len == 0 || bs.len > vs - off)
            case_fail("block status at 0x%llx of %s: length %llu (max %llu)",
                      (unsigned long long)off, img->filename, (unsigned long long)bs.len,
                      (unsigned long long)(vs - off));
        /* A data cluster starts inside the file (its tail, or subclusters
         * of it, may lie past the end and read as zeroes). */
        if (bs.kind == ES_BS_DATA && img->format == ES_FMT_QCOW2 &&
            bs.host_off >= img->file_size + img->cluster_size)
            case_fail("block status at 0x%llx of %s: data at 0x%llx, past end of file",
                      (unsigned long long)off, img->filename, (unsigned long long)bs.host_off);
        off += bs.len;
    }
}

/* Map status through the chain, and reads of whatever the chain maps. */
static void walk_map_and_read(es_image *top, rng *r)
{
    uint64_t off = 0, vs = top->virtual_size, read = 0;
    for (int calls = 0; off < vs && calls < MAX_CALLS; calls++) {
        es_map_status st;
        es_err e = {0};
        if (expect(es_map_status_get(top, off, vs - off, &st, &e), &e, "es_map_status_get"))
            break;
        if (st.len == 0 || st.len > vs - off)
            case_fail("map status at 0x%llx: length %llu", (unsigned long long)off,
                      (unsigned long long)st.len);
        if (st.data && read < MAX_READ_BYTES) {
            for (uint64_t p = off; p < off + st.len && read < MAX_READ_BYTES; p += READ_CHUNK) {
                uint64_t n = off + st.len - p < READ_CHUNK ? off + st.len - p : READ_CHUNK;
                es_err re = {0};
                if (expect(es_image_read(top, read_buf, n, p, &re), &re, "es_image_read"))
                    break;
                read += n;
            }
        }
        off += st.len;
    }
    /* A few unaligned reads anywhere, some across the end of the disk. */
    for (int k = 0; k < 6; k++) {
        uint64_t n = 1 + below(r, 70000);
        uint64_t at = k < 4 ? below(r, vs ? vs : 1) : (vs > n / 2 ? vs - n / 2 : 0);
        es_err e = {0};
        expect(es_image_read(top, read_buf, n, at, &e), &e, "es_image_read (random)");
    }
}

static void gather_info(es_image *img)
{
    es_image_info info;
    es_err e = {0};
    if (expect(es_image_info_gather(img, &info, &e), &e, "es_image_info_gather") == 0)
        es_image_info_free(&info);
}

static void check_counts(const qcow2_check_result *res, const char *what)
{
    if (res->corruptions < 0 || res->leaks < 0 || res->check_errors < 0 ||
        res->corruptions_fixed < 0 || res->leaks_fixed < 0 || res->allocated_clusters < 0)
        case_fail("%s: negative count (corruptions %lld leaks %lld errors %lld)", what,
                  (long long)res->corruptions, (long long)res->leaks,
                  (long long)res->check_errors);
}

static void readonly_ops(const char *top, rng *r)
{
    es_image *img = NULL;
    es_err e = {0};
    es_open_opts o = {0};
    if (expect(es_image_open(&img, top, &o, &e), &e, "es_image_open") == 0) {
        tally(ST_OPEN_OK);
        for (es_image *i = img; i; i = i->backing) {
            walk_block_status(i);
            gather_info(i);
        }
        walk_map_and_read(img, r);
        es_image_close(img);
    } else {
        tally(ST_OPEN_FAIL);
    }
    /* img info without the chain */
    es_open_opts nb = {.no_backing = true};
    memset(&e, 0, sizeof e);
    if (expect(es_image_open(&img, top, &nb, &e), &e, "es_image_open (no backing)") == 0) {
        gather_info(img);
        es_image_close(img);
    }
    qcow2_check_result res;
    memset(&e, 0, sizeof e);
    tally(expect(qcow2_check_pass(top, 0, devnull, &res, &e), &e, "qcow2_check_pass (read-only)")
              ? ST_CHECK_FAIL : ST_CHECK_OK);
    check_counts(&res, "check");
    qcow2_chain_problems cp = {0};
    memset(&e, 0, sizeof e);
    if (expect(qcow2_check_backing_chain(top, &cp, &e), &e, "qcow2_check_backing_chain") == 0)
        qcow2_chain_problems_free(&cp);
}

static void write_file(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        case_fail("cannot write %s: %s", path, strerror(errno));
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n <= 0)
            case_fail("cannot write %s: %s", path, strerror(errno));
        done += (size_t)n;
    }
    close(fd);
}

static bool file_equals(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    struct stat st;
    bool same = fstat(fd, &st) == 0 && (size_t)st.st_size == len;
    uint8_t chunk[65536];
    for (size_t off = 0; same && off < len;) {
        size_t n = len - off < sizeof chunk ? len - off : sizeof chunk;
        same = pread(fd, chunk, n, (off_t)off) == (ssize_t)n && memcmp(chunk, buf + off, n) == 0;
        off += n;
    }
    close(fd);
    return same;
}

static void write_case(const char *dir, const mutant *m)
{
    const seed_set *ss = &sets[m->set];
    for (int i = 0; i < ss->n; i++)
        write_file(dir, ss->files[i].name, m->buf[i], m->len[i]);
}

static const char *in_dir(const char *dir, const char *name)
{
    static char bufs[4][4400];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* No corruptions (leaks are allowed: a failed write may leak) */
static void expect_clean(const char *path, const char *what)
{
    qcow2_check_result res;
    es_err e = {0};
    char msg[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    if (qcow2_check_pass(path, 0, devnull, &res, &e) < 0)
        case_fail("%s: check of %s failed: %s", what, path, es_err_str(&e, msg, sizeof msg));
    if (res.corruptions || res.check_errors)
        case_fail("%s: %s has %lld corruptions and %lld check errors afterwards", what, path,
                  (long long)res.corruptions, (long long)res.check_errors);
}

#define VIEW_MAX (16u << 20)

/* After a commit that succeeded, BASE (with what is below it) reads as
 * TOP did before. */
static void expect_view(const char *base_path, const uint8_t *view, uint64_t len)
{
    es_image *b = NULL;
    es_err e = {0};
    es_open_opts o = {0};
    char msg[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    if (es_image_open(&b, base_path, &o, &e) < 0)
        case_fail("commit succeeded but the base does not open: %s",
                  es_err_str(&e, msg, sizeof msg));
    uint8_t *got = malloc(len ? len : 1);
    if (!got)
        case_fail("out of memory");
    if (es_image_read(b, got, len, 0, &e) < 0)
        case_fail("commit succeeded but the base does not read: %s",
                  es_err_str(&e, msg, sizeof msg));
    es_image_close(b);
    for (uint64_t i = 0; i < len; i++)
        if (got[i] != view[i])
            case_fail("commit succeeded but guest byte 0x%llx of the base is 0x%02x, TOP showed "
                      "0x%02x", (unsigned long long)i, got[i], view[i]);
    free(got);
}

static void write_ops(const mutant *m, rng *r)
{
    const seed_set *ss = &sets[m->set];
    const char *top_name = ss->files[ss->n - 1].name;
    char top[4400];
    snprintf(top, sizeof top, "%s", in_dir(work_dir, top_name));
    es_err e = {0};

    /* check -r all */
    write_case(work_dir, m);
    qcow2_check_result res;
    bool repaired;
    if (expect(qcow2_check_image(top, QCOW2_CHECK_FIX_ALL, devnull, &res, &repaired, &e), &e,
               "qcow2_check_image -r all"))
        tally(ST_REPAIR_FAIL);
    check_counts(&res, "check -r all");
    memset(&e, 0, sizeof e);
    expect(qcow2_check_pass(top, 0, devnull, &res, &e), &e, "qcow2_check_pass after -r all");

    /* rebase -u: a header that opened before still opens after */
    write_case(work_dir, m);
    es_image *img = NULL;
    es_open_opts nb = {.no_backing = true};
    memset(&e, 0, sizeof e);
    bool opened = es_image_open(&img, top, &nb, &e) == 0;
    es_image_close(img);
    memset(&e, 0, sizeof e);
    const char *new_name = below(r, 2) ? "renamed-backing.qcow2" : NULL;
    if (expect(qcow2_rebase_unsafe(top, new_name, new_name ? "qcow2" : NULL, &e), &e,
               "qcow2_rebase_unsafe") == 0 && opened) {
        memset(&e, 0, sizeof e);
        char msg[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
        if (es_image_open(&img, top, &nb, &e) < 0)
            case_fail("rebase -u turned an image that opened into one that does not: %s",
                      es_err_str(&e, msg, sizeof msg));
        es_image_close(img);
    }

    if (ss->n < 2)
        return;
    /* commit TOP into a base of its chain */
    write_case(work_dir, m);
    es_open_opts o = {0};
    memset(&e, 0, sizeof e);
    if (expect(es_image_open(&img, top, &o, &e), &e, "es_image_open (commit)") == 0) {
        es_image *base = img->backing;
        if (base && base->backing && below(r, 2))
            base = base->backing;
        if (base) {
            es_commit_opts co = {.keep_top = below(r, 2) == 0, .skip_space_check = false};
            char base_path[4400];
            snprintf(base_path, sizeof base_path, "%s", base->open_path);
            bool base_good = base->format == ES_FMT_QCOW2 &&
                             strcmp(strrchr(base_path, '/') + 1, ss->files[m->target].name) != 0;
            bool top_good = m->target != ss->n - 1;
            /* What the guest sees through TOP before: BASE must show it after. */
            uint64_t view_len = img->virtual_size;
            uint8_t *view = base_good && view_len <= VIEW_MAX ? malloc(view_len ? view_len : 1)
                                                              : NULL;
            es_err re = {0};
            if (view && es_image_read(img, view, view_len, 0, &re) < 0) {
                free(view);
                view = NULL;
            }
            memset(&e, 0, sizeof e);
            bool committed = expect(es_commit(img, base, &co, &e), &e, "es_commit") == 0;
            tally(committed ? ST_COMMIT_OK : ST_COMMIT_FAIL);
            es_image_close(img);
            img = NULL;
            if (base_good)
                expect_clean(base_path, "commit into an undamaged base");
            if (view && committed)
                expect_view(base_path, view, view_len);
            free(view);
            if (top_good)
                expect_clean(top, "commit from an undamaged top");
        }
        es_image_close(img);
    }

    /* create over a damaged chain (opens it to take the size) */
    write_case(work_dir, m);
    qcow2_create_opts co;
    qcow2_create_opts_init(&co);
    co.cluster_size = 4096;
    co.backing_file = top_name;
    co.backing_format = "qcow2";
    const char *created = in_dir(work_dir, "created.qcow2");
    unlink(created);
    memset(&e, 0, sizeof e);
    expect(qcow2_create(created, &co, &e), &e, "qcow2_create over the damaged chain");
    unlink(created);
}

static void run_case(uint64_t seed, uint64_t iter, uint64_t writes_every)
{
    mutant m;
    make_mutant(seed, iter, &m);
    rng r = {seed ^ (iter << 20) ^ 0x5eed};
    const seed_set *ss = &sets[m.set];
    bool writes = ss->n > 1 || (writes_every && iter % writes_every == 0);
    for (int i = 0; i < ss->n; i++) {
        if (m.len[i] != ss->files[i].len || memcmp(m.buf[i], ss->files[i].buf, m.len[i])) {
            tally(ST_CHANGED);
            break;
        }
    }
    write_case(case_dir, &m);
    readonly_ops(in_dir(case_dir, ss->files[ss->n - 1].name), &r);
    for (int i = 0; i < ss->n; i++)
        if (!file_equals(case_dir, ss->files[i].name, m.buf[i], m.len[i]))
            case_fail("a read-only operation changed %s", ss->files[i].name);
    if (writes)
        write_ops(&m, &r);
    mutant_free(&m);
}

/* ------------------------------------------------------------------ */
/* Driver                                                               */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

#define MAX_REPORTED 10

/* Run cases [0, iters) in forked batches; report failures with their
 * mutations. The writers run on every chain case (commit needs one) and on
 * every `writes_every`th single-image case. */
static void run_cases(uint64_t iters, uint64_t writes_every)
{
    uint64_t seed = env_u64("FUZZ_SEED", 1);
    unsigned timeout = (unsigned)env_u64("FUZZ_CASE_TIMEOUT", 10);
    const char *one = getenv("FUZZ_ITER");
    uint64_t start = env_u64("FUZZ_FIRST", 0), end = env_u64("FUZZ_ITERS", iters);
    if (one && *one) {
        start = strtoull(one, NULL, 0);
        end = start + 1;
        mutant m;
        make_mutant(seed, start, &m);
        fprintf(stderr, "case %llu (seed %llu), %s: %s\n", (unsigned long long)start,
                (unsigned long long)seed, sets[m.set].label, m.desc);
        const char *save = getenv("FUZZ_SAVE"); /* a directory: keep the files to debug */
        if (save && *save) {
            shared_state dummy;
            shared = &dummy;
            write_case(save, &m);
            shared = NULL;
        }
        mutant_free(&m);
    }
    /* The writers flush a lot: on tmpfs that costs nothing. */
    const char *scratch = tu_dir;
    snprintf(shm_dir, sizeof shm_dir, "/dev/shm/es-fuzz-XXXXXX");
    if (access("/dev/shm", W_OK) == 0 && mkdtemp(shm_dir))
        scratch = shm_dir;
    else
        shm_dir[0] = '\0';
    snprintf(case_dir, sizeof case_dir, "%s/case", scratch);
    snprintf(work_dir, sizeof work_dir, "%s/work", scratch);
    ck_assert_int_eq(mkdir(case_dir, 0700), 0);
    ck_assert_int_eq(mkdir(work_dir, 0700), 0);
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(shared, MAP_FAILED);

    char report[8192] = "";
    int failures = 0;
    uint64_t totals[ST_COUNTERS] = {0};
    const uint64_t batch = 100;
    for (uint64_t b = start; b < end && failures < MAX_REPORTED;) {
        uint64_t b_end = b + batch < end ? b + batch : end;
        memset(shared, 0, sizeof *shared);
        shared->current = b;
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            /* check's own SIGALRM handler would kill the whole test. */
            signal(SIGALRM, SIG_DFL);
            devnull = fopen("/dev/null", "w");
            read_buf = malloc(READ_CHUNK > 70000 ? READ_CHUNK : 70000);
            if (!devnull || !read_buf)
                _exit(4);
            for (uint64_t i = b; i < b_end; i++) {
                shared->current = i;
                alarm(timeout);
                run_case(seed, i, writes_every);
                alarm(0);
            }
            shared->done = 1;
            free(read_buf);
            fclose(devnull);
            exit(0); /* LeakSanitizer checks here */
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        for (int k = 0; k < ST_COUNTERS; k++)
            totals[k] += shared->stats[k];
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            b = b_end;
            continue;
        }
        uint64_t bad = shared->current;
        char why[2300];
        if (shared->done)
            snprintf(why, sizeof why, "exit status %d after the batch %llu..%llu (leak? see the "
                     "sanitizer report above)", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                     (unsigned long long)b, (unsigned long long)(b_end - 1));
        else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
            snprintf(why, sizeof why, "took longer than %u s", timeout);
        else if (WIFSIGNALED(status))
            snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
        else if (WEXITSTATUS(status) == 3)
            snprintf(why, sizeof why, "%s", shared->msg);
        else
            snprintf(why, sizeof why, "exit status %d (sanitizer report above)",
                     WEXITSTATUS(status));
        mutant m;
        make_mutant(seed, bad, &m);
        char line[4096];
        snprintf(line, sizeof line, "FUZZ_SEED=%llu FUZZ_ITER=%llu (%s) [%s]: %s\n",
                 (unsigned long long)seed, (unsigned long long)bad, sets[m.set].label, m.desc, why);
        mutant_free(&m);
        fputs(line, stderr);
        if (strlen(report) + strlen(line) < sizeof report)
            strcat(report, line);
        failures++;
        b = shared->done ? b_end : bad + 1;
    }
    munmap(shared, sizeof *shared);
    if (env_u64("FUZZ_STATS", 0))
        for (int k = 0; k < ST_COUNTERS; k++)
            fprintf(stderr, "%-24s %llu\n", stat_names[k], (unsigned long long)totals[k]);
    /* The run proves something only if the damage is real and reaches both
     * the refusals and the deeper code. */
    if (end - start >= 1000 && failures == 0) {
        uint64_t n = end - start;
        ck_assert_msg(totals[ST_CHANGED] * 10 >= n * 8, "only %llu of %llu mutants are damaged",
                      (unsigned long long)totals[ST_CHANGED], (unsigned long long)n);
        ck_assert_msg(totals[ST_OPEN_OK] * 10 >= n && totals[ST_OPEN_FAIL] * 10 >= n &&
                          totals[ST_COMMIT_OK] && totals[ST_COMMIT_FAIL] && totals[ST_READ_FAIL],
                      "the damage does not reach both the refusals and the deeper code "
                      "(run with FUZZ_STATS=1)");
    }
    ck_assert_msg(failures == 0, "%d failing case(s):\n%s", failures, report);
}

static void setup(void)
{
    tu_setup();
    n_sets = 0;
    make_seeds();
}

static void teardown(void)
{
    for (int i = 0; i < n_sets; i++)
        for (int k = 0; k < sets[i].n; k++)
            free(sets[i].files[k].buf);
    n_sets = 0;
    if (shm_dir[0]) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", shm_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", shm_dir);
        shm_dir[0] = '\0';
    }
    tu_teardown();
}

/* 5000 cases: about 20 s under ASan on an idle 2-core machine (3 s
 * without); FUZZ_ITERS scales it for longer local runs. */
START_TEST(readers_and_writers_on_mutants)
{
    run_cases(5000, 4);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Regressions: what the fuzzer found, as fixed reproducers               */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *err_text(const es_err *e)
{
    static char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    return es_err_str(e, buf, sizeof buf);
}

/* l1_size grown so that the L1 table runs over 2 MiB of data clusters:
 * every data word becomes an L1 entry naming an L2 table far past the end
 * of the file. Such a table reads as zeroes; the check used to walk it
 * anyway, once per entry (minutes here, 10 s for the fuzzer's 576 KiB
 * image). Found as FUZZ_SEED=2 cases 611, 1625, 8749. */
START_TEST(check_does_not_walk_l2_tables_past_eof)
{
    tu_sh("qemu-img create -q -f qcow2 big.qcow2 4M && " QIO " -c 'write -P 1 0 2M' big.qcow2");
    ck_assert_uint_eq(tu_get_be("big.qcow2", 40, 8), 0x30000); /* L1 */
    tu_put_be("big.qcow2", 36, 4, 0x50000);                    /* 2.5 MiB of L1 */
    qcow2_check_result res;
    es_err e = {0};
    double t0 = now_seconds();
    ck_assert_msg(qcow2_check_pass(tu_path("big.qcow2"), 0, NULL, &res, &e) == 0, "%s",
                  err_text(&e));
    double took = now_seconds() - t0;
    ck_assert_msg(took < 5.0, "check took %.1f s", took);
    ck_assert_int_gt(res.corruptions, 0); /* every such entry is a reference past EOF */
    ck_assert_int_eq(res.check_errors, 0);
}
END_TEST

/* Refcount table entries naming refcount blocks ever further past the
 * end: `check -r all` grows the file so that such a block exists, within a
 * limit that used to be measured against the already grown file, so each
 * entry could double it (8 TiB from 192 KiB). Now the file grows to at
 * most 2 x its size + 1 GiB, plus the rebuilt refcount structure. */
START_TEST(repair_growth_does_not_compound)
{
    tu_sh("qemu-img create -q -f qcow2 g.qcow2 4M");
    struct stat st;
    ck_assert_int_eq(stat(tu_path("g.qcow2"), &st), 0);
    uint64_t orig = (uint64_t)st.st_size, size = orig;
    ck_assert_uint_eq(tu_get_be("g.qcow2", 48, 8), 0x10000); /* refcount table */
    for (int i = 1; i < 30; i++) {
        uint64_t off = (2 * size + (1ull << 30) - 0x10000) & ~0xffffull;
        tu_put_be("g.qcow2", 0x10000 + 8 * (uint64_t)i, 8, off);
        size = off + 0x10000;
    }
    qcow2_check_result res;
    bool repaired;
    es_err e = {0};
    double t0 = now_seconds();
    ck_assert_msg(qcow2_check_image(tu_path("g.qcow2"), QCOW2_CHECK_FIX_ALL, NULL, &res,
                                    &repaired, &e) == 0,
                  "%s", err_text(&e));
    double took = now_seconds() - t0;
    ck_assert_int_eq(stat(tu_path("g.qcow2"), &st), 0);
    /* (the rebuilt refcount structure comes after that) */
    ck_assert_msg((uint64_t)st.st_size <= 2 * orig + (1ull << 30) + (1u << 20),
                  "repair grew the file to %llu bytes", (unsigned long long)st.st_size);
    ck_assert_msg(took < 5.0, "repair took %.1f s", took);
    ck_assert_int_eq(res.corruptions, 0);
    ck_assert_int_eq(res.check_errors, 0);
    tu_sh("qemu-img check g.qcow2");
}
END_TEST

/* A bitmap directory of 65535 bitmaps whose tables (1M entries each) lie
 * past the end of the file: every entry read as zero, and every one was
 * walked (minutes for a 2 MiB image). Only the part inside the file is
 * walked now. */
START_TEST(check_does_not_walk_bitmap_tables_past_eof)
{
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=512 b.qcow2 1M && "
          "qemu-img bitmap --add b.qcow2 bm0");
    /* the bitmaps extension, after the 112-byte header */
    uint64_t p = tu_get_be("b.qcow2", 100, 4), ext = 0;
    while (!ext) {
        uint32_t type = (uint32_t)tu_get_be("b.qcow2", p, 4);
        uint32_t len = (uint32_t)tu_get_be("b.qcow2", p + 4, 4);
        ck_assert_uint_ne(type, 0);
        if (type == 0x23852875u)
            ext = p + 8;
        p += 8 + ((len + 7u) & ~7u);
    }
    const uint32_t n = 65535, entry = 32; /* 24 fixed + 1 name byte, padded */
    uint8_t *dir = calloc(n, entry);
    ck_assert_ptr_nonnull(dir);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *d = dir + (size_t)i * entry;
        for (int k = 0; k < 8; k++)
            d[k] = (uint8_t)((1ull << 40) >> (56 - 8 * k)); /* table offset */
        d[9] = 0x10;                                           /* 1M entries */
        d[16] = 1;                                             /* dirty tracking */
        d[17] = 16;                                            /* granularity */
        d[19] = 1;                                             /* name size */
        d[24] = 'x';
    }
    struct stat st;
    ck_assert_int_eq(stat(tu_path("b.qcow2"), &st), 0);
    uint64_t dir_off = ((uint64_t)st.st_size + 511) & ~511ull;
    tu_pwrite("b.qcow2", dir, (size_t)n * entry, dir_off);
    free(dir);
    tu_put_be("b.qcow2", ext, 4, n);
    tu_put_be("b.qcow2", ext + 8, 8, (uint64_t)n * entry);
    tu_put_be("b.qcow2", ext + 16, 8, dir_off);

    qcow2_check_result res;
    es_err e = {0};
    double t0 = now_seconds();
    ck_assert_msg(qcow2_check_pass(tu_path("b.qcow2"), 0, NULL, &res, &e) == 0, "%s",
                  err_text(&e));
    double took = now_seconds() - t0;
    ck_assert_msg(took < 5.0, "check took %.1f s", took);
    ck_assert_int_ge(res.corruptions, n); /* each table lies past the end */
}
END_TEST

/* A backing file name that names a FIFO: opening it used to wait for a
 * writer forever (img info --backing-chain, map, commit ...). */
START_TEST(fifo_backing_file_is_refused_not_waited_for)
{
    tu_sh("mkfifo fifo && qemu-img create -q -f qcow2 -u -b fifo -F raw top.qcow2 1M");
    es_image *img = NULL;
    es_err e = {0};
    es_open_opts o = {0};
    ck_assert_int_eq(es_image_open(&img, tu_path("top.qcow2"), &o, &e), -1);
    ck_assert_msg(strstr(e.msg, "fifo") != NULL, "%s", err_text(&e));
    qcow2_chain_problems cp = {0};
    memset(&e, 0, sizeof e);
    ck_assert_msg(qcow2_check_backing_chain(tu_path("top.qcow2"), &cp, &e) == 0, "%s",
                  err_text(&e));
    ck_assert_uint_eq(cp.n, 1);
    qcow2_chain_problems_free(&cp);
}
END_TEST

/* A base whose refcount block says its L1 table's cluster is free: the
 * commit allocated that cluster for guest data and overwrote the L1 table
 * (base data lost, "Image committed."). QEMU's overlap check refuses such
 * a write; the commit now refuses before writing anything. */
START_TEST(commit_refuses_base_with_unreferenced_metadata)
{
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=4k c0.qcow2 1M && " QIO
          " -c 'write -P 16 0 64k' c0.qcow2 && "
          "qemu-img create -q -f qcow2 -o cluster_size=4k -b c0.qcow2 -F qcow2 c1.qcow2 && " QIO
          " -c 'write -P 17 200k 64k' c1.qcow2");
    ck_assert_uint_eq(tu_get_be("c0.qcow2", 40, 8), 0x3000);     /* L1 in cluster 3 */
    ck_assert_uint_eq(tu_get_be("c0.qcow2", 0x1000, 8), 0x2000); /* refblock */
    tu_put_be("c0.qcow2", 0x2000 + 2 * 3, 2, 0);                  /* refcount of cluster 3 */
    size_t before_len, after_len;
    uint8_t *before = tu_slurp("c0.qcow2", &before_len);

    es_image *top = NULL;
    es_err e = {0};
    es_open_opts o = {0};
    ck_assert_msg(es_image_open(&top, tu_path("c1.qcow2"), &o, &e) == 0, "%s", err_text(&e));
    es_commit_opts co = {.keep_top = true};
    ck_assert_int_eq(es_commit(top, top->backing, &co, &e), -1);
    ck_assert_msg(strstr(e.msg, "L1 table") && strstr(e.msg, "0x3000"), "%s", err_text(&e));
    es_image_close(top);

    uint8_t *after = tu_slurp("c0.qcow2", &after_len);
    ck_assert_msg(before_len == after_len && memcmp(before, after, before_len) == 0,
                  "the refused commit changed the base");
    free(before);
    free(after);
}
END_TEST

/* A refcount table naming one (full) refcount block in every entry: the
 * search for a free cluster scanned that block once per entry (a 12 MiB
 * base with 2 MiB clusters: hours). Now refused before anything is written. */
START_TEST(commit_refuses_base_with_shared_refcount_blocks)
{
    tu_sh("qemu-img create -q -f qcow2 -o cluster_size=4k c0.qcow2 1M && " QIO
          " -c 'write -P 16 0 64k' c0.qcow2 && "
          "qemu-img create -q -f qcow2 -o cluster_size=4k -b c0.qcow2 -F qcow2 c1.qcow2 && " QIO
          " -c 'write -P 17 200k 64k' c1.qcow2");
    ck_assert_uint_eq(tu_get_be("c0.qcow2", 0x1000, 8), 0x2000); /* refblock */
    for (uint64_t i = 1; i < 512; i++)
        tu_put_be("c0.qcow2", 0x1000 + 8 * i, 8, 0x2000);
    size_t before_len, after_len;
    uint8_t *before = tu_slurp("c0.qcow2", &before_len);
    es_image *top = NULL;
    es_err e = {0};
    es_open_opts o = {0};
    ck_assert_msg(es_image_open(&top, tu_path("c1.qcow2"), &o, &e) == 0, "%s", err_text(&e));
    es_commit_opts co = {.keep_top = true};
    ck_assert_int_eq(es_commit(top, top->backing, &co, &e), -1);
    ck_assert_msg(strstr(e.msg, "more than once") != NULL, "%s", err_text(&e));
    es_image_close(top);
    uint8_t *after = tu_slurp("c0.qcow2", &after_len);
    ck_assert_msg(before_len == after_len && memcmp(before, after, before_len) == 0,
                  "the refused commit changed the base");
    free(before);
    free(after);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fuzz_qcow2");
    TCase *t = tcase_create("mutants");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 600);
    tcase_add_test(t, readers_and_writers_on_mutants);
    suite_add_tcase(s, t);
    TCase *reg = tcase_create("regressions");
    tcase_add_checked_fixture(reg, tu_setup, tu_teardown);
    tcase_set_timeout(reg, 60);
    tcase_add_test(reg, check_does_not_walk_l2_tables_past_eof);
    tcase_add_test(reg, repair_growth_does_not_compound);
    tcase_add_test(reg, check_does_not_walk_bitmap_tables_past_eof);
    tcase_add_test(reg, fifo_backing_file_is_refused_not_waited_for);
    tcase_add_test(reg, commit_refuses_base_with_unreferenced_metadata);
    tcase_add_test(reg, commit_refuses_base_with_shared_refcount_blocks);
    suite_add_tcase(s, reg);
    return s;
}

int main(void)
{
    tu_need_tools("qemu-img", "qemu-io", NULL);
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return tu_exit_status(failed);
}
