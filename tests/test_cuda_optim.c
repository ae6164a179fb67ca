/*
 * tests/test_cuda_optim.c — the optimizers on CUDA (nn/cuda/optim.cu) against the CPU fast path
 * (nn/optim.c, itself checked against torch by tests/test_optim.c).
 *
 * One parameter table (multi-chunk and odd sizes with float4 tails, DECAY and no-decay, a
 * BUFFER, 0-d / 1-d / 2-d / 4-d, a zero-valued matrix for LARS's ||p|| = 0 rule, a matrix with
 * zero grads) is built on a CPU context (2 threads) and on a CUDA context with identical values.
 * For AdamW, SGD, SGD + Nesterov, SGD without momentum and LARS, each without and with global
 * norm clipping (active: grad norm ~27, max 5), 5 steps with a different lr per step run on both
 * (the two SG_PARAM_TEMPERATURE params at lr_tau = 0.37 lr: FastCLIP's logit_scale group);
 * after every step the returned grad norms and all parameters are compared, at the end the
 * moments (m; v for AdamW), the step counters, the untouched buffer and the unscaled grads.
 * The clipped AdamW and LARS runs are repeated on the GPU and must be bit-identical (no atomics).
 * A NaN and then an Inf grad must skip the step on both (norm returned, params / moments /
 * counter unchanged) and the next finite step must proceed on both. Finally a ViT-B/32 CLIP sized
 * table (~150M params, ~300 tensors) times AdamW and LARS steps (information only; skipped
 * with --quick, e.g. under compute-sanitizer). Exits 77 (ctest SKIP) when no CUDA GPU is visible.
 *
 * Tolerances:
 *  - AdamW / SGD without clipping: bit-identical (exact). The per-step scalars come from the same
 *    host code and each element update is the same sequence of correctly rounded float
 *    operations on both devices (explicit fmaf where torch fuses; -ffp-contract=off on the CPU,
 *    non-contractible _rn intrinsics on the GPU).
 *  - Grad norms: the terms are exact in double on both devices, only the order of the double
 *    additions differs (relative difference ~1e-15), so the float norms agree, at worst by an ulp:
 *    rtol 2.4e-7.
 *  - Clipped runs and LARS: the clip scale and the trust ratios come from those norms, so they can
 *    differ by an ulp, which moves every update by ~1 ulp of its size (and m, v by an ulp where a
 *    sum cancels): atol 2e-6 * rms(param's values) + rtol 2e-6. A wrong formula (decay on the
 *    wrong params, a missing bias correction or trust ratio) moves values by >= 1e-4 relative.
 * Every check prints its max abs error, max ulp distance and whether it was bit-identical; a
 * failure lists the first mismatches by parameter name and index.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/common.h"
#include "core/ctx.h"
#include "core/params.h"
#include "nn/optim.h"
#include "tests/testutil.h"

#define STEPS    5
#define NORM_TOL 2.4e-7f
#define REL_RMS  2e-6 /* atol = REL_RMS * rms of the parameter's reference values */
#define RTOL     2e-6

static const struct pdef {
    const char *name;
    int ndim;
    int64_t shape[4];
    unsigned flags;
} PARAMS[] = {
    {"big.weight", 2, {517, 389}, SG_PARAM_DECAY}, /* 201113: 50 chunks, float4 tail of 1 */
    {"big.bias", 1, {389}, 0},
    {"conv.weight", 4, {64, 33, 3, 3}, SG_PARAM_DECAY}, /* 19008: 5 chunks */
    {"bn.running_var", 1, {389}, SG_PARAM_BUFFER},
    {"fc.weight", 2, {37, 23}, SG_PARAM_DECAY},
    {"zero.weight", 2, {5, 7}, SG_PARAM_DECAY},   /* data 0 at start: LARS ratio 1 */
    {"nograd.weight", 2, {6, 4}, SG_PARAM_DECAY}, /* grad 0: only decay moves it */
    {"ln.weight", 1, {33}, 0},
    {"logit_scale", 0, {0}, SG_PARAM_TEMPERATURE}, /* lr_tau = 0.37 lr (FastCLIP's group) */
    {"scale", 1, {1}, SG_PARAM_TEMPERATURE},
    {"tail.weight", 2, {3, 3}, 0}, /* matrix without DECAY: LARS decays it, AdamW/SGD not */
};
#define NPARAMS ((int)(sizeof PARAMS / sizeof PARAMS[0]))

static const struct ocase {
    const char *name;
    struct sg_optim_config cfg;
    int exact; /* bit-identical to the CPU expected */
} CASES[] = {
    {"adamw",
     {.kind = SG_OPT_ADAMW,
      .lr = 1e-2f,
      .weight_decay = 0.1f,
      .beta1 = 0.9f,
      .beta2 = 0.999f,
      .eps = 1e-8f},
     1},
    {"adamw_clip",
     {.kind = SG_OPT_ADAMW,
      .lr = 5e-3f,
      .weight_decay = 0.2f,
      .beta1 = 0.9f,
      .beta2 = 0.98f,
      .eps = 1e-6f,
      .clip_grad_norm = 5.0f},
     0},
    {"sgd", {.kind = SG_OPT_SGD, .lr = 0.1f, .weight_decay = 0.01f, .momentum = 0.9f}, 1},
    {"sgd_clip",
     {.kind = SG_OPT_SGD,
      .lr = 0.1f,
      .weight_decay = 0.01f,
      .momentum = 0.9f,
      .clip_grad_norm = 5.0f},
     0},
    {"sgd_nesterov",
     {.kind = SG_OPT_SGD, .lr = 0.1f, .weight_decay = 0.01f, .momentum = 0.9f, .nesterov = 1},
     1},
    {"sgd_nesterov_clip",
     {.kind = SG_OPT_SGD,
      .lr = 0.1f,
      .weight_decay = 0.01f,
      .momentum = 0.9f,
      .nesterov = 1,
      .clip_grad_norm = 5.0f},
     0},
    {"sgd_nomomentum", {.kind = SG_OPT_SGD, .lr = 0.1f, .weight_decay = 0.01f}, 1},
    {"lars",
     {.kind = SG_OPT_LARS,
      .lr = 1.2f,
      .weight_decay = 0.05f,
      .momentum = 0.9f,
      .trust_coef = 0.001f},
     0},
    {"lars_clip",
     {.kind = SG_OPT_LARS,
      .lr = 1.2f,
      .weight_decay = 0.05f,
      .momentum = 0.9f,
      .trust_coef = 0.001f,
      .clip_grad_norm = 5.0f},
     0},
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

/* ---- table and host values ---------------------------------------------------------------- */

static void build(struct sg_params *ps, struct sg_ctx *c)
{
    sg_params_init(ps);
    for (int i = 0; i < NPARAMS; i++)
        sg_params_add(ps, PARAMS[i].name, PARAMS[i].ndim, PARAMS[i].shape, PARAMS[i].flags, 0);
    sg_params_alloc(ps, c, 1);
}

static void set_param(const struct sg_params *ps, float *arena, const char *name, float x)
{
    const struct sg_param *p = sg_params_find(ps, name);
    for (int64_t i = 0; i < p->numel; i++) arena[p->offset + i] = x;
}

/* Host arena of initial values: uniform(-1, 1), zero.weight 0, the buffer 7. */
static float *init_values(const struct sg_params *ps)
{
    float *h = sg_xmalloc(ps->total * sizeof(float));
    sg_test_fill(h, (int64_t)ps->total, 1, -1.0f, 1.0f);
    set_param(ps, h, "zero.weight", 0.0f);
    set_param(ps, h, "bn.running_var", 7.0f);
    return h;
}

/* Host arena of step k's grads: uniform(-0.1, 0.1), nograd.weight 0, the buffer 1000 (must stay
 * out of the norm and the update). */
static void grads_for(const struct sg_params *ps, int k, float *h)
{
    sg_test_fill(h, (int64_t)ps->total, 100 + (uint64_t)k, -0.1f, 0.1f);
    set_param(ps, h, "nograd.weight", 0.0f);
    set_param(ps, h, "bn.running_var", 1000.0f);
}

static float *fetch(struct sg_ctx *c, const float *arena, size_t total)
{
    float *h = sg_xmalloc(total * sizeof(float));
    sg_memcpy_d2h(c, h, arena, total * sizeof(float));
    return h;
}

/* ---- comparison --------------------------------------------------------------------------- */

static int64_t ulp_dist(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    int64_t oa = ia < 0 ? (int64_t)INT32_MIN - ia : ia, ob = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return oa > ob ? oa - ob : ob - oa;
}

/* got (GPU) vs want (CPU) over every trainable param of ps's layout; exact: bitwise. */
static int compare(const char *label, const struct sg_params *ps, const float *got,
                   const float *want, int exact)
{
    int64_t bad = 0, n = 0, maxulp = 0, nequal = 0;
    double maxabs = 0.0;
    for (int i = 0; i < ps->n; i++) {
        const struct sg_param *p = ps->items[i];
        if (p->flags & SG_PARAM_BUFFER) continue;
        const float *g = got + p->offset, *w = want + p->offset;
        double ss = 0.0;
        for (int64_t j = 0; j < p->numel; j++) ss += (double)w[j] * w[j];
        double atol = REL_RMS * sqrt(ss / (double)p->numel);
        for (int64_t j = 0; j < p->numel; j++, n++) {
            int same = memcmp(&g[j], &w[j], 4) == 0;
            double d = fabs((double)g[j] - (double)w[j]);
            int64_t u = ulp_dist(g[j], w[j]);
            nequal += same;
            if (isnan(d)) d = INFINITY;
            maxabs = SG_MAX(maxabs, d);
            maxulp = SG_MAX(maxulp, u);
            int ok = exact ? same : d <= atol + RTOL * fabs((double)w[j]);
            if (!ok && bad++ < 8)
                fprintf(stderr, "  %s: %s[%lld]: got %.9g, want %.9g (diff %.3g, %lld ulp)\n",
                        label, p->name, (long long)j, g[j], w[j], d, (long long)u);
        }
    }
    printf("     %s: max abs err %.3g, max %lld ulp, %s\n", label, maxabs, (long long)maxulp,
           nequal == n ? "bit-identical" : "not bit-identical");
    if (bad)
        fprintf(stderr, "     %s: %lld of %lld elements out of tolerance (%s)\n", label,
                (long long)bad, (long long)n, exact ? "bitwise expected" : "atol/rtol");
    return sg_test_true(label, bad == 0);
}

static int buffer_is(const struct sg_params *ps, const float *arena, float x)
{
    const struct sg_param *b = sg_params_find(ps, "bn.running_var");
    for (int64_t i = 0; i < b->numel; i++)
        if (arena[b->offset + i] != x) return 0;
    return 1;
}

/* ---- one optimizer run on one device ------------------------------------------------------ */

struct run {
    float *data[STEPS]; /* (total) params after each step */
    float *m, *v, *grad;
    float norm[STEPS], last[STEPS];
    int64_t step;
};

static void run_opt(struct sg_ctx *c, const struct sg_optim_config *cfg, struct run *r)
{
    struct sg_params ps;
    struct sg_optim o;
    build(&ps, c);
    float *h = init_values(&ps), *hg = sg_xmalloc(ps.total * sizeof(float));
    sg_memcpy_h2d(c, ps.data, h, ps.total * sizeof(float));
    SG_CHECK(sg_optim_init(&o, cfg, &ps) == 0, "%s", sg_last_error());
    for (int k = 0; k < STEPS; k++) {
        grads_for(&ps, k, hg);
        sg_memcpy_h2d(c, ps.grad, hg, ps.total * sizeof(float));
        float lr = cfg->lr * (float)(k + 1) / (float)STEPS;
        r->norm[k] = sg_optim_step_tau(&o, &ps, c, lr, 0.37f * lr);
        r->last[k] = o.last_grad_norm;
        r->data[k] = fetch(c, ps.data, ps.total);
    }
    r->m = fetch(c, ps.m, ps.total);
    r->v = fetch(c, ps.v, ps.total);
    r->grad = fetch(c, ps.grad, ps.total);
    r->step = o.step;
    sg_optim_free(&o);
    sg_params_free(&ps);
    free(h);
    free(hg);
}

static void run_free(struct run *r)
{
    for (int k = 0; k < STEPS; k++) free(r->data[k]);
    free(r->m);
    free(r->v);
    free(r->grad);
}

static void test_case(struct sg_ctx *cpu, struct sg_ctx *gpu, const struct ocase *oc)
{
    struct sg_params ref;
    build(&ref, cpu); /* layout for the comparisons (same on both devices) */
    float *hg = sg_xmalloc(ref.total * sizeof(float));
    struct run rc, rg;
    run_opt(cpu, &oc->cfg, &rc);
    run_opt(gpu, &oc->cfg, &rg);
    char label[160];
    printf("---- %s\n", oc->name);
    for (int k = 0; k < STEPS; k++) {
        snprintf(label, sizeof label, "%s step %d grad norm (returned, last_grad_norm)", oc->name,
                 k);
        float got[2] = {rg.norm[k], rg.last[k]}, want[2] = {rc.norm[k], rc.norm[k]};
        sg_test_close(label, got, want, 2, 0.0f, NORM_TOL);
        if (oc->cfg.clip_grad_norm > 0.0f && k == 0) {
            snprintf(label, sizeof label, "%s: clipping active (norm %g > %g)", oc->name,
                     rc.norm[0], oc->cfg.clip_grad_norm);
            sg_test_true(label, rc.norm[0] > oc->cfg.clip_grad_norm);
        }
        snprintf(label, sizeof label, "%s step %d params", oc->name, k);
        compare(label, &ref, rg.data[k], rc.data[k], oc->exact);
    }
    int kind = oc->cfg.kind;
    if (!(kind == SG_OPT_SGD && oc->cfg.momentum == 0.0f)) {
        snprintf(label, sizeof label, "%s final m (%s)", oc->name,
                 kind == SG_OPT_ADAMW ? "exp_avg" : "momentum buffer");
        compare(label, &ref, rg.m, rc.m, oc->exact);
    }
    if (kind == SG_OPT_ADAMW) {
        snprintf(label, sizeof label, "%s final v (exp_avg_sq)", oc->name);
        compare(label, &ref, rg.v, rc.v, oc->exact);
    }
    grads_for(&ref, STEPS - 1, hg);
    snprintf(label, sizeof label,
             "%s: step counters 5, buffer untouched (7), grads unscaled on both devices", oc->name);
    sg_test_true(label, rc.step == STEPS && rg.step == STEPS &&
                            buffer_is(&ref, rg.data[STEPS - 1], 7.0f) &&
                            buffer_is(&ref, rc.data[STEPS - 1], 7.0f) &&
                            memcmp(rg.grad, hg, ref.total * sizeof(float)) == 0 &&
                            memcmp(rc.grad, hg, ref.total * sizeof(float)) == 0);
    if (!oc->exact && kind != SG_OPT_SGD) { /* adamw_clip, lars, lars_clip */
        struct run r2;
        run_opt(gpu, &oc->cfg, &r2);
        snprintf(label, sizeof label, "%s: GPU rerun bit-identical (norms, params, m, v)",
                 oc->name);
        int same = memcmp(r2.norm, rg.norm, sizeof r2.norm) == 0;
        for (int k = 0; k < STEPS; k++)
            same = same && memcmp(r2.data[k], rg.data[k], ref.total * sizeof(float)) == 0;
        same = same && memcmp(r2.m, rg.m, ref.total * sizeof(float)) == 0 &&
               memcmp(r2.v, rg.v, ref.total * sizeof(float)) == 0;
        sg_test_true(label, same);
        run_free(&r2);
    }
    run_free(&rc);
    run_free(&rg);
    free(hg);
    sg_params_free(&ref);
}

/* ---- non-finite grads ----------------------------------------------------------------------- */

struct nf_side {
    struct sg_ctx *c;
    struct sg_params ps;
    struct sg_optim o;
};

/* Step with step k's grads, with `bad` (NaN / Inf) at param `name` index 3 when name != NULL. */
static float nf_step(struct nf_side *s, float *hg, int k, const char *name, float bad)
{
    grads_for(&s->ps, k, hg);
    if (name) hg[sg_params_find(&s->ps, name)->offset + 3] = bad;
    sg_memcpy_h2d(s->c, s->ps.grad, hg, s->ps.total * sizeof(float));
    return sg_optim_step(&s->o, &s->ps, s->c, 1e-2f);
}

static void test_nonfinite(struct sg_ctx *cpu, struct sg_ctx *gpu)
{
    struct nf_side sd[2] = {{.c = cpu}, {.c = gpu}};
    float *hg = NULL;
    for (int d = 0; d < 2; d++) {
        build(&sd[d].ps, sd[d].c);
        float *h = init_values(&sd[d].ps);
        sg_memcpy_h2d(sd[d].c, sd[d].ps.data, h, sd[d].ps.total * sizeof(float));
        free(h);
        SG_CHECK(sg_optim_init(&sd[d].o, &CASES[1].cfg, &sd[d].ps) == 0, "%s", sg_last_error());
        hg = hg ? hg : sg_xmalloc(sd[d].ps.total * sizeof(float));
    }
    size_t total = sd[0].ps.total;
    float n0[2], nn[2], ni[2], n3[2];
    int skipped[2];
    for (int d = 0; d < 2; d++) {
        struct nf_side *s = &sd[d];
        n0[d] = nf_step(s, hg, 0, NULL, 0.0f);
        float *p0 = fetch(s->c, s->ps.data, total), *m0 = fetch(s->c, s->ps.m, total);
        float *v0 = fetch(s->c, s->ps.v, total);
        nn[d] = nf_step(s, hg, 1, "big.bias", NAN);
        ni[d] = nf_step(s, hg, 2, "conv.weight", -INFINITY);
        float *p1 = fetch(s->c, s->ps.data, total), *m1 = fetch(s->c, s->ps.m, total);
        float *v1 = fetch(s->c, s->ps.v, total);
        skipped[d] = s->o.step == 1 && memcmp(p0, p1, total * sizeof(float)) == 0 &&
                     memcmp(m0, m1, total * sizeof(float)) == 0 &&
                     memcmp(v0, v1, total * sizeof(float)) == 0;
        n3[d] = nf_step(s, hg, 3, NULL, 0.0f);
        free(p0), free(m0), free(v0), free(p1), free(m1), free(v1);
    }
    printf("---- non-finite grads: norms cpu %g %g %g %g, gpu %g %g %g %g\n", n0[0], nn[0], ni[0],
           n3[0], n0[1], nn[1], ni[1], n3[1]);
    sg_test_true("NaN grad: both return NaN; Inf grad: both return Inf",
                 isnan(nn[0]) && isnan(nn[1]) && isinf(ni[0]) && isinf(ni[1]) && isfinite(n0[0]) &&
                     isfinite(n0[1]));
    sg_test_true("non-finite steps skipped on CPU (params, m, v, step counter unchanged)",
                 skipped[0]);
    sg_test_true("non-finite steps skipped on CUDA (params, m, v, step counter unchanged)",
                 skipped[1]);
    sg_test_true("next finite step proceeds on both (step counter 2)",
                 sd[0].o.step == 2 && sd[1].o.step == 2 && isfinite(n3[0]) && isfinite(n3[1]));
    float *pc = fetch(cpu, sd[0].ps.data, total), *pg = fetch(gpu, sd[1].ps.data, total);
    compare("params after finite, NaN, Inf, finite steps (adamw_clip)", &sd[0].ps, pg, pc, 0);
    free(pc);
    free(pg);
    free(hg);
    for (int d = 0; d < 2; d++) {
        sg_optim_free(&sd[d].o);
        sg_params_free(&sd[d].ps);
    }
}

/* ---- timing: a ViT-B/32 CLIP sized table (information only) ------------------------------ */

static void add2(struct sg_params *ps, const char *name, int64_t a, int64_t b, unsigned flags)
{
    int64_t s[2] = {a, b};
    sg_params_add(ps, name, 2, s, flags, 0);
}

static void add1(struct sg_params *ps, const char *name, int64_t a)
{
    int64_t s[1] = {a};
    sg_params_add(ps, name, 1, s, 0, 0);
}

static void add_tower(struct sg_params *ps, const char *pre, int layers, int64_t w)
{
    char n[128];
    for (int l = 0; l < layers; l++) {
#define NM(x) (snprintf(n, sizeof n, "%s.resblocks.%d.%s", pre, l, x), n)
        add1(ps, NM("ln_1.weight"), w);
        add1(ps, NM("ln_1.bias"), w);
        add2(ps, NM("attn.in_proj_weight"), 3 * w, w, SG_PARAM_DECAY);
        add1(ps, NM("attn.in_proj_bias"), 3 * w);
        add2(ps, NM("attn.out_proj.weight"), w, w, SG_PARAM_DECAY);
        add1(ps, NM("attn.out_proj.bias"), w);
        add1(ps, NM("ln_2.weight"), w);
        add1(ps, NM("ln_2.bias"), w);
        add2(ps, NM("mlp.c_fc.weight"), 4 * w, w, SG_PARAM_DECAY);
        add1(ps, NM("mlp.c_fc.bias"), 4 * w);
        add2(ps, NM("mlp.c_proj.weight"), w, 4 * w, SG_PARAM_DECAY);
        add1(ps, NM("mlp.c_proj.bias"), w);
#undef NM
    }
}

static void build_vitb32(struct sg_params *ps, struct sg_ctx *c)
{
    sg_params_init(ps);
    int64_t conv[4] = {768, 3, 32, 32};
    sg_params_add(ps, "visual.conv1.weight", 4, conv, SG_PARAM_DECAY, 0);
    add1(ps, "visual.class_embedding", 768);
    add2(ps, "visual.positional_embedding", 50, 768, 0);
    add1(ps, "visual.ln_pre.weight", 768);
    add1(ps, "visual.ln_pre.bias", 768);
    add_tower(ps, "visual.transformer", 12, 768);
    add1(ps, "visual.ln_post.weight", 768);
    add1(ps, "visual.ln_post.bias", 768);
    add2(ps, "visual.proj", 768, 512, SG_PARAM_DECAY);
    add2(ps, "token_embedding.weight", 49408, 512, 0);
    add2(ps, "positional_embedding", 77, 512, 0);
    add_tower(ps, "transformer", 12, 512);
    add1(ps, "ln_final.weight", 512);
    add1(ps, "ln_final.bias", 512);
    add2(ps, "text_projection", 512, 512, SG_PARAM_DECAY);
    int64_t scalar[1] = {0};
    sg_params_add(ps, "logit_scale", 0, scalar, 0, 0);
    sg_params_alloc(ps, c, 1);
    sg_memset_zero(c, ps->data, ps->total * sizeof(float));
    sg_memset_zero(c, ps->grad, ps->total * sizeof(float));
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void time_steps(struct sg_ctx *g, const char *name, const struct sg_optim_config *cfg,
                       double bytes_per_elem)
{
    struct sg_params ps;
    struct sg_optim o;
    build_vitb32(&ps, g);
    SG_CHECK(sg_optim_init(&o, cfg, &ps) == 0, "%s", sg_last_error());
    for (int i = 0; i < 3; i++) sg_optim_step(&o, &ps, g, cfg->lr);
    sg_ctx_sync(g);
    const int iters = 20;
    double t0 = now_s();
    for (int i = 0; i < iters; i++) sg_optim_step(&o, &ps, g, cfg->lr);
    sg_ctx_sync(g);
    double dt = (now_s() - t0) / iters;
    int64_t n = sg_params_count(&ps, 1);
    printf("info %s step, ViT-B/32 CLIP table (%d tensors, %.1fM params): %.3f ms, %.0f GB/s "
           "effective (%.0f bytes/param)\n",
           name, ps.n, (double)n / 1e6, dt * 1e3, bytes_per_elem * (double)n / dt / 1e9,
           bytes_per_elem);
    sg_optim_free(&o);
    sg_params_free(&ps);
}

/* --quick: skip the timing (e.g. under compute-sanitizer). */
int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (!sg_cuda_available()) {
        printf("SKIP: no CUDA GPU\n");
        return SG_TEST_SKIP;
    }
    struct sg_ctx cpu, gpu;
    SG_CHECK(sg_ctx_init(&cpu, SG_DEVICE_CPU, 0, 2) == 0, "%s", sg_last_error());
    if (sg_ctx_init(&gpu, SG_DEVICE_CUDA, 0, 0) != 0) {
        fprintf(stderr, "FAIL: CUDA context: %s\n", sg_last_error());
        return 1;
    }
    for (int i = 0; i < NCASES; i++) test_case(&cpu, &gpu, &CASES[i]);
    test_nonfinite(&cpu, &gpu);
    /* AdamW: norm reads g (4 B), update reads p, g, m, v and writes p, m, v (28 B). LARS: norm
     * 4 B, LARS norms read p, g (8 B), update reads p, g, m, writes p, m (20 B). */
    if (!quick) {
        time_steps(&gpu, "adamw", &CASES[0].cfg, 32.0);
        time_steps(&gpu, "lars", &CASES[7].cfg, 32.0);
    }
    sg_ctx_free(&gpu);
    sg_ctx_free(&cpu);
    return sg_test_summary("test_cuda_optim");
}
