/* PLACEHOLDER: bench cases for the embed_loss family */
#include "bench/bench.h"
void bench_embed_loss(struct sg_ctx *c) { (void)c; }
