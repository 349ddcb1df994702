/* extsnap img commit: merge a chain's upper layers into a lower image, as
 * `qemu-img commit` does, without QEMU. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/busy_hint.h"
#include "cmd/check_hint.h"
#include "cmd/cmd.h"
#include "cmd/cmd_env.h"
#include "cmd/img_commit_qmp.h"
#include "cmd/img_root.h"
#include "qcow2/commit.h"

static int run(int argc, char **argv);

const es_cmd es_cmd_img_commit = {
    "img commit",
    "commit an image's changes into its backing file (like qemu-img commit)",
    "usage: extsnap img commit [-f FORMAT] [-b BASE] [-d] [-p] [-q] [--root=DIR] TOP\n"
    "\n"
    "Copy every cluster allocated in TOP, and in every image between BASE and\n"
    "TOP, into BASE (default: TOP's backing file), as `qemu-img commit` does:\n"
    "BASE grows when TOP is larger (never shrinks); zeroes above become zero\n"
    "clusters in a qcow2 v3 BASE and explicit zeroes where BASE cannot say\n"
    "\"zero\" (v2, raw) and something would otherwise show; compressed clusters\n"
    "are written uncompressed; clusters BASE shares with an internal snapshot\n"
    "are never overwritten in place. Afterwards TOP is emptied (it then reads\n"
    "entirely through to its backing file) unless -d or -b is given. No image\n"
    "header names another file afterwards: TOP keeps its backing file, and\n"
    "images between BASE and TOP are left as they are (they are no longer\n"
    "valid on their own once BASE changed).\n"
    "\n"
    "  -f, --format=FMT  format of TOP (qcow2; default: probe)\n"
    "  -b, --base=BASE   commit into BASE, an image of TOP's backing chain\n"
    "                    (implies -d)\n"
    "  -d                do not empty TOP afterwards\n"
    "  -p, --progress    show progress on stderr (only on a terminal)\n"
    "  -q, --quiet       print nothing on success\n"
    "  --root=DIR        DIR holds a host's root file system (a rescue shell's\n"
    "                    /mnt/sysimage): TOP, BASE and every backing file name\n"
    "                    are the host's paths, opened under DIR (a relative TOP\n"
    "                    is taken from DIR, i.e. the host's /; a relative BASE\n"
    "                    is looked for beside each image of the chain, then\n"
    "                    from DIR); '..' and symlinks may not lead out of DIR.\n"
    "                    Names are shown as the host sees them. Not with --qmp\n"
    "                    (QEMU opens the images itself).\n"
    "\n"
    "Nothing is written before these checks pass: TOP has a backing file; BASE\n"
    "is in its chain; BASE (and TOP unless kept) can be opened for writing;\n"
    "BASE is neither marked corrupt nor dirty (run 'extsnap img check -r all'\n"
    "first); neither BASE nor an emptied TOP has persistent dirty bitmaps\n"
    "(extsnap cannot keep them up to date); BASE's file system has room for\n"
    "what the commit allocates, counted from the allocation maps: the clusters\n"
    "BASE must newly allocate (data, L2 tables, L1 and refcount growth) and the\n"
    "holes of BASE's file that writes in place fill (preallocation=metadata,\n"
    "sparse raw images), in whole file-system blocks.\n"
    "\n"
    "Crash safety: a crash or power loss at any point leaves at worst leaked\n"
    "clusters in BASE (reclaimed by 'extsnap img check -r leaks'), never a\n"
    "corrupt image; run the same commit again to finish it, with the same\n"
    "result. TOP is emptied only after BASE is complete and on disk.\n"
    "\n"
    "Environment: EXTSNAP_SKIP_SPACE_CHECK=1 skips the free-space check (for\n"
    "tests that need a real ENOSPC in the middle of a commit).\n"
    "\n"
    ES_IMG_COMMIT_QMP_USAGE
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error.\n",
    run,
};

static void show_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    double pct = total ? 100.0 * (double)done / (double)total : 100.0;
    if (pct > 100.0)
        pct = 100.0;
    fprintf(stderr, "    (%.2f/100%%)\r", pct);
    fflush(stderr);
}

/* Is --root on the command line (before "--")? */
static bool wants_root(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--root") == 0 || strncmp(argv[i], "--root=", 7) == 0)
            return true;
    }
    return false;
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_img_commit;
    if (es_img_commit_wants_qmp(argc, argv)) {
        if (wants_root(argc, argv))
            return es_cmd_usage_error(cmd, "--root cannot be used with --qmp: the running QEMU "
                                           "opens the images by its own names");
        return es_img_commit_qmp_run(cmd, argc, argv); /* a running VM: through QEMU */
    }
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"base", required_argument, NULL, 'b'},
        {"progress", no_argument, NULL, 'p'},
        {"quiet", no_argument, NULL, 'q'},
        ES_IMG_ROOT_LONGOPT,
        {NULL, 0, NULL, 0},
    };
    es_open_opts oo = {0};
    es_commit_opts co = {0};
    const char *base_path = NULL;
    bool progress = false, quiet = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:f:b:dpq", longopts, NULL)) != -1) {
        switch (ch) {
        case 'f': oo.format = optarg; break;
        case 'b': base_path = optarg; co.keep_top = true; break;
        case 'd': co.keep_top = true; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case ES_IMG_OPT_ROOT: oo.root = optarg; break;
        case ':':
            return es_cmd_usage_error(cmd, "option '%s' needs an argument", argv[optind - 1]);
        default:
            return es_cmd_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return es_cmd_usage_error(cmd, argc - optind < 1 ? "TOP is missing" : "too many arguments");
    int rc = es_img_root_check(cmd, oo.root, ES_EXIT_FAIL);
    if (rc >= 0)
        return rc;
    co.skip_space_check = es_env_skip_space_check();
    if (progress && !quiet && isatty(STDERR_FILENO))
        co.progress = show_progress;

    es_err err;
    es_image *top = NULL;
    char *name = NULL;
    if (es_img_root_name(oo.root, argv[optind], &name, &err) < 0 ||
        es_image_open(&top, name, &oo, &err) < 0) {
        es_img_root_fix_err(&err, oo.root, NULL, name ? name : argv[optind]);
        es_busy_hint(&err, ES_HINT_QMP);
        es_img_check_hint(&err, oo.root);
        es_cmd_error(cmd->name, &err);
        free(name);
        return ES_EXIT_FAIL;
    }
    free(name);
    rc = ES_EXIT_OK;
    es_image *base = top->backing;
    if (!base) {
        es_err_set(&err, 0, top->filename, "Image does not have a backing file");
        rc = ES_EXIT_FAIL;
    } else if (base_path && !(base = es_commit_find_base_root(top, base_path, oo.root, &err))) {
        rc = ES_EXIT_FAIL;
    } else if (es_commit(top, base, &co, &err) < 0) {
        rc = ES_EXIT_FAIL;
    }
    if (co.progress)
        fputc('\n', stderr);
    es_image_close(top);
    if (rc != ES_EXIT_OK) {
        es_busy_hint(&err, ES_HINT_QMP);
        es_img_check_hint(&err, oo.root);
        es_cmd_error(cmd->name, &err);
        return rc;
    }
    if (!quiet)
        printf("Image committed.\n");
    return ES_EXIT_OK;
}
