/*
 * losses/sogclr_uni.c — unimodal SogCLR / iSogCLR; see losses/sogclr_uni.h for the exact math.
 * Torch reference: tests/ref/gen_sogclr_uni.py (float64 autograd of the surrogate, from the spec).
 *
 *  _ref  plain double loops over anchors and their 2B-2 negatives; accumulates the feature
 *        gradient term by term (anchor, positive, every negative).
 *  _cpu  Z = [za; zb] (2B, d); S = Z Z^T with one GEMM; then one OpenMP region of row-local
 *        passes: (1) mask self and positive, e = exp(s/tau_r) (stored over S for SogCLR), g_r and
 *        sum e*s in double; (2) u_r and the row coefficients a_r = 1/(max(u_r,eps) K B);
 *        (3) M = C + C^T row by row, using s_cr = s_rc so no transposed access is needed
 *        (C_rc = a_r e_rc, C_{r,partner} = -1/B); then dza = M[0:B] Z and dzb = M[B:2B] Z (two
 *        GEMMs into the caller buffers). An earlier tiled in-place C + C^T pass cost as much as
 *        a GEMM at B = 256 (power-of-two row stride: L1 set conflicts on the column walk).
 *  _cuda the size checks here, the state moved to the device on the first CUDA step
 *        (dev_bind), the device step in losses/cuda/contrastive.cu (sogclr_uni_cuda_run), the
 *        loss finished here from its double sum; save downloads, load uploads.
 */
#include "losses/sogclr_uni.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/gemm.h"
#include "ops/vmath.h"

#define MASKED_SIM -1e9f /* exp(MASKED_SIM / tau) == 0 exactly, and 0 * MASKED_SIM == 0 */

/* ---- config, schedule ------------------------------------------------------------------------ */

void sogclr_uni_config_default(struct sogclr_uni_config *cfg, int64_t N)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->N = N;
    cfg->tau = 0.1f;
    cfg->gamma = 0.9f;
    cfg->schedule = SOGCLR_UNI_GAMMA_CONSTANT;
    cfg->gamma_decay_epochs = 0;
    cfg->isogclr = 0;
    cfg->tau_min = 0.05f;
    cfg->tau_max = 0.7f;
    cfg->rho = 0.3f;
    cfg->eta = 0.01f;
    cfg->beta = 0.9f;
}

static int check_config(const struct sogclr_uni_config *cfg)
{
    if (cfg->N < 1) return sg_err("sogclr_uni: N = %lld, need >= 1", (long long)cfg->N);
    if (!(cfg->tau >= SOGCLR_UNI_TAU_FLOOR) || !isfinite(cfg->tau))
        return sg_err("sogclr_uni: tau = %g is below %g (float32 exp(1/tau) would overflow: u "
                      "stores unshifted means of exp(s/tau))\n---> HINT: use tau >= %g",
                      (double)cfg->tau, (double)SOGCLR_UNI_TAU_FLOOR, (double)SOGCLR_UNI_TAU_FLOOR);
    if (!(cfg->gamma > 0.0f && cfg->gamma <= 1.0f))
        return sg_err("sogclr_uni: gamma = %g, need 0 < gamma <= 1", (double)cfg->gamma);
    if (cfg->schedule != SOGCLR_UNI_GAMMA_CONSTANT && cfg->schedule != SOGCLR_UNI_GAMMA_COSINE)
        return sg_err("sogclr_uni: unknown gamma schedule %d", (int)cfg->schedule);
    if (cfg->schedule == SOGCLR_UNI_GAMMA_COSINE && cfg->gamma_decay_epochs < 1)
        return sg_err("sogclr_uni: cosine gamma schedule needs gamma_decay_epochs >= 1 (got %d)"
                      "\n---> HINT: the usual choice is total_epochs / 2",
                      cfg->gamma_decay_epochs);
    if (!cfg->isogclr) return 0;
    if (!(cfg->tau_min >= SOGCLR_UNI_TAU_FLOOR) || !(cfg->tau_max >= cfg->tau_min) ||
        !isfinite(cfg->tau_max))
        return sg_err("sogclr_uni: iSogCLR tau range [%g, %g] invalid: need %g <= tau_min <= "
                      "tau_max < inf",
                      (double)cfg->tau_min, (double)cfg->tau_max, (double)SOGCLR_UNI_TAU_FLOOR);
    if (cfg->tau < cfg->tau_min || cfg->tau > cfg->tau_max)
        return sg_err("sogclr_uni: iSogCLR initial tau = %g outside [tau_min, tau_max] = [%g, %g]",
                      (double)cfg->tau, (double)cfg->tau_min, (double)cfg->tau_max);
    if (!(cfg->eta >= 0.0f) || !isfinite(cfg->eta) || !(cfg->beta >= 0.0f && cfg->beta <= 1.0f) ||
        !isfinite(cfg->rho))
        return sg_err("sogclr_uni: iSogCLR needs finite eta >= 0, 0 <= beta <= 1 and finite rho "
                      "(got eta %g, beta %g, rho %g)",
                      (double)cfg->eta, (double)cfg->beta, (double)cfg->rho);
    return 0;
}

static float gamma_for_epoch(const struct sogclr_uni_config *cfg, int epoch)
{
    if (cfg->schedule == SOGCLR_UNI_GAMMA_CONSTANT || epoch >= cfg->gamma_decay_epochs)
        return cfg->gamma;
    double gmin = cfg->gamma;
    double t = 3.14159265358979323846 * epoch / cfg->gamma_decay_epochs;
    return (float)((1.0 - gmin) * 0.5 * (1.0 + cos(t)) + gmin);
}

int sogclr_uni_init(struct sogclr_uni *l, const struct sogclr_uni_config *cfg)
{
    SG_CHECK(l && cfg, "NULL argument");
    memset(l, 0, sizeof *l);
    if (check_config(cfg)) return -1;
    l->cfg = *cfg;
    l->u = sg_xcalloc((size_t)cfg->N, sizeof(float));
    if (cfg->isogclr) {
        l->tau = sg_xmalloc(sizeof(float) * (size_t)cfg->N);
        for (int64_t k = 0; k < cfg->N; k++) l->tau[k] = cfg->tau;
        l->tau_m = sg_xcalloc((size_t)cfg->N, sizeof(float));
    }
    l->epoch = 0;
    l->gamma = gamma_for_epoch(cfg, 0);
    return 0;
}

void sogclr_uni_free(struct sogclr_uni *l)
{
    if (l->dev_ctx) {
        sg_dev_free(l->dev_ctx, l->dev_u);
        sg_dev_free(l->dev_ctx, l->dev_tau);
        sg_dev_free(l->dev_ctx, l->dev_tau_m);
    }
    free(l->u);
    free(l->tau);
    free(l->tau_m);
    sg_afree(l->ws_z);
    sg_afree(l->ws_s);
    free(l->ws_row);
    free(l->ws_idx);
    free(l->dist_buf);
    memset(l, 0, sizeof *l);
}

int sogclr_uni_set_epoch(struct sogclr_uni *l, int epoch)
{
    if (epoch < 0) return sg_err("sogclr_uni_set_epoch: epoch = %d, need >= 0", epoch);
    l->epoch = epoch;
    l->gamma = gamma_for_epoch(&l->cfg, epoch);
    return 0;
}

/* ---- workspace and input validation ---------------------------------------------------------- */

static void ws_reserve(struct sogclr_uni *l, int B, int d)
{
    if (B > l->cap_b) {
        sg_afree(l->ws_s);
        free(l->ws_row);
        free(l->ws_idx);
        l->ws_s = sg_xmalloc_aligned(sizeof(float) * 4 * (size_t)B * (size_t)B);
        l->ws_row = sg_xmalloc(sizeof(double) * 12 * (size_t)B);
        l->ws_idx = sg_xmalloc(sizeof(int64_t) * (size_t)B);
        l->cap_b = B;
    }
    if ((int64_t)2 * B * d > l->cap_zd) {
        sg_afree(l->ws_z);
        l->ws_z = sg_xmalloc_aligned(sizeof(float) * 2 * (size_t)B * (size_t)d);
        l->cap_zd = (int64_t)2 * B * d;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int check_rows(const float *z, const char *name, int B, int d)
{
    for (int i = 0; i < B; i++) {
        const float *x = z + (int64_t)i * d;
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int k = 0; k < d; k++) ss += (double)x[k] * x[k];
        if (!isfinite(ss))
            return sg_err("sogclr_uni: %s row %d contains NaN or Inf\n---> HINT: check the "
                          "model output (diverged training, or fp16 overflow)",
                          name, i);
        if (fabs(ss - 1.0) > SOGCLR_UNI_NORM_TOL)
            return sg_err("sogclr_uni: %s row %d has squared norm %g, the loss expects "
                          "L2-normalised features (|norm^2 - 1| <= %g)\n---> HINT: normalise "
                          "the embeddings in the model",
                          name, i, ss, (double)SOGCLR_UNI_NORM_TOL);
    }
    return 0;
}

/* Pointer contract and the checks that need no data (every device). */
static int check_sizes(const float *za, const float *zb, const int64_t *idx, int B, int d,
                       const float *dza, const float *dzb)
{
    SG_CHECK(za && zb && idx, "NULL features or indices");
    SG_CHECK((dza == NULL) == (dzb == NULL), "dza and dzb must both be NULL or both be set");
    if (B < 2) return sg_err("sogclr_uni: batch size %d, need >= 2 (negatives)", B);
    if (d < 1) return sg_err("sogclr_uni: feature dim %d, need >= 1", d);
    return 0;
}

/* Ids in [0, N), then every row finite and normalised (host data). */
static int check_ids_rows(const struct sogclr_uni *l, const float *za, const float *zb,
                          const int64_t *idx, int B, int d)
{
    for (int i = 0; i < B; i++)
        if (idx[i] < 0 || idx[i] >= l->cfg.N)
            return sg_err("sogclr_uni: idx[%d] = %lld outside [0, N = %lld)", i, (long long)idx[i],
                          (long long)l->cfg.N);
    return check_rows(za, "za", B, d) || check_rows(zb, "zb", B, d) ? -1 : 0;
}

/* No id twice in idx(B); sorted(B) is scratch for a sorted copy. */
static int check_duplicates(const int64_t *idx, int B, int64_t *sorted)
{
    memcpy(sorted, idx, sizeof(int64_t) * (size_t)B);
    qsort(sorted, (size_t)B, sizeof(int64_t), cmp_i64);
    for (int i = 1; i < B; i++)
        if (sorted[i] == sorted[i - 1])
            return sg_err("sogclr_uni: sample index %lld appears twice in the batch\n---> HINT: "
                          "batches must hold distinct samples (sampling without replacement)",
                          (long long)sorted[i]);
    return 0;
}

int sogclr_uni_check_batch(const struct sogclr_uni *l, const float *za, const float *zb,
                           const int64_t *idx, int B, int d, int64_t *sorted)
{
    return check_ids_rows(l, za, zb, idx, B, d) || check_duplicates(idx, B, sorted) ? -1 : 0;
}

/* Validates everything a step reads; sizes the workspace (needed for the duplicate check). */
static int check_inputs(struct sogclr_uni *l, const float *za, const float *zb, const int64_t *idx,
                        int B, int d, const float *dza, const float *dzb)
{
    SG_CHECK(l->dev_ctx == NULL, "sogclr_uni: the state lives on the GPU since the first CUDA "
                                 "step; host steps on this object would use a stale copy");
    if (check_sizes(za, zb, idx, B, d, dza, dzb) || check_ids_rows(l, za, zb, idx, B, d)) return -1;
    ws_reserve(l, B, d);
    return check_duplicates(idx, B, l->ws_idx);
}

/* u_r from the stored u (first touch: the fresh estimate). */
double sogclr_uni_moving_average(float u_old, double g, float gamma)
{
    return u_old == 0.0f ? g : (1.0 - gamma) * (double)u_old + (double)gamma * g;
}

void sogclr_uni_tau_step(const struct sogclr_uni_config *cf, float tau, float tau_m, double ga,
                         double gb, float *tau_new, float *tau_m_new)
{
    float m = (float)((1.0 - cf->beta) * tau_m + cf->beta * 0.5 * (ga + gb));
    float t = tau - cf->eta * m;
    *tau_m_new = m;
    *tau_new = t < cf->tau_min ? cf->tau_min : (t > cf->tau_max ? cf->tau_max : t);
}

/* iSogCLR tau step for sample k given the two views' G (pre-step tau was used in the step). */
static void tau_update(struct sogclr_uni *l, int64_t k, double ga, double gb)
{
    sogclr_uni_tau_step(&l->cfg, l->tau[k], l->tau_m[k], ga, gb, &l->tau[k], &l->tau_m[k]);
}

/* ---- reference ------------------------------------------------------------------------------- */

static double dot_d(const float *x, const float *y, int d)
{
    double acc = 0.0;
    for (int k = 0; k < d; k++) acc += (double)x[k] * y[k];
    return acc;
}

/* Row r of Z = [za; zb]. */
static const float *zrow(const float *za, const float *zb, int B, int d, int r)
{
    return r < B ? za + (int64_t)r * d : zb + (int64_t)(r - B) * d;
}

int sogclr_uni_forward_backward_ref(struct sogclr_uni *l, const float *za, const float *zb,
                                    const int64_t *idx, int B, int d, float *loss, float *dza,
                                    float *dzb)
{
    SG_CHECK(l && loss, "NULL argument");
    if (check_inputs(l, za, zb, idx, B, d, dza, dzb)) return -1;
    const int R = 2 * B;
    const double K = 2.0 * (B - 1);
    double *ur = sg_xmalloc(sizeof(double) * 3 * (size_t)R); /* u_r, h_r = sum e*s, 1/tau_r */
    double *hr = ur + R, *itr = ur + 2 * R;
    double *grad = sg_xcalloc((size_t)R * (size_t)d, sizeof(double)); /* (2B, d) */
    double total = 0.0;
    for (int r = 0; r < R; r++) {
        int i = r % B, pr = r < B ? r + B : r - B;
        int64_t k = idx[i];
        double tau = l->cfg.isogclr ? l->tau[k] : l->cfg.tau;
        const float *zr = zrow(za, zb, B, d, r);
        double g = 0.0, h = 0.0;
        for (int c = 0; c < R; c++) {
            if (c == r || c == pr) continue;
            double s = dot_d(zr, zrow(za, zb, B, d, c), d);
            g += exp(s / tau);
            h += exp(s / tau) * s;
        }
        ur[r] = sogclr_uni_moving_average(l->u[k], g / K, l->gamma);
        hr[r] = h;
        itr[r] = 1.0 / tau;
        double inv = 1.0 / fmax(ur[r], (double)SOGCLR_UNI_EPS);
        total += -dot_d(zr, zrow(za, zb, B, d, pr), d) + inv * h / K;
        /* gradient: -(1/B) d<z_r, z_pr> and (1/(K B)) sum_c p_rc d<z_r, z_c> */
        const float *zp = zrow(za, zb, B, d, pr);
        for (int q = 0; q < d; q++) {
            grad[(int64_t)r * d + q] -= zp[q] / (double)B;
            grad[(int64_t)pr * d + q] -= zr[q] / (double)B;
        }
        for (int c = 0; c < R; c++) {
            if (c == r || c == pr) continue;
            const float *zc = zrow(za, zb, B, d, c);
            double w = exp(dot_d(zr, zc, d) / tau) * inv / (K * B);
            for (int q = 0; q < d; q++) {
                grad[(int64_t)r * d + q] += w * zc[q];
                grad[(int64_t)c * d + q] += w * zr[q];
            }
        }
    }
    *loss = (float)(total / B);
    if (dza)
        for (int64_t q = 0; q < (int64_t)B * d; q++) {
            dza[q] = (float)grad[q];
            dzb[q] = (float)grad[(int64_t)B * d + q];
        }
    for (int i = 0; i < B; i++) {
        int64_t k = idx[i];
        if (l->cfg.isogclr) {
            double G[2];
            for (int v = 0; v < 2; v++) {
                int r = i + v * B;
                double inv = 1.0 / fmax(ur[r], (double)SOGCLR_UNI_EPS);
                G[v] = log(ur[r]) + l->cfg.rho - inv * hr[r] / K * itr[r];
            }
            tau_update(l, k, G[0], G[1]);
        }
        l->u[k] = (float)(0.5 * (ur[i] + ur[i + B]));
    }
    free(grad);
    free(ur);
    return 0;
}

/* ---- fast path ------------------------------------------------------------------------------- */

/* Row r of S (length R): masks self and partner (MASKED_SIM, so the mask is symmetric over
 * the matrix), returns the positive similarity; g = sum e, h = sum e*s over the negatives with
 * e = exp(s / tau_r). store: replace s by e (SogCLR; iSogCLR keeps s for the second pass). */
float sogclr_uni_row_stats(float *s, int R, int r, int pr, float itau, int store, double *g,
                           double *h)
{
    float pos = s[pr];
    s[r] = MASKED_SIM;
    s[pr] = MASKED_SIM;
    double gs = 0.0, hs = 0.0;
    if (store) {
#pragma omp simd reduction(+ : gs, hs)
        for (int c = 0; c < R; c++) {
            float x = s[c];
            float e = sg_expf_fast(x * itau);
            gs += e;
            hs += e * x;
            s[c] = e;
        }
    } else {
#pragma omp simd reduction(+ : gs, hs)
        for (int c = 0; c < R; c++) {
            float x = s[c];
            float e = sg_expf_fast(x * itau);
            gs += e;
            hs += e * x;
        }
    }
    *g = gs;
    *h = hs;
    return pos;
}

/* Row r of M = C + C^T, in place. C_rc = a_r exp(s_rc / tau_r) on negatives; since s_cr = s_rc
 * (S = Z Z^T, the row-r value is used for both) M_rc = a_r e_rc + a_c exp(s_rc / tau_c), which
 * needs only row r: SogCLR (one tau) M_rc = (a_r + a_c) e_rc from the stored e; iSogCLR
 * recomputes both exponentials from s. Masked entries give 0; the positive gets
 * C_{r,pr} + C_{pr,r} = -2/B. */
void sogclr_uni_row_coef(float *row, int R, int r, int pr, const float *a, const float *itau,
                         int iso, float neg)
{
    float ar = a[r];
    if (iso) {
        float it = itau[r];
#pragma omp simd
        for (int c = 0; c < R; c++) {
            float x = row[c];
            row[c] = ar * sg_expf_fast(x * it) + a[c] * sg_expf_fast(x * itau[c]);
        }
    } else {
#pragma omp simd
        for (int c = 0; c < R; c++) row[c] = (ar + a[c]) * row[c];
    }
    row[r] = 0.0f;
    row[pr] = neg;
}

int sogclr_uni_forward_backward_cpu(struct sogclr_uni *l, struct sg_ctx *c, const float *za,
                                    const float *zb, const int64_t *idx, int B, int d, float *loss,
                                    float *dza, float *dzb)
{
    SG_CHECK(l && c && loss, "NULL argument");
    if (check_inputs(l, za, zb, idx, B, d, dza, dzb)) return -1;
    const int R = 2 * B;
    const double K = 2.0 * (B - 1);
    const int iso = l->cfg.isogclr, grad = dza != NULL;
    const float gamma = l->gamma, neg = -2.0f / (float)B;
    const float *u = l->u, *tau = l->tau;
    float *z = l->ws_z, *s = l->ws_s;
    double *g = l->ws_row, *h = g + R, *pos = h + R, *ur = pos + R, *itr = ur + R;
    float *a = (float *)(itr + R), *itf = a + R; /* 2R floats in the last double row */
    memcpy(z, za, sizeof(float) * (size_t)B * (size_t)d);
    memcpy(z + (int64_t)B * d, zb, sizeof(float) * (size_t)B * (size_t)d);
    sg_gemm(0, 1, R, R, d, 1.0f, z, d, z, d, 0.0f, s, R); /* S (R, R) */

    int nt = sg_pointwise_threads(c, (int64_t)R * R);
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
        for (int r = 0; r < R; r++) {
            float t = iso ? tau[idx[r % B]] : l->cfg.tau;
            itf[r] = 1.0f / t;
            itr[r] = 1.0 / t;
            pos[r] = sogclr_uni_row_stats(s + (int64_t)r * R, R, r, r < B ? r + B : r - B, itf[r],
                                          !iso, g + r, h + r);
        }
#pragma omp for schedule(static)
        for (int r = 0; r < R; r++) {
            ur[r] = sogclr_uni_moving_average(u[idx[r % B]], g[r] / K, gamma);
            a[r] = (float)(1.0 / (fmax(ur[r], (double)SOGCLR_UNI_EPS) * K * B));
        }
        if (grad) {
#pragma omp for schedule(static)
            for (int r = 0; r < R; r++)
                sogclr_uni_row_coef(s + (int64_t)r * R, R, r, r < B ? r + B : r - B, a, itf, iso,
                                    neg);
        }
    }
    double total = 0.0;
    for (int r = 0; r < R; r++) total += -pos[r] + h[r] / (fmax(ur[r], (double)SOGCLR_UNI_EPS) * K);
    *loss = (float)(total / B);
    if (grad) { /* dZ = M Z, written straight into dza (rows 0..B-1) and dzb */
        sg_gemm(0, 0, B, d, R, 1.0f, s, R, z, d, 0.0f, dza, d);
        sg_gemm(0, 0, B, d, R, 1.0f, s + (int64_t)B * R, R, z, d, 0.0f, dzb, d);
    }
    for (int i = 0; i < B; i++) {
        int64_t k = idx[i];
        if (iso) {
            double G[2];
            for (int v = 0; v < 2; v++) {
                int r = i + v * B;
                double inv = 1.0 / fmax(ur[r], (double)SOGCLR_UNI_EPS);
                G[v] = log(ur[r]) + l->cfg.rho - inv * h[r] / K * itr[r];
            }
            tau_update(l, k, G[0], G[1]);
        }
        l->u[k] = (float)(0.5 * (ur[i] + ur[i + B]));
    }
    return 0;
}

/* ---- CUDA path ------------------------------------------------------------------------------- */

#ifdef SG_CUDA
static float *upload_new(struct sg_ctx *c, const float *host, int64_t n)
{
    float *p = sg_dev_alloc(c, sizeof(float) * (size_t)n);
    sg_memcpy_h2d(c, p, host, sizeof(float) * (size_t)n);
    return p;
}

/* First CUDA step: the state moves to the device (the host arrays keep the values as of now). */
static void dev_bind(struct sogclr_uni *l, struct sg_ctx *c)
{
    if (!l->dev_ctx) {
        l->dev_u = upload_new(c, l->u, l->cfg.N);
        if (l->cfg.isogclr) {
            l->dev_tau = upload_new(c, l->tau, l->cfg.N);
            l->dev_tau_m = upload_new(c, l->tau_m, l->cfg.N);
        }
        l->dev_ctx = c;
    }
    SG_CHECK(l->dev_ctx == c, "a sogclr_uni loss is bound to the CUDA context of its first step");
}

/* The device check failed: the CPU's message, from host copies of the inputs. */
static int device_input_error(const struct sogclr_uni *l, struct sg_ctx *c, const float *za,
                              const float *zb, const int64_t *idx, int B, int d, int bits)
{
    size_t fb = sizeof(float) * (size_t)B * (size_t)d, ib = sizeof(int64_t) * (size_t)B;
    float *ha = sg_xmalloc(fb), *hb = sg_xmalloc(fb);
    int64_t *hi = sg_xmalloc(ib), *sorted = sg_xmalloc(ib);
    sg_memcpy_d2h(c, ha, za, fb);
    sg_memcpy_d2h(c, hb, zb, fb);
    sg_memcpy_d2h(c, hi, idx, ib);
    int rc = check_ids_rows(l, ha, hb, hi, B, d);
    if (rc == 0) rc = check_duplicates(hi, B, sorted);
    free(ha);
    free(hb);
    free(hi);
    free(sorted);
    if (rc == 0) /* not reproduced on the host (a norm within rounding of the limit) */
        return sg_err("sogclr_uni: the GPU input check rejected the batch (check mask %d: 1 id "
                      "range, 2 za row, 4 zb row, 8 duplicate id)",
                      bits);
    return -1;
}

int sogclr_uni_forward_backward_cuda(struct sogclr_uni *l, struct sg_ctx *c, const float *za,
                                     const float *zb, const int64_t *idx, int B, int d, float *loss,
                                     float *dza, float *dzb)
{
    SG_CHECK(l && c && loss, "NULL argument");
    if (check_sizes(za, zb, idx, B, d, dza, dzb)) return -1;
    dev_bind(l, c);
    double total;
    int bits = sogclr_uni_cuda_run(l, c, za, zb, idx, B, d, dza, dzb, &total);
    if (bits) return device_input_error(l, c, za, zb, idx, B, d, bits);
    *loss = (float)(total / B);
    return 0;
}

/* Device state -> host arrays (before a save). */
static void dev_download(const struct sogclr_uni *l, float *u, float *tau, float *tau_m)
{
    size_t bytes = sizeof(float) * (size_t)l->cfg.N;
    sg_memcpy_d2h(l->dev_ctx, u, l->dev_u, bytes);
    if (l->cfg.isogclr) {
        sg_memcpy_d2h(l->dev_ctx, tau, l->dev_tau, bytes);
        sg_memcpy_d2h(l->dev_ctx, tau_m, l->dev_tau_m, bytes);
    }
}

/* Host arrays -> device state (after a load). */
static void dev_upload(struct sogclr_uni *l)
{
    size_t bytes = sizeof(float) * (size_t)l->cfg.N;
    sg_memcpy_h2d(l->dev_ctx, l->dev_u, l->u, bytes);
    if (l->cfg.isogclr) {
        sg_memcpy_h2d(l->dev_ctx, l->dev_tau, l->tau, bytes);
        sg_memcpy_h2d(l->dev_ctx, l->dev_tau_m, l->tau_m, bytes);
    }
}
#endif

int sogclr_uni_forward_backward(struct sogclr_uni *l, struct sg_ctx *c, const float *za,
                                const float *zb, const int64_t *idx, int B, int d, float *loss,
                                float *dza, float *dzb)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        return sogclr_uni_forward_backward_cpu(l, c, za, zb, idx, B, d, loss, dza, dzb);
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        return sogclr_uni_forward_backward_cuda(l, c, za, zb, idx, B, d, loss, dza, dzb);
#else
        SG_PANIC("sogclr_uni_forward_backward: built without CUDA");
#endif
    }
    SG_PANIC("sogclr_uni_forward_backward: unknown device %d", (int)c->dev);
}

/* ---- state save / load ----------------------------------------------------------------------- */

static int state_name(char *buf, size_t n, const char *prefix, const char *name)
{
    int len = snprintf(buf, n, "%s%s", prefix, name);
    if (len < 0 || (size_t)len >= n)
        return sg_err("sogclr_uni: state tensor prefix '%s' too long", prefix);
    return 0;
}

/* Adds the state tensors (values from u, tau, tau_m: host arrays) to w. */
static int state_add(const struct sogclr_uni *l, struct sg_st_writer *w, const char *prefix,
                     const float *u, const float *tau, const float *tau_m)
{
    char name[256];
    int64_t n = l->cfg.N, one = 1, epoch = l->epoch;
    if (state_name(name, sizeof name, prefix, "u")) return -1;
    sg_stw_add_f32(w, name, 1, &n, u);
    if (l->cfg.isogclr) {
        if (state_name(name, sizeof name, prefix, "tau")) return -1;
        sg_stw_add_f32(w, name, 1, &n, tau);
        if (state_name(name, sizeof name, prefix, "tau_m")) return -1;
        sg_stw_add_f32(w, name, 1, &n, tau_m);
    }
    if (state_name(name, sizeof name, prefix, "gamma")) return -1;
    sg_stw_add_f32(w, name, 1, &one, &l->gamma);
    if (state_name(name, sizeof name, prefix, "epoch")) return -1;
    sg_stw_add(w, name, SG_I64, 1, &one, &epoch);
    return 0;
}

int sogclr_uni_state_save(const struct sogclr_uni *l, struct sg_st_writer *w, const char *prefix)
{
    SG_CHECK(l && w && prefix, "NULL argument");
    const float *u = l->u, *tau = l->tau, *tau_m = l->tau_m;
    float *dl = NULL; /* (3, N) host copy of the device state, when it lives there */
#ifdef SG_CUDA
    if (l->dev_ctx) {
        dl = sg_xmalloc(sizeof(float) * 3 * (size_t)l->cfg.N);
        dev_download(l, dl, dl + l->cfg.N, dl + 2 * l->cfg.N);
        u = dl;
        tau = dl + l->cfg.N;
        tau_m = dl + 2 * l->cfg.N;
    }
#endif
    int rc = state_add(l, w, prefix, u, tau, tau_m);
    free(dl);
    return rc;
}

enum value_rule { FINITE_NONNEG, TAU_RANGE, FINITE };

/* Finds "<prefix>name" as F32 [N] and checks its values; *out = raw data (may be unaligned). */
static int find_state(const struct sg_st_file *f, const char *prefix, const char *name, int64_t N,
                      enum value_rule rule, const uint8_t **out)
{
    char full[256];
    if (state_name(full, sizeof full, prefix, name)) return -1;
    const struct sg_st_entry *e = sg_st_find(f, full);
    if (!e) return sg_err("sogclr_uni: state tensor '%s' missing in %s", full, f->path);
    if (e->dtype != SG_F32 || e->ndim != 1 || e->shape[0] != N)
        return sg_err("sogclr_uni: state tensor '%s' in %s must be F32 [%lld] (the loss was "
                      "built with N = %lld)\n---> HINT: resume with the same dataset size",
                      full, f->path, (long long)N, (long long)N);
    const uint8_t *p = sg_st_raw(f, e);
    for (int64_t k = 0; k < N; k++) {
        float v;
        memcpy(&v, p + 4 * k, 4);
        int ok = isfinite(v) && (rule == FINITE || (rule == FINITE_NONNEG && v >= 0.0f) ||
                                 (rule == TAU_RANGE && v >= SOGCLR_UNI_TAU_FLOOR));
        if (!ok)
            return sg_err("sogclr_uni: state tensor '%s' in %s has an invalid value %g at %lld",
                          full, f->path, (double)v, (long long)k);
    }
    *out = p;
    return 0;
}

int sogclr_uni_state_load(struct sogclr_uni *l, const struct sg_st_file *f, const char *prefix)
{
    SG_CHECK(l && f && prefix, "NULL argument");
    const int64_t N = l->cfg.N;
    const uint8_t *u = NULL, *tau = NULL, *tm = NULL;
    char name[256];
    if (find_state(f, prefix, "u", N, FINITE_NONNEG, &u)) return -1;
    if (state_name(name, sizeof name, prefix, "tau")) return -1;
    int has_tau = sg_st_find(f, name) != NULL;
    if (has_tau != (l->cfg.isogclr != 0))
        return sg_err("sogclr_uni: %s %s per-sample temperatures '%s' but the loss was built %s "
                      "isogclr\n---> HINT: resume with the same loss configuration",
                      f->path, has_tau ? "has" : "lacks", name,
                      l->cfg.isogclr ? "with" : "without");
    if (has_tau && (find_state(f, prefix, "tau", N, TAU_RANGE, &tau) ||
                    find_state(f, prefix, "tau_m", N, FINITE, &tm)))
        return -1;
    float gamma;
    int64_t epoch;
    if (state_name(name, sizeof name, prefix, "gamma") || sg_st_read_f32(f, name, &gamma, 1))
        return -1;
    if (!(gamma > 0.0f && gamma <= 1.0f))
        return sg_err("sogclr_uni: '%s' in %s = %g, need (0, 1]", name, f->path, (double)gamma);
    if (state_name(name, sizeof name, prefix, "epoch") || sg_st_read_i64(f, name, &epoch, 1))
        return -1;
    if (epoch < 0 || epoch > 0x7fffffff)
        return sg_err("sogclr_uni: '%s' in %s = %lld is not a valid epoch", name, f->path,
                      (long long)epoch);
    memcpy(l->u, u, sizeof(float) * (size_t)N);
    if (has_tau) {
        memcpy(l->tau, tau, sizeof(float) * (size_t)N);
        memcpy(l->tau_m, tm, sizeof(float) * (size_t)N);
    }
    l->gamma = gamma;
    l->epoch = (int)epoch;
#ifdef SG_CUDA
    if (l->dev_ctx) dev_upload(l);
#endif
    return 0;
}
