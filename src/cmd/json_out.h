/* Printing json-c trees the way qemu-img prints its own output, so that
 * extsnap's JSON and human text line up with qemu-img's:
 *  - es_json_print: QEMU's pretty JSON (4-space indentation, "key": value,
 *    non-ASCII and control characters as \uXXXX), keys in insertion order;
 *  - es_json_print_human: the "key: value" dump qemu-img uses for
 *    format-specific information (dashes in keys become spaces, list items
 *    are "[i]:"). */
#ifndef ES_CMD_JSON_OUT_H
#define ES_CMD_JSON_OUT_H

#include <json-c/json.h>
#include <stdio.h>

/* Pretty JSON for obj at nesting depth 0, without a trailing newline. */
void es_json_print(FILE *out, json_object *obj);
/* Human dump of an object or array, starting at the given indentation level
 * (4 spaces per level). */
void es_json_print_human(FILE *out, json_object *obj, int level);

/* json-c object construction that cannot fail silently: on allocation
 * failure these print an error and exit (a command-line helper only). */
json_object *es_json_new_object(void);
json_object *es_json_new_array(void);
void es_json_add_str(json_object *o, const char *key, const char *val);
void es_json_add_u64(json_object *o, const char *key, unsigned long long val);
void es_json_add_i64(json_object *o, const char *key, long long val);
void es_json_add_bool(json_object *o, const char *key, int val);
void es_json_add(json_object *o, const char *key, json_object *val);
void es_json_append(json_object *array, json_object *val);
json_object *es_json_str(const char *val);

#endif
