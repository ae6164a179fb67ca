/*
 * eval/linear_probe.c — linear-probe evaluation of a checkpoint (see eval/linear_probe.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "eval/linear_probe.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "eval/clip_eval.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/ssl.h"

struct feats {
    float *X;   /* (N, D) */
    int32_t *y; /* (N) */
    int64_t N;
    int D, C;
};

static void feats_free(struct feats *f)
{
    free(f->X);
    free(f->y);
    memset(f, 0, sizeof *f);
}

static int open_folder(const char *dir, struct sg_dataset **ds)
{
    struct sg_dataset_spec spec = {.kind = "folder", .path = dir};
    if (sg_dataset_open(&spec, ds)) return -1;
    if ((*ds)->nclasses < 2) {
        sg_dataset_free(*ds);
        return sg_err("%s: a linear probe needs a labelled folder (class sub-folders)", dir);
    }
    return 0;
}

/* ---- SSL backbone features ----------------------------------------------------------------- */

struct ssl_net {
    struct sg_ctx ctx;
    struct sg_train_config cfg;
    struct sg_ssl_model m;
};

static int ssl_open(struct ssl_net *n, const struct sg_st_file *f, const char *path, int threads)
{
    const char *yaml = sg_st_meta(f, "config");
    if (!yaml) return sg_err("%s: no training config in the metadata (not a sogclip file?)", path);
    if (sg_train_config_load_string(&n->cfg, yaml, path)) return -1;
    if (sg_ctx_init(&n->ctx, SG_DEVICE_CPU, 0, threads)) return -1;
    if (sg_ssl_model_create(&n->m, &n->cfg, &n->ctx, n->cfg.train.batch_size, 0)) return -1;
    const char *fmt = sg_st_meta(f, "format");
    const char *prefix = fmt && !strcmp(fmt, "sogclip-checkpoint-1") ? "model." : "";
    if (sg_ckpt_read_arena(f, &n->m.ps, n->m.ps.data, prefix, 1)) return -1;
    return 0;
}

/* Backbone features (eval-mode BN) of every image of ds, in dataset order. */
static int ssl_features(struct ssl_net *n, const struct sg_dataset *ds, int workers,
                        struct feats *out)
{
    struct sg_ssl_model *m = &n->m;
    int B2 = 2 * m->B, S = m->S, D = m->backbone.feat_dim;
    struct sg_aug_config aug;
    sg_aug_preset(&aug, SG_AUG_EVAL, S);
    aug.crop_pct = 1.0f; /* resize the shorter side to S (CIFAR: identity), center crop */
    struct sg_loader_config lc;
    sg_loader_default_config(&lc);
    lc.batch = B2;
    lc.workers = workers;
    lc.shuffle = 0;
    lc.aug = &aug;
    lc.max_bad_fraction = 0.0;
    struct sg_loader *l;
    if (sg_loader_open(&lc, ds, &l)) return -1;
    out->N = ds->n, out->D = D, out->C = ds->nclasses;
    out->X = sg_xmalloc(sizeof(float) * (size_t)out->N * D);
    out->y = sg_xmalloc(sizeof(int32_t) * (size_t)out->N);
    float *img = sg_xcalloc((size_t)B2 * 3 * S * S, sizeof(float));
    sg_loader_start_epoch(l, 0);
    struct sg_batch *b;
    int rc;
    int64_t done = 0;
    while ((rc = sg_loader_next(l, &b)) == 1) {
        memcpy(img, b->img, (size_t)b->n * 3 * S * S * sizeof(float));
        const float *f = sg_resnet_forward(&m->backbone, &n->ctx, img, 0);
        for (int r = 0; r < b->n; r++) {
            memcpy(out->X + (size_t)b->idx[r] * D, f + (size_t)r * D, (size_t)D * sizeof(float));
            out->y[b->idx[r]] = b->labels[r];
        }
        done += b->n;
        sg_loader_release(l, b);
    }
    sg_loader_close(l);
    free(img);
    if (rc < 0) return -1;
    if (done != ds->n) return sg_err("%s: unreadable images (run sogclip data verify)", ds->path);
    return 0;
}

/* ---- CLIP image features ------------------------------------------------------------------- */

static int clip_features(struct sg_eval_model *em, const struct sg_dataset *ds, struct feats *out)
{
    out->N = ds->n, out->D = em->model->cfg.embed_dim, out->C = ds->nclasses;
    out->X = sg_xmalloc(sizeof(float) * (size_t)out->N * out->D);
    out->y = sg_xmalloc(sizeof(int32_t) * (size_t)out->N);
    return sg_embed_dataset_images(em, ds, out->X, out->y);
}

/* Both splits' features through the checkpoint's image model. */
static int extract(const struct sg_linear_probe_opts *o, struct feats *tr, struct feats *va)
{
    struct sg_st_file f;
    struct sg_dataset *dtr = NULL, *dva = NULL;
    if (open_folder(o->train_dir, &dtr)) return -1;
    int rc = open_folder(o->val_dir, &dva);
    if (rc == 0 && dva->nclasses != dtr->nclasses)
        rc = sg_err("%s has %d classes, %s has %d", o->train_dir, dtr->nclasses, o->val_dir,
                    dva->nclasses);
    if (rc == 0) rc = sg_st_open(&f, o->checkpoint);
    if (rc) goto out;
    int ssl = sg_st_meta(&f, "model_config") == NULL || !sg_st_meta(&f, "model_config")[0];
    if (ssl) {
        struct ssl_net *n = sg_xcalloc(1, sizeof *n);
        rc = ssl_open(n, &f, o->checkpoint, o->threads);
        if (rc == 0) rc = ssl_features(n, dtr, o->workers, tr);
        if (rc == 0) rc = ssl_features(n, dva, o->workers, va);
        if (n->m.ps.items) sg_ssl_model_destroy(&n->m);
        free(n);
    }
    sg_st_close(&f);
    if (!ssl) {
        struct sg_eval_model em;
        rc = sg_eval_model_load(&em, o->checkpoint, o->tokenizer, o->batch, o->threads);
        em.workers = o->workers;
        if (rc == 0) rc = clip_features(&em, dtr, tr);
        if (rc == 0) rc = clip_features(&em, dva, va);
        sg_eval_model_free(&em);
    }
    if (rc == 0) va->C = tr->C = dtr->nclasses;
out:
    if (dtr) sg_dataset_free(dtr);
    if (dva) sg_dataset_free(dva);
    return rc;
}

int sg_linear_probe_run(const struct sg_linear_probe_opts *o, struct sg_results *r)
{
    struct feats tr = {0}, va = {0};
    struct sg_linprobe_config pc = o->probe;
    struct sg_linprobe lp = {0};
    struct sg_cls_metrics m;
    int rc = extract(o, &tr, &va);
    if (rc == 0 && o->choose_wd) {
        float grid[SG_LINPROBE_WD_GRID_N];
        sg_linprobe_wd_grid(grid);
        rc = sg_linprobe_select_wd(&pc, tr.X, tr.y, tr.N, tr.D, tr.C, grid, SG_LINPROBE_WD_GRID_N,
                                   0.1, &pc.weight_decay, NULL);
    }
    if (rc == 0) rc = sg_linprobe_train(&lp, &pc, tr.X, tr.y, tr.N, tr.D, tr.C);
    if (rc == 0) rc = sg_linprobe_eval(&lp, va.X, va.y, va.N, &m, NULL);
    if (rc == 0) {
        sg_results_add_linear_probe(r, &m, pc.weight_decay, pc.epochs, (int64_t)pc.seed, -1, 0);
        sg_results_note(r, "%lld train / %lld val images, %d features, %d classes", (long long)tr.N,
                        (long long)va.N, tr.D, tr.C);
    }
    sg_linprobe_free(&lp);
    feats_free(&tr);
    feats_free(&va);
    return rc;
}
