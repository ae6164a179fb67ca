/*
 * text/text_encoder.c — open_clip text tower forward/backward (see text/text_encoder.h).
 */
#include "text/text_encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/patch.h"

static struct sg_param *add(struct sg_params *ps, const char *prefix, const char *leaf, int ndim,
                            int64_t d0, int64_t d1, unsigned flags, float scale)
{
    char name[SG_PARAM_NAME_MAX];
    int64_t shape[4] = {d0, d1, 0, 0};
    int n = snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", leaf);
    SG_CHECK(n > 0 && n < (int)sizeof name, "param name too long: %s.%s", prefix, leaf);
    return sg_params_add(ps, name, ndim, shape, flags, scale);
}

void sg_text_encoder_init(struct sg_text_encoder *m, const struct sg_text_encoder_config *cfg,
                          struct sg_params *ps, const char *prefix)
{
    char p[SG_PARAM_NAME_MAX];
    int V = cfg->vocab, T = cfg->context, C = cfg->width, E = cfg->embed_dim;
    SG_CHECK(V > 0 && T > 0 && C > 0 && E > 0, "text_encoder: V %d T %d C %d E %d", V, T, C, E);
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->tok = add(ps, prefix, "token_embedding.weight", 2, V, C, SG_PARAM_INIT_NORMAL, 0.02f);
    m->pos = add(ps, prefix, "positional_embedding", 2, T, C, SG_PARAM_INIT_NORMAL, 0.01f);
    int n = snprintf(p, sizeof p, "%s%stransformer", prefix, prefix[0] ? "." : "");
    SG_CHECK(n > 0 && n < (int)sizeof p, "text_encoder: prefix too long: %s", prefix);
    sg_transformer_init(&m->tr, ps, p, C, cfg->layers, cfg->heads, 1,
                        cfg->quick_gelu ? SG_ACT_QUICKGELU : SG_ACT_GELU);
    m->lnf_w = add(ps, prefix, "ln_final.weight", 1, C, 0, SG_PARAM_INIT_ONE, 0.0f);
    m->lnf_b = add(ps, prefix, "ln_final.bias", 1, C, 0, SG_PARAM_INIT_ZERO, 0.0f);
    m->proj = add(ps, prefix, "text_projection", 2, C, E, SG_PARAM_DECAY | SG_PARAM_INIT_NORMAL,
                  1.0f / sqrtf((float)C));
}

static void carve(struct sg_text_encoder *m, struct sg_carver *cv)
{
    size_t B = (size_t)m->B, N = B * m->cfg.context, C = (size_t)m->cfg.width;
    size_t E = (size_t)m->cfg.embed_dim, f = sizeof(float);
    m->eot = sg_carve(cv, B * sizeof(int32_t));
    m->ids_used = sg_carve(cv, N * sizeof(int32_t));
    m->x0 = sg_carve(cv, N * C * f);
    m->xf = sg_carve(cv, N * C * f);
    m->mean = sg_carve(cv, N * f);
    m->rstd = sg_carve(cv, N * f);
    m->pooled = sg_carve(cv, B * C * f);
    m->out = sg_carve(cv, B * E * f);
    m->dpooled = sg_carve(cv, B * C * f);
    m->dproj = sg_carve(cv, C * E * f);
    m->dxf = sg_carve(cv, N * C * f);
    m->dx = sg_carve(cv, N * C * f);
}

size_t sg_text_encoder_plan(struct sg_text_encoder *m, int B)
{
    struct sg_carver cv = {NULL, 0};
    SG_CHECK(B > 0, "text_encoder_plan: B %d", B);
    m->B = B;
    /* host copies of the pooled positions and used ids (computed from host ids each step) */
    free(m->eot_h);
    free(m->ids_h);
    m->eot_h = sg_xmalloc((size_t)B * sizeof(int32_t));
    m->ids_h = sg_xmalloc((size_t)B * m->cfg.context * sizeof(int32_t));
    carve(m, &cv);
    return cv.total + sg_transformer_plan(&m->tr, B, m->cfg.context);
}

void sg_text_encoder_bind(struct sg_text_encoder *m, struct sg_arena *a)
{
    struct sg_carver cv = {a, 0};
    SG_CHECK(m->B > 0, "text_encoder_bind before text_encoder_plan");
    carve(m, &cv);
    sg_transformer_bind(&m->tr, a);
}

/* Pooled position per row: open_clip's text.argmax(dim=-1) (first position of the row's
 * largest id) when eot_token < 0, else the first position holding eot_token (the last position
 * when the row has none, e.g. a caption truncated without an end token). */
static void find_eot(int32_t *eot, const int32_t *ids, int B, int T, int eot_token)
{
    for (int b = 0; b < B; b++) {
        const int32_t *r = ids + (size_t)b * T;
        int best = 0;
        if (eot_token >= 0) {
            best = T - 1;
            for (int t = 0; t < T; t++)
                if (r[t] == eot_token) {
                    best = t;
                    break;
                }
        } else {
            for (int t = 1; t < T; t++)
                if (r[t] > r[best]) best = t;
        }
        eot[b] = best;
    }
}

/* The causal mask makes token t depend only on tokens <= t, and only the EOT token is pooled:
 * positions after the batch's last EOT change neither the output nor any gradient (their
 * upstream gradient is zero at every layer). The tower therefore runs on Te = max(eot) + 1
 * tokens per row — exact, and for captions (typically 10-30 of 77 tokens) a 2-4x saving over
 * open_clip, which always runs all 77. ids_used (B,Te) holds the row prefixes. */
static int used_length(struct sg_text_encoder *m, const int32_t *ids)
{
    int B = m->B, T = m->cfg.context, Te = 1;
    find_eot(m->eot_h, ids, B, T, m->cfg.eot_token);
    for (int b = 0; b < B; b++)
        if (m->eot_h[b] + 1 > Te) Te = m->eot_h[b] + 1;
    for (int b = 0; b < B; b++)
        memcpy(m->ids_h + (size_t)b * Te, ids + (size_t)b * T, (size_t)Te * sizeof(int32_t));
    return Te;
}

float *sg_text_encoder_forward(struct sg_text_encoder *m, struct sg_ctx *c, const int32_t *ids)
{
    SG_CHECK(m->x0 != NULL, "text_encoder_forward before text_encoder_bind");
    int B = m->B, C = m->cfg.width, E = m->cfg.embed_dim;
    int Te = m->Te = used_length(m, ids), N = B * Te;
    m->ids = ids;
    sg_memcpy_h2d(c, m->ids_used, m->ids_h, (size_t)N * sizeof(int32_t));
    sg_memcpy_h2d(c, m->eot, m->eot_h, (size_t)B * sizeof(int32_t));
    sg_transformer_set_length(&m->tr, Te);
    op_embedding_forward(c, m->x0, m->ids_used, m->tok->data, N, m->cfg.vocab, C);
    op_tokens_forward(c, m->x0, NULL, m->x0, m->pos->data, B, Te, C); /* + positions, in place */
    const float *y = sg_transformer_forward(&m->tr, c, m->x0);
    op_layernorm_forward(c, m->xf, m->mean, m->rstd, y, m->lnf_w->data, m->lnf_b->data, N, C,
                         1e-5f);
    op_gather_tokens_forward(c, m->pooled, m->xf, m->eot, B, Te, C); /* EOT pooling */
    op_matmul_forward(c, m->out, m->pooled, m->proj->data, 1, B, C, E);
    return m->out;
}

void sg_text_encoder_backward(struct sg_text_encoder *m, struct sg_ctx *c, const float *dout)
{
    int B = m->B, Te = m->Te, C = m->cfg.width, E = m->cfg.embed_dim, N = B * Te;
    /* projection: dpooled = dout @ proj^T (overwrite), dproj += pooled^T @ dout */
    op_matmul_backward(c, m->dpooled, m->dproj, dout, m->pooled, m->proj->data, 1, B, C, E);
    op_accumulate(c, m->proj->grad, m->dproj, (int64_t)C * E);
    /* pooling: scatter into the EOT rows, zero elsewhere */
    op_gather_tokens_backward(c, m->dxf, m->dpooled, m->eot, B, Te, C);
    const float *y = m->tr.blocks[m->tr.layers - 1].out;
    op_layernorm_backward(c, m->dx, m->lnf_w->grad, m->lnf_b->grad, m->dxf, y, m->lnf_w->data,
                          m->mean, m->rstd, N, C);
    sg_transformer_backward(&m->tr, c, m->dxf, m->dx);                      /* dxf = d(x0) */
    op_tokens_backward(c, m->dxf, NULL, m->pos->grad, m->dxf, 0, B, Te, C); /* dpos only */
    op_embedding_backward(c, m->tok->grad, m->dxf, m->ids_used, N, m->cfg.vocab, C);
}

void sg_text_encoder_free(struct sg_text_encoder *m)
{
    free(m->eot_h);
    free(m->ids_h);
    m->eot_h = m->ids_h = NULL;
}
