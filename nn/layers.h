/*
 * nn/layers.h — nn modules: conv2d (no bias, as torchvision's ResNet), batchnorm2d, linear.
 *
 * A module is a struct of `struct sg_param *` handles registered under PyTorch state_dict names
 * ("<prefix>.weight", ...) plus its hyperparameters. Activation buffers are provided by the
 * caller (no allocation here). Shapes follow torch: conv weight (OC, C, k, k), input NCHW;
 * linear weight (out, in), input (N, in).
 *
 * batchnorm2d registers weight, bias and the buffers running_mean, running_var
 * (SG_PARAM_BUFFER). num_batches_tracked is NOT registered: it only matters for momentum=None
 * (cumulative averaging), which we do not support; torch's default momentum 0.1 ignores it.
 *
 * Gradient contract (ops/ops.h): _backward ACCUMULATES (+=) into parameter grads (param->grad)
 * and OVERWRITES (=) the input gradient; a NULL dinp skips it.
 */
#ifndef SG_NN_LAYERS_H
#define SG_NN_LAYERS_H

#include "core/ctx.h"
#include "core/params.h"

struct sg_conv2d {
    struct sg_param *w; /* (OC, C, k, k) */
    int C, OC, k, stride, pad;
};

struct sg_batchnorm2d {
    struct sg_param *w, *b;   /* (C) gamma, beta */
    struct sg_param *rm, *rv; /* (C) running_mean, running_var buffers */
    int C;
    float momentum, eps;
};

struct sg_linear {
    struct sg_param *w; /* (OC, C) */
    struct sg_param *b; /* (OC) or NULL */
    int C, OC;
};

/* weight: kaiming_normal_(mode="fan_out", relu) as torchvision: std = sqrt(2 / (OC*k*k)). */
void sg_conv2d_init(struct sg_conv2d *m, struct sg_params *ps, const char *prefix, int C, int OC,
                    int k, int stride, int pad);
int sg_conv2d_out_size(const struct sg_conv2d *m, int H); /* OH for input height H */
void sg_conv2d_forward(const struct sg_conv2d *m, struct sg_ctx *c, float *out, const float *inp,
                       int B, int H, int W);
void sg_conv2d_backward(const struct sg_conv2d *m, struct sg_ctx *c, float *dinp, const float *dout,
                        const float *inp, int B, int H, int W);

/* weight = 1 (0 when zero_init), bias = 0, running_mean = 0, running_var = 1; momentum 0.1,
 * eps 1e-5 (torch defaults). */
void sg_batchnorm2d_init(struct sg_batchnorm2d *m, struct sg_params *ps, const char *prefix, int C,
                         int zero_init);
/* inp/out (B, C, HW); mean/rstd (C) filled for backward. training updates the running stats. */
void sg_batchnorm2d_forward(const struct sg_batchnorm2d *m, struct sg_ctx *c, float *out,
                            float *mean, float *rstd, const float *inp, int B, int HW,
                            int training);
void sg_batchnorm2d_backward(const struct sg_batchnorm2d *m, struct sg_ctx *c, float *dinp,
                             const float *dout, const float *inp, const float *mean,
                             const float *rstd, int B, int HW, int training);

/* torch.nn.Linear default init: weight and bias uniform(-1/sqrt(C), 1/sqrt(C)). */
void sg_linear_init(struct sg_linear *m, struct sg_params *ps, const char *prefix, int C, int OC,
                    int bias);
void sg_linear_forward(const struct sg_linear *m, struct sg_ctx *c, float *out, const float *inp,
                       int N);
void sg_linear_backward(const struct sg_linear *m, struct sg_ctx *c, float *dinp, const float *dout,
                        const float *inp, int N);

#endif
