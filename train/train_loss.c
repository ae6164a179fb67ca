/*
 * train/train_loss.c — the trainer's loss interface (see train/train_loss.h).
 *
 * The logit scale is a parameter on the context's device: it is read, its gradient increased
 * and it is clamped through 4-byte copies (sg_memcpy_d2h / h2d; plain loads and stores on the
 * CPU), never through ->data[0] (a device pointer on CUDA).
 */
#include "train/train_loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "losses/clip_dist.h"
#include "losses/gcl_bimodal_dist.h"

int sg_train_loss_init(struct sg_train_loss *l, const struct sg_train_config *cfg, int64_t N)
{
    int sched = cfg->loss.gamma_schedule ? GCL_BI_GAMMA_COSINE : GCL_BI_GAMMA_CONSTANT;
    memset(l, 0, sizeof *l);
    l->kind = cfg->loss.name;
    l->tau_min = cfg->loss.tau_min;
    l->tau_max = cfg->loss.tau_max;
    switch (l->kind) {
    case SG_LOSS_SOGCLR: {
        struct sogclr_config c = {N, cfg->loss.tau, cfg->loss.gamma, sched,
                                  cfg->loss.gamma_decay_epochs};
        return sogclr_init(&l->sog, &c);
    }
    case SG_LOSS_ISOGCLR: {
        struct isogclr_config c = {.N = N,
                                   .tau_init = cfg->loss.tau,
                                   .gamma = cfg->loss.gamma,
                                   .gamma_schedule = sched,
                                   .gamma_decay_epochs = cfg->loss.gamma_decay_epochs,
                                   .rho = cfg->loss.rho,
                                   .eta = cfg->loss.eta,
                                   .beta = cfg->loss.beta,
                                   .tau_min = cfg->loss.tau_min,
                                   .tau_max = cfg->loss.tau_max};
        return isogclr_init(&l->isog, &c);
    }
    case SG_LOSS_FASTCLIP: {
        struct fastclip_config c = {N, cfg->loss.gamma, sched, cfg->loss.gamma_decay_epochs,
                                    cfg->loss.rho};
        return fastclip_init(&l->fast, &c);
    }
    default:
        sg_clip_loss_init(&l->clip);
        return 0;
    }
}

void sg_train_loss_free(struct sg_train_loss *l)
{
    sg_host_stage_free(&l->stage);
    switch (l->kind) {
    case SG_LOSS_SOGCLR:
        sogclr_free(&l->sog);
        break;
    case SG_LOSS_ISOGCLR:
        isogclr_free(&l->isog);
        break;
    case SG_LOSS_FASTCLIP:
        fastclip_free(&l->fast);
        break;
    default:
        sg_clip_loss_free(&l->clip);
    }
}

int sg_train_loss_set_epoch(struct sg_train_loss *l, int64_t epoch)
{
    switch (l->kind) {
    case SG_LOSS_SOGCLR:
        return sogclr_set_epoch(&l->sog, epoch);
    case SG_LOSS_ISOGCLR:
        return isogclr_set_epoch(&l->isog, epoch);
    case SG_LOSS_FASTCLIP:
        return fastclip_set_epoch(&l->fast, epoch);
    default:
        return 0;
    }
}

/* One float of device memory (synchronises on CUDA: the host uses the value next). */
static float get1(struct sg_ctx *c, const float *p)
{
    float v;
    sg_memcpy_d2h(c, &v, p, sizeof v);
    return v;
}

static void set1(struct sg_ctx *c, float *p, float v)
{
    sg_memcpy_h2d(c, p, &v, sizeof v);
}

int sg_train_loss_step(struct sg_train_loss *l, struct sg_ctx *c, const float *zi, const float *zt,
                       const int64_t *idx, int B, int E, struct sg_param *logit_scale, float *dzi,
                       float *dzt, struct sg_loss_values *v)
{
    memset(v, 0, sizeof *v);
    switch (l->kind) {
    case SG_LOSS_SOGCLR: {
        struct sogclr_out o;
        if (sogclr_step(c, &l->sog, zi, zt, idx, B, E, dzi, dzt, &o)) return -1;
        *v = (struct sg_loss_values){o.loss, o.objective, o.gamma, l->sog.cfg.tau};
        return 0;
    }
    case SG_LOSS_ISOGCLR: {
        struct isogclr_out o;
        if (isogclr_step(c, &l->isog, zi, zt, idx, B, E, dzi, dzt, &o)) return -1;
        *v = (struct sg_loss_values){o.loss, o.objective, o.gamma,
                                     0.5f * (o.tau_img_mean + o.tau_txt_mean)};
        return 0;
    }
    case SG_LOSS_FASTCLIP: {
        struct fastclip_out o;
        float tau = expf(-get1(c, logit_scale->data));
        if (fastclip_step(c, &l->fast, tau, zi, zt, idx, B, E, dzi, dzt, &o)) return -1;
        set1(c, logit_scale->grad, get1(c, logit_scale->grad) + o.dlog_scale);
        *v = (struct sg_loss_values){o.loss, o.objective, o.gamma, tau};
        return 0;
    }
    default: {
        float loss = 0.0f, p = get1(c, logit_scale->data), dp = 0.0f; /* dp: a host float */
        if (sg_clip_loss_compute(&l->clip, c, zi, zt, B, E, p, &loss, dzi, dzt, &dp)) return -1;
        set1(c, logit_scale->grad, get1(c, logit_scale->grad) + dp);
        *v = (struct sg_loss_values){loss, loss, 0.0f, expf(-p)};
        return 0;
    }
    }
}

int sg_train_loss_learns_logit_scale(const struct sg_train_loss *l)
{
    return l->kind == SG_LOSS_CLIP || l->kind == SG_LOSS_FASTCLIP;
}

/* One loss of the distributed step on host buffers; *dlog_scale: the global logit-scale
 * gradient (0 for sogclr and isogclr). */
static int step_dist_host(struct sg_train_loss *l, struct sg_dist *d, struct sg_ctx *c,
                          const struct sg_pair_view *h, int B, int E, float p, float *dlog_scale,
                          struct sg_loss_values *v)
{
    *dlog_scale = 0.0f;
    if (l->kind == SG_LOSS_SOGCLR) {
        struct sogclr_out o;
        if (sogclr_step_dist(d, c, &l->sog, h->a, h->b, h->idx, B, E, h->da, h->db, &o)) return -1;
        *v = (struct sg_loss_values){o.loss, o.objective, o.gamma, l->sog.cfg.tau};
        return 0;
    }
    if (l->kind == SG_LOSS_ISOGCLR) {
        struct isogclr_out o;
        if (isogclr_step_dist(d, c, &l->isog, h->a, h->b, h->idx, B, E, h->da, h->db, &o))
            return -1;
        *v = (struct sg_loss_values){o.loss, o.objective, o.gamma,
                                     0.5f * (o.tau_img_mean + o.tau_txt_mean)};
        return 0;
    }
    if (l->kind == SG_LOSS_CLIP) {
        float loss = 0.0f;
        if (sg_clip_loss_step_dist(d, &l->clip, h->a, h->b, B, E, p, &loss, h->da, h->db,
                                   dlog_scale))
            return -1;
        *v = (struct sg_loss_values){loss, loss, 0.0f, expf(-p)};
        return 0;
    }
    SG_CHECK(l->kind == SG_LOSS_FASTCLIP, "no distributed step for loss kind %d", l->kind);
    struct fastclip_out o;
    float tau = expf(-p);
    if (fastclip_step_dist(d, c, &l->fast, tau, h->a, h->b, h->idx, B, E, h->da, h->db, &o))
        return -1;
    *dlog_scale = o.dlog_scale;
    *v = (struct sg_loss_values){o.loss, o.objective, o.gamma, tau};
    return 0;
}

int sg_train_loss_step_dist(struct sg_train_loss *l, struct sg_dist *d, struct sg_ctx *c,
                            const float *zi, const float *zt, const int64_t *idx, int B, int E,
                            struct sg_param *logit_scale, float *dzi, float *dzt,
                            struct sg_loss_values *v)
{
    memset(v, 0, sizeof *v);
    struct sg_pair_view h = sg_stage_down(&l->stage, c, zi, zt, idx, B, E, dzi, dzt);
    int temp = sg_train_loss_learns_logit_scale(l);
    float p = temp ? get1(c, logit_scale->data) : 0.0f, dp = 0.0f;
    if (step_dist_host(l, d, c, &h, B, E, p, &dp, v)) return -1;
    sg_stage_up(c, &h, B, E, dzi, dzt);
    if (d->rank == 0 && temp) set1(c, logit_scale->grad, get1(c, logit_scale->grad) + dp);
    return 0;
}

void sg_train_loss_after_step(struct sg_train_loss *l, struct sg_ctx *c,
                              struct sg_param *logit_scale)
{
    if (!sg_train_loss_learns_logit_scale(l)) return;
    float p = get1(c, logit_scale->data), was = p;
    if (l->kind == SG_LOSS_CLIP) sg_clip_clamp_logit_scale(&p);
    if (l->kind == SG_LOSS_FASTCLIP) {
        /* tau = exp(-p) in [tau_min, tau_max] */
        float lo = -logf(l->tau_max), hi = -logf(l->tau_min);
        p = p < lo ? lo : (p > hi ? hi : p);
    }
    if (memcmp(&p, &was, sizeof p)) set1(c, logit_scale->data, p); /* bits: NaN stays NaN */
}

int sg_train_loss_save(const struct sg_train_loss *l, struct sg_st_writer *w, const char *prefix)
{
    switch (l->kind) {
    case SG_LOSS_SOGCLR:
        return sogclr_state_save(&l->sog, w, prefix);
    case SG_LOSS_ISOGCLR:
        return isogclr_state_save(&l->isog, w, prefix);
    case SG_LOSS_FASTCLIP:
        return fastclip_state_save(&l->fast, w, prefix);
    default:
        return 0;
    }
}

int sg_train_loss_load(struct sg_train_loss *l, const struct sg_st_file *f, const char *prefix)
{
    switch (l->kind) {
    case SG_LOSS_SOGCLR:
        return sogclr_state_load(&l->sog, f, prefix);
    case SG_LOSS_ISOGCLR:
        return isogclr_state_load(&l->isog, f, prefix);
    case SG_LOSS_FASTCLIP:
        return fastclip_state_load(&l->fast, f, prefix);
    default:
        return 0;
    }
}
