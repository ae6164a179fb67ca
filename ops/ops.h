/*
 * ops/ops.h — the device-agnostic op API, one header per op family.
 *
 * Conventions (every op file states them again for its own ops):
 *  - Ops take raw float pointers and explicit dims; tensors are contiguous, row-major, PyTorch
 *    layouts: images NCHW, sequences (B,T,C), Linear weights (OC,C), Conv weights (OC,C/g,KH,KW).
 *  - Each op exists three times: `X_ref` (plain loops, the readable spec; host only),
 *    `X_cpu` (the fast CPU path: oneDNN/GEMM, OpenMP), and `X_cuda` (ops/cuda/, when built with
 *    CUDA). The public `op_X` dispatches on ctx->dev to `X_cpu` or `X_cuda`.
 *  - Gradient contract (llm.c's layernorm.cuh): backward ops ACCUMULATE (+=) into parameter
 *    gradients (so micro-batches can accumulate), and OVERWRITE (=) activation gradients. The
 *    residual add's backward accumulates into both branches. A NULL gradient pointer means
 *    "not needed" and is skipped.
 *  - Everything that backward needs is either an input of forward or a buffer forward fills
 *    (mean/rstd, argmax, softmax probabilities), named in the forward signature.
 *  - Dims: B batch, T sequence, C channels/features, OC output channels, NH heads, HW spatial,
 *    N rows (= B*T for sequences), V vocabulary.
 */
#ifndef SG_OPS_H
#define SG_OPS_H

#include "ops/gemm.h"
#include "ops/matmul.h"
#include "ops/conv.h"
#include "ops/pool.h"
#include "ops/norm.h"
#include "ops/activation.h"
#include "ops/softmax.h"
#include "ops/attention.h"
#include "ops/embedding.h"
#include "ops/elementwise.h"
#include "ops/loss.h"

#endif
