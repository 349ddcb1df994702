#include "qmp/qmp_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/xalloc.h"

/* sun_path holds 107 bytes; longer paths are reached through the
 * directory's /proc/self/fd entry. A socket under --root is found inside
 * the root first (es_fs_socket_name) and reached through its own entry. */
static int connect_unix(int fd, const char *path, es_err *e)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int dirfd = -1;
    /* dirfd: the socket's own descriptor, when under the root */
    int named = es_fs_socket_name(path, sa.sun_path, sizeof sa.sun_path, &dirfd);
    if (named < 0 && errno != ENAMETOOLONG)
        return es_err_set(e, errno, path,
                          errno == ENOENT ? "QMP socket does not exist" : "QMP socket");
    if (named < 0) {
        const char *slash = strrchr(path, '/');
        if (!slash)
            return es_err_set(e, ENAMETOOLONG, path, "QMP socket name too long");
        char *dir = es_xstrdup_len(path, (size_t)(slash - path) + (slash == path));
        dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        int err = errno;
        free(dir);
        if (dirfd < 0)
            return es_err_set(e, err, path, "opening the QMP socket's directory");
        int n = snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", dirfd,
                         slash + 1);
        if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
            close(dirfd);
            return es_err_set(e, ENAMETOOLONG, path, "QMP socket name too long");
        }
    }
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int err = errno;
    if (dirfd >= 0)
        close(dirfd);
    if (rc == 0)
        return 0;
    switch (err) {
    case ECONNREFUSED:
        return es_err_set(e, err, path,
                          "nobody is listening on this QMP socket (is the VM's QEMU running?)");
    case EAGAIN:
        return es_err_set(e, err, path, "QMP socket busy (connection backlog full)");
    case ENOENT:
        return es_err_set(e, err, path, "QMP socket does not exist");
    default:
        return es_err_set(e, err, path, "connecting to QMP socket");
    }
}

int qmp_socket_connect(const char *path, es_err *e)
{
    struct stat st;
    if (es_fs_stat(path, &st) < 0) {
        if (errno == ENOENT)
            return es_err_set(e, errno, path, "QMP socket does not exist");
        return es_err_set(e, errno, path, "QMP socket");
    }
    if (!S_ISSOCK(st.st_mode))
        return es_err_set(e, 0, path, "not a UNIX socket (a QMP socket was expected here)");
    /* Non-blocking from the start: a full backlog fails instead of hanging. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return es_err_set(e, errno, path, "creating a UNIX socket");
    if (connect_unix(fd, path, e) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}
