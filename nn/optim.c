/*
 * nn/optim.c — AdamW, SGD and LARS over the parameter table; cosine schedule; lr scaling.
 * See nn/optim.h for the semantics. References (torch 1.13): torch/optim/adamw.py
 * `_single_tensor_adamw`, torch/optim/sgd.py `_single_tensor_sgd`,
 * torch/nn/utils/clip_grad.py `clip_grad_norm_`, moco-v3 / SogCLR `LARS.step`,
 * open_clip `cosine_lr`.
 *
 * Each update is written as torch's CPU kernels evaluate it (checked against torch element by
 * element, tests/ref/gen_optim.py):
 *   t.add_(u, alpha=a)            t = fmaf(u, a, t)
 *   t.addcmul_(u, u, value=a)     t = fmaf(a*u, u, t)
 *   t.addcdiv_(u, w, value=a)     t = t + (a*u)/w
 *   t / s (s a Python float)      true division by (float)s
 * This file is compiled with -ffp-contract=off (cmake/optim.cmake) so that GCC fuses nothing
 * else, and -fno-math-errno so that sqrtf vectorises.
 *
 * Fast path: each parameter is cut into OPT_CHUNK-element chunks, OpenMP over chunks (when the
 * parameter is large enough), a restrict-qualified vectorisable loop per chunk; norms are sums of
 * squares in double per chunk, added in chunk order (independent of the thread count).
 *
 * CUDA: optim_step_cuda takes the grad norm from the GPU, computes the same per-step scalars
 * here (make_coef, clip_scale) and queues the update kernels of nn/cuda/optim.cu.
 */
#include "nn/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ops/vmath.h"

#define OPT_CHUNK 4096 /* floats per work item and per partial sum */

/* ---- per-step coefficients ------------------------------------------------------------------ */

/* Per-step scalars: struct sg_optim_coef (nn/optim.h, shared with the CUDA kernels). */

/* The double a Python float literal for x would have: the shortest decimal that rounds back to
 * x, parsed as a double (0.999f -> 0.999, not 0.99900001287...). */
static double dec_double(float x)
{
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        double d = strtod(buf, NULL);
        if ((float)d == x) return d;
    }
    return (double)x;
}

/* -lr / (1 - beta1^t) as torch's step_size, rounded to float. */
static float adam_nstep(const struct sg_optim *o, float lr)
{
    double b1 = dec_double(o->cfg.beta1), t = (double)(o->step + 1);
    return (float)(-((double)lr / (1.0 - pow(b1, t))));
}

static struct sg_optim_coef make_coef(const struct sg_optim *o, float lr, float lr_tau, float gs)
{
    const struct sg_optim_config *cf = &o->cfg;
    struct sg_optim_coef k = {0};
    double wd = dec_double(cf->weight_decay), b1 = dec_double(cf->beta1);
    double b2 = dec_double(cf->beta2), t = (double)(o->step + 1);
    k.gs = gs;
    k.decay = (float)(1.0 - (double)lr * wd);
    k.b1 = cf->beta1;
    k.a1 = (float)(1.0 - b1);
    k.b2 = cf->beta2;
    k.a2 = (float)(1.0 - b2);
    k.bc2s = (float)sqrt(1.0 - pow(b2, t));
    k.eps = cf->eps;
    k.nstep = adam_nstep(o, lr);
    k.wd = cf->weight_decay;
    k.mom = cf->momentum;
    k.nlr = -lr;
    k.trust = cf->trust_coef;
    k.nesterov = cf->nesterov;
    k.decay_t = (float)(1.0 - (double)lr_tau * wd);
    k.nstep_t = adam_nstep(o, lr_tau);
    k.nlr_t = -lr_tau;
    return k;
}

/* The scalars of param p: the temperature group's learning rate for SG_PARAM_TEMPERATURE. */
static struct sg_optim_coef coef_for(const struct sg_optim_coef *k, const struct sg_param *p)
{
    struct sg_optim_coef c = *k;
    if (p->flags & SG_PARAM_TEMPERATURE)
        c.decay = k->decay_t, c.nstep = k->nstep_t, c.nlr = k->nlr_t;
    return c;
}

/* torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6) as float tensor ops
 * (Python's scalar / tensor is reciprocal() * scalar), clamped to 1. */
static float clip_scale(float max_norm, float norm)
{
    if (max_norm <= 0.0f) return 1.0f;
    float coef = (1.0f / (norm + 1e-6f)) * max_norm;
    return coef < 1.0f ? coef : 1.0f;
}

/* moco-v3 LARS trust ratio from float norms: eta*||p||/||dp||, 1 when either norm is 0. */
static float lars_ratio(float trust, float pnorm, float dnorm)
{
    return pnorm > 0.0f && dnorm > 0.0f ? trust * pnorm / dnorm : 1.0f;
}

static int trainable(const struct sg_param *p)
{
    return !(p->flags & SG_PARAM_BUFFER);
}

/* ---- reference: plain loops, one torch op after another ------------------------------------ */

static double sumsq_ref(const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

static void adamw_ref(struct sg_param *p, float *m, float *v, const struct sg_optim_coef *k)
{
    float decay = (p->flags & SG_PARAM_DECAY) ? k->decay : 1.0f;
    for (int64_t i = 0; i < p->numel; i++) {
        float g = p->grad[i] * k->gs;
        p->data[i] *= decay;                                 /* param.mul_(1 - lr*wd) */
        m[i] = fmaf(g, k->a1, m[i] * k->b1);                 /* exp_avg.mul_(b1).add_(g, 1-b1) */
        v[i] = fmaf(k->a2 * g, g, v[i] * k->b2);             /* .mul_(b2).addcmul_(g, g, 1-b2) */
        float denom = sqrtf(v[i]) / k->bc2s + k->eps;        /* sqrt() / sqrt(bc2) + eps */
        p->data[i] = p->data[i] + (k->nstep * m[i]) / denom; /* addcdiv_(m, denom, -step) */
    }
}

static void sgd_ref(struct sg_param *p, float *buf, const struct sg_optim_coef *k)
{
    float wd = (p->flags & SG_PARAM_DECAY) ? k->wd : 0.0f;
    for (int64_t i = 0; i < p->numel; i++) {
        float d = fmaf(p->data[i], wd, p->grad[i] * k->gs); /* d_p = g.add(p, alpha=wd) */
        if (k->mom != 0.0f) {
            buf[i] = buf[i] * k->mom + d; /* buf.mul_(mom).add_(d_p); buf = d_p at step 1 */
            d = k->nesterov ? fmaf(buf[i], k->mom, d) : buf[i];
        }
        p->data[i] = fmaf(d, k->nlr, p->data[i]); /* p.add_(d_p, alpha=-lr) */
    }
}

static void lars_ref(struct sg_param *p, float *mu, const struct sg_optim_coef *k)
{
    float wd = 0.0f, q = 1.0f;
    if (p->ndim > 1) { /* dp = g + wd*p; q = eta*||p||/||dp|| */
        wd = k->wd;
        double sd = 0.0;
        for (int64_t i = 0; i < p->numel; i++) {
            float d = fmaf(p->data[i], wd, p->grad[i] * k->gs);
            sd += (double)d * (double)d;
        }
        q = lars_ratio(k->trust, (float)sqrt(sumsq_ref(p->data, p->numel)), (float)sqrt(sd));
    }
    for (int64_t i = 0; i < p->numel; i++) {
        float d = fmaf(p->data[i], wd, p->grad[i] * k->gs) * q;
        mu[i] = mu[i] * k->mom + d;                   /* mu.mul_(momentum).add_(dp) */
        p->data[i] = fmaf(mu[i], k->nlr, p->data[i]); /* p.add_(mu, alpha=-lr) */
    }
}

/* ---- fast path: chunked OpenMP loops ------------------------------------------------------- */

/* One parameter's work: pointers, coefficients and norm partial sums (per chunk). */
struct job {
    float *p, *m, *v;
    const float *g;
    struct sg_optim_coef k; /* per-param wd / decay / ratio already resolved */
    double *ps, *ds;        /* (chunks) partial sums of p^2 and of the (scaled) update^2 */
};

typedef void (*chunk_fn)(const struct job *j, int64_t lo, int64_t n);

static int64_t n_chunks(int64_t n)
{
    return (n + OPT_CHUNK - 1) / OPT_CHUNK;
}

/* fn on [ch*OPT_CHUNK, ...) for every chunk of an n-element param, nt threads. */
static void run_chunks(int nt, int64_t n, chunk_fn fn, const struct job *j)
{
    int64_t nch = n_chunks(n);
    if (nt > 1 && nch > 1) {
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t ch = 0; ch < nch; ch++)
            fn(j, ch * OPT_CHUNK, SG_MIN(OPT_CHUNK, n - ch * OPT_CHUNK));
    } else {
        for (int64_t ch = 0; ch < nch; ch++)
            fn(j, ch * OPT_CHUNK, SG_MIN(OPT_CHUNK, n - ch * OPT_CHUNK));
    }
}

/* Sum of squares in double: 8 independent lanes (vectorised), lanes added in order. */
static double sumsq8(const float *restrict x, int64_t n)
{
    double acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += (double)x[i + l] * (double)x[i + l];
    double s = 0.0;
    for (; i < n; i++) s += (double)x[i] * (double)x[i];
    for (int l = 0; l < 8; l++) s += acc[l];
    return s;
}

static void sumsq_chunk(const struct job *j, int64_t lo, int64_t n)
{
    j->ps[lo / OPT_CHUNK] = sumsq8(j->g + lo, n);
}

/* LARS norms: ||p||^2 and ||fmaf(p, wd, g*gs)||^2 per chunk. */
static void lars_norm_chunk(const struct job *j, int64_t lo, int64_t n)
{
    const float *restrict p = j->p + lo, *restrict g = j->g + lo;
    const float gs = j->k.gs, wd = j->k.wd;
    double acc[8] = {0}, s = 0.0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            float d = fmaf(p[i + l], wd, g[i + l] * gs);
            acc[l] += (double)d * (double)d;
        }
    for (; i < n; i++) {
        float d = fmaf(p[i], wd, g[i] * gs);
        s += (double)d * (double)d;
    }
    for (int l = 0; l < 8; l++) s += acc[l];
    j->ps[lo / OPT_CHUNK] = sumsq8(p, n);
    j->ds[lo / OPT_CHUNK] = s;
}

static void adamw_chunk(const struct job *j, int64_t lo, int64_t n)
{
    float *restrict p = j->p + lo, *restrict m = j->m + lo, *restrict v = j->v + lo;
    const float *restrict g = j->g + lo;
    const float gs = j->k.gs, decay = j->k.decay, b1 = j->k.b1, a1 = j->k.a1, b2 = j->k.b2;
    const float a2 = j->k.a2, bc2s = j->k.bc2s, eps = j->k.eps, nstep = j->k.nstep;
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] * gs;
        float mi = fmaf(gi, a1, m[i] * b1);
        float vi = fmaf(a2 * gi, gi, v[i] * b2);
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay + (nstep * mi) / (sqrtf(vi) / bc2s + eps);
    }
}

static void sgd_chunk(const struct job *j, int64_t lo, int64_t n)
{
    float *restrict p = j->p + lo, *restrict buf = j->m + lo;
    const float *restrict g = j->g + lo;
    const float gs = j->k.gs, wd = j->k.wd, mom = j->k.mom, nlr = j->k.nlr;
    if (mom == 0.0f) {
        for (int64_t i = 0; i < n; i++) p[i] = fmaf(fmaf(p[i], wd, g[i] * gs), nlr, p[i]);
    } else if (j->k.nesterov) {
        for (int64_t i = 0; i < n; i++) {
            float d = fmaf(p[i], wd, g[i] * gs);
            float b = buf[i] * mom + d;
            buf[i] = b;
            p[i] = fmaf(fmaf(b, mom, d), nlr, p[i]);
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            float b = buf[i] * mom + fmaf(p[i], wd, g[i] * gs);
            buf[i] = b;
            p[i] = fmaf(b, nlr, p[i]);
        }
    }
}

/* k.trust holds the resolved ratio q here; k.wd is 0 for ndim <= 1. */
static void lars_chunk(const struct job *j, int64_t lo, int64_t n)
{
    float *restrict p = j->p + lo, *restrict mu = j->m + lo;
    const float *restrict g = j->g + lo;
    const float gs = j->k.gs, wd = j->k.wd, q = j->k.trust, mom = j->k.mom, nlr = j->k.nlr;
    for (int64_t i = 0; i < n; i++) {
        float b = mu[i] * mom + fmaf(p[i], wd, g[i] * gs) * q;
        mu[i] = b;
        p[i] = fmaf(b, nlr, p[i]);
    }
}

static double sum_parts(const double *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}

static void lars_fast(struct sg_optim *o, struct job *j, const struct sg_param *p, int nt)
{
    j->k.wd = 0.0f;
    j->k.trust = 1.0f;
    if (p->ndim > 1) {
        j->k.wd = o->cfg.weight_decay;
        j->ps = o->part;
        j->ds = o->part + o->max_chunks;
        run_chunks(nt, p->numel, lars_norm_chunk, j);
        int64_t nch = n_chunks(p->numel);
        j->k.trust = lars_ratio(o->cfg.trust_coef, (float)sqrt(sum_parts(j->ps, nch)),
                                (float)sqrt(sum_parts(j->ds, nch)));
    }
    run_chunks(nt, p->numel, lars_chunk, j);
}

static void update_fast(struct sg_optim *o, struct sg_params *ps, struct sg_param *p,
                        const struct sg_optim_coef *k, int nt)
{
    struct job j = {.p = p->data, .m = ps->m + p->offset, .v = ps->v + p->offset, .g = p->grad};
    j.k = *k;
    int decay = (p->flags & SG_PARAM_DECAY) != 0;
    switch (o->cfg.kind) {
    case SG_OPT_ADAMW:
        if (!decay) j.k.decay = 1.0f;
        run_chunks(nt, p->numel, adamw_chunk, &j);
        break;
    case SG_OPT_SGD:
        if (!decay) j.k.wd = 0.0f;
        run_chunks(nt, p->numel, sgd_chunk, &j);
        break;
    case SG_OPT_LARS:
        lars_fast(o, &j, p, nt);
        break;
    }
}

/* ---- the step ------------------------------------------------------------------------------ */

/* Global L2 norm of the trainable grads as torch: per-param norms rounded to float, then the
 * norm of those. */
static float grad_norm(struct sg_optim *o, struct sg_params *ps, const struct sg_ctx *c)
{
    double total = 0.0;
    for (int i = 0; i < ps->n; i++) {
        const struct sg_param *p = ps->items[i];
        if (!trainable(p)) continue;
        double s;
        if (c) {
            struct job j = {.g = p->grad, .ps = o->part};
            run_chunks(sg_pointwise_threads(c, p->numel), p->numel, sumsq_chunk, &j);
            s = sum_parts(o->part, n_chunks(p->numel));
        } else {
            s = sumsq_ref(p->grad, p->numel);
        }
        float pn = (float)sqrt(s);
        total += (double)pn * (double)pn;
    }
    return (float)sqrt(total);
}

static void check_step(const struct sg_optim *o, const struct sg_params *ps, float lr, float lr_tau)
{
    SG_CHECK(o->part, "sg_optim_step before sg_optim_init");
    SG_CHECK(ps->m && ps->v, "parameter table has no optimizer arenas (sg_params_alloc with 1)");
    SG_CHECK(isfinite(lr) && lr >= 0.0f, "learning rate %g must be finite and >= 0", lr);
    SG_CHECK(isfinite(lr_tau) && lr_tau >= 0.0f, "lr_tau %g must be finite and >= 0", lr_tau);
    for (int i = 0; i < ps->n; i++)
        SG_CHECK(!trainable(ps->items[i]) || n_chunks(ps->items[i]->numel) <= o->max_chunks,
                 "param '%s' grew since sg_optim_init; init the optimizer after registration",
                 ps->items[i]->name);
}

/* c == NULL: the reference loops. */
static float optim_step(struct sg_optim *o, struct sg_params *ps, struct sg_ctx *c, float lr,
                        float lr_tau)
{
    check_step(o, ps, lr, lr_tau);
    float norm = grad_norm(o, ps, c);
    o->last_grad_norm = norm;
    if (!isfinite(norm)) return norm; /* skip: keep the parameters finite */
    struct sg_optim_coef k = make_coef(o, lr, lr_tau, clip_scale(o->cfg.clip_grad_norm, norm));
    for (int i = 0; i < ps->n; i++) {
        struct sg_param *p = ps->items[i];
        if (!trainable(p)) continue;
        float *m = ps->m + p->offset, *v = ps->v + p->offset;
        struct sg_optim_coef kp = coef_for(&k, p);
        if (c) {
            update_fast(o, ps, p, &kp, sg_pointwise_threads(c, p->numel));
        } else if (o->cfg.kind == SG_OPT_ADAMW) {
            adamw_ref(p, m, v, &kp);
        } else if (o->cfg.kind == SG_OPT_SGD) {
            sgd_ref(p, m, &kp);
        } else {
            lars_ref(p, m, &kp);
        }
    }
    o->step++;
    return norm;
}

#ifdef SG_CUDA
/* The same step on the GPU: norm there, scalars here, update there (nn/cuda/optim.cu). */
static float optim_step_cuda(struct sg_optim *o, struct sg_params *ps, struct sg_ctx *c, float lr,
                             float lr_tau)
{
    check_step(o, ps, lr, lr_tau);
    float norm = sg_optim_grad_norm_cuda(o, ps, c); /* synchronises */
    o->last_grad_norm = norm;
    if (!isfinite(norm)) return norm; /* skip: keep the parameters finite */
    struct sg_optim_coef k = make_coef(o, lr, lr_tau, clip_scale(o->cfg.clip_grad_norm, norm));
    sg_optim_update_cuda(o, ps, c, &k);
    o->step++;
    return norm;
}
#endif

float sg_optim_step(struct sg_optim *o, struct sg_params *ps, struct sg_ctx *c, float lr)
{
    return sg_optim_step_tau(o, ps, c, lr, lr);
}

float sg_optim_step_tau(struct sg_optim *o, struct sg_params *ps, struct sg_ctx *c, float lr,
                        float lr_tau)
{
    SG_CHECK(!ps->ctx || ps->ctx->dev == c->dev,
             "sg_optim_step: parameter table on %s but context on %s (use the table's device)",
             sg_device_name(ps->ctx->dev), sg_device_name(c->dev));
    switch (c->dev) {
    case SG_DEVICE_CPU:
        break;
    case SG_DEVICE_CUDA:
#ifdef SG_CUDA
        return optim_step_cuda(o, ps, c, lr, lr_tau);
#else
        SG_PANIC("sg_optim_step on a CUDA context: built without CUDA");
#endif
    }
    return optim_step(o, ps, c, lr, lr_tau);
}

float sg_optim_step_ref(struct sg_optim *o, struct sg_params *ps, float lr)
{
    return sg_optim_step_ref_tau(o, ps, lr, lr);
}

float sg_optim_step_ref_tau(struct sg_optim *o, struct sg_params *ps, float lr, float lr_tau)
{
    SG_CHECK(!ps->ctx || ps->ctx->dev == SG_DEVICE_CPU, "sg_optim_step_ref needs host params");
    return optim_step(o, ps, NULL, lr, lr_tau);
}

/* ---- init ---------------------------------------------------------------------------------- */

static int finite_nonneg(float x)
{
    return isfinite(x) && x >= 0.0f;
}

static int check_config(const struct sg_optim_config *cf)
{
    if (cf->kind != SG_OPT_ADAMW && cf->kind != SG_OPT_SGD && cf->kind != SG_OPT_LARS)
        return sg_err("optimizer: unknown kind %d (use adamw, sgd or lars)", (int)cf->kind);
    if (!finite_nonneg(cf->lr)) return sg_err("optimizer: lr %g must be finite and >= 0", cf->lr);
    if (!finite_nonneg(cf->weight_decay))
        return sg_err("optimizer: weight_decay %g must be finite and >= 0", cf->weight_decay);
    if (!finite_nonneg(cf->clip_grad_norm))
        return sg_err("optimizer: clip_grad_norm %g must be finite and >= 0 (0 disables it)",
                      cf->clip_grad_norm);
    if (cf->kind == SG_OPT_ADAMW) {
        if (!(cf->beta1 >= 0.0f && cf->beta1 < 1.0f) || !(cf->beta2 >= 0.0f && cf->beta2 < 1.0f))
            return sg_err("optimizer: adamw betas (%g, %g) must lie in [0, 1) (torch default "
                          "0.9, 0.999)",
                          cf->beta1, cf->beta2);
        if (!finite_nonneg(cf->eps))
            return sg_err("optimizer: adamw eps %g must be finite and >= 0 (default 1e-8)",
                          cf->eps);
        return 0;
    }
    if (!finite_nonneg(cf->momentum))
        return sg_err("optimizer: momentum %g must be finite and >= 0", cf->momentum);
    if (cf->kind == SG_OPT_SGD && cf->nesterov && cf->momentum <= 0.0f)
        return sg_err("optimizer: sgd nesterov needs momentum > 0");
    if (cf->kind == SG_OPT_LARS && cf->nesterov)
        return sg_err("optimizer: lars has no nesterov option (set nesterov to 0)");
    if (cf->kind == SG_OPT_LARS && !(isfinite(cf->trust_coef) && cf->trust_coef > 0.0f))
        return sg_err("optimizer: lars trust_coef %g must be > 0 (SogCLR uses 0.001)",
                      cf->trust_coef);
    return 0;
}

int sg_optim_init(struct sg_optim *o, const struct sg_optim_config *cfg, struct sg_params *ps)
{
    memset(o, 0, sizeof *o);
    if (check_config(cfg)) return -1;
    if (!ps->data || !ps->m || !ps->v)
        return sg_err("optimizer: the parameter table needs its optimizer arenas; allocate it "
                      "with sg_params_alloc(ps, ctx, 1) before sg_optim_init");
    o->cfg = *cfg;
    o->max_chunks = 1;
    for (int i = 0; i < ps->n; i++)
        if (trainable(ps->items[i]))
            o->max_chunks = SG_MAX(o->max_chunks, n_chunks(ps->items[i]->numel));
    o->part = sg_xcalloc(2 * (size_t)o->max_chunks, sizeof(double));
    /* A fresh optimizer, as torch's: zero moments (load checkpoints after init). */
    sg_memset_zero(ps->ctx, ps->m, ps->total * sizeof(float));
    sg_memset_zero(ps->ctx, ps->v, ps->total * sizeof(float));
    return 0;
}

void sg_optim_free(struct sg_optim *o)
{
#ifdef SG_CUDA
    if (o->cuda) sg_optim_free_cuda(o);
#endif
    free(o->part);
    o->part = NULL;
}

/* ---- schedules ----------------------------------------------------------------------------- */

float sg_lr_cosine(float base_lr, float lr_min, int64_t warmup, int64_t total, int64_t step)
{
    if (step < warmup) return (float)((double)base_lr * (double)(step + 1) / (double)warmup);
    if (step >= total) return lr_min;
    double e = (double)(step - warmup), es = (double)(total - warmup);
    return (float)(lr_min + 0.5 * (1.0 + cos(M_PI * e / es)) * ((double)base_lr - lr_min));
}

float sg_lr_tau(enum sg_lr_tau_schedule s, float lr_tau, float lr_min, int64_t warmup,
                int64_t total, int64_t step, float logit_scale)
{
    switch (s) {
    case SG_LR_TAU_COSINE:
        return sg_lr_cosine(lr_tau, lr_min, warmup, total, step);
    case SG_LR_TAU_CONSTANT:
        return lr_tau;
    case SG_LR_TAU_STEP_THRESH:
        return 1.0f / expf(logit_scale) <= 0.03f ? (float)((double)lr_tau * (1.0 / 3.0)) : lr_tau;
    }
    SG_PANIC("unknown lr_tau schedule %d", (int)s);
}

float sg_lr_scale(float lr, int batch, int mode)
{
    SG_CHECK(batch > 0, "batch %d", batch);
    switch (mode) {
    case SG_LR_SCALE_NONE:
        return lr;
    case SG_LR_SCALE_LINEAR:
        return (float)((double)lr * batch / 256.0);
    case SG_LR_SCALE_SQRT:
        return (float)((double)lr * sqrt((double)batch));
    default:
        SG_PANIC("unknown lr scaling mode %d (0 none, 1 linear, 2 sqrt)", mode);
    }
}
