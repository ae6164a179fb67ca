/*
 * vision/vit.c — open_clip VisionTransformer forward/backward (see vision/vit.h).
 */
#include "vision/vit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/patch.h"

static struct sg_param *add(struct sg_params *ps, const char *prefix, const char *leaf, int ndim,
                            const int64_t *shape, unsigned flags, float scale)
{
    char name[SG_PARAM_NAME_MAX];
    int64_t s[4] = {0, 0, 0, 0};
    int n = snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", leaf);
    SG_CHECK(n > 0 && n < (int)sizeof name, "param name too long: %s.%s", prefix, leaf);
    memcpy(s, shape, (size_t)ndim * sizeof(int64_t));
    return sg_params_add(ps, name, ndim, s, flags, scale);
}

void sg_vit_init(struct sg_vit *m, const struct sg_vit_config *cfg, struct sg_params *ps,
                 const char *prefix)
{
    char p[SG_PARAM_NAME_MAX];
    int S = cfg->image_size, pt = cfg->patch, C = cfg->width, E = cfg->embed_dim;
    SG_CHECK(S > 0 && pt > 0 && C > 0 && E > 0 && S % pt == 0, "vit: S %d patch %d C %d E %d", S,
             pt, C, E);
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->G = S / pt;
    m->P = m->G * m->G;
    m->T = 1 + m->P;
    m->K = 3 * pt * pt;
    float sc = 1.0f / sqrtf((float)C);
    int64_t wshape[4] = {C, 3, pt, pt}, c1[1] = {C}, tc[2] = {m->T, C}, ce[2] = {C, E};
    m->conv1 = add(ps, prefix, "conv1.weight", 4, wshape, SG_PARAM_DECAY | SG_PARAM_INIT_UNIFORM,
                   1.0f / sqrtf((float)m->K));
    m->cls = add(ps, prefix, "class_embedding", 1, c1, SG_PARAM_INIT_NORMAL, sc);
    m->pos = add(ps, prefix, "positional_embedding", 2, tc, SG_PARAM_INIT_NORMAL, sc);
    m->lnpre_w = add(ps, prefix, "ln_pre.weight", 1, c1, SG_PARAM_INIT_ONE, 0.0f);
    m->lnpre_b = add(ps, prefix, "ln_pre.bias", 1, c1, SG_PARAM_INIT_ZERO, 0.0f);
    int n = snprintf(p, sizeof p, "%s%stransformer", prefix, prefix[0] ? "." : "");
    SG_CHECK(n > 0 && n < (int)sizeof p, "vit: prefix too long: %s", prefix);
    sg_transformer_init(&m->tr, ps, p, C, cfg->layers, cfg->heads, 0,
                        cfg->quick_gelu ? SG_ACT_QUICKGELU : SG_ACT_GELU);
    m->lnpost_w = add(ps, prefix, "ln_post.weight", 1, c1, SG_PARAM_INIT_ONE, 0.0f);
    m->lnpost_b = add(ps, prefix, "ln_post.bias", 1, c1, SG_PARAM_INIT_ZERO, 0.0f);
    m->proj = add(ps, prefix, "proj", 2, ce, SG_PARAM_DECAY | SG_PARAM_INIT_NORMAL, sc);
}

static void carve(struct sg_vit *m, struct sg_carver *cv)
{
    size_t B = (size_t)m->B, N = B * m->T, C = (size_t)m->cfg.width, f = sizeof(float);
    size_t E = (size_t)m->cfg.embed_dim, BP = B * m->P, K = (size_t)m->K;
    m->patches = sg_carve(cv, BP * K * f);
    m->emb = sg_carve(cv, BP * C * f);
    m->x0 = sg_carve(cv, N * C * f);
    m->xl = sg_carve(cv, N * C * f);
    m->mean0 = sg_carve(cv, N * f);
    m->rstd0 = sg_carve(cv, N * f);
    m->tok = sg_carve(cv, B * C * f);
    m->pooled = sg_carve(cv, B * C * f);
    m->mean1 = sg_carve(cv, B * f);
    m->rstd1 = sg_carve(cv, B * f);
    m->out = sg_carve(cv, B * E * f);
    m->dpooled = sg_carve(cv, B * C * f);
    m->dtok = sg_carve(cv, B * C * f);
    m->dproj = sg_carve(cv, C * E * f);
    m->dy = sg_carve(cv, N * C * f);
    m->dxl = sg_carve(cv, N * C * f);
    m->dpatches = sg_carve(cv, BP * K * f);
}

size_t sg_vit_plan(struct sg_vit *m, int B)
{
    struct sg_carver cv = {NULL, 0};
    SG_CHECK(B > 0, "vit_plan: B %d", B);
    m->B = B;
    carve(m, &cv);
    return cv.total + sg_transformer_plan(&m->tr, B, m->T);
}

void sg_vit_bind(struct sg_vit *m, struct sg_arena *a)
{
    struct sg_carver cv = {a, 0};
    SG_CHECK(m->B > 0, "vit_bind before vit_plan");
    carve(m, &cv);
    sg_transformer_bind(&m->tr, a);
}

float *sg_vit_forward(struct sg_vit *m, struct sg_ctx *c, const float *img)
{
    int B = m->B, T = m->T, C = m->cfg.width, E = m->cfg.embed_dim, N = B * T;
    SG_CHECK(m->x0 != NULL, "vit_forward before vit_bind");
    op_patchify_forward(c, m->patches, img, B, 3, m->cfg.image_size, m->cfg.patch);
    op_linear_forward(c, m->emb, m->patches, m->conv1->data, NULL, B * m->P, m->K, C);
    /* x0[b,0] = cls + pos[0]; x0[b,1+i] = emb[b,i] + pos[1+i] */
    op_tokens_forward(c, m->x0, m->cls->data, m->emb, m->pos->data, B, T, C);
    op_layernorm_forward(c, m->xl, m->mean0, m->rstd0, m->x0, m->lnpre_w->data, m->lnpre_b->data, N,
                         C, 1e-5f);
    const float *y = sg_transformer_forward(&m->tr, c, m->xl);
    op_gather_tokens_forward(c, m->tok, y, NULL, B, T, C); /* class token */
    op_layernorm_forward(c, m->pooled, m->mean1, m->rstd1, m->tok, m->lnpost_w->data,
                         m->lnpost_b->data, B, C, 1e-5f);
    op_matmul_forward(c, m->out, m->pooled, m->proj->data, 1, B, C, E);
    return m->out;
}

void sg_vit_backward(struct sg_vit *m, struct sg_ctx *c, float *dimg, const float *dout)
{
    int B = m->B, T = m->T, C = m->cfg.width, E = m->cfg.embed_dim, N = B * T;
    /* projection: dpooled = dout @ proj^T (overwrite), dproj += pooled^T @ dout */
    op_matmul_backward(c, m->dpooled, m->dproj, dout, m->pooled, m->proj->data, 1, B, C, E);
    op_accumulate(c, m->proj->grad, m->dproj, (int64_t)C * E);
    op_layernorm_backward(c, m->dtok, m->lnpost_w->grad, m->lnpost_b->grad, m->dpooled, m->tok,
                          m->lnpost_w->data, m->mean1, m->rstd1, B, C);
    /* class-token gather: scatter into token 0 of each image, zero elsewhere */
    op_gather_tokens_backward(c, m->dy, m->dtok, NULL, B, T, C);
    sg_transformer_backward(&m->tr, c, m->dxl, m->dy);
    op_layernorm_backward(c, m->dy, m->lnpre_w->grad, m->lnpre_b->grad, m->dxl, m->x0,
                          m->lnpre_w->data, m->mean0, m->rstd0, N, C); /* dy = d(x0) */
    /* class / positional grads (summed over the batch), emb = the patch-embedding grad */
    op_tokens_backward(c, m->emb, m->cls->grad, m->pos->grad, m->dy, 1, B, T, C);
    op_linear_backward(c, dimg ? m->dpatches : NULL, m->conv1->grad, NULL, m->emb, m->patches,
                       m->conv1->data, B * m->P, m->K, C);
    if (dimg) op_patchify_backward(c, dimg, m->dpatches, B, 3, m->cfg.image_size, m->cfg.patch);
}
