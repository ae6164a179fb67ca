/*
 * losses/simclr_dist.h — the SimCLR NT-Xent loss (losses/simclr.h) on a data-parallel batch:
 * the large-batch baseline of the ssl mode on several ranks (SimCLR's own recipe gathers the
 * features of every worker). Rank r holds B samples (two views); the global batch is G = world B
 * in rank order, Z = [za_g; zb_g] (2G rows), rank r's rows: off .. off + B - 1 and
 * G + off .. G + off + B - 1 (off = r B).
 *   1. all-gather za, zb (G x d each); every rank checks the same global batch (finite);
 *   2. logits of the 2B local rows against all 2G rows (/ tau), the own entry -inf; the row
 *      log-sum-exps lse_r and the local loss terms lse_r - x_{r,pos(r)};
 *   3. all-gather the 2B lse of every rank and the ranks' loss sums (loss = mean over 2G rows);
 *   4. rows of G + G^T: (exp(x_rc - lse_r) + exp(x_rc - lse_c)) / 2G - 2/2G at pos(r), with the
 *      logits symmetric (x_cr = x_rc, so no transposed block or feature-gradient collective);
 *      dza, dzb = (1/tau) (G + G^T)_loc Z_g: this rank's rows of the one-process gradient (the
 *      trainer sums parameter gradients over ranks).
 * Equals sg_simclr_loss_compute on the concatenated batch up to float rounding
 * (tests/test_dist_loss.c). Host memory. No state. Bytes sent per rank and step: 2 B d 4 + 8 B + 8.
 */
#ifndef SG_LOSSES_SIMCLR_DIST_H
#define SG_LOSSES_SIMCLR_DIST_H

#include "core/dist.h"
#include "losses/simclr.h"

/* za, zb (B, d) this rank's views; loss: the global loss (every rank); dza, dzb (B, d)
 * overwritten (both NULL: no gradient). 0, or -1 with sg_err on every rank (bad input on any
 * rank; a collective failure). */
int sg_simclr_step_dist(struct sg_dist *d, struct sg_simclr_loss *l, const float *za,
                        const float *zb, int B, int dim, float *loss, float *dza, float *dzb);

#endif
