#include "qcow2/reclaim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2/check.h"
#include "qcow2/format.h"
#include "qcow2/l2_cache.h"
#include "qcow2/overlap.h"
#include "qcow2/refcount.h"

/* First cluster no reference may name: the check counts any reference at
 * or past it as corruption (reading there gives zeroes, not data). */
static uint64_t end_cluster(const es_image *img)
{
    return (img->file_size + img->cluster_size - 1) >> img->cluster_bits;
}

/* The engine's check, read only; an image it finds damaged is refused. */
static int check_sound(es_image *img, qcow2_check_result *res, es_err *e)
{
    if (qcow2_check_pass_file(img->file, img->filename, 0, NULL, res, e) < 0)
        return es_err_prefix(e, "checking the image before writing it");
    if (res->check_errors > 0)
        return es_err_set(e, 0, img->filename,
                          "the image check found %lld internal error(s); see 'extsnap img check'",
                          (long long)res->check_errors);
    if (res->corruptions > 0)
        return es_err_set(e, 0, img->filename,
                          "%lld corruption(s) in the image's metadata (see 'extsnap img check'); "
                          "nothing was written",
                          (long long)res->corruptions);
    return 0;
}

int qcow2_reclaim_survey(es_image *img, qcow2_reclaim *r, es_err *e)
{
    memset(r, 0, sizeof *r);
    if (img->format != ES_FMT_QCOW2)
        return 0;
    qcow2_check_result res;
    if (check_sound(img, &res, e) < 0)
        return -1;
    r->leaks = res.leaks;
    return qcow2_refcount_from(img, end_cluster(img), false, &r->past_end, e);
}

int qcow2_refuse_damaged(es_image *img, es_err *e)
{
    qcow2_check_result res;
    return img->format == ES_FMT_QCOW2 ? check_sound(img, &res, e) : 0;
}

/* The leak repair rewrote refcount blocks (and maybe COPIED flags in L1
 * and L2 entries) through its own view: drop ours. */
static int reload(es_image *img, es_err *e)
{
    qcow2_refcount_close(img);
    qcow2_l2_cache_clear(img);
    qcow2_overlap_stale(img);
    if (img->l1_size) {
        if (es_file_pread(img->file, img->l1, (size_t)img->l1_size * 8, img->hdr.l1_table_offset,
                          e) < 0)
            return es_err_prefix(e, "reading L1 table");
        for (uint32_t i = 0; i < img->l1_size; i++)
            img->l1[i] = be64_load(&img->l1[i]);
    }
    return qcow2_refcount_open(img, e);
}

static int fix_leaks(es_image *img, es_err *e)
{
    qcow2_refcount_close(img); /* nothing unwritten in it (see the header) */
    qcow2_check_result res;
    if (qcow2_check_pass_file(img->file, img->filename, QCOW2_CHECK_FIX_LEAKS, NULL, &res, e) < 0)
        return es_err_prefix(e, "reclaiming leaked clusters");
    return reload(img, e);
}

int qcow2_reclaim_apply(es_image *img, const qcow2_reclaim *r, es_err *e)
{
    if (img->format != ES_FMT_QCOW2 || img->writes_stopped)
        return 0;
    if (r->leaks > 0 && fix_leaks(img, e) < 0)
        return -1;
    if (r->past_end) {
        uint64_t n;
        if (qcow2_refcount_from(img, end_cluster(img), true, &n, e) < 0 ||
            qcow2_refcount_flush(img, e) < 0)
            return es_err_prefix(e, "reclaiming clusters reserved past the end of the file");
    }
    return 0;
}

int qcow2_reclaim_leaks(es_image *img, es_err *e)
{
    if (img->format != ES_FMT_QCOW2)
        return 0;
    qcow2_check_result res;
    if (qcow2_check_pass_file(img->file, img->filename, 0, NULL, &res, e) < 0)
        return -1;
    if (res.leaks == 0 || res.corruptions || res.check_errors)
        return 0;
    return fix_leaks(img, e);
}
