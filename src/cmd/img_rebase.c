/* extsnap img rebase -u: point an image at another backing file. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "qcow2/rebase.h"

static int run(int argc, char **argv);

const es_cmd es_cmd_img_rebase = {
    "img rebase",
    "change the backing file an image names (-u: header only)",
    "usage: extsnap img rebase -u -b BACKING -F FMT IMAGE\n"
    "       extsnap img rebase -u -b \"\" IMAGE\n"
    "\n"
    "Rewrite the backing file name and backing format stored in a qcow2 image's\n"
    "header, as 'qemu-img rebase -u' does. The image's data is not touched and\n"
    "the new backing file is not opened: use this only when the new backing file\n"
    "has the same guest content as the old one (it was moved, renamed or copied).\n"
    "\n"
    "  -u, --unsafe              required: only the header is rewritten (a safe\n"
    "                            rebase that copies differing data is not\n"
    "                            implemented)\n"
    "  -b, --backing=BACKING     new backing file name, stored as given (a relative\n"
    "                            name is relative to IMAGE's directory); \"\" removes\n"
    "                            the backing file, and the image then stands alone\n"
    "  -F, --backing-format=FMT  format of the new backing file: qcow2 or raw;\n"
    "                            required with a non-empty -b, refused with -b \"\"\n"
    "  -f, --format=FMT          format of IMAGE; only qcow2 has a backing file\n"
    "  -q, --quiet               accepted for qemu-img compatibility\n"
    "  -h, --help                this text\n"
    "\n"
    "Every other header field and extension (bitmaps, unknown ones) is kept byte\n"
    "for byte. The whole header cluster is written in one write and flushed, so\n"
    "a crash leaves either the old or the new header. Names longer than 1023\n"
    "bytes, or too long to fit in the header cluster, are refused and the image\n"
    "is left unchanged.\n"
    "\n"
    "Exit status: 0 done, 1 failed, 2 usage error.\n",
    run,
};

static int run(int argc, char **argv)
{
    const es_cmd *c = &es_cmd_img_rebase;
    static const struct option longopts[] = {
        {"unsafe", no_argument, NULL, 'u'},
        {"backing", required_argument, NULL, 'b'},
        {"backing-format", required_argument, NULL, 'F'},
        {"format", required_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    const char *backing = NULL, *bfmt = NULL, *fmt = NULL;
    bool unsafe = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "ub:F:f:q", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u': unsafe = true; break;
        case 'b': backing = optarg; break;
        case 'F': bfmt = optarg; break;
        case 'f': fmt = optarg; break;
        case 'q': break;
        default:
            if (optopt)
                return es_cmd_usage_error(c, "option '-%c' %s", optopt,
                                          strchr("bFf", optopt) ? "needs an argument"
                                                                : "is unknown");
            return es_cmd_usage_error(c, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return es_cmd_usage_error(c, argc - optind < 1 ? "IMAGE is missing" : "too many arguments");
    const char *image = argv[optind];
    if (!unsafe)
        return es_cmd_usage_error(c, "only 'rebase -u' is implemented: a safe rebase (copying the "
                                     "data that differs between the old and new backing chains) "
                                     "is not; use -u when the new backing file has the same "
                                     "content");
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
    es_err err;
    es_err_clear(&err);
    if (qcow2_rebase_unsafe(image, backing[0] ? backing : NULL, backing[0] ? bfmt : NULL, &err) < 0) {
        es_cmd_error(c->name, &err);
        return ES_EXIT_FAIL;
    }
    return ES_EXIT_OK;
}
