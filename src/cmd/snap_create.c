/* extsnap create: an external disk-only snapshot of a shut-off domain. */
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "cmd/online_domain.h"
#include "snap/context.h"
#include "snap/ops/create.h"
#include "util/xalloc.h"

static int run(int argc, char **argv);
static int add_disks(const es_cmd *cmd, void *opts, const char *arg);

typedef struct create_opts {
    es_domain_opts d;
    const char *description;
    bool no_metadata;
    bool no_vm_state;
    es_strv disks;
} create_opts;

static const es_opt create_table[] = {
    {.name = "description", .kind = ES_OPT_STRING, .arg = "TEXT",
     .offset = offsetof(create_opts, description), .help = "a description for the snapshot"},
    {.name = "disk", .kind = ES_OPT_CALL, .arg = "LIST", .call = add_disks,
     .flags = ES_OPTF_REPEAT,
     .help = "snapshot only these disks (targets, comma-separated, e.g. vda,vdb; may be "
             "repeated); the others are recorded with snapshot='no'"},
    {.name = "no-metadata", .kind = ES_OPT_FLAG, .offset = offsetof(create_opts, no_metadata),
     .help = "create the overlays and update the config, but write no snapshot metadata "
             "(libvirt's --no-metadata)"},
    {.name = "no-vm-state", .kind = ES_OPT_FLAG, .offset = offsetof(create_opts, no_vm_state),
     .help = "keep no copy of the VM's NVRAM (UEFI variables) and vTPM state with the "
             "snapshot: disks only, as libvirt; needed for a running VM with either"},
    ES_ONLINE_OPT(create_opts, d),
    ES_DOMAIN_OPTS(create_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_create = {
    .name = "create",
    .summary = "take an external disk-only snapshot of a domain (running VMs through QMP)",
    .synopsis = "[OPTIONS] DOMAIN [NAME]",
    .description =
        "Take an external snapshot of every writable disk of a shut-off domain, as\n"
        "'virsh snapshot-create-as DOMAIN NAME --disk-only' does, without libvirtd:\n"
        "each disk's current image freezes and holds the snapshot's state, and a new\n"
        "qcow2 overlay over it receives the writes from now on.\n",
    .details =
        "NAME defaults to the current time in Unix seconds (as libvirt). It may not\n"
        "be 'base', contain '/', start with '.', or be taken.\n"
        "\n"
        "Which disks: every disk with a local image file that is not readonly, not a\n"
        "cdrom, not empty and not snapshot='no'. A block device (type='block') is\n"
        "refused, as libvirt refuses to name its overlay: leave it out with --disk.\n"
        "So is a disk whose definition describes its image file itself, which no new\n"
        "overlay can carry: <encryption> (LUKS or qcow), <slices>, fdgroup=,\n"
        "<dataStore>. The overlay keeps the disk's <driver> attributes (type becomes\n"
        "qcow2), startupPolicy and <seclabel>.\n"
        "\n"
        "What is written, exactly as libvirt writes it:\n"
        "  - overlay <image minus its extension>.NAME (vda.qcow2 -> vda.NAME), qcow2,\n"
        "    backing file = the image path as written in the config (absolute),\n"
        "    backing format = the disk's format; owner and mode of the image below\n"
        "    (plus owner write). An existing non-empty file is never overwritten.\n"
        "    It gets an empty, enabled persistent dirty bitmap for each enabled\n"
        "    bitmap of the image below (same name and granularity), as libvirt adds\n"
        "    them, so incremental backups go on recording the guest's writes.\n"
        "  - <snapshot-dir>/DOMAIN/NAME.xml: the new current snapshot (parent = the\n"
        "    previous current one, <domain> = the config before the snapshot); the\n"
        "    previous current snapshot's file is rewritten as not current.\n"
        "  - the domain config: each snapshotted disk's source becomes its overlay.\n"
        "  - the VM's state besides its disks, unless --no-vm-state: its NVRAM (UEFI\n"
        "    variables, the config's <os><nvram> file) and its vTPM's state (a <tpm>\n"
        "    with <backend type='emulator'>: swtpm's directory, libvirt's default\n"
        "    /var/lib/libvirt/swtpm/UUID, --swtpm-dir for another such as a session\n"
        "    daemon's), copied next to the first overlay as\n"
        "    DOMAIN.NAME.nvram and DOMAIN.NAME.tpm/ (owner, mode and security.* /\n"
        "    user.* extended attributes such as the SELinux label kept, file by\n"
        "    file) and recorded in NAME.xml's <domain><metadata>, which libvirt keeps\n"
        "    as it is; revert and refresh put them back, delete and commit remove\n"
        "    them with the snapshot. That state is consistent only while QEMU and\n"
        "    swtpm are stopped: a running VM is refused, unless --no-vm-state.\n"
        "\n" ES_ONLINE_USAGE
        "\n" ES_DOMAIN_SAFETY_USAGE "\n" ES_DOMAIN_ARG_USAGE "\n" ES_PLAN_JSON_USAGE,
    .exit_status = "0 done (or planned, with --dry-run), 1 refused, failed or a usage error.",
    .opts = create_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

/* --disk=vda,vdb (repeatable) into the disk list. */
static int add_disks(const es_cmd *cmd, void *opts, const char *arg)
{
    es_strv *out = &((create_opts *)opts)->disks;
    (void)cmd;
    char *copy = es_xstrdup(arg), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (*t && !es_strv_has(out, t))
            es_strv_add(out, t, NULL);
    free(copy);
    return ES_OPT_OK;
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_create;
    create_opts all = {0};
    int status = es_domain_parse(cmd, &all.d, &all, argc, argv, -1, NULL);
    es_domain_opts o = all.d;
    es_strv disks = all.disks;
    snap_create_args a = {.now = (long long)time(NULL),
                          .description = all.description,
                          .no_metadata = all.no_metadata,
                          .no_vm_state = all.no_vm_state};
    const char *qmp = o.env.qmp;
    if (status >= 0)
        goto out;
    if (optind >= argc || argc - optind > 2) {
        status = es_cmd_usage_error(cmd, "expected DOMAIN [NAME]");
        goto out;
    }
    if (es_domain_opts_check(cmd, &o) < 0) {
        status = ES_EXIT_FAIL;
        goto out;
    }
    a.name = argc - optind == 2 ? argv[optind + 1] : NULL;
    a.disks = &disks;
    es_err e = {0};
    snap_ctx *ctx = NULL;
    snap_plan *p = NULL;
    snap_online *ol = NULL;
    status = ES_EXIT_FAIL;
    if (snap_online_open(&o.env, argv[optind], qmp, &ctx, &ol, &e) < 0 ||
        (a.vm_running = ol != NULL, snap_plan_create(ctx, &a, &p, &e) < 0)) {
        es_cmd_error(cmd->name, &e);
    } else {
        status = es_online_run_plan(cmd, &o, ctx, ol, p);
    }
    snap_plan_free(p);
    snap_online_close(ol);
    snap_ctx_close(ctx);
out:
    es_strv_free(&disks);
    return status;
}
