/* Deterministic mutators shared by the QMP fuzz targets (header-only:
 * each test file is its own executable): a seeded generator, byte-level
 * changes to a line, and structural changes to a json-c tree. */
#ifndef ES_TEST_FUZZ_MUTATE_H
#define ES_TEST_FUZZ_MUTATE_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* Tokens that have broken JSON parsers before. */
static const char *const HOSTILE[] = {
    "{", "}", "[", "]", "\"", "\\", ",", ":", "\\u0000", "\\ud800", "\xff", "\xc3",
    "1e999", "-1e999", "9223372036854775808", "-9223372036854775809", "NaN", "null",
    "true", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "\"\":\"\"", "\r\n", "\n", " ",
};

typedef struct rng {
    uint64_t s;
} rng;

static __attribute__((unused)) uint64_t rnd(rng *r) /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static __attribute__((unused)) size_t below(rng *r, size_t n)
{
    return n ? (size_t)(rnd(r) % n) : 0;
}

static __attribute__((unused)) uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}


/* The generator's seed for case i of this run (FUZZ_SEED). */
static __attribute__((unused)) uint64_t seed_of(uint64_t i)
{
    return env_u64("FUZZ_SEED", 1) * 1000003ull + i;
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static __attribute__((unused)) void buf_insert(buf *b, size_t at, const char *s, size_t n)
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

/* 1 to 4 byte-level changes; donors: lines to splice pieces from. */
static __attribute__((unused)) void mutate_bytes(rng *r, buf *b, const char *const *donors,
                                                 size_t ndonors)
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
            const char *o = donors[below(r, ndonors)];
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

/* A mutated copy of src (not NUL-terminated: b.n bytes). */
static __attribute__((unused)) buf mutated_copy(rng *r, const char *src, const char *const *donors,
                                                size_t ndonors)
{
    buf b = {0};
    buf_insert(&b, 0, src, strlen(src));
    mutate_bytes(r, &b, donors, ndonors);
    return b;
}

/* Every value slot of a tree: the object member or array element holding it. */
typedef struct slot {
    json_object *parent;
    const char *key; /* object member, else NULL */
    size_t idx;      /* array element */
} slot;

static __attribute__((unused)) void collect(json_object *o, slot *v, size_t *n, size_t cap)
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

static __attribute__((unused)) json_object *random_value(rng *r, json_object *root)
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

static __attribute__((unused)) void mutate_tree(rng *r, json_object **root)
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

#endif
