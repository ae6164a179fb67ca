/*
 * train/ssl.c — unimodal SSL model and loss glue (see train/ssl.h). Device-agnostic: the model
 * runs through ops on its context, the view split/join are strided device copies.
 */
#include "train/ssl.h"

#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "losses/simclr_dist.h"
#include "losses/sogclr_uni_dist.h"
#include "ops/elementwise.h"

#define NORM_EPS 1e-12f

int sg_ssl_model_create(struct sg_ssl_model *m, const struct sg_train_config *cfg, struct sg_ctx *c,
                        int B, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    struct sg_resnet_config rc = {.base_width = cfg->ssl.width,
                                  .num_classes = 0,
                                  .cifar_stem = cfg->ssl.cifar_stem,
                                  .bottleneck = cfg->ssl.bottleneck,
                                  .zero_init_residual = cfg->ssl.zero_init_residual};
    memcpy(rc.layers, cfg->ssl.layers, sizeof rc.layers);
    m->B = B;
    m->S = cfg->ssl.image_size;
    m->D = cfg->ssl.proj_dim;
    sg_params_init(&m->ps);
    sg_resnet_init(&m->backbone, &rc, &m->ps, "backbone");
    sg_proj_head_init(&m->head, &m->ps, "head", cfg->ssl.proj_layers, m->backbone.feat_dim,
                      cfg->ssl.proj_hidden, m->D);
    sg_params_alloc(&m->ps, c, 1);
    struct sg_rng rng;
    sg_rng_seed(&rng, seed);
    sg_params_init_values(&m->ps, &rng);
    int B2 = 2 * m->B;
    size_t bytes = sg_resnet_plan(&m->backbone, B2, m->S, m->S) + sg_proj_head_plan(&m->head, B2);
    size_t bd = (size_t)m->B * m->D;
    bytes += 2 * sg_arena_round(2 * bd * sizeof(float)) + sg_arena_round((size_t)B2 * 4) +
             4 * sg_arena_round(bd * sizeof(float));
    sg_arena_init(&m->act, c, bytes, "ssl activations");
    sg_resnet_bind(&m->backbone, &m->act);
    sg_proj_head_bind(&m->head, &m->act);
    m->z = sg_arena_floats(&m->act, 2 * bd);
    m->dz = sg_arena_floats(&m->act, 2 * bd);
    m->norm = sg_arena_floats(&m->act, (size_t)B2);
    m->za = sg_arena_floats(&m->act, bd);
    m->zb = sg_arena_floats(&m->act, bd);
    m->dza = sg_arena_floats(&m->act, bd);
    m->dzb = sg_arena_floats(&m->act, bd);
    return 0;
}

void sg_ssl_model_destroy(struct sg_ssl_model *m)
{
    if (m->act.base) sg_arena_free(&m->act);
    sg_params_free(&m->ps);
}

/* rows b*2 + v of z (2B, D) <-> view v rows of a / b (B, D): strided copies on the context's
 * device (one cudaMemcpy2DAsync per view on CUDA). */
static void split_views(const struct sg_ssl_model *m, struct sg_ctx *c, const float *z, float *a,
                        float *b)
{
    size_t row = (size_t)m->D * sizeof(float);
    sg_memcpy2d_d2d(c, a, row, z, 2 * row, row, (size_t)m->B);
    sg_memcpy2d_d2d(c, b, row, z + m->D, 2 * row, row, (size_t)m->B);
}

static void join_views(const struct sg_ssl_model *m, struct sg_ctx *c, const float *a,
                       const float *b, float *z)
{
    size_t row = (size_t)m->D * sizeof(float);
    sg_memcpy2d_d2d(c, z, 2 * row, a, row, row, (size_t)m->B);
    sg_memcpy2d_d2d(c, z + m->D, 2 * row, b, row, row, (size_t)m->B);
}

/* The data-parallel step (unimodal SogCLR / iSogCLR or SimCLR) on host views of the model's
 * buffers. */
static int loss_step_dist(struct sg_ssl_loss *l, struct sg_ctx *c, struct sg_ssl_model *m,
                          const int64_t *idx, float *loss)
{
    struct sg_pair_view v =
        sg_stage_down(&l->stage, c, m->za, m->zb, idx, m->B, m->D, m->dza, m->dzb);
    int rc =
        l->kind == SG_LOSS_SIMCLR
            ? sg_simclr_step_dist(l->dist, &l->simclr, v.a, v.b, m->B, m->D, loss, v.da, v.db)
            : sogclr_uni_step_dist(l->dist, &l->uni, v.a, v.b, v.idx, m->B, m->D, loss, v.da, v.db);
    if (rc) return -1;
    sg_stage_up(c, &v, m->B, m->D, m->dza, m->dzb);
    return 0;
}

static int loss_step(struct sg_ssl_loss *l, struct sg_ctx *c, struct sg_ssl_model *m,
                     const int64_t *idx, float *loss)
{
    if (l->dist) return loss_step_dist(l, c, m, idx, loss);
    if (l->kind == SG_LOSS_SIMCLR)
        return sg_simclr_loss_compute(&l->simclr, c, m->za, m->zb, m->B, m->D, loss, m->dza,
                                      m->dzb);
    return sogclr_uni_forward_backward(&l->uni, c, m->za, m->zb, idx, m->B, m->D, loss, m->dza,
                                       m->dzb);
}

void sg_ssl_forward(struct sg_ssl_model *m, struct sg_ctx *c, const float *img)
{
    int B2 = 2 * m->B;
    const float *f = sg_resnet_forward(&m->backbone, c, img, 1);
    const float *p = sg_proj_head_forward(&m->head, c, f, 1);
    op_l2norm_forward(c, m->z, m->norm, p, B2, m->D, NORM_EPS);
    split_views(m, c, m->z, m->za, m->zb);
}

int sg_ssl_backward(struct sg_ssl_model *m, struct sg_ssl_loss *l, struct sg_ctx *c,
                    const int64_t *idx, float *loss)
{
    int B2 = 2 * m->B;
    if (loss_step(l, c, m, idx, loss)) return -1;
    join_views(m, c, m->dza, m->dzb, m->dz);
    op_l2norm_backward(c, m->dz, m->dz, m->z, m->norm, B2, m->D, NORM_EPS);
    sg_proj_head_backward(&m->head, c, m->backbone.dfeat, m->dz, 1);
    sg_resnet_backward(&m->backbone, c, NULL, m->backbone.dfeat, 1);
    return 0;
}

int sg_ssl_step(struct sg_ssl_model *m, struct sg_ssl_loss *l, struct sg_ctx *c, const float *img,
                const int64_t *idx, float *loss)
{
    sg_ssl_forward(m, c, img);
    return sg_ssl_backward(m, l, c, idx, loss);
}

int sg_ssl_loss_init(struct sg_ssl_loss *l, const struct sg_train_config *cfg, int64_t N)
{
    memset(l, 0, sizeof *l);
    l->kind = cfg->loss.name;
    if (l->kind == SG_LOSS_SIMCLR) return sg_simclr_loss_init(&l->simclr, cfg->loss.tau);
    struct sogclr_uni_config uc;
    sogclr_uni_config_default(&uc, N);
    uc.tau = cfg->loss.tau;
    uc.gamma = cfg->loss.gamma;
    uc.schedule = cfg->loss.gamma_schedule ? SOGCLR_UNI_GAMMA_COSINE : SOGCLR_UNI_GAMMA_CONSTANT;
    uc.gamma_decay_epochs = cfg->loss.gamma_decay_epochs;
    uc.isogclr = l->kind == SG_LOSS_ISOGCLR_UNI;
    uc.tau_min = cfg->loss.tau_min;
    uc.tau_max = cfg->loss.tau_max;
    uc.rho = cfg->loss.rho;
    uc.eta = cfg->loss.eta;
    uc.beta = cfg->loss.beta;
    return sogclr_uni_init(&l->uni, &uc);
}

void sg_ssl_loss_free(struct sg_ssl_loss *l)
{
    sg_host_stage_free(&l->stage);
    if (l->kind == SG_LOSS_SIMCLR)
        sg_simclr_loss_free(&l->simclr);
    else
        sogclr_uni_free(&l->uni);
}

int sg_ssl_loss_set_epoch(struct sg_ssl_loss *l, int64_t epoch)
{
    return l->kind == SG_LOSS_SIMCLR ? 0 : sogclr_uni_set_epoch(&l->uni, (int)epoch);
}

int sg_ssl_loss_save(const struct sg_ssl_loss *l, struct sg_st_writer *w, const char *prefix)
{
    return l->kind == SG_LOSS_SIMCLR ? 0 : sogclr_uni_state_save(&l->uni, w, prefix);
}

int sg_ssl_loss_load(struct sg_ssl_loss *l, const struct sg_st_file *f, const char *prefix)
{
    return l->kind == SG_LOSS_SIMCLR ? 0 : sogclr_uni_state_load(&l->uni, f, prefix);
}
