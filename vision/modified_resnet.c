/*
 * vision/modified_resnet.c — CLIP ModifiedResNet forward/backward on nn/layers modules.
 * See vision/modified_resnet.h for structure, names and memory rules.
 */
#include "vision/modified_resnet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/pool.h"

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

static void carve_attnpool(struct sg_mrn_attnpool *a, struct sg_carver *cv, size_t B)
{
    size_t C = (size_t)a->C, T = (size_t)a->T;
    a->tok = sg_carve_floats(cv, B * T * C);
    a->q0 = sg_carve_floats(cv, B * C);
    a->qq = sg_carve_floats(cv, B * C);
    a->kk = sg_carve_floats(cv, B * T * C);
    a->vv = sg_carve_floats(cv, B * T * C);
    a->p = sg_carve_floats(cv, B * a->heads * T);
    a->o = sg_carve_floats(cv, B * C);
    a->out = sg_carve_floats(cv, B * (size_t)a->out_dim);
    a->dtok = sg_carve_floats(cv, B * T * C);
    a->dt2 = sg_carve_floats(cv, B * T * C);
    a->dq0 = sg_carve_floats(cv, B * C);
    a->dqq = sg_carve_floats(cv, B * C);
    a->dkk = sg_carve_floats(cv, B * T * C);
    a->dvv = sg_carve_floats(cv, B * T * C);
    a->dp = sg_carve_floats(cv, T);
    a->do_ = sg_carve_floats(cv, B * C);
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
    if (k->stride > 1) {
        avgpool_back(c, t1, t2, B, k->P, k->H, k->W, k->stride);
        memcpy(t2, t1, (size_t)B * k->P * HW * sizeof(float));
    }
    cbr_backward(&k->conv2, &k->bn2, c, t1, t2, dx, k->c2, k->a2, k->m2, k->r2, k->a1, B, k->H,
                 k->W, HW, training); /* t1 = d(a1) */
    cbr_backward(&k->conv1, &k->bn1, c, dx, t1, t2, k->c1, k->a1, k->m1, k->r1, k->inp, B, k->H,
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

/* x (B,C,HW) -> tokens (B,T,C) = [mean; x^T] + pos; q0 = token 0. */
static void ap_tokens(struct sg_mrn_attnpool *a, const float *x, int B)
{
    int C = a->C, T = a->T, HW = T - 1;
    const float *pos = a->pos->data;
#pragma omp parallel for
    for (int b = 0; b < B; b++) {
        float *tk = a->tok + (size_t)b * T * C;
        for (int ch = 0; ch < C; ch++) {
            const float *xp = x + ((size_t)b * C + ch) * HW;
            double s = 0;
            for (int i = 0; i < HW; i++) {
                tk[(size_t)(i + 1) * C + ch] = xp[i] + pos[(size_t)(i + 1) * C + ch];
                s += xp[i];
            }
            tk[ch] = (float)(s / HW) + pos[ch];
            a->q0[(size_t)b * C + ch] = tk[ch];
        }
    }
}

static void ap_attend(struct sg_mrn_attnpool *a, int B)
{
    int C = a->C, T = a->T, H = a->heads, D = C / H;
    float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *q = a->qq + (size_t)b * C + h * D;
            float *p = a->p + ((size_t)b * H + h) * T, *o = a->o + (size_t)b * C + h * D;
            float mx = -INFINITY;
            for (int t = 0; t < T; t++) {
                const float *kt = a->kk + ((size_t)b * T + t) * C + h * D;
                double s = 0;
                for (int d = 0; d < D; d++) s += (double)q[d] * kt[d];
                p[t] = (float)s * scale;
                mx = p[t] > mx ? p[t] : mx;
            }
            double z = 0;
            for (int t = 0; t < T; t++) z += (p[t] = expf(p[t] - mx));
            for (int t = 0; t < T; t++) p[t] = (float)(p[t] / z);
            for (int d = 0; d < D; d++) o[d] = 0;
            for (int t = 0; t < T; t++) {
                const float *vt = a->vv + ((size_t)b * T + t) * C + h * D;
                for (int d = 0; d < D; d++) o[d] += p[t] * vt[d];
            }
        }
}

static float *ap_forward(struct sg_mrn_attnpool *a, struct sg_ctx *c, const float *x, int B)
{
    ap_tokens(a, x, B);
    sg_linear_forward(&a->q, c, a->qq, a->q0, B);
    sg_linear_forward(&a->k, c, a->kk, a->tok, B * a->T);
    sg_linear_forward(&a->v, c, a->vv, a->tok, B * a->T);
    ap_attend(a, B);
    sg_linear_forward(&a->cp, c, a->out, a->o, B);
    return a->out;
}

/* do_ (B,C) -> dqq (B,C), dkk, dvv (B,T,C). Sequential over b, h (dp scratch is (T)). */
static void ap_attend_backward(struct sg_mrn_attnpool *a, int B)
{
    int C = a->C, T = a->T, H = a->heads, D = C / H;
    float scale = 1.0f / sqrtf((float)D);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *q = a->qq + (size_t)b * C + h * D, *go = a->do_ + (size_t)b * C + h * D;
            const float *p = a->p + ((size_t)b * H + h) * T;
            float *dq = a->dqq + (size_t)b * C + h * D, *dp = a->dp;
            double sdp = 0;
            for (int t = 0; t < T; t++) {
                const float *vt = a->vv + ((size_t)b * T + t) * C + h * D;
                float *dvt = a->dvv + ((size_t)b * T + t) * C + h * D;
                double s = 0;
                for (int d = 0; d < D; d++) {
                    s += (double)go[d] * vt[d];
                    dvt[d] = p[t] * go[d];
                }
                dp[t] = (float)s;
                sdp += p[t] * s;
            }
            for (int d = 0; d < D; d++) dq[d] = 0;
            for (int t = 0; t < T; t++) {
                float ds = p[t] * (dp[t] - (float)sdp) * scale;
                const float *kt = a->kk + ((size_t)b * T + t) * C + h * D;
                float *dkt = a->dkk + ((size_t)b * T + t) * C + h * D;
                for (int d = 0; d < D; d++) {
                    dq[d] += ds * kt[d];
                    dkt[d] = ds * q[d];
                }
            }
        }
}

/* dout (B,out_dim) -> dx (B,C,HW) overwritten; accumulates every attnpool param grad. */
static void ap_backward(struct sg_mrn_attnpool *a, struct sg_ctx *c, float *dx, const float *dout,
                        int B)
{
    int C = a->C, T = a->T, HW = T - 1;
    sg_linear_backward(&a->cp, c, a->do_, dout, a->o, B);
    ap_attend_backward(a, B);
    sg_linear_backward(&a->q, c, a->dq0, a->dqq, a->q0, B);
    sg_linear_backward(&a->k, c, a->dtok, a->dkk, a->tok, B * T);
    sg_linear_backward(&a->v, c, a->dt2, a->dvv, a->tok, B * T);
    op_accumulate(c, a->dtok, a->dt2, (int64_t)B * T * C);
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < C; ch++)
            a->dtok[(size_t)b * T * C + ch] += a->dq0[(size_t)b * C + ch];
    float *dpos = a->pos->grad;
    if (dpos)
        for (int b = 0; b < B; b++)
            for (size_t i = 0; i < (size_t)T * C; i++) dpos[i] += a->dtok[(size_t)b * T * C + i];
#pragma omp parallel for
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < C; ch++) {
            const float *dt = a->dtok + (size_t)b * T * C;
            float dm = dt[ch] / (float)HW;
            for (int i = 0; i < HW; i++)
                dx[((size_t)b * C + ch) * HW + i] = dt[(size_t)(i + 1) * C + ch] + dm;
        }
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
    return ap_forward(&m->ap, c, x, B);
}

void sg_mrn_backward(struct sg_mrn *m, struct sg_ctx *c, float *dinp, const float *dout,
                     int training)
{
    int B = m->B, SHW = m->SH * m->SW, SH = m->SH, SW = m->SW, w = m->cfg.width;
    float *g = m->g0, *h = m->g1, *swap;
    ap_backward(&m->ap, c, g, dout, B);
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
