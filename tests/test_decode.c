/*
 * tests/test_decode.c — data/image.c: JPEG/PNG decoding equals PIL's (exact, checksums of every
 * pixel), DCT-domain downscaling picks the right TurboJPEG factor, CMYK/palette/alpha/16-bit
 * conversions, max_pixels rejection before allocation, and hostile inputs (empty, random bytes,
 * every truncation of a small JPEG and PNG, mutated bytes, 65535x65535 headers): -1 with a
 * message, never a crash.
 * References: tests/ref/gen_decode.py -> tests/ref/data/decode.safetensors. The photo part reads
 * ../shared/data (SG_SHARED_DATA_DIR) and is skipped with a message when it is absent.
 */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "data/image.h"
#include "tests/testutil.h"

#ifndef SG_SHARED_DATA_DIR
#define SG_SHARED_DATA_DIR "../shared/data"
#endif

static const char *const photos[] = {"rocket.jpg",
                                     "hubble_deep_field.jpg",
                                     "retina.jpg",
                                     "astronaut.png",
                                     "chelsea.png",
                                     "coffee.png",
                                     "camera.png",
                                     "flickr8k_orig_1030985833_b0902ea560.jpg",
                                     "flickr8k_orig_1056359656_662cee0814.jpg",
                                     "flickr8k_orig_1024138940_f1fefbdce1.jpg",
                                     "flickr8k_orig_1084104085_3b06223afe.jpg"};
/* README sizes, width x height */
static const int photo_wh[][2] = {{640, 427}, {1000, 872}, {1411, 1411}, {512, 512},
                                  {451, 300}, {600, 400},  {512, 512},   {500, 375},
                                  {375, 500}, {500, 333},  {333, 500}};

/* ---- helpers --------------------------------------------------------------------------- */

static const uint8_t *ref_u8(const struct sg_st_file *f, const char *name, int64_t *n)
{
    const struct sg_st_entry *e = sg_st_find(f, name);
    if (!e || e->dtype != SG_U8) {
        fprintf(stderr, "FAIL reference %s missing or not U8 (rerun tests/ref/gen_decode.py)\n",
                name);
        exit(1);
    }
    *n = (int64_t)(e->end - e->begin);
    return sg_st_raw(f, e);
}

static void image_checksums(const struct sg_image *im, int64_t sum[3], int64_t *wsum)
{
    size_t n = (size_t)im->w * (size_t)im->h * 3;
    sum[0] = sum[1] = sum[2] = 0;
    *wsum = 0;
    for (size_t i = 0; i < n; i++) {
        sum[i % 3] += im->px[i];
        *wsum += (int64_t)im->px[i] * (int64_t)(i % 65521 + 1);
    }
}

/* Compares a decoded image with NAME.{size,sum,wsum,crop}: every pixel through the weighted
 * checksum, and the centre crop element by element (printed on mismatch). */
static void check_against_ref(const struct sg_st_file *ref, const char *name,
                              const struct sg_image *im)
{
    char key[256], label[300];
    snprintf(key, sizeof key, "%s.size", name);
    int64_t *size = sg_test_ref_i64(ref, key, 2);
    snprintf(label, sizeof label, "%s: size %dx%d (PIL %lldx%lld)", name, im->w, im->h,
             (long long)size[1], (long long)size[0]);
    if (!sg_test_true(label, im->h == size[0] && im->w == size[1])) {
        sg_afree(size);
        return;
    }
    sg_afree(size);
    int64_t sum[3], wsum;
    image_checksums(im, sum, &wsum);
    snprintf(key, sizeof key, "%s.sum", name);
    int64_t *rsum = sg_test_ref_i64(ref, key, 3);
    snprintf(key, sizeof key, "%s.wsum", name);
    int64_t *rwsum = sg_test_ref_i64(ref, key, 1);
    snprintf(label, sizeof label, "%s: every pixel equals PIL's (checksums %lld %lld %lld / %lld)",
             name, (long long)sum[0], (long long)sum[1], (long long)sum[2], (long long)wsum);
    sg_test_true(label,
                 sum[0] == rsum[0] && sum[1] == rsum[1] && sum[2] == rsum[2] && wsum == rwsum[0]);
    sg_afree(rsum);
    sg_afree(rwsum);
    /* centre crop, element-wise (readable diagnostics when the checksums differ) */
    snprintf(key, sizeof key, "%s.crop", name);
    int64_t n;
    const uint8_t *crop = ref_u8(ref, key, &n);
    int cy = SG_MAX(0, im->h / 2 - 8), cx = SG_MAX(0, im->w / 2 - 8);
    int ch = SG_MIN(16, im->h - cy), cw = SG_MIN(16, im->w - cx);
    float got[16 * 16 * 3], want[16 * 16 * 3];
    int k = 0;
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw * 3; x++, k++) {
            got[k] = im->px[((size_t)(cy + y) * im->w + cx) * 3 + x];
            want[k] = crop[k];
        }
    snprintf(label, sizeof label, "%s: centre crop", name);
    if (k == n)
        sg_test_close(label, got, want, k, 0, 0);
    else
        sg_test_true(label, 0);
}

/* ---- shared-data photos ---------------------------------------------------------------- */

static int shared_data_present(void)
{
    return access(SG_SHARED_DATA_DIR "/photos/README.md", R_OK) == 0;
}

static void test_photos(struct sg_decoder *d, const struct sg_st_file *ref)
{
    struct sg_image im = {0};
    char path[512], label[300];
    for (size_t i = 0; i < sizeof photos / sizeof photos[0]; i++) {
        snprintf(path, sizeof path, "%s/photos/%s", SG_SHARED_DATA_DIR, photos[i]);
        int rc = sg_decode_file(d, path, NULL, &im);
        snprintf(label, sizeof label, "decode %s (%dx%d as in the README)", photos[i],
                 photo_wh[i][0], photo_wh[i][1]);
        if (rc) fprintf(stderr, "  %s\n", sg_last_error());
        if (!sg_test_true(label, rc == 0 && im.w == photo_wh[i][0] && im.h == photo_wh[i][1]))
            continue;
        check_against_ref(ref, photos[i], &im);
    }
    static const char *const extra[][2] = {
        {"inette_rgb", "imagenette/train/n01440764/ILSVRC2012_val_00016018.jpg"},
        {"inette_gray", "imagenette/train/n02102040/n02102040_173.jpg"}};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", SG_SHARED_DATA_DIR, extra[i][1]);
        int rc = sg_decode_file(d, path, NULL, &im);
        snprintf(label, sizeof label, "decode %s", extra[i][1]);
        if (rc) fprintf(stderr, "  %s\n", sg_last_error());
        if (sg_test_true(label, rc == 0)) check_against_ref(ref, extra[i][0], &im);
    }
    /* truncated.jpg: must fail with a message naming the problem */
    snprintf(path, sizeof path, "%s/photos/truncated.jpg", SG_SHARED_DATA_DIR);
    int rc = sg_decode_file(d, path, NULL, &im);
    printf("     truncated.jpg -> \"%s\"\n", rc ? sg_last_error() : "(decoded!)");
    sg_test_true("truncated.jpg fails with a 'truncated JPEG' message",
                 rc == -1 && strstr(sg_last_error(), "truncated JPEG") != NULL);
    sg_image_free(&im);
}

/* DCT-domain downscaling: PIL's draft at 1/k equals our decode at the min_side that makes
 * 1/k the largest allowed reduction. */
static void test_scaled(struct sg_decoder *d, const struct sg_st_file *ref)
{
    static const struct {
        const char *name;
        int k;
    } cases[] = {{"retina.jpg", 2}, {"retina.jpg", 4},
                 {"retina.jpg", 8}, {"hubble_deep_field.jpg", 2},
                 {"rocket.jpg", 4}, {"flickr8k_orig_1056359656_662cee0814.jpg", 8}};
    struct sg_image im = {0};
    char path[512], key[300];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int w = 0, h = 0;
        for (size_t j = 0; j < sizeof photos / sizeof photos[0]; j++)
            if (!strcmp(photos[j], cases[i].name)) w = photo_wh[j][0], h = photo_wh[j][1];
        int k = cases[i].k;
        struct sg_decode_opts o = {0, (SG_MIN(w, h) + k - 1) / k};
        snprintf(path, sizeof path, "%s/photos/%s", SG_SHARED_DATA_DIR, cases[i].name);
        int rc = sg_decode_file(d, path, &o, &im);
        snprintf(key, sizeof key, "%s@1_%d", cases[i].name, k);
        if (rc) fprintf(stderr, "  %s\n", sg_last_error());
        if (sg_test_true(key, rc == 0)) check_against_ref(ref, key, &im);
    }
    sg_image_free(&im);
}

/* ---- synthetic images (no shared data needed) -------------------------------------------- */

/* A smooth colour pattern with some texture, (h, w, 3). */
static void make_pattern(struct sg_image *im, int w, int h)
{
    im->w = w;
    im->h = h;
    im->cap = (size_t)w * h * 3;
    im->px = sg_xmalloc(im->cap);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = im->px + ((size_t)y * w + x) * 3;
            int t = ((x / 3 + y / 3) % 2) * 24; /* luma texture survives 4:2:0 */
            p[0] = (uint8_t)(x * 200 / (w - 1) + t);
            p[1] = (uint8_t)(y * 200 / (h - 1) + t);
            p[2] = (uint8_t)((x + y) * 200 / (w + h - 2) + t);
        }
}

/* Writes an 8- or 16-bit RGB or gray PNG (optionally Adam7-interlaced) with libpng. */
struct membuf {
    uint8_t *p;
    size_t n, cap;
};

static void png_write_mem(png_structp png, png_bytep data, size_t n)
{
    struct membuf *m = png_get_io_ptr(png);
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2;
        m->p = sg_xrealloc(m->p, m->cap);
    }
    memcpy(m->p + m->n, data, n);
    m->n += n;
}

static void png_flush_mem(png_structp png)
{
    SG_UNUSED(png);
}

static struct membuf write_png(const uint8_t *px, int w, int h, int gray, int depth, int interlace)
{
    struct membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    SG_CHECK(png && info && !setjmp(png_jmpbuf(png)), "libpng write setup failed");
    png_set_write_fn(png, &m, png_write_mem, png_flush_mem);
    int ch = gray ? 1 : 3, bps = depth / 8;
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth,
                 gray ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    uint8_t *rows = sg_xmalloc((size_t)w * h * ch * bps);
    png_bytep *rp = sg_xmalloc(sizeof(png_bytep) * h);
    for (int y = 0; y < h; y++) {
        rp[y] = rows + (size_t)y * w * ch * bps;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                uint8_t v = px[((size_t)y * w + x) * 3 + c];
                uint8_t *o = rp[y] + ((size_t)x * ch + c) * bps;
                o[0] = v;
                if (bps == 2) o[1] = (uint8_t)(255 - v); /* low byte: must be dropped */
            }
    }
    png_write_image(png, rp);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(rp);
    return m;
}

static void test_dct_factor(struct sg_decoder *d)
{
    struct sg_image src = {0}, im = {0};
    make_pattern(&src, 640, 480);
    uint8_t *jpg;
    size_t n;
    SG_CHECK(sg_encode_jpeg(d, &src, 90, &jpg, &n) == 0, "%s", sg_last_error());
    /* min_side -> expected size: largest reduction keeping the shorter side >= min_side */
    static const int cases[][3] = {
        {0, 640, 480},   {224, 320, 240}, {100, 160, 120},  {300, 400, 300}, {360, 480, 360},
        {420, 560, 420}, {480, 640, 480}, {1000, 640, 480}, {60, 80, 60},    {1, 80, 60}};
    char label[160];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sg_decode_opts o = {0, cases[i][0]};
        int rc = sg_decode(d, jpg, n, &o, &im);
        snprintf(label, sizeof label, "DCT scaling 640x480, min_side %d -> %dx%d (got %dx%d)",
                 cases[i][0], cases[i][1], cases[i][2], im.w, im.h);
        sg_test_true(label, rc == 0 && im.w == cases[i][1] && im.h == cases[i][2]);
    }
    /* round trip: q90 4:2:0 of a smooth pattern is close to the source */
    SG_CHECK(sg_decode(d, jpg, n, NULL, &im) == 0, "%s", sg_last_error());
    double mad = 0;
    for (size_t i = 0; i < src.cap; i++) mad += abs((int)im.px[i] - (int)src.px[i]);
    mad /= (double)src.cap;
    snprintf(label, sizeof label, "sg_encode_jpeg q90 round trip: mean |diff| %.2f < 4", mad);
    sg_test_true(label, mad < 4.0);
    free(jpg);
    sg_image_free(&src);
    sg_image_free(&im);
}

static void test_generated(struct sg_decoder *d, const struct sg_st_file *ref)
{
    static const char *const names[] = {"cmyk", "rgba", "la", "pal", "rgb16"};
    static const char *const what[] = {"Adobe CMYK JPEG", "RGBA PNG (alpha dropped)",
                                       "gray+alpha PNG", "palette PNG", "16-bit RGB PNG"};
    struct sg_image im = {0};
    char key[64], label[160];
    for (int i = 0; i < 5; i++) {
        int64_t n, nrgb;
        snprintf(key, sizeof key, "gen.%s.bytes", names[i]);
        const uint8_t *bytes = ref_u8(ref, key, &n);
        snprintf(key, sizeof key, "gen.%s.rgb", names[i]);
        const uint8_t *rgb = ref_u8(ref, key, &nrgb);
        int rc = sg_decode(d, bytes, (size_t)n, NULL, &im);
        if (rc) fprintf(stderr, "  %s\n", sg_last_error());
        snprintf(label, sizeof label, "%s decodes to 48x40", what[i]);
        if (!sg_test_true(label, rc == 0 && im.w == 48 && im.h == 40 && nrgb == 48 * 40 * 3))
            continue;
        float *got = sg_xmalloc(sizeof(float) * nrgb), *want = sg_xmalloc(sizeof(float) * nrgb);
        for (int64_t k = 0; k < nrgb; k++) got[k] = im.px[k], want[k] = rgb[k];
        snprintf(label, sizeof label, "%s equals PIL's convert(\"RGB\")", what[i]);
        sg_test_close(label, got, want, nrgb, 0, 0);
        free(got);
        free(want);
    }
    /* libpng-written: interlaced RGB, 8- and 16-bit gray */
    struct sg_image src = {0};
    make_pattern(&src, 37, 29);
    for (int v = 0; v < 3; v++) {
        int gray = v > 0, depth = v == 2 ? 16 : 8, inter = v == 0;
        struct membuf m = write_png(src.px, 37, 29, gray, depth, inter);
        int rc = sg_decode(d, m.p, m.n, NULL, &im);
        int ok = rc == 0 && im.w == 37 && im.h == 29;
        for (int k = 0; ok && k < 37 * 29 * 3; k++)
            ok = im.px[k] == (gray ? src.px[k / 3 * 3] : src.px[k]);
        snprintf(label, sizeof label, "%s PNG (%d-bit%s) decodes exactly", gray ? "gray" : "RGB",
                 depth, inter ? ", Adam7 interlaced" : "");
        sg_test_true(label, ok);
        free(m.p);
    }
    sg_image_free(&src);
    sg_image_free(&im);
}

/* ---- limits and hostile input ---------------------------------------------------------- */

static int expect_fail(struct sg_decoder *d, const uint8_t *buf, size_t n,
                       const struct sg_decode_opts *o, struct sg_image *im)
{
    sg_clear_error();
    int rc = sg_decode(d, buf, n, o, im);
    return rc == -1 && sg_last_error()[0] != '\0';
}

static void test_max_pixels(struct sg_decoder *d)
{
    struct sg_image src = {0};
    make_pattern(&src, 640, 480);
    uint8_t *jpg;
    size_t n;
    SG_CHECK(sg_encode_jpeg(d, &src, 90, &jpg, &n) == 0, "%s", sg_last_error());
    struct membuf png = write_png(src.px, 640, 480, 0, 8, 0);
    struct sg_decode_opts o = {640 * 480 - 1, 0};
    struct sg_image im = {0};
    int ok = expect_fail(d, jpg, n, &o, &im);
    printf("     -> \"%s\"\n", sg_last_error());
    sg_test_true("max_pixels rejects a 640x480 JPEG before allocating",
                 ok && strstr(sg_last_error(), "max_pixels") && im.px == NULL);
    ok = expect_fail(d, png.p, png.n, &o, &im);
    sg_test_true("max_pixels rejects a 640x480 PNG before allocating",
                 ok && strstr(sg_last_error(), "max_pixels") && im.px == NULL);
    o.max_pixels = 640 * 480;
    sg_test_true("max_pixels = w*h is allowed", sg_decode(d, jpg, n, &o, &im) == 0);
    sg_image_free(&im);

    /* headers claiming 20000x20000 and 65535x65535 (default max_pixels): SOF0 patched */
    size_t sof = 0;
    for (size_t i = 0; i + 9 < n && !sof; i++)
        if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) sof = i;
    SG_CHECK(sof > 0, "no SOF0 marker in the test JPEG");
    jpg[sof + 5] = jpg[sof + 7] = 20000 >> 8, jpg[sof + 6] = jpg[sof + 8] = 20000 & 255;
    ok = expect_fail(d, jpg, n, NULL, &im);
    printf("     -> \"%s\"\n", sg_last_error());
    sg_test_true("JPEG header claiming 20000x20000: -1 (max_pixels), nothing allocated",
                 ok && strstr(sg_last_error(), "max_pixels") && im.px == NULL);
    jpg[sof + 5] = jpg[sof + 6] = jpg[sof + 7] = jpg[sof + 8] = 0xff;
    ok = expect_fail(d, jpg, n, NULL, &im);
    printf("     -> \"%s\"\n", sg_last_error());
    sg_test_true("JPEG header claiming 65535x65535: -1, nothing allocated", ok && im.px == NULL);
    memset(png.p + 16, 0, 8);
    png.p[18] = png.p[19] = png.p[22] = png.p[23] = 0xff;
    uint32_t crc = (uint32_t)crc32(0, png.p + 12, 17);
    png.p[29] = (uint8_t)(crc >> 24), png.p[30] = (uint8_t)(crc >> 16);
    png.p[31] = (uint8_t)(crc >> 8), png.p[32] = (uint8_t)crc;
    ok = expect_fail(d, png.p, png.n, NULL, &im);
    printf("     -> \"%s\"\n", sg_last_error());
    sg_test_true("PNG IHDR claiming 65535x65535: -1 (max_pixels), nothing allocated",
                 ok && strstr(sg_last_error(), "max_pixels") && im.px == NULL);
    free(jpg);
    free(png.p);
    sg_image_free(&src);
}

static uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_hostile(struct sg_decoder *d)
{
    struct sg_image im = {0};
    uint8_t one = 0xff, junk[4096];
    sg_test_true("NULL buffer: -1 with a message", expect_fail(d, NULL, 0, NULL, &im));
    sg_test_true("empty buffer: -1 with a message", expect_fail(d, junk, 0, NULL, &im));
    sg_test_true("1-byte buffer: -1 with a message", expect_fail(d, &one, 1, NULL, &im));
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int ok = 1;
    for (int t = 0; t < 200; t++) {
        size_t n = 1 + xs(&s) % sizeof junk;
        for (size_t i = 0; i < n; i++) junk[i] = (uint8_t)xs(&s);
        if (t % 3 == 1 && n > 3) junk[0] = 0xff, junk[1] = 0xd8, junk[2] = 0xff; /* JPEG magic */
        if (t % 3 == 2 && n > 8) memcpy(junk, "\x89PNG\r\n\x1a\n", 8);           /* PNG magic */
        ok &= expect_fail(d, junk, n, NULL, &im);
    }
    sg_test_true("200 random buffers (plain, JPEG magic, PNG magic): all -1 with a message", ok);

    /* every truncation of a small valid JPEG and PNG */
    struct sg_image src = {0};
    make_pattern(&src, 32, 24);
    uint8_t *jpg;
    size_t n;
    SG_CHECK(sg_encode_jpeg(d, &src, 85, &jpg, &n) == 0, "%s", sg_last_error());
    char label[200];
    size_t bad = 0, first_bad = 0;
    for (size_t len = 0; len < n; len++) {
        uint8_t *cut = sg_xmalloc(len ? len : 1); /* exact size: ASan sees any overread */
        memcpy(cut, jpg, len);
        if (!expect_fail(d, cut, len, NULL, &im) && !bad++) first_bad = len;
        free(cut);
    }
    snprintf(
        label, sizeof label,
        "all %zu truncations of a %zu-byte JPEG: -1 with a message (%zu decoded, first at %zu)", n,
        n, bad, first_bad);
    sg_test_true(label, bad == 0);
    sg_test_true("the untruncated JPEG decodes", sg_decode(d, jpg, n, NULL, &im) == 0);
    for (int inter = 0; inter < 2; inter++) {
        struct membuf png = write_png(src.px, 32, 24, 0, 8, inter);
        bad = 0;
        for (size_t len = 0; len < png.n; len++) {
            uint8_t *cut = sg_xmalloc(len ? len : 1);
            memcpy(cut, png.p, len);
            if (!expect_fail(d, cut, len, NULL, &im) && !bad++) first_bad = len;
            free(cut);
        }
        snprintf(label, sizeof label,
                 "all %zu truncations of a %zu-byte %sPNG: -1 with a message (%zu decoded)", png.n,
                 png.n, inter ? "interlaced " : "", bad);
        sg_test_true(label, bad == 0);
        free(png.p);
    }
    /* random byte mutations: any result is fine, a crash or an overread is not (ASan build) */
    int decoded = 0, failed = 0;
    for (int t = 0; t < 500; t++) {
        uint8_t *mut = sg_xmalloc(n);
        memcpy(mut, jpg, n);
        int flips = 1 + (int)(xs(&s) % 4);
        for (int f = 0; f < flips; f++) mut[xs(&s) % n] = (uint8_t)xs(&s);
        if (sg_decode(d, mut, n, NULL, &im) == 0) {
            decoded += im.w > 0 && im.h > 0;
        } else {
            failed++;
        }
        free(mut);
    }
    snprintf(label, sizeof label, "500 mutated JPEGs: no crash (%d decoded, %d rejected)", decoded,
             failed);
    sg_test_true(label, decoded + failed == 500);
    free(jpg);
    sg_image_free(&src);
    sg_image_free(&im);
}

int main(void)
{
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "decode.safetensors");
    struct sg_decoder *d = sg_decoder_new();
    if (shared_data_present()) {
        test_photos(d, &ref);
        test_scaled(d, &ref);
    } else {
        printf("skip photo decoding vs PIL: %s not found (the shared data folder is absent)\n",
               SG_SHARED_DATA_DIR "/photos");
    }
    test_generated(d, &ref);
    test_dct_factor(d);
    test_max_pixels(d);
    test_hostile(d);
    sg_decoder_free(d);
    sg_st_close(&ref);
    return sg_test_summary("test_decode");
}
