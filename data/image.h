/*
 * data/image.h — image decoding: JPEG through libjpeg-turbo's TurboJPEG API (with DCT-domain
 * downscaling), PNG through libpng. Output is always 8-bit RGB, interleaved (H, W, 3):
 * grayscale and gray+alpha are expanded, CMYK/YCCK JPEGs converted, alpha dropped (composited
 * on black is NOT done: alpha is discarded, as PIL's convert("RGB")), 16-bit PNG reduced to 8.
 *
 * Safety: the pixel count is read from the header and checked against max_pixels BEFORE any
 * pixel buffer is allocated (decompression bombs); truncated or corrupt files return -1 with a
 * message naming the problem (never a crash, never a partially-filled image reported as ok).
 * Runs clean under ASan/UBSan on the bad-data tests.
 *
 * Downscaling: when min_side > 0 and the JPEG is much larger than needed, the decoder picks the
 * largest TurboJPEG scaling factor (1/8, 1/4, 3/8, 1/2, 5/8, 3/4, 7/8, 1) that keeps the
 * shorter side >= min_side, so a 4000x3000 photo for a 224 crop decodes at 1/8 cost.
 *
 * Threads: one struct sg_decoder per thread (it owns the TurboJPEG handle and scratch).
 */
#ifndef SG_DATA_IMAGE_H
#define SG_DATA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

struct sg_image {
    int w, h;    /* pixels */
    uint8_t *px; /* (h, w, 3) RGB; owned, grown on demand (cap bytes) */
    size_t cap;
};

struct sg_decode_opts {
    int64_t max_pixels; /* header w*h above this is an error (0: default 178956970, PIL's limit) */
    int min_side;       /* > 0: allow JPEG DCT downscaling keeping min(w,h) >= min_side */
};

struct sg_decoder; /* opaque: TurboJPEG handle, scratch */

struct sg_decoder *sg_decoder_new(void);
void sg_decoder_free(struct sg_decoder *d);
/* Decode an encoded image held in memory; the format is sniffed from the magic bytes.
 * Returns 0, or -1 with sg_err ("truncated JPEG ...", "not a JPEG or PNG image", "image
 * 20000x20000 exceeds max_pixels ..."). out keeps its buffer between calls. */
int sg_decode(struct sg_decoder *d, const uint8_t *buf, size_t len, const struct sg_decode_opts *o,
              struct sg_image *out);
int sg_decode_file(struct sg_decoder *d, const char *path, const struct sg_decode_opts *o,
                   struct sg_image *out);
/* Encode RGB as JPEG (quality 1..100) into a malloc'd buffer (for `sogclip data shards`). */
int sg_encode_jpeg(struct sg_decoder *d, const struct sg_image *img, int quality, uint8_t **out,
                   size_t *out_len);
void sg_image_free(struct sg_image *img);
/* Grows img's buffer to (h, w, 3) (keeps it when large enough) and sets w, h; the caller has
 * validated the size. */
void sg_image_reserve(struct sg_image *img, int w, int h);

#endif
