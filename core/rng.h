/*
 * core/rng.h — a random number generator that gives the same numbers as PyTorch on CPU.
 *
 * mt19937 with torch's seeding, and torch's float transforms:
 *   struct sg_rng r; sg_rng_seed(&r, 42);
 *   sg_rng_normal(&r, x, n, 0.f, 1.f);    == torch.manual_seed(42); torch.empty(n).normal_(0, 1)
 *   sg_rng_uniform(&r, x, n, -1.f, 1.f);  == torch.empty(n).uniform_(-1, 1)
 * normal_ on >= 16 contiguous floats uses torch's 16-wide Box-Muller (normal_fill); fewer than 16
 * uses the scalar double path, whose spare sample is cached in the generator exactly as torch
 * does. (After llm.c's llmc/rand.h, fixed for sequencing and the cached sample.)
 */
#ifndef SG_RNG_H
#define SG_RNG_H

#include <stdint.h>

#define SG_MT_N 624

struct sg_rng {
    uint32_t state[SG_MT_N];
    int left;
    int next;
    int has_next_normal; /* torch's next_double_normal_sample cache */
    double next_normal;
};

void sg_rng_seed(struct sg_rng *r, uint64_t seed);
uint32_t sg_rng_u32(struct sg_rng *r);
uint64_t sg_rng_u64(struct sg_rng *r);
float sg_rng_float(struct sg_rng *r);   /* [0,1) with 24 random bits, as torch's uniform_ */
double sg_rng_double(struct sg_rng *r); /* [0,1) with 53 random bits */
void sg_rng_uniform(struct sg_rng *r, float *x, int64_t n, float from, float to);
void sg_rng_normal(struct sg_rng *r, float *x, int64_t n, float mean, float std);
/* torch.randperm(n) for n < 2^24 on CPU is not reproduced here; use sg_rng_shuffle for our own
 * deterministic shuffles (Fisher–Yates on sg_rng_u64). */
void sg_rng_shuffle(struct sg_rng *r, int64_t *idx, int64_t n);

#endif
