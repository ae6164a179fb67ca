/*
 * tests/test_cuda_train.c — `sogclip train` on a CUDA device (run.device: cuda) against the same
 * run on the CPU: a tiny CLIP (tests/data/models/train-vit.yaml: 16 px ViT, 1 layer per tower)
 * on the synthetic captioned shapes of tests/test_train.c (96 images, batch 16: 6 steps per
 * epoch), identical seeds and data. Exits 77 (ctest SKIP) when no CUDA GPU is visible.
 *
 * Checks (each prints its numbers, so a failure can be diagnosed from the log alone):
 *  1. op_normalize_u8 on the GPU equals the CPU op (<= 1 ulp required; expected 0: the same IEEE
 *     float operations) on the vectorised (HW % 4 == 0) and scalar (odd HW, offset pointers)
 *     paths; and the loader's uint8 output normalised on the GPU equals its float output (CLIP
 *     random crops; SimCLR two views with flips, jitter, grayscale) — the GPU input path feeds
 *     the model the CPU's exact floats.
 *  2. 20 steps of two-way SogCLR (AdamW, warmup 2): per-step losses (and objectives) on the GPU
 *     (fp32) within LOSS_RTOL = 1e-3 relative + LOSS_ATOL = 1e-4 of the CPU's (the absolute
 *     part: SogCLR's surrogate loss falls to ~1e-3 and below, even negative, as a weighted sum
 *     of O(1) similarity gaps / tau whose float error is absolute, ~1e-6 of those terms, not
 *     relative to the small sum); final parameters: max |diff| <= PARAM_MAX_ABS =
 *     2.5e-3 and mean |diff| <= PARAM_MEAN_ABS = 1e-5; loss state (u, b) within rtol 1e-3.
 *     10 steps of CLIP InfoNCE (learnable logit scale on the device: read, gradient, clamp) and
 *     10 of FastCLIP (temperature from the device logit scale) with the same loss tolerance.
 *     Why these tolerances: every GPU op is fp32 with TF32 off and matches the CPU to ~1e-6
 *     relative (tests/test_cuda_ops.c etc.); only summation orders differ. Such differences
 *     reach the parameters through AdamW, whose normalised update moves a weight by at most
 *     ~lr = 1e-3 per step, so the parameters (and then the losses) drift apart by ~1e-6
 *     relative over 20 steps: 1e-3 on the loss is a >= 100x margin. A weight whose gradient is
 *     ~0 (|g| ~ eps) can take a different AdamW step on the two devices: that moves it by at
 *     most 2 lr = 2e-3 once, hence the max bound, while the mean bound still catches any
 *     systematic difference. Excluded from both bounds (printed for information): the attention
 *     KEY biases (the middle third of every attn.in_proj_bias). Softmax is invariant to them, so
 *     their true gradient is exactly 0 and what each device computes is rounding noise, which
 *     AdamW normalises to steps of ~lr: they random-walk independently on the two devices (seen
 *     on an H200: 7e-3 apart after 10 CLIP steps, everything else within 1e-3).
 *  3. Checkpoints move between devices: 10 steps on the GPU then a resume on the CPU continues
 *     with the GPU run's step-11 loss (and the CPU run's) within LOSS_RTOL; 10 on the CPU then
 *     a resume on the GPU likewise; 10 + 10 steps on the GPU equal 20 uninterrupted GPU steps
 *     bit for bit (every checkpoint tensor: parameters, moments, loss state, loader position —
 *     with the prefetching input pipeline, the batch fetched ahead is fetched again on resume).
 *  4. bf16 mixed precision (run.precision: bf16): 20 steps of CLIP InfoNCE finish, every loss is
 *     finite and the mean of the last 5 losses is below the mean of the first 5 (the fp32 GPU
 *     losses are printed alongside for information).
 *  5. Evaluation: the GPU checkpoint loaded on CUDA (sg_eval_model_load_on) and on the CPU gives
 *     the same image and text embeddings within 1e-4 (fp32, unit-norm rows).
 * SG_CUDA_TRAIN_ON_CPU=1 runs everything with the CPU standing in for the GPU (a harness
 * self-check on machines without a GPU: every comparison must then be exact).
 */
#define _DEFAULT_SOURCE
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "core/safetensors.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/synth.h"
#include "data/transforms.h"
#include "eval/clip_eval.h"
#include "ops/input.h"
#include "testutil.h"
#include "text/tokenizer.h"
#include "train/config.h"
#include "train/trainer.h"

#define LOSS_RTOL      1e-3
#define LOSS_ATOL      1e-4
#define PARAM_MAX_ABS  2.5e-3
#define PARAM_MEAN_ABS 1e-5
#define EMB_ATOL       1e-4f
#define MAX_STEPS      20

static char g_dir[256], g_cfg[512], g_data[320];
static const char *g_gpu = "cuda"; /* run.device of the device under test */
static enum sg_device g_gpu_dev = SG_DEVICE_CUDA;

/* tests/data next to this file (cmake passes absolute source paths) */
static void data_dir(char *out, size_t n)
{
#ifdef SG_TEST_DATA_DIR
    snprintf(out, n, "%s", SG_TEST_DATA_DIR);
#else
    char rel[600], abs[PATH_MAX];
    const char *f = __FILE__, *slash = strrchr(f, '/');
    if (slash)
        snprintf(rel, sizeof rel, "%.*s/data", (int)(slash - f), f);
    else
        snprintf(rel, sizeof rel, "tests/data");
    snprintf(out, n, "%.400s", realpath(rel, abs) ? abs : rel); /* absolute: into the config */
#endif
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    SG_CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
}

/* 96 training images of 16 px, a tokenizer, a base config (CPU; overrides pick the device). */
static void make_fixture(void)
{
    char tdata[512], path[400], text[4096];
    data_dir(tdata, sizeof tdata);
    sg_test_clip_fixture("sg_test_cuda_train", g_dir, sizeof g_dir);
    snprintf(g_data, sizeof g_data, "%s/data", g_dir);
    snprintf(text, sizeof text,
             "run: {name: base, output_dir: %s/runs, seed: 1, threads: 2}\n"
             "model: {name: %s/models/train-vit.yaml}\n"
             "data: {train: %s/train.tsv, image_key: image, caption_key: caption, workers: 2}\n"
             "tokenizer: {model: %s/tok.model}\n"
             "loss: {name: sogclr, tau: 0.1, gamma: 0.9}\n"
             "optim: {name: adamw, lr: 1.0e-3, warmup_steps: 2}\n"
             "train: {batch_size: 16, epochs: 4, max_steps: %d, log_every: 1}\n"
             "checkpoint: {every_steps: 0, keep: 2, export_weights: false}\n"
             "log: {progress: lines, tensorboard: false}\n",
             g_dir, tdata, g_data, g_data, MAX_STEPS);
    snprintf(path, sizeof path, "%s/train.yaml", g_dir);
    write_file(path, text);
    snprintf(g_cfg, sizeof g_cfg, "%s", path);
}

/* Train run `name` on `device` with extra overrides; resume: NULL or "latest". */
static int train(const char *name, const char *device, const char *const *extra, int n,
                 const char *resume, int64_t stop_after, struct sg_train_result *res)
{
    char o1[160], o2[64];
    const char *over[16] = {o1, o2};
    snprintf(o1, sizeof o1, "run.name=%s", name);
    snprintf(o2, sizeof o2, "run.device=%s", device);
    for (int i = 0; i < n && i < 14; i++) over[2 + i] = extra[i];
    struct sg_train_config cfg;
    SG_CHECK(sg_train_config_load(&cfg, g_cfg, over, 2 + n) == 0, "%s", sg_last_error());
    struct sg_train_opts opts = {.resume = resume, .quiet = 1, .stop_after = stop_after};
    int rc = sg_train_run(&cfg, &opts, res);
    if (rc) fprintf(stderr, "  run %s on %s: exit %d\n", name, device, rc);
    return rc;
}

/* `tag` of every step 1..MAX_STEPS from the run's metrics.jsonl (NAN where missing). */
static void read_metric(const char *name, const char *tag, double *loss)
{
    char key[80];
    snprintf(key, sizeof key, "\"%s\": ", tag);
    char path[600], line[4096];
    snprintf(path, sizeof path, "%s/runs/%s/metrics.jsonl", g_dir, name);
    for (int i = 0; i < MAX_STEPS; i++) loss[i] = NAN;
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        long long step;
        const char *l = strstr(line, key);
        if (sscanf(line, "{\"step\": %lld", &step) != 1 || !l) continue;
        if (step >= 1 && step <= MAX_STEPS) loss[step - 1] = strtod(l + strlen(key), NULL);
    }
    fclose(f);
}

static void read_losses(const char *name, double *loss)
{
    read_metric(name, "train/loss", loss);
}

/* Steps [first, last] (1-based) of two curves: |got - ref| <= rtol |ref| + atol; prints the
 * table with the error in units of the tolerance. */
static int close_losses(const char *label, const double *ref, const double *got, int first,
                        int last, double rtol)
{
    double worst = 0.0;
    int ok = 1;
    printf("  %s: step, reference, device under test, |diff|, |diff| / tolerance\n", label);
    for (int s = first; s <= last; s++) {
        double a = ref[s - 1], b = got[s - 1], d = fabs(a - b);
        double r = d / (rtol * fabs(a) + LOSS_ATOL);
        int good = isfinite(a) && isfinite(b) && r <= 1.0;
        ok &= good;
        worst = fmax(worst, isfinite(r) ? r : INFINITY);
        printf("    %2d  %.9g  %.9g  %.2e  %.3f%s\n", s, a, b, d, r, good ? "" : "  <-- FAIL");
    }
    char msg[300];
    snprintf(msg, sizeof msg,
             "%s: steps %d..%d within %g relative + %g (worst: %.3f of the tolerance)", label,
             first, last, rtol, LOSS_ATOL, worst);
    return sg_test_true(msg, ok);
}

/* ---- checkpoints -------------------------------------------------------------------------- */

static void run_ckpt(const struct sg_train_result *r, char *out, size_t n)
{
    snprintf(out, n, "%s", r->checkpoint);
}

/* Attention key biases: the middle third of "...attn.in_proj_bias" (q, k, v stacked). Their
 * gradient is mathematically 0 (softmax shift invariance): see the header. */
static int is_key_bias(const char *name, int64_t j, int64_t n)
{
    const char *tail = "attn.in_proj_bias";
    size_t ln = strlen(name), lt = strlen(tail);
    return ln >= lt && !strcmp(name + ln - lt, tail) && j >= n / 3 && j < 2 * n / 3;
}

/* F32 tensors named prefix* of a (reference) and b: max and mean |diff| over all of them except
 * the attention key biases, whose max |diff| goes to *key_max. */
static void ckpt_diff(const char *a, const char *b, const char *prefix, double *max_abs,
                      double *mean_abs, double *key_max, char *worst, size_t wn)
{
    struct sg_st_file fa, fb;
    *max_abs = INFINITY, *mean_abs = INFINITY, *key_max = 0.0;
    snprintf(worst, wn, "(unreadable)");
    if (sg_st_open(&fa, a)) return;
    if (sg_st_open(&fb, b)) {
        sg_st_close(&fa);
        return;
    }
    double mx = 0.0, sum = 0.0, kmx = 0.0;
    int64_t count = 0;
    size_t plen = strlen(prefix);
    snprintf(worst, wn, "none");
    for (int i = 0; i < fa.n; i++) {
        const struct sg_st_entry *e = &fa.entries[i];
        if (strncmp(e->name, prefix, plen) || e->dtype != SG_F32) continue;
        int64_t n = 1;
        for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
        float *x = sg_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
        float *y = sg_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
        int bad = sg_st_read_f32(&fa, e->name, x, n) || sg_st_read_f32(&fb, e->name, y, n);
        for (int64_t j = 0; j < n && !bad; j++) {
            double d = fabs((double)x[j] - (double)y[j]);
            if (is_key_bias(e->name, j, n)) {
                kmx = isfinite(d) && d <= kmx ? kmx : (isfinite(d) ? d : INFINITY);
                continue;
            }
            if (!(d <= mx)) { /* NaN counts as the worst */
                mx = isfinite(d) ? d : INFINITY;
                snprintf(worst, wn, "%s[%lld]: %.9g vs %.9g", e->name, (long long)j, x[j], y[j]);
            }
            sum += d;
            count++;
        }
        if (bad) mx = INFINITY, snprintf(worst, wn, "%s: missing in %s", e->name, b);
        free(x);
        free(y);
    }
    *max_abs = mx;
    *mean_abs = count ? sum / (double)count : 0.0;
    *key_max = kmx;
    sg_st_close(&fa);
    sg_st_close(&fb);
}

static void check_params_close(const char *label, const char *ref, const char *got)
{
    double mx, mean, kmx;
    char worst[400], msg[800];
    ckpt_diff(ref, got, "model.", &mx, &mean, &kmx, worst, sizeof worst);
    snprintf(msg, sizeof msg,
             "%s: final parameters (attention key biases aside) max |diff| %.3e <= %g, mean "
             "|diff| %.3e <= %g (worst %s)",
             label, mx, PARAM_MAX_ABS, mean, PARAM_MEAN_ABS, worst);
    sg_test_true(msg, mx <= PARAM_MAX_ABS && mean <= PARAM_MEAN_ABS);
    printf("  %s: (information) attention key biases (zero true gradient) max |diff| %.3e\n", label,
           kmx);
    ckpt_diff(ref, got, "optim.", &mx, &mean, &kmx, worst, sizeof worst);
    printf("  %s: (information) optimizer moments max |diff| %.3e, mean %.3e (worst %s)\n", label,
           mx, mean, worst);
}

/* Every F32 tensor "loss.*" of got within atol + rtol |ref| of ref. */
static void check_loss_state_close(const char *label, const char *ref, const char *got)
{
    struct sg_st_file fa, fb;
    char msg[400];
    if (sg_st_open(&fa, ref) || sg_st_open(&fb, got)) {
        sg_test_true("loss state: checkpoints readable", 0);
        return;
    }
    int n_checked = 0;
    for (int i = 0; i < fa.n; i++) {
        const struct sg_st_entry *e = &fa.entries[i];
        if (strncmp(e->name, "loss.", 5) || e->dtype != SG_F32) continue;
        int64_t n = 1;
        for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
        float *x = sg_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
        float *y = sg_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
        int ok = sg_st_read_f32(&fa, e->name, x, n) == 0 && sg_st_read_f32(&fb, e->name, y, n) == 0;
        snprintf(msg, sizeof msg, "%s: %s within rtol 1e-3", label, e->name);
        if (ok)
            sg_test_close(msg, y, x, n, 1e-6f, 1e-3f);
        else
            sg_test_true(msg, 0);
        free(x);
        free(y);
        n_checked++;
    }
    snprintf(msg, sizeof msg, "%s: the checkpoints hold a loss state", label);
    sg_test_true(msg, n_checked > 0);
    sg_st_close(&fa);
    sg_st_close(&fb);
}

/* ---- 1. input path ------------------------------------------------------------------------ */

static int32_t float_bits(float f)
{
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

/* Largest distance in ulps between two float arrays (same-sign finite values expected). */
static int64_t max_ulps(const float *a, const float *b, int64_t n, int64_t *at)
{
    int64_t worst = 0;
    *at = -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t d = llabs((int64_t)float_bits(a[i]) - (int64_t)float_bits(b[i]));
        if ((a[i] < 0) != (b[i] < 0) && a[i] != b[i]) d = INT64_MAX; /* sign differs */
        if (d > worst) worst = d, *at = i;
    }
    return worst;
}

static int ulps_ok(const char *label, const float *got, const float *want, int64_t n)
{
    int64_t at;
    int64_t u = max_ulps(got, want, n, &at);
    char msg[300];
    if (u > 0 && at >= 0)
        snprintf(msg, sizeof msg, "%s: %lld values, max %lld ulp (index %lld: got %.9g want %.9g)",
                 label, (long long)n, (long long)u, (long long)at, got[at], want[at]);
    else
        snprintf(msg, sizeof msg, "%s: %lld values, max %lld ulp", label, (long long)n,
                 (long long)u);
    return sg_test_true(msg, u <= 1);
}

/* op_normalize_u8 on the device under test vs the CPU op, at an offset of `off` bytes / floats
 * from the allocations (off > 0 forces the scalar kernel). */
static void check_normalize_case(struct sg_ctx *g, struct sg_ctx *cpu, int64_t N, int64_t HW,
                                 int off)
{
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    int64_t n = N * 3 * HW;
    uint8_t *in = sg_xmalloc((size_t)n + 16);
    for (int64_t i = 0; i < n; i++) in[i + off] = (uint8_t)((i * 2654435761u) >> 13);
    in[off] = 0, in[off + n - 1] = 255; /* both ends of the range */
    float *want = sg_xmalloc(sizeof(float) * (size_t)n);
    float *got = sg_xmalloc(sizeof(float) * (size_t)n);
    op_normalize_u8(cpu, want, in + off, N, HW, mean, std);
    uint8_t *din = sg_dev_alloc(g, (size_t)n + 16);
    float *dout = sg_dev_alloc(g, sizeof(float) * (size_t)(n + 4));
    sg_memcpy_h2d(g, din + off, in + off, (size_t)n);
    op_normalize_u8(g, dout + off, din + off, N, HW, mean, std);
    sg_memcpy_d2h(g, got, dout + off, sizeof(float) * (size_t)n);
    char label[160];
    snprintf(label, sizeof label, "normalize_u8 N=%lld HW=%lld offset %d: device == CPU",
             (long long)N, (long long)HW, off);
    ulps_ok(label, got, want, n);
    /* the CPU op equals the transforms' own formula (its table), i.e. sg_augment's floats */
    float *ref = sg_xmalloc(sizeof(float) * (size_t)n);
    normalize_u8_ref(ref, in + off, N, HW, mean, std);
    snprintf(label, sizeof label, "normalize_u8 N=%lld HW=%lld: CPU op == reference loop",
             (long long)N, (long long)HW);
    ulps_ok(label, want, ref, n);
    sg_dev_free(g, din);
    sg_dev_free(g, dout);
    free(in);
    free(want);
    free(got);
    free(ref);
}

/* Loader float output vs its uint8 output normalised on the device under test (<= 1 ulp). */
static void check_loader_u8(struct sg_ctx *g, enum sg_aug_preset preset, int views)
{
    char tsv[400], label[200];
    snprintf(tsv, sizeof tsv, "%s/train.tsv", g_data);
    int batches = 0;
    int64_t ulps = sg_test_u8_vs_float(g, tsv, (int)preset, views, 5, &batches);
    snprintf(label, sizeof label,
             "loader (preset %d, %d view(s)), %d batches: uint8 + device normalize == float "
             "output (max %lld ulp)",
             (int)preset, views, batches, (long long)ulps);
    sg_test_true(label, ulps >= 0 && ulps <= 1 && batches > 0);
}

static void check_input_path(void)
{
    struct sg_ctx g, cpu;
    SG_CHECK(sg_ctx_init(&g, g_gpu_dev, 0, 2) == 0, "%s", sg_last_error());
    SG_CHECK(sg_ctx_init(&cpu, SG_DEVICE_CPU, 0, 2) == 0, "%s", sg_last_error());
    check_normalize_case(&g, &cpu, 4, 16 * 16, 0); /* vectorised */
    check_normalize_case(&g, &cpu, 3, 15 * 15, 0); /* odd HW: scalar */
    check_normalize_case(&g, &cpu, 2, 16 * 16, 1); /* misaligned: scalar */
    check_normalize_case(&g, &cpu, 64, 224 * 224, 0);
    check_loader_u8(&g, SG_AUG_CLIP, 1);
    check_loader_u8(&g, SG_AUG_SIMCLR, 2);
    sg_ctx_free(&g);
    sg_ctx_free(&cpu);
}

/* ---- 2. CPU vs device training ----------------------------------------------------------- */

static double g_cpu_loss[MAX_STEPS], g_gpu_loss[MAX_STEPS];
static char g_gpu_ckpt[800];

static void check_sogclr(void)
{
    struct sg_train_result a, b;
    char ca[800], cb[800];
    int ok = train("cpu_sogclr", "cpu", NULL, 0, NULL, 0, &a) == 0;
    ok &= train("gpu_sogclr", g_gpu, NULL, 0, NULL, 0, &b) == 0;
    sg_test_true("sogclr: 20 steps on the CPU and on the device",
                 ok && a.steps == MAX_STEPS && b.steps == MAX_STEPS);
    if (!ok) return;
    read_losses("cpu_sogclr", g_cpu_loss);
    read_losses("gpu_sogclr", g_gpu_loss);
    close_losses("sogclr fp32 loss", g_cpu_loss, g_gpu_loss, 1, MAX_STEPS, LOSS_RTOL);
    double oa[MAX_STEPS], ob[MAX_STEPS];
    read_metric("cpu_sogclr", "train/objective", oa);
    read_metric("gpu_sogclr", "train/objective", ob);
    close_losses("sogclr fp32 objective", oa, ob, 1, MAX_STEPS, LOSS_RTOL);
    run_ckpt(&a, ca, sizeof ca);
    run_ckpt(&b, cb, sizeof cb);
    snprintf(g_gpu_ckpt, sizeof g_gpu_ckpt, "%s", cb);
    check_params_close("sogclr", ca, cb);
    check_loss_state_close("sogclr", ca, cb);
    sg_train_result_free(&a);
    sg_train_result_free(&b);
}

/* The losses with a learnable temperature: the logit scale lives on the device. */
static void check_logit_scale_losses(const char *loss)
{
    struct sg_train_result a, b;
    char o1[64], na[64], nb[64], label[64];
    snprintf(o1, sizeof o1, "loss.name=%s", loss);
    const char *extra[] = {o1, "train.max_steps=10"};
    snprintf(na, sizeof na, "cpu_%s", loss);
    snprintf(nb, sizeof nb, "gpu_%s", loss);
    int ok = train(na, "cpu", extra, 2, NULL, 0, &a) == 0;
    ok &= train(nb, g_gpu, extra, 2, NULL, 0, &b) == 0;
    snprintf(label, sizeof label, "%s: 10 steps on the CPU and on the device", loss);
    sg_test_true(label, ok && a.steps == 10 && b.steps == 10);
    if (!ok) return;
    double la[MAX_STEPS], lb[MAX_STEPS];
    read_losses(na, la);
    read_losses(nb, lb);
    snprintf(label, sizeof label, "%s fp32", loss);
    close_losses(label, la, lb, 1, 10, LOSS_RTOL);
    check_params_close(label, a.checkpoint, b.checkpoint);
    sg_train_result_free(&a);
    sg_train_result_free(&b);
}

/* ---- 3. checkpoints across devices --------------------------------------------------------- */

static void check_cross_resume(void)
{
    struct sg_train_result r;
    double l[MAX_STEPS];
    /* device 10 steps -> CPU resume */
    int ok = train("g2c", g_gpu, NULL, 0, NULL, 10, &r) == 0 && r.steps == 10;
    sg_train_result_free(&r);
    ok = ok && train("g2c", "cpu", NULL, 0, "latest", 0, &r) == 0 && r.steps == MAX_STEPS;
    sg_train_result_free(&r);
    sg_test_true("device 10 steps, then the CPU resumes its checkpoint to 20", ok);
    read_losses("g2c", l);
    close_losses("device -> CPU resume vs uninterrupted device run", g_gpu_loss, l, 11, 12,
                 LOSS_RTOL);
    close_losses("device -> CPU resume vs uninterrupted CPU run", g_cpu_loss, l, 11, 12, LOSS_RTOL);
    /* CPU 10 steps -> device resume */
    ok = train("c2g", "cpu", NULL, 0, NULL, 10, &r) == 0 && r.steps == 10;
    sg_train_result_free(&r);
    ok = ok && train("c2g", g_gpu, NULL, 0, "latest", 0, &r) == 0 && r.steps == MAX_STEPS;
    sg_train_result_free(&r);
    sg_test_true("CPU 10 steps, then the device resumes its checkpoint to 20", ok);
    read_losses("c2g", l);
    close_losses("CPU -> device resume vs uninterrupted CPU run", g_cpu_loss, l, 11, 12, LOSS_RTOL);
    /* device 10 + 10 == device 20, bit for bit */
    struct sg_train_result w;
    ok = train("g2g", g_gpu, NULL, 0, NULL, 10, &r) == 0 && r.steps == 10;
    sg_train_result_free(&r);
    ok = ok && train("g2g", g_gpu, NULL, 0, "latest", 0, &w) == 0 && w.steps == MAX_STEPS;
    sg_test_true("device 10 + 10 steps == 20 uninterrupted device steps, bit for bit",
                 ok && g_gpu_ckpt[0] && sg_test_same_tensors(g_gpu_ckpt, w.checkpoint));
    sg_train_result_free(&w);
}

/* ---- 4. bf16 --------------------------------------------------------------------------------- */

static void check_bf16(void)
{
    struct sg_train_result r, f;
    const char *bf[] = {"loss.name=clip", "run.precision=bf16"};
    const char *fp[] = {"loss.name=clip"};
    int ok = train("gpu_bf16", g_gpu, bf, 2, NULL, 0, &r) == 0 && r.steps == MAX_STEPS;
    int okf = train("gpu_fp32_clip", g_gpu, fp, 1, NULL, 0, &f) == 0;
    sg_test_true("bf16: 20 steps finish", ok);
    sg_train_result_free(&r);
    sg_train_result_free(&f);
    if (!ok) return;
    double l[MAX_STEPS], lf[MAX_STEPS], first = 0, last = 0;
    int finite = 1;
    read_losses("gpu_bf16", l);
    if (okf)
        read_losses("gpu_fp32_clip", lf);
    else
        for (int i = 0; i < MAX_STEPS; i++) lf[i] = NAN;
    printf("  bf16 clip: step, bf16 loss, fp32 loss (information)\n");
    for (int i = 0; i < MAX_STEPS; i++) {
        finite &= isfinite(l[i]);
        printf("    %2d  %.6f  %.6f\n", i + 1, l[i], lf[i]);
        if (i < 5) first += l[i] / 5;
        if (i >= MAX_STEPS - 5) last += l[i] / 5;
    }
    sg_test_true("bf16: every loss finite", finite);
    char msg[200];
    snprintf(msg, sizeof msg, "bf16: mean loss of the last 5 steps %.6f < first 5 %.6f", last,
             first);
    sg_test_true(msg, finite && last < first);
}

/* ---- 5. evaluation on the device ------------------------------------------------------------ */

static void check_eval(void)
{
    if (!g_gpu_ckpt[0]) return;
    struct sg_eval_model eg, ec;
    int ok = sg_eval_model_load_on(&eg, g_gpu_ckpt, NULL, 8, 2, g_gpu_dev, 0) == 0;
    ok &= sg_eval_model_load(&ec, g_gpu_ckpt, NULL, 8, 2) == 0;
    sg_test_true("eval: the device checkpoint loads on the device and on the CPU", ok);
    if (ok) {
        char val[400];
        snprintf(val, sizeof val, "%s/val.tsv", g_data);
        struct sg_dataset_spec spec = {.path = val, .image_key = "image", .caption_key = "caption"};
        struct sg_dataset *ds;
        SG_CHECK(sg_dataset_open(&spec, &ds) == 0, "%s", sg_last_error());
        int E = ec.model->cfg.embed_dim;
        char **texts;
        int32_t *t2i;
        int64_t nt = sg_dataset_all_captions(ds, &texts, &t2i);
        SG_CHECK(nt > 0, "captions");
        float *ig = sg_xmalloc(sizeof(float) * (size_t)ds->n * E);
        float *ic = sg_xmalloc(sizeof(float) * (size_t)ds->n * E);
        float *tg = sg_xmalloc(sizeof(float) * (size_t)nt * E);
        float *tc = sg_xmalloc(sizeof(float) * (size_t)nt * E);
        sg_test_true("eval: device image embeddings",
                     sg_embed_dataset_images(&eg, ds, ig, NULL) == 0);
        sg_test_true("eval: CPU image embeddings", sg_embed_dataset_images(&ec, ds, ic, NULL) == 0);
        sg_test_true("eval: device text embeddings",
                     sg_embed_texts(&eg, (const char *const *)texts, nt, tg) == 0);
        sg_test_true("eval: CPU text embeddings",
                     sg_embed_texts(&ec, (const char *const *)texts, nt, tc) == 0);
        sg_test_close("eval: image embeddings device vs CPU", ig, ic, ds->n * E, EMB_ATOL, 0.0f);
        sg_test_close("eval: text embeddings device vs CPU", tg, tc, nt * E, EMB_ATOL, 0.0f);
        for (int64_t i = 0; i < nt; i++) free(texts[i]);
        free(texts);
        free(t2i);
        free(ig);
        free(ic);
        free(tg);
        free(tc);
        sg_dataset_free(ds);
    }
    sg_eval_model_free(&eg);
    sg_eval_model_free(&ec);
}

int main(void)
{
    const char *on_cpu = getenv("SG_CUDA_TRAIN_ON_CPU");
    if (on_cpu && !strcmp(on_cpu, "1")) {
        g_gpu = "cpu";
        g_gpu_dev = SG_DEVICE_CPU;
        printf("test_cuda_train: SG_CUDA_TRAIN_ON_CPU=1: the CPU stands in for the GPU\n");
    } else if (!sg_cuda_available()) {
        printf("test_cuda_train: no CUDA GPU visible: skipped\n");
        return SG_TEST_SKIP;
    }
    make_fixture();
    check_input_path();
    check_sogclr();
    check_logit_scale_losses("clip");
    check_logit_scale_losses("fastclip");
    check_cross_resume();
    check_bf16();
    check_eval();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (sg_test_failures() == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    return sg_test_summary("test_cuda_train");
}
