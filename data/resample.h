/*
 * data/resample.h — internal: separable resampling of 8-bit RGB with PyTorch's float arithmetic
 * (used by data/transforms.c; not a public API).
 *
 * sg_resample reproduces torchvision 0.14's tensor resize of a uint8 image: convert to float,
 * torch.nn.functional.interpolate(mode, align_corners=False, antialias), clamp (bicubic),
 * torch.round (half to even) back to uint8. See resample.c for the kernels.
 */
#ifndef SG_DATA_RESAMPLE_H
#define SG_DATA_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "data/transforms.h"

/* Per-axis table: output i reads n[i] taps at idx[i*taps + j] with weights w[i*taps + j]. */
struct sg_resample_axis {
    int taps;
    int *n, *idx;
    float *w;
    size_t cap_out, cap_w; /* capacities of n / idx,w */
};

struct sg_resample_buf {
    struct sg_resample_axis ax, ay;
    float *tmp; /* (in_h, out_w, 3) horizontal-pass result + one (in_w, 3) float row */
    size_t tmp_cap;
};

void sg_resample_buf_free(struct sg_resample_buf *b);

/* src: top-left pixel of an (in_h, in_w) RGB window inside an image with row stride
 * src_stride bytes; dst: (out_h, out_w, 3) contiguous. */
void sg_resample(const uint8_t *src, size_t src_stride, int in_h, int in_w, uint8_t *dst, int out_h,
                 int out_w, enum sg_interp interp, int antialias, struct sg_resample_buf *b);

#endif
