/*
 * data/image.c — JPEG (TurboJPEG 2.1 API) and PNG (libpng 1.6) decoding to 8-bit RGB; see
 * image.h. Reference behaviour: PIL's Image.open(...).convert("RGB") with the same
 * libjpeg-turbo (ISLOW IDCT, fancy upsampling), checked by tests/test_decode.c.
 *
 * Error policy: the size is read from the header and checked against max_pixels before any
 * pixel buffer is allocated. TurboJPEG returns -1 for libjpeg warnings too (TJERR_WARNING):
 * a JPEG is accepted only when the warning is one that leaves every pixel intact (extraneous
 * bytes before a marker, unknown JFIF revision, unknown Adobe transform, bad ICC marker: PIL
 * accepts those files too) and an end-of-image marker is present; anything else (premature end
 * of the file or of a segment, bad Huffman code, ...) is an error, "truncated JPEG ..." when
 * the EOI marker is missing, else "corrupt JPEG ...". After a failure the TurboJPEG handle is
 * recreated (2.1 leaves it mid-header otherwise). A PNG must decode through IEND (libpng
 * errors longjmp back here; ancillary-chunk warnings are ignored as PIL does).
 * Exactness: every photo in ../shared/data/photos decodes to PIL's pixels bit for bit (same
 * libjpeg-turbo 2.1.5 on both sides, ISLOW IDCT, fancy upsampling; TJFLAG_ACCURATEDCT).
 */
#include "data/image.h"

#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "core/common.h"

#define SG_DEFAULT_MAX_PIXELS 178956970LL /* PIL's Image.MAX_IMAGE_PIXELS */
#define JMSG_LENGTH_MAX_SG    200         /* libjpeg's JMSG_LENGTH_MAX */

struct sg_decoder {
    tjhandle dec, enc;
    uint8_t *cmyk; /* (h, w, 4) scratch for CMYK/YCCK JPEGs */
    size_t cmyk_cap;
    char *file; /* sg_decode_file buffer */
    size_t file_cap;
};

struct sg_decoder *sg_decoder_new(void)
{
    struct sg_decoder *d = sg_xcalloc(1, sizeof *d);
    d->dec = tjInitDecompress();
    SG_CHECK(d->dec != NULL, "tjInitDecompress failed: %s", tjGetErrorStr2(NULL));
    return d;
}

void sg_decoder_free(struct sg_decoder *d)
{
    if (!d) return;
    if (d->dec) tjDestroy(d->dec);
    if (d->enc) tjDestroy(d->enc);
    free(d->cmyk);
    free(d->file);
    free(d);
}

void sg_image_free(struct sg_image *img)
{
    if (!img) return;
    free(img->px);
    img->px = NULL;
    img->cap = 0;
    img->w = img->h = 0;
}

void sg_image_reserve(struct sg_image *img, int w, int h)
{
    size_t need = (size_t)w * (size_t)h * 3;
    if (need > img->cap) {
        free(img->px);
        img->px = sg_xmalloc(need);
        img->cap = need;
    }
    img->w = w;
    img->h = h;
}

static int64_t max_pixels_of(const struct sg_decode_opts *o)
{
    return (o && o->max_pixels > 0) ? o->max_pixels : SG_DEFAULT_MAX_PIXELS;
}

static int check_size(const char *fmt, int64_t w, int64_t h, const struct sg_decode_opts *o)
{
    if (w <= 0 || h <= 0)
        return sg_err("corrupt %s: header gives size %lldx%lld", fmt, (long long)w, (long long)h);
    int64_t maxp = max_pixels_of(o);
    if (w * h > maxp)
        return sg_err("%s image %lldx%lld exceeds max_pixels %lld (decompression bomb?); raise "
                      "sg_decode_opts.max_pixels to allow it",
                      fmt, (long long)w, (long long)h, (long long)maxp);
    return 0;
}

/* ---- JPEG ------------------------------------------------------------------------------ */

/* libjpeg warnings (jerror.h texts) that leave every pixel intact; PIL ignores them too.
 * Anything else TurboJPEG reports (premature end of file or segment, bad Huffman code, lost
 * RST sync, ...) means missing or garbage pixels. TurboJPEG keeps only the first warning's
 * text and calls it TJERR_WARNING even when a fatal error followed, so the text decides. */
static int warning_is_harmless(const char *msg)
{
    return strstr(msg, "extraneous bytes before marker") || strstr(msg, "unknown JFIF revision") ||
           strstr(msg, "Unknown Adobe color transform") || strstr(msg, "bad ICC marker");
}

/* Largest reduction (smallest scale <= 1) keeping min(w, h) >= min_side; 1/1 when none. */
static tjscalingfactor pick_scale(int w, int h, int min_side)
{
    tjscalingfactor best = {1, 1};
    if (min_side <= 0) return best;
    int n = 0;
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    for (int i = 0; sf && i < n; i++) {
        if (sf[i].num > sf[i].denom) continue; /* upscaling factors */
        int sw = TJSCALED(w, sf[i]), sh = TJSCALED(h, sf[i]);
        if (SG_MIN(sw, sh) < min_side) continue;
        if ((int64_t)sf[i].num * best.denom < (int64_t)best.num * sf[i].denom) best = sf[i];
    }
    return best;
}

/* PIL's cmyk2rgb on Adobe (inverted) CMYK: libjpeg returns the stored, inverted values. */
static void cmyk_to_rgb(const uint8_t *src, uint8_t *dst, size_t npix)
{
    for (size_t i = 0; i < npix; i++) {
        int nk = src[4 * i + 3]; /* = 255 - k */
        for (int c = 0; c < 3; c++) {
            int v = 255 - src[4 * i + c]; /* c, m, y */
            int t = v * nk + 128;
            int r = nk - (((t >> 8) + t) >> 8);
            dst[3 * i + c] = (uint8_t)(r < 0 ? 0 : r);
        }
    }
}

/* An EOI marker (FF D9) near the end: without one, a failure is reported as truncation. */
static int has_eoi(const uint8_t *buf, size_t len)
{
    for (size_t i = len >= 64 ? len - 64 : 0; i + 1 < len; i++)
        if (buf[i] == 0xff && buf[i + 1] == 0xd9) return 1;
    return 0;
}

/* TurboJPEG 2.1 leaves the libjpeg state mid-header after an error in tjDecompressHeader3
 * (later calls then fail too): start from a fresh handle after any failure. */
static int jpeg_fail(struct sg_decoder *d, const uint8_t *buf, size_t len, int w, int h,
                     struct sg_image *out)
{
    char msg[JMSG_LENGTH_MAX_SG];
    snprintf(msg, sizeof msg, "%s", tjGetErrorStr2(d->dec));
    tjDestroy(d->dec);
    d->dec = tjInitDecompress();
    SG_CHECK(d->dec != NULL, "tjInitDecompress failed: %s", tjGetErrorStr2(NULL));
    out->w = out->h = 0;
    const char *what = !has_eoi(buf, len)             ? "truncated JPEG (no end-of-image marker)"
                       : strstr(msg, "Premature end") ? "truncated JPEG"
                                                      : "corrupt JPEG";
    if (w > 0) return sg_err("%s, %dx%d: %s", what, w, h, msg);
    return sg_err("%s: %s", what, msg);
}

static int decode_jpeg(struct sg_decoder *d, const uint8_t *buf, size_t len,
                       const struct sg_decode_opts *o, struct sg_image *out)
{
    int w = 0, h = 0, subsamp = 0, cs = 0;
    if (len > ULONG_MAX) return sg_err("JPEG of %zu bytes is too large", len);
    if (tjDecompressHeader3(d->dec, buf, (unsigned long)len, &w, &h, &subsamp, &cs) != 0) {
        /* a header warning (e.g. extraneous bytes) with a usable size is not fatal */
        if (tjGetErrorCode(d->dec) == TJERR_FATAL || w <= 0 || h <= 0)
            return jpeg_fail(d, buf, len, 0, 0, out);
    }
    if (check_size("JPEG", w, h, o)) return -1;
    tjscalingfactor sf = pick_scale(w, h, o ? o->min_side : 0);
    int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
    int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    uint8_t *dst;
    if (cmyk) {
        size_t need = (size_t)sw * (size_t)sh * 4;
        if (need > d->cmyk_cap) {
            free(d->cmyk);
            d->cmyk = sg_xmalloc(need);
            d->cmyk_cap = need;
        }
        dst = d->cmyk;
    } else {
        sg_image_reserve(out, sw, sh);
        dst = out->px;
    }
    int flags = TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS;
    if (tjDecompress2(d->dec, buf, (unsigned long)len, dst, sw, 0, sh, cmyk ? TJPF_CMYK : TJPF_RGB,
                      flags) != 0) {
        int fatal = tjGetErrorCode(d->dec) == TJERR_FATAL;
        if (fatal || !has_eoi(buf, len) || !warning_is_harmless(tjGetErrorStr2(d->dec)))
            return jpeg_fail(d, buf, len, w, h, out);
    }
    if (cmyk) {
        sg_image_reserve(out, sw, sh);
        cmyk_to_rgb(d->cmyk, out->px, (size_t)sw * (size_t)sh);
    }
    return 0;
}

int sg_encode_jpeg(struct sg_decoder *d, const struct sg_image *img, int quality, uint8_t **out,
                   size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!img || !img->px || img->w <= 0 || img->h <= 0)
        return sg_err("sg_encode_jpeg: empty image");
    if (quality < 1 || quality > 100)
        return sg_err("sg_encode_jpeg: quality %d outside 1..100", quality);
    if (!d->enc) {
        d->enc = tjInitCompress();
        SG_CHECK(d->enc != NULL, "tjInitCompress failed: %s", tjGetErrorStr2(NULL));
    }
    unsigned char *jpg = NULL;
    unsigned long jlen = 0;
    if (tjCompress2(d->enc, img->px, img->w, 0, img->h, TJPF_RGB, &jpg, &jlen, TJSAMP_420, quality,
                    TJFLAG_ACCURATEDCT) != 0) {
        if (jpg) tjFree(jpg);
        return sg_err("JPEG encoding failed: %s", tjGetErrorStr2(d->enc));
    }
    *out = sg_xmalloc(jlen);
    memcpy(*out, jpg, jlen);
    *out_len = jlen;
    tjFree(jpg);
    return 0;
}

/* ---- PNG ------------------------------------------------------------------------------- */

struct png_src {
    const uint8_t *buf;
    size_t len, pos;
    char msg[200];
};

static void png_read_mem(png_structp png, png_bytep dst, size_t n)
{
    struct png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) {
        snprintf(s->msg, sizeof s->msg, "truncated PNG (needs %zu more bytes at offset %zu of %zu)",
                 n - (s->len - s->pos), s->pos, s->len);
        png_error(png, "truncated");
    }
    memcpy(dst, s->buf + s->pos, n);
    s->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
    struct png_src *s = png_get_error_ptr(png);
    if (!s->msg[0]) snprintf(s->msg, sizeof s->msg, "corrupt PNG: %s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    SG_UNUSED(png);
    SG_UNUSED(msg); /* ancillary-chunk trouble: pixels are fine, stay quiet as PIL */
}

static int decode_png(const uint8_t *buf, size_t len, const struct sg_decode_opts *o,
                      struct sg_image *out)
{
    struct png_src src = {buf, len, 0, {0}};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    SG_CHECK(png != NULL, "png_create_read_struct failed");
    png_infop info = png_create_info_struct(png);
    SG_CHECK(info != NULL, "png_create_info_struct failed");
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        out->w = out->h = 0;
        return sg_err("%s", src.msg[0] ? src.msg : "corrupt PNG");
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff); /* we check w*h ourselves */
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (check_size("PNG", w, h, o)) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    SG_CHECK(png_get_rowbytes(png, info) == (size_t)w * 3, "PNG transforms did not give RGB8");
    sg_image_reserve(out, (int)w, (int)h);
    rows = sg_xmalloc(sizeof(png_bytep) * h);
    for (png_uint_32 y = 0; y < h; y++) rows[y] = out->px + (size_t)y * w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL); /* reads through IEND: a truncated file fails here */
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    return 0;
}

/* ---- Entry points ---------------------------------------------------------------------- */

int sg_decode(struct sg_decoder *d, const uint8_t *buf, size_t len, const struct sg_decode_opts *o,
              struct sg_image *out)
{
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (buf && len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return decode_jpeg(d, buf, len, o, out);
    if (buf && len >= 8 && memcmp(buf, png_magic, 8) == 0) return decode_png(buf, len, o, out);
    if (!buf || len < 8) {
        out->w = out->h = 0;
        return sg_err("not a JPEG or PNG image: only %zu bytes", buf ? len : 0);
    }
    out->w = out->h = 0;
    return sg_err("not a JPEG or PNG image (starts with %02x %02x %02x %02x)", buf[0], buf[1],
                  buf[2], buf[3]);
}

int sg_decode_file(struct sg_decoder *d, const char *path, const struct sg_decode_opts *o,
                   struct sg_image *out)
{
    FILE *f = sg_fopen(path, "rb");
    if (!f) return -1;
    int rc = -1;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        sg_err("%s: cannot determine the file size", path);
        goto done;
    }
    if ((size_t)n + 1 > d->file_cap) {
        free(d->file);
        d->file_cap = (size_t)n + 1;
        d->file = sg_xmalloc(d->file_cap);
    }
    if (sg_fread_exact(f, d->file, (size_t)n, path)) goto done;
    rc = sg_decode(d, (const uint8_t *)d->file, (size_t)n, o, out);
    if (rc) sg_err_prefix("%s: ", path);
done:
    fclose(f);
    return rc;
}
