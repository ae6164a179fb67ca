/* PLACEHOLDER: bench cases for the pointwise family */
#include "bench/bench.h"
void bench_pointwise(struct sg_ctx *c) { (void)c; }
