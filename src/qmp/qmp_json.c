#include "qmp/qmp_json.h"

#include <string.h>

json_object *qmp_json_member(json_object *obj, const char *key, json_type type)
{
    json_object *v = NULL;
    if (!obj || !json_object_is_type(obj, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, type))
        return NULL;
    return v;
}

const char *qmp_json_str(json_object *obj, const char *key)
{
    json_object *v = qmp_json_member(obj, key, json_type_string);
    return v ? json_object_get_string(v) : NULL;
}

bool qmp_json_u64(json_object *obj, const char *key, uint64_t *out)
{
    json_object *v = qmp_json_member(obj, key, json_type_int);
    if (!v)
        return false;
    /* Values above INT64_MAX are kept as uint64 by json-c. */
    int64_t s = json_object_get_int64(v);
    if (s < 0)
        return false;
    if (s == INT64_MAX)
        *out = json_object_get_uint64(v);
    else
        *out = (uint64_t)s;
    return true;
}

bool qmp_json_bool(json_object *obj, const char *key, bool def)
{
    json_object *v = qmp_json_member(obj, key, json_type_boolean);
    return v ? json_object_get_boolean(v) : def;
}

const char *qmp_json_excerpt(const char *s, size_t len, char *buf, size_t max)
{
    if (max == 0)
        return "";
    size_t room = max - 1, n = 0;
    bool cut = len > room;
    if (cut)
        room = room > 3 ? room - 3 : 0;
    for (; n < len && n < room; n++) {
        unsigned char ch = (unsigned char)s[n];
        buf[n] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (cut)
        for (size_t k = 0; k < 3 && n < max - 1; k++)
            buf[n++] = '.';
    buf[n] = '\0';
    return buf;
}
