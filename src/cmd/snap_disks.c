/* extsnap disks: a domain's disks (virsh domblklist --details), with their
 * backing chains. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "cmd/json_out.h"
#include "domxml/enums.h"
#include "snap/graph/chain.h"
#include "snap/context.h"

static int run(int argc, char **argv);

typedef struct disks_opts {
    es_domain_opts d;
    bool chain;
} disks_opts;

static const es_opt disks_table[] = {
    {.name = "chain", .kind = ES_OPT_FLAG, .offset = offsetof(disks_opts, chain),
     .help = "also show each disk's backing chain, top image first, as the image engine opens it (backing names resolved as QEMU does, under --root), with each image's format, virtual size and actual (allocated) size; a broken link is shown with the reason"},
    ES_DOMAIN_OPTS(disks_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_disks = {
    .name = "disks",
    .summary = "list a domain's disks and, with --chain, their backing chains",
    .synopsis = "[OPTIONS] DOMAIN [--chain]",
    .description =
        "List the disks of a domain's config like 'virsh domblklist --details': Type,\n"
        "Device, Target, Source. Changes nothing.\n",
    .details =
        "\n" ES_DOMAIN_ARG_USAGE "\n"
        "JSON output (--output=json; field names are stable, sizes in bytes):\n"
        "  {domain, disks: [{type, device, target, source (or null), driver-type (or\n"
        "   null), readonly, chain (with --chain): [{filename, format, virtual-size,\n"
        "   actual-size, backing-filename, backing-filename-format}], chain-error\n"
        "   (with --chain: null, or why the chain could not be followed)}]}\n",
    .exit_status = "0 listed (even with broken chains), 1 failed, 1 also for a usage error.",
    .opts = disks_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

/* Sizes the way qemu-img prints them ("64 MiB", "196 KiB"). */
static void human_size(unsigned long long v, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double d = (double)v;
    int u = 0;
    while (d >= 1024 && u < 6) {
        d /= 1024;
        u++;
    }
    snprintf(buf, len, "%0.3g %s", d, units[u]);
}

static const char *source_or_dash(const domxml_disk *k)
{
    return k->source ? k->source : "-";
}

static void print_table(const domxml_domain *d)
{
    int wt = 4, wd = 6, wg = 6;
    for (size_t i = 0; i < d->ndisks; i++) {
        int l = (int)strlen(domxml_storage_type_name(d->disks[i].type));
        wt = l > wt ? l : wt;
        l = (int)strlen(domxml_disk_device_name(d->disks[i].device));
        wd = l > wd ? l : wd;
        l = (int)strlen(d->disks[i].target_dev);
        wg = l > wg ? l : wg;
    }
    int ws = 6;
    for (size_t i = 0; i < d->ndisks; i++) {
        int l = (int)strlen(source_or_dash(&d->disks[i]));
        ws = l > ws ? l : ws;
    }
    printf(" %-*s   %-*s   %-*s   %s\n", wt, "Type", wd, "Device", wg, "Target", "Source");
    for (int i = 0; i < wt + wd + wg + ws + 10; i++)
        putchar('-');
    putchar('\n');
    for (size_t i = 0; i < d->ndisks; i++) {
        const domxml_disk *k = &d->disks[i];
        printf(" %-*s   %-*s   %-*s   %s\n", wt, domxml_storage_type_name(k->type), wd,
               domxml_disk_device_name(k->device), wg, k->target_dev, source_or_dash(k));
    }
}

static bool chain_applies(const domxml_disk *k)
{
    return k->source && (k->type == DOMXML_STORAGE_FILE || k->type == DOMXML_STORAGE_BLOCK);
}

static void print_chain(const domxml_disk *k, const snap_chain *ch)
{
    printf("\nChain of %s (top first):\n", k->target_dev);
    printf("  %-5s  %-6s  %12s  %12s  %s\n", "Depth", "Format", "Virtual size", "Actual size",
           "File");
    for (size_t i = 0; i < ch->n; i++) {
        char vs[32], as[32];
        human_size(ch->v[i].virtual_size, vs, sizeof vs);
        human_size(ch->v[i].actual_size, as, sizeof as);
        printf("  %-5zu  %-6s  %12s  %12s  %s\n", i, ch->v[i].format, vs, as, ch->v[i].filename);
    }
    if (ch->error)
        printf("  chain broken: %s\n", ch->error);
}

static json_object *chain_json(const snap_chain *ch)
{
    json_object *a = es_json_new_array();
    for (size_t i = 0; i < ch->n; i++) {
        const snap_chain_link *l = &ch->v[i];
        json_object *o = es_json_new_object();
        es_json_add_str(o, "filename", l->filename);
        es_json_add_str(o, "format", l->format);
        es_json_add_u64(o, "virtual-size", l->virtual_size);
        es_json_add_u64(o, "actual-size", l->actual_size);
        es_json_add_str_or_null(o, "backing-filename", l->backing);
        es_json_add_str_or_null(o, "backing-filename-format", l->backing_format);
        es_json_append(a, o);
    }
    return a;
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_disks;
    disks_opts all = {0};
    int r = es_domain_parse(cmd, &all.d, &all, argc, argv, 1, "DOMAIN");
    es_domain_opts o = all.d;
    bool chain = all.chain;
    if (r >= 0)
        return r;
    es_err e = {0};
    snap_ctx *ctx = NULL;
    if (snap_ctx_open(&o.env, argv[optind], SNAP_OPEN_READ, &ctx, &e) < 0) {
        es_cmd_error(cmd->name, &e);
        return ES_EXIT_FAIL;
    }
    const domxml_domain *d = ctx->config;
    json_object *out = NULL, *arr = NULL;
    if (o.json) {
        out = es_json_new_object();
        es_json_add_str(out, "domain", ctx->name);
        arr = es_json_new_array();
    } else {
        print_table(d);
    }
    int status = ES_EXIT_OK;
    for (size_t i = 0; i < d->ndisks; i++) {
        const domxml_disk *k = &d->disks[i];
        snap_chain ch = {0};
        bool have = false;
        if (chain && chain_applies(k)) {
            if (snap_chain_walk(o.env.root, k->source, k->driver_type, &ch, &e) < 0) {
                es_cmd_error(cmd->name, &e);
                status = ES_EXIT_FAIL;
                break;
            }
            have = true;
        }
        if (o.json) {
            json_object *j = es_json_new_object();
            es_json_add_str(j, "type", domxml_storage_type_name(k->type));
            es_json_add_str(j, "device", domxml_disk_device_name(k->device));
            es_json_add_str(j, "target", k->target_dev);
            es_json_add_str_or_null(j, "source", k->source);
            es_json_add_str_or_null(j, "driver-type", k->driver_type);
            es_json_add_bool(j, "readonly", k->readonly);
            if (chain) {
                es_json_add(j, "chain", have ? chain_json(&ch) : es_json_new_array());
                es_json_add_str_or_null(j, "chain-error", have ? ch.error : NULL);
            }
            es_json_append(arr, j);
        } else if (have) {
            print_chain(k, &ch);
        }
        snap_chain_free(&ch);
    }
    if (o.json) {
        es_json_add(out, "disks", arr);
        if (status == ES_EXIT_OK) {
            es_json_print(stdout, out);
            fputc('\n', stdout);
        }
        json_object_put(out);
    }
    snap_ctx_close(ctx);
    return status;
}
