/* Backing file names, resolved the way QEMU resolves them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/image.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

bool es_backing_has_protocol(const char *name)
{
    return name[strcspn(name, ":/")] == ':';
}

/* QEMU's path_combine(): an absolute name stays as it is; a relative one is
 * appended to the directory part of `from` (nothing if from has no '/'),
 * without normalising "..", so the result is what qemu-img shows as
 * full-backing-filename. */
static char *combine(const char *from, const char *name)
{
    if (name[0] == '/' || !from || !from[0])
        return es_xstrdup(name);
    const char *slash = strrchr(from, '/');
    size_t dir_len = slash ? (size_t)(slash - from) + 1 : 0;
    size_t name_len = strlen(name);
    char *out = es_xmalloc(dir_len + name_len + 1);
    memcpy(out, from, dir_len);
    memcpy(out + dir_len, name, name_len + 1);
    return out;
}

int es_backing_resolve(const char *from, const char *name, const char *root, char **out_display,
                       char **out_open, es_err *e)
{
    *out_display = NULL;
    *out_open = NULL;
    if (!name || !name[0])
        return es_err_set(e, 0, from, "empty backing file name");
    if (es_backing_has_protocol(name))
        return es_err_set(e, 0, from,
                          "backing file '%s' uses a protocol; extsnap follows only local files",
                          name);
    char *display = combine(from, name);
    /* Under --root, every path (absolute or taken from the root) is walked
     * inside DIR; `..` and symlinks cannot leave it. */
    char *open_path = NULL;
    if (es_root_resolve(root, display, &open_path, e) < 0) {
        free(display);
        return es_err_prefix(e, "backing file '%s' of %s", name, from);
    }
    *out_display = display;
    *out_open = open_path;
    return 0;
}
