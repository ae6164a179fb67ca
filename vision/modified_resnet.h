/*
 * vision/modified_resnet.h — OpenAI CLIP's ModifiedResNet image encoder (open_clip names),
 * forward (training mode BN: batch statistics, running stats updated) and backward.
 *
 * Structure (CLIP model.py / open_clip modified_resnet.py):
 *   stem: conv1 3x3/2 (3 -> w/2), bn1, relu; conv2 3x3 (w/2 -> w/2), bn2, relu;
 *         conv3 3x3 (w/2 -> w), bn3, relu; avgpool 2x2.
 *   layer1..layer4 of Bottleneck blocks, planes w*{1,2,4,8}, stride 1,2,2,2 on the first block:
 *     conv1 1x1, bn1, relu; conv2 3x3 pad 1, bn2, relu; AvgPool2d(stride) if stride > 1;
 *     conv3 1x1 (-> 4*planes), bn3; identity = downsample(x) when stride > 1 or channels change:
 *     AvgPool2d(stride) ("downsample.-1", no params), conv 1x1 "downsample.0", bn "downsample.1";
 *     out = relu(bn3 + identity).
 *   attnpool (AttentionPool2d): tokens (B, HW+1, C) = [mean over HW; x] + positional_embedding
 *     (HW+1, C); q = q_proj(token 0) * hd^-0.5, k = k_proj(tokens), v = v_proj(tokens);
 *     per head softmax(q k^T) v; output c_proj(o) (B, output_dim). C = 32 * width.
 * Names: conv1.weight, bn1.*, ..., layerL.I.conv{1,2,3}.weight, layerL.I.bn{1,2,3}.*,
 *   layerL.I.downsample.{0.weight,1.*}, attnpool.positional_embedding,
 *   attnpool.{q,k,v,c}_proj.{weight,bias}.
 * Memory: plan/bind as vision/resnet.h. Gradient contract: param grads ACCUMULATE, dinp
 * OVERWRITTEN (NULL skips).
 *
 * Devices: every step is an op_* call (ops/ops.h) or a sg_memcpy_d2d / sg_memset_zero, so inp,
 * dinp, dout and the arena may be device memory on a CUDA context. The attention pool runs as
 *   tok = [mean_HW x; x^T] + pos                   (B,T,C)   op_nchw_tokens + op_tokens
 *   qkv = tok @ [Wq; Wk; Wv]^T + [bq; bk; bv]      (B,T,3C)  one linear on a packed copy
 *   y   = attention(qkv), all T queries            (B,T,C)   op_attention_forward, NH = heads
 *   o   = y[:, 0, :]                               (B,C)     op_gather_tokens_forward
 *   out = c_proj(o)                                (B,out_dim)
 * which equals CLIP's query-token-0 attention (rows 1..T-1 of y are unused; their gradient is
 * exactly zero). The layout ops are in ops/patch.h (CPU and CUDA).
 */
#ifndef SG_VISION_MODIFIED_RESNET_H
#define SG_VISION_MODIFIED_RESNET_H

#include "core/arena.h"
#include "core/ctx.h"
#include "core/params.h"
#include "nn/layers.h"

#define SG_MRN_MAX_BLOCKS 64

struct sg_mrn_config {
    int layers[4];
    int width;      /* 64 for CLIP RN50 */
    int heads;      /* attention heads of attnpool */
    int output_dim; /* c_proj output */
    int image_size; /* input resolution (positional embedding has (image_size/32)^2 + 1 rows) */
};

struct sg_mrn_block {
    struct sg_conv2d conv1, conv2, conv3, down_conv;
    struct sg_batchnorm2d bn1, bn2, bn3, down_bn;
    int has_down, stride;
    int C, P, OC, H, W, OH, OW;
    const float *inp;                             /* (B,C,H,W) set by forward */
    float *c1, *a1, *c2, *a2;                     /* (B,P,H,W) */
    float *p2;                                    /* (B,P,OH,OW) pooled a2 (== a2 if stride 1) */
    float *c3, *out;                              /* (B,OC,OH,OW) */
    float *pd, *cd;                               /* (B,C,OH,OW) pooled x, (B,OC,OH,OW) down conv */
    float *m1, *r1, *m2, *r2, *m3, *r3, *md, *rd; /* bn stats */
};

struct sg_mrn_attnpool {
    struct sg_param *pos; /* (T, C) */
    struct sg_linear q, k, v, cp;
    int C, T, heads, out_dim;
    float *tok;           /* (B,T,C) [mean over HW; x^T] + pos */
    float *wqkv, *bqkv;   /* (3C,C), (3C) q/k/v_proj weights and biases, copied every forward */
    float *qkv;           /* (B,T,3C) [q | k | v] (q unscaled; the attention op scales) */
    float *att;           /* (B,heads,T,T) softmax probabilities */
    float *o;             /* (B,C) token 0 of the attention output (c_proj input) */
    float *out;           /* (B,out_dim) */
    float *do_;           /* (B,C) gradient scratch */
    float *dwqkv, *dbqkv; /* (3C,C), (3C) packed q/k/v weight/bias gradient scratch */
};

struct sg_mrn {
    struct sg_mrn_config cfg;
    struct sg_conv2d conv1, conv2, conv3;
    struct sg_batchnorm2d bn1, bn2, bn3;
    struct sg_mrn_block blocks[SG_MRN_MAX_BLOCKS];
    int nblocks;
    struct sg_mrn_attnpool ap;
    int B, H, W, SH, SW, PH, PW;
    const float *inp;
    float *c1, *a1, *c2, *a2, *c3, *a3; /* stem (B,w/2|w,SH,SW) */
    float *m1, *r1, *m2, *r2, *m3, *r3;
    float *p0;                     /* (B,w,PH,PW) */
    float *g0, *g1, *t0, *t1, *t2; /* gradient scratch, max activation each (>= B*T*3C and
                                      B*heads*T*T: the attention pool borrows them) */
};

void sg_mrn_init(struct sg_mrn *m, const struct sg_mrn_config *cfg, struct sg_params *ps,
                 const char *prefix);
size_t sg_mrn_plan(struct sg_mrn *m, int B);
void sg_mrn_bind(struct sg_mrn *m, struct sg_arena *a);
/* inp (B,3,S,S), S = image_size; returns (B,output_dim). */
float *sg_mrn_forward(struct sg_mrn *m, struct sg_ctx *c, const float *inp, int training);
void sg_mrn_backward(struct sg_mrn *m, struct sg_ctx *c, float *dinp, const float *dout,
                     int training);

#endif
