/* PLACEHOLDER: bench cases for the conv family */
#include "bench/bench.h"
void bench_conv(struct sg_ctx *c) { (void)c; }
