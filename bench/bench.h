/*
 * bench/bench.h — op benchmark harness (not a test). Each op family has bench/bench_<family>.c
 * with `void bench_<family>(struct sg_ctx *c)` that prepares buffers and calls bench_time for
 * each case; bench/torch_<family>.py times the PyTorch equivalent under the same case names.
 * bench/compare.py runs both and prints the ratio table (torch_ms / ours_ms: > 1 means faster).
 */
#ifndef SG_BENCH_H
#define SG_BENCH_H

#include "core/ctx.h"

/* Times fn(arg) (one forward+backward of one op): 2 warm-ups, then repeats until 0.5 s or 30
 * runs have passed (at least 3), and prints "BENCH<TAB>name<TAB>median_ms<TAB>min_ms". */
void bench_time(const char *name, void (*fn)(void *arg), void *arg);
/* Random buffer helper (64-byte aligned, values in [-1, 1)). Free with sg_afree. */
float *bench_rand(size_t n, unsigned seed);
/* Non-zero when the case `name` is selected by the command-line filter. */
int bench_selected(const char *name);

void bench_matmul(struct sg_ctx *c); /* bench/bench_matmul.c: linear, bmm, attention */
void bench_conv(struct sg_ctx *c);   /* bench/bench_conv.c: conv2d, pools */
void bench_norm(struct sg_ctx *c);   /* bench/bench_norm.c: layernorm, batchnorm */
void bench_pointwise(
    struct sg_ctx *c); /* bench/bench_pointwise.c: activations, softmax, add, l2norm, dropout */
void bench_embed_loss(struct sg_ctx *c); /* bench/bench_embed_loss.c: embedding, cross-entropy */

#endif
