/*
 * tests/test_cuda_model.c — the encoders and the assembled CLIP model on a CUDA context against
 * the same model on the CPU (whose numerics tests/test_clip_model.c checks against PyTorch).
 *
 *  1. The layout ops (ops/patch.h: patchify, token assembly, token gather/scatter, NCHW ->
 *     tokens) on odd and round shapes: pure data movement and batch sums in one fixed order, so
 *     GPU and CPU must agree bit for bit.
 *  2. For each tower family (tests/data/models/test-vit.yaml, test-rn.yaml, test-resnet.yaml):
 *     both models are built with the same seed (initialised on the host, then uploaded: identical
 *     weights), fed the same images and token ids; training-mode features zi, zt; then the same
 *     feature gradients (from the CPU CLIP loss) go through both backward passes and every
 *     parameter gradient and BatchNorm running statistic is compared; then eval-mode image
 *     features. Tolerance: max |gpu - cpu| <= 2e-3 * rms(cpu) + 1e-3 * |cpu| per tensor (plus a
 *     floor of 1e-4 of the largest gradient rms, see compare_params). Both sides
 *     are fp32 with different summation orders (cuBLAS/cuDNN vs oneDNN): the features of these
 *     2-layer towers agree to ~1e-6, gradients through BatchNorm batch statistics and the
 *     normalisation to ~1e-5..1e-4 of their rms; 2e-3 leaves a margin of >= 20 while any wrong
 *     index, missing accumulation or stale buffer gives errors of order rms.
 *  3. bf16 mixed precision (ctx.precision = SG_PREC_BF16): features within cosine 0.999 of the
 *     fp32 CPU features (bf16 operands carry 8 bits: ~4e-3 relative per product, averaging out
 *     over the dot products).
 * Exits 77 (skip) without a GPU.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "losses/clip.h"
#include "model/clip.h"
#include "model/clip_config.h"
#include "ops/patch.h"
#include "testutil.h"

static struct sg_ctx cpu, gpu;

/* ---- helpers ------------------------------------------------------------------------------ */

static void *up(const void *h, size_t bytes)
{
    void *d = sg_dev_alloc(&gpu, bytes ? bytes : 4);
    if (bytes) sg_memcpy_h2d(&gpu, d, h, bytes);
    return d;
}

static double rms(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0.0;
}

/* got (device) vs want (host) with atol = rel * rms(want), rtol. */
static int close_dev(const char *label, const float *dgot, const float *want, int64_t n, float rel,
                     float rtol)
{
    float *got = sg_test_from_dev(&gpu, dgot, n);
    float atol = (float)(rel * rms(want, n)) + 1e-12f;
    int ok = sg_test_close(label, got, want, n, atol, rtol);
    free(got);
    return ok;
}

static int equal_dev(const char *label, const float *dgot, const float *want, int64_t n)
{
    float *got = sg_test_from_dev(&gpu, dgot, n);
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (memcmp(&got[i], &want[i], sizeof(float))) bad = i;
    char l[256];
    if (bad >= 0)
        snprintf(l, sizeof l, "%s: bit-identical (first difference at %lld: %.9g vs %.9g)", label,
                 (long long)bad, got[bad], want[bad]);
    else
        snprintf(l, sizeof l, "%s: bit-identical (%lld values)", label, (long long)n);
    free(got);
    return sg_test_true(l, bad < 0);
}

/* ---- 1. layout ops ------------------------------------------------------------------------ */

static void test_patchify(int B, int Cin, int S, int p)
{
    int G = S / p;
    int64_t n = (int64_t)B * Cin * S * S;
    float *img = sg_test_rand(n, 1, -1.0f, 1.0f), *pt = sg_xmalloc(sizeof(float) * (size_t)n);
    float *back = sg_xmalloc(sizeof(float) * (size_t)n);
    float *dimg = up(img, sizeof(float) * (size_t)n), *dpt = sg_dev_alloc(&gpu, sizeof(float) * n);
    float *dback = sg_dev_alloc(&gpu, sizeof(float) * (size_t)n);
    op_patchify_forward(&cpu, pt, img, B, Cin, S, p);
    op_patchify_forward(&gpu, dpt, dimg, B, Cin, S, p);
    op_patchify_backward(&cpu, back, pt, B, Cin, S, p);
    op_patchify_backward(&gpu, dback, dpt, B, Cin, S, p);
    char l[128];
    snprintf(l, sizeof l, "patchify B%d C%d S%d p%d (G%d) forward", B, Cin, S, p, G);
    equal_dev(l, dpt, pt, n);
    snprintf(l, sizeof l, "patchify B%d C%d S%d p%d backward (= the image)", B, Cin, S, p);
    equal_dev(l, dback, img, n);
    free(img), free(pt), free(back);
    sg_dev_free(&gpu, dimg), sg_dev_free(&gpu, dpt), sg_dev_free(&gpu, dback);
}

static void test_tokens(int B, int T, int C, int has_cls, int with_pos)
{
    int64_t tc = (int64_t)T * C, ne = (int64_t)B * (T - has_cls) * C;
    float *cls = sg_test_rand(C, 2, -1.0f, 1.0f), *emb = sg_test_rand(ne, 3, -1.0f, 1.0f),
          *pos = sg_test_rand(tc, 4, -1.0f, 1.0f),
          *x = sg_test_rand((int64_t)B * tc, 5, -1.0f, 1.0f);
    float *dx = sg_test_rand((int64_t)B * tc, 6, -1.0f, 1.0f),
          *dpos = sg_test_rand(tc, 7, -1.0f, 1.0f), *dcls = sg_test_rand(C, 8, -1.0f, 1.0f);
    float *demb = sg_xmalloc(sizeof(float) * (size_t)ne);
    float *g_cls = up(cls, 4 * (size_t)C), *g_emb = up(emb, 4 * (size_t)ne);
    float *g_pos = up(pos, 4 * (size_t)tc), *g_x = up(x, 4 * (size_t)(B * tc));
    float *g_dx = up(dx, 4 * (size_t)(B * tc)), *g_dpos = up(dpos, 4 * (size_t)tc);
    float *g_dcls = up(dcls, 4 * (size_t)C), *g_demb = sg_dev_alloc(&gpu, 4 * (size_t)ne);
    const float *pc = with_pos ? pos : NULL, *gpc = with_pos ? g_pos : NULL;
    op_tokens_forward(&cpu, x, has_cls ? cls : NULL, emb, pc, B, T, C);
    op_tokens_forward(&gpu, g_x, has_cls ? g_cls : NULL, g_emb, gpc, B, T, C);
    op_tokens_backward(&cpu, demb, has_cls ? dcls : NULL, dpos, dx, has_cls, B, T, C);
    op_tokens_backward(&gpu, g_demb, has_cls ? g_dcls : NULL, g_dpos, g_dx, has_cls, B, T, C);
    char l[128];
    snprintf(l, sizeof l, "tokens B%d T%d C%d cls %d pos %d: x", B, T, C, has_cls, with_pos);
    equal_dev(l, g_x, x, (int64_t)B * tc);
    snprintf(l, sizeof l, "tokens B%d T%d C%d cls %d: demb", B, T, C, has_cls);
    equal_dev(l, g_demb, demb, ne);
    snprintf(l, sizeof l, "tokens B%d T%d C%d cls %d: dpos accumulated", B, T, C, has_cls);
    equal_dev(l, g_dpos, dpos, tc);
    snprintf(l, sizeof l, "tokens B%d T%d C%d cls %d: dcls accumulated", B, T, C, has_cls);
    equal_dev(l, g_dcls, dcls, C);
    /* in place without a class token (the text encoder's use) */
    if (!has_cls) {
        float *y = sg_test_rand((int64_t)B * tc, 9, -1.0f, 1.0f),
              *g_y = up(y, 4 * (size_t)(B * tc));
        op_tokens_forward(&cpu, y, NULL, y, pos, B, T, C);
        op_tokens_forward(&gpu, g_y, NULL, g_y, g_pos, B, T, C);
        snprintf(l, sizeof l, "tokens B%d T%d C%d in place", B, T, C);
        equal_dev(l, g_y, y, (int64_t)B * tc);
        free(y);
        sg_dev_free(&gpu, g_y);
    }
    free(cls), free(emb), free(pos), free(x), free(dx), free(dpos), free(dcls), free(demb);
    sg_dev_free(&gpu, g_cls), sg_dev_free(&gpu, g_emb), sg_dev_free(&gpu, g_pos);
    sg_dev_free(&gpu, g_x), sg_dev_free(&gpu, g_dx), sg_dev_free(&gpu, g_dpos);
    sg_dev_free(&gpu, g_dcls), sg_dev_free(&gpu, g_demb);
}

static void test_gather(int B, int T, int C, int with_idx)
{
    int64_t n = (int64_t)B * T * C;
    int32_t *idx = sg_xmalloc(sizeof(int32_t) * (size_t)B);
    for (int b = 0; b < B; b++) idx[b] = (b * 7 + 3) % T;
    float *x = sg_test_rand(n, 10, -1.0f, 1.0f),
          *dout = sg_test_rand((int64_t)B * C, 11, -1.0f, 1.0f);
    float *out = sg_xmalloc(sizeof(float) * (size_t)B * C), *dx = sg_xmalloc(sizeof(float) * n);
    int32_t *g_idx = up(idx, sizeof(int32_t) * (size_t)B);
    float *g_x = up(x, 4 * (size_t)n), *g_dout = up(dout, 4 * (size_t)B * C);
    float *g_out = sg_dev_alloc(&gpu, 4 * (size_t)B * C), *g_dx = up(x, 4 * (size_t)n); /* junk */
    op_gather_tokens_forward(&cpu, out, x, with_idx ? idx : NULL, B, T, C);
    op_gather_tokens_forward(&gpu, g_out, g_x, with_idx ? g_idx : NULL, B, T, C);
    op_gather_tokens_backward(&cpu, dx, dout, with_idx ? idx : NULL, B, T, C);
    op_gather_tokens_backward(&gpu, g_dx, g_dout, with_idx ? g_idx : NULL, B, T, C);
    char l[128];
    snprintf(l, sizeof l, "gather B%d T%d C%d idx %d: forward", B, T, C, with_idx);
    equal_dev(l, g_out, out, (int64_t)B * C);
    snprintf(l, sizeof l, "gather B%d T%d C%d idx %d: backward overwrites", B, T, C, with_idx);
    equal_dev(l, g_dx, dx, n);
    free(idx), free(x), free(dout), free(out), free(dx);
    sg_dev_free(&gpu, g_idx), sg_dev_free(&gpu, g_x), sg_dev_free(&gpu, g_dout);
    sg_dev_free(&gpu, g_out), sg_dev_free(&gpu, g_dx);
}

static void test_nchw_tokens(int B, int C, int HW)
{
    int64_t nx = (int64_t)B * C * HW, nt = (int64_t)B * (HW + 1) * C;
    float *x = sg_test_rand(nx, 12, -1.0f, 1.0f), *dtok = sg_test_rand(nt, 13, -1.0f, 1.0f);
    float *tok = sg_xmalloc(sizeof(float) * (size_t)nt), *dx = sg_xmalloc(sizeof(float) * nx);
    float *g_x = up(x, 4 * (size_t)nx), *g_dtok = up(dtok, 4 * (size_t)nt);
    float *g_tok = sg_dev_alloc(&gpu, 4 * (size_t)nt), *g_dx = sg_dev_alloc(&gpu, 4 * (size_t)nx);
    op_nchw_tokens_forward(&cpu, tok, x, B, C, HW);
    op_nchw_tokens_forward(&gpu, g_tok, g_x, B, C, HW);
    op_nchw_tokens_backward(&cpu, dx, dtok, B, C, HW);
    op_nchw_tokens_backward(&gpu, g_dx, g_dtok, B, C, HW);
    char l[128];
    snprintf(l, sizeof l, "nchw_tokens B%d C%d HW%d: forward (mean token in double)", B, C, HW);
    equal_dev(l, g_tok, tok, nt);
    snprintf(l, sizeof l, "nchw_tokens B%d C%d HW%d: backward", B, C, HW);
    equal_dev(l, g_dx, dx, nx);
    free(x), free(dtok), free(tok), free(dx);
    sg_dev_free(&gpu, g_x), sg_dev_free(&gpu, g_dtok), sg_dev_free(&gpu, g_tok);
    sg_dev_free(&gpu, g_dx);
}

/* ---- 2. the CLIP model -------------------------------------------------------------------- */

struct inputs {
    int B, S, T, E;
    float *img;   /* host (B,3,S,S) */
    int32_t *ids; /* host (B,T), EOT (the largest id) at varying positions */
    float *g_img; /* device copy */
};

static void make_inputs(struct inputs *in, const struct sg_clip_config *cfg, int B)
{
    in->B = B;
    in->S = cfg->vision.image_size;
    in->T = cfg->text.context_length;
    in->E = cfg->embed_dim;
    int64_t ni = (int64_t)B * 3 * in->S * in->S;
    in->img = sg_test_rand(ni, 20, -1.0f, 1.0f);
    in->ids = sg_xcalloc((size_t)B * in->T, sizeof(int32_t));
    int V = cfg->text.vocab_size;
    for (int b = 0; b < B; b++) {
        int len = 2 + (b * 5) % (in->T - 2); /* EOT position in [2, T-1] */
        in->ids[(size_t)b * in->T] = V - 2;  /* start token */
        for (int t = 1; t < len; t++)
            in->ids[(size_t)b * in->T + t] = 1 + (b * 31 + t * 17) % (V - 3);
        in->ids[(size_t)b * in->T + len] = V - 1; /* EOT: the largest id */
    }
    in->g_img = up(in->img, sizeof(float) * (size_t)ni);
}

static void free_inputs(struct inputs *in)
{
    free(in->img);
    free(in->ids);
    sg_dev_free(&gpu, in->g_img);
}

/* Every trainable param's grad (or every BUFFER's value) of g vs c. Tolerance per tensor:
 * 2e-3 rms(tensor) + 1e-3 |cpu| + 1e-4 max_rms (max_rms: the largest rms of all the compared
 * tensors). The last term is the floor for tensors whose true value is zero or nearly so by
 * structure (the k_proj bias grad of the attention pool is exactly zero in exact arithmetic:
 * softmax ignores a per-query constant; BatchNorm gamma grads of a 6-sample batch cancel to
 * 1e-8): what is left there is rounding noise of the model's gradient scale. */
static void compare_params(const char *model, const struct sg_clip *g, const struct sg_clip *c,
                           int buffers)
{
    int bad = 0, n = 0;
    double max_rms = 0;
    for (int i = 0; i < c->ps.n; i++) {
        const struct sg_param *pc = c->ps.items[i];
        if (((pc->flags & SG_PARAM_BUFFER) != 0) != buffers) continue;
        max_rms = fmax(max_rms, rms(buffers ? pc->data : pc->grad, pc->numel));
    }
    for (int i = 0; i < c->ps.n; i++) {
        const struct sg_param *pc = c->ps.items[i], *pg = g->ps.items[i];
        int is_buf = (pc->flags & SG_PARAM_BUFFER) != 0;
        if (is_buf != buffers) continue;
        const float *want = buffers ? pc->data : pc->grad;
        float *got = sg_test_from_dev(&gpu, buffers ? pg->data : pg->grad, pc->numel);
        double r = rms(want, pc->numel), worst = 0;
        int64_t wi = 0;
        for (int64_t k = 0; k < pc->numel; k++) {
            double e = fabs((double)got[k] - want[k]) - 1e-3 * fabs(want[k]);
            if (e > worst) worst = e, wi = k;
        }
        n++;
        if (worst > 2e-3 * r + 1e-4 * max_rms + 1e-12) {
            if (bad++ < 8)
                printf("  %s %s %s: max excess error %.3g at %lld (gpu %.9g cpu %.9g), rms %.3g\n",
                       model, pc->name, buffers ? "value" : "grad", worst, (long long)wi, got[wi],
                       want[wi], r);
        }
        free(got);
    }
    char l[160];
    snprintf(l, sizeof l, "%s: %d %s within 2e-3 rms (%d outside)", model, n,
             buffers ? "BN running statistics" : "parameter gradients", bad);
    sg_test_true(l, bad == 0);
}

static struct sg_clip *build(const struct sg_clip_config *cfg, struct sg_ctx *c, int B)
{
    struct sg_clip *m = sg_xcalloc(1, sizeof *m);
    sg_clip_create(m, cfg, c, 1, 7);
    sg_clip_plan(m, B);
    return m;
}

static void run_model(const char *name, int B)
{
    char path[512], l[160];
    struct sg_clip_config cfg;
    snprintf(path, sizeof path, "%s/../../data/models/%s.yaml", SG_REF_DIR, name);
    SG_CHECK(sg_clip_config_load(&cfg, path) == 0, "%s", sg_last_error());
    struct inputs in;
    make_inputs(&in, &cfg, B);
    struct sg_clip *mc = build(&cfg, &cpu, B), *mg = build(&cfg, &gpu, B);
    int64_t be = (int64_t)B * in.E;
    /* training-mode forward */
    sg_clip_forward(mc, &cpu, in.img, in.ids, 1);
    sg_clip_forward(mg, &gpu, in.g_img, in.ids, 1);
    snprintf(l, sizeof l, "%s B%d: image features zi", name, B);
    close_dev(l, mg->zi, mc->zi, be, 1e-4f, 1e-4f);
    snprintf(l, sizeof l, "%s B%d: text features zt", name, B);
    close_dev(l, mg->zt, mc->zt, be, 1e-4f, 1e-4f);
    /* the same feature gradients through both backward passes */
    struct sg_clip_loss loss;
    float lv = 0.0f, dls = 0.0f;
    float *dzi = sg_xmalloc(4 * (size_t)be), *dzt = sg_xmalloc(4 * (size_t)be);
    sg_clip_loss_init(&loss);
    SG_CHECK(
        sg_clip_loss_compute(&loss, &cpu, mc->zi, mc->zt, B, in.E, 2.0f, &lv, dzi, dzt, &dls) == 0,
        "%s", sg_last_error());
    sg_clip_loss_free(&loss);
    float *g_dzi = up(dzi, 4 * (size_t)be), *g_dzt = up(dzt, 4 * (size_t)be);
    sg_params_zero_grad(&mc->ps);
    sg_params_zero_grad(&mg->ps);
    sg_clip_backward(mc, &cpu, dzi, dzt);
    sg_clip_backward(mg, &gpu, g_dzi, g_dzt);
    compare_params(name, mg, mc, 0);
    compare_params(name, mg, mc, 1);
    /* eval mode (BN on running statistics) */
    sg_clip_encode_image(mc, &cpu, in.img, 0);
    sg_clip_encode_image(mg, &gpu, in.g_img, 0);
    snprintf(l, sizeof l, "%s B%d: eval-mode image features", name, B);
    close_dev(l, mg->zi, mc->zi, be, 1e-4f, 1e-4f);
    /* bf16 mixed precision: features near the fp32 ones */
    gpu.precision = SG_PREC_BF16;
    sg_clip_forward(mg, &gpu, in.g_img, in.ids, 0);
    sg_clip_encode_image(mc, &cpu, in.img, 0);
    float *zi = sg_test_from_dev(&gpu, mg->zi, be), *zt = sg_test_from_dev(&gpu, mg->zt, be);
    double worst = 1.0;
    for (int b = 0; b < B; b++) {
        double ci = 0, ct = 0;
        for (int e = 0; e < in.E; e++) {
            ci += (double)zi[b * in.E + e] * mc->zi[b * in.E + e];
            ct += (double)zt[b * in.E + e] * mc->zt[b * in.E + e];
        }
        worst = fmin(worst, fmin(ci, ct));
    }
    snprintf(l, sizeof l, "%s B%d: bf16 features within cosine 0.999 of fp32 (worst %.6f)", name, B,
             worst);
    sg_test_true(l, worst > 0.999);
    gpu.precision = SG_PREC_FP32;
    free(zi), free(zt), free(dzi), free(dzt);
    sg_dev_free(&gpu, g_dzi), sg_dev_free(&gpu, g_dzt);
    sg_clip_destroy(mc), sg_clip_destroy(mg);
    free(mc), free(mg);
    free_inputs(&in);
}

int main(void)
{
    if (!sg_cuda_available()) {
        printf("SKIP: no CUDA GPU\n");
        return SG_TEST_SKIP;
    }
    SG_CHECK(sg_ctx_init(&cpu, SG_DEVICE_CPU, 0, 0) == 0, "%s", sg_last_error());
    if (sg_ctx_init(&gpu, SG_DEVICE_CUDA, 0, 0) != 0) {
        fprintf(stderr, "FAIL: CUDA context: %s\n", sg_last_error());
        return 1;
    }
    test_patchify(2, 3, 8, 4);
    test_patchify(3, 3, 224, 32);
    test_patchify(1, 2, 15, 5);
    test_tokens(3, 50, 768, 1, 1);
    test_tokens(2, 5, 7, 1, 0);
    test_tokens(4, 13, 512, 0, 1);
    test_gather(5, 13, 33, 1);
    test_gather(3, 50, 768, 0);
    test_nchw_tokens(2, 2048, 49);
    test_nchw_tokens(3, 5, 7);
    run_model("test-vit", 6);
    run_model("test-rn", 6);
    run_model("test-resnet", 6);
    sg_ctx_free(&gpu);
    sg_ctx_free(&cpu);
    return sg_test_summary("test_cuda_model");
}
