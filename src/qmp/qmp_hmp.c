#include "qmp/qmp_hmp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp_json.h"
#include "util/xalloc.h"

static bool looks_like_failure(const char *out)
{
    return strncmp(out, "Error: ", 7) == 0 || strncmp(out, "unknown command", 15) == 0;
}

int qmp_hmp(qmp_client *c, const char *command_line, char **output, es_err *e)
{
    if (output)
        *output = NULL;
    json_object *args = json_object_new_object();
    json_object_object_add(args, "command-line", json_object_new_string(command_line));
    json_object *ret = NULL;
    int rc = qmp_execute(c, "human-monitor-command", args, &ret, e);
    json_object_put(args);
    if (rc < 0)
        return -1;
    if (!json_object_is_type(ret, json_type_string)) {
        json_object_put(ret);
        return es_err_set(e, 0, qmp_client_name(c),
                          "human-monitor-command did not return a string");
    }
    const char *text = json_object_get_string(ret);
    if (looks_like_failure(text)) {
        char ex[300];
        size_t len = strlen(text);
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            len--;
        es_err_set(e, 0, qmp_client_name(c), "HMP command '%s' failed: %s", command_line,
                   qmp_json_excerpt(text, len, ex, sizeof ex));
        json_object_put(ret);
        return -1;
    }
    if (output)
        *output = es_xstrdup(text);
    json_object_put(ret);
    return 0;
}
