/*
 * data/transforms.h — image augmentations with torchvision semantics, on 8-bit RGB images
 * (data/image.h) producing normalized float CHW tensors.
 *
 * Random transforms draw from a caller-given struct sg_rng (core/rng.h), seeded per sample by
 * the loader from (seed, epoch, index), so results do not depend on thread scheduling.
 * Every random transform has a deterministic core taking explicit parameters (crop box,
 * jitter factors, blur sigma, ...) — those cores are what the tests compare with torchvision's
 * functional API (tests/ref/gen_transforms.py).
 *
 * Semantics (torchvision 0.14, PIL/tensor backends agree up to rounding):
 *   RandomResizedCrop(size, scale, ratio, interpolation, antialias): torchvision's get_params
 *     (10 attempts with log-uniform ratio, fallback to the central crop), then resize of the
 *     crop to size x size; bilinear or bicubic, with antialiasing when downscaling.
 *   Resize(shorter side) + CenterCrop (evaluation transform), same resampling.
 *   RandomHorizontalFlip(p); ColorJitter(brightness, contrast, saturation, hue) in a random
 *     order per sample as torchvision; RandomGrayscale(p) (ITU-R 601-2 luma, 3 channels);
 *     GaussianBlur(kernel, sigma range) with reflect padding; RandomSolarization(threshold, p).
 *   Normalize: out = (x/255 - mean) / std per channel; CLIP or ImageNet constants.
 * Presets: SG_AUG_CLIP (open_clip train: RandomResizedCrop scale (0.9, 1.0), bicubic, CLIP
 * mean/std), SG_AUG_SIMCLR (SogCLR/SimCLR view: RRC scale (0.08, 1), flip 0.5, jitter
 * (0.4,0.4,0.4,0.1) p 0.8, gray 0.2, blur p 0.5 (ImageNet) or none (CIFAR: size < 64), ImageNet
 * mean/std),
 * SG_AUG_EVAL (resize shorter side to size/0.875 for ImageNet-style or to size for CLIP, center
 * crop, bicubic for CLIP / bilinear for ImageNet): SG_AUG_EVAL is the ImageNet-style one
 * (crop_pct 0.875, bilinear, ImageNet mean/std), SG_AUG_CLIP_EVAL the CLIP one (crop_pct 1,
 * bicubic, CLIP mean/std). SG_AUG_CUSTOM: eval path, crop_pct 1, mean 0 / std 1, nothing
 * random; fill in the fields wanted. All presets antialias (as torchvision does on PIL images).
 *
 * Order of sg_augment (each random step draws only when its p > 0, as a torchvision Compose
 * that contains it): RandomResizedCrop (or the eval resize + crop), RandomHorizontalFlip,
 * RandomApply([ColorJitter], jitter_p), RandomGrayscale, RandomApply([GaussianBlur], blur_p),
 * RandomSolarize, ToTensor + Normalize. With sg_rng seeded like torch.manual_seed, the output
 * equals that torchvision pipeline on a uint8 tensor (tests/test_transforms.c).
 * uint8 rounding as torchvision's tensor backend: resize and blur round half to even; the
 * colour ops truncate (brightness/contrast/saturation clamp then truncate; grayscale is
 * 0.2989 R + 0.587 G + 0.114 B truncated; hue truncates x*255).
 */
#ifndef SG_DATA_TRANSFORMS_H
#define SG_DATA_TRANSFORMS_H

#include "core/rng.h"
#include "data/image.h"

enum sg_interp { SG_INTERP_BILINEAR, SG_INTERP_BICUBIC };
enum sg_aug_preset { SG_AUG_CLIP, SG_AUG_SIMCLR, SG_AUG_EVAL, SG_AUG_CUSTOM, SG_AUG_CLIP_EVAL };

struct sg_aug_config {
    int size;                 /* output side (square) */
    enum sg_interp interp;    /* resampling */
    int antialias;            /* 1: antialias when downscaling (torchvision antialias=True) */
    float scale[2], ratio[2]; /* RandomResizedCrop; scale[1] == 0: no random crop (eval path) */
    float crop_pct;           /* eval: resize shorter side to size / crop_pct, center crop */
    float hflip_p;
    float jitter_p, brightness, contrast, saturation, hue; /* ColorJitter applied with jitter_p */
    float gray_p;
    float blur_p, blur_sigma[2]; /* kernel = 23 at 224 px (10% of size, odd), as SimCLR */
    float solarize_p, solarize_threshold;
    float mean[3], std[3];
};

/* Fill cfg for a preset at the given output size. */
void sg_aug_preset(struct sg_aug_config *cfg, enum sg_aug_preset preset, int size);

struct sg_aug_scratch; /* per-thread buffers; no allocation per sample once warmed up */
struct sg_aug_scratch *sg_aug_scratch_new(void);
void sg_aug_scratch_free(struct sg_aug_scratch *s);

/* in (H,W,3) RGB -> out (3, size, size) float, normalized. Random parts draw from rng;
 * the eval path (scale[1] == 0) draws nothing. */
void sg_augment(const struct sg_aug_config *cfg, struct sg_rng *rng, const struct sg_image *in,
                float *out, struct sg_aug_scratch *s);

/* sg_augment without ToTensor + Normalize (same draws, same pixels): out (3, size, size) uint8,
 * planar, the horizontal flip applied. Normalising it with cfg->mean / cfg->std as
 * ((float)x / 255 - mean) / std (ops/input.h op_normalize_u8, on the CPU or the GPU) gives
 * sg_augment's output bit for bit. The GPU data path ships these 4x smaller pixels. */
void sg_augment_u8(const struct sg_aug_config *cfg, struct sg_rng *rng, const struct sg_image *in,
                   uint8_t *out, struct sg_aug_scratch *s);

/* GaussianBlur kernel size used by sg_augment: int(0.1 * size), made odd (23 at 224). */
int sg_aug_blur_kernel(int size);

/* Deterministic cores (torchvision.transforms.functional equivalents), uint8 RGB in and out.
 * The crop box of sg_tf_resized_crop must lie inside the image (SG_CHECK); out != in. */
void sg_tf_resized_crop(const struct sg_image *in, int top, int left, int h, int w, int out_h,
                        int out_w, enum sg_interp interp, int antialias, struct sg_image *out);
void sg_tf_resize_shorter(const struct sg_image *in, int shorter, enum sg_interp interp,
                          int antialias, struct sg_image *out);
void sg_tf_center_crop(const struct sg_image *in, int size, struct sg_image *out);
void sg_tf_hflip(struct sg_image *img);
void sg_tf_brightness(struct sg_image *img, float factor);
void sg_tf_contrast(struct sg_image *img, float factor);
void sg_tf_saturation(struct sg_image *img, float factor);
void sg_tf_hue(struct sg_image *img, float shift); /* shift in [-0.5, 0.5] */
void sg_tf_grayscale(struct sg_image *img);
void sg_tf_gaussian_blur(struct sg_image *img, int kernel, float sigma);
void sg_tf_solarize(struct sg_image *img, int threshold);
/* torchvision RandomResizedCrop.get_params */
void sg_tf_rrc_params(struct sg_rng *rng, int H, int W, const float scale[2], const float ratio[2],
                      int *top, int *left, int *h, int *w);
void sg_tf_normalize(const struct sg_image *img, const float mean[3], const float std[3],
                     float *out);

#endif
