/*
 * vision/proj_head.h — the SimCLR/SogCLR/MoCo-v3 projection MLP head (the `fc` that replaces
 * the ResNet classifier), forward (training: batch statistics, running stats updated; eval:
 * running stats) and backward.
 *
 * Structure (SogCLR repo builder `_build_mlp(num_layers, input_dim, mlp_dim, output_dim,
 * last_bn=True)`, an nn.Sequential): for layer l = 0..L-1 with d_in = in_dim (l == 0) else
 * hidden_dim and d_out = out_dim (l == L-1) else hidden_dim:
 *   Linear(d_in -> d_out, bias=False), then for l < L-1: BatchNorm1d(d_out) + ReLU,
 *   for l == L-1: BatchNorm1d(d_out, affine=False).
 * Sequential indices 3l (Linear), 3l+1 (BN), 3l+2 (ReLU), so the state_dict names under
 * `prefix` (e.g. "fc") are, for L = 2 (SogCLR default, --mlp-dim 2048 --dim 128):
 *   0.weight, 1.weight, 1.bias, 1.running_mean, 1.running_var, 3.weight,
 *   4.running_mean, 4.running_var
 * and for L = 3 (MoCo-v3): 0.weight, 1.*, 3.weight, 4.*, 6.weight, 7.running_{mean,var}.
 * (num_batches_tracked is not registered; see nn/layers.h.) Input (B, in_dim), output
 * (B, out_dim). BatchNorm1d on (B, C) is batchnorm2d with HW = 1 (ops/norm.h).
 *
 * Reference: torch nn.Sequential as above (tests/ref/gen_proj_head.py).
 *
 * Memory: sg_proj_head_plan(B) returns the activation bytes (arena-rounded);
 * sg_proj_head_bind(arena) carves them. forward/backward never allocate.
 * Gradient contract: backward ACCUMULATES into every parameter's grad, OVERWRITES dinp (NULL
 * skips the input gradient).
 */
#ifndef SG_VISION_PROJ_HEAD_H
#define SG_VISION_PROJ_HEAD_H

#include <stddef.h>

#include "core/arena.h"
#include "core/ctx.h"
#include "core/params.h"
#include "nn/layers.h"

#define SG_PROJ_HEAD_MAX_LAYERS 8

struct sg_proj_head_layer {
    struct sg_linear lin;
    struct sg_batchnorm2d bn; /* bn.w, bn.b NULL for the last layer (affine=False) */
    int relu;                 /* all layers but the last */
    const float *inp;         /* (B, d_in), set by forward */
    float *z, *y, *a;         /* (B, d_out): linear out, bn out, relu(y) (a NULL without relu) */
    float *mean, *rstd;       /* (d_out) batch (or running) statistics for backward */
};

struct sg_proj_head {
    int nlayers, in_dim, hidden_dim, out_dim;
    struct sg_proj_head_layer layers[SG_PROJ_HEAD_MAX_LAYERS];
    int B;          /* planned batch */
    float *g0, *g1; /* (B, max dim) gradient ping-pong */
};

/* nlayers >= 1 (nlayers == 1: Linear(in -> out) + BN(affine=False), hidden_dim unused). */
void sg_proj_head_init(struct sg_proj_head *m, struct sg_params *ps, const char *prefix,
                       int nlayers, int in_dim, int hidden_dim, int out_dim);
/* Activation bytes for batch B; remembers B. */
size_t sg_proj_head_plan(struct sg_proj_head *m, int B);
void sg_proj_head_bind(struct sg_proj_head *m, struct sg_arena *a);
/* inp (B, in_dim), valid until backward; returns the output (B, out_dim) inside the bound
 * activations. training: batch statistics + running-stat update (needs B > 1). */
float *sg_proj_head_forward(struct sg_proj_head *m, struct sg_ctx *c, const float *inp,
                            int training);
/* dout (B, out_dim); dinp (B, in_dim) overwritten, NULL to skip. training must match the
 * forward. */
void sg_proj_head_backward(struct sg_proj_head *m, struct sg_ctx *c, float *dinp, const float *dout,
                           int training);

#endif
