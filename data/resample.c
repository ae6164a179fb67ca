/*
 * data/resample.c — separable bilinear/bicubic resampling of 8-bit RGB, matching PyTorch 1.13's
 * CPU float kernels as torchvision 0.14 calls them on uint8 tensors (see resample.h).
 *
 * Reference: aten/src/ATen/native/cpu/UpSampleKernel.cpp and native/UpSample.h.
 *  - antialias=True (_upsample_{bilinear,bicubic}2d_aa): PIL-style filters, support scaled by
 *    the downscale factor (triangle; Keys cubic a = -0.5), weights normalised per output,
 *    horizontal pass first into a float buffer, then the vertical pass.
 *  - antialias=False (upsample_{bilinear,bicubic}2d): 2 taps with lambdas from a double source
 *    index (bilinear), or 4 clamped taps with Keys a = -0.75 (bicubic); computed there as
 *    sum_h w_h * (sum_w w_w * x), which is this file's horizontal-then-vertical order too.
 * Every sum runs over taps in torch's order with separate multiply and add (the file is built
 * with -ffp-contract=off), so results are bit-identical to torch's before rounding. The
 * tables are computed once per call (per axis). Speed: the horizontal pass keeps one pixel's
 * (r, g, b) in a 4-float vector (FMA builds; antialias taps zero-padded to a fixed count so
 * the common counts unroll), the vertical pass is a plain loop over contiguous rows that the
 * compiler vectorises, and the rounding back to uint8 packs 32 values at a time (AVX2).
 */
#include "data/resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

#if defined(__FMA__) || defined(__AVX2__)
#include <immintrin.h>
#endif

void sg_resample_buf_free(struct sg_resample_buf *b)
{
    free(b->ax.n);
    free(b->ax.idx);
    free(b->ax.w);
    free(b->ay.n);
    free(b->ay.idx);
    free(b->ay.w);
    free(b->tmp);
    memset(b, 0, sizeof *b);
}

static void axis_reserve(struct sg_resample_axis *a, int out, int taps)
{
    a->taps = taps;
    if ((size_t)out > a->cap_out) {
        free(a->n);
        a->n = sg_xmalloc(sizeof(int) * (size_t)out);
        a->cap_out = (size_t)out;
    }
    size_t nw = (size_t)out * (size_t)taps;
    if (nw > a->cap_w) {
        free(a->idx);
        free(a->w);
        a->idx = sg_xmalloc(sizeof(int) * nw);
        a->w = sg_xmalloc(sizeof(float) * nw);
        a->cap_w = nw;
    }
}

/* PIL/torch antialias filters; the argument arrives as a float (torch's scalar_t). */
static float aa_triangle(float x)
{
    if (x < 0.0f) x = -x;
    if (x < 1.0f) return (float)(1.0 - (double)x);
    return 0.0f;
}

/* ((a + 2) x - (a + 3)) x x + 1 and (((x - 5) x + 8) x - 4) a, as GCC contracts them */
static float aa_cubic(float x)
{
    const double a = -0.5;
    if (x < 0.0f) x = -x;
    if (x < 1.0f) return (float)fma(fma(a + 2.0, x, -(a + 3.0)) * x, x, 1.0);
    if (x < 2.0f) return (float)((double)fmaf(fmaf(x - 5.0f, x, 8.0f), x, -4.0f) * a);
    return 0.0f;
}

/* torch _compute_weights_aa for every output index (float scalar_t, double temporaries). */
static void table_aa(struct sg_resample_axis *a, int in, int out, int cubic)
{
    const int interp = cubic ? 4 : 2;
    float scale = (float)in / (float)out;
    float support = (float)(scale >= 1.0f ? (interp * 0.5) * scale : interp * 0.5);
    int taps = (int)ceilf(support) * 2 + 1;
    float invscale = (float)(scale >= 1.0f ? 1.0 / scale : 1.0);
    axis_reserve(a, out, taps);
    for (int i = 0; i < out; i++) {
        float center = (float)(scale * (i + 0.5));
        int64_t xmin = (int64_t)((double)(center - support) + 0.5);
        if (xmin < 0) xmin = 0;
        int64_t xmax = (int64_t)((double)(center + support) + 0.5);
        if (xmax > in) xmax = in;
        int n = (int)(xmax - xmin);
        if (n > taps) n = taps; /* precision corner case, as torch clips */
        float *w = a->w + (size_t)i * taps;
        float total = 0.0f;
        for (int j = 0; j < n; j++) {
            float arg = (float)(((double)((float)(j + xmin) - center) + 0.5) * invscale);
            w[j] = cubic ? aa_cubic(arg) : aa_triangle(arg);
            total += w[j];
        }
        for (int j = 0; j < n; j++) {
            if (total != 0.0f) w[j] /= total;
            a->idx[(size_t)i * taps + j] = (int)xmin + j;
        }
        for (int j = n; j < taps; j++) { /* zero taps up to the fixed count (see hpass_aa) */
            w[j] = 0.0f;
            a->idx[(size_t)i * taps + j] = (int)xmin + j;
        }
        a->n[i] = n;
    }
}

/* torch compute_source_index_and_lambda (double source index) for bilinear, no antialias. */
static void table_linear(struct sg_resample_axis *a, int in, int out)
{
    float scale = (float)in / (float)out;
    axis_reserve(a, out, 2);
    for (int i = 0; i < out; i++) {
        int i0, i1;
        float l0, l1;
        if (in == out) {
            i0 = i1 = i;
            l0 = 1.0f;
            l1 = 0.0f;
        } else {
            double real = fma((double)scale, i + 0.5, -0.5);
            if (real < 0) real = 0;
            i0 = (int)real;
            i1 = i0 + (i0 < in - 1 ? 1 : 0);
            l1 = (float)(real - i0);
            l0 = 1.0f - l1;
        }
        a->idx[2 * i] = i0;
        a->idx[2 * i + 1] = i1;
        a->w[2 * i] = l0;
        a->w[2 * i + 1] = l1;
        a->n[i] = 2;
    }
}

/* UpSample.h cubic_convolution1/2 with the multiply-adds torch's build fuses (found by probing
 * torch's weights with one-hot inputs: the first one / two steps are fused, the last is not). */
static float cubic_conv1(float x, float A)
{
    float s = fmaf(A + 2, x, -(A + 3));
    return s * x * x + 1;
}

static float cubic_conv2(float x, float A)
{
    float s = fmaf(fmaf(A, x, -(5 * A)), x, 8 * A);
    return s * x - 4 * A;
}

/* torch HelperInterpCubic::compute_indices_weights, Keys a = -0.75, clamped taps. The source
 * index is a double; the integer part comes from floorf of its float rounding and t is the
 * double difference rounded to float (matches torch's weights bit for bit). */
static void table_cubic(struct sg_resample_axis *a, int in, int out)
{
    const float A = -0.75f;
    float scale = (float)in / (float)out;
    axis_reserve(a, out, 4);
    for (int i = 0; i < out; i++) {
        double real = (double)scale * (i + 0.5) - 0.5;
        int64_t i0 = (int64_t)floorf((float)real);
        float t = (float)(real - (double)i0);
        float x2 = 1.0f - t;
        float c[4] = {cubic_conv2(t + 1.0f, A), cubic_conv1(t, A), cubic_conv1(x2, A),
                      cubic_conv2(x2 + 1.0f, A)};
        for (int j = 0; j < 4; j++) {
            int64_t k = i0 - 1 + j;
            a->idx[4 * i + j] = (int)(k < 0 ? 0 : k > in - 1 ? in - 1 : k);
            a->w[4 * i + j] = c[j];
        }
        a->n[i] = 4;
    }
}

static void make_table(struct sg_resample_axis *a, int in, int out, enum sg_interp interp,
                       int antialias)
{
    if (antialias)
        table_aa(a, in, out, interp == SG_INTERP_BICUBIC);
    else if (interp == SG_INTERP_BICUBIC)
        table_cubic(a, in, out);
    else
        table_linear(a, in, out);
}

#if defined(__FMA__)
/* The vector horizontal pass: one output pixel's (r, g, b) in the first three lanes of a
 * 4-float vector, with the same multiplies and fused multiply-adds per channel in the same order
 * as the scalar hpass_row below (the fourth lane reads the next pixel's red and is discarded).
 * src needs 3 * taps + 1 readable floats past its last pixel; each pixel is stored as 4 floats
 * that the next one overwrites, the last one as 3. */
static inline void store3(float *dst, __m128 v, int last)
{
    if (!last) {
        _mm_storeu_ps(dst, v);
    } else {
        float t[4];
        _mm_storeu_ps(t, v);
        memcpy(dst, t, 3 * sizeof(float));
    }
}

/* Antialias: every output runs all `taps` taps, those past its n[o] with weight 0 (table_aa):
 * fma(x, 0, acc) == acc for the finite x read there (only a -0 sum could turn into +0, which
 * rounds to the same uint8), so the result is torch's n[o]-tap sum, without a per-pixel trip
 * count. Inlined with constant taps for the common counts so the tap loop unrolls. */
static inline __attribute__((always_inline)) void
hpass_aa(const float *src, float *dst, int out_w, const int *idx, const float *w, const int taps)
{
    for (int o = 0; o < out_w; o++, idx += taps, w += taps) {
        const float *p0 = src + 3 * idx[0];
        __m128 acc = _mm_mul_ps(_mm_loadu_ps(p0), _mm_set1_ps(w[0]));
        for (int j = 1; j < taps; j++)
            acc = _mm_fmadd_ps(_mm_loadu_ps(p0 + 3 * j), _mm_set1_ps(w[j]), acc);
        store3(dst + 3 * o, acc, o + 1 == out_w);
    }
}

static void hpass_row(const float *src, float *dst, int out_w, const struct sg_resample_axis *a,
                      int kind)
{
    const int taps = a->taps;
    if (kind == 0) {
        switch (taps) {
        case 3: /* bilinear upscaling */
            hpass_aa(src, dst, out_w, a->idx, a->w, 3);
            break;
        case 5: /* bilinear, downscaling by <= 1.5; bicubic upscaling */
            hpass_aa(src, dst, out_w, a->idx, a->w, 5);
            break;
        default:
            hpass_aa(src, dst, out_w, a->idx, a->w, taps);
            break;
        }
        return;
    }
    for (int o = 0; o < out_w; o++) {
        const int *idx = a->idx + (size_t)o * taps;
        const float *w = a->w + (size_t)o * taps;
        __m128 t1 = _mm_mul_ps(_mm_loadu_ps(src + 3 * idx[1]), _mm_set1_ps(w[1]));
        __m128 acc = _mm_fmadd_ps(_mm_loadu_ps(src + 3 * idx[0]), _mm_set1_ps(w[0]), t1);
        for (int j = 2; j < kind; j++)
            acc = _mm_fmadd_ps(_mm_loadu_ps(src + 3 * idx[j]), _mm_set1_ps(w[j]), acc);
        store3(dst + 3 * o, acc, o + 1 == out_w);
    }
}
#else
/* Horizontal pass of one row: src (in_w, 3) floats -> dst (out_w, 3) floats.
 * kind 0, antialias (runtime tap loop): t0 w0, then fma(tj, wj, acc);
 * kind 2, bilinear (torch's t0 * w0 + t1 * w1): fma(t0, w0, t1 w1);
 * kind 4, bicubic (unrolled 4 taps): fma(t0, w0, t1 w1), then fma(tj, wj, acc). */
static void hpass_row(const float *src, float *dst, int out_w, const struct sg_resample_axis *a,
                      int kind)
{
    const int taps = a->taps;
    for (int o = 0; o < out_w; o++) {
        const int *idx = a->idx + (size_t)o * taps;
        const float *w = a->w + (size_t)o * taps;
        const float *p0 = src + 3 * idx[0];
        float r, g, b;
        if (kind == 0) { /* taps are contiguous from idx[0] */
            r = p0[0] * w[0], g = p0[1] * w[0], b = p0[2] * w[0];
            for (int j = 1; j < a->n[o]; j++) {
                r = fmaf(p0[3 * j], w[j], r);
                g = fmaf(p0[3 * j + 1], w[j], g);
                b = fmaf(p0[3 * j + 2], w[j], b);
            }
        } else {
            const float *p1 = src + 3 * idx[1];
            r = fmaf(p0[0], w[0], p1[0] * w[1]);
            g = fmaf(p0[1], w[0], p1[1] * w[1]);
            b = fmaf(p0[2], w[0], p1[2] * w[1]);
            for (int j = 2; j < kind; j++) {
                const float *pj = src + 3 * idx[j];
                r = fmaf(pj[0], w[j], r);
                g = fmaf(pj[1], w[j], g);
                b = fmaf(pj[2], w[j], b);
            }
        }
        dst[3 * o] = r;
        dst[3 * o + 1] = g;
        dst[3 * o + 2] = b;
    }
}
#endif

static uint8_t to_u8(float v)
{
    v = nearbyintf(v); /* torch.round: half to even */
    return (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
}

/* d[k] = to_u8(a[k]) for k < n. The AVX2 path rounds half to even (_mm256_round_ps), clamps to
 * [0, 255] (max/min: a -0 becomes 0 either way) and packs 32 values at a time. */
static void to_u8_row(const float *a, uint8_t *d, size_t n)
{
    size_t k = 0;
#if defined(__AVX2__)
    const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(255.0f);
    for (; k + 32 <= n; k += 32) {
        __m256i v[4];
        for (int q = 0; q < 4; q++) {
            __m256 f = _mm256_round_ps(_mm256_loadu_ps(a + k + 8 * q),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            v[q] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(f, lo), hi));
        }
        /* packs work per 128-bit lane: (0a 1a 0b 1b) (2a 3a 2b 3b) -> bytes in lane order
         * 0a 1a 2a 3a 0b 1b 2b 3b (4-byte groups), put back in order by one dword permute */
        __m256i w01 = _mm256_packus_epi32(v[0], v[1]), w23 = _mm256_packus_epi32(v[2], v[3]);
        __m256i b = _mm256_packus_epi16(w01, w23);
        b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(d + k), b);
    }
#endif
    for (; k < n; k++) d[k] = to_u8(a[k]);
}

void sg_resample(const uint8_t *src, size_t src_stride, int in_h, int in_w, uint8_t *dst, int out_h,
                 int out_w, enum sg_interp interp, int antialias, struct sg_resample_buf *b)
{
    SG_CHECK(in_h > 0 && in_w > 0 && out_h > 0 && out_w > 0, "bad resample %dx%d -> %dx%d", in_w,
             in_h, out_w, out_h);
    if (in_h == out_h && in_w == out_w) { /* torchvision returns the image unchanged */
        for (int y = 0; y < in_h; y++)
            memcpy(dst + (size_t)y * out_w * 3, src + (size_t)y * src_stride, (size_t)in_w * 3);
        return;
    }
    const size_t row = (size_t)out_w * 3;
    const int kind = antialias ? 0 : interp == SG_INTERP_BILINEAR ? 2 : 4;
    /* vertical table first: it says which input rows the horizontal pass must produce */
    make_table(&b->ay, in_h, out_h, interp, antialias);
    make_table(&b->ax, in_w, out_w, interp, antialias);
    /* tmp: (in_h, out_w, 3) horizontal results, then one (in_w, 3) float source row and
     * 3 * taps + 1 floats of zeros (read with zero weights by the vector horizontal pass) */
    const size_t pad = 3 * (size_t)b->ax.taps + 1;
    size_t need = (size_t)in_h * row + (size_t)in_w * 3 + pad;
    if (need > b->tmp_cap) {
        free(b->tmp);
        b->tmp = sg_xmalloc(sizeof(float) * need);
        b->tmp_cap = need;
    }
    float *srcf = b->tmp + (size_t)in_h * row;
    memset(srcf + (size_t)in_w * 3, 0, sizeof(float) * pad);
    /* rows [lo, hi) are read by the vertical pass */
    int lo = in_h, hi = 0;
    for (int o = 0; o < out_h; o++)
        for (int j = 0; j < b->ay.n[o]; j++) {
            int r = b->ay.idx[(size_t)o * b->ay.taps + j];
            lo = SG_MIN(lo, r);
            hi = SG_MAX(hi, r + 1);
        }
    for (int y = lo; y < hi; y++) {
        const uint8_t *s = src + (size_t)y * src_stride;
        float *t = b->tmp + (size_t)y * row;
        if (in_w == out_w) { /* identity weights: exact, skip the taps */
            for (size_t k = 0; k < row; k++) t[k] = (float)s[k];
        } else {
            for (int k = 0; k < in_w * 3; k++) srcf[k] = (float)s[k];
            hpass_row(srcf, t, out_w, &b->ax, kind);
        }
    }
    /* vertical pass: taps in order, one output row at a time */
    for (int o = 0; o < out_h; o++) {
        const int *idx = b->ay.idx + (size_t)o * b->ay.taps;
        const float *w = b->ay.w + (size_t)o * b->ay.taps;
        uint8_t *d = dst + (size_t)o * row;
        const float *t0 = b->tmp + (size_t)idx[0] * row;
        int n = b->ay.n[o];
        if (in_h == out_h) { /* identity weights: exact */
            const float *t = b->tmp + (size_t)o * row;
            to_u8_row(t, d, row);
            continue;
        }
        for (size_t k0 = 0; k0 < row; k0 += 256) { /* 256-float accumulator tile */
            float a[256];
            size_t kn = SG_MIN((size_t)256, row - k0);
            const float *a0 = t0 + k0;
            if (kind == 0) {
                for (size_t k = 0; k < kn; k++) a[k] = a0[k] * w[0];
            } else {
                const float *a1 = b->tmp + (size_t)idx[1] * row + k0, w0 = w[0], w1 = w[1];
                for (size_t k = 0; k < kn; k++) a[k] = fmaf(a0[k], w0, a1[k] * w1);
            }
            for (int j = kind == 0 ? 1 : 2; j < n; j++) {
                const float *tj = b->tmp + (size_t)idx[j] * row + k0;
                const float wj = w[j];
                for (size_t k = 0; k < kn; k++) a[k] = fmaf(tj[k], wj, a[k]);
            }
            to_u8_row(a, d + k0, kn);
        }
    }
}
