/* train/host_stage.c — see host_stage.h. */
#include "train/host_stage.h"

#include <stdlib.h>

#include "core/common.h"

struct sg_pair_view sg_stage_down(struct sg_host_stage *s, struct sg_ctx *c, const float *a,
                                  const float *b, const int64_t *idx, int B, int E, float *da,
                                  float *db)
{
    if (c->dev != SG_DEVICE_CUDA) return (struct sg_pair_view){a, b, idx, da, db};
    size_t n = (size_t)B * (size_t)E;
    if (n > s->cap) {
        s->buf = sg_xrealloc(s->buf, 4 * n * sizeof(float));
        s->idx = sg_xrealloc(s->idx, n * sizeof(int64_t));
        s->cap = n;
    }
    float *h = s->buf;
    sg_memcpy_d2h(c, h, a, n * sizeof(float));
    sg_memcpy_d2h(c, h + n, b, n * sizeof(float));
    sg_memcpy_d2h(c, s->idx, idx, (size_t)B * sizeof(int64_t));
    return (struct sg_pair_view){h, h + n, s->idx, h + 2 * n, h + 3 * n};
}

void sg_stage_up(struct sg_ctx *c, const struct sg_pair_view *v, int B, int E, float *da, float *db)
{
    if (c->dev != SG_DEVICE_CUDA || !da) return;
    size_t bytes = (size_t)B * (size_t)E * sizeof(float);
    sg_memcpy_h2d(c, da, v->da, bytes);
    sg_memcpy_h2d(c, db, v->db, bytes);
}

void sg_host_stage_free(struct sg_host_stage *s)
{
    free(s->buf);
    free(s->idx);
    s->buf = NULL, s->idx = NULL, s->cap = 0;
}
