/* core/arena.c — see arena.h. */
#include "core/arena.h"

#include <string.h>

#include "core/common.h"

size_t sg_arena_round(size_t bytes)
{
    return (bytes + 255) & ~(size_t)255;
}

void sg_arena_init(struct sg_arena *a, struct sg_ctx *c, size_t bytes, const char *name)
{
    memset(a, 0, sizeof *a);
    a->ctx = c;
    a->cap = sg_arena_round(bytes);
    a->base = a->cap ? sg_dev_alloc(c, a->cap) : NULL;
    snprintf(a->name, sizeof a->name, "%s", name);
}

void *sg_arena_alloc(struct sg_arena *a, size_t bytes)
{
    size_t need = sg_arena_round(bytes);
    if (a->used + need > a->cap)
        SG_PANIC("arena '%s' overflow: %zu of %zu bytes used, %zu more requested", a->name, a->used,
                 a->cap, need);
    void *p = a->base + a->used;
    a->used += need;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

float *sg_arena_floats(struct sg_arena *a, size_t n)
{
    return sg_arena_alloc(a, n * sizeof(float));
}

void sg_arena_reset(struct sg_arena *a)
{
    a->used = 0;
}

void sg_arena_free(struct sg_arena *a)
{
    if (a->base) sg_dev_free(a->ctx, a->base);
    memset(a, 0, sizeof *a);
}

void *sg_carve(struct sg_carver *cv, size_t bytes)
{
    if (cv->a) return sg_arena_alloc(cv->a, bytes);
    cv->total += sg_arena_round(bytes);
    return NULL;
}

float *sg_carve_floats(struct sg_carver *cv, size_t n)
{
    return sg_carve(cv, n * sizeof(float));
}
