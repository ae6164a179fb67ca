/* PLACEHOLDER: bench cases for the norm family */
#include "bench/bench.h"
void bench_norm(struct sg_ctx *c) { (void)c; }
