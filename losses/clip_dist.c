/*
 * losses/clip_dist.c — CLIP InfoNCE on a data-parallel batch (see clip_dist.h). Log-sum-exps and
 * sums in double, OpenMP over this rank's rows, GEMMs through sg_gemm.
 */
#include "losses/clip_dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/gemm.h"

/* Workspace (floats): zi_g, zt_g (G d), Si, St (B G), lse_l (2 B), lse_g (2 G). */
static float *reserve(struct sg_clip_loss *l, size_t need)
{
    if (need > l->dist_cap) {
        free(l->dist_buf);
        l->dist_buf = sg_xmalloc(need * sizeof(float));
        l->dist_cap = need;
    }
    return l->dist_buf;
}

/* log sum_j exp(s row[j]) in double. */
static float lse_row(const float *row, int64_t G, float s)
{
    float m = -INFINITY;
    for (int64_t j = 0; j < G; j++) m = fmaxf(m, s * row[j]);
    double z = 0.0;
    for (int64_t j = 0; j < G; j++) z += exp((double)(s * row[j] - m));
    return (float)((double)m + log(z));
}

/* One local row over the G columns, written over row: the sum of both softmaxes minus 2 at the
 * positive (G = dL/dlogits without its 1/2G); the anchor's CE term into acc[0] and, for image
 * rows (with_dp: the rows of G cover every entry once), sum_j G_ij logits_ij into acc[1]. */
static void grad_row(float *row, int64_t gi, int64_t G, float s, float lse_self,
                     const float *lse_other, int with_dp, double acc[2])
{
    double dp = 0.0, pos = (double)(s * row[gi]);
    for (int64_t j = 0; j < G; j++) {
        float L = s * row[j];
        float g = expf(L - lse_self) + expf(L - lse_other[j]) - (j == gi ? 2.0f : 0.0f);
        dp += (double)g * L;
        row[j] = g;
    }
    acc[0] += (double)lse_self - pos; /* this anchor's CE term */
    if (with_dp) acc[1] += dp;
}

int sg_clip_loss_step_dist(struct sg_dist *d, struct sg_clip_loss *l, const float *zi,
                           const float *zt, int B, int dim, float p, float *loss, float *dzi,
                           float *dzt, float *dp)
{
    if (B < 1 || dim < 1) return sg_err("clip (distributed): B = %d, d = %d", B, dim);
    if (!isfinite(p)) return sg_err("clip (distributed): logit-scale parameter p = %g", (double)p);
    const int64_t b = B, k = dim, G = (int64_t)d->world * B, off = (int64_t)d->rank * B;
    if (G < 2) return sg_err("clip (distributed): global batch of %lld pairs", (long long)G);
    float *w = reserve(l, (size_t)(2 * G * k + 2 * b * G + 2 * b + 2 * G));
    float *zi_g = w, *zt_g = zi_g + G * k, *Si = zt_g + G * k, *St = Si + b * G;
    float *lse_l = St + b * G, *lse_g = lse_l + 2 * b; /* (2, B) / (2, G): rows, columns */
    size_t fb = (size_t)(b * k) * sizeof(float);
    if (sg_dist_allgather(d, zi_g, zi, fb) || sg_dist_allgather(d, zt_g, zt, fb)) return -1;
    for (int64_t i = 0; i < G * k; i++)
        if (!isfinite(zi_g[i]) || !isfinite(zt_g[i]))
            return sg_err("clip (distributed): features of global row %lld (rank %lld) contain "
                          "NaN or Inf",
                          (long long)(i / k), (long long)(i / k / b));
    float s = expf(p);
    sg_gemm(0, 1, b, G, k, 1.0f, zi, k, zt_g, k, 0.0f, Si, G); /* image rows */
    sg_gemm(0, 1, b, G, k, 1.0f, zt, k, zi_g, k, 0.0f, St, G); /* text columns, as rows */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < b; r++) {
        lse_l[r] = lse_row(Si + r * G, G, s);
        lse_l[b + r] = lse_row(St + r * G, G, s);
    }
    if (sg_dist_allgather(d, lse_g, lse_l, (size_t)b * sizeof(float)) ||
        sg_dist_allgather(d, lse_g + G, lse_l + b, (size_t)b * sizeof(float)))
        return -1;
    double acc[2] = {0.0, 0.0};
#pragma omp parallel for schedule(static) reduction(+ : acc[:2])
    for (int64_t r = 0; r < b; r++) {
        grad_row(Si + r * G, off + r, G, s, lse_l[r], lse_g + G, 1, acc);
        grad_row(St + r * G, off + r, G, s, lse_l[b + r], lse_g, 0, acc);
    }
    if (sg_dist_allreduce_sum_f64(d, acc, 2)) return -1;
    float kg = s / (2.0f * (float)G);
    if (dzi) sg_gemm(0, 0, b, k, G, kg, Si, G, zt_g, k, 0.0f, dzi, k);
    if (dzt) sg_gemm(0, 0, b, k, G, kg, St, G, zi_g, k, 0.0f, dzt, k);
    *loss = (float)(acc[0] / (2.0 * (double)G));
    if (dp) *dp = (float)(acc[1] / (2.0 * (double)G));
    return 0;
}
