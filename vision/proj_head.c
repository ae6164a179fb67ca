/*
 * vision/proj_head.c — SimCLR/SogCLR projection MLP head (see vision/proj_head.h).
 */
#include "vision/proj_head.h"

#include <stdio.h>

#include "core/common.h"
#include "ops/activation.h"
#include "ops/norm.h"

static void join(char *dst, size_t n, const char *prefix, int idx)
{
    int k = snprintf(dst, n, "%s%s%d", prefix, prefix[0] ? "." : "", idx);
    SG_CHECK(k > 0 && (size_t)k < n, "proj_head prefix too long: %s", prefix);
}

/* BatchNorm1d(C, affine=False): only the running-stat buffers. */
static void bn_noaffine_init(struct sg_batchnorm2d *bn, struct sg_params *ps, const char *pre,
                             int C)
{
    char name[SG_PARAM_NAME_MAX];
    int64_t shape[1] = {C};
    bn->C = C;
    bn->momentum = 0.1f;
    bn->eps = 1e-5f;
    bn->w = bn->b = NULL;
    snprintf(name, sizeof name, "%s.running_mean", pre);
    bn->rm = sg_params_add(ps, name, 1, shape, SG_PARAM_BUFFER | SG_PARAM_INIT_ZERO, 0.0f);
    snprintf(name, sizeof name, "%s.running_var", pre);
    bn->rv = sg_params_add(ps, name, 1, shape, SG_PARAM_BUFFER | SG_PARAM_INIT_ONE, 0.0f);
}

void sg_proj_head_init(struct sg_proj_head *m, struct sg_params *ps, const char *prefix,
                       int nlayers, int in_dim, int hidden_dim, int out_dim)
{
    char pre[SG_PARAM_NAME_MAX - 32];
    SG_CHECK(nlayers >= 1 && nlayers <= SG_PROJ_HEAD_MAX_LAYERS, "proj_head: %d layers", nlayers);
    SG_CHECK(in_dim > 0 && out_dim > 0 && (nlayers == 1 || hidden_dim > 0),
             "proj_head: bad dims %d/%d/%d", in_dim, hidden_dim, out_dim);
    m->nlayers = nlayers;
    m->in_dim = in_dim;
    m->hidden_dim = hidden_dim;
    m->out_dim = out_dim;
    m->B = 0;
    m->g0 = m->g1 = NULL;
    for (int l = 0; l < nlayers; l++) {
        struct sg_proj_head_layer *k = &m->layers[l];
        int last = l == nlayers - 1;
        int din = l == 0 ? in_dim : hidden_dim, dout = last ? out_dim : hidden_dim;
        join(pre, sizeof pre, prefix, 3 * l);
        sg_linear_init(&k->lin, ps, pre, din, dout, 0);
        join(pre, sizeof pre, prefix, 3 * l + 1);
        if (last)
            bn_noaffine_init(&k->bn, ps, pre, dout);
        else
            sg_batchnorm2d_init(&k->bn, ps, pre, dout, 0);
        k->relu = !last;
        k->inp = NULL;
        k->z = k->y = k->a = k->mean = k->rstd = NULL;
    }
}

/* Counts (a == NULL) or carves (a != NULL) the activations. */
static size_t carve(struct sg_proj_head *m, struct sg_arena *a)
{
    size_t total = 0, maxd = (size_t)m->in_dim, B = (size_t)m->B;
#define TAKE(n) (a ? sg_arena_floats(a, (n)) : (total += sg_arena_round((n) * sizeof(float)), NULL))
    for (int l = 0; l < m->nlayers; l++) {
        struct sg_proj_head_layer *k = &m->layers[l];
        size_t d = (size_t)k->lin.OC;
        if (d > maxd) maxd = d;
        k->z = TAKE(B * d);
        k->y = TAKE(B * d);
        k->a = k->relu ? TAKE(B * d) : NULL;
        k->mean = TAKE(d);
        k->rstd = TAKE(d);
    }
    m->g0 = TAKE(B * maxd);
    m->g1 = TAKE(B * maxd);
#undef TAKE
    return total;
}

size_t sg_proj_head_plan(struct sg_proj_head *m, int B)
{
    SG_CHECK(B > 0, "proj_head: batch %d", B);
    m->B = B;
    return carve(m, NULL);
}

void sg_proj_head_bind(struct sg_proj_head *m, struct sg_arena *a)
{
    SG_CHECK(m->B > 0, "proj_head: bind before plan");
    carve(m, a);
}

static const float *bn_w(const struct sg_batchnorm2d *bn)
{
    return bn->w ? bn->w->data : NULL;
}

float *sg_proj_head_forward(struct sg_proj_head *m, struct sg_ctx *c, const float *inp,
                            int training)
{
    SG_CHECK(m->g0 != NULL, "proj_head: forward before bind");
    const float *x = inp;
    int B = m->B;
    for (int l = 0; l < m->nlayers; l++) {
        struct sg_proj_head_layer *k = &m->layers[l];
        const struct sg_batchnorm2d *bn = &k->bn;
        k->inp = x;
        sg_linear_forward(&k->lin, c, k->z, x, B);
        op_batchnorm2d_forward(c, k->y, k->mean, k->rstd, bn->rm->data, bn->rv->data, k->z,
                               bn_w(bn), bn->b ? bn->b->data : NULL, B, bn->C, 1, bn->momentum,
                               bn->eps, training);
        if (k->relu) op_act_forward(c, SG_ACT_RELU, k->a, k->y, (int64_t)B * bn->C);
        x = k->relu ? k->a : k->y;
    }
    return m->layers[m->nlayers - 1].y;
}

void sg_proj_head_backward(struct sg_proj_head *m, struct sg_ctx *c, float *dinp, const float *dout,
                           int training)
{
    int B = m->B;
    const float *g = dout; /* (B, d_out) gradient w.r.t. the current layer's output */
    for (int l = m->nlayers - 1; l >= 0; l--) {
        struct sg_proj_head_layer *k = &m->layers[l];
        const struct sg_batchnorm2d *bn = &k->bn;
        int64_t n = (int64_t)B * bn->C;
        if (k->relu) {
            op_act_backward(c, SG_ACT_RELU, m->g0, g, k->y, n); /* g0 = dy (may alias g) */
            g = m->g0;
        }
        op_batchnorm2d_backward(c, m->g1, bn->w ? bn->w->grad : NULL, bn->b ? bn->b->grad : NULL, g,
                                k->z, bn_w(bn), k->mean, k->rstd, B, bn->C, 1, training);
        float *dx = l == 0 ? dinp : m->g0; /* g1 = dz */
        sg_linear_backward(&k->lin, c, dx, m->g1, k->inp, B);
        g = m->g0;
    }
}
