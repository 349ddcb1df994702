/* extsnap img rebase: point an image at another backing file, copying what
 * differs between the old and the new backing chains (-u: the header only). */
#include <getopt.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/cmd.h"
#include "cmd/img_root.h"
#include "qcow2/image.h"
#include "qcow2/rebase.h"
#include "qcow2/rebase_safe.h"
#include "util/fileio.h"
#include "util/xalloc.h"

static int run(int argc, char **argv);

typedef struct rebase_opts {
    const char *backing, *bfmt, *fmt, *root;
    bool unsafe, quiet, compress;
} rebase_opts;

static const es_opt rebase_table[] = {
    {.name = "unsafe", .letter = 'u', .kind = ES_OPT_FLAG, .offset = offsetof(rebase_opts, unsafe),
     .help = "unsafe: only the header is rewritten, the new backing file is not opened; use "
             "it when the new backing file has the same content as the old one"},
    {.name = "backing", .letter = 'b', .kind = ES_OPT_STRING, .arg = "BACKING",
     .flags = ES_OPTF_FILE, .offset = offsetof(rebase_opts, backing),
     .help = "new backing file name, stored as given (a relative name is relative to "
             "IMAGE's directory); \"\" removes the backing file, and the image then stands "
             "alone"},
    {.name = "backing-format", .letter = 'F', .kind = ES_OPT_STRING, .arg = "FMT",
     .offset = offsetof(rebase_opts, bfmt),
     .help = "format of the new backing file: qcow2 or raw; required with a non-empty -b, "
             "refused with -b \"\""},
    {.name = "format", .letter = 'f', .kind = ES_OPT_STRING, .arg = "FMT",
     .offset = offsetof(rebase_opts, fmt), .help = "format of IMAGE; only qcow2 has a backing file"},
    {.name = "compress", .letter = 'c', .kind = ES_OPT_FLAG,
     .offset = offsetof(rebase_opts, compress),
     .help = "write the clusters the rebase copies in compressed (the image's compression "
             "type); a cluster that does not shrink is written as it is; not with -u"},
    {.name = "quiet", .letter = 'q', .kind = ES_OPT_FLAG, .offset = offsetof(rebase_opts, quiet),
     .help = "no warnings"},
    {.name = "root", .kind = ES_OPT_STRING, .arg = "DIR", .offset = offsetof(rebase_opts, root),
     .flags = ES_OPTF_DIR,
     .help = "DIR holds a host's root file system (a rescue shell's /mnt/sysimage): IMAGE is "
             "the host's path, opened under DIR (a relative IMAGE is taken from DIR, i.e. the "
             "host's /); BACKING is written as given (it is the host's name) but must resolve "
             "inside DIR, from IMAGE's directory as the host sees it; '..' and symlinks may "
             "not lead out of DIR (refused, nothing written). Without -u it is opened there; "
             "with -u a warning says when no file is there yet."},
    ES_OPT_END,
};

const es_cmd es_cmd_img_rebase = {
    .name = "img rebase",
    .summary = "change the backing file of an image, keeping its content (-u: header only)",
    .run = run,
    .synopsis = "[-u | -c] -b BACKING -F FMT [--root=DIR] IMAGE\n"
                "[-u | -c] -b \"\" [--root=DIR] IMAGE",
    .description =
        "Point a qcow2 image at a new backing file (or at none, with -b \"\") and keep\n"
        "what the guest sees, as 'qemu-img rebase' does: every cluster the image does\n"
        "not hold itself and where the old and the new backing chains read\n"
        "differently gets the old chain's content copied into the image; then the\n"
        "header names the new backing file. -b \"\" flattens: the image gets\n"
        "everything its chain showed. With -u only the header is rewritten, as\n"
        "'qemu-img rebase -u' does, and the new backing file is not opened: use it\n"
        "only when the new backing file has the same guest content as the old one\n"
        "(it was moved, renamed or copied).\n",
    .details =
        "Without -u, only the clusters allocated (with data) somewhere in either\n"
        "chain are read and compared, so the time follows the data, not the\n"
        "virtual size. Clusters that read as zeroes in the old chain are written\n"
        "as zero clusters (version 3 images). Every write is crash safe, and the\n"
        "header changes last: an interrupted run leaves the image on its old\n"
        "backing file with the same guest view (leaked clusters at worst), and\n"
        "running the same command again finishes it. Refused before anything is\n"
        "written: an image a running QEMU uses, one marked corrupt, dirty or with\n"
        "metadata errors, extended L2 entries, a persistent bitmap marked in use\n"
        "or inconsistent, a new backing chain that cannot be opened or contains\n"
        "the image itself, not enough free space for what the rebase may write\n"
        "(an upper bound: every cluster it would compare counted as written).\n"
        "Running out of space all the same stops the run like a crash.\n"
        "\n"
        "Persistent dirty bitmaps: as with qemu-img rebase, every enabled bitmap\n"
        "gets the bits of the 512-byte sectors that are written because the two\n"
        "chains differ there; disabled bitmaps stay as they are. The bits are\n"
        "written before the data they cover: a crash leaves extra bits at worst.\n"
        "With -u the bitmaps are not touched.\n"
        "\n"
        "-c writes the copied clusters compressed with the image's compression\n"
        "type (zlib or zstd), packed into shared host clusters, as QEMU writes\n"
        "them; a cluster that does not compress to less than a cluster, and a\n"
        "last cluster the virtual size cuts, is written uncompressed. (qemu-img\n"
        "7.2's rebase has no -c; later versions have.)\n"
        "A new backing file shorter than the image reads as zeroes past its end.\n"
        "\n"
        "The header: every other field and extension (bitmaps, unknown ones) is\n"
        "kept byte for byte. The whole header cluster is written in one write and\n"
        "flushed, so a crash leaves either the old or the new header. Names longer\n"
        "than 1023 bytes, or too long to fit in the header cluster, are refused and\n"
        "the image is left unchanged.\n",
    .exit_status = "0 done, 1 failed or a usage error.",
    .opts = rebase_table,
    .operands = ES_OPERANDS_IMAGE,
};

/* Under --root: the new backing name (the host's) must resolve inside the
 * root, from the directory of IMAGE as the host names it. It is not opened
 * (-u), but a name with no file behind it is most likely a rescue-shell path
 * given for a host path: *missing (malloc'd) says where it was looked for. */
static int check_backing_in_root(const char *root, const char *image, const char *backing,
                                 char **missing, es_err *e)
{
    *missing = NULL;
    if (!root)
        return 0;
    char *display = NULL, *open_path = NULL;
    if (es_backing_resolve(image, backing, root, &display, &open_path, e) < 0)
        return -1;
    struct stat st;
    if (es_fs_stat(open_path, &st) < 0 && errno == ENOENT)
        *missing = es_xasprintf("the new backing file %s does not exist under %s (%s)", display,
                                root, open_path);
    free(display);
    free(open_path);
    return 0;
}

static int run(int argc, char **argv)
{
    const es_cmd *c = &es_cmd_img_rebase;
    rebase_opts ro = {0};
    int r = es_opt_parse(c, argc, argv, &ro);
    if (r >= 0)
        return r;
    const char *backing = ro.backing, *bfmt = ro.bfmt, *fmt = ro.fmt, *root = ro.root;
    bool unsafe = ro.unsafe, quiet = ro.quiet;
    if (ro.compress && unsafe)
        return es_cmd_usage_error(c, "-c makes no sense with -u (which copies nothing)");
    if (argc - optind != 1)
        return es_cmd_usage_error(c, argc - optind < 1 ? "IMAGE is missing" : "too many arguments");
    const char *image = argv[optind];
    if (!backing)
        return es_cmd_usage_error(c, "-b BACKING is required (-b \"\" removes the backing file)");
    if (fmt && strcmp(fmt, "qcow2") != 0)
        return es_cmd_usage_error(c, "only qcow2 images have a backing file (-f %s)", fmt);
    if (backing[0]) {
        if (!bfmt)
            return es_cmd_usage_error(c, "backing format must be specified with -F");
        if (strcmp(bfmt, "qcow2") != 0 && strcmp(bfmt, "raw") != 0)
            return es_cmd_usage_error(c, "backing format '%s' is not supported (qcow2 or raw)",
                                      bfmt);
        if (strlen(backing) > 1023)
            return es_cmd_usage_error(c, "backing file name too long (%zu bytes, max 1023)",
                                      strlen(backing));
    } else if (bfmt) {
        /* An empty -b from an unset variable must not silently detach the image. */
        return es_cmd_usage_error(c, "-F makes no sense with -b \"\" (which removes the backing "
                                     "file)");
    }
    int rc = es_img_root_check(c, root, ES_EXIT_FAIL);
    if (rc >= 0)
        return rc;
    es_err err;
    es_err_clear(&err);
    char *name = NULL, *open_path = NULL, *missing = NULL;
    rc = ES_EXIT_FAIL;
    if (es_img_root_name(root, image, &name, &err) < 0 ||
        es_img_root_open_path(root, name, &open_path, &err) < 0 ||
        (backing[0] && check_backing_in_root(root, name, backing, &missing, &err) < 0)) {
        es_cmd_error(c->name, &err);
        goto out;
    }
    es_rebase_opts so = {.backing = backing, .backing_format = backing[0] ? bfmt : NULL,
                         .format = fmt, .root = root, .compress = ro.compress};
    if (unsafe ? qcow2_rebase_unsafe(open_path, backing[0] ? backing : NULL,
                                     backing[0] ? bfmt : NULL, &err)
               : qcow2_rebase_safe(name, &so, &err)) {
        es_img_root_fix_err(&err, root, open_path, name);
        es_cmd_error(c->name, &err);
        goto out;
    }
    if (missing && !quiet)
        es_cmd_errorf(c->name, "warning: %s", missing);
    rc = ES_EXIT_OK;
out:
    free(missing);
    free(name);
    free(open_path);
    return rc;
}
