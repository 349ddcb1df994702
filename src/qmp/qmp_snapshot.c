#include "qmp/qmp_snapshot.h"

#include <errno.h>
#include <string.h>

static int check_spec(const qmp_snapshot_spec *s, size_t i, es_err *e)
{
    if (!s->device == !s->node_name)
        return es_err_set(e, EINVAL, NULL, "snapshot #%zu: give exactly one of device and node",
                          i);
    if (!s->overlay_file || !s->overlay_file[0])
        return es_err_set(e, EINVAL, NULL, "snapshot #%zu: no overlay file given", i);
    return 0;
}

static json_object *snapshot_action(const qmp_snapshot_spec *s)
{
    json_object *data = json_object_new_object();
    if (s->device)
        json_object_object_add(data, "device", json_object_new_string(s->device));
    else
        json_object_object_add(data, "node-name", json_object_new_string(s->node_name));
    json_object_object_add(data, "snapshot-file", json_object_new_string(s->overlay_file));
    if (s->overlay_node_name)
        json_object_object_add(data, "snapshot-node-name",
                               json_object_new_string(s->overlay_node_name));
    json_object_object_add(data, "format", json_object_new_string(s->format ? s->format : "qcow2"));
    json_object_object_add(data, "mode",
                           json_object_new_string(s->reuse_existing ? "existing" : "absolute-paths"));
    json_object *action = json_object_new_object();
    json_object_object_add(action, "type", json_object_new_string("blockdev-snapshot-sync"));
    json_object_object_add(action, "data", data);
    return action;
}

int qmp_snapshot_transaction(qmp_client *c, const qmp_snapshot_spec *specs, size_t n,
                             json_object *extra, es_err *e)
{
    if (n == 0)
        return es_err_set(e, EINVAL, NULL, "snapshot: no disk given");
    for (size_t i = 0; i < n; i++)
        if (check_spec(&specs[i], i, e) < 0)
            return -1;
    json_object *actions = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(actions, snapshot_action(&specs[i]));
    for (size_t i = 0; extra && i < json_object_array_length(extra); i++)
        json_object_array_add(actions, json_object_get(json_object_array_get_idx(extra, i)));
    json_object *args = json_object_new_object();
    json_object_object_add(args, "actions", actions);
    int rc = qmp_execute(c, "transaction", args, NULL, e);
    json_object_put(args);
    if (rc < 0)
        es_err_prefix(e, "snapshot of %zu disk%s (nothing changed in QEMU)", n, n == 1 ? "" : "s");
    return rc;
}
