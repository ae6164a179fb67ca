/*
 * bench/bench_matmul.c — forward+backward timings for linear, batched matmul and the attention
 * core at ViT-B/16 (batch 32: 32*197 tokens, C 768, MLP 3072, 12 heads) and text-tower
 * (32x77, C 512, 8 heads, causal) shapes. PyTorch peers with the same names:
 * bench/torch_matmul.py (F.linear, torch.bmm, and the manual q@k^T/softmax/@v attention that
 * nn.MultiheadAttention runs on CPU in torch 1.13).
 */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "core/common.h"
#include "ops/attention.h"
#include "ops/matmul.h"

struct lin_args {
    struct sg_ctx *c;
    int N, C, OC;
    float *inp, *w, *b, *out, *dout, *dinp, *dw, *db;
};

static void lin_run(void *arg)
{
    struct lin_args *a = arg;
    op_linear_forward(a->c, a->out, a->inp, a->w, a->b, a->N, a->C, a->OC);
    op_linear_backward(a->c, a->dinp, a->dw, a->db, a->dout, a->inp, a->w, a->N, a->C, a->OC);
}

static void bench_linear(struct sg_ctx *c, const char *name, int N, int C, int OC)
{
    if (!bench_selected(name)) return;
    struct lin_args a = {c, N, C, OC, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t nin = (size_t)N * C, nw = (size_t)OC * C, nout = (size_t)N * OC;
    a.inp = bench_rand(nin, 1);
    a.w = bench_rand(nw, 2);
    a.b = bench_rand((size_t)OC, 3);
    a.out = bench_rand(nout, 4);
    a.dout = bench_rand(nout, 5);
    a.dinp = bench_rand(nin, 6);
    a.dw = bench_rand(nw, 7);
    a.db = bench_rand((size_t)OC, 8);
    bench_time(name, lin_run, &a);
    float *bufs[] = {a.inp, a.w, a.b, a.out, a.dout, a.dinp, a.dw, a.db};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
}

struct mm_args {
    struct sg_ctx *c;
    int batch, M, K, N;
    float *a, *b, *out, *dout, *da, *db;
};

static void mm_run(void *arg)
{
    struct mm_args *m = arg;
    op_matmul_forward(m->c, m->out, m->a, m->b, m->batch, m->M, m->K, m->N);
    op_matmul_backward(m->c, m->da, m->db, m->dout, m->a, m->b, m->batch, m->M, m->K, m->N);
}

static void bench_bmm(struct sg_ctx *c, const char *name, int batch, int M, int K, int N)
{
    if (!bench_selected(name)) return;
    struct mm_args m = {c, batch, M, K, N, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t na = (size_t)batch * M * K, nb = (size_t)batch * K * N, no = (size_t)batch * M * N;
    m.a = bench_rand(na, 1);
    m.b = bench_rand(nb, 2);
    m.out = bench_rand(no, 3);
    m.dout = bench_rand(no, 4);
    m.da = bench_rand(na, 5);
    m.db = bench_rand(nb, 6);
    bench_time(name, mm_run, &m);
    float *bufs[] = {m.a, m.b, m.out, m.dout, m.da, m.db};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
}

struct att_args {
    struct sg_ctx *c;
    int B, T, C, NH, causal;
    float *qkv, *out, *att, *dout, *dqkv, *scratch;
};

static void att_run(void *arg)
{
    struct att_args *a = arg;
    op_attention_forward(a->c, a->out, a->att, a->qkv, a->B, a->T, a->C, a->NH, a->causal);
    op_attention_backward(a->c, a->dqkv, a->scratch, a->dout, a->qkv, a->att, a->B, a->T, a->C,
                          a->NH, a->causal);
}

static void bench_attention(struct sg_ctx *c, const char *name, int B, int T, int C, int NH,
                            int causal)
{
    if (!bench_selected(name)) return;
    struct att_args a = {c, B, T, C, NH, causal, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    a.qkv = bench_rand(nqkv, 1);
    a.out = bench_rand(nout, 2);
    a.att = bench_rand(natt, 3);
    a.dout = bench_rand(nout, 4);
    a.dqkv = bench_rand(nqkv, 5);
    a.scratch = bench_rand(natt, 6);
    bench_time(name, att_run, &a);
    float *bufs[] = {a.qkv, a.out, a.att, a.dout, a.dqkv, a.scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) sg_afree(bufs[i]);
}

void bench_matmul(struct sg_ctx *c)
{
    bench_linear(c, "linear_vit_qkv_6304x768x2304", 32 * 197, 768, 2304);
    bench_linear(c, "linear_vit_fc1_6304x768x3072", 32 * 197, 768, 3072);
    bench_linear(c, "linear_vit_fc2_6304x3072x768", 32 * 197, 3072, 768);
    bench_linear(c, "linear_text_fc1_2464x512x2048", 32 * 77, 512, 2048);
    bench_bmm(c, "bmm_vit_scores_384x197x64x197", 32 * 12, 197, 64, 197);
    bench_bmm(c, "bmm_vit_attv_384x197x197x64", 32 * 12, 197, 197, 64);
    bench_attention(c, "attention_vit_B32_T197_C768_NH12", 32, 197, 768, 12, 0);
    bench_attention(c, "attention_text_B32_T77_C512_NH8_causal", 32, 77, 512, 8, 1);
}
