/*
 * bench/bench_norm.c — LayerNorm and BatchNorm2d (training) forward+backward at ViT-B/16, text
 * transformer and ResNet-50 layer shapes, batch 32. PyTorch peers: bench/torch_norm.py
 * (F.layer_norm / F.batch_norm(training=True), grads of input, weight and bias).
 */
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/common.h"
#include "ops/norm.h"

struct norm_case {
    struct sg_ctx *c;
    int B, C, HW;                      /* layernorm: N = B rows of C (HW unused) */
    float *x, *out, *dout, *dinp;      /* (B,C,HW) or (N,C) */
    float *w, *b, *dw, *db;            /* (C) */
    float *mean, *rstd, *rmean, *rvar; /* (N) or (C) */
};

static void case_alloc(struct norm_case *k, struct sg_ctx *c, int B, int C, int HW)
{
    size_t n = (size_t)B * C * HW, rows = (size_t)SG_MAX(B, C);
    k->c = c;
    k->B = B, k->C = C, k->HW = HW;
    k->x = bench_rand(n, 1), k->dout = bench_rand(n, 2);
    k->out = bench_rand(n, 3), k->dinp = bench_rand(n, 4);
    k->w = bench_rand((size_t)C, 5), k->b = bench_rand((size_t)C, 6);
    k->dw = bench_rand((size_t)C, 7), k->db = bench_rand((size_t)C, 8);
    k->mean = bench_rand(rows, 9), k->rstd = bench_rand(rows, 10);
    k->rmean = bench_rand((size_t)C, 11), k->rvar = bench_rand((size_t)C, 12);
    for (int i = 0; i < C; i++) k->rvar[i] = 1.0f + 0.5f * k->rvar[i];
}

static void case_free(struct norm_case *k)
{
    float *bufs[] = {k->x,  k->out, k->dout, k->dinp, k->w,     k->b,
                     k->dw, k->db,  k->mean, k->rstd, k->rmean, k->rvar};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
}

static void run_layernorm(void *arg)
{
    struct norm_case *k = arg;
    op_layernorm_forward(k->c, k->out, k->mean, k->rstd, k->x, k->w, k->b, k->B, k->C, 1e-5f);
    op_layernorm_backward(k->c, k->dinp, k->dw, k->db, k->dout, k->x, k->w, k->mean, k->rstd, k->B,
                          k->C);
}

static void run_batchnorm(void *arg)
{
    struct norm_case *k = arg;
    op_batchnorm2d_forward(k->c, k->out, k->mean, k->rstd, k->rmean, k->rvar, k->x, k->w, k->b,
                           k->B, k->C, k->HW, 0.1f, 1e-5f, 1);
    op_batchnorm2d_backward(k->c, k->dinp, k->dw, k->db, k->dout, k->x, k->w, k->mean, k->rstd,
                            k->B, k->C, k->HW, 1);
}

void bench_norm(struct sg_ctx *c)
{
    static const struct {
        const char *name;
        int bn, B, C, HW;
    } cases[] = {
        {"layernorm_6304x768", 0, 32 * 197, 768, 1}, /* ViT-B/16 tokens */
        {"layernorm_2464x512", 0, 32 * 77, 512, 1},  /* text transformer */
        {"batchnorm2d_train_32x64x56x56", 1, 32, 64, 56 * 56},
        {"batchnorm2d_train_32x256x56x56", 1, 32, 256, 56 * 56},
        {"batchnorm2d_train_32x512x28x28", 1, 32, 512, 28 * 28},
        {"batchnorm2d_train_32x2048x7x7", 1, 32, 2048, 7 * 7},
        {"batchnorm1d_train_256x2048", 1, 256, 2048, 1}, /* projection head */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!bench_selected(cases[i].name)) continue;
        struct norm_case k;
        case_alloc(&k, c, cases[i].B, cases[i].C, cases[i].HW);
        bench_time(cases[i].name, cases[i].bn ? run_batchnorm : run_layernorm, &k);
        case_free(&k);
    }
}
