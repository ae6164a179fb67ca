/*
 * train/ssl.h — unimodal self-supervised training (SimCLR / SogCLR recipe, ALGORITHMS.md 2(d)):
 * a torchvision ResNet backbone (no fc) + the SogCLR projection head (vision/proj_head.h), two
 * augmented views per image, and the unimodal SogCLR (losses/sogclr_uni.h, iSogCLR option) or
 * SimCLR NT-Xent (losses/simclr.h) loss on the L2-normalised projections.
 *
 * Both views go through the backbone as ONE batch of 2B images (rows b*2 + v, the loader's
 * (B, views, 3, S, S) layout), so BatchNorm statistics span both views as in SimCLR's global BN
 * on one device. Parameter names: "backbone.<torchvision name>", "head.<i>.*" (nn.Sequential).
 * The backbone is described by the training config's `ssl` section (train/config.h).
 */
#ifndef SG_TRAIN_SSL_H
#define SG_TRAIN_SSL_H

#include <stdint.h>

#include "core/arena.h"
#include "core/params.h"
#include "core/safetensors.h"
#include "losses/simclr.h"
#include "core/dist.h"
#include "losses/sogclr_uni.h"
#include "train/config.h"
#include "train/host_stage.h"
#include "vision/proj_head.h"
#include "vision/resnet.h"

struct sg_ssl_model {
    struct sg_params ps;
    struct sg_resnet backbone;
    struct sg_proj_head head;
    struct sg_arena act;
    int B, S, D;                /* pairs per step, image side, projection width */
    float *z;                   /* (2B, D) normalized projections, rows b*2 + v */
    float *norm;                /* (2B) */
    float *za, *zb, *dza, *dzb; /* (B, D) view 0 / view 1 rows and their gradients */
    float *dz;                  /* (2B, D) */
};

struct sg_ssl_loss {
    int kind; /* SG_LOSS_SOGCLR_UNI or SG_LOSS_SIMCLR */
    struct sogclr_uni uni;
    struct sg_simclr_loss simclr;
    struct sg_dist *dist;       /* set: the data-parallel step (losses/sogclr_uni_dist.h) */
    struct sg_host_stage stage; /* its host copies on CUDA */
};

/* Builds the backbone + head from cfg->ssl, allocates parameters (+ optimizer slots) and plans
 * batches of B images (this rank's share of cfg->train.batch_size). */
int sg_ssl_model_create(struct sg_ssl_model *m, const struct sg_train_config *cfg, struct sg_ctx *c,
                        int B, uint64_t seed);
void sg_ssl_model_destroy(struct sg_ssl_model *m);
/* img (B, 2, 3, S, S): forward both views, loss, backward (parameter grads accumulate). img and
 * idx (B) on c's device (the model's context); loss a host pointer. */
int sg_ssl_step(struct sg_ssl_model *m, struct sg_ssl_loss *l, struct sg_ctx *c, const float *img,
                const int64_t *idx, float *loss);
/* The two halves of sg_ssl_step (the trainer queues its next upload in between): forward of
 * both views into za / zb; then loss, backward (grads accumulate). img must stay valid until
 * sg_ssl_backward returns. */
void sg_ssl_forward(struct sg_ssl_model *m, struct sg_ctx *c, const float *img);
int sg_ssl_backward(struct sg_ssl_model *m, struct sg_ssl_loss *l, struct sg_ctx *c,
                    const int64_t *idx, float *loss);

int sg_ssl_loss_init(struct sg_ssl_loss *l, const struct sg_train_config *cfg, int64_t N);
void sg_ssl_loss_free(struct sg_ssl_loss *l);
int sg_ssl_loss_set_epoch(struct sg_ssl_loss *l, int64_t epoch);
int sg_ssl_loss_save(const struct sg_ssl_loss *l, struct sg_st_writer *w, const char *prefix);
int sg_ssl_loss_load(struct sg_ssl_loss *l, const struct sg_st_file *f, const char *prefix);

#endif
