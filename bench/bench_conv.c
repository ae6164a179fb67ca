/*
 * bench/bench_conv.c — conv2d and pooling forward+backward at ResNet-50 / ViT-B/16 layer shapes.
 * Peer: bench/torch_conv.py (same case names and shapes). Batch 32 where one iteration stays
 * under ~0.3 s on 2 cores, else 16 or 8 (the batch is part of the case name).
 * Conv cases run op_conv2d_forward then op_conv2d_backward(dinp, dw; no bias, as in ResNet),
 * like torch's F.conv2d with requires_grad on input and weight.
 */
#include <stdio.h>

#include "bench/bench.h"
#include "core/common.h"
#include "ops/conv.h"
#include "ops/pool.h"

struct conv_bench {
    struct sg_ctx *c;
    struct sg_conv2d_shape s;
    float *x, *w, *y, *dy, *dx, *dw;
};

static void conv_step(void *arg)
{
    struct conv_bench *b = arg;
    op_conv2d_forward(b->c, &b->s, b->y, b->x, b->w, NULL);
    op_conv2d_backward(b->c, &b->s, b->dx, b->dw, NULL, b->dy, b->x, b->w);
}

static void conv_case(struct sg_ctx *c, const char *name, int B, int C, int H, int OC, int K,
                      int stride, int pad)
{
    if (!bench_selected(name)) return;
    struct conv_bench b = {.c = c};
    sg_conv2d_shape_init(&b.s, B, C, H, H, OC, K, K, stride, pad, 1);
    size_t nx = (size_t)B * C * H * H, nw = (size_t)OC * C * K * K;
    size_t ny = (size_t)B * OC * b.s.OH * b.s.OW;
    b.x = bench_rand(nx, 1);
    b.w = bench_rand(nw, 2);
    b.dy = bench_rand(ny, 3);
    b.y = bench_rand(ny, 4);
    b.dx = bench_rand(nx, 5);
    b.dw = bench_rand(nw, 6);
    bench_time(name, conv_step, &b);
    float *bufs[] = {b.x, b.w, b.y, b.dy, b.dx, b.dw};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
}

struct pool_bench {
    struct sg_ctx *c;
    struct sg_pool2d_shape s;
    int adaptive, is_max;
    float *x, *y, *dy, *dx;
    int32_t *argmax;
};

static void pool_step(void *arg)
{
    struct pool_bench *b = arg;
    const struct sg_pool2d_shape *s = &b->s;
    if (b->adaptive) {
        op_adaptive_avgpool2d_forward(b->c, b->y, b->x, s->B, s->C, s->H, s->W, 1, 1);
        op_adaptive_avgpool2d_backward(b->c, b->dx, b->dy, s->B, s->C, s->H, s->W, 1, 1);
    } else if (b->is_max) {
        op_maxpool2d_forward(b->c, s, b->y, b->argmax, b->x);
        op_maxpool2d_backward(b->c, s, b->dx, b->dy, b->argmax);
    } else {
        op_avgpool2d_forward(b->c, s, b->y, b->x);
        op_avgpool2d_backward(b->c, s, b->dx, b->dy);
    }
}

/* kernel 0 = adaptive average pool to 1x1. */
static void pool_case(struct sg_ctx *c, const char *name, int is_max, int B, int C, int H,
                      int kernel, int stride, int pad)
{
    if (!bench_selected(name)) return;
    struct pool_bench b = {.c = c, .adaptive = kernel == 0, .is_max = is_max};
    if (kernel == 0)
        b.s = (struct sg_pool2d_shape){.B = B, .C = C, .H = H, .W = H, .OH = 1, .OW = 1};
    else
        sg_pool2d_shape_init(&b.s, B, C, H, H, kernel, stride, pad);
    size_t nx = (size_t)B * C * H * H, ny = (size_t)B * C * b.s.OH * b.s.OW;
    b.x = bench_rand(nx, 1);
    b.dy = bench_rand(ny, 2);
    b.y = bench_rand(ny, 3);
    b.dx = bench_rand(nx, 4);
    b.argmax = sg_xmalloc_aligned(sizeof(int32_t) * ny);
    bench_time(name, pool_step, &b);
    sg_afree(b.x);
    sg_afree(b.dy);
    sg_afree(b.y);
    sg_afree(b.dx);
    sg_afree(b.argmax);
}

void bench_conv(struct sg_ctx *c)
{
    conv_case(c, "conv3x3_64x56_b16", 16, 64, 56, 64, 3, 1, 1);
    conv_case(c, "conv3x3_128x28_b32", 32, 128, 28, 128, 3, 1, 1);
    conv_case(c, "conv3x3_256x14_b32", 32, 256, 14, 256, 3, 1, 1);
    conv_case(c, "conv1x1_256to64x56_b16", 16, 256, 56, 64, 1, 1, 0);
    conv_case(c, "conv7x7s2_3to64x224_b8", 8, 3, 224, 64, 7, 2, 3);
    conv_case(c, "conv16x16s16_3to768x224_b16", 16, 3, 224, 768, 16, 16, 0);
    pool_case(c, "maxpool3x3s2_64x112_b32", 1, 32, 64, 112, 3, 2, 1);
    pool_case(c, "avgpool2x2s2_256x56_b32", 0, 32, 256, 56, 2, 2, 0);
    pool_case(c, "adaptive_avgpool_2048x7_b32", 0, 32, 2048, 7, 0, 0, 0);
}
