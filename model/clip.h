/*
 * model/clip.h — a CLIP model: image tower + text tower + logit scale, assembled from a model
 * config (configs/models/<name>.yaml, model/clip_config.h), with open_clip's state_dict names.
 *
 *   zi = normalize(visual(img))       img (B,3,S,S) NCHW fp32 -> zi (B,E), rows unit L2 norm
 *   zt = normalize(text(ids))         ids (B,T) int32        -> zt (B,E)
 *   logit_scale                       scalar parameter (open_clip: log(1/0.07)); the loss uses
 *                                     exp(logit_scale) (CLIP) or ignores it (SogCLR's fixed tau)
 * Towers: "vit" (vision/vit.h), "modified_resnet" (vision/modified_resnet.h, CLIP RN50) and
 * "resnet" (vision/resnet.h, torchvision ResNet whose fc is the projection to E).
 * Names (open_clip CLIP class): visual.* (the image tower), then the text tower at top level:
 * token_embedding.weight, positional_embedding, transformer.resblocks.<i>.*, ln_final.*,
 * text_projection, and logit_scale (0-dim). Weights load from and save to open_clip-named
 * safetensors (sg_params_save / sg_params_load).
 *
 * Memory: sg_clip_create allocates parameters (+ optimizer moments when with_optim);
 * sg_clip_plan(B) sizes every activation for batch B once, allocates one arena and binds the
 * towers; forward/backward then never allocate. A later plan with another B re-sizes.
 * Activation recomputation (cfg.grad_checkpointing): transformer blocks keep only their
 * outputs and are recomputed in backward (nn/transformer.h); ResNet towers are unaffected.
 * Weight decay flags (SG_PARAM_DECAY, read by nn/optim.h): conv / linear / projection weight
 * matrices; never biases, norms, embeddings (token, positional, class) or logit_scale.
 *
 * Gradient contract: sg_clip_backward takes dL/dzi and dL/dzt (B,E) of the normalized features
 * and ACCUMULATES every parameter gradient (the caller zeroes grads per step and adds the loss's
 * dL/dlogit_scale to logit_scale->grad itself).
 * Device: CPU (the towers' glue loops are host code; see the tower headers).
 */
#ifndef SG_MODEL_CLIP_H
#define SG_MODEL_CLIP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/arena.h"
#include "core/ctx.h"
#include "core/params.h"
#include "text/text_encoder.h"
#include "vision/modified_resnet.h"
#include "vision/resnet.h"
#include "vision/vit.h"

enum sg_vision_arch { SG_VISION_VIT, SG_VISION_MODIFIED_RESNET, SG_VISION_RESNET };

struct sg_clip_vision_config {
    enum sg_vision_arch arch;
    int image_size; /* S */
    int patch_size; /* vit */
    int width;      /* vit: C; resnets: base width (64) */
    int layers[4];  /* vit: layers[0]; resnets: blocks per stage */
    int nlayers;    /* entries used in layers: 1 (vit) or 4 (resnets) */
    int head_width; /* vit heads = width / head_width; attnpool heads = 32 width / head_width */
    int cifar_stem; /* resnet: 3x3/1 stem without max-pool */
    int bottleneck; /* resnet: Bottleneck blocks (ResNet-50 style) instead of BasicBlock */
};

struct sg_clip_text_config {
    int context_length, vocab_size, width, heads, layers;
    int eot_token; /* -1: pool at argmax(ids) (open_clip); else the tokenizer's end-of-text id */
};

struct sg_clip_config {
    char name[64]; /* model name (file stem) */
    int embed_dim; /* E */
    int quick_gelu;
    float init_logit_scale; /* log(1/0.07) */
    int grad_checkpointing; /* recompute transformer blocks in backward */
    struct sg_clip_vision_config vision;
    struct sg_clip_text_config text;
};

struct sg_clip {
    struct sg_clip_config cfg;
    struct sg_params ps;
    struct sg_vit vit; /* the tower named by cfg.vision.arch is used */
    struct sg_mrn mrn;
    struct sg_resnet rn;
    struct sg_text_encoder text;
    struct sg_param *logit_scale; /* () */
    struct sg_arena act;          /* activations of the planned batch */
    size_t act_image, act_text;   /* planned activation bytes per tower */
    int B;                        /* planned batch */
    int training;                 /* mode of the last forward */
    float *fi, *ft;               /* (B,E) raw tower outputs (backward overwrites with grads) */
    float *zi, *zt;               /* (B,E) normalized features */
    float *ni, *nt;               /* (B) feature norms */
};

/* Registers the towers' parameters, allocates them on c's device (with Adam/momentum slots
 * when with_optim) and initialises them as open_clip does from seed. */
void sg_clip_create(struct sg_clip *m, const struct sg_clip_config *cfg, struct sg_ctx *c,
                    int with_optim, uint64_t seed);
void sg_clip_destroy(struct sg_clip *m);
/* Size and bind activations for batch B (>= 2). Returns the activation bytes. */
size_t sg_clip_plan(struct sg_clip *m, int B);
/* One line per part: parameters, optimizer state, activations per tower, total. */
void sg_clip_print_plan(const struct sg_clip *m, FILE *f);
/* img (B,3,S,S), ids (B,T) int32 in [0,V) (EOT = the row's largest id); both must stay valid
 * until backward. training: BN batch statistics (+ running stats update). Sets zi, zt. */
void sg_clip_forward(struct sg_clip *m, struct sg_ctx *c, const float *img, const int32_t *ids,
                     int training);
/* Encoders alone (inference): return the normalized features (B,E) (bound memory). */
const float *sg_clip_encode_image(struct sg_clip *m, struct sg_ctx *c, const float *img,
                                  int training);
const float *sg_clip_encode_text(struct sg_clip *m, struct sg_ctx *c, const int32_t *ids);
/* dzi, dzt (B,E): gradients of the loss w.r.t. zi, zt. Accumulates every parameter grad. */
void sg_clip_backward(struct sg_clip *m, struct sg_ctx *c, const float *dzi, const float *dzt);

#endif
