#include "util/readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "util/fileio.h"
#include "util/xalloc.h"

static int read_open(es_file *f, size_t max, char **text, size_t *len, es_err *e)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return es_err_set(e, errno, f->path, "cannot stat");
    if (!S_ISREG(st.st_mode))
        return es_err_set(e, 0, f->path, "not a regular file");
    uint64_t size;
    if (es_file_size(f, &size, e) < 0)
        return -1;
    if (size > max)
        return es_err_set(e, EFBIG, f->path, "file is larger than %zu bytes", max);
    char *buf = es_xmalloc((size_t)size + 1);
    size_t got = 0;
    if (size && es_file_pread_some(f, buf, (size_t)size, 0, &got, e) < 0) {
        free(buf);
        return -1;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return 0;
}

int es_read_file_if_exists(const char *path, size_t max, char **text, size_t *len, bool *exists,
                           es_err *e)
{
    *text = NULL;
    *len = 0;
    *exists = false;
    es_err local;
    es_file *f = NULL;
    if (es_file_open(&f, path, O_RDONLY, 0, &local) < 0) {
        if (local.errnum == ENOENT)
            return 0;
        if (e)
            *e = local;
        return -1;
    }
    int rc = read_open(f, max, text, len, e);
    es_file_close(f);
    *exists = rc == 0;
    return rc;
}

int es_read_file(const char *path, size_t max, char **text, size_t *len, es_err *e)
{
    *text = NULL;
    *len = 0;
    es_file *f = NULL;
    if (es_file_open(&f, path, O_RDONLY, 0, e) < 0)
        return -1;
    int rc = read_open(f, max, text, len, e);
    es_file_close(f);
    return rc;
}
