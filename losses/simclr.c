/*
 * losses/simclr.c — SimCLR NT-Xent loss (see losses/simclr.h). za, zb, dza, dzb (B, d);
 * workspace Z (2B, d) and logits (2B, 2B). Torch reference (the usual SimCLR implementation):
 *   z = cat([za, zb]); sim = z @ z.T / tau; sim.fill_diagonal_(-inf);
 *   L = F.cross_entropy(sim, cat([arange(B) + B, arange(B)])).
 *
 *  _ref     double everywhere; forms G and G + G^T literally.
 *  _compute three GEMMs for the upper (B, B) blocks of the logits Z Z^T / tau (za za^T,
 *           za zb^T, zb zb^T), the upper triangle mirrored into the lower one (fills zb za^T
 *           and makes the logits exactly symmetric), a row lse pass with the diagonal at -inf,
 *           one row pass that writes (G + G^T) using that symmetry (row and "column" softmax
 *           share the entry l_ak = l_ka), four (B, B) x (B, d) GEMMs for dza, dzb.
 *           OpenMP over rows, sg_expf_fast.
 *  CUDA     sg_simclr_loss_compute on a CUDA context -> sg_simclr_loss_compute_cuda: the size
 *           checks here, the device work in losses/cuda/contrastive.cu (sg_simclr_cuda_run), the
 *           loss finished here from its double sum as on the CPU.
 */
#include "losses/simclr.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "losses/loss_common.h"
#include "ops/gemm.h"
#include "ops/vmath.h"

#define SIMCLR_PARALLEL_MIN 16384 /* (2B)^2 below which one thread beats the fork */
#define SIMCLR_TILE         64    /* tile edge of the triangle mirror (16 KiB per tile) */

static int check_tau(float tau)
{
    if (!(isfinite(tau) && tau > 0.0f))
        return sg_err("simclr loss: temperature tau = %g, must be a finite number > 0 "
                      "(SimCLR uses 0.1..0.5)",
                      (double)tau);
    return 0;
}

/* The checks that need no feature values (same order and messages on every device). */
static int check_sizes(int B, int d)
{
    if (B < 2)
        return sg_err("simclr loss: batch size B = %d, NT-Xent needs B >= 2 (each anchor needs a "
                      "negative of another sample); drop or merge the last partial batch",
                      B);
    if (d < 1) return sg_err("simclr loss: feature dimension d = %d, must be >= 1", d);
    return 0;
}

/* Every input check on host features (the CPU paths; the CUDA path's error message). */
static int check_inputs(const float *za, const float *zb, int B, int d)
{
    if (check_sizes(B, d)) return -1;
    if (sg_loss_check_finite("simclr loss", "za", za, B, d) ||
        sg_loss_check_finite("simclr loss", "zb", zb, B, d))
        return -1;
    return 0;
}

static inline int pos_of(int a, int B)
{
    return a < B ? a + B : a - B;
}

/* ---- reference ------------------------------------------------------------------------------ */

static const float *row_of(const float *za, const float *zb, int B, int d, int a)
{
    return a < B ? za + (size_t)a * d : zb + (size_t)(a - B) * d;
}

int sg_simclr_loss_ref(const float *za, const float *zb, int B, int d, float tau, double *loss,
                       float *dza, float *dzb)
{
    SG_CHECK(za && zb && loss, "sg_simclr_loss_ref: NULL input or loss pointer");
    if (check_tau(tau) || check_inputs(za, zb, B, d)) return -1;
    int n = 2 * B;
    size_t nn = (size_t)n * n;
    double *lg = sg_xmalloc(sizeof(double) * nn); /* (2B, 2B) logits; diagonal unused */
    double *g = sg_xmalloc(sizeof(double) * nn);  /* (2B, 2B) dL/dlogits, G_aa = 0 */
    for (int a = 0; a < n; a++)
        for (int k = 0; k < n; k++) {
            const float *x = row_of(za, zb, B, d, a), *y = row_of(za, zb, B, d, k);
            double acc = 0.0;
            for (int t = 0; t < d; t++) acc += (double)x[t] * y[t];
            lg[(size_t)a * n + k] = acc / tau;
        }
    double total = 0.0;
    for (int a = 0; a < n; a++) {
        const double *x = lg + (size_t)a * n;
        double m = -INFINITY, sum = 0.0;
        for (int k = 0; k < n; k++)
            if (k != a) m = fmax(m, x[k]);
        for (int k = 0; k < n; k++)
            if (k != a) sum += exp(x[k] - m);
        double lse = m + log(sum);
        total += lse - x[pos_of(a, B)];
        for (int k = 0; k < n; k++)
            g[(size_t)a * n + k] =
                k == a ? 0.0 : (exp(x[k] - lse) - (k == pos_of(a, B) ? 1.0 : 0.0)) / n;
    }
    *loss = total / n;
    for (int a = 0; a < n; a++) {
        float *out = a < B ? dza : dzb;
        if (!out) continue;
        out += (size_t)(a < B ? a : a - B) * d;
        for (int t = 0; t < d; t++) {
            double acc = 0.0;
            for (int k = 0; k < n; k++)
                acc += (g[(size_t)a * n + k] + g[(size_t)k * n + a]) * row_of(za, zb, B, d, k)[t];
            out[t] = (float)(acc / tau);
        }
    }
    free(lg);
    free(g);
    return 0;
}

/* ---- fast CPU path --------------------------------------------------------------------------- */

int sg_simclr_loss_init(struct sg_simclr_loss *l, float tau)
{
    SG_CHECK(l != NULL, "sg_simclr_loss_init: l is NULL");
    memset(l, 0, sizeof *l);
    if (check_tau(tau)) return -1;
    l->tau = tau;
    return 0;
}

void sg_simclr_loss_free(struct sg_simclr_loss *l)
{
    if (!l) return;
    sg_afree(l->logits);
    sg_afree(l->lse);
    free(l->rowloss);
    free(l->dist_buf);
    float tau = l->tau;
    memset(l, 0, sizeof *l);
    l->tau = tau;
}

static void simclr_reserve(struct sg_simclr_loss *l, int n)
{
    if (n <= l->cap) return;
    sg_afree(l->logits);
    sg_afree(l->lse);
    free(l->rowloss);
    l->logits = sg_xmalloc_aligned(sizeof(float) * (size_t)n * n);
    l->lse = sg_xmalloc_aligned(sizeof(float) * (size_t)n);
    l->rowloss = sg_xmalloc(sizeof(double) * (size_t)n);
    l->cap = n;
}

/* lg(n, n) <- its upper triangle mirrored into the lower one, tile by tile. The GEMM does not
 * round l_ak and l_ka identically (1 ulp of 1/tau = 100 is 8e-6), and the (G + G^T) row pass
 * relies on the symmetry: with a confident anchor that ulp does not cancel and becomes a
 * gradient error of ~ulp / 2B x 1/tau (4e-5 in the tau = 0.01 test case without the mirror). */
static void mirror_upper(float *lg, int n, int nt)
{
    const int nb = SG_CEIL_DIV(n, SIMCLR_TILE);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int bi = 0; bi < nb; bi++) {
        int i0 = bi * SIMCLR_TILE, i1 = SG_MIN(n, i0 + SIMCLR_TILE);
        for (int j0 = 0; j0 <= i0; j0 += SIMCLR_TILE)
            for (int i = i0; i < i1; i++) {
                int j1 = SG_MIN(i, j0 + SIMCLR_TILE);
                for (int j = j0; j < j1; j++) lg[(size_t)i * n + j] = lg[(size_t)j * n + i];
            }
    }
}

/* Row a of the logits, x(n) with x[a] = -inf: returns the log-sum-exp over k != a. */
double sg_simclr_row_lse(const float *x, int n)
{
    float m = -INFINITY;
    double sum = 0.0;
#pragma omp simd reduction(max : m)
    for (int k = 0; k < n; k++) m = x[k] > m ? x[k] : m;
#pragma omp simd reduction(+ : sum)
    for (int k = 0; k < n; k++) sum += sg_expf_fast(x[k] - m);
    return (double)m + log(sum);
}

/* x(n) <- row a of (G + G^T): (exp(x_k - lse_a) + exp(x_k - lse_k)) / n, minus 2/n at pos(a). */
void sg_simclr_h_row(float *x, int a, int pos, int n, const float *lse)
{
    const float inv_n = 1.0f / (float)n, la = lse[a];
#pragma omp simd
    for (int k = 0; k < n; k++)
        x[k] = (sg_expf_fast(x[k] - la) + sg_expf_fast(x[k] - lse[k])) * inv_n;
    x[a] = 0.0f;
    x[pos] -= 2.0f * inv_n;
}

static int simclr_compute_cpu(struct sg_simclr_loss *l, struct sg_ctx *c, const float *za,
                              const float *zb, int B, int d, float *loss, float *dza, float *dzb)
{
    if (check_inputs(za, zb, B, d)) return -1;
    const int n = 2 * B;
    simclr_reserve(l, n);
    float *lg = l->logits; /* (2B, 2B) */
    const int nt = (int64_t)n * n < SIMCLR_PARALLEL_MIN ? 1 : SG_MAX(c->nthreads, 1);
    const float it = 1.0f / l->tau;
    const size_t off_b = (size_t)B * n + B; /* element (B, B): the zb zb^T block */

    /* Upper blocks only (za za^T, za zb^T, zb zb^T); the mirror fills zb za^T = (za zb^T)^T. */
    sg_gemm(0, 1, B, B, d, it, za, d, za, d, 0.0f, lg, n);
    sg_gemm(0, 1, B, B, d, it, za, d, zb, d, 0.0f, lg + B, n);
    sg_gemm(0, 1, B, B, d, it, zb, d, zb, d, 0.0f, lg + off_b, n);
    mirror_upper(lg, n, nt);

#pragma omp parallel for num_threads(nt) schedule(static)
    for (int a = 0; a < n; a++) {
        float *x = lg + (size_t)a * n;
        x[a] = -INFINITY;
        double lse = sg_simclr_row_lse(x, n);
        l->lse[a] = (float)lse;
        l->rowloss[a] = lse - x[pos_of(a, B)];
    }
    double total = 0.0;
    for (int a = 0; a < n; a++) total += l->rowloss[a];
    *loss = (float)(total / n);
    if (!dza && !dzb) return 0;

#pragma omp parallel for num_threads(nt) schedule(static)
    for (int a = 0; a < n; a++) sg_simclr_h_row(lg + (size_t)a * n, a, pos_of(a, B), n, l->lse);
    /* [dza; dzb] = (1/tau) (G + G^T) [za; zb], by (B, B) blocks. */
    if (dza) {
        sg_gemm(0, 0, B, d, B, it, lg, n, za, d, 0.0f, dza, d);
        sg_gemm(0, 0, B, d, B, it, lg + B, n, zb, d, 1.0f, dza, d);
    }
    if (dzb) {
        sg_gemm(0, 0, B, d, B, it, lg + (size_t)B * n, n, za, d, 0.0f, dzb, d);
        sg_gemm(0, 0, B, d, B, it, lg + off_b, n, zb, d, 1.0f, dzb, d);
    }
    return 0;
}

/* ---- CUDA path (device features and gradients; loss on the host) ---------------------------- */

#ifdef SG_CUDA
/* The device check failed: the CPU's message, from a host copy of the features. */
static int device_input_error(struct sg_ctx *c, const float *za, const float *zb, int B, int d,
                              int bits)
{
    size_t bytes = sizeof(float) * (size_t)B * (size_t)d;
    float *ha = sg_xmalloc(bytes), *hb = sg_xmalloc(bytes);
    sg_memcpy_d2h(c, ha, za, bytes);
    sg_memcpy_d2h(c, hb, zb, bytes);
    int rc = check_inputs(ha, hb, B, d);
    free(ha);
    free(hb);
    if (rc == 0) /* not reproduced on the host: report what the device saw */
        return sg_err("simclr loss: the GPU input check rejected %s (not finite)",
                      bits & 1 ? "za" : "zb");
    return -1;
}

int sg_simclr_loss_compute_cuda(struct sg_simclr_loss *l, struct sg_ctx *c, const float *za,
                                const float *zb, int B, int d, float *loss, float *dza, float *dzb)
{
    SG_CHECK(l && c && za && zb && loss, "sg_simclr_loss_compute_cuda: NULL argument");
    SG_CHECK(l->tau > 0.0f, "sg_simclr_loss_compute: loss object not initialised");
    if (check_sizes(B, d)) return -1;
    double total;
    int bits = sg_simclr_cuda_run(c, za, zb, B, d, l->tau, dza, dzb, &total);
    if (bits) return device_input_error(c, za, zb, B, d, bits);
    *loss = (float)(total / (2 * B));
    return 0;
}
#endif

int sg_simclr_loss_compute(struct sg_simclr_loss *l, struct sg_ctx *c, const float *za,
                           const float *zb, int B, int d, float *loss, float *dza, float *dzb)
{
    SG_CHECK(l && c && za && zb && loss, "sg_simclr_loss_compute: NULL argument");
    SG_CHECK(l->tau > 0.0f, "sg_simclr_loss_compute: loss object not initialised");
    switch (c->dev) {
    case SG_DEVICE_CPU:
        return simclr_compute_cpu(l, c, za, zb, B, d, loss, dza, dzb);
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        return sg_simclr_loss_compute_cuda(l, c, za, zb, B, d, loss, dza, dzb);
#else
        SG_PANIC("sg_simclr_loss_compute: built without CUDA");
#endif
    }
    SG_PANIC("sg_simclr_loss_compute: unknown device %d", (int)c->dev);
}
