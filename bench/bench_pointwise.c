/*
 * bench/bench_pointwise.c — forward+backward of the pointwise family at ResNet-50 / ViT-B/16
 * sizes (batch 32): activations on the ViT MLP hidden (32*197 x 3072) and the ResNet stem output
 * (32x64x112x112), attention softmax (32*12*197 rows of 197), the residual add (32*197 x 768),
 * L2 normalisation of embeddings (4096 x 512) and dropout p = 0.1 (32*197 x 768).
 * PyTorch peers: bench/torch_pointwise.py (same case names and shapes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "core/common.h"
#include "core/rng.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/softmax.h"

#define VIT_TOKENS (32 * 197)

struct pw_case {
    struct sg_ctx *c;
    enum sg_act act;
    int64_t n;
    int N, D;
    float p;
    float *x, *x2, *out, *g, *dx, *dx2, *norm;
    uint8_t *mask;
    struct sg_rng rng;
};

static void run_act(void *arg)
{
    struct pw_case *k = arg;
    op_act_forward(k->c, k->act, k->out, k->x, k->n);
    op_act_backward(k->c, k->act, k->dx, k->g, k->x, k->n);
}

static void run_softmax(void *arg)
{
    struct pw_case *k = arg;
    op_softmax_forward(k->c, k->out, k->x, k->N, k->D);
    op_softmax_backward(k->c, k->dx, k->g, k->out, k->N, k->D);
}

static void run_add(void *arg)
{
    struct pw_case *k = arg;
    op_add_forward(k->c, k->out, k->x, k->x2, k->n);
    op_add_backward(k->c, k->dx, k->dx2, k->g, k->n);
}

static void run_l2norm(void *arg)
{
    struct pw_case *k = arg;
    op_l2norm_forward(k->c, k->out, k->norm, k->x, k->N, k->D, 1e-12f);
    op_l2norm_backward(k->c, k->dx, k->g, k->out, k->norm, k->N, k->D, 1e-12f);
}

static void run_dropout(void *arg)
{
    struct pw_case *k = arg;
    op_dropout_forward(k->c, k->out, k->mask, k->x, k->n, k->p, &k->rng);
    op_dropout_backward(k->c, k->dx, k->g, k->mask, k->n, k->p);
}

/* Allocates the buffers for n elements (x in [-scale, scale)), times fn, frees. */
static void run_case(struct pw_case *k, const char *name, void (*fn)(void *), float scale)
{
    if (!bench_selected(name)) return;
    size_t n = (size_t)k->n;
    k->x = bench_rand(n, 1);
    for (size_t i = 0; i < n; i++) k->x[i] *= scale;
    k->x2 = bench_rand(n, 2);
    k->g = bench_rand(n, 3);
    k->out = bench_rand(n, 4); /* outputs written before timing (pages mapped): model code */
    k->dx = bench_rand(n, 5);  /* reuses its activation buffers */
    k->dx2 = bench_rand(n, 6);
    k->norm = sg_xmalloc_aligned(sizeof(float) * (size_t)(k->N > 0 ? k->N : 1));
    k->mask = sg_xmalloc_aligned(n);
    sg_rng_seed(&k->rng, 42);
    bench_time(name, fn, k);
    sg_afree(k->x);
    sg_afree(k->x2);
    sg_afree(k->g);
    sg_afree(k->out);
    sg_afree(k->dx);
    sg_afree(k->dx2);
    sg_afree(k->norm);
    sg_afree(k->mask);
}

void bench_pointwise(struct sg_ctx *c)
{
    static const struct {
        const char *name;
        enum sg_act act;
        int64_t n;
    } acts[] = {
        {"act_relu_32x64x112x112", SG_ACT_RELU, 32LL * 64 * 112 * 112},
        {"act_gelu_32x197x3072", SG_ACT_GELU, (int64_t)VIT_TOKENS * 3072},
        {"act_gelu_tanh_32x197x3072", SG_ACT_GELU_TANH, (int64_t)VIT_TOKENS * 3072},
        {"act_quickgelu_32x197x3072", SG_ACT_QUICKGELU, (int64_t)VIT_TOKENS * 3072},
    };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        struct pw_case k = {.c = c, .act = acts[i].act, .n = acts[i].n};
        run_case(&k, acts[i].name, run_act, 4.0f);
    }
    struct pw_case sm = {.c = c, .N = 32 * 12 * 197, .D = 197, .n = 32LL * 12 * 197 * 197};
    run_case(&sm, "softmax_75648x197", run_softmax, 4.0f);
    struct pw_case add = {.c = c, .n = (int64_t)VIT_TOKENS * 768};
    run_case(&add, "add_32x197x768", run_add, 1.0f);
    struct pw_case l2 = {.c = c, .N = 4096, .D = 512, .n = 4096 * 512};
    run_case(&l2, "l2norm_4096x512", run_l2norm, 1.0f);
    struct pw_case dr = {.c = c, .n = (int64_t)VIT_TOKENS * 768, .p = 0.1f};
    run_case(&dr, "dropout_p0.1_32x197x768", run_dropout, 1.0f);
}
