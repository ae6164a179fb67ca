/*
 * train/train_loss.h — one interface over the image-text losses for the trainer:
 *   sogclr (two-way SogCLR, default), isogclr, fastclip (FastCLIP-v3: global learnable
 *   temperature tau = exp(-logit_scale), clamped to [tau_min, tau_max]), clip (InfoNCE with the
 *   model's logit scale, clamped to [0, ln 100] after each optimizer step as open_clip).
 * step() writes dL/dzi, dL/dzt and adds the logit-scale gradient (clip, fastclip) into the
 * model's logit_scale grad. State save/load under a prefix for checkpoints.
 * Devices: on a CUDA context zi, zt, idx, dzi, dzt are device pointers and the logit scale is a
 * device parameter (read / written through 4-byte copies); the loss state lives where the
 * loss's first step put it and save/load move it (the "Devices" notes of losses/).
 */
#ifndef SG_TRAIN_LOSS_H
#define SG_TRAIN_LOSS_H

#include <stdint.h>

#include "core/ctx.h"
#include "core/dist.h"
#include "core/params.h"
#include "core/safetensors.h"
#include "losses/clip.h"
#include "losses/fastclip.h"
#include "losses/isogclr.h"
#include "losses/sogclr.h"
#include "train/config.h"
#include "train/host_stage.h"

struct sg_train_loss {
    int kind; /* enum sg_loss_kind */
    float tau_min, tau_max;
    struct sogclr sog;
    struct isogclr isog;
    struct fastclip fast;
    struct sg_clip_loss clip;
    struct sg_host_stage stage; /* step_dist on CUDA: host copies of zi, zt, idx, dzi, dzt */
};

struct sg_loss_values {
    float loss, objective, gamma, tau; /* tau: the temperature used (mean for isogclr) */
};

/* N: dataset size (samples). Returns 0 or -1 with sg_err. */
int sg_train_loss_init(struct sg_train_loss *l, const struct sg_train_config *cfg, int64_t N);
void sg_train_loss_free(struct sg_train_loss *l);
int sg_train_loss_set_epoch(struct sg_train_loss *l, int64_t epoch);
/* zi, zt (B,E) normalized; idx (B) sample ids; dzi, dzt (B,E) overwritten (all on c's device);
 * logit_scale: the model's parameter (data read, grad accumulated). Returns 0, or -1
 * (non-finite input; state untouched). */
int sg_train_loss_step(struct sg_train_loss *l, struct sg_ctx *c, const float *zi, const float *zt,
                       const int64_t *idx, int B, int E, struct sg_param *logit_scale, float *dzi,
                       float *dzt, struct sg_loss_values *v);
/* The same step on a data-parallel batch (world ranks of B pairs each; losses sogclr, isogclr,
 * fastclip and clip: losses/gcl_bimodal_dist.h, losses/clip_dist.h), every rank calling it in the
 * same order. The logged values are those of the global batch. The temperature / logit-scale
 * gradient is the global one on every rank, so rank 0 alone adds it (the parameter gradients are
 * summed over the ranks next). On a CUDA context zi, zt, idx are copied to the host, the loss runs
 * there with host collectives and dzi, dzt are copied back (2 B E floats each way: 1 MiB for B =
 * 256, E = 512); the loss state then lives on the host. Returns 0, or -1 with sg_err (bad input on
 * any rank: -1 on every rank, state untouched; a collective failure). */
int sg_train_loss_step_dist(struct sg_train_loss *l, struct sg_dist *d, struct sg_ctx *c,
                            const float *zi, const float *zt, const int64_t *idx, int B, int E,
                            struct sg_param *logit_scale, float *dzi, float *dzt,
                            struct sg_loss_values *v);
/* 1 for the losses whose temperature is the model's learnable logit scale (clip, fastclip). */
int sg_train_loss_learns_logit_scale(const struct sg_train_loss *l);
/* After the optimizer step: clamp the logit scale where the loss requires it. */
void sg_train_loss_after_step(struct sg_train_loss *l, struct sg_ctx *c,
                              struct sg_param *logit_scale);
int sg_train_loss_save(const struct sg_train_loss *l, struct sg_st_writer *w, const char *prefix);
int sg_train_loss_load(struct sg_train_loss *l, const struct sg_st_file *f, const char *prefix);

#endif
