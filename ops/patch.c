/*
 * ops/patch.c — CPU implementations and device dispatch of the layout ops (ops/patch.h).
 * Plain loops with OpenMP over independent rows; the batch sums of the parameter gradients run
 * b = 0..B-1 for every element (the CUDA kernels use the same order: bit-identical results).
 */
#include "ops/patch.h"

#include <string.h>

#include "core/common.h"

static void patchify_cpu(float *patches, float *img, int B, int Cin, int S, int p, int to_patches)
{
    int G = S / p, P = G * G, K = Cin * p * p;
    int64_t rows = (int64_t)B * P;
#pragma omp parallel for
    for (int64_t r = 0; r < rows; r++) {
        int64_t b = r / P;
        int gy = (int)(r % P) / G, gx = (int)(r % P) % G;
        for (int ch = 0; ch < Cin; ch++)
            for (int ky = 0; ky < p; ky++) {
                float *pi = img + ((b * Cin + ch) * S + (int64_t)gy * p + ky) * S + (int64_t)gx * p;
                float *pp = patches + r * K + (int64_t)(ch * p + ky) * p;
                if (to_patches)
                    memcpy(pp, pi, (size_t)p * sizeof(float));
                else
                    memcpy(pi, pp, (size_t)p * sizeof(float));
            }
    }
}

static void tokens_forward_cpu(float *x, const float *cls, const float *emb, const float *pos,
                               int B, int T, int C)
{
    int ncls = cls ? 1 : 0;
#pragma omp parallel for
    for (int64_t r = 0; r < (int64_t)B * T; r++) {
        int t = (int)(r % T);
        float *xr = x + r * C;
        const float *src = (ncls && t == 0) ? cls : emb + ((r / T) * (T - ncls) + t - ncls) * C;
        const float *pr = pos ? pos + (int64_t)t * C : NULL;
        for (int i = 0; i < C; i++) xr[i] = pr ? src[i] + pr[i] : src[i];
    }
}

static void tokens_backward_cpu(float *demb, float *dcls, float *dpos, const float *dx, int has_cls,
                                int B, int T, int C)
{
    int64_t tc = (int64_t)T * C;
    if (dpos)
#pragma omp parallel for
        for (int64_t i = 0; i < tc; i++) {
            float s = dpos[i];
            for (int b = 0; b < B; b++) s += dx[b * tc + i];
            dpos[i] = s;
        }
    if (dcls && has_cls)
        for (int i = 0; i < C; i++) {
            float s = dcls[i];
            for (int b = 0; b < B; b++) s += dx[b * tc + i];
            dcls[i] = s;
        }
    if (!demb || (demb == dx && !has_cls)) return;
    int64_t ec = (int64_t)(T - has_cls) * C;
    for (int b = 0; b < B; b++)
        memmove(demb + b * ec, dx + b * tc + (has_cls ? C : 0), (size_t)ec * sizeof(float));
}

static void gather_cpu(float *out, const float *x, const int32_t *idx, int B, int T, int C)
{
    for (int b = 0; b < B; b++) {
        int t = idx ? idx[b] : 0;
        SG_CHECK(t >= 0 && t < T, "gather_tokens: idx[%d] = %d not in [0, %d)", b, t, T);
        memcpy(out + (int64_t)b * C, x + ((int64_t)b * T + t) * C, (size_t)C * sizeof(float));
    }
}

static void scatter_cpu(float *dx, const float *dout, const int32_t *idx, int B, int T, int C)
{
    memset(dx, 0, (size_t)B * T * C * sizeof(float));
    for (int b = 0; b < B; b++) {
        int t = idx ? idx[b] : 0;
        SG_CHECK(t >= 0 && t < T, "gather_tokens: idx[%d] = %d not in [0, %d)", b, t, T);
        memcpy(dx + ((int64_t)b * T + t) * C, dout + (int64_t)b * C, (size_t)C * sizeof(float));
    }
}

static void nchw_tokens_forward_cpu(float *tok, const float *x, int B, int C, int HW)
{
    int T = HW + 1;
#pragma omp parallel for
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < C; ch++) {
            float *tk = tok + (size_t)b * T * C;
            const float *xp = x + ((size_t)b * C + ch) * HW;
            double s = 0;
            for (int i = 0; i < HW; i++) {
                tk[(size_t)(i + 1) * C + ch] = xp[i];
                s += xp[i];
            }
            tk[ch] = (float)(s / HW);
        }
}

static void nchw_tokens_backward_cpu(float *dx, const float *dtok, int B, int C, int HW)
{
    int T = HW + 1;
#pragma omp parallel for
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < C; ch++) {
            const float *dt = dtok + (size_t)b * T * C;
            float dm = dt[ch] / (float)HW;
            for (int i = 0; i < HW; i++)
                dx[((size_t)b * C + ch) * HW + i] = dt[(size_t)(i + 1) * C + ch] + dm;
        }
}

#ifdef SG_CUDA
#define CUDA_OR_PANIC(call) call
#else
#define CUDA_OR_PANIC(call) SG_PANIC("%s: this build has no CUDA", __func__)
#endif

void op_patchify_forward(struct sg_ctx *c, float *patches, const float *img, int B, int Cin, int S,
                         int p)
{
    SG_CHECK(p > 0 && S % p == 0, "patchify: S %d not a multiple of p %d", S, p);
    if (c->dev == SG_DEVICE_CPU)
        patchify_cpu(patches, (float *)img, B, Cin, S, p, 1); /* reads img only */
    else
        CUDA_OR_PANIC(patchify_forward_cuda(c, patches, img, B, Cin, S, p));
}

void op_patchify_backward(struct sg_ctx *c, float *dimg, const float *dpatches, int B, int Cin,
                          int S, int p)
{
    SG_CHECK(p > 0 && S % p == 0, "patchify: S %d not a multiple of p %d", S, p);
    if (c->dev == SG_DEVICE_CPU)
        patchify_cpu((float *)dpatches, dimg, B, Cin, S, p, 0); /* reads dpatches only */
    else
        CUDA_OR_PANIC(patchify_backward_cuda(c, dimg, dpatches, B, Cin, S, p));
}

void op_tokens_forward(struct sg_ctx *c, float *x, const float *cls, const float *emb,
                       const float *pos, int B, int T, int C)
{
    SG_CHECK(!(cls && emb == x), "tokens_forward: emb may alias x only without a class token");
    if (c->dev == SG_DEVICE_CPU)
        tokens_forward_cpu(x, cls, emb, pos, B, T, C);
    else
        CUDA_OR_PANIC(tokens_forward_cuda(c, x, cls, emb, pos, B, T, C));
}

void op_tokens_backward(struct sg_ctx *c, float *demb, float *dcls, float *dpos, const float *dx,
                        int has_cls, int B, int T, int C)
{
    SG_CHECK(!(has_cls && demb == dx), "tokens_backward: demb may alias dx only without cls");
    if (c->dev == SG_DEVICE_CPU)
        tokens_backward_cpu(demb, dcls, dpos, dx, has_cls, B, T, C);
    else
        CUDA_OR_PANIC(tokens_backward_cuda(c, demb, dcls, dpos, dx, has_cls, B, T, C));
}

void op_gather_tokens_forward(struct sg_ctx *c, float *out, const float *x, const int32_t *idx,
                              int B, int T, int C)
{
    if (c->dev == SG_DEVICE_CPU)
        gather_cpu(out, x, idx, B, T, C);
    else
        CUDA_OR_PANIC(gather_tokens_forward_cuda(c, out, x, idx, B, T, C));
}

void op_gather_tokens_backward(struct sg_ctx *c, float *dx, const float *dout, const int32_t *idx,
                               int B, int T, int C)
{
    if (c->dev == SG_DEVICE_CPU)
        scatter_cpu(dx, dout, idx, B, T, C);
    else
        CUDA_OR_PANIC(gather_tokens_backward_cuda(c, dx, dout, idx, B, T, C));
}

void op_nchw_tokens_forward(struct sg_ctx *c, float *tok, const float *x, int B, int C, int HW)
{
    if (c->dev == SG_DEVICE_CPU)
        nchw_tokens_forward_cpu(tok, x, B, C, HW);
    else
        CUDA_OR_PANIC(nchw_tokens_forward_cuda(c, tok, x, B, C, HW));
}

void op_nchw_tokens_backward(struct sg_ctx *c, float *dx, const float *dtok, int B, int C, int HW)
{
    if (c->dev == SG_DEVICE_CPU)
        nchw_tokens_backward_cpu(dx, dtok, B, C, HW);
    else
        CUDA_OR_PANIC(nchw_tokens_backward_cuda(c, dx, dtok, B, C, HW));
}
