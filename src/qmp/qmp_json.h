/* Small, type-checked accessors for json-c objects received from QEMU.
 * Nothing QEMU sends is trusted: every getter checks the type and reports
 * absence instead of converting (json-c would turn "12x" into 12). */
#ifndef ES_QMP_JSON_H
#define ES_QMP_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

/* obj[key] if obj is an object and the member exists with that type, else NULL. */
json_object *qmp_json_member(json_object *obj, const char *key, json_type type);

/* obj[key] as a string, or NULL when absent or not a string. */
const char *qmp_json_str(json_object *obj, const char *key);

/* obj[key] as a non-negative integer; false when absent, not an int, or < 0. */
bool qmp_json_u64(json_object *obj, const char *key, uint64_t *out);

/* obj[key] as a boolean; def when absent or not a boolean. */
bool qmp_json_bool(json_object *obj, const char *key, bool def);

/* Copy at most max-1 bytes of s into buf, replacing control and non-ASCII
 * bytes by '?', adding "..." when cut: for quoting untrusted text in messages. */
const char *qmp_json_excerpt(const char *s, size_t len, char *buf, size_t max);

#endif
