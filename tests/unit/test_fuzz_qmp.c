/* Deterministic mutation fuzzing of what extsnap parses from QEMU: whole QMP
 * lines (qmp_msg_parse: byte flips, cuts, splices, hostile tokens), the
 * replies the node mapping walks (qmp_chain_from_replies and
 * qmp_locate_from_replies on JSON trees with nodes replaced by other types,
 * deleted, duplicated or nested deep), and QEMU's file names
 * (qmp_plain_filename on mutated "json:{...}" names).
 *
 * Nothing QEMU sends may crash the client: every call returns a result or
 * -1 with a message, and stays ASan/UBSan/LSan clean (the unit tests also
 * run sanitized in CI). A failure names FUZZ_SEED and the case index.
 * Environment: FUZZ_SEED (default 1), FUZZ_ITERS (cases per test, default
 * 4000). */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp_msg.h"
#include "qmp/qmp_nodes.h"
#include "qmp_canned.h"

/* Lines as QEMU 7.2 sends them. */
static const char *const LINES[] = {
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"Debian 1:7.2+dfsg-7\"}, \"capabilities\": [\"oob\"]}}",
    "{\"return\": {}, \"id\": \"extsnap-1\"}",
    "{\"return\": [{\"auto-finalize\": true, \"io-status\": \"ok\", \"device\": \"c0\", "
    "\"auto-dismiss\": true, \"busy\": false, \"len\": 67108864, \"offset\": 1048576, "
    "\"status\": \"running\", \"paused\": false, \"speed\": 0, \"ready\": false, "
    "\"type\": \"commit\"}], \"id\": \"extsnap-7\"}",
    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Device 'drive0' not found\"}, "
    "\"id\": \"extsnap-3\"}",
    "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 123456}, \"event\": "
    "\"BLOCK_JOB_COMPLETED\", \"data\": {\"device\": \"c0\", \"len\": 67108864, \"offset\": "
    "67108864, \"speed\": 0, \"type\": \"commit\", \"error\": \"No space left on device\"}}",
    "{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 5}, \"event\": "
    "\"JOB_STATUS_CHANGE\", \"data\": {\"status\": \"ready\", \"id\": \"c0\"}}",
    "{\"timestamp\": {\"seconds\": 1700000002, \"microseconds\": 0}, \"event\": "
    "\"BLOCK_JOB_READY\", \"data\": {\"device\": \"c0\", \"len\": 1, \"offset\": 1, "
    "\"speed\": 0, \"type\": \"commit\"}}",
};

/* Tokens that have broken JSON parsers before. */
static const char *const HOSTILE[] = {
    "{", "}", "[", "]", "\"", "\\", ",", ":", "\\u0000", "\\ud800", "\xff", "\xc3",
    "1e999", "-1e999", "9223372036854775808", "-9223372036854775809", "NaN", "null",
    "true", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "\"\":\"\"", "\r\n", "\n", " ",
};

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

static size_t below(rng *r, size_t n)
{
    return n ? (size_t)(rnd(r) % n) : 0;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static uint64_t seed_of(uint64_t i)
{
    return env_u64("FUZZ_SEED", 1) * 1000003ull + i;
}

/* ---- bytes ---- */

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void buf_insert(buf *b, size_t at, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memmove(b->p + at + n, b->p + at, b->n - at);
    memcpy(b->p + at, s, n);
    b->n += n;
}

static void mutate_bytes(rng *r, buf *b)
{
    int k = 1 + (int)below(r, 4);
    while (k--) {
        size_t at = below(r, b->n + 1);
        switch (below(r, 6)) {
        case 0: /* flip */
            if (b->n)
                b->p[below(r, b->n)] ^= (char)(1u << below(r, 8));
            break;
        case 1: /* cut the tail */
            b->n = at;
            break;
        case 2: { /* delete a span */
            size_t len = below(r, b->n - at + 1);
            memmove(b->p + at, b->p + at + len, b->n - at - len);
            b->n -= len;
            break;
        }
        case 3: { /* a hostile token */
            const char *t = HOSTILE[below(r, sizeof HOSTILE / sizeof *HOSTILE)];
            buf_insert(b, at, t, strlen(t));
            break;
        }
        case 4: { /* splice a piece of another line */
            const char *o = LINES[below(r, sizeof LINES / sizeof *LINES)];
            size_t from = below(r, strlen(o)), len = below(r, strlen(o) - from + 1);
            buf_insert(b, at, o + from, len);
            break;
        }
        default: /* a random byte */
        {
            char c = (char)rnd(r);
            buf_insert(b, at, &c, 1);
            break;
        }
        }
    }
}

/* Both outcomes must be common, or the mutations miss the parser's logic
 * (everything rejected at the first byte, or nothing really changed). */
static void assert_mix(const char *what, uint64_t ok, uint64_t iters)
{
    ck_assert_msg(ok * 20 >= iters && (iters - ok) * 20 >= iters,
                  "%s: %" PRIu64 " of %" PRIu64 " cases accepted: the mutations do not reach "
                  "both paths",
                  what, ok, iters);
}

START_TEST(msg_parse_mutated_lines)
{
    uint64_t iters = env_u64("FUZZ_ITERS", 4000), ok = 0;
    for (uint64_t i = 0; i < iters; i++) {
        rng r = {seed_of(i)};
        const char *src = LINES[below(&r, sizeof LINES / sizeof *LINES)];
        buf b = {0};
        buf_insert(&b, 0, src, strlen(src));
        mutate_bytes(&r, &b);
        qmp_msg *m = NULL;
        es_err e = {0};
        int rc = qmp_msg_parse(b.p, b.n, &m, &e);
        if (rc == 0) {
            ck_assert_msg(m != NULL, "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": no message",
                          env_u64("FUZZ_SEED", 1), i);
            /* What a parsed message promises its users. */
            if (m->kind == QMP_MSG_EVENT)
                ck_assert_ptr_nonnull(m->event);
            if (m->kind == QMP_MSG_ERROR)
                ck_assert(m->error_class && m->error_desc);
            ck_assert_ptr_nonnull(qmp_msg_kind_name(m->kind));
            qmp_msg_free(m);
            ok++;
        } else {
            ck_assert_msg(rc == -1 && m == NULL && e.msg[0],
                          "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": rc %d without a message",
                          env_u64("FUZZ_SEED", 1), i, rc);
        }
        free(b.p);
    }
    assert_mix("qmp_msg_parse", ok, iters);
}
END_TEST

/* ---- JSON trees ---- */

/* Every value slot of a tree: the object member or array element holding it. */
typedef struct slot {
    json_object *parent;
    const char *key; /* object member, else NULL */
    size_t idx;      /* array element */
} slot;

static void collect(json_object *o, slot *v, size_t *n, size_t cap)
{
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, val)
        {
            if (*n < cap)
                v[(*n)++] = (slot){o, key, 0};
            collect(val, v, n, cap);
        }
    } else if (json_object_is_type(o, json_type_array)) {
        size_t len = json_object_array_length(o);
        for (size_t i = 0; i < len; i++) {
            if (*n < cap)
                v[(*n)++] = (slot){o, NULL, i};
            collect(json_object_array_get_idx(o, i), v, n, cap);
        }
    }
}

static json_object *random_value(rng *r, json_object *root)
{
    static const char *const strings[] = {
        "", "#block1", "#block3", "drive0", "/i/base.qcow2", "/i/top.qcow2", "qcow2", "file",
        "backing", "root", "json:{", "json:{\"driver\": \"file\", \"filename\": \"/i/x\"}",
        "json:{\"file\": {\"filename\": 7}}", "json:[]", "block-backend", "block-driver"};
    switch (below(r, 9)) {
    case 0: return NULL; /* json null */
    case 1: return json_object_new_int64((int64_t)rnd(r));
    case 2: return json_object_new_int64(below(r, 3) == 0 ? INT64_MIN : (int64_t)below(r, 200));
    case 3: return json_object_new_double(-1.5e300);
    case 4: return json_object_new_boolean(below(r, 2));
    case 5: return json_object_new_string(strings[below(r, sizeof strings / sizeof *strings)]);
    case 6: return json_object_new_object();
    case 7: return json_object_new_array();
    default: { /* a copy of some other part of the tree */
        slot v[512];
        size_t n = 0;
        collect(root, v, &n, 512);
        if (!n)
            return json_object_new_array();
        slot s = v[below(r, n)];
        json_object *src = s.key ? json_object_object_get(s.parent, s.key)
                                 : json_object_array_get_idx(s.parent, s.idx);
        json_object *copy = NULL;
        if (src && json_object_deep_copy(src, &copy, NULL) != 0)
            copy = NULL;
        return copy;
    }
    }
}

static void mutate_tree(rng *r, json_object **root)
{
    int k = 1 + (int)below(r, 3);
    while (k--) {
        slot v[512];
        size_t n = 0;
        collect(*root, v, &n, 512);
        if (!n || below(r, 20) == 0) { /* the whole reply of another type */
            json_object_put(*root);
            *root = random_value(r, NULL);
            if (!*root)
                *root = json_object_new_object();
            continue;
        }
        slot s = v[below(r, n)];
        int op = (int)below(r, 4);
        if (op == 0 && s.key) {
            json_object_object_del(s.parent, s.key);
        } else if (op == 0) {
            json_object_array_del_idx(s.parent, s.idx, 1);
        } else if (op == 1 && !s.key) { /* duplicate an element */
            json_object *copy = NULL;
            if (json_object_deep_copy(json_object_array_get_idx(s.parent, s.idx), &copy, NULL) ==
                0)
                json_object_array_add(s.parent, copy);
        } else if (op == 2) { /* nest deep */
            json_object *deep = json_object_new_array(), *cur = deep;
            for (int d = 0; d < 200; d++) {
                json_object *next = json_object_new_array();
                json_object_array_add(cur, next);
                cur = next;
            }
            if (s.key)
                json_object_object_add(s.parent, s.key, deep);
            else
                json_object_array_put_idx(s.parent, s.idx, deep);
        } else {
            json_object *val = random_value(r, *root);
            if (s.key)
                json_object_object_add(s.parent, s.key, val);
            else
                json_object_array_put_idx(s.parent, s.idx, val);
        }
    }
}

static json_object *parse_canned(const char *text)
{
    json_object *o = json_tokener_parse(text);
    ck_assert_ptr_nonnull(o);
    return o;
}

START_TEST(node_mapping_mutated_replies)
{
    static const char *const names[] = {"drive0", "drive1", "cd0", "bare", "#block1",
                                        "#block3", "nope", ""};
    static const char *const paths[] = {"/i/base.qcow2", "/i/top.qcow2", "/i/other.qcow2",
                                        "/nowhere"};
    uint64_t iters = env_u64("FUZZ_ITERS", 4000), chains = 0, located = 0;
    for (uint64_t i = 0; i < iters; i++) {
        rng r = {seed_of(i)};
        json_object *t[3] = {parse_canned(QUERY_BLOCK), parse_canned(NAMED),
                             parse_canned(GRAPH)};
        int which = (int)below(&r, 4); /* 3: all of them */
        for (int j = 0; j < 3; j++)
            if (which == 3 || which == j)
                mutate_tree(&r, &t[j]);
        json_object *graph = below(&r, 4) == 0 ? NULL : t[2];
        es_err e = {0};
        qmp_chain ch;
        memset(&ch, 0, sizeof ch);
        const char *name = names[below(&r, sizeof names / sizeof *names)];
        int rc = qmp_chain_from_replies(t[0], t[1], graph, name, &ch, &e);
        ck_assert_msg(rc == 0 || (rc == -1 && e.msg[0]),
                      "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": chain rc %d without a message",
                      env_u64("FUZZ_SEED", 1), i, rc);
        if (rc == 0) {
            for (size_t k = 0; k < ch.n; k++)
                ck_assert_ptr_nonnull(ch.nodes[k].node_name);
            qmp_chain_free(&ch);
            chains++;
        }
        qmp_file_location *locs = NULL;
        size_t n = 0;
        e = (es_err){0};
        const char *path = paths[below(&r, sizeof paths / sizeof *paths)];
        rc = qmp_locate_from_replies(t[0], t[1], graph, path, below(&r, 2) ? "/" : NULL, &locs,
                                     &n, &e);
        ck_assert_msg(rc == 0 || (rc == -1 && e.msg[0]),
                      "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": locate rc %d without a message",
                      env_u64("FUZZ_SEED", 1), i, rc);
        if (rc == 0) {
            for (size_t k = 0; k < n; k++)
                ck_assert_ptr_nonnull(locs[k].node_name);
            qmp_file_locations_free(locs, n);
            located += n > 0;
        }
        for (int j = 0; j < 3; j++)
            json_object_put(t[j]);
    }
    assert_mix("qmp_chain_from_replies", chains, iters);
    ck_assert_msg(located * 20 >= iters, "qmp_locate_from_replies found a file in %" PRIu64
                  " of %" PRIu64 " cases only", located, iters);
}
END_TEST

START_TEST(plain_filename_mutated_names)
{
    static const char *const seeds[] = {
        "/var/img/a.qcow2",
        "json:{\"backing\": {\"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", "
        "\"filename\": \"/x/base.qcow2\"}}, \"driver\": \"qcow2\", \"file\": {\"driver\": "
        "\"file\", \"filename\": \"/x/top.qcow2\"}}",
        "json:{\"driver\": \"qcow2\", \"file\": {\"image\": {\"driver\": \"file\", "
        "\"filename\": \"/x/base.qcow2\"}, \"driver\": \"blkdebug\"}}",
    };
    uint64_t iters = env_u64("FUZZ_ITERS", 4000);
    for (uint64_t i = 0; i < iters; i++) {
        rng r = {seed_of(i)};
        const char *src = seeds[below(&r, sizeof seeds / sizeof *seeds)];
        buf b = {0};
        buf_insert(&b, 0, src, strlen(src));
        mutate_bytes(&r, &b);
        buf_insert(&b, b.n, "", 1); /* a C string */
        char *p = qmp_plain_filename(b.p);
        if (p)
            ck_assert_msg(strlen(p) < b.n, "FUZZ_SEED=%" PRIu64 " case %" PRIu64 ": %s",
                          env_u64("FUZZ_SEED", 1), i, p);
        free(p);
        free(b.p);
    }
}
END_TEST

static Suite *fuzz_qmp_suite(void)
{
    Suite *s = suite_create("fuzz_qmp");
    TCase *tc = tcase_create("mutations");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, msg_parse_mutated_lines);
    tcase_add_test(tc, node_mapping_mutated_replies);
    tcase_add_test(tc, plain_filename_mutated_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fuzz_qmp_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
