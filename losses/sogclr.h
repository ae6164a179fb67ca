/*
 * losses/sogclr.h — two-way (bimodal, image-text) SogCLR: the default loss of sogclip.
 * Math: docs/ALGORITHMS.md 2(b) with the project's semantics (its first section, items 1 and 3).
 * Torch reference: tests/ref/gen_sogclr.py (float64 autograd from the spec).
 *
 * Inputs per step: zi, zt (B, d) row-major fp32 image and text features, already L2-normalised
 * by the model (the loss does not re-normalise); idx (B) int64 global sample ids in [0, N),
 * distinct within the batch (one id per pair, used for both the image and the text state).
 * S = zi zt^T; image anchor i: D^I_ij = S_ij - S_ii; text anchor i: D^T_ij = S_ji - S_ii; the
 * negatives are the B-1 other captions (images) of the batch; tau is a global constant.
 *
 * State (per sample, N each, zero at init): u_img, u_txt stored b-shifted (u = U exp(-b)) and
 * b_img, b_txt (running max of D/tau, LibAUC v2's overflow guard). For anchor i with
 * k = idx[i]: b_new = max(b[k], max_j D_ij/tau) (j = i included, so b >= 0);
 *   u_new = max(1e-20, (1-gamma) u[k] exp(b[k] - b_new) + gamma ghat_i exp(-b_new)),
 *   ghat_i = (1/(B-1)) sum_{j!=i} exp(D_ij/tau); a never-written sample (u[k] == 0) takes the
 *   fresh estimate: u_new = max(1e-20, ghat_i exp(-b_new)). In unshifted units
 *   U_i = u_new exp(b_new) = (1-gamma) U_old + gamma ghat_i. The state is written after the
 *   gradient is computed (all of it from this step's U).
 *
 * Gradient (OVERWRITTEN into dzi, dzt (B, d)), with p_ij = exp(D_ij/tau) / U_i detached:
 *   dL/dz = (1/(2B(B-1))) sum_i sum_{j!=i} [p^I_ij grad D^I_ij + p^T_ij grad D^T_ij]
 *         = (tau/(2B)) sum_i [grad ghat^I_i / U^I_i + grad ghat^T_i / U^T_i]
 * the tau-scaled GCL estimator; at gamma = 1 it equals exactly tau * grad L_2way with
 *   L_2way = (1/2)[mean_i(-S_ii/tau + log sum_{j!=i} exp(S_ij/tau)) + (same with S^T)]
 * (no (B-1) factor, unlike LibAUC's GCLoss_v2 whose gradient is (B-1) times this).
 * Values (struct sogclr_out):
 *   loss      = the surrogate whose gradient this is, (1/(2B(B-1))) sum_i sum_{j!=i}
 *               [sg(p^I_ij) D^I_ij + sg(p^T_ij) D^T_ij] = (LibAUC v2's loss)/(B-1); ~ a
 *               u-weighted mean of s_ij - s_ii (negative early, decays toward 0 in training).
 *   objective = the GCL objective estimate (tau/2) mean_i (log U^I_i + log U^T_i).
 *   gamma     = the gamma used in this step.
 *
 * Gamma: sogclr_set_epoch(l, e) once per epoch: constant -> gamma every epoch; cosine -> from
 * 1 at epoch 0 to gamma (as gamma_min) at gamma_decay_epochs (then gamma_min). Before any
 * call, epoch 0 applies.
 *
 * Errors: input errors return -1 with sg_err and leave the state bit-identical: B < 2, d < 1,
 * NaN/Inf in features, an index outside [0, N), duplicate indices within a batch. Bad
 * configurations fail at init (-1). NULL pointers are programmer errors (SG_CHECK).
 *
 * Checkpoint: sogclr_state_save adds "<prefix>u_img", "<prefix>u_txt", "<prefix>b_img",
 * "<prefix>b_txt" (F32 [N]), "<prefix>epoch" (I64 [1]), "<prefix>gamma" (F32 [1]) and
 * "<prefix>tau" (F32 [1], informational). sogclr_state_load checks names, dtypes and [N]
 * shapes of all entries before writing anything, then restores states, epoch and gamma, so a
 * resumed run continues bit-identically (same thread count).
 *
 * Devices: sogclr_step dispatches on c->dev; on CUDA all pointers are device pointers and the
 * state lives on the GPU after the first CUDA step (struct gcl_bi_dev, losses/gcl_bimodal_dev.h).
 *
 * Cost: S = zi zt^T, dzi = M zt, dzt = M^T zi by sg_gemm (3 B x B x d GEMMs) plus three
 * fused passes over the B x B workspace (sogclr_workspace_bytes: 2 B^2 floats for B <= 2048,
 * where pass 2 keeps its exponentials, B^2 above; plus O(B nthreads); grown on demand, kept
 * between steps). sogclr_step_ref: plain double loops (the oracle of the tests).
 */
#ifndef SG_SOGCLR_H
#define SG_SOGCLR_H

#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"
#include "core/safetensors.h"
#include "losses/gcl_bimodal.h"
#include "losses/gcl_bimodal_dev.h"

struct sogclr_config {
    int64_t N;              /* dataset size (pairs) */
    float tau;              /* temperature > 0 (e.g. 0.01 ... 0.1) */
    float gamma;            /* constant gamma, or gamma_min of the cosine schedule; (0, 1] */
    int gamma_schedule;     /* GCL_BI_GAMMA_CONSTANT or GCL_BI_GAMMA_COSINE */
    int gamma_decay_epochs; /* cosine only: epochs from 1 down to gamma_min (e.g. epochs/2) */
};

struct sogclr {
    struct sogclr_config cfg;
    struct gcl_bi_state st; /* u_img, u_txt, b_img, b_txt (N each) */
    struct gcl_bi_sched sched;
    struct gcl_bi_ws ws;
    struct gcl_bi_dev *dev; /* device side (gcl_bimodal_dev.h); NULL until the first CUDA step */
    float *dist_buf;        /* losses/gcl_bimodal_dist.c workspace (grown on demand), or NULL */
    size_t dist_cap;        /* floats in dist_buf */
};

struct sogclr_out {
    float loss;      /* surrogate (see top) */
    float objective; /* (tau/2) mean_i (log U^I_i + log U^T_i) */
    float gamma;     /* gamma used */
};

int sogclr_init(struct sogclr *l, const struct sogclr_config *cfg);
void sogclr_free(struct sogclr *l);
int sogclr_set_epoch(struct sogclr *l, int64_t epoch);

/* One training step (state update + feature gradients). out may be NULL. Returns 0 or -1. */
int sogclr_step(struct sg_ctx *c, struct sogclr *l, const float *zi, const float *zt,
                const int64_t *idx, int B, int d, float *dzi, float *dzt, struct sogclr_out *out);
int sogclr_step_cpu(struct sg_ctx *c, struct sogclr *l, const float *zi, const float *zt,
                    const int64_t *idx, int B, int d, float *dzi, float *dzt,
                    struct sogclr_out *out);
int sogclr_step_ref(struct sogclr *l, const float *zi, const float *zt, const int64_t *idx, int B,
                    int d, float *dzi, float *dzt, struct sogclr_out *out);
#ifdef SG_CUDA
/* zi, zt, idx, dzi, dzt are DEVICE pointers (c: a CUDA context); the engine is
 * losses/gcl_bimodal_cuda.h. The first call moves the state to the device. Syncs once (input
 * validation) and once more to read the per-anchor rows for out. */
int sogclr_step_cuda(struct sg_ctx *c, struct sogclr *l, const float *zi, const float *zt,
                     const int64_t *idx, int B, int d, float *dzi, float *dzt,
                     struct sogclr_out *out);
#endif

size_t sogclr_workspace_bytes(const struct sogclr *l);
int sogclr_state_save(const struct sogclr *l, struct sg_st_writer *w, const char *prefix);
int sogclr_state_load(struct sogclr *l, const struct sg_st_file *f, const char *prefix);

#endif
