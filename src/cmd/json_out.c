#include "cmd/json_out.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Decode one UTF-8 sequence at s; returns the code point (-1 if invalid)
 * and sets *len to the bytes consumed (at least 1). */
static long utf8_decode(const unsigned char *s, size_t *len)
{
    unsigned char c = s[0];
    int n;
    long cp;
    if (c < 0x80) {
        *len = 1;
        return c;
    } else if ((c & 0xe0) == 0xc0) {
        n = 1;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 2;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 3;
        cp = c & 0x07;
    } else {
        *len = 1;
        return -1;
    }
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *len = (size_t)i;
            return -1;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    *len = (size_t)n + 1;
    static const long min_for_len[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    return cp;
}

/* A JSON string literal for s, escaped like QEMU (invalid UTF-8 -> U+FFFD). */
static void es_json_print_string(FILE *out, const char *s)
{
    fputc('"', out);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t len;
        long cp = utf8_decode(p, &len);
        p += len;
        switch (cp) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (cp < 0)
                cp = 0xfffd;
            if (cp > 0xffff)
                fprintf(out, "\\u%04lX\\u%04lX", 0xd800 + ((cp - 0x10000) >> 10),
                        0xdc00 + ((cp - 0x10000) & 0x3ff));
            else if (cp < 0x20 || cp >= 0x7f)
                fprintf(out, "\\u%04lX", cp);
            else
                fputc((int)cp, out);
        }
    }
    fputc('"', out);
}

static void newline(FILE *out, int level)
{
    fprintf(out, "\n%*s", level * 4, "");
}

static void print_scalar(FILE *out, json_object *obj)
{
    switch (json_object_get_type(obj)) {
    case json_type_null: fputs("null", out); break;
    case json_type_boolean: fputs(json_object_get_boolean(obj) ? "true" : "false", out); break;
    case json_type_string: es_json_print_string(out, json_object_get_string(obj)); break;
    default: fputs(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN), out); break;
    }
}

/* QEMU's JSON writer: every member on its own line one level deeper; the
 * closing bracket on a new line at the container's level (even when empty). */
static void print_at(FILE *out, json_object *obj, int level)
{
    json_type t = json_object_get_type(obj);
    if (t == json_type_object) {
        fputc('{', out);
        int first = 1;
        json_object_object_foreach(obj, key, val)
        {
            if (!first)
                fputc(',', out);
            first = 0;
            newline(out, level + 1);
            es_json_print_string(out, key);
            fputs(": ", out);
            print_at(out, val, level + 1);
        }
        newline(out, level);
        fputc('}', out);
    } else if (t == json_type_array) {
        fputc('[', out);
        size_t n = json_object_array_length(obj);
        for (size_t i = 0; i < n; i++) {
            if (i)
                fputc(',', out);
            newline(out, level + 1);
            print_at(out, json_object_array_get_idx(obj, i), level + 1);
        }
        newline(out, level);
        fputc(']', out);
    } else {
        print_scalar(out, obj);
    }
}

void es_json_print(FILE *out, json_object *obj)
{
    print_at(out, obj, 0);
}

static int is_composite(json_object *o)
{
    json_type t = json_object_get_type(o);
    return t == json_type_object || t == json_type_array;
}

static void print_human_value(FILE *out, json_object *val, int level)
{
    if (is_composite(val)) {
        fputc('\n', out);
        es_json_print_human(out, val, level + 1);
    } else {
        fputc(' ', out);
        if (json_object_get_type(val) == json_type_string)
            fputs(json_object_get_string(val), out);
        else
            print_scalar(out, val);
        fputc('\n', out);
    }
}

void es_json_print_human(FILE *out, json_object *obj, int level)
{
    if (json_object_get_type(obj) == json_type_object) {
        json_object_object_foreach(obj, key, val)
        {
            fprintf(out, "%*s", level * 4, "");
            for (const char *k = key; *k; k++)
                fputc(*k == '-' ? ' ' : *k, out);
            fputc(':', out);
            print_human_value(out, val, level);
        }
    } else if (json_object_get_type(obj) == json_type_array) {
        size_t n = json_object_array_length(obj);
        for (size_t i = 0; i < n; i++) {
            fprintf(out, "%*s[%zu]:", level * 4, "", i);
            print_human_value(out, json_object_array_get_idx(obj, i), level);
        }
    }
}

static json_object *check(json_object *o)
{
    if (!o) {
        fputs("extsnap: out of memory\n", stderr);
        exit(1);
    }
    return o;
}

json_object *es_json_new_object(void)
{
    return check(json_object_new_object());
}

json_object *es_json_new_array(void)
{
    return check(json_object_new_array());
}

json_object *es_json_str(const char *val)
{
    return check(json_object_new_string(val));
}

void es_json_add(json_object *o, const char *key, json_object *val)
{
    if (json_object_object_add(o, key, check(val)) != 0)
        check(NULL);
}

void es_json_add_str(json_object *o, const char *key, const char *val)
{
    es_json_add(o, key, json_object_new_string(val));
}

void es_json_add_u64(json_object *o, const char *key, unsigned long long val)
{
    es_json_add(o, key, json_object_new_uint64((uint64_t)val));
}

void es_json_add_i64(json_object *o, const char *key, long long val)
{
    es_json_add(o, key, json_object_new_int64((int64_t)val));
}

void es_json_add_bool(json_object *o, const char *key, int val)
{
    es_json_add(o, key, json_object_new_boolean(val));
}

void es_json_append(json_object *array, json_object *val)
{
    if (json_object_array_add(array, check(val)) != 0)
        check(NULL);
}
