/*
 * core/arena.h — bump arenas on the host or the device. Everything a training step needs is
 * sized before step 1 and carved out of arenas; there is no malloc in the step loop.
 * Allocations are 256-byte aligned. Overflow is a programmer error (the plan was wrong): it
 * panics naming the arena, its capacity and the request.
 */
#ifndef SG_ARENA_H
#define SG_ARENA_H

#include <stddef.h>

#include "core/ctx.h"

struct sg_arena {
    struct sg_ctx *ctx;
    unsigned char *base;
    size_t cap, used, peak;
    char name[64];
};

void sg_arena_init(struct sg_arena *a, struct sg_ctx *c, size_t bytes, const char *name);
void *sg_arena_alloc(struct sg_arena *a, size_t bytes);
float *sg_arena_floats(struct sg_arena *a, size_t n);
void sg_arena_reset(struct sg_arena *a); /* keeps the memory, forgets the allocations */
void sg_arena_free(struct sg_arena *a);
size_t sg_arena_round(size_t bytes); /* the size an allocation really takes */

/* Plan-then-bind: a module describes its activations once, in one function called twice:
 * with a == NULL every sg_carve only adds the rounded size to total (the plan) and returns NULL;
 * with an arena it allocates (the bind). */
struct sg_carver {
    struct sg_arena *a;
    size_t total;
};
void *sg_carve(struct sg_carver *cv, size_t bytes);
float *sg_carve_floats(struct sg_carver *cv, size_t n);

#endif
