/*
 * losses/two_view_rows.h — row bookkeeping of the data-parallel two-view losses
 * (losses/sogclr_uni_dist.c, losses/simclr_dist.c). The global batch of G = world B samples has
 * Z = [za_g; zb_g] (2G rows); rank r's local rows q = 0 .. 2B - 1 (view a, then view b) are the
 * global rows off + q and G + off + (q - B) (off = r B); a row's partner is the other view of its
 * sample.
 */
#ifndef SG_LOSSES_TWO_VIEW_ROWS_H
#define SG_LOSSES_TWO_VIEW_ROWS_H

#include <stddef.h>
#include <stdint.h>

static inline int64_t tv_global_row(int64_t q, int64_t B, int64_t G, int64_t off)
{
    return q < B ? off + q : G + off + (q - B);
}

static inline int64_t tv_partner(int64_t gr, int64_t G)
{
    return gr < G ? gr + G : gr - G;
}

/* Per-row values gathered rank-major (rank q's 2B local rows, view a then view b) into global
 * row order (2G). */
static inline void tv_to_global(const float *rank_major, float *global, int64_t B, int64_t G)
{
    for (int64_t j = 0; j < G; j++) {
        global[j] = rank_major[j / B * 2 * B + j % B];
        global[G + j] = rank_major[j / B * 2 * B + B + j % B];
    }
}

/* floats rounded up to a multiple of 16 (64-byte aligned workspace pieces) */
static inline size_t tv_pad16(size_t floats)
{
    return (floats + 15) & ~(size_t)15;
}

#endif
