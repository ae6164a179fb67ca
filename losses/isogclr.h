/*
 * losses/isogclr.h — bimodal iSogCLR: two-way SogCLR with per-sample learnable temperatures
 * (robust global contrastive loss, RGCL). Math: docs/ALGORITHMS.md 2(b), "individual_learnable",
 * with the project's semantics (first section). Torch reference: tests/ref/gen_isogclr.py.
 *
 * Inputs per step: zi, zt (B, d) row-major fp32, already L2-normalised; idx (B) int64 global
 * sample ids in [0, N), distinct within the batch. S = zi zt^T, D^I_ij = S_ij - S_ii (image
 * anchor i), D^T_ij = S_ji - S_ii (text anchor i), negatives j != i.
 *
 * State (N each): u_img, u_txt, b_img, b_txt exactly as in losses/sogclr.h (b-shifted moving
 * averages, overflow guard, u == 0 = never written -> fresh estimate, clamp 1e-20), computed
 * with the anchor's own temperature; tau_img, tau_txt (initialised to tau_init) and their
 * momenta m_img, m_txt (0 at init).
 *
 * Step, with tau^I_i = tau_img[idx_i], tau^T_i = tau_txt[idx_i] (the PRE-update values):
 *   U, p_ij = exp(D_ij/tau_i)/U_i as in sogclr.h with per-anchor tau;
 *   feature gradient (OVERWRITTEN into dzi, dzt (B, d)), p detached:
 *     dL/dz = (1/(2B(B-1))) sum_i sum_{j!=i} [p^I_ij grad D^I_ij + p^T_ij grad D^T_ij]
 *           = (1/(2B)) sum_i [tau^I_i grad ghat^I_i / U^I_i + tau^T_i grad ghat^T_i / U^T_i]
 *   (the tau_i-scaled GCL estimator, LibAUC's iSogCLR scaling without its (B-1) factor);
 *   temperature update per anchor (image side; text side identical):
 *     G_i = log U_i + rho - (1/(B-1)) sum_{j!=i} p_ij D_ij / tau_i
 *         = d/dtau_i of tau_i (log ghat_i(tau_i) + rho) with ghat -> U (FCCO estimator);
 *     m[k] <- (1-beta) m[k] + beta G_i;   tau[k] <- clip(tau[k] - eta m[k], tau_min, tau_max)
 *   (k = idx_i; note beta weights the NEW gradient, as in LibAUC). All state writes happen
 *   after the gradient is computed.
 * Values (struct isogclr_out):
 *   loss      = surrogate (1/(2B(B-1))) sum_i sum_{j!=i} [sg(p^I_ij) D^I_ij + sg(p^T_ij) D^T_ij]
 *               (its feature gradient is the one returned);
 *   objective = RGCL estimate (1/(2B)) sum_i [tau^I_i (log U^I_i + rho) + tau^T_i (log U^T_i
 *               + rho)] with the pre-update temperatures;
 *   gamma, and the batch means of the pre-update tau^I, tau^T.
 *
 * Gamma schedule (isogclr_set_epoch), errors (-1 + sg_err, state bit-identical: B < 2, d < 1,
 * NaN/Inf features, index outside [0, N), duplicate indices) and bad configurations (at init)
 * as in sogclr.h.
 * Checkpoint: "<prefix>u_img", "u_txt", "b_img", "b_txt", "tau_img", "tau_txt", "m_img",
 * "m_txt" (F32 [N]), "<prefix>epoch" (I64 [1]), "<prefix>gamma" (F32 [1]); load checks all
 * names, dtypes and shapes before writing anything; resumes bit-identically.
 */
#ifndef SG_ISOGCLR_H
#define SG_ISOGCLR_H

#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"
#include "core/safetensors.h"
#include "losses/gcl_bimodal.h"
#include "losses/gcl_bimodal_dev.h"

struct isogclr_config {
    int64_t N;              /* dataset size (pairs) */
    float tau_init;         /* initial temperature of every sample, in [tau_min, tau_max] */
    float gamma;            /* constant gamma, or gamma_min of the cosine schedule; (0, 1] */
    int gamma_schedule;     /* GCL_BI_GAMMA_CONSTANT or GCL_BI_GAMMA_COSINE */
    int gamma_decay_epochs; /* cosine only (>= 1) */
    float rho;              /* RGCL robustness constant (LibAUC default 6.0) */
    float eta;              /* temperature step size (>= 0; LibAUC default 0.01) */
    float beta;             /* momentum weight of the new gradient, [0, 1] (default 0.9) */
    float tau_min, tau_max; /* 0 < tau_min <= tau_max (LibAUC defaults 0.005, 0.05) */
};

struct isogclr {
    struct isogclr_config cfg;
    struct gcl_bi_state st;
    float *tau_img, *tau_txt; /* (N) per-sample temperatures */
    float *m_img, *m_txt;     /* (N) their momenta */
    struct gcl_bi_sched sched;
    struct gcl_bi_ws ws;
    struct gcl_bi_dev *dev; /* device side (gcl_bimodal_dev.h); NULL until the first CUDA step */
    float *dist_buf;        /* losses/gcl_bimodal_dist.c workspace (grown on demand), or NULL */
    size_t dist_cap;        /* floats in dist_buf */
};

struct isogclr_out {
    float loss;                       /* surrogate */
    float objective;                  /* RGCL estimate */
    float gamma;                      /* gamma used */
    float tau_img_mean, tau_txt_mean; /* batch means of the temperatures used */
};

int isogclr_init(struct isogclr *l, const struct isogclr_config *cfg);
void isogclr_free(struct isogclr *l);
int isogclr_set_epoch(struct isogclr *l, int64_t epoch);

int isogclr_step(struct sg_ctx *c, struct isogclr *l, const float *zi, const float *zt,
                 const int64_t *idx, int B, int d, float *dzi, float *dzt, struct isogclr_out *out);
int isogclr_step_cpu(struct sg_ctx *c, struct isogclr *l, const float *zi, const float *zt,
                     const int64_t *idx, int B, int d, float *dzi, float *dzt,
                     struct isogclr_out *out);
int isogclr_step_ref(struct isogclr *l, const float *zi, const float *zt, const int64_t *idx, int B,
                     int d, float *dzi, float *dzt, struct isogclr_out *out);
#ifdef SG_CUDA
/* zi, zt, idx, dzi, dzt are DEVICE pointers (c: a CUDA context); the engine is
 * losses/gcl_bimodal_cuda.h. The first call moves u/b to the device. Per call: idx is copied to
 * the host (sync; ids outside [0, N) fail there), tau_img/tau_txt[idx] are gathered on the host
 * and uploaded, the step syncs once (validation), the rows are copied back and the temperature
 * and momentum update runs on the host exactly as on the CPU. */
int isogclr_step_cuda(struct sg_ctx *c, struct isogclr *l, const float *zi, const float *zt,
                      const int64_t *idx, int B, int d, float *dzi, float *dzt,
                      struct isogclr_out *out);
#endif

size_t isogclr_workspace_bytes(const struct isogclr *l);
int isogclr_state_save(const struct isogclr *l, struct sg_st_writer *w, const char *prefix);
int isogclr_state_load(struct isogclr *l, const struct sg_st_file *f, const char *prefix);

/* One sample's temperature step from its anchor's log U and pa (shared with the distributed
 * step, losses/gcl_bimodal_dist.h): m <- (1-beta) m + beta G, tau <- clip(tau - eta m). */
void isogclr_tau_update(const struct isogclr_config *c, float *m, float *tau, float logU, float pa);

#endif
