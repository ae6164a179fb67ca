/*
 * losses/gcl_bimodal_dist.h — the bimodal GCL engine (losses/gcl_bimodal.h) on a data-parallel
 * batch, and its two-way SogCLR (losses/sogclr.h) and FastCLIP-v3 (losses/fastclip.h) steps,
 * with the FastCLIP communication pattern (docs/ALGORITHMS.md, "What this project implements" 5 and
 * 2(c) "Communication"). Rank r holds B local pairs; the global batch is G = world * B pairs in
 * rank order (rank r's rows are global rows off = r B .. r B + B - 1).
 *
 * Per step (every rank, same collectives in the same order):
 *   1. all-gather zi, zt (G x d each) and the sample ids (G); all ranks validate the same data;
 *   2. pos_j = <zi_j, zt_j> for every global pair (double dot, identical on every rank);
 *   3. local x global blocks: Si = zi_loc zt_g^T (B x G) and St = zt_loc zi_g^T (B x G);
 *   4. local anchors (image rows of Si, text rows of St): b, u update, log U, p*A sums — exactly
 *      the single-process formulas of losses/gcl_bimodal.h with B replaced by G;
 *   5. all-gather the per-anchor results (u, b, log U, p*A sums for both sides: 8 floats each);
 *   6. the same blocks give both roles: local image k as anchor (p^I of row k) and as negative of
 *      every remote text anchor j (p^T_jk from Si[k, j], pos_j and log U^T_j), likewise for
 *      texts with St, so dzi_loc = M_i zt_g / (2G(G-1)), dzt_loc = M_t zi_g / (2G(G-1)) are this
 *      rank's rows of the single-process gradient on the concatenated batch — no collective on
 *      feature gradients; the parameter gradients are then SUMMED over ranks (each rank's
 *      feature gradients are already those of the global loss);
 *   7. every rank writes all G anchors' (u, b) into its replicated state, so the states stay
 *      identical on every rank (as FastCLIP's replicated u arrays) and checkpoints from rank 0
 *      hold the whole state.
 * Equals sogclr_step on the concatenated batch up to float summation order
 * (tests/test_dist_loss.c). Bytes per rank and step: features 2 B d 4 + ids 8 B + anchor results 8
 * B 4 (sent), G times that received. Host memory only (on a CUDA context sg_train_loss_step_dist,
 * train/train_loss.h, copies the features to the host and the gradients back).
 */
#ifndef SG_LOSSES_GCL_BIMODAL_DIST_H
#define SG_LOSSES_GCL_BIMODAL_DIST_H

#include <stdint.h>

#include "core/dist.h"
#include "losses/fastclip.h"
#include "losses/gcl_bimodal.h"
#include "losses/isogclr.h"
#include "losses/sogclr.h"

/* Grow-on-demand host workspace of the distributed step (owned by the loss object). */
struct gcl_bi_dist_buf {
    float *buf;
    size_t cap; /* floats */
};

/* The G = world B gathered per-anchor values of the last step (point into the workspace). */
struct gcl_bi_dist_rows {
    int64_t G;
    const int64_t *idx;               /* the global batch's sample ids */
    const float *tau_img, *tau_txt;   /* the anchors' temperatures (pre-step) */
    const float *logU_img, *logU_txt; /* log u_new + b_new */
    const float *pa_img, *pa_txt;     /* (1/(G-1)) sum_{j != i} p_ij A_ij */
};

/* The engine: one step with gamma and the temperature tau of every anchor, or per-sample
 * temperatures tau_img[N], tau_txt[N] (replicated, read at the anchors' ids; NULL: tau); who
 * names the loss in errors. Writes dzi, dzt (this rank's rows) and the replicated state st;
 * rows for the summaries. */
int gcl_bi_step_dist(struct sg_dist *d, struct gcl_bi_dist_buf *db, struct gcl_bi_state *st,
                     const char *who, float tau, const float *tau_img, const float *tau_txt,
                     float gamma, const float *zi, const float *zt, const int64_t *idx, int B,
                     int dim, float *dzi, float *dzt, struct gcl_bi_dist_rows *rows);

/* zi, zt (B,d), idx (B) host; dzi, dzt (B,d) host, overwritten; out (global loss) may be NULL.
 * Returns 0, or -1 with sg_err (bad input on any rank: every rank returns -1 with the same
 * message and no state changes; a collective failure or timeout). */
int sogclr_step_dist(struct sg_dist *d, struct sg_ctx *c, struct sogclr *l, const float *zi,
                     const float *zt, const int64_t *idx, int B, int dim, float *dzi, float *dzt,
                     struct sogclr_out *out);

/* FastCLIP-v3 (tau = exp(-logit_scale)); out (required): global loss, objective, dtau,
 * dlog_scale as fastclip_step's. */
int fastclip_step_dist(struct sg_dist *d, struct sg_ctx *c, struct fastclip *l, float tau,
                       const float *zi, const float *zt, const int64_t *idx, int B, int dim,
                       float *dzi, float *dzt, struct fastclip_out *out);

/* Bimodal iSogCLR: the anchors' per-sample temperatures (pre-step) from the replicated
 * tau_img / tau_txt; then every rank applies the temperature updates of all G anchors (from the
 * gathered log U and pa, so no further collective) — tau, m stay identical on every rank. out
 * (may be NULL) as isogclr_step's over the global batch. */
int isogclr_step_dist(struct sg_dist *d, struct sg_ctx *c, struct isogclr *l, const float *zi,
                      const float *zt, const int64_t *idx, int B, int dim, float *dzi, float *dzt,
                      struct isogclr_out *out);

/* Bytes this rank sends per step (for the communication report). */
uint64_t gcl_bi_dist_bytes_per_step(int B, int dim);

#endif
