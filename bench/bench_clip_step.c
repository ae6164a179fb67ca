/*
 * bench/bench_clip_step.c — one CLIP training step on the CPU or a CUDA GPU: forward of both
 * towers, two-way SogCLR loss (tau 0.01, gamma 0.9, N = 100 B), backward, AdamW step (lr 1e-4,
 * wd 0.1). The PyTorch peer is bench/torch_clip_step.py (same model config, synthetic data, loss
 * and optimizer; --device cuda --precision bf16 there too); bench/clip_step_compare.py runs both
 * on the CPU and bench/gpu.sh on the GPU, and print the ratios (README Performance).
 *
 *   bench_clip_step --config bench/configs/clip-small.yaml [--batch 64] [--threads 2]
 *                   [--steps 6] [--warmup 2] [--recompute] [--text-len captions|full] [--json]
 *                   [--device cpu|cuda] [--precision fp32|bf16]
 *   bench_clip_step --loss-only B [--dim 512] [--device cuda] ...   (the SogCLR step alone)
 * Prints the activation plan, then per-phase times (median ms: forward, loss, backward,
 * optimizer; on CUDA each phase is closed by a device synchronisation), the step time of
 * back-to-back steps without those synchronisations (what training sees), pairs/s, the
 * process's peak RSS, and on CUDA the model FLOP rate and MFU (bench/flops.h; against the
 * H100/H200 dense bf16 peak of 989 TFLOP/s and the ~790 TFLOP/s a large bf16 GEMM reaches).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/common.h"
#include "core/ctx.h"
#include "core/rng.h"
#include "bench/flops.h"
#include "losses/sogclr.h"
#include "model/clip.h"
#include "model/clip_config.h"
#include "nn/optim.h"

struct opts {
    const char *config;
    int batch, threads, steps, warmup, recompute, json, full_text;
    int cuda, bf16, loss_only, dim;
};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int parse(struct opts *o, int argc, char **argv)
{
    *o = (struct opts){NULL, 64, 2, 6, 2, 0, 0, 0, 0, 0, 0, 512};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--recompute"))
            o->recompute = 1;
        else if (!strcmp(a, "--json"))
            o->json = 1;
        else if (v && !strcmp(a, "--config"))
            o->config = argv[++i];
        else if (v && !strcmp(a, "--batch"))
            o->batch = atoi(argv[++i]);
        else if (v && !strcmp(a, "--threads"))
            o->threads = atoi(argv[++i]);
        else if (v && !strcmp(a, "--steps"))
            o->steps = atoi(argv[++i]);
        else if (v && !strcmp(a, "--warmup"))
            o->warmup = atoi(argv[++i]);
        else if (v && !strcmp(a, "--text-len"))
            o->full_text = !strcmp(argv[++i], "full");
        else if (v && !strcmp(a, "--device"))
            o->cuda = !strcmp(argv[++i], "cuda");
        else if (v && !strcmp(a, "--precision"))
            o->bf16 = !strcmp(argv[++i], "bf16");
        else if (v && !strcmp(a, "--loss-only"))
            o->loss_only = atoi(argv[++i]);
        else if (v && !strcmp(a, "--dim"))
            o->dim = atoi(argv[++i]);
        else
            return -1;
    }
    if (o->loss_only) return o->loss_only >= 2 && o->dim >= 1 && o->steps >= 1 ? 0 : -1;
    return o->config && o->batch >= 2 && o->threads >= 1 && o->steps >= 1 ? 0 : -1;
}

/* EOT position of row b, the same rule as bench/torch_clip_step.py: caption-like lengths
 * [8, 39] (Flickr8k captions average 11.7 words; the longest of a 64-caption batch 23 words on
 * average) or, with full, row 0 at T-1 and the others spread over [1, T-2]. */
static int eot_position(int b, int T, int full)
{
    if (!full) return 8 + (b * 13) % 32 < T - 1 ? 8 + (b * 13) % 32 : T - 1;
    return b == 0 ? T - 1 : 1 + (b * 37) % (T - 2);
}

/* Synthetic batch: images N(0,1); token rows [1..V-2]* EOT(V-1) 0*. */
static void synth(const struct sg_clip_config *cfg, int B, int full, float *img, int32_t *ids,
                  int64_t *idx)
{
    struct sg_rng r;
    int S = cfg->vision.image_size, T = cfg->text.context_length, V = cfg->text.vocab_size;
    sg_rng_seed(&r, 1234);
    sg_rng_normal(&r, img, (int64_t)B * 3 * S * S, 0.0f, 1.0f);
    for (int b = 0; b < B; b++) {
        int len = eot_position(b, T, full) + 1;
        for (int t = 0; t < T; t++)
            ids[(size_t)b * T + t] =
                t < len - 1 ? 1 + (int32_t)(sg_rng_u32(&r) % (uint32_t)(V - 2)) : 0;
        ids[(size_t)b * T + len - 1] = V - 1;
        idx[b] = b;
    }
}

struct phases {
    double fwd, loss, bwd, opt;
};

static void step(struct sg_clip *m, struct sg_ctx *c, struct sogclr *l, struct sg_optim *o,
                 const float *img, const int32_t *ids, const int64_t *idx, float *dzi, float *dzt,
                 struct phases *t)
{
    int B = m->B, E = m->cfg.embed_dim;
    int sync = t != NULL; /* close each phase with a device sync (no-op on the CPU) */
    double t0 = now_ms();
    sg_params_zero_grad(&m->ps);
    sg_clip_forward(m, c, img, ids, 1);
    if (sync) sg_ctx_sync(c);
    double t1 = now_ms();
    SG_CHECK(sogclr_step(c, l, m->zi, m->zt, idx, B, E, dzi, dzt, NULL) == 0, "loss: %s",
             sg_last_error());
    if (sync) sg_ctx_sync(c);
    double t2 = now_ms();
    sg_clip_backward(m, c, dzi, dzt);
    if (sync) sg_ctx_sync(c);
    double t3 = now_ms();
    sg_optim_step(o, &m->ps, c, 1e-4f);
    if (sync) sg_ctx_sync(c);
    double t4 = now_ms();
    if (t) *t = (struct phases){t1 - t0, t2 - t1, t3 - t2, t4 - t3};
}

static size_t peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss;
}

/* The two-way SogCLR step alone on (B, d) unit features (txt = normalise(img + 0.6 noise)),
 * dataset N = 4B, step k on ids (kB + i) mod N. */
static int bench_loss_only(const struct opts *o, struct sg_ctx *c)
{
    int B = o->loss_only, d = o->dim;
    size_t bd = (size_t)B * d * sizeof(float);
    float *zi = sg_xmalloc(bd), *zt = sg_xmalloc(bd);
    struct sg_rng r;
    sg_rng_seed(&r, 7);
    sg_rng_normal(&r, zi, (int64_t)B * d, 0.0f, 1.0f);
    sg_rng_normal(&r, zt, (int64_t)B * d, 0.0f, 0.6f);
    for (int b = 0; b < B; b++) {
        double ni = 0, nt = 0;
        for (int k = 0; k < d; k++) {
            zt[b * d + k] += zi[b * d + k];
            ni += (double)zi[b * d + k] * zi[b * d + k];
            nt += (double)zt[b * d + k] * zt[b * d + k];
        }
        for (int k = 0; k < d; k++)
            zi[b * d + k] /= (float)sqrt(ni), zt[b * d + k] /= (float)sqrt(nt);
    }
    float *gzi = sg_dev_alloc(c, bd), *gzt = sg_dev_alloc(c, bd);
    float *dzi = sg_dev_alloc(c, bd), *dzt = sg_dev_alloc(c, bd);
    sg_memcpy_h2d(c, gzi, zi, bd);
    sg_memcpy_h2d(c, gzt, zt, bd);
    int64_t *idx = sg_xmalloc((size_t)B * sizeof(int64_t));
    int64_t *gidx = sg_dev_alloc(c, (size_t)B * sizeof(int64_t)); /* the loss reads ids on c */
    struct sogclr loss;
    struct sogclr_config lc = {.N = 4 * (int64_t)B, .tau = 0.01f, .gamma = 0.9f};
    SG_CHECK(sogclr_init(&loss, &lc) == 0, "%s", sg_last_error());
    double *ts = sg_xmalloc((size_t)o->steps * sizeof(double));
    for (int k = 0; k < o->warmup + o->steps; k++) {
        for (int b = 0; b < B; b++) idx[b] = ((int64_t)k * B + b) % lc.N;
        double t0 = now_ms();
        sg_memcpy_h2d(c, gidx, idx, (size_t)B * sizeof(int64_t));
        SG_CHECK(sogclr_step(c, &loss, gzi, gzt, gidx, B, d, dzi, dzt, NULL) == 0, "loss: %s",
                 sg_last_error());
        sg_ctx_sync(c);
        if (k >= o->warmup) ts[k - o->warmup] = now_ms() - t0;
    }
    double med = median(ts, o->steps), fl = 3.0 * 2.0 * B * (double)B * d;
    printf("{\"bench\": \"sogclr_loss\", \"device\": \"%s\", \"batch\": %d, \"dim\": %d, "
           "\"step_ms\": %.3f, \"gemm_tflops\": %.1f}\n",
           sg_device_name(c->dev), B, d, med, fl / (med * 1e-3) / 1e12);
    sogclr_free(&loss);
    return 0;
}

/* Largest EOT position + 1 of the synthetic batch: the tokens the text tower runs. */
static int text_tokens_run(int B, int T, int full)
{
    int te = 1;
    for (int b = 0; b < B; b++)
        if (eot_position(b, T, full) + 1 > te) te = eot_position(b, T, full) + 1;
    return te;
}

static void report(const struct opts *o, const struct sg_clip_config *cfg, const double *med,
                   double step_ms, double flops)
{
    int B = o->batch;
    double rss = (double)peak_rss_kb() / 1024.0, tflops = flops / (step_ms * 1e-3) / 1e12;
    if (o->json)
        printf("{\"config\": \"%s\", \"device\": \"%s\", \"precision\": \"%s\", \"batch\": %d, "
               "\"threads\": %d, \"step_ms\": %.2f, \"pairs_per_s\": %.2f, \"peak_rss_mb\": %.1f, "
               "\"forward_ms\": %.2f, \"loss_ms\": %.2f, \"backward_ms\": %.2f, "
               "\"optimizer_ms\": %.2f, \"recompute\": %d, \"text_len\": \"%s\", "
               "\"model_tflop_per_step\": %.4f, \"tflops\": %.2f, \"mfu_989\": %.4f, "
               "\"mfu_790\": %.4f}\n",
               o->config, o->cuda ? "cuda" : "cpu", o->bf16 ? "bf16" : "fp32", B, o->threads,
               step_ms, 1e3 * B / step_ms, rss, med[0], med[1], med[2], med[3], o->recompute,
               o->full_text ? "full" : "captions", flops / 1e12, tflops, tflops / 989.0,
               tflops / 790.0);
    else
        printf("step %.1f ms back to back; phases (synchronised) forward %.1f, loss %.1f, "
               "backward %.1f, optimizer %.1f ms: %.1f pairs/s, %.1f TFLOP/s model (%.1f%% of "
               "989, %.1f%% of 790), peak RSS %.0f MiB\n",
               step_ms, med[0], med[1], med[2], med[3], 1e3 * B / step_ms, tflops,
               100 * tflops / 989.0, 100 * tflops / 790.0, rss);
    (void)cfg;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse(&o, argc, argv)) {
        fprintf(stderr, "usage: bench_clip_step --config FILE.yaml [--batch B] [--threads N] "
                        "[--steps N] [--warmup N] [--recompute] [--text-len captions|full] "
                        "[--json] [--device cpu|cuda] [--precision fp32|bf16]\n"
                        "       bench_clip_step --loss-only B [--dim D] [--device cuda]\n");
        return 2;
    }
    struct sg_ctx c;
    if (sg_ctx_init(&c, o.cuda ? SG_DEVICE_CUDA : SG_DEVICE_CPU, 0, o.threads)) {
        fprintf(stderr, "bench_clip_step: %s\n", sg_last_error());
        return 1;
    }
    c.precision = o.bf16 ? SG_PREC_BF16 : SG_PREC_FP32;
    if (o.loss_only) return bench_loss_only(&o, &c);
    struct sg_clip_config cfg;
    if (sg_clip_config_load(&cfg, o.config)) {
        fprintf(stderr, "bench_clip_step: %s\n", sg_last_error());
        return 2;
    }
    cfg.grad_checkpointing = o.recompute;
    struct sg_clip *m = sg_xcalloc(1, sizeof *m);
    sg_clip_create(m, &cfg, &c, 1, 0);
    sg_clip_plan(m, o.batch);
    if (!o.json) sg_clip_print_plan(m, stdout);

    int B = o.batch, S = cfg.vision.image_size, T = cfg.text.context_length, E = cfg.embed_dim;
    size_t img_bytes = (size_t)B * 3 * S * S * sizeof(float), be = (size_t)B * E * sizeof(float);
    float *img = sg_xmalloc(img_bytes);
    int32_t *ids = sg_xmalloc((size_t)B * T * sizeof(int32_t));
    int64_t *idx = sg_xmalloc((size_t)B * sizeof(int64_t));
    synth(&cfg, B, o.full_text, img, ids, idx);
    float *dimg = sg_dev_alloc(&c, img_bytes), *dzi = sg_dev_alloc(&c, be);
    float *dzt = sg_dev_alloc(&c, be);
    sg_memcpy_h2d(&c, dimg, img, img_bytes); /* the input path is measured elsewhere */
    int64_t *gidx = sg_dev_alloc(&c, (size_t)B * sizeof(int64_t)); /* the loss reads ids on c */
    sg_memcpy_h2d(&c, gidx, idx, (size_t)B * sizeof(int64_t));

    struct sogclr loss;
    struct sogclr_config lc = {.N = 100 * (int64_t)B, .tau = 0.01f, .gamma = 0.9f};
    SG_CHECK(sogclr_init(&loss, &lc) == 0, "%s", sg_last_error());
    struct sg_optim opt;
    struct sg_optim_config oc = {.kind = SG_OPT_ADAMW,
                                 .lr = 1e-4f,
                                 .weight_decay = 0.1f,
                                 .beta1 = 0.9f,
                                 .beta2 = 0.999f,
                                 .eps = 1e-8f};
    SG_CHECK(sg_optim_init(&opt, &oc, &m->ps) == 0, "%s", sg_last_error());

    double *ph[4], med[4];
    for (int k = 0; k < 4; k++) ph[k] = sg_xmalloc((size_t)o.steps * sizeof(double));
    struct phases t;
    for (int i = 0; i < o.warmup + o.steps; i++) {
        step(m, &c, &loss, &opt, dimg, ids, gidx, dzi, dzt, &t);
        if (i < o.warmup) continue;
        int j = i - o.warmup;
        ph[0][j] = t.fwd, ph[1][j] = t.loss, ph[2][j] = t.bwd, ph[3][j] = t.opt;
    }
    for (int k = 0; k < 4; k++) med[k] = median(ph[k], o.steps);
    /* back to back: what a training loop sees (host work overlaps the GPU's queue) */
    sg_ctx_sync(&c);
    double t0 = now_ms();
    for (int i = 0; i < o.steps; i++) step(m, &c, &loss, &opt, dimg, ids, gidx, dzi, dzt, NULL);
    sg_ctx_sync(&c);
    double step_ms = (now_ms() - t0) / o.steps;
    double flops =
        3.0 * (flops_image(&cfg, B) + flops_text(&cfg, B, text_tokens_run(B, T, o.full_text)));
    report(&o, &cfg, med, step_ms, flops);
    return 0;
}
