#include "qmp/qmp_bitmap.h"

static void add_action(json_object *actions, const char *type, json_object *data)
{
    json_object *a = json_object_new_object();
    json_object_object_add(a, "type", json_object_new_string(type));
    json_object_object_add(a, "data", data);
    json_object_array_add(actions, a);
}

static json_object *node_and_name(const char *node, const char *key, const char *name)
{
    json_object *d = json_object_new_object();
    json_object_object_add(d, "node", json_object_new_string(node));
    json_object_object_add(d, key, json_object_new_string(name));
    return d;
}

void qmp_bitmap_add_action(json_object *actions, const char *node, const char *name,
                           unsigned long long granularity, bool persistent, bool disabled)
{
    json_object *d = node_and_name(node, "name", name);
    if (granularity)
        json_object_object_add(d, "granularity", json_object_new_int64((int64_t)granularity));
    json_object_object_add(d, "persistent", json_object_new_boolean(persistent));
    json_object_object_add(d, "disabled", json_object_new_boolean(disabled));
    add_action(actions, "block-dirty-bitmap-add", d);
}

void qmp_bitmap_merge_action(json_object *actions, const char *node, const char *target,
                             const char *const *src_nodes, const char *const *src_names,
                             size_t n)
{
    json_object *d = node_and_name(node, "target", target);
    json_object *srcs = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(srcs, node_and_name(src_nodes[i], "name", src_names[i]));
    json_object_object_add(d, "bitmaps", srcs);
    add_action(actions, "block-dirty-bitmap-merge", d);
}

int qmp_transaction(qmp_client *c, json_object *actions, es_err *e)
{
    json_object *args = json_object_new_object();
    json_object_object_add(args, "actions", json_object_get(actions));
    int rc = qmp_execute(c, "transaction", args, NULL, e);
    json_object_put(args);
    return rc;
}
