/*
 * losses/clip_dist.h — the CLIP InfoNCE loss (losses/clip.h) on a data-parallel batch with the
 * FastCLIP communication pattern, no gathered gradients: rank r holds B local pairs of the global
 * batch of G = world B (rank order). Per step: all-gather zi, zt (G x d); local x global blocks
 * Si = zi_loc zt_g^T and St = zt_loc zi_g^T (B x G); the log-sum-exps of this rank's image rows
 * and text columns; all-gather them (2 floats per anchor); then this rank's rows of
 * G = dL/dlogits, (1/2G)(P^r + P^c - 2I), come from the blocks and the gathered log-sum-exps —
 * the row softmax of remote image anchors and the column softmax of remote text anchors are
 * exp(logit - lse) of entries this rank holds — so dzi_loc = s G[rows] zt_g and
 * dzt_loc = s G[:, cols]^T zi_g are this rank's rows of the one-process gradient on the
 * concatenated batch. The loss and dL/dp are sums over anchors: one all-reduce of 2 doubles; both
 * are the GLOBAL values on every rank (the trainer: rank 0 alone adds dp before the gradient sum).
 * Equals sg_clip_loss_compute on the concatenated batch up to float summation order
 * (tests/test_dist_loss.c). Host memory; CPU contexts.
 */
#ifndef SG_LOSSES_CLIP_DIST_H
#define SG_LOSSES_CLIP_DIST_H

#include "core/dist.h"
#include "losses/clip.h"

/* zi, zt (B,d) host; p the logit-scale parameter; *loss and *dp (dL/dp, NOT accumulated: the
 * caller decides which rank adds it) receive the global values; dzi, dzt (B,d) overwritten.
 * Returns 0, or -1 with sg_err (bad input on any rank: every rank fails the same way). */
int sg_clip_loss_step_dist(struct sg_dist *d, struct sg_clip_loss *l, const float *zi,
                           const float *zt, int B, int dim, float p, float *loss, float *dzi,
                           float *dzt, float *dp);

#endif
