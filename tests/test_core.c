/*
 * tests/test_core.c — core: torch-identical RNG, safetensors round trip and hostile-file
 * rejection, parameter table save/load, arenas, fp16/bf16 conversion.
 * References: tests/ref/gen_core.py -> tests/ref/data/core.safetensors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/common.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "tests/testutil.h"

static void test_rng(const struct sg_st_file *ref)
{
    static const int sizes[] = {1, 7, 15, 16, 17, 100, 1000};
    char name[64];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int n = sizes[s];
        float *x = sg_xmalloc(sizeof(float) * (size_t)n);
        struct sg_rng r;
        sg_rng_seed(&r, 42);
        sg_rng_normal(&r, x, n, 0.5f, 2.0f);
        snprintf(name, sizeof name, "normal_%d", n);
        float *want = sg_test_ref(ref, name, n);
        /* torch's AVX2 build computes the 16-wide Box-Muller with vectorised log/cos: equal
         * to a few ulp, not bit-exact; the scalar (n < 16) path is bit-exact. */
        sg_test_close(name, x, want, n, n < 16 ? 0.0f : 1e-5f, n < 16 ? 0.0f : 1e-5f);
        sg_afree(want);
        sg_rng_seed(&r, 7);
        sg_rng_uniform(&r, x, n, -3.0f, 1.0f);
        snprintf(name, sizeof name, "uniform_%d", n);
        want = sg_test_ref(ref, name, n);
        sg_test_close(name, x, want, n, 0.0f, 0.0f);
        sg_afree(want);
        free(x);
    }
    /* Successive calls on one generator (the cached normal of the scalar path included). */
    struct sg_rng r;
    float seq[3 + 5 + 20 + 1];
    sg_rng_seed(&r, 123);
    sg_rng_normal(&r, seq, 3, 0.0f, 1.0f);
    sg_rng_normal(&r, seq + 3, 5, 0.0f, 1.0f);
    sg_rng_uniform(&r, seq + 8, 20, 0.0f, 1.0f);
    sg_rng_normal(&r, seq + 28, 1, 0.0f, 1.0f);
    float *want = sg_test_ref(ref, "sequence", 29);
    sg_test_close("rng sequence", seq, want, 29, 1e-5f, 1e-5f);
    sg_afree(want);
}

static void test_half(const struct sg_st_file *ref)
{
    int64_t n = 0;
    float *src = sg_st_load_f32(ref, "half_src", &n, NULL, NULL);
    float *f16 = sg_test_ref(ref, "half_f16", n); /* F16 tensor, converted by the reader */
    float *b16 = sg_test_ref(ref, "half_bf16", n);
    float *got = sg_xmalloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) got[i] = sg_f16_to_f32(sg_f32_to_f16(src[i]));
    sg_test_close("f32->f16 rounding matches torch .half()", got, f16, n, 0, 0);
    for (int64_t i = 0; i < n; i++) got[i] = sg_bf16_to_f32(sg_f32_to_bf16(src[i]));
    sg_test_close("f32->bf16 rounding matches torch .bfloat16()", got, b16, n, 0, 0);
    sg_test_true("reference metadata readable", sg_st_meta(ref, "generator") != NULL);
    free(got);
    sg_afree(src);
    sg_afree(f16);
    sg_afree(b16);
}

/* Builds a valid image with two tensors, used as the base for corruption tests. */
static void make_image(uint8_t **buf, size_t *len)
{
    struct sg_st_writer w;
    sg_stw_init(&w);
    float a[6] = {1, 2, 3, 4, 5, 6};
    int64_t ia[3] = {7, -8, 9};
    uint8_t u[5] = {1, 2, 3, 250, 255};
    int64_t sa[2] = {2, 3}, si[1] = {3}, su[1] = {5};
    sg_stw_add_f32(&w, "a", 2, sa, a);
    sg_stw_add(&w, "idx", SG_I64, 1, si, ia);
    sg_stw_add(&w, "bytes", SG_U8, 1, su, u);
    sg_stw_meta(&w, "format", "pt");
    sg_stw_meta(&w, "note", "quote \" and \\ and \n newline");
    sg_stw_serialize(&w, buf, len);
    sg_stw_free(&w);
}

static int open_copy(const uint8_t *src, size_t len)
{
    struct sg_st_file f;
    uint8_t *copy = sg_xmalloc(len ? len : 1);
    memcpy(copy, src, len);
    int rc = sg_st_open_buffer(&f, copy, len, "corrupt-test");
    if (rc == 0) sg_st_close(&f);
    return rc;
}

/* Replaces the JSON header of a valid image by `json` (length fixed up). */
static int open_with_header(const char *json, size_t data_len)
{
    size_t hl = strlen(json), len = 8 + hl + data_len;
    uint8_t *buf = sg_xcalloc(1, len);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((hl >> (8 * i)) & 0xff);
    memcpy(buf + 8, json, hl);
    int rc = open_copy(buf, len);
    printf("     rejected with: %s\n", rc ? sg_last_error() : "(accepted)");
    free(buf);
    return rc;
}

static void test_safetensors_roundtrip(void)
{
    uint8_t *buf;
    size_t len;
    make_image(&buf, &len);
    struct sg_st_file f;
    uint8_t *copy = sg_xmalloc(len);
    memcpy(copy, buf, len);
    int rc = sg_st_open_buffer(&f, copy, len, "roundtrip");
    sg_test_true("safetensors: written image parses", rc == 0);
    if (rc == 0) {
        float a[6];
        int64_t idx[3], bytes[5];
        sg_test_true("safetensors: f32 values", sg_st_read_f32(&f, "a", a, 6) == 0 && a[5] == 6);
        sg_test_true("safetensors: i64 values",
                     sg_st_read_i64(&f, "idx", idx, 3) == 0 && idx[1] == -8);
        sg_test_true("safetensors: u8 values",
                     sg_st_read_i64(&f, "bytes", bytes, 5) == 0 && bytes[4] == 255);
        const char *note = sg_st_meta(&f, "note");
        sg_test_true("safetensors: metadata with escapes",
                     note && strcmp(note, "quote \" and \\ and \n newline") == 0);
        sg_test_true("safetensors: header 8-byte aligned", (f.data - f.map) % 8 == 0);
        sg_test_true("safetensors: wrong element count rejected",
                     sg_st_read_f32(&f, "a", a, 5) != 0);
        sg_test_true("safetensors: missing name rejected", sg_st_read_f32(&f, "zz", a, 1) != 0);
        sg_st_close(&f);
    }
    /* Every truncation of a valid file must be rejected, never read past the end. */
    int all = 1;
    for (size_t cut = 0; cut < len; cut++) all &= open_copy(buf, cut) != 0;
    sg_test_true("safetensors: every truncation rejected", all);
    free(buf);
}

static void test_safetensors_hostile(void)
{
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    sg_test_true("hostile: baseline header accepted", open_with_header(ok, 8) == 0);
    uint8_t big[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    sg_test_true("hostile: header length overflow", open_copy(big, sizeof big) != 0);
    sg_test_true("hostile: offsets past the end",
                 open_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                                  "\"data_offsets\":[0,80]}}",
                                  8) != 0);
    sg_test_true("hostile: offsets reversed",
                 open_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],"
                                  "\"data_offsets\":[8,0]}}",
                                  8) != 0);
    sg_test_true("hostile: size does not match shape",
                 open_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],"
                                  "\"data_offsets\":[0,8]}}",
                                  12) != 0);
    sg_test_true("hostile: shape product overflow",
                 open_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,"
                                  "1099511627776],\"data_offsets\":[0,8]}}",
                                  8) != 0);
    sg_test_true("hostile: huge offset integer",
                 open_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":"
                                  "[0,99999999999999999999999]}}",
                                  8) != 0);
    sg_test_true("hostile: unknown dtype",
                 open_with_header("{\"a\":{\"dtype\":\"F64x\",\"shape\":[2],"
                                  "\"data_offsets\":[0,8]}}",
                                  8) != 0);
    sg_test_true(
        "hostile: overlapping tensors",
        open_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                         12) != 0);
    sg_test_true("hostile: duplicate names",
                 open_with_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                                  "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                                  2) != 0);
    sg_test_true("hostile: missing field",
                 open_with_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8) != 0);
    sg_test_true("hostile: unterminated string",
                 open_with_header("{\"a\":{\"dtype\":\"F32", 0) != 0);
    sg_test_true("hostile: deep nesting in unknown field",
                 open_with_header("{\"a\":{\"x\":[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]],"
                                  "\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                                  1) != 0);
    sg_test_true("hostile: trailing garbage", open_with_header("{}xx", 0) != 0);
    sg_test_true("hostile: non-string metadata",
                 open_with_header("{\"__metadata__\":{\"k\":5}}", 0) != 0);
    sg_test_true("hostile: too many dims",
                 open_with_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                                  "\"data_offsets\":[0,1]}}",
                                  1) != 0);
}

static void test_params_roundtrip(void)
{
    struct sg_ctx c;
    sg_ctx_init(&c, SG_DEVICE_CPU, 0, 0);
    struct sg_params ps;
    sg_params_init(&ps);
    int64_t sw[2] = {4, 3}, sb[1] = {4};
    struct sg_param *w =
        sg_params_add(&ps, "layer.weight", 2, sw, SG_PARAM_DECAY | SG_PARAM_INIT_NORMAL, 0.02f);
    struct sg_param *b = sg_params_add(&ps, "layer.bias", 1, sb, SG_PARAM_INIT_ZERO, 0);
    struct sg_param *rm =
        sg_params_add(&ps, "bn.running_var", 1, sb, SG_PARAM_BUFFER | SG_PARAM_INIT_ONE, 0);
    sg_params_alloc(&ps, &c, 1);
    struct sg_rng r;
    sg_rng_seed(&r, 1);
    sg_params_init_values(&ps, &r);
    sg_test_true("params: offsets 64-float aligned", b->offset % 64 == 0 && rm->offset % 64 == 0);
    sg_test_true("params: init one / zero", rm->data[3] == 1.0f && b->data[0] == 0.0f);
    sg_test_true("params: trainable count", sg_params_count(&ps, 1) == 16);
    const char *path = "test_core_params.safetensors";
    const char *meta[] = {"model", "tiny", NULL};
    sg_test_true("params: save", sg_params_save(&ps, path, meta) == 0);
    float keep = w->data[5];
    w->data[5] = 99.0f;
    sg_test_true("params: load", sg_params_load(&ps, path, 1) == 0 && w->data[5] == keep);
    struct sg_params other;
    sg_params_init(&other);
    int64_t bad[2] = {3, 4};
    sg_params_add(&other, "layer.weight", 2, bad, 0, 0);
    sg_params_alloc(&other, &c, 0);
    int rc = sg_params_load(&other, path, 0);
    printf("     shape mismatch error: %s\n", sg_last_error());
    sg_test_true("params: shape mismatch rejected", rc != 0);
    sg_test_true("params: strict load rejects extra tensors", sg_params_load(&other, path, 1) != 0);
    remove(path);
    sg_params_free(&other);
    sg_params_free(&ps);
    sg_ctx_free(&c);
}

static void test_arena(void)
{
    struct sg_ctx c;
    sg_ctx_init(&c, SG_DEVICE_CPU, 0, 0);
    struct sg_arena a;
    sg_arena_init(&a, &c, 1000, "test");
    float *x = sg_arena_floats(&a, 10);
    float *y = sg_arena_floats(&a, 10);
    sg_test_true("arena: 256-byte aligned", ((uintptr_t)x % 256) == 0 && ((uintptr_t)y % 256) == 0);
    sg_test_true("arena: distinct", y - x == 64);
    sg_arena_free(&a);
    sg_ctx_free(&c);
    sg_test_true("ctx: cuda request without GPU fails cleanly or succeeds",
                 sg_cuda_available() || sg_ctx_init(&c, SG_DEVICE_CUDA, 0, 0) != 0);
}

int main(void)
{
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "core.safetensors");
    test_rng(&ref);
    test_half(&ref);
    sg_st_close(&ref);
    test_safetensors_roundtrip();
    test_safetensors_hostile();
    test_params_roundtrip();
    test_arena();
    return sg_test_summary("test_core");
}
