/*
 * data/transforms.c — torchvision 0.14 augmentations on 8-bit RGB (see transforms.h).
 *
 * Reference: torchvision/transforms/functional_tensor.py (the tensor backend on uint8 CHW) and
 * transforms.py (RandomResizedCrop.get_params, ColorJitter, RandomApply, ...), checked by
 * tests/test_transforms.c against tests/ref/gen_transforms.py.
 *
 * Arithmetic is torch's step by step (float32, separate multiply and add: the file is built
 * with -ffp-contract=off), including its conversions back to uint8:
 *   resize: round half to even (torch.round) after clamping (bicubic);
 *   _blend (brightness, contrast, saturation): clamp(0, 255) then truncation (.to(uint8));
 *   rgb_to_grayscale: (0.2989 r + 0.587 g + 0.114 b) truncated; adjust_hue: x/255 -> HSV ->
 *   RGB -> x*255 truncated; gaussian_blur: round half to even.
 * Random draws reproduce torchvision's under torch.manual_seed with core/rng (torch.rand(1),
 * uniform_, randint and randperm(4) consume the same mt19937 outputs), so sg_augment equals
 * the torchvision Compose of the same preset draw for draw (test_transforms checks it).
 * The blur is separable with the symmetric taps paired (torch convolves with the 2-D
 * outer-product kernel): a value lying within ~1e-5 of a rounding boundary could land one step
 * away; none does on the test set.
 * Speed: the per-value products of the colour ops come from 256-entry tables of the same float
 * products; the hue loop is branch-free so GCC vectorises it (with -fno-trapping-math);
 * ToTensor + Normalize is a 256-entry table per channel too, and sg_augment applies the
 * horizontal flip in that final pass instead of moving the pixels (exact: see sg_augment).
 */
#include "data/transforms.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/resample.h"

struct sg_aug_scratch {
    struct sg_resample_buf rs;
    struct sg_image a, b; /* intermediate images */
    float *blur;          /* blur: padded row + (h, w, 3) horizontal pass */
    size_t blur_cap;
    struct norm_lut *norm; /* normalize table of the last mean/std */
};

struct sg_aug_scratch *sg_aug_scratch_new(void)
{
    return sg_xcalloc(1, sizeof(struct sg_aug_scratch));
}

void sg_aug_scratch_free(struct sg_aug_scratch *s)
{
    if (!s) return;
    sg_resample_buf_free(&s->rs);
    sg_image_free(&s->a);
    sg_image_free(&s->b);
    free(s->blur);
    free(s->norm);
    free(s);
}

static void *grow(void *p, size_t *cap, size_t bytes)
{
    if (bytes <= *cap) return p;
    free(p);
    *cap = bytes;
    return sg_xmalloc(bytes);
}

/* ---- presets ----------------------------------------------------------------------------- */

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};
static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

void sg_aug_preset(struct sg_aug_config *cfg, enum sg_aug_preset preset, int size)
{
    SG_CHECK(size > 0, "augmentation size %d", size);
    memset(cfg, 0, sizeof *cfg);
    cfg->size = size;
    cfg->interp = SG_INTERP_BILINEAR;
    cfg->antialias = 1;
    cfg->ratio[0] = 3.0f / 4.0f;
    cfg->ratio[1] = 4.0f / 3.0f;
    cfg->crop_pct = 1.0f;
    const float *mean = imagenet_mean, *std = imagenet_std;
    switch (preset) {
    case SG_AUG_CLIP: /* open_clip image_transform(is_train=True) */
        cfg->interp = SG_INTERP_BICUBIC;
        cfg->scale[0] = 0.9f;
        cfg->scale[1] = 1.0f;
        mean = clip_mean, std = clip_std;
        break;
    case SG_AUG_SIMCLR: /* SimCLR / SogCLR view */
        cfg->scale[0] = 0.08f;
        cfg->scale[1] = 1.0f;
        cfg->hflip_p = 0.5f;
        cfg->jitter_p = 0.8f;
        cfg->brightness = cfg->contrast = cfg->saturation = 0.4f;
        cfg->hue = 0.1f;
        cfg->gray_p = 0.2f;
        cfg->blur_p = size >= 64 ? 0.5f : 0.0f; /* no blur at CIFAR sizes */
        cfg->blur_sigma[0] = 0.1f;
        cfg->blur_sigma[1] = 2.0f;
        cfg->solarize_threshold = 128.0f;
        break;
    case SG_AUG_EVAL: /* ImageNet-style: resize to size/0.875, centre crop, bilinear */
        cfg->crop_pct = 0.875f;
        break;
    case SG_AUG_CLIP_EVAL: /* open_clip eval: resize shorter side to size, centre crop */
        cfg->interp = SG_INTERP_BICUBIC;
        mean = clip_mean, std = clip_std;
        break;
    case SG_AUG_CUSTOM: /* eval path, no colour change, mean 0 / std 1: fill in the rest */
        mean = NULL;
        break;
    }
    for (int c = 0; c < 3; c++) {
        cfg->mean[c] = mean ? mean[c] : 0.0f;
        cfg->std[c] = mean ? std[c] : 1.0f;
    }
}

/* ---- geometry ---------------------------------------------------------------------------- */

static void resized_crop(const struct sg_image *in, int top, int left, int h, int w, int out_h,
                         int out_w, enum sg_interp interp, int antialias, struct sg_image *out,
                         struct sg_resample_buf *rs)
{
    SG_CHECK(top >= 0 && left >= 0 && h > 0 && w > 0 && top + h <= in->h && left + w <= in->w,
             "crop box (%d,%d,%d,%d) outside the %dx%d image", top, left, h, w, in->w, in->h);
    SG_CHECK(out != in, "resized_crop cannot work in place");
    sg_image_reserve(out, out_w, out_h);
    const size_t stride = (size_t)in->w * 3;
    sg_resample(in->px + (size_t)top * stride + (size_t)left * 3, stride, h, w, out->px, out_h,
                out_w, interp, antialias, rs);
}

void sg_tf_resized_crop(const struct sg_image *in, int top, int left, int h, int w, int out_h,
                        int out_w, enum sg_interp interp, int antialias, struct sg_image *out)
{
    struct sg_resample_buf rs = {0};
    resized_crop(in, top, left, h, w, out_h, out_w, interp, antialias, out, &rs);
    sg_resample_buf_free(&rs);
}

/* torchvision _compute_resized_output_size for an int size (shorter side). */
static void shorter_size(int H, int W, int shorter, int *oh, int *ow)
{
    int s = SG_MIN(H, W), l = SG_MAX(H, W);
    int nl = (int)((double)shorter * (double)l / (double)s);
    if (W <= H)
        *ow = shorter, *oh = nl;
    else
        *oh = shorter, *ow = nl;
}

static void resize_shorter(const struct sg_image *in, int shorter, enum sg_interp interp,
                           int antialias, struct sg_image *out, struct sg_resample_buf *rs)
{
    int oh, ow;
    shorter_size(in->h, in->w, shorter, &oh, &ow);
    resized_crop(in, 0, 0, in->h, in->w, oh, ow, interp, antialias, out, rs);
}

void sg_tf_resize_shorter(const struct sg_image *in, int shorter, enum sg_interp interp,
                          int antialias, struct sg_image *out)
{
    struct sg_resample_buf rs = {0};
    resize_shorter(in, shorter, interp, antialias, out, &rs);
    sg_resample_buf_free(&rs);
}

/* torchvision center_crop: zero padding when the image is smaller, then a crop at
 * round((H - size) / 2) (Python's round: half to even). */
void sg_tf_center_crop(const struct sg_image *in, int size, struct sg_image *out)
{
    SG_CHECK(out != in && size > 0, "center_crop: bad arguments");
    int pl = size > in->w ? (size - in->w) / 2 : 0, pr = size > in->w ? (size - in->w + 1) / 2 : 0;
    int pt = size > in->h ? (size - in->h) / 2 : 0, pb = size > in->h ? (size - in->h + 1) / 2 : 0;
    int W = in->w + pl + pr, H = in->h + pt + pb; /* padded size */
    int top = (int)nearbyint((H - size) / 2.0), left = (int)nearbyint((W - size) / 2.0);
    sg_image_reserve(out, size, size);
    for (int y = 0; y < size; y++) {
        int sy = y + top - pt;
        uint8_t *d = out->px + (size_t)y * size * 3;
        for (int x = 0; x < size; x++) {
            int sx = x + left - pl;
            if (sy < 0 || sy >= in->h || sx < 0 || sx >= in->w) {
                d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = 0;
            } else {
                memcpy(d + 3 * x, in->px + ((size_t)sy * in->w + sx) * 3, 3);
            }
        }
    }
}

void sg_tf_hflip(struct sg_image *img)
{
    for (int y = 0; y < img->h; y++) {
        uint8_t *r = img->px + (size_t)y * img->w * 3;
        for (int a = 0, b = img->w - 1; a < b; a++, b--)
            for (int c = 0; c < 3; c++) {
                uint8_t t = r[3 * a + c];
                r[3 * a + c] = r[3 * b + c];
                r[3 * b + c] = t;
            }
    }
}

/* ---- colour ------------------------------------------------------------------------------ */

/* Every op below computes torch's float expression per value; the per-value products
 * (factor * x, weight * channel) depend on a uint8 only, so they come from 256-entry tables
 * holding exactly those float products. */

/* .clamp(0, 255).to(uint8): truncation toward zero */
static uint8_t clamp_trunc(float v)
{
    return (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
}

/* rgb_to_grayscale tables: (0.2989 r + 0.587 g) + 0.114 b in float, truncated */
struct luma_lut {
    float r[256], g[256], b[256];
};

/* Filled per call (768 products, negligible next to an image): no shared state. */
static void luma_tables(struct luma_lut *t)
{
    for (int v = 0; v < 256; v++) {
        t->r[v] = 0.2989f * (float)v;
        t->g[v] = 0.587f * (float)v;
        t->b[v] = 0.114f * (float)v;
    }
}

static inline uint8_t luma(const struct luma_lut *t, const uint8_t *p)
{
    return (uint8_t)((t->r[p[0]] + t->g[p[1]]) + t->b[p[2]]);
}

/* _blend(img, c, factor) with a constant c: out = clamp_trunc(factor x + (1 - factor) c) */
static void blend_const(struct sg_image *img, float factor, float other, int has_other)
{
    const float o = (float)(1.0 - (double)factor) * other;
    uint8_t lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = clamp_trunc(has_other ? factor * (float)v + o : factor * (float)v);
    size_t n = (size_t)img->w * img->h * 3;
    for (size_t i = 0; i < n; i++) img->px[i] = lut[img->px[i]];
}

void sg_tf_brightness(struct sg_image *img, float factor)
{
    blend_const(img, factor, 0.0f, 0); /* (1 - f) * zeros adds (+-)0: f x alone */
}

void sg_tf_contrast(struct sg_image *img, float factor)
{
    struct luma_lut lt;
    luma_tables(&lt);
    const struct luma_lut *t = &lt;
    size_t npix = (size_t)img->w * img->h;
    int64_t sum = 0; /* exact; torch's float sum is exact below 2^24 (any 256x256 image) */
    for (size_t i = 0; i < npix; i++) sum += luma(t, img->px + 3 * i);
    float mean = (float)sum / (float)npix;
    blend_const(img, factor, mean, 1);
}

void sg_tf_saturation(struct sg_image *img, float factor)
{
    struct luma_lut lt;
    luma_tables(&lt);
    const struct luma_lut *t = &lt;
    const float f1 = (float)(1.0 - (double)factor);
    float fx[256], fg[256]; /* factor * x and (1 - factor) * gray */
    for (int v = 0; v < 256; v++) fx[v] = factor * (float)v, fg[v] = f1 * (float)v;
    size_t npix = (size_t)img->w * img->h;
    for (size_t i = 0; i < npix; i++) {
        uint8_t *p = img->px + 3 * i;
        float g = fg[luma(t, p)];
        p[0] = clamp_trunc(fx[p[0]] + g);
        p[1] = clamp_trunc(fx[p[1]] + g);
        p[2] = clamp_trunc(fx[p[2]] + g);
    }
}

void sg_tf_grayscale(struct sg_image *img)
{
    struct luma_lut lt;
    luma_tables(&lt);
    const struct luma_lut *t = &lt;
    size_t npix = (size_t)img->w * img->h;
    for (size_t i = 0; i < npix; i++) {
        uint8_t *p = img->px + 3 * i;
        p[0] = p[1] = p[2] = luma(t, p);
    }
}

/* adjust_hue on n pixels of planar floats (x / 255), in place: _rgb2hsv, (h + shift) % 1.0,
 * _hsv2rgb. Branch-free selects so the loop vectorises; the fmod and floor calls of torch
 * are replaced by exact equivalents on the ranges that occur (h/6 + 1 in [5/6, 11/6],
 * h + shift in [-0.5, 1.5), h * 6 in [0, 6]). */
static void hue_block(float *restrict R, float *restrict G, float *restrict B, int n, float shift)
{
    /* every expression is computed unconditionally and then selected (float compares only),
     * so GCC if-converts and vectorises the loop */
    for (int k = 0; k < n; k++) {
        const float r = R[k], g = G[k], b = B[k];
        float maxc = r > g ? r : g;
        maxc = maxc > b ? maxc : b;
        float minc = r < g ? r : g;
        minc = minc < b ? minc : b;
        const float cr = maxc - minc;
        const float s = cr / (maxc == minc ? 1.0f : maxc);
        const float crd = maxc == minc ? 1.0f : cr;
        const float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
        /* torch multiplies by the 0/1 masks: 0 * x = +-0, 1 * x = x */
        const float mr = maxc == r ? 1.0f : 0.0f, mg = maxc == g ? 1.0f : 0.0f;
        const float hr = mr * (bc - gc);
        const float hg = ((1.0f - mr) * mg) * ((2.0f + rc) - bc);
        const float hb = ((1.0f - mr) * (1.0f - mg)) * ((4.0f + gc) - rc);
        const float h0 = (hr + hg) + hb;
        const float h1 = h0 / 6.0f + 1.0f, h1m = h1 - 1.0f;
        const float h2 = (h1 >= 1.0f ? h1m : h1) + shift; /* fmod(h, 1) for h > 0, + shift */
        const float h2p = h2 + 1.0f, h2m = h2 - 1.0f;
        const float h = h2 < 0.0f ? h2p : h2 >= 1.0f ? h2m : h2; /* torch.remainder(h, 1) */
        const float h6 = h * 6.0f;
        const float fi = (float)(int)h6; /* floor: h6 >= 0 */
        const float f = h6 - fi;
        const float i = fi == 6.0f ? 0.0f : fi; /* i % 6 */
        const float v = maxc;
        float p = v * (1.0f - s), q = v * (1.0f - s * f), t = v * (1.0f - s * (1.0f - f));
        p = p < 0.0f ? 0.0f : p > 1.0f ? 1.0f : p;
        q = q < 0.0f ? 0.0f : q > 1.0f ? 1.0f : q;
        t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
        /* (v,q,p,p,t,v), (t,v,v,q,p,p), (p,p,t,v,v,q) indexed by i */
        R[k] = i == 0.0f ? v : i == 1.0f ? q : i == 2.0f ? p : i == 3.0f ? p : i == 4.0f ? t : v;
        G[k] = i == 0.0f ? t : i == 1.0f ? v : i == 2.0f ? v : i == 3.0f ? q : p;
        B[k] = i == 0.0f ? p : i == 1.0f ? p : i == 2.0f ? t : i == 3.0f ? v : i == 4.0f ? v : q;
    }
}

void sg_tf_hue(struct sg_image *img, float shift)
{
    SG_CHECK(shift >= -0.5f && shift <= 0.5f, "hue shift %g outside [-0.5, 0.5]", shift);
    float div255[256];
    for (int v = 0; v < 256; v++) div255[v] = (float)v / 255.0f;
    enum { BLK = 256 };
    float R[BLK], G[BLK], B[BLK];
    size_t npix = (size_t)img->w * img->h;
    for (size_t i0 = 0; i0 < npix; i0 += BLK) {
        int n = (int)SG_MIN((size_t)BLK, npix - i0);
        uint8_t *p = img->px + 3 * i0;
        for (int k = 0; k < n; k++) {
            R[k] = div255[p[3 * k]];
            G[k] = div255[p[3 * k + 1]];
            B[k] = div255[p[3 * k + 2]];
        }
        hue_block(R, G, B, n, shift);
        for (int k = 0; k < n; k++) { /* (x * 255).to(uint8): truncation */
            p[3 * k] = (uint8_t)(R[k] * 255.0f);
            p[3 * k + 1] = (uint8_t)(G[k] * 255.0f);
            p[3 * k + 2] = (uint8_t)(B[k] * 255.0f);
        }
    }
}

void sg_tf_solarize(struct sg_image *img, int threshold)
{
    size_t n = (size_t)img->w * img->h * 3;
    for (size_t i = 0; i < n; i++)
        if (img->px[i] >= threshold) img->px[i] = (uint8_t)(255 - img->px[i]);
}

/* ---- gaussian blur ----------------------------------------------------------------------- */

/* torch reflect padding index (no edge repeat), folded as often as needed */
static int reflect(int i, int n)
{
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

static void gaussian_blur(struct sg_image *img, int kernel, float sigma, float **buf, size_t *cap)
{
    SG_CHECK(kernel > 0 && kernel % 2 == 1 && kernel <= 255 && sigma > 0,
             "gaussian_blur: kernel %d must be odd, sigma %g positive", kernel, sigma);
    /* _get_gaussian_kernel1d: linspace(-r, r) (exact integers), exp(-0.5 (x/s)^2), / sum */
    float k[256], sum = 0.0f;
    const int r = kernel / 2, W = img->w, H = img->h, row = W * 3;
    for (int j = 0; j < kernel; j++) {
        float x = (float)(j - r) / sigma;
        k[j] = expf(-0.5f * (x * x));
        sum += k[j];
    }
    for (int j = 0; j < kernel; j++) k[j] /= sum; /* symmetric: k[r - d] == k[r + d] */
    /* buffers: padded row (W + 2r, 3), horizontal result (H, W, 3) */
    *buf = grow(*buf, cap, sizeof(float) * ((size_t)(W + 2 * r) * 3 + (size_t)H * row));
    float *prow = *buf, *tmp = *buf + (size_t)(W + 2 * r) * 3;
    for (int y = 0; y < H; y++) {
        const uint8_t *s = img->px + (size_t)y * row;
        for (int x = -r; x < W + r; x++) {
            const uint8_t *p = s + 3 * reflect(x, W);
            float *d = prow + 3 * (x + r);
            d[0] = p[0], d[1] = p[1], d[2] = p[2];
        }
        /* symmetric kernel: centre tap, then pairs (x - d, x + d) share a multiply */
        float *t = tmp + (size_t)y * row;
        const float *pc = prow + 3 * r;
        for (int x3 = 0; x3 < row; x3++) t[x3] = pc[x3] * k[r];
        for (int off = 1; off <= r; off++) {
            const float *pl = pc - 3 * off, *pr = pc + 3 * off, ko = k[r + off];
            for (int x3 = 0; x3 < row; x3++) t[x3] += (pl[x3] + pr[x3]) * ko;
        }
    }
    for (int y = 0; y < H; y++) {
        uint8_t *d = img->px + (size_t)y * row;
        for (int x0 = 0; x0 < row; x0 += 256) {
            float a[256];
            int xn = SG_MIN(256, row - x0);
            const float *tc = tmp + (size_t)y * row + x0;
            for (int x = 0; x < xn; x++) a[x] = tc[x] * k[r];
            for (int off = 1; off <= r; off++) {
                const float *tl = tmp + (size_t)reflect(y - off, H) * row + x0;
                const float *tr = tmp + (size_t)reflect(y + off, H) * row + x0, ko = k[r + off];
                for (int x = 0; x < xn; x++) a[x] += (tl[x] + tr[x]) * ko;
            }
            for (int x = 0; x < xn; x++) {
                float v = nearbyintf(a[x]);
                d[x0 + x] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
            }
        }
    }
}

void sg_tf_gaussian_blur(struct sg_image *img, int kernel, float sigma)
{
    float *buf = NULL;
    size_t cap = 0;
    gaussian_blur(img, kernel, sigma, &buf, &cap);
    free(buf);
}

/* ---- normalize ---------------------------------------------------------------------------- */

/* ToTensor + Normalize: ((float)x / 255 - mean) / std per channel. The value depends on the
 * uint8 x only, so it comes from a 256-entry table per channel holding exactly that float
 * expression (same bits as computing it per value, without two divisions per value). */
struct norm_lut {
    float mean[3], std[3];
    int valid;
    float v[3][256];
};

static void norm_lut_fill(struct norm_lut *t, const float mean[3], const float std[3])
{
    if (t->valid && !memcmp(t->mean, mean, sizeof t->mean) && !memcmp(t->std, std, sizeof t->std))
        return;
    for (int c = 0; c < 3; c++) {
        for (int x = 0; x < 256; x++) t->v[c][x] = ((float)x / 255.0f - mean[c]) / std[c];
        t->mean[c] = mean[c];
        t->std[c] = std[c];
    }
    t->valid = 1;
}

/* img (H, W, 3) uint8 -> out (3, H, W) float, mirrored left-right when flip (the deferred
 * RandomHorizontalFlip: every op between the flip and here commutes with it exactly). */
static void normalize_flip(const struct sg_image *img, const struct norm_lut *t, int flip,
                           float *out)
{
    const int W = img->w, H = img->h;
    const size_t plane = (size_t)W * H;
    const float *l0 = t->v[0], *l1 = t->v[1], *l2 = t->v[2];
    for (int y = 0; y < H; y++) {
        const uint8_t *row = img->px + (size_t)y * W * 3;
        float *o0 = out + (size_t)y * W, *o1 = o0 + plane, *o2 = o1 + plane;
        if (flip) {
            const uint8_t *p = row + (size_t)(W - 1) * 3;
            for (int x = 0; x < W; x++, p -= 3)
                o0[x] = l0[p[0]], o1[x] = l1[p[1]], o2[x] = l2[p[2]];
        } else {
            const uint8_t *p = row;
            for (int x = 0; x < W; x++, p += 3)
                o0[x] = l0[p[0]], o1[x] = l1[p[1]], o2[x] = l2[p[2]];
        }
    }
}

void sg_tf_normalize(const struct sg_image *img, const float mean[3], const float std[3],
                     float *out)
{
    struct norm_lut t;
    t.valid = 0;
    norm_lut_fill(&t, mean, std);
    normalize_flip(img, &t, 0, out);
}

/* ---- random parameters ------------------------------------------------------------------- */

/* torch.empty(1).uniform_(a, b): u * (b - a) + a, which torch's build computes with one fused
 * multiply-add (written out here, so Debug builds that do not contract agree too) */
static float uniform1(struct sg_rng *rng, float a, float b)
{
    return fmaf(sg_rng_float(rng), b - a, a);
}

/* torch.randint(0, n, (1,)) for n < 2^32 */
static int randint(struct sg_rng *rng, int n)
{
    return (int)(sg_rng_u32(rng) % (uint32_t)n);
}

void sg_tf_rrc_params(struct sg_rng *rng, int H, int W, const float scale[2], const float ratio[2],
                      int *top, int *left, int *h, int *w)
{
    const double area = (double)H * (double)W;
    const float lr0 = logf(ratio[0]), lr1 = logf(ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (double)uniform1(rng, scale[0], scale[1]);
        double aspect = (double)expf(uniform1(rng, lr0, lr1));
        int cw = (int)nearbyint(sqrt(target * aspect));
        int ch = (int)nearbyint(sqrt(target / aspect));
        if (cw > 0 && cw <= W && ch > 0 && ch <= H) {
            *top = randint(rng, H - ch + 1);
            *left = randint(rng, W - cw + 1);
            *h = ch;
            *w = cw;
            return;
        }
    }
    /* fallback: central crop at the nearest allowed ratio */
    double in_ratio = (double)W / (double)H;
    double rmin = fmin(ratio[0], ratio[1]), rmax = fmax(ratio[0], ratio[1]);
    if (in_ratio < rmin) {
        *w = W;
        *h = (int)nearbyint(W / rmin);
    } else if (in_ratio > rmax) {
        *h = H;
        *w = (int)nearbyint(H * rmax);
    } else {
        *w = W;
        *h = H;
    }
    *top = (H - *h) / 2;
    *left = (W - *w) / 2;
}

/* torch.randperm(n) on CPU for small n: swap i with i + random() % (n - i) */
static void randperm(struct sg_rng *rng, int *p, int n)
{
    for (int i = 0; i < n; i++) p[i] = i;
    for (int i = 0; i < n - 1; i++) {
        int z = (int)(sg_rng_u32(rng) % (uint32_t)(n - i));
        int t = p[i];
        p[i] = p[i + z];
        p[i + z] = t;
    }
}

/* The double a config value came from: its shortest decimal form (0.8f -> 0.8), so jitter
 * ranges equal torchvision's (1 - 0.8 computed in double, then rounded to float). */
static double decimal_of(float f)
{
    char s[32];
    for (int prec = 1; prec < 10; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, (double)f);
        double d = strtod(s, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

/* ---- the pipeline ------------------------------------------------------------------------ */

static void color_jitter(const struct sg_aug_config *cfg, struct sg_rng *rng, struct sg_image *img)
{
    int order[4];
    randperm(rng, order, 4);
    float f[4] = {0}, amount[4] = {cfg->brightness, cfg->contrast, cfg->saturation, cfg->hue};
    for (int k = 0; k < 4; k++) {
        if (amount[k] <= 0.0f) continue; /* torchvision: None, no draw */
        double a = decimal_of(amount[k]);
        if (k == 3)
            f[k] = uniform1(rng, (float)-a, (float)a);
        else
            f[k] = uniform1(rng, (float)fmax(0.0, 1.0 - a), (float)(1.0 + a));
    }
    for (int k = 0; k < 4; k++) {
        int op = order[k];
        if (amount[op] <= 0.0f) continue;
        switch (op) {
        case 0:
            sg_tf_brightness(img, f[0]);
            break;
        case 1:
            sg_tf_contrast(img, f[1]);
            break;
        case 2:
            sg_tf_saturation(img, f[2]);
            break;
        default:
            sg_tf_hue(img, f[3]);
            break;
        }
    }
}

int sg_aug_blur_kernel(int size)
{
    int k = (int)(0.1 * size);
    return k % 2 ? k : k + 1;
}

/* Every step of sg_augment before ToTensor + Normalize: the augmented uint8 image (scratch
 * memory) and whether it is to be mirrored (the deferred flip). */
static const struct sg_image *augment_pixels(const struct sg_aug_config *cfg, struct sg_rng *rng,
                                             const struct sg_image *in, struct sg_aug_scratch *s,
                                             int *flip_out)
{
    SG_CHECK(in->w > 0 && in->h > 0 && in->px, "sg_augment on an empty image (failed decode?)");
    const int size = cfg->size;
    struct sg_image *img = &s->b;
    if (cfg->scale[1] == 0.0f) { /* eval: Resize(int(size / crop_pct)) + CenterCrop(size) */
        int shorter = (int)((double)size / (double)cfg->crop_pct);
        resize_shorter(in, shorter, cfg->interp, cfg->antialias, &s->a, &s->rs);
        sg_tf_center_crop(&s->a, size, img);
    } else {
        int top, left, h, w;
        sg_tf_rrc_params(rng, in->h, in->w, cfg->scale, cfg->ratio, &top, &left, &h, &w);
        resized_crop(in, top, left, h, w, size, size, cfg->interp, cfg->antialias, img, &s->rs);
    }
    /* torchvision draws only for transforms present in the Compose (p > 0 here). The flip is
     * applied by the final normalize pass: the colour ops are per pixel (contrast's mean is an
     * exact integer sum), and the blur's kernel and reflect padding are symmetric with the
     * mirrored taps added as (left + right), so every later step commutes with it bit for bit */
    const int flip = cfg->hflip_p > 0.0f && sg_rng_float(rng) < cfg->hflip_p;
    if (cfg->jitter_p > 0.0f && !(cfg->jitter_p < sg_rng_float(rng))) /* RandomApply */
        color_jitter(cfg, rng, img);
    if (cfg->gray_p > 0.0f && sg_rng_float(rng) < cfg->gray_p) sg_tf_grayscale(img);
    if (cfg->blur_p > 0.0f && !(cfg->blur_p < sg_rng_float(rng))) {
        float sigma = uniform1(rng, cfg->blur_sigma[0], cfg->blur_sigma[1]);
        gaussian_blur(img, sg_aug_blur_kernel(size), sigma, &s->blur, &s->blur_cap);
    }
    if (cfg->solarize_p > 0.0f && sg_rng_float(rng) < cfg->solarize_p)
        sg_tf_solarize(img, (int)ceilf(cfg->solarize_threshold));
    *flip_out = flip;
    return img;
}

void sg_augment(const struct sg_aug_config *cfg, struct sg_rng *rng, const struct sg_image *in,
                float *out, struct sg_aug_scratch *s)
{
    int flip;
    const struct sg_image *img = augment_pixels(cfg, rng, in, s, &flip);
    if (!s->norm) s->norm = sg_xcalloc(1, sizeof(struct norm_lut));
    norm_lut_fill(s->norm, cfg->mean, cfg->std);
    normalize_flip(img, s->norm, flip, out);
}

/* img (H, W, 3) -> out (3, H, W) uint8, mirrored left-right when flip. */
static void planar_flip(const struct sg_image *img, int flip, uint8_t *out)
{
    const int W = img->w, H = img->h;
    const size_t plane = (size_t)W * H;
    for (int y = 0; y < H; y++) {
        const uint8_t *row = img->px + (size_t)y * W * 3;
        uint8_t *o0 = out + (size_t)y * W, *o1 = o0 + plane, *o2 = o1 + plane;
        if (flip) {
            const uint8_t *p = row + (size_t)(W - 1) * 3;
            for (int x = 0; x < W; x++, p -= 3) o0[x] = p[0], o1[x] = p[1], o2[x] = p[2];
        } else {
            const uint8_t *p = row;
            for (int x = 0; x < W; x++, p += 3) o0[x] = p[0], o1[x] = p[1], o2[x] = p[2];
        }
    }
}

void sg_augment_u8(const struct sg_aug_config *cfg, struct sg_rng *rng, const struct sg_image *in,
                   uint8_t *out, struct sg_aug_scratch *s)
{
    int flip;
    const struct sg_image *img = augment_pixels(cfg, rng, in, s, &flip);
    planar_flip(img, flip, out);
}
