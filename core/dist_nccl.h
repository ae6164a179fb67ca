/*
 * core/dist_nccl.h — INTERNAL: the NCCL backend of core/dist.h (core/dist_nccl.c), called by
 * core/dist.c only. Each returns 0, -1 with sg_err, or -2: timed out.
 */
#ifndef SG_CORE_DIST_NCCL_H
#define SG_CORE_DIST_NCCL_H

#include <stddef.h>

#include "core/ctx.h"

int sg_dist_nccl_unique_id(void *id, size_t bytes);
int sg_dist_nccl_open(void **state, struct sg_ctx *ctx, int rank, int world, const void *id,
                      size_t id_bytes, double timeout_s);
int sg_dist_nccl_coll(void *state, double timeout_s, const char *op, void *buf, const void *send,
                      size_t count, int root);
void sg_dist_nccl_close(void *state, double timeout_s);

#endif
