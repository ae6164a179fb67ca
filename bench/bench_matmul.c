/* PLACEHOLDER: bench cases for the matmul family */
#include "bench/bench.h"
void bench_matmul(struct sg_ctx *c) { (void)c; }
