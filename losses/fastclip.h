/*
 * losses/fastclip.h — FastCLIP-v3: two-way global contrastive loss with a GLOBAL LEARNABLE
 * temperature, the RGCL-g objective (docs/ALGORITHMS.md 2(c), first section item 4).
 * Torch reference: tests/ref/gen_fastclip.py (float64 autograd of the objective, U frozen).
 *
 * Inputs per step: zi, zt (B, d) row-major fp32, already L2-normalised; idx (B) int64 global
 * sample ids in [0, N), distinct within the batch; tau > 0, the current temperature (owned,
 * updated and clamped by the caller, e.g. tau = 1/logit_scale with open_clip's clamp of
 * logit_scale to [0, ln 100] in log space). S = zi zt^T, D^I_ij = S_ij - S_ii,
 * D^T_ij = S_ji - S_ii, negatives j != i.
 *
 * State (N each): u_img, u_txt, b_img, b_txt exactly as in losses/sogclr.h (b-shifted moving
 * averages of ghat_i(tau) = (1/(B-1)) sum_{j!=i} exp(D_ij/tau), overflow guard, never-written
 * samples take the fresh estimate, clamp 1e-20). When tau changes between steps the moving
 * average mixes estimates at different temperatures (as FastCLIP does).
 *
 * Objective (normalisation used here: HALF of the README's RGCL-g
 * tau/|S| sum_i [log g1_i + log g2_i] + 2 rho tau):
 *   F(w, tau) = (tau/(2n)) sum_i [log g^I_i(w, tau) + log g^T_i(w, tau)] + rho tau.
 * Per step, with U_i the updated moving averages (unshifted) and p_ij = exp(D_ij/tau)/U_i
 * (detached):
 *   feature gradient (OVERWRITTEN into dzi, dzt (B, d)) — the tau-scaled GCL estimator, the
 *   same as sogclr.h at this tau:
 *     dF/dz ~ (1/(2B(B-1))) sum_i sum_{j!=i} [p^I_ij grad D^I_ij + p^T_ij grad D^T_ij]
 *   temperature gradient (out->dtau), the RGCL-g estimator:
 *     dF/dtau ~ rho + (1/(2B)) sum_i (log U^I_i + log U^T_i)
 *                   - (1/(2B)) sum_i (1/(B-1)) sum_{j!=i} (p^I_ij D^I_ij + p^T_ij D^T_ij) / tau
 *   i.e. the exact tau-derivative of the frozen-U surrogate
 *     Phi(w, tau) = (1/(2B)) sum_i [tau log sg(U^I_i) + sg(tau) ghat^I_i(w, tau)/sg(U^I_i)
 *                   + (same for T)] + rho tau
 *   whose w-gradient is the feature gradient above (at gamma = 1, U = ghat, it is the
 *   derivative of the mini-batch objective itself);
 *   gradient w.r.t. the open_clip parameter p = log(logit_scale) = -log(tau):
 *     out->dlog_scale = dF/dp = -tau dF/dtau.
 * Values (struct fastclip_out):
 *   loss      = surrogate (1/(2B(B-1))) sum_i sum_{j!=i} [sg(p^I_ij) D^I_ij + sg(p^T_ij) D^T_ij];
 *   objective = (tau/2) mean_i (log U^I_i + log U^T_i) + rho tau (the F estimate);
 *   gamma, dtau, dlog_scale as above.
 *
 * Gamma schedule (fastclip_set_epoch; FastCLIP uses cosine), errors (-1 + sg_err, state
 * bit-identical: B < 2, d < 1, NaN/Inf features, tau not finite or <= 0, index outside [0, N),
 * duplicate indices) and bad configurations as in sogclr.h.
 * Checkpoint: "<prefix>u_img", "u_txt", "b_img", "b_txt" (F32 [N]), "<prefix>epoch" (I64
 * [1]), "<prefix>gamma" (F32 [1]); tau is the caller's (checkpoint it with the model).
 */
#ifndef SG_FASTCLIP_H
#define SG_FASTCLIP_H

#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"
#include "core/safetensors.h"
#include "losses/gcl_bimodal.h"
#include "losses/gcl_bimodal_dev.h"

struct fastclip_config {
    int64_t N;              /* dataset size (pairs) */
    float gamma;            /* constant gamma, or gamma_min of the cosine schedule; (0, 1] */
    int gamma_schedule;     /* GCL_BI_GAMMA_CONSTANT or GCL_BI_GAMMA_COSINE */
    int gamma_decay_epochs; /* cosine only (>= 1) */
    float rho;              /* RGCL-g constant (FastCLIP: 6.5 CC3M, 8.5 CC12M, 16 LAION) */
};

struct fastclip {
    struct fastclip_config cfg;
    struct gcl_bi_state st;
    struct gcl_bi_sched sched;
    struct gcl_bi_ws ws;
    struct gcl_bi_dev *dev; /* device side (gcl_bimodal_dev.h); NULL until the first CUDA step */
    float *dist_buf;        /* losses/gcl_bimodal_dist.c workspace (grown on demand), or NULL */
    size_t dist_cap;        /* floats in dist_buf */
};

struct fastclip_out {
    float loss;       /* surrogate */
    float objective;  /* (tau/2) mean (log U^I + log U^T) + rho tau */
    float gamma;      /* gamma used */
    float dtau;       /* dF/dtau (RGCL-g estimator) */
    float dlog_scale; /* dF/dp, p = log(logit_scale) = -log(tau): -tau dF/dtau */
};

int fastclip_init(struct fastclip *l, const struct fastclip_config *cfg);
void fastclip_free(struct fastclip *l);
int fastclip_set_epoch(struct fastclip *l, int64_t epoch);

/* out must not be NULL (it carries the temperature gradient). */
int fastclip_step(struct sg_ctx *c, struct fastclip *l, float tau, const float *zi, const float *zt,
                  const int64_t *idx, int B, int d, float *dzi, float *dzt,
                  struct fastclip_out *out);
int fastclip_step_cpu(struct sg_ctx *c, struct fastclip *l, float tau, const float *zi,
                      const float *zt, const int64_t *idx, int B, int d, float *dzi, float *dzt,
                      struct fastclip_out *out);
int fastclip_step_ref(struct fastclip *l, float tau, const float *zi, const float *zt,
                      const int64_t *idx, int B, int d, float *dzi, float *dzt,
                      struct fastclip_out *out);
#ifdef SG_CUDA
/* zi, zt, idx, dzi, dzt are DEVICE pointers (c: a CUDA context); the engine is
 * losses/gcl_bimodal_cuda.h. The first call moves the state to the device. Every call uploads
 * the B temperatures (all = tau), syncs once (input validation) and once more to read the
 * per-anchor rows; loss, objective, dtau, dlog_scale are finished on the host from them exactly
 * as on the CPU. */
int fastclip_step_cuda(struct sg_ctx *c, struct fastclip *l, float tau, const float *zi,
                       const float *zt, const int64_t *idx, int B, int d, float *dzi, float *dzt,
                       struct fastclip_out *out);
#endif

size_t fastclip_workspace_bytes(const struct fastclip *l);
int fastclip_state_save(const struct fastclip *l, struct sg_st_writer *w, const char *prefix);
int fastclip_state_load(struct fastclip *l, const struct sg_st_file *f, const char *prefix);

#endif
