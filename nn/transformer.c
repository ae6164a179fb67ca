/*
 * nn/transformer.c — open_clip ResidualAttentionBlock / Transformer forward and backward (see
 * nn/transformer.h for structure, names and memory rules).
 */
#include "nn/transformer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/norm.h"

#define LN_EPS 1e-5f

static struct sg_param *add(struct sg_params *ps, const char *prefix, const char *leaf, int ndim,
                            int64_t d0, int64_t d1, unsigned flags, float scale)
{
    char name[SG_PARAM_NAME_MAX];
    int64_t shape[4] = {d0, d1, 0, 0};
    int n = snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", leaf);
    SG_CHECK(n > 0 && n < (int)sizeof name, "param name too long: %s.%s", prefix, leaf);
    return sg_params_add(ps, name, ndim, shape, flags, scale);
}

static void block_init(struct sg_resblock *k, struct sg_params *ps, const char *p, int C, int NH,
                       int layers)
{
    const unsigned W = SG_PARAM_DECAY | SG_PARAM_INIT_NORMAL, Z = SG_PARAM_INIT_ZERO;
    float attn_std = 1.0f / sqrtf((float)C);
    float proj_std = attn_std / sqrtf(2.0f * (float)layers);
    float fc_std = 1.0f / sqrtf(2.0f * (float)C);
    memset(k, 0, sizeof *k);
    k->C = C;
    k->NH = NH;
    k->ln1_w = add(ps, p, "ln_1.weight", 1, C, 0, SG_PARAM_INIT_ONE, 0.0f);
    k->ln1_b = add(ps, p, "ln_1.bias", 1, C, 0, Z, 0.0f);
    k->in_w = add(ps, p, "attn.in_proj_weight", 2, 3 * C, C, W, attn_std);
    k->in_b = add(ps, p, "attn.in_proj_bias", 1, 3 * C, 0, Z, 0.0f);
    k->out_w = add(ps, p, "attn.out_proj.weight", 2, C, C, W, proj_std);
    k->out_b = add(ps, p, "attn.out_proj.bias", 1, C, 0, Z, 0.0f);
    k->ln2_w = add(ps, p, "ln_2.weight", 1, C, 0, SG_PARAM_INIT_ONE, 0.0f);
    k->ln2_b = add(ps, p, "ln_2.bias", 1, C, 0, Z, 0.0f);
    k->fc_w = add(ps, p, "mlp.c_fc.weight", 2, 4 * C, C, W, fc_std);
    k->fc_b = add(ps, p, "mlp.c_fc.bias", 1, 4 * C, 0, Z, 0.0f);
    k->proj_w = add(ps, p, "mlp.c_proj.weight", 2, C, 4 * C, W, proj_std);
    k->proj_b = add(ps, p, "mlp.c_proj.bias", 1, C, 0, Z, 0.0f);
}

void sg_transformer_init(struct sg_transformer *m, struct sg_params *ps, const char *prefix, int C,
                         int layers, int NH, int causal, enum sg_act act)
{
    char p[SG_PARAM_NAME_MAX];
    SG_CHECK(layers >= 1 && layers <= SG_TRANSFORMER_MAX_LAYERS, "transformer: layers %d", layers);
    SG_CHECK(C > 0 && NH > 0 && C % NH == 0, "transformer: width %d heads %d", C, NH);
    SG_CHECK(act == SG_ACT_GELU || act == SG_ACT_QUICKGELU, "transformer: act %d", (int)act);
    memset(m, 0, sizeof *m);
    m->layers = layers;
    m->C = C;
    m->NH = NH;
    m->causal = causal;
    m->act = act;
    for (int i = 0; i < layers; i++) {
        int n = snprintf(p, sizeof p, "%s%sresblocks.%d", prefix, prefix[0] ? "." : "", i);
        SG_CHECK(n > 0 && n < (int)sizeof p, "transformer: prefix too long: %s", prefix);
        block_init(&m->blocks[i], ps, p, C, NH, layers);
    }
}

/* Block internals: one set per block, or one shared set under recomputation. */
static void carve_internals(struct sg_resblock *k, struct sg_carver *cv, size_t N, size_t C,
                            size_t natt)
{
    k->ln1 = sg_carve_floats(cv, N * C);
    k->ln2 = sg_carve_floats(cv, N * C);
    k->mean1 = sg_carve_floats(cv, N);
    k->rstd1 = sg_carve_floats(cv, N);
    k->mean2 = sg_carve_floats(cv, N);
    k->rstd2 = sg_carve_floats(cv, N);
    k->qkv = sg_carve_floats(cv, N * 3 * C);
    k->att = sg_carve_floats(cv, natt);
    k->ao = sg_carve_floats(cv, N * C);
    k->x1 = sg_carve_floats(cv, N * C);
    k->h = sg_carve_floats(cv, N * 4 * C);
}

static void share_internals(struct sg_resblock *k, const struct sg_resblock *s)
{
    k->ln1 = s->ln1;
    k->ln2 = s->ln2;
    k->mean1 = s->mean1;
    k->rstd1 = s->rstd1;
    k->mean2 = s->mean2;
    k->rstd2 = s->rstd2;
    k->qkv = s->qkv;
    k->att = s->att;
    k->ao = s->ao;
    k->x1 = s->x1;
    k->h = s->h;
}

static void carve(struct sg_transformer *m, struct sg_carver *cv)
{
    size_t N = (size_t)m->B * m->Tcap, C = (size_t)m->C;
    size_t natt = (size_t)m->B * m->NH * m->Tcap * m->Tcap;
    for (int i = 0; i < m->layers; i++) {
        struct sg_resblock *k = &m->blocks[i];
        if (!m->recompute || i == 0)
            carve_internals(k, cv, N, C, natt);
        else
            share_internals(k, &m->blocks[0]);
        k->out = sg_carve_floats(cv, N * C);
    }
    m->ha = sg_carve_floats(cv, N * 4 * C);
    for (int i = 0; i < m->layers; i++) m->blocks[i].ha = m->ha;
    m->g0 = sg_carve_floats(cv, N * C);
    m->g1 = sg_carve_floats(cv, N * C);
    m->t0 = sg_carve_floats(cv, N * C);
    m->t1 = sg_carve_floats(cv, N * C);
    m->dqkv = sg_carve_floats(cv, N * 3 * C);
    m->dh = sg_carve_floats(cv, N * 4 * C);
    m->ascr = sg_carve_floats(cv, natt);
}

size_t sg_transformer_plan(struct sg_transformer *m, int B, int T)
{
    struct sg_carver cv = {NULL, 0};
    SG_CHECK(B > 0 && T > 0, "transformer_plan: B %d T %d", B, T);
    m->B = B;
    m->T = m->Tcap = T;
    carve(m, &cv);
    return cv.total;
}

void sg_transformer_set_length(struct sg_transformer *m, int T)
{
    SG_CHECK(T >= 1 && T <= m->Tcap, "transformer: length %d outside [1, %d]", T, m->Tcap);
    m->T = T;
}

void sg_transformer_bind(struct sg_transformer *m, struct sg_arena *a)
{
    struct sg_carver cv = {a, 0};
    SG_CHECK(m->B > 0, "transformer_bind before transformer_plan");
    carve(m, &cv);
}

static void block_forward(const struct sg_transformer *m, struct sg_resblock *k, struct sg_ctx *c,
                          const float *x)
{
    int N = m->B * m->T, C = m->C;
    int64_t nc = (int64_t)N * C;
    k->inp = x;
    op_layernorm_forward(c, k->ln1, k->mean1, k->rstd1, x, k->ln1_w->data, k->ln1_b->data, N, C,
                         LN_EPS);
    op_linear_forward(c, k->qkv, k->ln1, k->in_w->data, k->in_b->data, N, C, 3 * C);
    op_attention_forward(c, k->ao, k->att, k->qkv, m->B, m->T, C, m->NH, m->causal);
    op_linear_forward(c, k->x1, k->ao, k->out_w->data, k->out_b->data, N, C, C);
    op_add_forward(c, k->x1, k->x1, x, nc);
    op_layernorm_forward(c, k->ln2, k->mean2, k->rstd2, k->x1, k->ln2_w->data, k->ln2_b->data, N, C,
                         LN_EPS);
    op_linear_forward(c, k->h, k->ln2, k->fc_w->data, k->fc_b->data, N, C, 4 * C);
    op_act_forward(c, m->act, k->ha, k->h, 4 * nc);
    op_linear_forward(c, k->out, k->ha, k->proj_w->data, k->proj_b->data, N, 4 * C, C);
    op_add_forward(c, k->out, k->out, k->x1, nc);
}

/* dout (N,C) -> dx (N,C) overwritten; dx must not alias dout or the shared scratch. The shared
 * MLP activation buffer is refilled with this block's act(h) first (backward may run several
 * times after one forward). */
static void block_backward(struct sg_transformer *m, struct sg_resblock *k, struct sg_ctx *c,
                           float *dx, const float *dout)
{
    int N = m->B * m->T, C = m->C;
    int64_t nc = (int64_t)N * C;
    op_act_forward(c, m->act, k->ha, k->h, 4 * nc);
    /* MLP branch: t1 = d(x1) = dout + ln_2^T c_fc^T act' c_proj^T dout */
    op_linear_backward(c, m->dh, k->proj_w->grad, k->proj_b->grad, dout, k->ha, k->proj_w->data, N,
                       4 * C, C);
    op_act_backward(c, m->act, m->dh, m->dh, k->h, 4 * nc);
    op_linear_backward(c, m->t0, k->fc_w->grad, k->fc_b->grad, m->dh, k->ln2, k->fc_w->data, N, C,
                       4 * C);
    op_layernorm_backward(c, m->t1, k->ln2_w->grad, k->ln2_b->grad, m->t0, k->x1, k->ln2_w->data,
                          k->mean2, k->rstd2, N, C);
    op_accumulate(c, m->t1, dout, nc);
    /* attention branch: dx = t1 + ln_1^T in_proj^T attn^T out_proj^T t1 */
    op_linear_backward(c, m->t0, k->out_w->grad, k->out_b->grad, m->t1, k->ao, k->out_w->data, N, C,
                       C);
    op_attention_backward(c, m->dqkv, m->ascr, m->t0, k->qkv, k->att, m->B, m->T, C, m->NH,
                          m->causal);
    op_linear_backward(c, m->t0, k->in_w->grad, k->in_b->grad, m->dqkv, k->ln1, k->in_w->data, N, C,
                       3 * C);
    op_layernorm_backward(c, dx, k->ln1_w->grad, k->ln1_b->grad, m->t0, k->inp, k->ln1_w->data,
                          k->mean1, k->rstd1, N, C);
    op_accumulate(c, dx, m->t1, nc);
}

float *sg_transformer_forward(struct sg_transformer *m, struct sg_ctx *c, const float *inp)
{
    SG_CHECK(m->g0 != NULL, "transformer_forward before transformer_bind");
    const float *x = inp;
    for (int i = 0; i < m->layers; i++) {
        block_forward(m, &m->blocks[i], c, x);
        x = m->blocks[i].out;
    }
    return m->blocks[m->layers - 1].out;
}

void sg_transformer_backward(struct sg_transformer *m, struct sg_ctx *c, float *dinp,
                             const float *dout)
{
    const float *src = dout;
    for (int i = m->layers - 1; i >= 0; i--) {
        float *dst = (src == m->g0) ? m->g1 : m->g0;
        if (i == 0 && dinp) dst = dinp;
        /* recompute: the shared internals hold the last block's; re-run the others */
        if (m->recompute && i < m->layers - 1) block_forward(m, &m->blocks[i], c, m->blocks[i].inp);
        block_backward(m, &m->blocks[i], c, dst, src);
        src = dst;
    }
}
