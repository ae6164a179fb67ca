/*
 * losses/sogclr_uni.h — unimodal SogCLR (ImageNet-style SSL, two augmented views) with its
 * iSogCLR option (per-sample learnable temperatures). Spec: docs/ALGORITHMS.md 2(a) and the
 * first section items 2, 3 (LibAUC GCLoss_v1 semantics; unseen samples per sample, not per batch).
 * One family, one header: the iSogCLR variant is the config flag `isogclr`.
 *
 * Inputs of a step
 *   za, zb (B, d) row-major float32, L2-normalised by the caller (the loss does not normalise);
 *   row i of both is the dataset sample idx[i] (int64, 0 <= idx[i] < N, distinct within a batch).
 *   With Z = [za; zb] (2B rows), row r's partner is r +- B (its positive); the negative set of an
 *   anchor row r is every other row c (c != r, c != partner(r)): the 2B-2 other augmented samples.
 *   s_rc = <Z_r, Z_c>. tau_r = cfg.tau, or tau[idx(r mod B)] (pre-step value) with isogclr.
 *
 * What a step computes (K = 2(B-1)), for every anchor row r and its sample k = idx(r mod B):
 *   g_r = (1/K) sum_{c neg} exp(s_rc / tau_r)                          (mini-batch estimate)
 *   u_r = g_r                                  if u[k] == 0 (never written: FastCLIP first touch)
 *       = (1 - gamma) * u[k] + gamma * g_r     otherwise (both views from the same stored u[k])
 *   p_rc = exp(s_rc / tau_r) / max(u_r, 1e-8)                          (detached weights)
 *   l_r = -s_{r,partner} + (1/K) sum_{c neg} p_rc * s_rc
 *   *loss = (1/B) sum_{r < 2B} l_r  = (1/B) sum_i (l^a_i + l^b_i)       (accumulated in double)
 *   This value is the surrogate, not the GCL objective (it is ~ weighted-mean negative similarity
 *   minus positive similarity, summed over the two views, and goes negative during training).
 * Gradient (OVERWRITTEN into dza, dzb (B, d); both NULL = skip): the gradient of *loss w.r.t.
 *   za, zb with p detached, i.e. of Psi = (1/B) sum_r [-s_{r,partner} + tau_r g_r(z) / U_r],
 *   U_r = max(u_r, 1e-8) frozen. No extra tau or (B-1) factors. The gradient flows into anchors,
 *   positives and negatives. At gamma = 1 (u_r = g_r) it equals
 *   tau * grad (1/B) sum_i (DCL^a_i + DCL^b_i),
 *   DCL^a_i = -<za_i,zb_i>/tau + log sum_{z in N_i} exp(<za_i,z>/tau) (decoupled contrastive
 *   loss; N_i the 2B-2 negatives), and with isogclr (1/B) sum_i tau_i grad (DCL^a_i + DCL^b_i)
 *   evaluated at the anchor's own tau_i.
 * State update (after the gradient; all detached):
 *   u[k] <- (u^a_i + u^b_i) / 2   (u^a_i = u_i, u^b_i = u_{i+B}); float32, unclamped.
 *   isogclr (LibAUC enable_isogclr, RGCL), per view r:
 *     G_r = log(u_r) + rho - (1/K) sum_c p_rc s_rc / tau_r  (= d/dtau [tau (log g + rho)], with u),
 *     Gbar_i = (G_i + G_{i+B}) / 2,  tau_m[k] <- (1 - beta) tau_m[k] + beta Gbar_i,
 *     tau[k] <- clip(tau[k] - eta tau_m[k], tau_min, tau_max).
 * Gamma schedule (sogclr_uni_set_epoch, call once per epoch; init = epoch 0):
 *   SOGCLR_UNI_GAMMA_CONSTANT: gamma = cfg.gamma every epoch (first touch handles unseen samples);
 *   SOGCLR_UNI_GAMMA_COSINE:   gamma_e = (1 - gmin) (1 + cos(pi e / E)) / 2 + gmin for e < E,
 *                              then gmin (gmin = cfg.gamma, E = cfg.gamma_decay_epochs).
 *
 * Numerical range. u holds means of exp(s/tau) directly (no running-max shift; LibAUC v1).
 *   Inputs must satisfy | ||z||^2 - 1 | <= 0.05 (checked), so |s| <= 1.05 and exp(s/tau) stays
 *   finite and > 0 in float32 (exp(x) finite for x < 88.7, not flushed for x > -87) while
 *   tau >= 0.0125 = SOGCLR_UNI_TAU_FLOOR (1.05/0.0125 = 84; for exactly unit rows the hard limit
 *   would be 1/88.7 = 0.0113). Smaller tau (or iSogCLR tau_min) is rejected at init: use a
 *   shifted-state loss there. Consequently a written u is always > 0, so u == 0 marks "unseen".
 *   p = exp(s/tau) * (1/max(u, 1e-8)) has no intermediate overflow: it overflows only if the true
 *   ratio exceeds 3.4e38, i.e. if u has drifted ~exp(88) below the current batch's values.
 *
 * Input errors (return -1, sg_err set, state untouched): B < 2, d < 1, NaN/Inf in za/zb, a row
 *   with | ||z||^2 - 1 | > 0.05 (not normalised), an index outside [0, N), duplicate indices in a
 *   batch (the state update would be ambiguous). Bad config at init, epoch < 0, bad state files
 *   also return -1. NULL pointers, an unknown device, a CPU step on an object whose state lives
 *   on the GPU, or a second CUDA context are programmer errors (SG_CHECK / SG_PANIC).
 *
 * State save/load (safetensors, via core/safetensors.h), tensor names with a caller prefix:
 *   "<prefix>u" F32 [N]; with isogclr also "<prefix>tau" F32 [N] and "<prefix>tau_m" F32 [N];
 *   "<prefix>gamma" F32 [1] (current gamma), "<prefix>epoch" I64 [1] (last set_epoch).
 *   Load checks presence, dtype, shape (N), that isogclr matches, and the values (u finite >= 0,
 *   tau finite in [SOGCLR_UNI_TAU_FLOOR, inf), tau_m finite, gamma in (0, 1], epoch >= 0) before
 *   writing anything. A loaded object continues bit-identically to the uninterrupted run.
 *
 * Paths: sogclr_uni_forward_backward dispatches (CPU -> _cpu, CUDA -> _cuda below). _cpu: one
 *   GEMM S = Z Z^T (2B x 2B), row-local fused passes (masking, exp, g and sum e*s; u_r and row
 *   coefficients; the symmetric coefficient matrix M = C + C^T built row by row from s_rc = s_cr),
 *   and
 *   dZ = M Z as two GEMMs written straight into dza, dzb; no B x B x d temporaries. Workspace
 *   ~ (4B^2 + 2Bd) floats, grown on demand inside the object (no per-step malloc once sized).
 *   iSogCLR costs 3 exp per similarity instead of 1 (no second 4B^2 buffer). _ref: plain double
 *   loops (the oracle). Deterministic for a fixed thread count (row sums are per-row serial).
 *
 * CUDA (sogclr_uni_forward_backward on a CUDA context -> _cuda): za, zb, idx, dza, dzb are
 *   DEVICE pointers, loss a HOST pointer. The first CUDA step copies u (and tau, tau_m) to the
 *   device; from then on the device copy is the state (the object is bound to that context, CPU
 *   steps on it abort): state_save downloads it, state_load uploads after writing the host
 *   arrays. Same math, order and precision choices as _cpu (losses/cuda/contrastive.cu): one
 *   cuBLAS sgemm for S (TF32 off), one warp per row for g, h (double sums of float exp and e*s),
 *   one thread per row for u_r, a_r and the loss terms (double), an elementwise pass for M, one
 *   sgemm for dZ = M Z, then the state update (one thread per sample, as tau_update and the u
 *   write). Inputs are validated on the device (ids, norms, duplicates); the state update and
 *   the gradient copy-out run only when the checks passed; the loss sum and the check words come
 *   back in ONE host synchronisation at the end. On bad input the inputs are downloaded and
 *   checked on the host for the CPU's message. Deterministic run to run (fixed-order sums).
 */
#ifndef SG_LOSSES_SOGCLR_UNI_H
#define SG_LOSSES_SOGCLR_UNI_H

#include <stdint.h>

#include "core/ctx.h"
#include "core/safetensors.h"

#define SOGCLR_UNI_TAU_FLOOR 0.0125f /* smallest accepted tau (and tau_min) */
#define SOGCLR_UNI_NORM_TOL  0.05f   /* accepted | ||z||^2 - 1 | */
#define SOGCLR_UNI_EPS       1e-8f   /* clamp of u in the weights p */

enum sogclr_uni_gamma { SOGCLR_UNI_GAMMA_CONSTANT = 0, SOGCLR_UNI_GAMMA_COSINE = 1 };

struct sogclr_uni_config {
    int64_t N;                      /* dataset size (state length) */
    float tau;                      /* temperature; iSogCLR: initial per-sample tau */
    float gamma;                    /* constant gamma, or gamma_min of the cosine schedule */
    enum sogclr_uni_gamma schedule; /* constant or cosine */
    int gamma_decay_epochs;         /* cosine: epochs from 1 down to gamma_min (> 0) */
    int isogclr;                    /* 1: per-sample learnable tau (iSogCLR / RGCL) */
    float tau_min, tau_max;         /* iSogCLR clip range */
    float rho, eta, beta;           /* iSogCLR: DRO radius, tau step size, momentum weight */
};

struct sogclr_uni {
    struct sogclr_uni_config cfg;
    float *u;     /* (N) moving averages of the inner mean; 0 = never written */
    float *tau;   /* (N) per-sample temperatures (isogclr only, else NULL) */
    float *tau_m; /* (N) momentum of the tau gradient (isogclr only, else NULL) */
    float gamma;  /* current gamma (set by sogclr_uni_set_epoch) */
    int epoch;
    /* workspace, grown on demand */
    int cap_b;
    int64_t cap_zd;
    float *ws_z;     /* (2B, d) Z = [za; zb] */
    float *ws_s;     /* (2B, 2B) similarities, then exp, then M */
    double *ws_row;  /* (6, 2B): g, sum e*s, positive sim, u_r, 1/tau_r; floats a_r, 1/tau_r */
    int64_t *ws_idx; /* (B) sorted copy of idx for the duplicate check */
    /* device copy of the state (CUDA builds), created by the first CUDA step; from then on it is
     * the state and the host arrays above are refreshed only by state_save's download */
    struct sg_ctx *dev_ctx; /* the CUDA context it lives on (NULL: state on the host) */
    float *dev_u;           /* device (N) */
    float *dev_tau;         /* device (N), isogclr only */
    float *dev_tau_m;       /* device (N), isogclr only */
    float *dist_buf;        /* losses/sogclr_uni_dist.c workspace (grown on demand), or NULL */
    size_t dist_cap;        /* floats in dist_buf */
};

/* Defaults: tau 0.1, gamma 0.9 constant, gamma_decay_epochs 0, isogclr 0, tau_min 0.05,
 * tau_max 0.7, rho 0.3, eta 0.01, beta 0.9 (LibAUC GCLoss_v1 defaults). */
void sogclr_uni_config_default(struct sogclr_uni_config *cfg, int64_t N);
/* Allocates the O(N) state (calloc: untouched pages stay unmapped). 0, or -1 with sg_err on a
 * bad config (N < 1; tau, tau_min < SOGCLR_UNI_TAU_FLOOR; gamma outside (0, 1]; cosine with
 * gamma_decay_epochs < 1; isogclr with tau outside [tau_min, tau_max], eta < 0, beta outside
 * [0, 1], non-finite rho). */
int sogclr_uni_init(struct sogclr_uni *l, const struct sogclr_uni_config *cfg);
void sogclr_uni_free(struct sogclr_uni *l);
/* Sets gamma for this epoch (schedule above). 0, or -1 with sg_err when epoch < 0. */
int sogclr_uni_set_epoch(struct sogclr_uni *l, int epoch);

/* One training step: loss, feature gradients, state update (see above). 0 or -1 (input error,
 * state untouched). dza and dzb are both NULL (no gradient) or both non-NULL. */
int sogclr_uni_forward_backward(struct sogclr_uni *l, struct sg_ctx *c, const float *za,
                                const float *zb, const int64_t *idx, int B, int d, float *loss,
                                float *dza, float *dzb);
int sogclr_uni_forward_backward_cpu(struct sogclr_uni *l, struct sg_ctx *c, const float *za,
                                    const float *zb, const int64_t *idx, int B, int d, float *loss,
                                    float *dza, float *dzb);
int sogclr_uni_forward_backward_ref(struct sogclr_uni *l, const float *za, const float *zb,
                                    const int64_t *idx, int B, int d, float *loss, float *dza,
                                    float *dzb);
#ifdef SG_CUDA
/* The CUDA path (device pointers, see above): host size checks, state to the device on first
 * use, sogclr_uni_cuda_run, and the CPU's message on bad input. */
int sogclr_uni_forward_backward_cuda(struct sogclr_uni *l, struct sg_ctx *c, const float *za,
                                     const float *zb, const int64_t *idx, int B, int d, float *loss,
                                     float *dza, float *dzb);
/* losses/cuda/contrastive.cu: the device step on l->dev_* (B >= 2, d >= 1). *total = sum over
 * the 2B rows of l_r (loss = total / B). Returns 0, or a nonzero bit mask (1: an id outside
 * [0, N), 2: a bad za row, 4: a bad zb row, 8: a duplicate id) with nothing written (state,
 * dza, dzb). Synchronises once. */
int sogclr_uni_cuda_run(struct sogclr_uni *l, struct sg_ctx *c, const float *za, const float *zb,
                        const int64_t *idx, int B, int d, float *dza, float *dzb, double *total);
#endif

int sogclr_uni_state_save(const struct sogclr_uni *l, struct sg_st_writer *w, const char *prefix);

/* ---- pieces of the CPU step, shared with the data-parallel step (losses/sogclr_uni_dist.c) -- */

/* Ids in [0, N), every row finite and normalised, no id twice (sorted: B scratch ids). */
int sogclr_uni_check_batch(const struct sogclr_uni *l, const float *za, const float *zb,
                           const int64_t *idx, int B, int d, int64_t *sorted);
/* Row r of the similarities (length R, self at column r, positive at pr): masks both, returns
 * the positive similarity, g = sum e and h = sum e*s over the negatives, e = exp(s itau); store:
 * replaces s by e. */
float sogclr_uni_row_stats(float *s, int R, int r, int pr, float itau, int store, double *g,
                           double *h);
/* Row r of M = C + C^T in place (a: per-row coefficients, itau: per-row 1/tau, both of length R;
 * the positive gets neg). */
void sogclr_uni_row_coef(float *row, int R, int r, int pr, const float *a, const float *itau,
                         int iso, float neg);
/* u_r from the stored u (first touch: the fresh estimate g). */
double sogclr_uni_moving_average(float u_old, double g, float gamma);
/* iSogCLR's tau step of one sample from its pre-step tau, tau_m and the two views' G. */
void sogclr_uni_tau_step(const struct sogclr_uni_config *cf, float tau, float tau_m, double ga,
                         double gb, float *tau_new, float *tau_m_new);
int sogclr_uni_state_load(struct sogclr_uni *l, const struct sg_st_file *f, const char *prefix);

#endif
