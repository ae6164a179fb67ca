/*
 * nn/layers.c — conv2d / batchnorm2d / linear modules on top of ops/ (see nn/layers.h).
 */
#include "nn/layers.h"

#include <math.h>
#include <stdio.h>

#include "core/common.h"
#include "ops/conv.h"
#include "ops/matmul.h"
#include "ops/norm.h"

static struct sg_param *add(struct sg_params *ps, const char *prefix, const char *leaf, int ndim,
                            const int64_t *shape, unsigned flags, float scale)
{
    char name[SG_PARAM_NAME_MAX];
    int n = snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", leaf);
    SG_CHECK(n > 0 && n < (int)sizeof name, "param name too long: %s.%s", prefix, leaf);
    return sg_params_add(ps, name, ndim, shape, flags, scale);
}

void sg_conv2d_init(struct sg_conv2d *m, struct sg_params *ps, const char *prefix, int C, int OC,
                    int k, int stride, int pad)
{
    int64_t shape[4] = {OC, C, k, k};
    float std = sqrtf(2.0f / (float)(OC * k * k));
    m->C = C;
    m->OC = OC;
    m->k = k;
    m->stride = stride;
    m->pad = pad;
    m->w = add(ps, prefix, "weight", 4, shape, SG_PARAM_DECAY | SG_PARAM_INIT_NORMAL, std);
}

int sg_conv2d_out_size(const struct sg_conv2d *m, int H)
{
    return (H + 2 * m->pad - m->k) / m->stride + 1;
}

static void conv_shape(const struct sg_conv2d *m, struct sg_conv2d_shape *s, int B, int H, int W)
{
    sg_conv2d_shape_init(s, B, m->C, H, W, m->OC, m->k, m->k, m->stride, m->pad, 1);
}

void sg_conv2d_forward(const struct sg_conv2d *m, struct sg_ctx *c, float *out, const float *inp,
                       int B, int H, int W)
{
    struct sg_conv2d_shape s;
    conv_shape(m, &s, B, H, W);
    op_conv2d_forward(c, &s, out, inp, m->w->data, NULL);
}

void sg_conv2d_backward(const struct sg_conv2d *m, struct sg_ctx *c, float *dinp, const float *dout,
                        const float *inp, int B, int H, int W)
{
    struct sg_conv2d_shape s;
    conv_shape(m, &s, B, H, W);
    op_conv2d_backward(c, &s, dinp, m->w->grad, NULL, dout, inp, m->w->data);
}

void sg_batchnorm2d_init(struct sg_batchnorm2d *m, struct sg_params *ps, const char *prefix, int C,
                         int zero_init)
{
    int64_t shape[1] = {C};
    m->C = C;
    m->momentum = 0.1f;
    m->eps = 1e-5f;
    m->w = add(ps, prefix, "weight", 1, shape, zero_init ? SG_PARAM_INIT_ZERO : SG_PARAM_INIT_ONE,
               0.0f);
    m->b = add(ps, prefix, "bias", 1, shape, SG_PARAM_INIT_ZERO, 0.0f);
    m->rm = add(ps, prefix, "running_mean", 1, shape, SG_PARAM_BUFFER | SG_PARAM_INIT_ZERO, 0.0f);
    m->rv = add(ps, prefix, "running_var", 1, shape, SG_PARAM_BUFFER | SG_PARAM_INIT_ONE, 0.0f);
}

void sg_batchnorm2d_forward(const struct sg_batchnorm2d *m, struct sg_ctx *c, float *out,
                            float *mean, float *rstd, const float *inp, int B, int HW, int training)
{
    op_batchnorm2d_forward(c, out, mean, rstd, m->rm->data, m->rv->data, inp, m->w->data,
                           m->b->data, B, m->C, HW, m->momentum, m->eps, training);
}

void sg_batchnorm2d_backward(const struct sg_batchnorm2d *m, struct sg_ctx *c, float *dinp,
                             const float *dout, const float *inp, const float *mean,
                             const float *rstd, int B, int HW, int training)
{
    op_batchnorm2d_backward(c, dinp, m->w->grad, m->b->grad, dout, inp, m->w->data, mean, rstd, B,
                            m->C, HW, training);
}

void sg_linear_init(struct sg_linear *m, struct sg_params *ps, const char *prefix, int C, int OC,
                    int bias)
{
    int64_t wshape[2] = {OC, C}, bshape[1] = {OC};
    float bound = 1.0f / sqrtf((float)C);
    m->C = C;
    m->OC = OC;
    m->w = add(ps, prefix, "weight", 2, wshape, SG_PARAM_DECAY | SG_PARAM_INIT_UNIFORM, bound);
    m->b = bias ? add(ps, prefix, "bias", 1, bshape, SG_PARAM_INIT_UNIFORM, bound) : NULL;
}

void sg_linear_forward(const struct sg_linear *m, struct sg_ctx *c, float *out, const float *inp,
                       int N)
{
    op_linear_forward(c, out, inp, m->w->data, m->b ? m->b->data : NULL, N, m->C, m->OC);
}

void sg_linear_backward(const struct sg_linear *m, struct sg_ctx *c, float *dinp, const float *dout,
                        const float *inp, int N)
{
    op_linear_backward(c, dinp, m->w->grad, m->b ? m->b->grad : NULL, dout, inp, m->w->data, N,
                       m->C, m->OC);
}
