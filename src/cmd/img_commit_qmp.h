/* extsnap img commit --qmp: the same merge done by a running QEMU through
 * its QMP socket (block-commit), for VMs run by plain QEMU without libvirt.
 * img_commit.c hands the command over when --qmp is given. */
#ifndef ES_CMD_IMG_COMMIT_QMP_H
#define ES_CMD_IMG_COMMIT_QMP_H

#include <stdbool.h>

#include "cmd/cmd.h"

#define ES_IMG_COMMIT_QMP_USAGE                                                               \
    "Running VM: extsnap img commit --qmp=SOCKET (--device=DEV | --node=NODE)\n"              \
    "                    [-b BASE] [--speed=BYTES] [--timeout=SECONDS]\n"                     \
    "                    [--stall=SECONDS] [-p] [-q]\n"                                       \
    "                    [--output=human|json] TOP\n"                                          \
    "When QEMU runs the image, only QEMU may change its chain: the commit is\n"               \
    "asked of QEMU through its QMP socket (block-commit). DEV is the QEMU block\n"            \
    "device (-drive id=, or the qdev id), NODE the node name of the chain's active\n"        \
    "layer (-blockdev node-name=). TOP and BASE are files of that chain (BASE:\n"             \
    "default TOP's backing file). TOP the active layer: active commit, and QEMU\n"            \
    "switches the device to BASE when the copy is done (pivot). TOP deeper down:\n"          \
    "intermediate commit; QEMU writes BASE's name into the image above TOP, as\n"            \
    "the chain names BASE (a relative name only where it still resolves to BASE).\n"         \
    "Refused: BASE also read by another chain QEMU has open, an active layer no\n"           \
    "device or export uses (nothing to pivot).\n"                                             \
    "  --speed=BYTES     rate limit in bytes per second (suffixes K, M, G)\n"                 \
    "  --timeout=SECONDS how long to wait for each QMP reply (default 30;\n"                  \
    "                    env EXTSNAP_QMP_TIMEOUT)\n"                                           \
    "  --stall=SECONDS   no progress this long (the amount left to copy not\n"              \
    "                    shrinking: e.g. the guest writes faster than the copy)\n"           \
    "                    first lifts the --speed limit, then cancels (default:\n"            \
    "                    the --timeout value)\n"                                              \
    "  -p, --progress[=MODE]  as without --qmp: the job's bytes copied of QEMU's\n"     \
    "                    len (which grows while the guest writes); with\n"                   \
    "                    --output=json only when asked for\n"                                \
    "  --output=json     JSON lines on stdout: {\"type\": \"progress\", job-id, device,\n"    \
    "                    status, offset, len, remaining, rate (bytes/s), speed}\n"            \
    "                    per new sample (every 0.25 s), {\"type\": \"notice\",\n"            \
    "                    message} (a speed limit lifted), then\n"                              \
    "                    {\"type\": \"result\", status (completed,\n"                          \
    "                    failed, interrupted), device, mode (active, intermediate),\n"       \
    "                    top, base, backing-filename, files[] {filename, qemu-use\n"        \
    "                    (closed, idle, in-use), node}, error}\n"                              \
    "All or nothing: QEMU changes the chain only once the copy is complete\n"                \
    "(auto-finalize off). SIGINT/SIGTERM, a timeout or a job error (e.g. no space\n"         \
    "left) cancel the job (forced) and leave the chain as it was. Afterwards the\n"          \
    "files QEMU no longer uses are listed; none is deleted.\n"

/* Does argv (before "--") ask for the online commit? */
bool es_img_commit_wants_qmp(int argc, char **argv);
int es_img_commit_qmp_run(const es_cmd *cmd, int argc, char **argv);

#endif
