/*
 * vision/vit.h — open_clip's / OpenAI CLIP's VisionTransformer (image tower), forward and
 * backward.
 *
 *   img (B,3,S,S) NCHW, patch p, G = S/p, P = G*G patches, T = 1 + P tokens, C = width
 *   e      = conv1(img)  -> tokens (B,P,C)      conv1.weight (C,3,p,p), stride p, no bias; done
 *                                               as patchify (B*P, 3*p*p) @ conv1.weight^T
 *   x0     = [class_embedding ; e] + positional_embedding          (B,T,C)
 *   x      = transformer(ln_pre(x0))                                non-causal (nn/transformer.h)
 *   pooled = ln_post(x[:, 0])                                       class token (B,C)
 *   out    = pooled @ proj                                          (B,E)   proj (C,E)
 * open_clip (final_ln_after_pool=False, pool_type "tok") applies ln_post to every token and then
 * takes token 0; LayerNorm is per token, so normalising only the class token is identical.
 * No patch dropout, no attentional pooler.
 *
 * Parameter names (open_clip state_dict keys under "<prefix>.", e.g. "visual."): conv1.weight,
 * class_embedding (C), positional_embedding (T,C), ln_pre.{weight,bias}, transformer.resblocks.
 * <i>.*, ln_post.{weight,bias}, proj (C,E). Init as open_clip: class/positional/proj normal with
 * std C^-0.5, conv1 torch's Conv2d default (uniform +-1/sqrt(3*p*p)), LN 1/0.
 *
 * Memory: plan(B) returns the activation bytes; bind carves them; forward/backward never
 * allocate. Gradient contract: backward ACCUMULATES into every parameter grad (class and
 * positional embeddings summed over the batch), OVERWRITES dimg (NULL skips).
 * Device: patchify/unpatchify, token assembly and class-token gather/scatter are host loops on
 * bound memory: CPU only for now (a CUDA ctx needs device kernels for those).
 * Reference: tests/ref/gen_vit.py (open_clip's VisionTransformer rebuilt in plain torch).
 */
#ifndef SG_VISION_VIT_H
#define SG_VISION_VIT_H

#include <stddef.h>

#include "core/arena.h"
#include "core/ctx.h"
#include "core/params.h"
#include "nn/transformer.h"

struct sg_vit_config {
    int image_size; /* S: 224; must be a multiple of patch */
    int patch;      /* p: 16 or 32 */
    int width;      /* C: 768 */
    int layers;     /* 12 */
    int heads;      /* 12 */
    int embed_dim;  /* E: 512 (proj columns) */
    int quick_gelu; /* 1: QuickGELU (OpenAI CLIP weights), 0: exact GELU */
};

struct sg_vit {
    struct sg_vit_config cfg;
    int G, P, T, K; /* grid side, patches, tokens, 3*p*p */
    struct sg_param *conv1, *cls, *pos, *lnpre_w, *lnpre_b, *lnpost_w, *lnpost_b, *proj;
    struct sg_transformer tr;
    int B; /* planned */
    /* activations */
    float *patches;        /* (B*P, K) patchified image, rows (c,kh,kw) as conv1.weight */
    float *emb;            /* (B*P, C) patch embeddings; patch-embedding grad in backward */
    float *x0;             /* (B,T,C) tokens + positions (ln_pre input) */
    float *xl;             /* (B,T,C) ln_pre output (transformer input) */
    float *mean0, *rstd0;  /* (B*T) ln_pre stats */
    float *tok;            /* (B,C) class token of the transformer output */
    float *pooled;         /* (B,C) ln_post(tok) */
    float *mean1, *rstd1;  /* (B) ln_post stats */
    float *out;            /* (B,E) */
    float *dpooled, *dtok; /* (B,C) */
    float *dproj;          /* (C,E) scratch for the projection gradient */
    float *dy, *dxl;       /* (B,T,C); dy also holds d(x0) */
    float *dpatches;       /* (B*P, K) */
};

void sg_vit_init(struct sg_vit *m, const struct sg_vit_config *cfg, struct sg_params *ps,
                 const char *prefix);
size_t sg_vit_plan(struct sg_vit *m, int B);
void sg_vit_bind(struct sg_vit *m, struct sg_arena *a);
/* img (B,3,S,S); returns out (B,E) (bound memory). */
float *sg_vit_forward(struct sg_vit *m, struct sg_ctx *c, const float *img);
/* dout (B,E); accumulates every parameter gradient; dimg (B,3,S,S) overwritten, NULL skips. */
void sg_vit_backward(struct sg_vit *m, struct sg_ctx *c, float *dimg, const float *dout);

#endif
