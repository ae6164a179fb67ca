/*
 * train/host_stage.h — host views of a step's pair of feature blocks, for the losses that run on
 * the host while the model runs on the GPU (the data-parallel steps: losses/gcl_bimodal_dist.h,
 * losses/clip_dist.h, losses/sogclr_uni_dist.h). On a CPU context the views are the buffers
 * themselves (no copy); on CUDA the features and ids are copied down (synchronising) and the
 * gradients copied back up by sg_stage_up: 2 B E floats each way.
 */
#ifndef SG_TRAIN_HOST_STAGE_H
#define SG_TRAIN_HOST_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"

/* Host buffers, grown on demand (zero-initialise; free with sg_host_stage_free). */
struct sg_host_stage {
    float *buf;   /* a, b, da, db: 4 B E floats */
    int64_t *idx; /* (B) */
    size_t cap;   /* B E: floats per block (ids fit since B <= B E) */
};

/* a, b (B, E) features, idx (B) sample ids, da, db (B, E) their gradients, as host pointers. */
struct sg_pair_view {
    const float *a, *b;
    const int64_t *idx;
    float *da, *db;
};

struct sg_pair_view sg_stage_down(struct sg_host_stage *s, struct sg_ctx *c, const float *a,
                                  const float *b, const int64_t *idx, int B, int E, float *da,
                                  float *db);
/* The view's gradients into da, db on c's device (no-op on the CPU). */
void sg_stage_up(struct sg_ctx *c, const struct sg_pair_view *v, int B, int E, float *da,
                 float *db);
void sg_host_stage_free(struct sg_host_stage *s);

#endif
