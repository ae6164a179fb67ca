/*
 * vision/resnet.c — torchvision ResNet (BasicBlock) forward/backward on nn/layers modules.
 * See vision/resnet.h for structure, names and memory rules.
 */
#include "vision/resnet.h"

#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/pool.h"

static void join(char *dst, size_t cap, const char *prefix, const char *leaf)
{
    int n = snprintf(dst, cap, "%s%s%s", prefix, prefix[0] ? "." : "", leaf);
    SG_CHECK(n > 0 && (size_t)n < cap, "resnet: name too long: %s.%s", prefix, leaf);
}

static void block_init(struct sg_resnet_block *k, struct sg_params *ps, const char *name, int C,
                       int P, int stride, int zero_init, int bottleneck)
{
    char p[SG_PARAM_NAME_MAX];
    memset(k, 0, sizeof *k);
    k->C = C;
    k->P = P;
    k->bottleneck = bottleneck;
    k->OC = bottleneck ? 4 * P : P;
    join(p, sizeof p, name, "conv1");
    if (bottleneck)
        sg_conv2d_init(&k->conv1, ps, p, C, P, 1, 1, 0);
    else
        sg_conv2d_init(&k->conv1, ps, p, C, P, 3, stride, 1);
    join(p, sizeof p, name, "bn1");
    sg_batchnorm2d_init(&k->bn1, ps, p, P, 0);
    join(p, sizeof p, name, "conv2");
    sg_conv2d_init(&k->conv2, ps, p, P, P, 3, bottleneck ? stride : 1, 1);
    join(p, sizeof p, name, "bn2");
    sg_batchnorm2d_init(&k->bn2, ps, p, P, zero_init && !bottleneck);
    if (bottleneck) {
        join(p, sizeof p, name, "conv3");
        sg_conv2d_init(&k->conv3, ps, p, P, k->OC, 1, 1, 0);
        join(p, sizeof p, name, "bn3");
        sg_batchnorm2d_init(&k->bn3, ps, p, k->OC, zero_init);
    }
    k->has_down = stride != 1 || C != k->OC;
    if (k->has_down) {
        join(p, sizeof p, name, "downsample.0");
        sg_conv2d_init(&k->down_conv, ps, p, C, k->OC, 1, stride, 0);
        join(p, sizeof p, name, "downsample.1");
        sg_batchnorm2d_init(&k->down_bn, ps, p, k->OC, 0);
    }
}

void sg_resnet_init(struct sg_resnet *m, const struct sg_resnet_config *cfg, struct sg_params *ps,
                    const char *prefix)
{
    char p[SG_PARAM_NAME_MAX], leaf[64];
    int w = cfg->base_width, C = w;
    SG_CHECK(w > 0, "resnet: base_width %d", w);
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    join(p, sizeof p, prefix, "conv1");
    if (cfg->cifar_stem)
        sg_conv2d_init(&m->conv1, ps, p, 3, w, 3, 1, 1);
    else
        sg_conv2d_init(&m->conv1, ps, p, 3, w, 7, 2, 3);
    join(p, sizeof p, prefix, "bn1");
    sg_batchnorm2d_init(&m->bn1, ps, p, w, 0);
    for (int L = 0; L < 4; L++) {
        int P = w << L;
        SG_CHECK(cfg->layers[L] >= 1, "resnet: layers[%d] = %d", L, cfg->layers[L]);
        for (int i = 0; i < cfg->layers[L]; i++) {
            SG_CHECK(m->nblocks < SG_RESNET_MAX_BLOCKS, "resnet: too many blocks");
            snprintf(leaf, sizeof leaf, "layer%d.%d", L + 1, i);
            join(p, sizeof p, prefix, leaf);
            struct sg_resnet_block *k = &m->blocks[m->nblocks++];
            block_init(k, ps, p, C, P, (i == 0 && L > 0) ? 2 : 1, cfg->zero_init_residual,
                       cfg->bottleneck);
            C = k->OC;
        }
    }
    m->feat_dim = C;
    m->out_dim = cfg->num_classes > 0 ? cfg->num_classes : C;
    if (cfg->num_classes > 0) {
        join(p, sizeof p, prefix, "fc");
        sg_linear_init(&m->fc, ps, p, C, cfg->num_classes, 1);
    }
}

/* Counts (a == NULL) or carves (a != NULL) one buffer of n floats. */
static size_t max_sz(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* Walks the planned shapes; fills block geometry and (when binding) the buffer pointers. */
static void carve(struct sg_resnet *m, struct sg_carver *cv)
{
    size_t B = (size_t)m->B, w = (size_t)m->cfg.base_width;
    size_t stem = B * w * (size_t)m->SH * m->SW, pooled = B * w * (size_t)m->PH * m->PW;
    size_t big = max_sz(B * 3 * (size_t)m->H * m->W, stem);
    m->c0 = sg_carve_floats(cv, stem);
    m->a0 = sg_carve_floats(cv, stem);
    m->mean0 = sg_carve_floats(cv, w);
    m->rstd0 = sg_carve_floats(cv, w);
    if (m->cfg.cifar_stem) {
        m->p0 = m->a0;
        m->argmax = NULL;
    } else {
        m->p0 = sg_carve_floats(cv, pooled);
        m->argmax = sg_carve(cv, pooled * sizeof(int32_t));
    }
    int H = m->PH, W = m->PW;
    for (int i = 0; i < m->nblocks; i++) {
        struct sg_resnet_block *k = &m->blocks[i];
        k->H = H;
        k->W = W;
        const struct sg_conv2d *sc = k->bottleneck ? &k->conv2 : &k->conv1; /* the strided */
        k->OH = sg_conv2d_out_size(sc, H);
        k->OW = sg_conv2d_out_size(sc, W);
        size_t n = B * (size_t)k->OC * k->OH * k->OW, oc = (size_t)k->OC, p = (size_t)k->P;
        size_t n1 = k->bottleneck ? B * p * H * W : n, n2 = B * p * k->OH * k->OW;
        big = max_sz(big, max_sz(n, n1));
        k->c1 = sg_carve_floats(cv, n1);
        k->a1 = sg_carve_floats(cv, n1);
        k->c2 = sg_carve_floats(cv, k->bottleneck ? n2 : n);
        k->out = sg_carve_floats(cv, n);
        k->mean1 = sg_carve_floats(cv, p);
        k->rstd1 = sg_carve_floats(cv, p);
        k->mean2 = sg_carve_floats(cv, p);
        k->rstd2 = sg_carve_floats(cv, p);
        if (k->bottleneck) {
            k->a2 = sg_carve_floats(cv, n2);
            k->c3 = sg_carve_floats(cv, n);
            k->mean3 = sg_carve_floats(cv, oc);
            k->rstd3 = sg_carve_floats(cv, oc);
        }
        if (k->has_down) {
            k->cd = sg_carve_floats(cv, n);
            k->meand = sg_carve_floats(cv, oc);
            k->rstdd = sg_carve_floats(cv, oc);
        }
        H = k->OH;
        W = k->OW;
    }
    m->feat = sg_carve_floats(cv, B * (size_t)m->feat_dim);
    m->dfeat = sg_carve_floats(cv, B * (size_t)m->feat_dim);
    m->logits = m->cfg.num_classes > 0 ? sg_carve_floats(cv, B * (size_t)m->cfg.num_classes) : NULL;
    m->g0 = sg_carve_floats(cv, big);
    m->g1 = sg_carve_floats(cv, big);
    m->t0 = sg_carve_floats(cv, big);
    m->t1 = sg_carve_floats(cv, big);
}

size_t sg_resnet_plan(struct sg_resnet *m, int B, int H, int W)
{
    struct sg_carver cv = {NULL, 0};
    SG_CHECK(B > 0 && H > 0 && W > 0, "resnet_plan: bad input %dx3x%dx%d", B, H, W);
    m->B = B;
    m->H = H;
    m->W = W;
    m->SH = sg_conv2d_out_size(&m->conv1, H);
    m->SW = sg_conv2d_out_size(&m->conv1, W);
    if (m->cfg.cifar_stem) {
        m->PH = m->SH;
        m->PW = m->SW;
    } else {
        m->PH = (m->SH + 2 - 3) / 2 + 1;
        m->PW = (m->SW + 2 - 3) / 2 + 1;
    }
    carve(m, &cv);
    return cv.total;
}

void sg_resnet_bind(struct sg_resnet *m, struct sg_arena *a)
{
    struct sg_carver cv = {a, 0};
    SG_CHECK(m->B > 0, "resnet_bind before resnet_plan");
    carve(m, &cv);
}

static void pool_shape(const struct sg_resnet *m, struct sg_pool2d_shape *s)
{
    sg_pool2d_shape_init(s, m->B, m->cfg.base_width, m->SH, m->SW, 3, 2, 1);
}

/* The residual branch up to the last conv; returns the last conv's output (bn input). */
static const float *branch_forward(struct sg_resnet_block *k, struct sg_ctx *c, const float *x,
                                   int B, int training)
{
    int HW1 = k->bottleneck ? k->H * k->W : k->OH * k->OW, HW = k->OH * k->OW;
    sg_conv2d_forward(&k->conv1, c, k->c1, x, B, k->H, k->W);
    sg_batchnorm2d_forward(&k->bn1, c, k->a1, k->mean1, k->rstd1, k->c1, B, HW1, training);
    op_act_forward(c, SG_ACT_RELU, k->a1, k->a1, (int64_t)B * k->P * HW1);
    if (!k->bottleneck) {
        sg_conv2d_forward(&k->conv2, c, k->c2, k->a1, B, k->OH, k->OW);
        return k->c2;
    }
    sg_conv2d_forward(&k->conv2, c, k->c2, k->a1, B, k->H, k->W);
    sg_batchnorm2d_forward(&k->bn2, c, k->a2, k->mean2, k->rstd2, k->c2, B, HW, training);
    op_act_forward(c, SG_ACT_RELU, k->a2, k->a2, (int64_t)B * k->P * HW);
    sg_conv2d_forward(&k->conv3, c, k->c3, k->a2, B, k->OH, k->OW);
    return k->c3;
}

/* out = relu(last_bn(branch(x)) + identity(x)); t is scratch of the output size. */
static void block_forward(struct sg_resnet_block *k, struct sg_ctx *c, const float *x, float *t,
                          int B, int training)
{
    int HW = k->OH * k->OW;
    int64_t n = (int64_t)B * k->OC * HW;
    k->inp = x;
    const float *last = branch_forward(k, c, x, B, training);
    if (k->bottleneck)
        sg_batchnorm2d_forward(&k->bn3, c, k->out, k->mean3, k->rstd3, last, B, HW, training);
    else
        sg_batchnorm2d_forward(&k->bn2, c, k->out, k->mean2, k->rstd2, last, B, HW, training);
    if (k->has_down) {
        sg_conv2d_forward(&k->down_conv, c, k->cd, x, B, k->H, k->W);
        sg_batchnorm2d_forward(&k->down_bn, c, t, k->meand, k->rstdd, k->cd, B, HW, training);
        op_add_forward(c, k->out, k->out, t, n);
    } else {
        op_add_forward(c, k->out, k->out, x, n);
    }
    op_act_forward(c, SG_ACT_RELU, k->out, k->out, n);
}

/* Bottleneck: from t0 = d(bn3 out) back to t1 = d(c1); g is scratch (clobbered). */
static void bottleneck_branch_backward(struct sg_resnet_block *k, struct sg_ctx *c, float *g,
                                       const float *t0, float *t1, int B, int training)
{
    int HW1 = k->H * k->W, HW = k->OH * k->OW;
    sg_batchnorm2d_backward(&k->bn3, c, t1, t0, k->c3, k->mean3, k->rstd3, B, HW, training);
    sg_conv2d_backward(&k->conv3, c, g, t1, k->a2, B, k->OH, k->OW);
    op_act_backward(c, SG_ACT_RELU, g, g, k->a2, (int64_t)B * k->P * HW);
    sg_batchnorm2d_backward(&k->bn2, c, t1, g, k->c2, k->mean2, k->rstd2, B, HW, training);
    sg_conv2d_backward(&k->conv2, c, g, t1, k->a1, B, k->H, k->W);
    op_act_backward(c, SG_ACT_RELU, g, g, k->a1, (int64_t)B * k->P * HW1);
    sg_batchnorm2d_backward(&k->bn1, c, t1, g, k->c1, k->mean1, k->rstd1, B, HW1, training);
}

/* Basic block: from t0 = d(bn2 out) back to t1 = d(c1); g is scratch (clobbered). */
static void basic_branch_backward(struct sg_resnet_block *k, struct sg_ctx *c, float *g,
                                  const float *t0, float *t1, int B, int training)
{
    int HW = k->OH * k->OW;
    sg_batchnorm2d_backward(&k->bn2, c, t1, t0, k->c2, k->mean2, k->rstd2, B, HW, training);
    sg_conv2d_backward(&k->conv2, c, g, t1, k->a1, B, k->OH, k->OW);
    op_act_backward(c, SG_ACT_RELU, g, g, k->a1, (int64_t)B * k->P * HW);
    sg_batchnorm2d_backward(&k->bn1, c, t1, g, k->c1, k->mean1, k->rstd1, B, HW, training);
}

/* dout is clobbered (used as scratch); dx (B,C,H,W) overwritten; t0, t1 scratch. */
static void block_backward(struct sg_resnet_block *k, struct sg_ctx *c, float *dx, float *dout,
                           float *t0, float *t1, int B, int training)
{
    int HW = k->OH * k->OW;
    int64_t n = (int64_t)B * k->OC * HW, nin = (int64_t)B * k->C * k->H * k->W;
    op_act_backward(c, SG_ACT_RELU, t0, dout, k->out, n); /* t0 = d(pre-relu sum) */
    if (k->bottleneck)
        bottleneck_branch_backward(k, c, dout, t0, t1, B, training);
    else
        basic_branch_backward(k, c, dout, t0, t1, B, training);
    sg_conv2d_backward(&k->conv1, c, dx, t1, k->inp, B, k->H, k->W);
    if (k->has_down) {
        sg_batchnorm2d_backward(&k->down_bn, c, t1, t0, k->cd, k->meand, k->rstdd, B, HW, training);
        sg_conv2d_backward(&k->down_conv, c, dout, t1, k->inp, B, k->H, k->W);
        op_accumulate(c, dx, dout, nin);
    } else {
        op_accumulate(c, dx, t0, nin);
    }
}

float *sg_resnet_forward(struct sg_resnet *m, struct sg_ctx *c, const float *inp, int training)
{
    int B = m->B, SHW = m->SH * m->SW;
    SG_CHECK(m->g0 != NULL, "resnet_forward before resnet_bind");
    m->inp = inp;
    sg_conv2d_forward(&m->conv1, c, m->c0, inp, B, m->H, m->W);
    sg_batchnorm2d_forward(&m->bn1, c, m->a0, m->mean0, m->rstd0, m->c0, B, SHW, training);
    op_act_forward(c, SG_ACT_RELU, m->a0, m->a0, (int64_t)B * m->cfg.base_width * SHW);
    if (!m->cfg.cifar_stem) {
        struct sg_pool2d_shape s;
        pool_shape(m, &s);
        op_maxpool2d_forward(c, &s, m->p0, m->argmax, m->a0);
    }
    const float *x = m->p0;
    for (int i = 0; i < m->nblocks; i++) {
        block_forward(&m->blocks[i], c, x, m->t0, B, training);
        x = m->blocks[i].out;
    }
    const struct sg_resnet_block *last = &m->blocks[m->nblocks - 1];
    op_adaptive_avgpool2d_forward(c, m->feat, x, B, m->feat_dim, last->OH, last->OW, 1, 1);
    if (m->cfg.num_classes == 0) return m->feat;
    sg_linear_forward(&m->fc, c, m->logits, m->feat, B);
    return m->logits;
}

void sg_resnet_backward(struct sg_resnet *m, struct sg_ctx *c, float *dinp, const float *dout,
                        int training)
{
    int B = m->B, SHW = m->SH * m->SW;
    const float *dfeat = dout;
    if (m->cfg.num_classes > 0) {
        sg_linear_backward(&m->fc, c, m->dfeat, dout, m->feat, B);
        dfeat = m->dfeat;
    }
    const struct sg_resnet_block *last = &m->blocks[m->nblocks - 1];
    float *g = m->g0, *h = m->g1, *swap;
    op_adaptive_avgpool2d_backward(c, g, dfeat, B, m->feat_dim, last->OH, last->OW, 1, 1);
    for (int i = m->nblocks - 1; i >= 0; i--) {
        block_backward(&m->blocks[i], c, h, g, m->t0, m->t1, B, training);
        swap = g;
        g = h;
        h = swap;
    }
    if (!m->cfg.cifar_stem) { /* g = d(pooled) -> h = d(a0) */
        struct sg_pool2d_shape s;
        pool_shape(m, &s);
        op_maxpool2d_backward(c, &s, h, g, m->argmax);
        swap = g;
        g = h;
        h = swap;
    }
    op_act_backward(c, SG_ACT_RELU, g, g, m->a0, (int64_t)B * m->cfg.base_width * SHW);
    sg_batchnorm2d_backward(&m->bn1, c, h, g, m->c0, m->mean0, m->rstd0, B, SHW, training);
    sg_conv2d_backward(&m->conv1, c, dinp, h, m->inp, B, m->H, m->W);
}
