/* extsnap create: an external disk-only snapshot of a shut-off domain. */
#include <getopt.h>
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

const es_cmd es_cmd_snap_create = {
    "create",
    "take an external disk-only snapshot of a domain (running VMs through QMP)",
    "usage: extsnap create [OPTIONS] DOMAIN [NAME]\n"
    "\n"
    "Take an external snapshot of every writable disk of a shut-off domain, as\n"
    "'virsh snapshot-create-as DOMAIN NAME --disk-only' does, without libvirtd:\n"
    "each disk's current image freezes and holds the snapshot's state, and a new\n"
    "qcow2 overlay over it receives the writes from now on.\n"
    "\n"
    "  --description=TEXT  a description for the snapshot\n"
    "  --disk=LIST         snapshot only these disks (targets, comma-separated,\n"
    "                      e.g. vda,vdb; may be repeated); the others are recorded\n"
    "                      with snapshot='no'\n"
    "  --no-metadata       create the overlays and update the config, but write no\n"
    "                      snapshot metadata (libvirt's --no-metadata)\n"
    "\n"
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
    "  - <snapshot-dir>/DOMAIN/NAME.xml: the new current snapshot (parent = the\n"
    "    previous current one, <domain> = the config before the snapshot); the\n"
    "    previous current snapshot's file is rewritten as not current.\n"
    "  - the domain config: each snapshotted disk's source becomes its overlay.\n"
    "\n" ES_ONLINE_USAGE
    "\n" ES_DOMAIN_SAFETY_USAGE "\n" ES_DOMAIN_OPTS_USAGE "\n" ES_PLAN_JSON_USAGE "\n"
    "Exit status: 0 done (or planned, with --dry-run), 1 refused or failed, 2 usage.\n",
    run,
};

/* --disk=vda,vdb (repeatable) into *out. */
static void add_disks(const char *arg, es_strv *out)
{
    char *copy = es_xstrdup(arg), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (*t && !es_strv_has(out, t))
            es_strv_add(out, t, NULL);
    free(copy);
}

enum { OPT_DESCRIPTION = 0x2000, OPT_DISK, OPT_NO_METADATA };

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_create;
    static const struct option longopts[] = {
        ES_DOMAIN_LONGOPTS,
        {"description", required_argument, NULL, OPT_DESCRIPTION},
        {"disk", required_argument, NULL, OPT_DISK},
        {"no-metadata", no_argument, NULL, OPT_NO_METADATA},
        ES_ONLINE_LONGOPT,
        {NULL, 0, NULL, 0},
    };
    es_domain_opts o;
    es_domain_opts_init(&o, cmd);
    es_strv disks = {0};
    snap_create_args a = {.now = (long long)time(NULL)};
    const char *qmp = NULL;
    int status = ES_EXIT_USAGE;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ES_DOMAIN_SHORTOPTS, longopts, NULL)) != -1) {
        int h = es_domain_opt(cmd, &o, c, optarg);
        if (h < 0)
            goto out;
        if (h > 0)
            continue;
        switch (c) {
        case OPT_DESCRIPTION:
            a.description = optarg;
            break;
        case OPT_DISK:
            add_disks(optarg, &disks);
            break;
        case OPT_NO_METADATA:
            a.no_metadata = true;
            break;
        case ES_OPT_QMP:
            qmp = o.env.qmp = optarg;
            break;
        default:
            status = es_domain_bad_option(cmd, argv);
            goto out;
        }
    }
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
        snap_plan_create(ctx, &a, &p, &e) < 0) {
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
