#include "snap/txn/jsonfile.h"

#include <errno.h>
#include <stdlib.h>

#include "util/readfile.h"
#include "util/xalloc.h"

int snap_read_json(const char *path, size_t max, const char *what, const char *hint,
                   json_object **out, bool *exists, es_err *e)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    if (es_read_file_if_exists(path, max, &text, &len, exists, e) < 0)
        return es_err_prefix(e, "cannot read %s", what);
    if (!*exists)
        return 0;
    json_tokener *tok = es_xcheck(json_tokener_new());
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    free(text);
    if (!o || jerr != json_tokener_success) {
        json_object_put(o);
        return es_err_set(e, 0, path, "%s is not valid JSON (%s); %s", what,
                          json_tokener_error_desc(jerr), hint);
    }
    *out = o;
    return 0;
}
