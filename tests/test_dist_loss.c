/*
 * tests/test_dist_loss.c — the distributed two-way SogCLR step (losses/gcl_bimodal_dist.h) against
 * the single-process step (losses/sogclr.h) on the concatenated global batch. Run by ctest under
 * `mpirun -np 2` (and alone: world 1). Every rank builds the same global batch (G = world x B
 * random unit features, txt = normalise(img + 0.5 noise)), feeds its slice to the distributed
 * step and the whole batch to a single-process sogclr object, for 4 steps whose sample ids
 * overlap (states in use from step 2; gamma 0.9), and compares:
 *   - the global loss and objective (relative 1e-5);
 *   - its rows of dzi / dzt against the single-process rows (max error <= 1e-4 rms + 1e-4 |ref|:
 *     both are float sums of G products reordered — the single-process path sums exponentials
 *     partly in float blocks, this one in double — ~1e-6 observed);
 *   - the whole replicated state u/b (N each) against the single-process state (relative 1e-5),
 *     and bit equality of the state across ranks (all-reduce of a checksum);
 *   - bad input on one rank (a NaN feature on the last rank) makes every rank return -1 with the
 *     same message and leaves every state unchanged;
 *   - FastCLIP-v3 (fastclip_step_dist) the same way, with a temperature that changes per step,
 *     plus its global temperature gradient (dtau, dlog_scale: relative 1e-5);
 *   - the CLIP InfoNCE baseline (sg_clip_loss_step_dist) at three logit scales: loss, dL/dp and
 *     the local gradient rows against sg_clip_loss_compute on the whole batch (the loss is a
 *     difference of log-sum-exps of size ~s = exp(p): absolute floors 1e-6 s, 1e-7 s on rows);
 *   - bimodal iSogCLR (isogclr_step_dist, per-sample temperatures): loss, objective, tau means,
 *     gradient rows, u/b and the replicated tau/m states against isogclr_step;
 *   - SimCLR NT-Xent (sg_simclr_step_dist) at tau 0.5 and 0.1: loss and local gradient rows
 *     against sg_simclr_loss_compute, and a NaN on the last rank failing every rank;
 *   - unimodal SogCLR and iSogCLR (sogclr_uni_step_dist: the two views of each sample on its
 *     rank) against sogclr_uni_forward_backward_cpu on the whole batch: loss (relative 1e-5),
 *     the local rows of dza / dzb (as above), the replicated u (and tau, tau_m; relative 1e-5),
 *     and a NaN on the last rank failing every rank with no state change.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/dist.h"
#include "core/rng.h"
#include "losses/clip.h"
#include "losses/clip_dist.h"
#include "losses/fastclip.h"
#include "losses/sogclr.h"
#include "losses/gcl_bimodal_dist.h"
#include "losses/simclr.h"
#include "losses/simclr_dist.h"
#include "losses/sogclr_uni.h"
#include "losses/sogclr_uni_dist.h"
#include "tests/testutil.h"

#define B_LOCAL   24
#define DIM       40
#define N_SAMPLES 1000
#define STEPS     4

static void unit_rows(float *z, int64_t n, int d)
{
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < d; k++) s += (double)z[i * d + k] * z[i * d + k];
        for (int k = 0; k < d; k++) z[i * d + k] = (float)(z[i * d + k] / sqrt(s));
    }
}

static void make_batch(int step, int64_t G, float *zi, float *zt, int64_t *idx)
{
    struct sg_rng r;
    sg_rng_seed(&r, 100 + (uint64_t)step);
    sg_rng_normal(&r, zi, G * DIM, 0.0f, 1.0f);
    sg_rng_normal(&r, zt, G * DIM, 0.0f, 0.5f);
    for (int64_t i = 0; i < G * DIM; i++) zt[i] += zi[i];
    unit_rows(zi, G, DIM);
    unit_rows(zt, G, DIM);
    for (int64_t i = 0; i < G; i++) idx[i] = (step * 7 * G / 10 + i * 3) % N_SAMPLES;
}

/* The global batch (zi, zt, idx: G rows), the one-process gradients (gi, gt: G rows) and this
 * rank's distributed gradients (di, dt: B rows). */
struct bufs {
    float *zi, *zt, *gi, *gt, *di, *dt;
    int64_t *idx;
};

static struct bufs bufs_new(int64_t B, int64_t G)
{
    size_t g = sizeof(float) * (size_t)(G * DIM), b = sizeof(float) * (size_t)(B * DIM);
    return (struct bufs){sg_xmalloc(g),
                         sg_xmalloc(g),
                         sg_xmalloc(g),
                         sg_xmalloc(g),
                         sg_xmalloc(b),
                         sg_xmalloc(b),
                         sg_xmalloc(sizeof(int64_t) * (size_t)G)};
}

static void bufs_free(struct bufs *u)
{
    free(u->zi), free(u->zt), free(u->gi), free(u->gt), free(u->di), free(u->dt), free(u->idx);
}

static double max_err(const float *got, const float *want, int64_t n, double *rms_out)
{
    double r = 0, worst = 0;
    for (int64_t i = 0; i < n; i++) r += (double)want[i] * want[i];
    r = sqrt(r / (double)n);
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) - 1e-4 * fabs(want[i]);
        if (e > worst) worst = e;
    }
    *rms_out = r;
    return worst;
}

static int state_close(const struct gcl_bi_state *a, const struct gcl_bi_state *b)
{
    const float *x[4] = {a->u_img, a->u_txt, a->b_img, a->b_txt};
    const float *y[4] = {b->u_img, b->u_txt, b->b_img, b->b_txt};
    for (int k = 0; k < 4; k++)
        for (int64_t i = 0; i < a->N; i++)
            if (fabs((double)x[k][i] - y[k][i]) > 1e-5 * fabs((double)y[k][i]) + 1e-30) {
                printf("  state %d[%lld]: dist %.9g single %.9g\n", k, (long long)i, x[k][i],
                       y[k][i]);
                return 0;
            }
    return 1;
}

static double checksum(const struct sogclr *l)
{
    double s = 0;
    for (int64_t i = 0; i < l->st.N; i++)
        s += (i + 1) * ((double)l->st.u_img[i] + 2 * l->st.u_txt[i] + 3 * l->st.b_img[i] +
                        5 * l->st.b_txt[i]);
    return s;
}

static int rel_close(double a, double b)
{
    return fabs(a - b) <= 1e-5 * fabs(b) + 1e-8;
}

/* Per-sample temperatures (relative 1e-5) and momenta of two iSogCLR objects agree. A momentum
 * is beta G with G = log U + rho - pa, a difference of terms of size ~rho whose float rounding
 * differs between the two paths (~1e-6 relative): its tolerance is 1e-5 (|m| + rho). */
static int temps_close(const struct isogclr *a, const struct isogclr *b)
{
    const float *x[4] = {a->tau_img, a->tau_txt, a->m_img, a->m_txt};
    const float *y[4] = {b->tau_img, b->tau_txt, b->m_img, b->m_txt};
    for (int k = 0; k < 4; k++)
        for (int64_t i = 0; i < a->st.N; i++)
            if (fabs((double)x[k][i] - y[k][i]) >
                1e-5 * (fabs((double)y[k][i]) + (k >= 2 ? a->cfg.rho : 0.0)) + 1e-9) {
                printf("  temps %d[%lld]: dist %.9g single %.9g\n", k, (long long)i, x[k][i],
                       y[k][i]);
                return 0;
            }
    return 1;
}

/* Bimodal iSogCLR: 3 steps (per-sample temperatures moving with eta 0.002) against isogclr_step
 * on the whole batch. */
static void test_isogclr(struct sg_dist *d, struct sg_ctx *c, int64_t B, int64_t G, int64_t off)
{
    struct isogclr ld, ls;
    struct isogclr_config cfg = {.N = N_SAMPLES,
                                 .tau_init = 0.05f,
                                 .gamma = 0.9f,
                                 .rho = 6.0f,
                                 .eta = 0.002f,
                                 .beta = 0.9f,
                                 .tau_min = 0.005f,
                                 .tau_max = 0.1f};
    SG_CHECK(isogclr_init(&ld, &cfg) == 0 && isogclr_init(&ls, &cfg) == 0, "%s", sg_last_error());
    struct bufs u = bufs_new(B, G);
    char label[300];
    for (int step = 0; step < 3; step++) {
        make_batch(40 + step, G, u.zi, u.zt, u.idx);
        struct isogclr_out od, os;
        int rd = isogclr_step_dist(d, c, &ld, u.zi + off * DIM, u.zt + off * DIM, u.idx + off,
                                   (int)B, DIM, u.di, u.dt, &od);
        int rs = isogclr_step(c, &ls, u.zi, u.zt, u.idx, (int)G, DIM, u.gi, u.gt, &os);
        double ri = 0, rt = 0, ei = 1, et = 1;
        if (rd == 0 && rs == 0) {
            ei = max_err(u.di, u.gi + off * DIM, B * DIM, &ri);
            et = max_err(u.dt, u.gt + off * DIM, B * DIM, &rt);
        }
        snprintf(label, sizeof label,
                 "rank %d isogclr step %d: loss %.7g objective %.7g tau means %.6g %.6g equal "
                 "single %.7g %.7g %.6g %.6g; gradient rows (max excess %.2g / %.2g), u/b and "
                 "tau/m states",
                 d->rank, step, od.loss, od.objective, od.tau_img_mean, od.tau_txt_mean, os.loss,
                 os.objective, os.tau_img_mean, os.tau_txt_mean, ei, et);
        sg_test_true(label, rd == 0 && rs == 0 && rel_close(od.loss, os.loss) &&
                                rel_close(od.objective, os.objective) &&
                                rel_close(od.tau_img_mean, os.tau_img_mean) &&
                                rel_close(od.tau_txt_mean, os.tau_txt_mean) && ei <= 1e-4 * ri &&
                                et <= 1e-4 * rt && state_close(&ld.st, &ls.st) &&
                                temps_close(&ld, &ls));
    }
    isogclr_free(&ld);
    isogclr_free(&ls);
    bufs_free(&u);
}

/* FastCLIP-v3: 3 steps with a changing tau, everything against fastclip_step on the whole batch. */
static void test_fastclip(struct sg_dist *d, struct sg_ctx *c, int64_t B, int64_t G, int64_t off)
{
    struct fastclip ld, ls;
    struct fastclip_config cfg = {.N = N_SAMPLES, .gamma = 0.8f, .rho = 6.5f};
    SG_CHECK(fastclip_init(&ld, &cfg) == 0 && fastclip_init(&ls, &cfg) == 0, "%s", sg_last_error());
    struct bufs u = bufs_new(B, G);
    float *zi = u.zi, *zt = u.zt, *gi = u.gi, *gt = u.gt, *di = u.di, *dt = u.dt;
    int64_t *idx = u.idx;
    char label[240];
    for (int step = 0; step < 3; step++) {
        float tau = 0.07f - 0.01f * step;
        make_batch(20 + step, G, zi, zt, idx);
        struct fastclip_out od, os;
        int rd = fastclip_step_dist(d, c, &ld, tau, zi + off * DIM, zt + off * DIM, idx + off,
                                    (int)B, DIM, di, dt, &od);
        int rs = fastclip_step(c, &ls, tau, zi, zt, idx, (int)G, DIM, gi, gt, &os);
        snprintf(label, sizeof label, "rank %d fastclip step %d: both steps succeed", d->rank,
                 step);
        if (!sg_test_true(label, rd == 0 && rs == 0)) {
            printf("  %s\n", sg_last_error());
            break;
        }
        snprintf(label, sizeof label,
                 "rank %d fastclip step %d: loss %.7g objective %.7g dtau %.7g dlog_scale %.7g "
                 "equal single %.7g %.7g %.7g %.7g",
                 d->rank, step, od.loss, od.objective, od.dtau, od.dlog_scale, os.loss,
                 os.objective, os.dtau, os.dlog_scale);
        sg_test_true(label, rel_close(od.loss, os.loss) && rel_close(od.objective, os.objective) &&
                                rel_close(od.dtau, os.dtau) &&
                                rel_close(od.dlog_scale, os.dlog_scale));
        double ri, rt;
        double ei = max_err(di, gi + off * DIM, B * DIM, &ri);
        double et = max_err(dt, gt + off * DIM, B * DIM, &rt);
        snprintf(label, sizeof label,
                 "rank %d fastclip step %d: local gradient rows and the u/b state equal single "
                 "(max excess %.2g / %.2g)",
                 d->rank, step, ei, et);
        sg_test_true(label, ei <= 1e-4 * ri && et <= 1e-4 * rt && state_close(&ld.st, &ls.st));
    }
    fastclip_free(&ld);
    fastclip_free(&ls);
    bufs_free(&u);
}

/* CLIP InfoNCE against the one-process loss on the concatenated batch. */
static void test_clip(struct sg_dist *d, struct sg_ctx *c, int64_t B, int64_t G, int64_t off)
{
    static const float ps[3] = {2.659260f, 4.6f, 0.3f}; /* ln(1/0.07), near ln 100, small */
    struct sg_clip_loss ld, ls;
    sg_clip_loss_init(&ld);
    sg_clip_loss_init(&ls);
    struct bufs u = bufs_new(B, G);
    float *zi = u.zi, *zt = u.zt, *gi = u.gi, *gt = u.gt, *di = u.di, *dt = u.dt;
    int64_t *idx = u.idx;
    char label[240];
    for (int k = 0; k < 3; k++) {
        make_batch(40 + k, G, zi, zt, idx);
        float lossd = 0, losss = 0, dpd = 0, dps = 0;
        int rd = sg_clip_loss_step_dist(d, &ld, zi + off * DIM, zt + off * DIM, (int)B, DIM, ps[k],
                                        &lossd, di, dt, &dpd);
        int rs = sg_clip_loss_compute(&ls, c, zi, zt, (int)G, DIM, ps[k], &losss, gi, gt, &dps);
        double ri, rt;
        double ei = rd ? 1 : max_err(di, gi + off * DIM, B * DIM, &ri);
        double et = rd ? 1 : max_err(dt, gt + off * DIM, B * DIM, &rt);
        snprintf(label, sizeof label,
                 "rank %d clip p=%.2f: loss %.7g dp %.7g equal single %.7g %.7g; gradient rows "
                 "(max excess %.2g / %.2g)",
                 d->rank, ps[k], lossd, dpd, losss, dps, ei, et);
        /* loss and dp are differences of log-sum-exps of size ~s = exp(p) (the one-process path
         * uses a fast exp): absolute floors 1e-6 s and, for gradient rows, 1e-7 s */
        double sc = exp((double)ps[k]);
        sg_test_true(label, rd == 0 && rs == 0 &&
                                fabs(lossd - losss) <= 1e-5 * fabs(losss) + 1e-6 * sc &&
                                fabs(dpd - dps) <= 1e-5 * fabs(dps) + 1e-6 * sc &&
                                ei <= 1e-4 * ri + 1e-7 * sc && et <= 1e-4 * rt + 1e-7 * sc);
    }
    sg_clip_loss_free(&ld);
    sg_clip_loss_free(&ls);
    bufs_free(&u);
}

static int uni_state_close(const struct sogclr_uni *a, const struct sogclr_uni *b)
{
    const float *x[3] = {a->u, a->tau, a->tau_m}, *y[3] = {b->u, b->tau, b->tau_m};
    for (int k = 0; k < (a->cfg.isogclr ? 3 : 1); k++)
        for (int64_t i = 0; i < a->cfg.N; i++)
            if (fabs((double)x[k][i] - y[k][i]) > 1e-5 * fabs((double)y[k][i]) + 1e-12) {
                printf("  state %d[%lld]: dist %.9g single %.9g\n", k, (long long)i, x[k][i],
                       y[k][i]);
                return 0;
            }
    return 1;
}

static double uni_checksum(const struct sogclr_uni *l)
{
    double s = 0;
    for (int64_t i = 0; i < l->cfg.N; i++)
        s += (i + 1) * ((double)l->u[i] + (l->cfg.isogclr ? 2.0 * l->tau[i] + l->tau_m[i] : 0.0));
    return s;
}

/* Unimodal SogCLR (iso 0) / iSogCLR (iso 1): STEPS steps against the one-process CPU step. */
static void test_unimodal(struct sg_dist *d, struct sg_ctx *c, int64_t B, int64_t G, int64_t off,
                          int iso)
{
    struct sogclr_uni ld, ls;
    struct sogclr_uni_config cfg;
    sogclr_uni_config_default(&cfg, N_SAMPLES);
    cfg.isogclr = iso;
    cfg.eta = 0.05f;
    SG_CHECK(sogclr_uni_init(&ld, &cfg) == 0 && sogclr_uni_init(&ls, &cfg) == 0, "%s",
             sg_last_error());
    struct bufs u = bufs_new(B, G);
    const char *name = iso ? "iSogCLR (unimodal)" : "SogCLR (unimodal)";
    char label[240];
    for (int step = 0; step < STEPS; step++) {
        make_batch(20 + step, G, u.zi, u.zt, u.idx);
        float lossd = 0, losss = 0;
        int rd = sogclr_uni_step_dist(d, &ld, u.zi + off * DIM, u.zt + off * DIM, u.idx + off,
                                      (int)B, DIM, &lossd, u.di, u.dt);
        int rs = sogclr_uni_forward_backward_cpu(&ls, c, u.zi, u.zt, u.idx, (int)G, DIM, &losss,
                                                 u.gi, u.gt);
        double ra, rb;
        double ea = rd || rs ? 1 : max_err(u.di, u.gi + off * DIM, B * DIM, &ra);
        double eb = rd || rs ? 1 : max_err(u.dt, u.gt + off * DIM, B * DIM, &rb);
        snprintf(label, sizeof label,
                 "rank %d %s step %d: loss %.7g equals single %.7g; local rows of dza / dzb (max "
                 "excess %.2g / %.2g); replicated state",
                 d->rank, name, step, lossd, losss, ea, eb);
        sg_test_true(label, rd == 0 && rs == 0 &&
                                fabs(lossd - losss) <= 1e-5 * fabs(losss) + 1e-7 &&
                                ea <= 1e-4 * ra && eb <= 1e-4 * rb && uni_state_close(&ld, &ls));
    }
    double cs = uni_checksum(&ld), sum = cs;
    SG_CHECK(sg_dist_allreduce_sum_f64(d, &sum, 1) == 0, "%s", sg_last_error());
    snprintf(label, sizeof label, "rank %d %s: state identical across ranks", d->rank, name);
    sg_test_true(label, fabs(sum - d->world * cs) <= 1e-12 * fabs(sum));
    make_batch(29, G, u.zi, u.zt, u.idx);
    if (d->rank == d->world - 1) u.zt[off * DIM + 5] = NAN;
    float lossb = 0;
    int rb = sogclr_uni_step_dist(d, &ld, u.zi + off * DIM, u.zt + off * DIM, u.idx + off, (int)B,
                                  DIM, &lossb, u.di, u.dt);
    snprintf(label, sizeof label, "rank %d %s: a NaN on rank %d fails every rank (%s)", d->rank,
             name, d->world - 1, rb ? sg_last_error() : "no error");
    sg_test_true(label, rb == -1 && strstr(sg_last_error(), "NaN") && uni_checksum(&ld) == cs);
    sogclr_uni_free(&ld);
    sogclr_uni_free(&ls);
    bufs_free(&u);
}

/* SimCLR NT-Xent at two temperatures against sg_simclr_loss_compute on the whole batch. */
static void test_simclr(struct sg_dist *d, struct sg_ctx *c, int64_t B, int64_t G, int64_t off)
{
    struct bufs u = bufs_new(B, G);
    char label[240];
    const float taus[2] = {0.5f, 0.1f};
    for (int t = 0; t < 2; t++) {
        struct sg_simclr_loss ld, ls;
        SG_CHECK(sg_simclr_loss_init(&ld, taus[t]) == 0 && sg_simclr_loss_init(&ls, taus[t]) == 0,
                 "%s", sg_last_error());
        make_batch(60 + t, G, u.zi, u.zt, u.idx);
        float lossd = 0, losss = 0;
        int rd = sg_simclr_step_dist(d, &ld, u.zi + off * DIM, u.zt + off * DIM, (int)B, DIM,
                                     &lossd, u.di, u.dt);
        int rs = sg_simclr_loss_compute(&ls, c, u.zi, u.zt, (int)G, DIM, &losss, u.gi, u.gt);
        double ra = 0, rb = 0, ea = 1, eb = 1;
        if (rd == 0 && rs == 0) {
            ea = max_err(u.di, u.gi + off * DIM, B * DIM, &ra);
            eb = max_err(u.dt, u.gt + off * DIM, B * DIM, &rb);
        }
        snprintf(label, sizeof label,
                 "rank %d simclr tau %g: loss %.7g equals single %.7g; local rows of dza / dzb "
                 "(max excess %.2g / %.2g)",
                 d->rank, (double)taus[t], lossd, losss, ea, eb);
        sg_test_true(label, rd == 0 && rs == 0 && rel_close(lossd, losss) && ea <= 1e-4 * ra &&
                                eb <= 1e-4 * rb);
        if (t == 1) { /* a NaN on the last rank fails every rank */
            if (d->rank == d->world - 1) u.zt[off * DIM + 7] = NAN;
            int rb2 = sg_simclr_step_dist(d, &ld, u.zi + off * DIM, u.zt + off * DIM, (int)B, DIM,
                                          &lossd, u.di, u.dt);
            snprintf(label, sizeof label, "rank %d simclr: a NaN on rank %d fails every rank (%s)",
                     d->rank, d->world - 1, rb2 ? sg_last_error() : "no error");
            sg_test_true(label, rb2 == -1 && strstr(sg_last_error(), "NaN"));
        }
        sg_simclr_loss_free(&ld);
        sg_simclr_loss_free(&ls);
    }
    bufs_free(&u);
}

int main(void)
{
    struct sg_dist d;
    struct sg_ctx c;
    SG_CHECK(sg_ctx_init(&c, SG_DEVICE_CPU, 0, 1) == 0, "%s", sg_last_error());
    if (sg_dist_init(&d, "auto", &c, 30.0)) {
        fprintf(stderr, "FAIL: dist init: %s\n", sg_last_error());
        return 1;
    }
    const int64_t B = B_LOCAL, G = (int64_t)d.world * B, off = (int64_t)d.rank * B;
    printf("rank %d of %d (%s): B = %lld, G = %lld\n", d.rank, d.world,
           sg_dist_backend_name(d.backend), (long long)B, (long long)G);
    struct sogclr ld, ls;
    struct sogclr_config cfg = {.N = N_SAMPLES, .tau = 0.1f, .gamma = 0.9f};
    SG_CHECK(sogclr_init(&ld, &cfg) == 0 && sogclr_init(&ls, &cfg) == 0, "%s", sg_last_error());
    struct bufs u = bufs_new(B, G);
    float *zi = u.zi, *zt = u.zt, *gi = u.gi, *gt = u.gt, *di = u.di, *dt = u.dt;
    int64_t *idx = u.idx;
    char label[200];
    for (int step = 0; step < STEPS; step++) {
        make_batch(step, G, zi, zt, idx);
        struct sogclr_out od, os;
        int rd = sogclr_step_dist(&d, &c, &ld, zi + off * DIM, zt + off * DIM, idx + off, (int)B,
                                  DIM, di, dt, &od);
        int rs = sogclr_step(&c, &ls, zi, zt, idx, (int)G, DIM, gi, gt, &os);
        snprintf(label, sizeof label, "rank %d step %d: both steps succeed", d.rank, step);
        if (!sg_test_true(label, rd == 0 && rs == 0)) {
            printf("  %s\n", sg_last_error());
            break;
        }
        snprintf(label, sizeof label,
                 "rank %d step %d: global loss %.7g / objective %.7g equal single %.7g / %.7g",
                 d.rank, step, od.loss, od.objective, os.loss, os.objective);
        sg_test_true(label,
                     fabs(od.loss - os.loss) <= 1e-5 * fabs(os.loss) + 1e-9 &&
                         fabs(od.objective - os.objective) <= 1e-5 * fabs(os.objective) + 1e-9);
        double ri, rt;
        double ei = max_err(di, gi + off * DIM, B * DIM, &ri);
        double et = max_err(dt, gt + off * DIM, B * DIM, &rt);
        snprintf(label, sizeof label,
                 "rank %d step %d: local rows of dzi / dzt equal the single-process rows (max "
                 "excess %.2g / %.2g, rms %.2g / %.2g)",
                 d.rank, step, ei, et, ri, rt);
        sg_test_true(label, ei <= 1e-4 * ri && et <= 1e-4 * rt);
        snprintf(label, sizeof label, "rank %d step %d: replicated u/b state equals single", d.rank,
                 step);
        sg_test_true(label, state_close(&ld.st, &ls.st));
    }
    /* the state is bit-identical on every rank */
    double cs[2] = {checksum(&ld), -checksum(&ld)};
    SG_CHECK(sg_dist_allreduce_sum_f64(&d, cs, 2) == 0, "%s", sg_last_error());
    double mine = checksum(&ld), lo = -cs[1], hi = cs[0];
    (void)lo;
    snprintf(label, sizeof label, "rank %d: states identical across ranks", d.rank);
    sg_test_true(label, fabs(hi - d.world * mine) <= 1e-9 * fabs(hi));
    /* bad input on the last rank: every rank fails the same way, no state change */
    make_batch(9, G, zi, zt, idx);
    if (d.rank == d.world - 1) zi[off * DIM + 3] = NAN;
    double before = checksum(&ld);
    int rb = sogclr_step_dist(&d, &c, &ld, zi + off * DIM, zt + off * DIM, idx + off, (int)B, DIM,
                              di, dt, NULL);
    snprintf(label, sizeof label, "rank %d: a NaN on rank %d fails every rank (%s)", d.rank,
             d.world - 1, rb ? sg_last_error() : "no error");
    sg_test_true(label, rb == -1 && strstr(sg_last_error(), "NaN") && checksum(&ld) == before);
    sogclr_free(&ld);
    sogclr_free(&ls);
    bufs_free(&u);
    test_fastclip(&d, &c, B, G, off);
    test_clip(&d, &c, B, G, off);
    test_isogclr(&d, &c, B, G, off);
    test_simclr(&d, &c, B, G, off);
    test_unimodal(&d, &c, B, G, off, 0);
    test_unimodal(&d, &c, B, G, off, 1);
    int fails = sg_test_failures();
    double f = fails;
    sg_dist_allreduce_sum_f64(&d, &f, 1);
    sg_dist_finalize(&d);
    sg_ctx_free(&c);
    int rc = sg_test_summary("test_dist_loss");
    return rc ? rc : (f > 0 ? 1 : 0);
}
