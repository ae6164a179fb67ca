/*
 * nn/transformer.h — open_clip's ResidualAttentionBlock and Transformer (pre-LN), forward and
 * backward on ops/ (layernorm, linear, attention core, activations, residual adds).
 *
 * Block on x(B,T,C), N = B*T tokens:
 *   x1  = x  + out_proj(attn(in_proj(ln_1(x))))       attention over T with NH heads,
 *                                                       optional causal mask (-inf for j > i)
 *   out = x1 + c_proj(act(c_fc(ln_2(x1))))             c_fc C -> 4C, act GELU (exact erf) or
 *                                                       QuickGELU (OpenAI CLIP)
 * Parameter names (open_clip / nn.MultiheadAttention state_dict keys under "<prefix>."):
 *   ln_1.{weight,bias} (C), attn.in_proj_weight (3C,C), attn.in_proj_bias (3C),
 *   attn.out_proj.{weight (C,C), bias (C)}, ln_2.{weight,bias} (C),
 *   mlp.c_fc.{weight (4C,C), bias (4C)}, mlp.c_proj.{weight (C,4C), bias (C)}.
 * Transformer = `layers` blocks named "<prefix>.resblocks.<i>.". LayerNorm eps 1e-5; no dropout
 * (open_clip's default attn/mlp dropout is 0).
 * Init (open_clip TextTransformer.init_parameters): in_proj std C^-0.5, out_proj and c_proj
 * std C^-0.5 (2 layers)^-0.5, c_fc std (2C)^-0.5, biases 0, LN weight 1 bias 0.
 *
 * Memory: sg_transformer_plan(B, T) returns the activation bytes; sg_transformer_bind carves
 * them from an arena. forward/backward never allocate.
 * Activation recomputation (gradient checkpointing, as torch.utils.checkpoint per block in
 * open_clip's set_grad_checkpointing): with m->recompute set before plan, every block keeps only
 * its output; the block internals (ln_1/ln_2 outputs and stats, qkv, attention probabilities,
 * attention output, x1, MLP hidden) live in ONE shared set of buffers, and backward re-runs each
 * block's forward before its backward (the last block's internals are still valid and are not
 * recomputed). Memory per block drops from ~(13C + 2*NH*T)*N floats to C*N; compute grows by
 * one forward of layers-1 blocks. Results are bit-identical to the stored mode (same ops, same
 * thread count).
 * Gradient contract: backward ACCUMULATES into every parameter grad, OVERWRITES dinp (NULL skips).
 * Reference: torch.nn.MultiheadAttention(batch_first=True) + nn.LayerNorm + nn.Linear as
 * open_clip.transformer.ResidualAttentionBlock (tests/ref/gen_text_encoder.py).
 */
#ifndef SG_NN_TRANSFORMER_H
#define SG_NN_TRANSFORMER_H

#include <stddef.h>

#include "core/arena.h"
#include "core/ctx.h"
#include "core/params.h"
#include "ops/activation.h"

#define SG_TRANSFORMER_MAX_LAYERS 64

struct sg_resblock {
    struct sg_param *ln1_w, *ln1_b, *in_w, *in_b, *out_w, *out_b;
    struct sg_param *ln2_w, *ln2_b, *fc_w, *fc_b, *proj_w, *proj_b;
    int C, NH;
    /* activations (bound), N = B*T tokens */
    const float *inp;                     /* (N,C) block input, set by forward */
    float *ln1, *ln2;                     /* (N,C) ln_1(x), ln_2(x1) */
    float *mean1, *rstd1, *mean2, *rstd2; /* (N) */
    float *qkv;                           /* (N,3C) */
    float *att;                           /* (B,NH,T,T) softmax probabilities */
    float *ao;                            /* (N,C) attention core output (before out_proj) */
    float *x1;                            /* (N,C) after the attention residual */
    float *h;                             /* (N,4C) c_fc output */
    float *ha;                            /* (N,4C) act(h): the transformer's shared buffer */
    float *out;                           /* (N,C) block output */
};

struct sg_transformer {
    struct sg_resblock blocks[SG_TRANSFORMER_MAX_LAYERS];
    int layers, C, NH, causal;
    int recompute;   /* gradient checkpointing (see above); set before plan */
    enum sg_act act; /* SG_ACT_GELU or SG_ACT_QUICKGELU */
    int B, T;        /* planned batch; sequence length of the current pass (<= Tcap) */
    int Tcap;        /* planned sequence length */
    /* backward scratch shared by the blocks */
    float *g0, *g1, *t0, *t1; /* (N,C) */
    float *dqkv;              /* (N,3C) */
    float *dh;                /* (N,4C) */
    float *ha;                /* (N,4C) act(h) of the block being run: shared by all blocks and
                                 recomputed from h in backward (4C floats per token and block
                                 saved for one cheap activation pass) */
    float *ascr;              /* (B,NH,T,T) attention backward workspace */
};

void sg_transformer_init(struct sg_transformer *m, struct sg_params *ps, const char *prefix, int C,
                         int layers, int NH, int causal, enum sg_act act);
size_t sg_transformer_plan(struct sg_transformer *m, int B, int T);
void sg_transformer_bind(struct sg_transformer *m, struct sg_arena *a);
/* Run the next passes on T <= the planned length (buffers keep their planned size). */
void sg_transformer_set_length(struct sg_transformer *m, int T);
/* inp (B,T,C) must stay valid until backward; returns the output (B,T,C) (bound memory). */
float *sg_transformer_forward(struct sg_transformer *m, struct sg_ctx *c, const float *inp);
/* dout (B,T,C) (not modified); dinp (B,T,C) overwritten, NULL to skip. */
void sg_transformer_backward(struct sg_transformer *m, struct sg_ctx *c, float *dinp,
                             const float *dout);

#endif
