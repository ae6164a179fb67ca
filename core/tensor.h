/*
 * core/tensor.h — dtypes and the tensor descriptor used at IO, test, checkpoint and
 * parameter-table boundaries. Ops themselves take raw pointers and explicit dims (llm.c style);
 * tensors are always contiguous, row-major, PyTorch layouts (NCHW, (B,T,C), Linear (OC,C)).
 */
#ifndef SG_TENSOR_H
#define SG_TENSOR_H

#include <stddef.h>
#include <stdint.h>

enum sg_dtype { SG_F32 = 0, SG_F16, SG_BF16, SG_I32, SG_I64, SG_U8, SG_DTYPE_COUNT };

#define SG_MAX_DIMS 8

struct sg_tensor {
    enum sg_dtype dtype;
    int ndim;
    int64_t shape[SG_MAX_DIMS];
    void *data; /* host memory, contiguous */
};

size_t sg_dtype_size(enum sg_dtype t);
const char *sg_dtype_name(enum sg_dtype t); /* safetensors spelling: "F32", "BF16", ... */
/* Parse a safetensors dtype string of length n; returns 0 or -1 (unknown / unsupported). */
int sg_dtype_parse(const char *s, size_t n, enum sg_dtype *out);

int64_t sg_shape_numel(int ndim, const int64_t *shape);
/* "[2, 3, 4]" into buf; returns buf. */
const char *sg_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

/* IEEE half and bfloat16 conversions (round to nearest even, NaN preserved). */
float sg_f16_to_f32(uint16_t h);
uint16_t sg_f32_to_f16(float f);
float sg_bf16_to_f32(uint16_t b);
uint16_t sg_f32_to_bf16(float f);

#endif
