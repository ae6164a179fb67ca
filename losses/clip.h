/*
 * losses/clip.h — CLIP InfoNCE loss with a learnable logit scale (the OpenCLIP baseline;
 * open_clip ClipLoss, ALGORITHMS.md 2(c) "OpenCLIP baseline"), forward and backward fused.
 *
 * Inputs
 *   zi, zt  (B, d) row-major float32 image and text features, already L2-normalised by the model
 *           (the loss does not re-normalise). Row i of zi and row i of zt are a positive pair.
 *   p       the logit-scale parameter: logit_scale s = exp(p) (OpenCLIP initialises p =
 * ln(1/0.07)). Loss (returned in *loss): logits = s * zi zt^T (B, B), L = ( CE(logits, arange(B)) +
 * CE(logits^T, arange(B)) ) / 2,  each CE the mean over its B rows: L = (1/2B) sum_i [ (lse_j
 * logits_ij - logits_ii) + (lse_j logits_ji - logits_ii) ]. Gradients (all of L itself; nothing is
 * detached): with G = dL/dlogits = (1/2B) (P^r + P^c - 2I), P^r = row softmax, P^c_ij =
 * exp(logits_ij) / sum_k exp(logits_kj) (column softmax), dzi = s G zt   (B, d)   OVERWRITTEN (=)
 *   dzt = s G^T zi (B, d)   OVERWRITTEN (=)
 *   dp  = dL/dp = s dL/ds = sum_ij G_ij logits_ij   ACCUMULATED (+=) into *dp: p is a model
 *         parameter and parameter gradients accumulate (ops/ops.h gradient contract).
 *   Any of dzi, dzt, dp may be NULL (skipped); with all three NULL only the loss is computed.
 * State: none (no per-sample state, nothing to checkpoint). The struct only owns a workspace.
 * Errors: B < 2, d < 1, a NaN/Inf feature or a non-finite p return -1 with sg_err() and leave
 *   every output (loss, dzi, dzt, dp) unwritten. Features are not checked for unit norm; with
 *   normalised features |logits| <= s, and the max-shifted softmaxes are overflow-free for any
 *   finite logits. NULL pointers for l, c, zi, zt or loss are programmer errors (SG_CHECK).
 * After each optimiser step the trainer calls sg_clip_clamp_logit_scale(&p), which clamps p to
 * [0, ln 100] (OpenCLIP's clamp of the logit scale to [1, 100]).
 *
 * Fast path (sg_clip_loss_compute): one GEMM for s zi zt^T into the B x B workspace, row and
 * column log-sum-exp passes over it (OpenMP, sg_expf_fast), one pass that turns it into G in place
 * (accumulating dp), then dzi = s G zt and dzt = s G^T zi as two GEMMs; no transpose copy and no
 * B x B x d temporaries. The workspace (B*B floats plus O(B)) grows on demand and is then reused:
 * no allocation per step once sized. Loss and dp are summed in double in a fixed order, so the
 * result does not depend on the thread count (beyond what the GEMMs do).
 * sg_clip_loss_ref: the same outputs by plain double-precision loops (the test oracle); it returns
 * the loss in double, so tests can take finite differences of it.
 *
 * Devices: sg_clip_loss_compute dispatches on c->dev. On a CUDA context zi, zt, dzi, dzt are
 * DEVICE pointers (B, d) and loss, dp stay HOST pointers; the object's host workspace is unused
 * (the GPU path takes the context scratch). GPU path (losses/cuda/contrastive.cu): cuBLAS sgemm
 * for s zi zt^T with TF32 off (also in bf16 mode: the loss is fp32), a tiled transpose, one warp
 * per row for the row and column log-sum-exp (sums of exp in double), one warp per row for G
 * (in place) and the dp row partials, fixed-order block sums for the loss and dp, two sgemms
 * for dzi, dzt. Finite-feature check on the device; the loss sum, dp sum and check words come
 * back in ONE host synchronisation at the end of the call. On bad features nothing is written
 * (the gradient GEMMs go to scratch and are copied out only when the check passed) and the
 * message is the CPU one (the features are downloaded to build it). Deterministic run to run.
 */
#ifndef SG_LOSSES_CLIP_H
#define SG_LOSSES_CLIP_H

#include <stdint.h>

#include "core/ctx.h"

struct sg_clip_loss {
    int cap;         /* batch size the workspace is sized for (0 before the first call) */
    float *logits;   /* (cap, cap) logits, then G = dL/dlogits */
    float *stats;    /* (2, cap): row lse, column lse */
    double *rowacc;  /* (2, cap): per-row dp partials and per-row loss terms */
    float *dist_buf; /* losses/clip_dist.c workspace (grown on demand), or NULL */
    size_t dist_cap; /* floats in dist_buf */
};

void sg_clip_loss_init(struct sg_clip_loss *l);
void sg_clip_loss_free(struct sg_clip_loss *l);

/* Returns 0, or -1 with sg_err() on bad input (outputs untouched). See the file comment. */
int sg_clip_loss_compute(struct sg_clip_loss *l, struct sg_ctx *c, const float *zi, const float *zt,
                         int B, int d, float p, float *loss, float *dzi, float *dzt, float *dp);

/* Double-precision reference with the same contract; *loss is a double. No workspace needed. */
int sg_clip_loss_ref(const float *zi, const float *zt, int B, int d, float p, double *loss,
                     float *dzi, float *dzt, float *dp);

#ifdef SG_CUDA
/* The CUDA path of sg_clip_loss_compute (clip.c): host-side checks, then sg_clip_cuda_run. */
int sg_clip_loss_compute_cuda(struct sg_ctx *c, const float *zi, const float *zt, int B, int d,
                              float p, float *loss, float *dzi, float *dzt, float *dp);
/* losses/cuda/contrastive.cu: the device work for B >= 2, d >= 1, finite p (device pointers).
 * out[0] = sum of the 2B row and column CE terms, out[1] = sum_ij G_ij logits_ij (when want_dp
 * or a gradient is requested). dzi / dzt may be NULL. Returns 0, or a nonzero bit mask (1: zi,
 * 2: zt not finite) with nothing written. Synchronises once. */
int sg_clip_cuda_run(struct sg_ctx *c, const float *zi, const float *zt, int B, int d, float p,
                     float *dzi, float *dzt, int want_dp, double out[2]);
#endif

/* p <- clamp(p, 0, ln 100) (NaN stays NaN; the next compute rejects it). */
void sg_clip_clamp_logit_scale(float *p);

#endif
