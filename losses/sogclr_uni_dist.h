/*
 * losses/sogclr_uni_dist.h — unimodal SogCLR / iSogCLR (losses/sogclr_uni.h) on a data-parallel
 * batch with the FastCLIP communication pattern (docs/ALGORITHMS.md, "What this project
 * implements" 5): the ImageNet-style SSL loss of `sogclip train` in ssl mode on several ranks.
 * Rank r holds B samples (two views each); the global batch is G = world * B samples in rank
 * order, so the single-process step on the concatenated batch has Z = [za_g; zb_g] (2G rows):
 * rank r's rows are view a: off .. off + B - 1 and view b: G + off .. G + off + B - 1 (off = r B).
 *
 * Per step (every rank, the same collectives in the same order):
 *   1. all-gather za, zb (G x d each) and the sample ids (G); every rank validates the same
 *      global batch (ids in [0, N), finite normalised rows, no id twice), so bad input fails
 *      on all ranks with the same message and no state change;
 *   2. S = Z_loc Z_g^T (2B x 2G): each local row against every global row;
 *   3. local anchor rows: g, h, the positive similarity, u_r = moving average of the replicated
 *      u (pre-step), the coefficient a_r = 1 / (max(u_r, eps) K G), K = 2 (G - 1) — the
 *      single-process formulas with B replaced by G;
 *   4. all-gather the 2B coefficients a_r of every rank (and one double: the rank's loss sum);
 *   5. M_loc = C + C^T on the local rows: M_rc = a_r e_rc + a_c exp(s_rc / tau_c), the symmetric
 *      similarity s_cr = s_rc taken from the local row, so no feature-gradient collective;
 *      dza, dzb = M_loc Z_g are this rank's rows of the single-process gradient (the trainer
 *      SUMS the parameter gradients over ranks);
 *   6. the new u (and iSogCLR's tau, tau_m) of the local samples are all-gathered and written
 *      for all G samples into the replicated state (identical on every rank, checkpointed by
 *      rank 0).
 * Equals sogclr_uni_forward_backward_cpu on the concatenated batch up to float summation order
 * (tests/test_dist_loss.c). Host memory. Bytes sent per rank and step: 2 B d 4 (features) + 8 B
 * (ids) + 8 B (coefficients) + 8 (loss) + 12 B (new states).
 */
#ifndef SG_LOSSES_SOGCLR_UNI_DIST_H
#define SG_LOSSES_SOGCLR_UNI_DIST_H

#include <stdint.h>

#include "core/dist.h"
#include "losses/sogclr_uni.h"

/* za, zb (B, d) this rank's normalised views, idx (B) their sample ids; loss: the global loss
 * (every rank); dza, dzb (B, d) overwritten (both NULL: no gradient). Returns 0, or -1 with
 * sg_err (bad input on any rank: -1 on every rank, state untouched; a collective failure). */
int sogclr_uni_step_dist(struct sg_dist *d, struct sogclr_uni *l, const float *za, const float *zb,
                         const int64_t *idx, int B, int dim, float *loss, float *dza, float *dzb);

#endif
