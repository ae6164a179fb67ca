/*
 * losses/simclr.h — SimCLR NT-Xent loss (normalised temperature-scaled cross-entropy over two
 * augmented views, temperature tau fixed), forward and backward fused.
 *
 * Inputs
 *   za, zb  (B, d) row-major float32 features of the two views, already L2-normalised by the model
 *           (the loss does not re-normalise). Row i of za and row i of zb are views of sample i.
 *   tau     temperature (> 0, finite), fixed at init.
 * Loss (returned in *loss): with the 2B anchors z_a = [za; zb]_a, s_ak = <z_a, z_k>, and pos(a) the
 *   other view of the same sample (a +- B),
 *   L = (1/2B) sum_{a=0}^{2B-1} -log( exp(s_{a,pos(a)}/tau) / sum_{k != a} exp(s_ak/tau) ),
 *   i.e. F.cross_entropy over the rows of (Z Z^T / tau with the diagonal removed) with targets
 *   pos(a). The positive IS in the denominator (SimCLR); the negatives are the other 2B-2 samples
 *   of both views; the anchor itself is excluded. (This is not the decoupled loss of
 *   ALGORITHMS.md 2(a), whose denominator omits the positive.)
 * Gradients (of L itself, nothing detached), OVERWRITTEN (=):
 *   with G_ak = dL/d(s_ak/tau) = (1/2B)(P_ak - [k = pos(a)]), P the row softmax over k != a
 *   (P_aa = 0): dZ = (1/tau) (G + G^T) Z, split into dza = dZ[0:B], dzb = dZ[B:2B] (B, d) each.
 *   dza or dzb may be NULL (skipped).
 * State: none (nothing to checkpoint). The struct owns tau and a workspace.
 * Errors: sg_simclr_loss_init returns -1 with sg_err() for tau <= 0 or non-finite (the object is
 *   then unusable until a successful init). compute returns -1 with sg_err() for B < 2, d < 1 or
 *   a NaN/Inf feature, leaving loss, dza and dzb unwritten. Features are not checked for unit
 *   norm; the max-shifted softmax is overflow-free for any finite logits.
 *
 * Fast path (sg_simclr_loss_compute): the (2B, 2B) logits Z Z^T / tau of Z = [za; zb] from three
 * GEMMs of its upper (B, B) blocks (the fourth is the transpose of one of them), the upper triangle
 * mirrored into the lower one (this also makes the logits exactly symmetric: the GEMM may round
 * l_ak and l_ka differently); a row pass for the log-sum-exp of every row with the diagonal set to
 * -inf; then, because the logits are symmetric, (G + G^T)_ak = (exp(l_ak - lse_a) +
 * exp(l_ak - lse_k) - 2[k = pos(a)]) / 2B is formed in place in one more row pass (no transpose),
 * and dza, dzb are four (B, B) x (B, d) GEMMs of its blocks with za, zb. No copy of the features;
 * the workspace ((2B)^2 floats plus O(B)) grows on demand and is then reused. The loss is summed
 * in double in row order.
 * sg_simclr_loss_ref: the same outputs by plain double-precision loops, (G + G^T) formed
 * literally; returns the loss in double (tests take finite differences of it).
 *
 * Devices: sg_simclr_loss_compute dispatches on c->dev. On a CUDA context za, zb, dza, dzb are
 * DEVICE pointers (B, d), loss a HOST pointer; the host workspace is unused (context scratch).
 * GPU path (losses/cuda/contrastive.cu): Z = [za; zb] copied into scratch, one cuBLAS sgemm
 * for Z Z^T / tau (TF32 off), the upper triangle mirrored into the lower one (exact symmetry, as
 * on the CPU), one warp per row for the masked log-sum-exp (sums of exp in double), an
 * elementwise pass for (G + G^T), one sgemm per requested view for dZ. Finite-feature check on
 * the device; loss and check words come back in ONE host synchronisation at the end; on bad
 * features nothing is written and the message is the CPU one. Deterministic run to run.
 */
#ifndef SG_LOSSES_SIMCLR_H
#define SG_LOSSES_SIMCLR_H

#include <stdint.h>

#include "core/ctx.h"

struct sg_simclr_loss {
    float tau;
    int cap;         /* 2B the logits workspace is sized for (0 before the first call) */
    float *logits;   /* (cap, cap) logits, then (G + G^T) */
    float *lse;      /* (cap) row log-sum-exp */
    double *rowloss; /* (cap) per-anchor losses */
    float *dist_buf; /* losses/simclr_dist.c workspace (grown on demand), or NULL */
    size_t dist_cap; /* floats in dist_buf */
};

/* Returns 0, or -1 with sg_err() when tau is not a finite positive number. */
int sg_simclr_loss_init(struct sg_simclr_loss *l, float tau);
void sg_simclr_loss_free(struct sg_simclr_loss *l);

/* Returns 0, or -1 with sg_err() on bad input (outputs untouched). See the file comment. */
int sg_simclr_loss_compute(struct sg_simclr_loss *l, struct sg_ctx *c, const float *za,
                           const float *zb, int B, int d, float *loss, float *dza, float *dzb);

#ifdef SG_CUDA
/* The CUDA path of sg_simclr_loss_compute (simclr.c): host checks, then sg_simclr_cuda_run. */
int sg_simclr_loss_compute_cuda(struct sg_simclr_loss *l, struct sg_ctx *c, const float *za,
                                const float *zb, int B, int d, float *loss, float *dza, float *dzb);
/* losses/cuda/contrastive.cu: the device work for B >= 2, d >= 1 (device pointers); *total =
 * sum of the 2B anchor terms. dza / dzb may be NULL. Returns 0, or a nonzero bit mask (1: za,
 * 2: zb not finite) with nothing written. Synchronises once. */
int sg_simclr_cuda_run(struct sg_ctx *c, const float *za, const float *zb, int B, int d, float tau,
                       float *dza, float *dzb, double *total);
#endif

/* Row passes of the CPU step, shared with the data-parallel step (losses/simclr_dist.c): the
 * log-sum-exp of a logits row x(n) whose own entry is -inf, and row a of (G + G^T) in place from
 * the logits row and the log-sum-exps of every row (lse, n). */
double sg_simclr_row_lse(const float *x, int n);
void sg_simclr_h_row(float *x, int a, int pos, int n, const float *lse);

/* Double-precision reference with the same contract (tau checked here too); *loss is a double. */
int sg_simclr_loss_ref(const float *za, const float *zb, int B, int d, float tau, double *loss,
                       float *dza, float *dzb);

#endif
