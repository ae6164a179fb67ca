/*
 * ops/loss.c — softmax cross-entropy with label smoothing, forward and backward
 * (see ops/loss.h). logits/probs/dlogits (N,V), targets int32 (N).
 * Reference: torch.nn.functional.cross_entropy(reduction='mean', label_smoothing=ls).
 *
 * Fast path: rows in parallel; per row three vectorised passes over V (max and sum of logits;
 * exp(x - max) stored into probs while summing; scale by 1/sum). glibc's expf is a scalar call
 * unless -ffast-math, so the exponential is a Cephes-style polynomial written to be vectorised
 * (relative error <= 8.5e-8, measured against double exp on [-87, 0]). Per-row losses are summed in
 * double in row order after the parallel loop, so the mean does not depend on the thread count.
 */
#include "ops/loss.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/vmath.h"

#define CE_PARALLEL_MIN 16384 /* N*V below which one thread is faster than a fork */

static void check_targets(const int32_t *targets, int N, int V)
{
    SG_CHECK(N > 0 && V > 0, "cross_entropy: empty logits (N=%d, V=%d)", N, V);
    if (!targets) {
        SG_CHECK(N <= V, "cross_entropy: targets NULL (targets[n] = n) needs N=%d <= V=%d", N, V);
        return;
    }
    for (int n = 0; n < N; n++)
        SG_CHECK(targets[n] >= 0 && targets[n] < V,
                 "cross_entropy: targets[%d] = %d is outside [0, V=%d)", n, (int)targets[n], V);
}

static inline int target_of(const int32_t *targets, int n)
{
    return targets ? targets[n] : n;
}

/* ---- reference ------------------------------------------------------------------------------ */

float cross_entropy_forward_ref(float *losses, float *probs, const float *logits,
                                const int32_t *targets, int N, int V, float label_smoothing)
{
    check_targets(targets, N, V);
    double ls = label_smoothing, total = 0.0;
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        double m = x[0], sum = 0.0, sumx = 0.0;
        for (int j = 1; j < V; j++) m = x[j] > m ? x[j] : m;
        for (int j = 0; j < V; j++) {
            sum += exp((double)x[j] - m);
            sumx += x[j];
        }
        double lse = m + log(sum);
        double loss = lse - (1.0 - ls) * x[target_of(targets, n)] - ls / V * sumx;
        if (probs)
            for (int j = 0; j < V; j++) probs[(size_t)n * V + j] = (float)exp((double)x[j] - lse);
        if (losses) losses[n] = (float)loss;
        total += loss;
    }
    return (float)(total / N);
}

void cross_entropy_backward_ref(float *dlogits, const float *probs, const int32_t *targets, int N,
                                int V, float dloss, float label_smoothing)
{
    if (!dlogits) return;
    check_targets(targets, N, V);
    double s = (double)dloss / N, ls = label_smoothing;
    for (int n = 0; n < N; n++) {
        int t = target_of(targets, n);
        for (int j = 0; j < V; j++) {
            double q = ls / V + (j == t ? 1.0 - ls : 0.0);
            dlogits[(size_t)n * V + j] = (float)(s * (probs[(size_t)n * V + j] - q));
        }
    }
}

/* ---- fast CPU path --------------------------------------------------------------------------- */

/* One row: fills p(V) (may be NULL) with softmax(x) and returns the row's loss. */
static double ce_row_forward(float *p, const float *x, int t, int V, float ls)
{
    float m = x[0], sumx = 0.0f, sum = 0.0f;
#pragma omp simd reduction(max : m) reduction(+ : sumx)
    for (int j = 0; j < V; j++) {
        m = x[j] > m ? x[j] : m;
        sumx += x[j];
    }
    if (p) {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < V; j++) {
            float e = sg_expf_fast(x[j] - m);
            p[j] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int j = 0; j < V; j++) p[j] *= inv;
    } else {
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < V; j++) sum += sg_expf_fast(x[j] - m);
    }
    double lse = (double)m + log((double)sum);
    return lse - (1.0 - (double)ls) * x[t] - (double)ls / V * sumx;
}

float cross_entropy_forward_cpu(struct sg_ctx *c, float *losses, float *probs, const float *logits,
                                const int32_t *targets, int N, int V, float label_smoothing)
{
    check_targets(targets, N, V);
    double *row = sg_xmalloc(sizeof(double) * (size_t)N); /* (N) per-row losses */
    int nt = (int64_t)N * V < CE_PARALLEL_MIN ? 1 : c->nthreads;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int n = 0; n < N; n++)
        row[n] = ce_row_forward(probs ? probs + (size_t)n * V : NULL, logits + (size_t)n * V,
                                target_of(targets, n), V, label_smoothing);
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        total += row[n];
        if (losses) losses[n] = (float)row[n];
    }
    free(row);
    return (float)(total / N);
}

void cross_entropy_backward_cpu(struct sg_ctx *c, float *dlogits, const float *probs,
                                const int32_t *targets, int N, int V, float dloss,
                                float label_smoothing)
{
    if (!dlogits) return;
    check_targets(targets, N, V);
    const float s = dloss / (float)N, qoff = label_smoothing / (float)V;
    const float qon = qoff + (1.0f - label_smoothing);
    int nt = (int64_t)N * V < CE_PARALLEL_MIN ? 1 : c->nthreads;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *p = probs + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        int t = target_of(targets, n);
#pragma omp simd
        for (int j = 0; j < V; j++) d[j] = s * (p[j] - qoff);
        d[t] = s * (p[t] - qon);
    }
}

/* ---- dispatch -------------------------------------------------------------------------------- */

float op_cross_entropy_forward(struct sg_ctx *c, float *losses, float *probs, const float *logits,
                               const int32_t *targets, int N, int V, float label_smoothing)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        return cross_entropy_forward_cpu(c, losses, probs, logits, targets, N, V, label_smoothing);
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        return cross_entropy_forward_cuda(c, losses, probs, logits, targets, N, V, label_smoothing);
#else
        SG_PANIC("cross_entropy_forward: built without CUDA");
#endif
    }
    SG_PANIC("cross_entropy_forward: unknown device %d", (int)c->dev);
}

void op_cross_entropy_backward(struct sg_ctx *c, float *dlogits, const float *probs,
                               const int32_t *targets, int N, int V, float dloss,
                               float label_smoothing)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        cross_entropy_backward_cpu(c, dlogits, probs, targets, N, V, dloss, label_smoothing);
        return;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        cross_entropy_backward_cuda(c, dlogits, probs, targets, N, V, dloss, label_smoothing);
        return;
#else
        SG_PANIC("cross_entropy_backward: built without CUDA");
#endif
    }
    SG_PANIC("cross_entropy_backward: unknown device %d", (int)c->dev);
}
