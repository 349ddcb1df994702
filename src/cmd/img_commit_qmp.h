/* extsnap img commit --qmp: the same merge done by a running QEMU through
 * its QMP socket (block-commit), for VMs run by plain QEMU without libvirt.
 * img_commit.c hands the command over when --qmp is given. */
#ifndef ES_CMD_IMG_COMMIT_QMP_H
#define ES_CMD_IMG_COMMIT_QMP_H

#include <stdbool.h>

#include "cmd/cmd.h"

#define ES_IMG_COMMIT_QMP_USAGE                                                               \
    "Running VM: extsnap img commit --qmp=SOCKET (--device=DEV | --node=NODE)\n"              \
    "[-b BASE] [--speed=BYTES] [--timeout=SECONDS] [--stall=SECONDS] [-p] [-q]\n"             \
    "[--output=human|json] TOP\n"                                                             \
    "When QEMU runs the image, only QEMU may change its chain: the commit is\n"               \
    "asked of QEMU through its QMP socket (block-commit). DEV is the QEMU block\n"            \
    "device (-drive id=, or the qdev id), NODE the node name of the chain's active\n"        \
    "layer (-blockdev node-name=). TOP and BASE are files of that chain (BASE:\n"             \
    "default TOP's backing file). TOP the active layer: active commit, and QEMU\n"            \
    "switches the device to BASE when the copy is done (pivot). TOP deeper down:\n"          \
    "intermediate commit; QEMU writes BASE's name into the image above TOP, as\n"            \
    "the chain names BASE (a relative name only where it still resolves to BASE).\n"         \
    "Refused: BASE also read by another chain QEMU has open, an active layer no\n"           \
    "device or export uses (nothing to pivot), a writable block export (NBD...)\n"           \
    "of a node from the active layer down to BASE (its writes while the job\n"              \
    "waits to switch would be lost: block-export-del it first; checked again\n"            \
    "once the job is pending).\n"                                                            \
    "With --output=json, JSON lines on stdout: {\"type\": \"progress\", job-id,\n"         \
    "device, status, offset, len, remaining, rate (bytes/s), speed} per new sample\n"      \
    "(every 0.25 s), {\"type\": \"notice\", message} (a speed limit lifted), then\n"         \
    "{\"type\": \"result\", status (completed, failed, interrupted), device, mode\n"         \
    "(active, intermediate), top, base, backing-filename, files[] {filename,\n"             \
    "qemu-use (closed, idle, in-use), node}, error}.\n"                                      \
    "All or nothing: QEMU changes the chain only once the copy is complete\n"                \
    "(auto-finalize off). SIGINT/SIGTERM, a timeout or a job error (e.g. no space\n"         \
    "left) cancel the job (forced) and leave the chain as it was. Afterwards the\n"          \
    "files QEMU no longer uses are listed; none is deleted.\n"

/* img commit's options (its table is in img_commit.c), both ways. */
typedef struct es_img_commit_opts {
    const char *format, *base, *root;
    bool keep_top, quiet; /* keep_top: -d */
    int progress;         /* --progress: index in es_progress_choices */
    /* --qmp only */
    const char *socket, *device, *node;
    unsigned long long speed;
    int timeout_ms;
    int stall_ms; /* 0: the reply timeout */
    int json;     /* --output: 0 human, 1 json */
} es_img_commit_opts;

/* The commit through QEMU: o parsed (o->socket set), TOP is argv[optind]. */
int es_img_commit_qmp_run(const es_cmd *cmd, const es_img_commit_opts *o, int argc, char **argv);

#endif
