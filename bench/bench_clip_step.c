/*
 * bench/bench_clip_step.c — one CLIP training step on the CPU: forward of both towers,
 * two-way SogCLR loss (tau 0.01, gamma 0.9, N = 100 B), backward, AdamW step (lr 1e-4, wd 0.1).
 * The PyTorch peer is bench/torch_clip_step.py (same model config, synthetic data, loss and
 * optimizer); bench/clip_step_compare.py runs both and prints the ratios (README Performance).
 *
 *   bench_clip_step --config bench/configs/clip-small.yaml [--batch 64] [--threads 2]
 *                   [--steps 6] [--warmup 2] [--recompute] [--text-len captions|full] [--json]
 * Prints the activation plan, then per-phase times (median ms: forward, loss, backward,
 * optimizer), pairs/s and the process's peak RSS.
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
#include "losses/sogclr.h"
#include "model/clip.h"
#include "model/clip_config.h"
#include "nn/optim.h"

struct opts {
    const char *config;
    int batch, threads, steps, warmup, recompute, json, full_text;
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
    *o = (struct opts){NULL, 64, 2, 6, 2, 0, 0, 0};
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
        else
            return -1;
    }
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
    double t0 = now_ms();
    sg_params_zero_grad(&m->ps);
    sg_clip_forward(m, c, img, ids, 1);
    double t1 = now_ms();
    SG_CHECK(sogclr_step(c, l, m->zi, m->zt, idx, B, E, dzi, dzt, NULL) == 0, "loss: %s",
             sg_last_error());
    double t2 = now_ms();
    sg_clip_backward(m, c, dzi, dzt);
    double t3 = now_ms();
    sg_optim_step(o, &m->ps, c, 1e-4f);
    double t4 = now_ms();
    *t = (struct phases){t1 - t0, t2 - t1, t3 - t2, t4 - t3};
}

static size_t peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse(&o, argc, argv)) {
        fprintf(stderr,
                "usage: bench_clip_step --config FILE.yaml [--batch B] [--threads N] "
                "[--steps N] [--warmup N] [--recompute] [--text-len captions|full] [--json]\n");
        return 2;
    }
    struct sg_clip_config cfg;
    if (sg_clip_config_load(&cfg, o.config)) {
        fprintf(stderr, "bench_clip_step: %s\n", sg_last_error());
        return 2;
    }
    cfg.grad_checkpointing = o.recompute;
    struct sg_ctx c;
    SG_CHECK(sg_ctx_init(&c, SG_DEVICE_CPU, 0, o.threads) == 0, "%s", sg_last_error());
    struct sg_clip *m = sg_xcalloc(1, sizeof *m);
    sg_clip_create(m, &cfg, &c, 1, 0);
    sg_clip_plan(m, o.batch);
    if (!o.json) sg_clip_print_plan(m, stdout);

    int B = o.batch, S = cfg.vision.image_size, T = cfg.text.context_length, E = cfg.embed_dim;
    float *img = sg_xmalloc((size_t)B * 3 * S * S * sizeof(float));
    int32_t *ids = sg_xmalloc((size_t)B * T * sizeof(int32_t));
    int64_t *idx = sg_xmalloc((size_t)B * sizeof(int64_t));
    float *dzi = sg_xmalloc((size_t)B * E * sizeof(float));
    float *dzt = sg_xmalloc((size_t)B * E * sizeof(float));
    synth(&cfg, B, o.full_text, img, ids, idx);

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

    double *tot = sg_xmalloc((size_t)o.steps * sizeof(double));
    double *ph[4];
    for (int k = 0; k < 4; k++) ph[k] = sg_xmalloc((size_t)o.steps * sizeof(double));
    struct phases t;
    for (int i = 0; i < o.warmup + o.steps; i++) {
        step(m, &c, &loss, &opt, img, ids, idx, dzi, dzt, &t);
        if (i < o.warmup) continue;
        int j = i - o.warmup;
        ph[0][j] = t.fwd, ph[1][j] = t.loss, ph[2][j] = t.bwd, ph[3][j] = t.opt;
        tot[j] = t.fwd + t.loss + t.bwd + t.opt;
    }
    double step_ms = median(tot, o.steps), rss = (double)peak_rss_kb() / 1024.0;
    double med[4];
    for (int k = 0; k < 4; k++) med[k] = median(ph[k], o.steps);
    if (o.json)
        printf("{\"config\": \"%s\", \"batch\": %d, \"threads\": %d, \"step_ms\": %.2f, "
               "\"pairs_per_s\": %.2f, \"peak_rss_mb\": %.1f, \"forward_ms\": %.2f, "
               "\"loss_ms\": %.2f, \"backward_ms\": %.2f, \"optimizer_ms\": %.2f, "
               "\"recompute\": %d, \"text_len\": \"%s\"}\n",
               o.config, B, o.threads, step_ms, 1e3 * B / step_ms, rss, med[0], med[1], med[2],
               med[3], o.recompute, o.full_text ? "full" : "captions");
    else
        printf("step %.1f ms (forward %.1f, loss %.1f, backward %.1f, optimizer %.1f): %.1f "
               "pairs/s, peak RSS %.0f MiB\n",
               step_ms, med[0], med[1], med[2], med[3], 1e3 * B / step_ms, rss);
    return 0;
}
