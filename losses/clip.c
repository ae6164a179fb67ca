/*
 * losses/clip.c — CLIP InfoNCE loss with learnable logit scale (see losses/clip.h).
 * zi, zt, dzi, dzt (B, d); workspace logits/G (B, B). Torch reference: open_clip ClipLoss,
 *   logits = exp(p) * zi @ zt.T;  L = (F.cross_entropy(logits, arange) +
 *                                      F.cross_entropy(logits.T, arange)) / 2.
 *
 *  _ref     double everywhere: S, both softmaxes, G, the products with the features.
 *  _compute sg_gemm for s zi zt^T; row pass (max, sum of exp, lse) over rows in parallel; column
 *           pass over column blocks in parallel (each thread streams all rows of its block, so the
 *           column max/sum are vectorised updates of a short array: no transpose copy); G pass
 *           over rows; two GEMMs for the feature gradients. Sums of exponentials and the dp / loss
 *           partials are accumulated in double; final sums are serial in index order.
 *  CUDA     sg_clip_loss_compute on a CUDA context -> sg_clip_loss_compute_cuda: the size and p
 *           checks here, the device work in losses/cuda/contrastive.cu (sg_clip_cuda_run), the
 *           loss and dp finished here from its double sums exactly as the CPU path does.
 */
#include "losses/clip.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/common.h"
#include "losses/loss_common.h"
#include "ops/gemm.h"
#include "ops/vmath.h"

#define CLIP_PARALLEL_MIN 16384 /* B*B below which one thread beats the fork */
#define CLIP_COL_BLOCK    64    /* columns per block in the column pass (fits L1 with doubles) */

void sg_clip_clamp_logit_scale(float *p)
{
    SG_CHECK(p != NULL, "sg_clip_clamp_logit_scale: p is NULL");
    const float hi = logf(100.0f);
    if (*p < 0.0f) *p = 0.0f;
    if (*p > hi) *p = hi;
}

/* The checks that need no feature values (same order and messages on every device). */
static int check_sizes(int B, int d, float p)
{
    if (B < 2)
        return sg_err("clip loss: batch size B = %d, InfoNCE needs B >= 2 (each row needs a "
                      "negative); drop or merge the last partial batch",
                      B);
    if (d < 1) return sg_err("clip loss: feature dimension d = %d, must be >= 1", d);
    if (!isfinite(p))
        return sg_err("clip loss: logit-scale parameter p = %g is not finite (logit_scale = "
                      "exp(p)); check the optimiser step and clamp p to [0, ln 100]",
                      (double)p);
    return 0;
}

/* Every input check on host features (the CPU paths; the CUDA path's error message). */
static int check_inputs(const float *zi, const float *zt, int B, int d, float p)
{
    if (check_sizes(B, d, p)) return -1;
    if (sg_loss_check_finite("clip loss", "zi", zi, B, d) ||
        sg_loss_check_finite("clip loss", "zt", zt, B, d))
        return -1;
    return 0;
}

/* ---- reference ------------------------------------------------------------------------------ */

int sg_clip_loss_ref(const float *zi, const float *zt, int B, int d, float p, double *loss,
                     float *dzi, float *dzt, float *dp)
{
    SG_CHECK(zi && zt && loss, "sg_clip_loss_ref: NULL input or loss pointer");
    if (check_inputs(zi, zt, B, d, p)) return -1;
    size_t bb = (size_t)B * B;
    double *lg = sg_xmalloc(sizeof(double) * bb);             /* (B, B) logits */
    double *g = sg_xmalloc(sizeof(double) * bb);              /* (B, B) dL/dlogits */
    double *lse = sg_xmalloc(sizeof(double) * 2 * (size_t)B); /* row lse (B), column lse (B) */
    double s = exp((double)p), inv2b = 1.0 / (2.0 * B);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            double acc = 0.0;
            for (int k = 0; k < d; k++)
                acc += (double)zi[(size_t)i * d + k] * zt[(size_t)j * d + k];
            lg[(size_t)i * B + j] = s * acc;
        }
    for (int i = 0; i < B; i++) {
        double mr = -INFINITY, mc = -INFINITY, sr = 0.0, sc = 0.0;
        for (int j = 0; j < B; j++) {
            mr = fmax(mr, lg[(size_t)i * B + j]);
            mc = fmax(mc, lg[(size_t)j * B + i]);
        }
        for (int j = 0; j < B; j++) {
            sr += exp(lg[(size_t)i * B + j] - mr);
            sc += exp(lg[(size_t)j * B + i] - mc);
        }
        lse[i] = mr + log(sr);
        lse[B + i] = mc + log(sc);
    }
    double total = 0.0, dpv = 0.0;
    for (int i = 0; i < B; i++)
        total += (lse[i] - lg[(size_t)i * B + i]) + (lse[B + i] - lg[(size_t)i * B + i]);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            double x = lg[(size_t)i * B + j];
            double v = (exp(x - lse[i]) + exp(x - lse[B + j]) - (i == j ? 2.0 : 0.0)) * inv2b;
            g[(size_t)i * B + j] = v;
            dpv += v * x;
        }
    *loss = total * inv2b;
    if (dp) *dp += (float)dpv;
    for (int i = 0; i < B && dzi; i++)
        for (int k = 0; k < d; k++) {
            double acc = 0.0;
            for (int j = 0; j < B; j++) acc += g[(size_t)i * B + j] * zt[(size_t)j * d + k];
            dzi[(size_t)i * d + k] = (float)(s * acc);
        }
    for (int j = 0; j < B && dzt; j++)
        for (int k = 0; k < d; k++) {
            double acc = 0.0;
            for (int i = 0; i < B; i++) acc += g[(size_t)i * B + j] * zi[(size_t)i * d + k];
            dzt[(size_t)j * d + k] = (float)(s * acc);
        }
    free(lg);
    free(g);
    free(lse);
    return 0;
}

/* ---- fast CPU path --------------------------------------------------------------------------- */

void sg_clip_loss_init(struct sg_clip_loss *l)
{
    SG_CHECK(l != NULL, "sg_clip_loss_init: l is NULL");
    l->cap = 0;
    l->logits = l->stats = NULL;
    l->rowacc = NULL;
    l->dist_buf = NULL;
    l->dist_cap = 0;
}

void sg_clip_loss_free(struct sg_clip_loss *l)
{
    if (!l) return;
    sg_afree(l->logits);
    sg_afree(l->stats);
    free(l->rowacc);
    free(l->dist_buf);
    sg_clip_loss_init(l);
}

static void clip_reserve(struct sg_clip_loss *l, int B)
{
    if (B <= l->cap) return;
    sg_clip_loss_free(l);
    l->logits = sg_xmalloc_aligned(sizeof(float) * (size_t)B * B);
    l->stats = sg_xmalloc_aligned(sizeof(float) * 2 * (size_t)B);
    l->rowacc = sg_xmalloc(sizeof(double) * 2 * (size_t)B);
    l->cap = B;
}

/* Row pass for row x(B): returns its log-sum-exp (max-shifted, sum in double). */
static double row_lse(const float *x, int B)
{
    float m = -INFINITY;
    double sum = 0.0;
#pragma omp simd reduction(max : m)
    for (int j = 0; j < B; j++) m = x[j] > m ? x[j] : m;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < B; j++) sum += sg_expf_fast(x[j] - m);
    return (double)m + log(sum);
}

/* Column pass for columns [j0, j0+nb) of lg(B, B): lse_c[j] (float) and colloss[j] (double). */
static void col_block_lse(const float *lg, int B, int j0, int nb, float *lse_c, double *colloss)
{
    float m[CLIP_COL_BLOCK];
    double sum[CLIP_COL_BLOCK];
    for (int j = 0; j < nb; j++) {
        m[j] = -INFINITY;
        sum[j] = 0.0;
    }
    for (int i = 0; i < B; i++) {
        const float *x = lg + (size_t)i * B + j0;
#pragma omp simd
        for (int j = 0; j < nb; j++) m[j] = x[j] > m[j] ? x[j] : m[j];
    }
    for (int i = 0; i < B; i++) {
        const float *x = lg + (size_t)i * B + j0;
#pragma omp simd
        for (int j = 0; j < nb; j++) sum[j] += sg_expf_fast(x[j] - m[j]);
    }
    for (int j = 0; j < nb; j++) {
        double lse = (double)m[j] + log(sum[j]);
        lse_c[j0 + j] = (float)lse;
        colloss[j0 + j] = lse - lg[(size_t)(j0 + j) * B + j0 + j];
    }
}

/* G pass for row i: x(B) <- G_i. = (P^r_i. + P^c_i. - 2 e_i) / 2B; returns sum_j G_ij logits_ij. */
static double g_row(float *x, int i, int B, float lse_r, const float *lse_c)
{
    const float inv2b = 0.5f / (float)B;
    double dpv = 0.0;
    float xii = x[i];
#pragma omp simd reduction(+ : dpv)
    for (int j = 0; j < B; j++) {
        float v = (sg_expf_fast(x[j] - lse_r) + sg_expf_fast(x[j] - lse_c[j])) * inv2b;
        dpv += (double)(v * x[j]);
        x[j] = v;
    }
    dpv -= 2.0 * inv2b * (double)xii;
    x[i] -= 2.0f * inv2b;
    return dpv;
}

static int clip_compute_cpu(struct sg_clip_loss *l, struct sg_ctx *c, const float *zi,
                            const float *zt, int B, int d, float p, float *loss, float *dzi,
                            float *dzt, float *dp)
{
    if (check_inputs(zi, zt, B, d, p)) return -1;
    clip_reserve(l, B);
    float *lg = l->logits;                                       /* (B, B) */
    float *lse_r = l->stats, *lse_c = l->stats + B;              /* (B), (B) */
    double *rowloss = l->rowacc, *colloss_or_dp = l->rowacc + B; /* (B), (B) */
    const float s = expf(p);
    const int nt = (int64_t)B * B < CLIP_PARALLEL_MIN ? 1 : SG_MAX(c->nthreads, 1);

    sg_gemm(0, 1, B, B, d, s, zi, d, zt, d, 0.0f, lg, B);

#pragma omp parallel for num_threads(nt) schedule(static)
    for (int i = 0; i < B; i++) {
        double lse = row_lse(lg + (size_t)i * B, B);
        lse_r[i] = (float)lse;
        rowloss[i] = lse - lg[(size_t)i * B + i];
    }
    int nblk = SG_CEIL_DIV(B, CLIP_COL_BLOCK);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int b = 0; b < nblk; b++) {
        int j0 = b * CLIP_COL_BLOCK;
        col_block_lse(lg, B, j0, SG_MIN(CLIP_COL_BLOCK, B - j0), lse_c, colloss_or_dp);
    }
    double total = 0.0;
    for (int i = 0; i < B; i++) total += rowloss[i] + colloss_or_dp[i];
    *loss = (float)(total / (2.0 * B));
    if (!dzi && !dzt && !dp) return 0;

    double *dprow = colloss_or_dp; /* column losses are summed: reuse for the dp partials */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int i = 0; i < B; i++) dprow[i] = g_row(lg + (size_t)i * B, i, B, lse_r[i], lse_c);
    if (dp) {
        double dpv = 0.0;
        for (int i = 0; i < B; i++) dpv += dprow[i];
        *dp += (float)dpv;
    }
    if (dzi) sg_gemm(0, 0, B, d, B, s, lg, B, zt, d, 0.0f, dzi, d);
    if (dzt) sg_gemm(1, 0, B, d, B, s, lg, B, zi, d, 0.0f, dzt, d);
    return 0;
}

/* ---- CUDA path (device features and gradients; loss, dp on the host) ------------------------ */

#ifdef SG_CUDA
/* The device check failed: the CPU's message, from a host copy of the features. */
static int device_input_error(struct sg_ctx *c, const float *zi, const float *zt, int B, int d,
                              float p, int bits)
{
    size_t bytes = sizeof(float) * (size_t)B * (size_t)d;
    float *hi = sg_xmalloc(bytes), *ht = sg_xmalloc(bytes);
    sg_memcpy_d2h(c, hi, zi, bytes);
    sg_memcpy_d2h(c, ht, zt, bytes);
    int rc = check_inputs(hi, ht, B, d, p);
    free(hi);
    free(ht);
    if (rc == 0) /* not reproduced on the host: report what the device saw */
        return sg_err("clip loss: the GPU input check rejected %s (not finite)",
                      bits & 1 ? "zi" : "zt");
    return -1;
}

int sg_clip_loss_compute_cuda(struct sg_ctx *c, const float *zi, const float *zt, int B, int d,
                              float p, float *loss, float *dzi, float *dzt, float *dp)
{
    SG_CHECK(c && zi && zt && loss, "sg_clip_loss_compute_cuda: NULL argument");
    if (check_sizes(B, d, p)) return -1;
    double out[2];
    int bits = sg_clip_cuda_run(c, zi, zt, B, d, p, dzi, dzt, dp != NULL, out);
    if (bits) return device_input_error(c, zi, zt, B, d, p, bits);
    *loss = (float)(out[0] / (2.0 * B));
    if (dp) *dp += (float)out[1];
    return 0;
}
#endif

int sg_clip_loss_compute(struct sg_clip_loss *l, struct sg_ctx *c, const float *zi, const float *zt,
                         int B, int d, float p, float *loss, float *dzi, float *dzt, float *dp)
{
    SG_CHECK(l && c && zi && zt && loss, "sg_clip_loss_compute: NULL argument");
    switch (c->dev) {
    case SG_DEVICE_CPU:
        return clip_compute_cpu(l, c, zi, zt, B, d, p, loss, dzi, dzt, dp);
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        return sg_clip_loss_compute_cuda(c, zi, zt, B, d, p, loss, dzi, dzt, dp);
#else
        SG_PANIC("sg_clip_loss_compute: built without CUDA");
#endif
    }
    SG_PANIC("sg_clip_loss_compute: unknown device %d", (int)c->dev);
}
