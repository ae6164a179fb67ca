/*
 * vision/modified_resnet.c — CLIP ModifiedResNet forward/backward on nn/layers modules and
 * ops/ops.h ops and the layout ops of ops/patch.h (device-agnostic: no host access to
 * activations or parameters).
 * See vision/modified_resnet.h for structure, names, memory rules and the attention-pool plan.
 * Reference: open_clip modified_resnet.py (AttentionPool2d, F.multi_head_attention_forward with
 * query = token 0); tests/ref/gen_modified_resnet.py.
 */
#include "vision/modified_resnet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/pool.h"
#include "ops/patch.h"

static void join(char *dst, size_t cap, const char *prefix, const char *leaf)
{
    int n = snprintf(dst, cap, "%s%s%s", prefix, prefix[0] ? "." : "", leaf);
    SG_CHECK(n > 0 && (size_t)n < cap, "mrn: name too long: %s.%s", prefix, leaf);
}

static void conv_bn(struct sg_conv2d *cv, struct sg_batchnorm2d *bn, struct sg_params *ps,
                    const char *pre, const char *cn, const char *bnn, int C, int OC, int k,
                    int stride)
{
    char p[SG_PARAM_NAME_MAX];
    join(p, sizeof p, pre, cn);
    sg_conv2d_init(cv, ps, p, C, OC, k, stride, k / 2);
    join(p, sizeof p, pre, bnn);
    sg_batchnorm2d_init(bn, ps, p, OC, 0);
}

static void block_init(struct sg_mrn_block *k, struct sg_params *ps, const char *name, int C, int P,
                       int stride)
{
    memset(k, 0, sizeof *k);
    k->C = C;
    k->P = P;
    k->OC = 4 * P;
    k->stride = stride;
    conv_bn(&k->conv1, &k->bn1, ps, name, "conv1", "bn1", C, P, 1, 1);
    conv_bn(&k->conv2, &k->bn2, ps, name, "conv2", "bn2", P, P, 3, 1);
    conv_bn(&k->conv3, &k->bn3, ps, name, "conv3", "bn3", P, k->OC, 1, 1);
    k->has_down = stride > 1 || C != k->OC;
    if (k->has_down)
        conv_bn(&k->down_conv, &k->down_bn, ps, name, "downsample.0", "downsample.1", C, k->OC, 1,
                1);
}

static void attnpool_init(struct sg_mrn_attnpool *a, struct sg_params *ps, const char *pre, int C,
                          int T, int heads, int out_dim)
{
    char p[SG_PARAM_NAME_MAX];
    int64_t shape[2] = {T, C};
    SG_CHECK(heads > 0 && C % heads == 0, "mrn: embed %d not divisible by heads %d", C, heads);
    a->C = C;
    a->T = T;
    a->heads = heads;
    a->out_dim = out_dim;
    join(p, sizeof p, pre, "positional_embedding");
    a->pos = sg_params_add(ps, p, 2, shape, SG_PARAM_INIT_NORMAL, 1.0f / sqrtf((float)C));
    join(p, sizeof p, pre, "q_proj");
    sg_linear_init(&a->q, ps, p, C, C, 1);
    join(p, sizeof p, pre, "k_proj");
    sg_linear_init(&a->k, ps, p, C, C, 1);
    join(p, sizeof p, pre, "v_proj");
    sg_linear_init(&a->v, ps, p, C, C, 1);
    join(p, sizeof p, pre, "c_proj");
    sg_linear_init(&a->cp, ps, p, C, out_dim, 1);
}

void sg_mrn_init(struct sg_mrn *m, const struct sg_mrn_config *cfg, struct sg_params *ps,
                 const char *prefix)
{
    char p[SG_PARAM_NAME_MAX], leaf[64];
    int w = cfg->width, C = w;
    SG_CHECK(w > 1 && w % 2 == 0, "mrn: width %d", w);
    SG_CHECK(cfg->image_size % 32 == 0, "mrn: image_size %d not a multiple of 32", cfg->image_size);
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    conv_bn(&m->conv1, &m->bn1, ps, prefix, "conv1", "bn1", 3, w / 2, 3, 2);
    conv_bn(&m->conv2, &m->bn2, ps, prefix, "conv2", "bn2", w / 2, w / 2, 3, 1);
    conv_bn(&m->conv3, &m->bn3, ps, prefix, "conv3", "bn3", w / 2, w, 3, 1);
    for (int L = 0; L < 4; L++) {
        SG_CHECK(cfg->layers[L] >= 1, "mrn: layers[%d] = %d", L, cfg->layers[L]);
        for (int i = 0; i < cfg->layers[L]; i++) {
            SG_CHECK(m->nblocks < SG_MRN_MAX_BLOCKS, "mrn: too many blocks");
            snprintf(leaf, sizeof leaf, "layer%d.%d", L + 1, i);
            join(p, sizeof p, prefix, leaf);
            struct sg_mrn_block *k = &m->blocks[m->nblocks++];
            block_init(k, ps, p, C, w << L, (i == 0 && L > 0) ? 2 : 1);
            C = k->OC;
        }
    }
    int s = cfg->image_size / 32;
    join(p, sizeof p, prefix, "attnpool");
    attnpool_init(&m->ap, ps, p, C, s * s + 1, cfg->heads, cfg->output_dim);
}

static size_t max_sz(size_t a, size_t b)
{
    return a > b ? a : b;
}

static size_t carve_block(struct sg_mrn_block *k, struct sg_carver *cv, size_t B, int H, int W)
{
    k->H = H;
    k->W = W;
    k->OH = H / k->stride;
    k->OW = W / k->stride;
    size_t hw = (size_t)H * W, ohw = (size_t)k->OH * k->OW, P = (size_t)k->P;
    size_t OC = (size_t)k->OC, C = (size_t)k->C;
    k->c1 = sg_carve_floats(cv, B * P * hw);
    k->a1 = sg_carve_floats(cv, B * P * hw);
    k->c2 = sg_carve_floats(cv, B * P * hw);
    k->a2 = sg_carve_floats(cv, B * P * hw);
    k->p2 = k->stride > 1 ? sg_carve_floats(cv, B * P * ohw) : k->a2;
    k->c3 = sg_carve_floats(cv, B * OC * ohw);
    k->out = sg_carve_floats(cv, B * OC * ohw);
    k->m1 = sg_carve_floats(cv, P);
    k->r1 = sg_carve_floats(cv, P);
    k->m2 = sg_carve_floats(cv, P);
    k->r2 = sg_carve_floats(cv, P);
    k->m3 = sg_carve_floats(cv, OC);
    k->r3 = sg_carve_floats(cv, OC);
    if (k->has_down) {
        k->pd = k->stride > 1 ? sg_carve_floats(cv, B * C * ohw) : NULL;
        k->cd = sg_carve_floats(cv, B * OC * ohw);
        k->md = sg_carve_floats(cv, OC);
        k->rd = sg_carve_floats(cv, OC);
    }
    return max_sz(max_sz(B * P * hw, B * OC * ohw), B * C * hw);
}

/* Persistent attention-pool buffers; its other scratch is borrowed from g1/t0/t1/t2 (carve). */
static void carve_attnpool(struct sg_mrn_attnpool *a, struct sg_carver *cv, size_t B)
{
    size_t C = (size_t)a->C, T = (size_t)a->T;
    a->tok = sg_carve_floats(cv, B * T * C);
    a->wqkv = sg_carve_floats(cv, 3 * C * C);
    a->bqkv = sg_carve_floats(cv, 3 * C);
    a->qkv = sg_carve_floats(cv, B * T * 3 * C);
    a->att = sg_carve_floats(cv, B * (size_t)a->heads * T * T);
    a->o = sg_carve_floats(cv, B * C);
    a->out = sg_carve_floats(cv, B * (size_t)a->out_dim);
    a->do_ = sg_carve_floats(cv, B * C);
    a->dwqkv = sg_carve_floats(cv, 3 * C * C);
    a->dbqkv = sg_carve_floats(cv, 3 * C);
}

static void carve(struct sg_mrn *m, struct sg_carver *cv)
{
    size_t B = (size_t)m->B, w = (size_t)m->cfg.width, shw = (size_t)m->SH * m->SW;
    size_t big = max_sz(B * 3 * (size_t)m->H * m->W, B * w * shw);
    m->c1 = sg_carve_floats(cv, B * w / 2 * shw);
    m->a1 = sg_carve_floats(cv, B * w / 2 * shw);
    m->c2 = sg_carve_floats(cv, B * w / 2 * shw);
    m->a2 = sg_carve_floats(cv, B * w / 2 * shw);
    m->c3 = sg_carve_floats(cv, B * w * shw);
    m->a3 = sg_carve_floats(cv, B * w * shw);
    m->m1 = sg_carve_floats(cv, w / 2);
    m->r1 = sg_carve_floats(cv, w / 2);
    m->m2 = sg_carve_floats(cv, w / 2);
    m->r2 = sg_carve_floats(cv, w / 2);
    m->m3 = sg_carve_floats(cv, w);
    m->r3 = sg_carve_floats(cv, w);
    m->p0 = sg_carve_floats(cv, B * w * (size_t)m->PH * m->PW);
    int H = m->PH, W = m->PW;
    for (int i = 0; i < m->nblocks; i++) {
        big = max_sz(big, carve_block(&m->blocks[i], cv, B, H, W));
        H = m->blocks[i].OH;
        W = m->blocks[i].OW;
    }
    SG_CHECK(H * W + 1 == m->ap.T, "mrn: final %dx%d does not match positional_embedding", H, W);
    carve_attnpool(&m->ap, cv, B);
    size_t T = (size_t)m->ap.T, C = (size_t)m->ap.C; /* ap_forward/ap_backward scratch: */
    big = max_sz(big, max_sz(B * T * 3 * C, B * (size_t)m->ap.heads * T * T));
    m->g0 = sg_carve_floats(cv, big);
    m->g1 = sg_carve_floats(cv, big);
    m->t0 = sg_carve_floats(cv, big);
    m->t1 = sg_carve_floats(cv, big);
    m->t2 = sg_carve_floats(cv, big);
}

size_t sg_mrn_plan(struct sg_mrn *m, int B)
{
    struct sg_carver cv = {NULL, 0};
    SG_CHECK(B > 0, "mrn_plan: B %d", B);
    m->B = B;
    m->H = m->W = m->cfg.image_size;
    m->SH = sg_conv2d_out_size(&m->conv1, m->H);
    m->SW = sg_conv2d_out_size(&m->conv1, m->W);
    m->PH = m->SH / 2;
    m->PW = m->SW / 2;
    carve(m, &cv);
    return cv.total;
}

void sg_mrn_bind(struct sg_mrn *m, struct sg_arena *a)
{
    struct sg_carver cv = {a, 0};
    SG_CHECK(m->B > 0, "mrn_bind before mrn_plan");
    carve(m, &cv);
}

static void avgpool(struct sg_ctx *c, float *out, const float *inp, int B, int C, int H, int W,
                    int k)
{
    struct sg_pool2d_shape s;
    sg_pool2d_shape_init(&s, B, C, H, W, k, k, 0);
    op_avgpool2d_forward(c, &s, out, inp);
}

static void avgpool_back(struct sg_ctx *c, float *dinp, const float *dout, int B, int C, int H,
                         int W, int k)
{
    struct sg_pool2d_shape s;
    sg_pool2d_shape_init(&s, B, C, H, W, k, k, 0);
    op_avgpool2d_backward(c, &s, dinp, dout);
}

/* out = relu(bn(conv(x))); conv output in cbuf. */
static void cbr_forward(const struct sg_conv2d *cv, const struct sg_batchnorm2d *bn,
                        struct sg_ctx *c, float *cbuf, float *out, float *mean, float *rstd,
                        const float *x, int B, int H, int W, int OHW, int training)
{
    sg_conv2d_forward(cv, c, cbuf, x, B, H, W);
    sg_batchnorm2d_forward(bn, c, out, mean, rstd, cbuf, B, OHW, training);
    op_act_forward(c, SG_ACT_RELU, out, out, (int64_t)B * cv->OC * OHW);
}

/* g = d(out) (clobbered) -> dx (conv input grad, NULL skips); t is scratch. */
static void cbr_backward(const struct sg_conv2d *cv, const struct sg_batchnorm2d *bn,
                         struct sg_ctx *c, float *dx, float *g, float *t, const float *cbuf,
                         const float *out, const float *mean, const float *rstd, const float *x,
                         int B, int H, int W, int OHW, int training)
{
    op_act_backward(c, SG_ACT_RELU, g, g, out, (int64_t)B * cv->OC * OHW);
    sg_batchnorm2d_backward(bn, c, t, g, cbuf, mean, rstd, B, OHW, training);
    sg_conv2d_backward(cv, c, dx, t, x, B, H, W);
}

static void block_forward(struct sg_mrn_block *k, struct sg_ctx *c, const float *x, float *t, int B,
                          int training)
{
    int HW = k->H * k->W, OHW = k->OH * k->OW;
    int64_t n = (int64_t)B * k->OC * OHW;
    k->inp = x;
    cbr_forward(&k->conv1, &k->bn1, c, k->c1, k->a1, k->m1, k->r1, x, B, k->H, k->W, HW, training);
    cbr_forward(&k->conv2, &k->bn2, c, k->c2, k->a2, k->m2, k->r2, k->a1, B, k->H, k->W, HW,
                training);
    if (k->stride > 1) avgpool(c, k->p2, k->a2, B, k->P, k->H, k->W, k->stride);
    sg_conv2d_forward(&k->conv3, c, k->c3, k->p2, B, k->OH, k->OW);
    sg_batchnorm2d_forward(&k->bn3, c, k->out, k->m3, k->r3, k->c3, B, OHW, training);
    if (k->has_down) {
        const float *xd = x;
        if (k->stride > 1) {
            avgpool(c, k->pd, x, B, k->C, k->H, k->W, k->stride);
            xd = k->pd;
        }
        sg_conv2d_forward(&k->down_conv, c, k->cd, xd, B, k->OH, k->OW);
        sg_batchnorm2d_forward(&k->down_bn, c, t, k->md, k->rd, k->cd, B, OHW, training);
        op_add_forward(c, k->out, k->out, t, n);
    } else {
        op_add_forward(c, k->out, k->out, x, n);
    }
    op_act_forward(c, SG_ACT_RELU, k->out, k->out, n);
}

/* dout (B,OC,OH,OW) preserved; dx (B,C,H,W) overwritten; t0, t1, t2 scratch. */
static void block_backward(struct sg_mrn_block *k, struct sg_ctx *c, float *dx, const float *dout,
                           float *t0, float *t1, float *t2, int B, int training)
{
    int HW = k->H * k->W, OHW = k->OH * k->OW;
    int64_t n = (int64_t)B * k->OC * OHW, nin = (int64_t)B * k->C * HW;
    op_act_backward(c, SG_ACT_RELU, t0, dout, k->out, n); /* t0 = d(sum) */
    sg_batchnorm2d_backward(&k->bn3, c, t1, t0, k->c3, k->m3, k->r3, B, OHW, training);
    sg_conv2d_backward(&k->conv3, c, t2, t1, k->p2, B, k->OH, k->OW); /* t2 = d(p2) */
    float *da2 = t2, *da1 = t1; /* d(a2) (clobbered), d(a1): t1/t2 in either order */
    if (k->stride > 1) {
        avgpool_back(c, t1, t2, B, k->P, k->H, k->W, k->stride);
        da2 = t1;
        da1 = t2;
    }
    cbr_backward(&k->conv2, &k->bn2, c, da1, da2, dx, k->c2, k->a2, k->m2, k->r2, k->a1, B, k->H,
                 k->W, HW, training);
    cbr_backward(&k->conv1, &k->bn1, c, dx, da1, da2, k->c1, k->a1, k->m1, k->r1, k->inp, B, k->H,
                 k->W, HW, training);
    if (!k->has_down) {
        op_accumulate(c, dx, t0, nin);
        return;
    }
    sg_batchnorm2d_backward(&k->down_bn, c, t1, t0, k->cd, k->md, k->rd, B, OHW, training);
    if (k->stride > 1) {
        sg_conv2d_backward(&k->down_conv, c, t2, t1, k->pd, B, k->OH, k->OW);
        avgpool_back(c, t1, t2, B, k->C, k->H, k->W, k->stride);
        op_accumulate(c, dx, t1, nin);
    } else {
        sg_conv2d_backward(&k->down_conv, c, t2, t1, k->inp, B, k->H, k->W);
        op_accumulate(c, dx, t2, nin);
    }
}

/* ---- attention pool: ops only ------------------------------------------------------------- */

/* wqkv (3C,C) = [Wq; Wk; Wv], bqkv (3C) = [bq; bk; bv] (device copies of the parameters). */
static void pack_qkv(struct sg_mrn_attnpool *a, struct sg_ctx *c)
{
    const struct sg_linear *l[3] = {&a->q, &a->k, &a->v};
    size_t C = (size_t)a->C;
    for (int i = 0; i < 3; i++) {
        sg_memcpy_d2d(c, a->wqkv + i * C * C, l[i]->w->data, C * C * sizeof(float));
        sg_memcpy_d2d(c, a->bqkv + i * C, l[i]->b->data, C * sizeof(float));
    }
}

/* x (B,C,HW) -> out (B,out_dim); y (B,T,C) scratch. */
static float *ap_forward(struct sg_mrn_attnpool *a, struct sg_ctx *c, const float *x, int B,
                         float *y)
{
    int C = a->C, T = a->T;
    /* tok (B,T,C) = [mean over HW; x^T] + pos */
    op_nchw_tokens_forward(c, a->tok, x, B, C, T - 1);
    op_tokens_forward(c, a->tok, NULL, a->tok, a->pos->data, B, T, C);
    pack_qkv(a, c);
    op_linear_forward(c, a->qkv, a->tok, a->wqkv, a->bqkv, B * T, C, 3 * C);
    op_attention_forward(c, y, a->att, a->qkv, B, T, C, a->heads, 0);
    op_gather_tokens_forward(c, a->o, y, NULL, B, T, C); /* token 0's output */
    sg_linear_forward(&a->cp, c, a->out, a->o, B);
    return a->out;
}

/* dqkv (B*T,3C) -> dtok (B*T,C) overwritten; q/k/v_proj weight and bias grads accumulated (the
 * packed gradient is formed in dwqkv/dbqkv from zero, then added to each parameter's grad). */
static void qkv_backward(struct sg_mrn_attnpool *a, struct sg_ctx *c, float *dtok,
                         const float *dqkv, int B)
{
    const struct sg_linear *l[3] = {&a->q, &a->k, &a->v};
    size_t C = (size_t)a->C;
    int need_w = 0, need_b = 0;
    for (int i = 0; i < 3; i++) {
        need_w |= l[i]->w->grad != NULL;
        need_b |= l[i]->b->grad != NULL;
    }
    if (need_w) sg_memset_zero(c, a->dwqkv, 3 * C * C * sizeof(float));
    if (need_b) sg_memset_zero(c, a->dbqkv, 3 * C * sizeof(float));
    op_linear_backward(c, dtok, need_w ? a->dwqkv : NULL, need_b ? a->dbqkv : NULL, dqkv, a->tok,
                       a->wqkv, B * a->T, a->C, 3 * a->C);
    for (int i = 0; i < 3; i++) {
        if (l[i]->w->grad) op_accumulate(c, l[i]->w->grad, a->dwqkv + i * C * C, (int64_t)(C * C));
        if (l[i]->b->grad) op_accumulate(c, l[i]->b->grad, a->dbqkv + i * C, (int64_t)C);
    }
}

/* dout (B,out_dim) -> dx (B,C,HW) overwritten (NULL skips); accumulates every attnpool param
 * grad. Scratch: dtok, dy (B,T,C), dqkv (B,T,3C), asc (B,heads,T,T); pairwise distinct. */
static void ap_backward(struct sg_mrn_attnpool *a, struct sg_ctx *c, float *dx, const float *dout,
                        int B, float *dtok, float *dqkv, float *dy, float *asc)
{
    int C = a->C, T = a->T;
    sg_linear_backward(&a->cp, c, a->do_, dout, a->o, B);
    op_gather_tokens_backward(c, dy, a->do_, NULL, B, T, C); /* dy = [do_; 0 ... 0] per batch */
    op_attention_backward(c, dqkv, asc, dy, a->qkv, a->att, B, T, C, a->heads, 0);
    qkv_backward(a, c, dtok, dqkv, B);
    op_tokens_backward(c, NULL, NULL, a->pos->grad, dtok, 0, B, T, C); /* dpos only */
    if (dx) op_nchw_tokens_backward(c, dx, dtok, B, C, T - 1);
}

float *sg_mrn_forward(struct sg_mrn *m, struct sg_ctx *c, const float *inp, int training)
{
    int B = m->B, SHW = m->SH * m->SW, SH = m->SH, SW = m->SW;
    SG_CHECK(m->g0 != NULL, "mrn_forward before mrn_bind");
    m->inp = inp;
    cbr_forward(&m->conv1, &m->bn1, c, m->c1, m->a1, m->m1, m->r1, inp, B, m->H, m->W, SHW,
                training);
    cbr_forward(&m->conv2, &m->bn2, c, m->c2, m->a2, m->m2, m->r2, m->a1, B, SH, SW, SHW, training);
    cbr_forward(&m->conv3, &m->bn3, c, m->c3, m->a3, m->m3, m->r3, m->a2, B, SH, SW, SHW, training);
    avgpool(c, m->p0, m->a3, B, m->cfg.width, SH, SW, 2);
    const float *x = m->p0;
    for (int i = 0; i < m->nblocks; i++) {
        block_forward(&m->blocks[i], c, x, m->t0, B, training);
        x = m->blocks[i].out;
    }
    return ap_forward(&m->ap, c, x, B, m->t1);
}

void sg_mrn_backward(struct sg_mrn *m, struct sg_ctx *c, float *dinp, const float *dout,
                     int training)
{
    int B = m->B, SHW = m->SH * m->SW, SH = m->SH, SW = m->SW, w = m->cfg.width;
    float *g = m->g0, *h = m->g1, *swap;
    ap_backward(&m->ap, c, g, dout, B, m->g1, m->t0, m->t1, m->t2);
    for (int i = m->nblocks - 1; i >= 0; i--) {
        block_backward(&m->blocks[i], c, h, g, m->t0, m->t1, m->t2, B, training);
        swap = g;
        g = h;
        h = swap;
    }
    avgpool_back(c, h, g, B, w, SH, SW, 2); /* h = d(a3) */
    cbr_backward(&m->conv3, &m->bn3, c, g, h, m->t0, m->c3, m->a3, m->m3, m->r3, m->a2, B, SH, SW,
                 SHW, training);
    cbr_backward(&m->conv2, &m->bn2, c, h, g, m->t0, m->c2, m->a2, m->m2, m->r2, m->a1, B, SH, SW,
                 SHW, training);
    cbr_backward(&m->conv1, &m->bn1, c, dinp, h, m->t0, m->c1, m->a1, m->m1, m->r1, m->inp, B, m->H,
                 m->W, SHW, training);
}
