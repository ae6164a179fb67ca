/*
 * text/text_encoder.h — open_clip's text tower (TextTransformer, "argmax" pooling), forward and
 * backward.
 *
 *   x      = token_embedding[ids] + positional_embedding     ids int32 (B,T), x (B,T,C)
 *   x      = transformer(x)                                   causal (nn/transformer.h)
 *   x      = ln_final(x)                                      every token (as open_clip)
 *   pooled = x[b, eot[b]]                                     (B,C)
 *   out    = pooled @ text_projection                          (B,E)   text_projection (C,E)
 * Only the first Te = max_b(eot[b]) + 1 positions are computed: with the causal mask the later
 * ones affect neither the output nor any gradient (exact; open_clip always runs all T).
 * EOT pooling: eot[b] = argmax_t ids[b,t] (the first position holding the row's largest id).
 * This is open_clip's rule (text.argmax(dim=-1)): the CLIP tokenizer gives the end-of-text
 * token the highest id (49407), and padding is 0, so the largest id marks the EOT position.
 * Vocabularies where the end token is not the largest id (SentencePiece models: eos 2) set
 * eot_token: pooling is then at the first position holding it.
 *
 * Parameter names (open_clip state_dict keys under "<prefix>."): token_embedding.weight (V,C),
 * positional_embedding (T,C), transformer.resblocks.<i>.* (nn/transformer.h),
 * ln_final.{weight,bias} (C), text_projection (C,E). No attn_mask buffer is registered (the
 * causal mask is implicit). Init as open_clip: token_embedding std 0.02, positional 0.01,
 * text_projection std C^-0.5.
 *
 * Memory: plan(B) (T = context length) returns the activation bytes; bind carves them.
 * Gradient contract: backward ACCUMULATES into every parameter grad, including the embedding
 * table (dense, as torch's default) and the positional embedding (summed over the batch).
 * Device: ids are host memory (the tokenizer's output); the EOT search runs on the host and the
 * used ids and EOT positions are copied to the context's device each forward; everything else
 * runs through ops, so the encoder works on CPU and CUDA contexts alike.
 * Reference: tests/ref/gen_text_encoder.py (open_clip's TextTransformer rebuilt in plain torch).
 */
#ifndef SG_TEXT_TEXT_ENCODER_H
#define SG_TEXT_TEXT_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/ctx.h"
#include "core/params.h"
#include "nn/transformer.h"

struct sg_text_encoder_config {
    int vocab;      /* V: 49408 for CLIP */
    int context;    /* T: 77 */
    int width;      /* C: 512 */
    int layers;     /* 12 */
    int heads;      /* 8 */
    int embed_dim;  /* E: 512 (text_projection columns) */
    int quick_gelu; /* 1: QuickGELU (OpenAI CLIP weights), 0: exact GELU */
    int eot_token;  /* < 0: pool at argmax(ids) (open_clip); else at the first eot_token */
};

struct sg_text_encoder {
    struct sg_text_encoder_config cfg;
    struct sg_param *tok, *pos, *lnf_w, *lnf_b, *proj;
    struct sg_transformer tr;
    int B; /* planned */
    /* activations */
    const int32_t *ids; /* (B,T) set by forward */
    int32_t *eot;       /* (B) pooled positions (context device) */
    int32_t *eot_h;     /* (B) the same on the host (malloc'd at plan) */
    int32_t *ids_h;     /* (B,Te) host copy of ids_used (malloc'd at plan) */
    int Te;             /* tokens per row actually run: max(eot) + 1 (see forward) */
    int32_t *ids_used;  /* (B,Te) the row prefixes of ids (context device) */
    float *x0;          /* (B,Te,C) embeddings + positions (sized for T) */
    float *xf;          /* (B,T,C) ln_final output */
    float *mean, *rstd; /* (B*T) ln_final stats */
    float *pooled;      /* (B,C) */
    float *out;         /* (B,E) */
    float *dpooled;     /* (B,C) */
    float *dproj;       /* (C,E) scratch for the projection gradient */
    float *dxf, *dx;    /* (B,T,C) */
};

void sg_text_encoder_init(struct sg_text_encoder *m, const struct sg_text_encoder_config *cfg,
                          struct sg_params *ps, const char *prefix);
size_t sg_text_encoder_plan(struct sg_text_encoder *m, int B);
/* Frees the host buffers allocated by plan (parameters and activations belong to the caller). */
void sg_text_encoder_free(struct sg_text_encoder *m);
void sg_text_encoder_bind(struct sg_text_encoder *m, struct sg_arena *a);
/* ids (B,T) int32 in [0,V), must stay valid until backward; returns out (B,E) (bound memory). */
float *sg_text_encoder_forward(struct sg_text_encoder *m, struct sg_ctx *c, const int32_t *ids);
/* dout (B,E); accumulates every parameter gradient. */
void sg_text_encoder_backward(struct sg_text_encoder *m, struct sg_ctx *c, const float *dout);

#endif
