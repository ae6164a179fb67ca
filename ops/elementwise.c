/*
 * ops/elementwise.c — residual add, accumulate, row L2 normalisation and dropout, forward and
 * backward; see ops/elementwise.h for shapes and semantics.
 * Torch references: a + b (its backward adds dout into both grads), F.normalize(x, dim=-1, eps),
 * F.dropout(x, p, training=True) (= x * mask / (1 - p) given the mask).
 *
 *  _ref  plain loops (norms and dot products in double).
 *  _cpu  OpenMP + `omp simd` loops (vectorised, 8 lanes on AVX2); row ops parallel over rows,
 *        their sums and dot products accumulated in double (vectorised too).
 *        Dropout draws its mask serially from the (sequential) mt19937 stream with an integer
 *        compare equivalent to sg_rng_float(rng) < 1 - p, then applies it in parallel.
 */
#include "ops/elementwise.h"

#include <math.h>

#include "core/common.h"

/* An OpenMP-parallel simd loop over i in [0, n); needs `nt` and `n` in scope. `omp simd` (no
 * restrict) allows the documented same-index aliasing, e.g. out == a or dinp == dout. */
#define PAR_SIMD _Pragma("omp parallel for simd schedule(static) num_threads(nt)")
/* An OpenMP-parallel loop over rows; needs `nt` in scope. */
#define PAR_ROWS _Pragma("omp parallel for schedule(static) num_threads(nt)")

/* ---- residual add and accumulate ------------------------------------------------------------- */

void add_forward_ref(float *out, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void add_backward_ref(float *da, float *db, const float *dout, int64_t n)
{
    if (da) accumulate_ref(da, dout, n);
    if (db) accumulate_ref(db, dout, n);
}

void accumulate_ref(float *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

void add_forward_cpu(struct sg_ctx *c, float *out, const float *a, const float *b, int64_t n)
{
    int nt = sg_pointwise_threads(c, n);
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void accumulate_cpu(struct sg_ctx *c, float *dst, const float *src, int64_t n)
{
    int nt = sg_pointwise_threads(c, n);
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

void add_backward_cpu(struct sg_ctx *c, float *da, float *db, const float *dout, int64_t n)
{
    if (!da || !db) {
        if (da) accumulate_cpu(c, da, dout, n);
        if (db) accumulate_cpu(c, db, dout, n);
        return;
    }
    int nt = sg_pointwise_threads(c, n);
    PAR_SIMD /* both branches in one pass: dout is read once */
        for (int64_t i = 0; i < n; i++)
    {
        float g = dout[i];
        da[i] += g;
        db[i] += g;
    }
}

/* ---- L2 normalisation of rows ---------------------------------------------------------------- */

void l2norm_forward_ref(float *out, float *norm, const float *inp, int N, int D, float eps)
{
    for (int i = 0; i < N; i++) {
        const float *x = inp + (int64_t)i * D;
        float *y = out + (int64_t)i * D;
        double ss = 0.0;
        for (int j = 0; j < D; j++) ss += (double)x[j] * x[j];
        double nrm = sqrt(ss), den = nrm > eps ? nrm : eps;
        norm[i] = (float)nrm;
        for (int j = 0; j < D; j++) y[j] = (float)(x[j] / den);
    }
}

void l2norm_backward_ref(float *dinp, const float *dout, const float *out, const float *norm, int N,
                         int D, float eps)
{
    for (int i = 0; i < N; i++) {
        const float *dy = dout + (int64_t)i * D, *y = out + (int64_t)i * D;
        float *dx = dinp + (int64_t)i * D;
        double dot = 0.0;
        for (int j = 0; j < D; j++) dot += (double)dy[j] * y[j];
        if (norm[i] >= eps) {
            for (int j = 0; j < D; j++) dx[j] = (float)((dy[j] - y[j] * dot) / norm[i]);
        } else {
            for (int j = 0; j < D; j++) dx[j] = (float)((double)dy[j] / eps);
        }
    }
}

void l2norm_forward_cpu(struct sg_ctx *c, float *out, float *norm, const float *inp, int N, int D,
                        float eps)
{
    int nt = sg_pointwise_threads(c, (int64_t)N * D);
    PAR_ROWS
    for (int i = 0; i < N; i++) {
        const float *x = inp + (int64_t)i * D;
        float *y = out + (int64_t)i * D;
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < D; j++) ss += (double)x[j] * x[j];
        float nrm = (float)sqrt(ss), inv = 1.0f / (nrm > eps ? nrm : eps);
        norm[i] = nrm;
#pragma omp simd
        for (int j = 0; j < D; j++) y[j] = x[j] * inv;
    }
}

void l2norm_backward_cpu(struct sg_ctx *c, float *dinp, const float *dout, const float *out,
                         const float *norm, int N, int D, float eps)
{
    int nt = sg_pointwise_threads(c, (int64_t)N * D);
    PAR_ROWS
    for (int i = 0; i < N; i++) {
        const float *dy = dout + (int64_t)i * D, *y = out + (int64_t)i * D;
        float *dx = dinp + (int64_t)i * D;
        double dot = 0.0;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < D; j++) dot += (double)dy[j] * y[j];
        /* norm < eps: out = x / eps and no gradient flows through the clamped norm */
        float inv = 1.0f / (norm[i] >= eps ? norm[i] : eps);
        float d = norm[i] >= eps ? (float)dot : 0.0f;
#pragma omp simd
        for (int j = 0; j < D; j++) dx[j] = (dy[j] - y[j] * d) * inv;
    }
}

/* ---- dropout --------------------------------------------------------------------------------- */

static float dropout_scale(float p)
{
    SG_CHECK(p >= 0.0f && p <= 1.0f, "dropout probability %g is not in [0, 1]", (double)p);
    return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
}

void dropout_apply_ref(float *out, const uint8_t *mask, const float *inp, int64_t n, float p)
{
    float scale = dropout_scale(p);
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] * ((float)mask[i] * scale);
}

void dropout_forward_ref(float *out, uint8_t *mask, const float *inp, int64_t n, float p,
                         struct sg_rng *rng)
{
    dropout_scale(p); /* range check before drawing */
    float keep = 1.0f - p;
    for (int64_t i = 0; i < n; i++) {
        if (p == 0.0f)
            mask[i] = 1;
        else if (p == 1.0f)
            mask[i] = 0;
        else
            mask[i] = sg_rng_float(rng) < keep;
    }
    dropout_apply_ref(out, mask, inp, n, p);
}

void dropout_backward_ref(float *dinp, const float *dout, const uint8_t *mask, int64_t n, float p)
{
    dropout_apply_ref(dinp, mask, dout, n, p);
}

void dropout_apply_cpu(struct sg_ctx *c, float *out, const uint8_t *mask, const float *inp,
                       int64_t n, float p)
{
    float scale = dropout_scale(p);
    int nt = sg_pointwise_threads(c, n);
    PAR_SIMD
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] * ((float)mask[i] * scale);
}

/* sg_rng_float(rng) < keep  <=>  (u & 0xffffff) * 2^-24 < keep  <=>  (u & 0xffffff) < keep * 2^24
 * (both scalings are exact)  <=>  (u & 0xffffff) < ceil(keep * 2^24) for integer u. */
static void dropout_mask(uint8_t *mask, int64_t n, float p, struct sg_rng *rng)
{
    if (p == 0.0f || p == 1.0f) {
        memset(mask, p == 0.0f, (size_t)n);
        return;
    }
    uint32_t thresh = (uint32_t)ceilf((1.0f - p) * 16777216.0f);
    for (int64_t i = 0; i < n; i++) mask[i] = (sg_rng_u32(rng) & 0xffffffu) < thresh;
}

void dropout_forward_cpu(struct sg_ctx *c, float *out, uint8_t *mask, const float *inp, int64_t n,
                         float p, struct sg_rng *rng)
{
    dropout_scale(p); /* range check before drawing */
    dropout_mask(mask, n, p, rng);
    dropout_apply_cpu(c, out, mask, inp, n, p);
}

void dropout_backward_cpu(struct sg_ctx *c, float *dinp, const float *dout, const uint8_t *mask,
                          int64_t n, float p)
{
    dropout_apply_cpu(c, dinp, mask, dout, n, p);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

void op_add_forward(struct sg_ctx *c, float *out, const float *a, const float *b, int64_t n)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        add_forward_cpu(c, out, a, b, n);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        add_forward_cuda(c, out, a, b, n);
        return;
#else
        SG_PANIC("op_add_forward: built without CUDA");
#endif
    }
    SG_PANIC("op_add_forward: unknown device %d", (int)c->dev);
}

void op_add_backward(struct sg_ctx *c, float *da, float *db, const float *dout, int64_t n)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        add_backward_cpu(c, da, db, dout, n);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        add_backward_cuda(c, da, db, dout, n);
        return;
#else
        SG_PANIC("op_add_backward: built without CUDA");
#endif
    }
    SG_PANIC("op_add_backward: unknown device %d", (int)c->dev);
}

void op_accumulate(struct sg_ctx *c, float *dst, const float *src, int64_t n)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        accumulate_cpu(c, dst, src, n);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        accumulate_cuda(c, dst, src, n);
        return;
#else
        SG_PANIC("op_accumulate: built without CUDA");
#endif
    }
    SG_PANIC("op_accumulate: unknown device %d", (int)c->dev);
}

void op_l2norm_forward(struct sg_ctx *c, float *out, float *norm, const float *inp, int N, int D,
                       float eps)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        l2norm_forward_cpu(c, out, norm, inp, N, D, eps);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        l2norm_forward_cuda(c, out, norm, inp, N, D, eps);
        return;
#else
        SG_PANIC("op_l2norm_forward: built without CUDA");
#endif
    }
    SG_PANIC("op_l2norm_forward: unknown device %d", (int)c->dev);
}

void op_l2norm_backward(struct sg_ctx *c, float *dinp, const float *dout, const float *out,
                        const float *norm, int N, int D, float eps)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        l2norm_backward_cpu(c, dinp, dout, out, norm, N, D, eps);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        l2norm_backward_cuda(c, dinp, dout, out, norm, N, D, eps);
        return;
#else
        SG_PANIC("op_l2norm_backward: built without CUDA");
#endif
    }
    SG_PANIC("op_l2norm_backward: unknown device %d", (int)c->dev);
}

void op_dropout_forward(struct sg_ctx *c, float *out, uint8_t *mask, const float *inp, int64_t n,
                        float p, struct sg_rng *rng)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        dropout_forward_cpu(c, out, mask, inp, n, p, rng);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        dropout_forward_cuda(c, out, mask, inp, n, p, rng);
        return;
#else
        SG_PANIC("op_dropout_forward: built without CUDA");
#endif
    }
    SG_PANIC("op_dropout_forward: unknown device %d", (int)c->dev);
}

void op_dropout_apply(struct sg_ctx *c, float *out, const uint8_t *mask, const float *inp,
                      int64_t n, float p)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        dropout_apply_cpu(c, out, mask, inp, n, p);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        dropout_apply_cuda(c, out, mask, inp, n, p);
        return;
#else
        SG_PANIC("op_dropout_apply: built without CUDA");
#endif
    }
    SG_PANIC("op_dropout_apply: unknown device %d", (int)c->dev);
}

void op_dropout_backward(struct sg_ctx *c, float *dinp, const float *dout, const uint8_t *mask,
                         int64_t n, float p)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        dropout_backward_cpu(c, dinp, dout, mask, n, p);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        dropout_backward_cuda(c, dinp, dout, mask, n, p);
        return;
#else
        SG_PANIC("op_dropout_backward: built without CUDA");
#endif
    }
    SG_PANIC("op_dropout_backward: unknown device %d", (int)c->dev);
}
