#include "domxml/readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "util/fileio.h"

int dx_read_file(const char *path, char **out, size_t *len, es_err *e)
{
    *out = NULL;
    *len = 0;
    es_file *f = NULL;
    if (es_file_open(&f, path, O_RDONLY, 0, e) < 0)
        return -1;
    int rc = -1;
    char *buf = NULL;
    struct stat st;
    if (fstat(f->fd, &st) < 0) {
        es_err_set(e, errno, path, "cannot stat");
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        es_err_set(e, 0, path, "not a regular file");
        goto out;
    }
    uint64_t size;
    if (es_file_size(f, &size, e) < 0)
        goto out;
    if (size > DX_MAX_XML_FILE) {
        es_err_set(e, EFBIG, path, "XML file larger than %u bytes", DX_MAX_XML_FILE);
        goto out;
    }
    buf = malloc((size_t)size + 1);
    if (!buf) {
        es_err_set(e, ENOMEM, path, "out of memory");
        goto out;
    }
    size_t got = 0;
    if (size && es_file_pread_some(f, buf, (size_t)size, 0, &got, e) < 0)
        goto out;
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    es_file_close(f);
    return rc;
}
