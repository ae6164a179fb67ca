/*
 * tests/test_sogclr_uni.c — unimodal SogCLR / iSogCLR (losses/sogclr_uni.h).
 * References: tests/ref/gen_sogclr_uni.py -> tests/ref/data/sogclr_uni.safetensors (float64
 * autograd of the spec, multi-step sequences with the state carried along).
 *
 * Checks, for both the _ref and the fast (dispatcher, CPU) path:
 *  - multi-step sequences vs the reference: loss, dza, dzb, u (and per-sample tau, momentum)
 *    after every step; constant and cosine gamma with epoch changes, unseen -> seen samples,
 *    iSogCLR with the tau clip engaged, a batch size changing every step, tau at the float32
 *    floor (u ~ 1e33), and one 2B = 74 batch spanning two fast-path tiles;
 *  - gamma = 1 identities: gradient == tau * grad (1/B) sum (DCL^a + DCL^b) (per-anchor tau for
 *    iSogCLR), stored by the generator;
 *  - finite differences of Psi = (1/B) sum_r [-s_pos + tau_r g_r / u_r] with u frozen;
 *  - fast vs _ref on a 3-tile batch; gamma schedule values; workspace reuse;
 *  - state save/load round trip resumes bit-identically; bad state files rejected;
 *  - bad inputs and bad configs return -1 and leave the state bit-identical.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "core/safetensors.h"
#include "losses/sogclr_uni.h"
#include "tests/testutil.h"

/* fp32 GEMM similarities and expf carry ~1e-7 relative error in s; exp(s/tau) amplifies it by
 * |s|/tau <= 80 at the smallest tau, so values are ~1e-5 relative off in the worst case. */
#define ATOL 1e-5f
#define RTOL 1e-4f

typedef int (*step_fn)(struct sogclr_uni *l, struct sg_ctx *c, const float *za, const float *zb,
                       const int64_t *idx, int B, int d, float *loss, float *dza, float *dzb);

static int step_ref(struct sogclr_uni *l, struct sg_ctx *c, const float *za, const float *zb,
                    const int64_t *idx, int B, int d, float *loss, float *dza, float *dzb)
{
    SG_UNUSED(c);
    return sogclr_uni_forward_backward_ref(l, za, zb, idx, B, d, loss, dza, dzb);
}

static const step_fn PATHS[2] = {step_ref, sogclr_uni_forward_backward};
static const char *PATH_NAMES[2] = {"ref", "fast"};

/* ---- helpers --------------------------------------------------------------------------------- */

static void config_from_ref(const struct sg_st_file *ref, const char *name,
                            struct sogclr_uni_config *cfg, int *steps, int *d)
{
    float *v = sg_test_ref(ref, name, 13);
    sogclr_uni_config_default(cfg, (int64_t)v[0]);
    cfg->tau = v[1];
    cfg->gamma = v[2];
    cfg->schedule = (enum sogclr_uni_gamma)(int)v[3];
    cfg->gamma_decay_epochs = (int)v[4];
    cfg->isogclr = (int)v[5];
    cfg->tau_min = v[6];
    cfg->tau_max = v[7];
    cfg->rho = v[8];
    cfg->eta = v[9];
    cfg->beta = v[10];
    *steps = (int)v[11];
    *d = (int)v[12];
    sg_afree(v);
}

static int64_t ref_len(const struct sg_st_file *ref, const char *name)
{
    const struct sg_st_entry *e = sg_st_find(ref, name);
    if (!e) {
        fprintf(stderr, "FAIL: reference tensor '%s' missing\n", name);
        exit(1);
    }
    return e->shape[0];
}

static void normalize_rows(float *z, int B, int d)
{
    for (int i = 0; i < B; i++) {
        float *x = z + (int64_t)i * d;
        double ss = 0.0;
        for (int k = 0; k < d; k++) ss += (double)x[k] * x[k];
        for (int k = 0; k < d; k++) x[k] = (float)(x[k] / sqrt(ss));
    }
}

/* Random L2-normalised rows. */
static void random_unit_rows(float *z, int B, int d, uint64_t seed)
{
    sg_test_fill(z, (int64_t)B * d, seed, -1.0f, 1.0f);
    normalize_rows(z, B, d);
}

/* B distinct indices from [0, N) (partial Fisher-Yates with a simple LCG). */
static void random_indices(int64_t *idx, int B, int64_t N, uint64_t seed)
{
    int64_t *perm = sg_xmalloc(sizeof(int64_t) * (size_t)N);
    for (int64_t k = 0; k < N; k++) perm[k] = k;
    for (int i = 0; i < B; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int64_t j = i + (int64_t)((seed >> 33) % (uint64_t)(N - i));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        idx[i] = perm[i];
    }
    free(perm);
}

struct snapshot {
    float *u, *tau, *tau_m;
    float gamma;
    int epoch;
};

static void snap_take(struct snapshot *s, const struct sogclr_uni *l)
{
    size_t n = sizeof(float) * (size_t)l->cfg.N;
    s->u = sg_xmalloc(n);
    memcpy(s->u, l->u, n);
    s->tau = s->tau_m = NULL;
    if (l->cfg.isogclr) {
        s->tau = sg_xmalloc(n);
        s->tau_m = sg_xmalloc(n);
        memcpy(s->tau, l->tau, n);
        memcpy(s->tau_m, l->tau_m, n);
    }
    s->gamma = l->gamma;
    s->epoch = l->epoch;
}

static int snap_same(const struct snapshot *s, const struct sogclr_uni *l)
{
    size_t n = sizeof(float) * (size_t)l->cfg.N;
    int same = memcmp(s->u, l->u, n) == 0 && s->gamma == l->gamma && s->epoch == l->epoch;
    if (l->cfg.isogclr) same = same && !memcmp(s->tau, l->tau, n) && !memcmp(s->tau_m, l->tau_m, n);
    return same;
}

static void snap_free(struct snapshot *s)
{
    free(s->u);
    free(s->tau);
    free(s->tau_m);
}

/* ---- reference sequences --------------------------------------------------------------------- */

static void test_sequence(const struct sg_st_file *ref, struct sg_ctx *c, const char *name)
{
    struct sogclr_uni_config cfg;
    int steps, d;
    char key[128], label[160];
    snprintf(key, sizeof key, "%s_cfg", name);
    config_from_ref(ref, key, &cfg, &steps, &d);
    const int64_t N = cfg.N;
    for (int path = 0; path < 2; path++) {
        struct sogclr_uni l;
        SG_CHECK(sogclr_uni_init(&l, &cfg) == 0, "%s", sg_last_error());
        for (int k = 0; k < steps; k++) {
#define REF(field, n)                                                                              \
    (snprintf(key, sizeof key, "%s_s%d_" field, name, k), sg_test_ref(ref, key, n))
            snprintf(key, sizeof key, "%s_s%d_idx", name, k);
            int B = (int)ref_len(ref, key);
            int64_t *idx = sg_test_ref_i64(ref, key, B);
            snprintf(key, sizeof key, "%s_s%d_epoch", name, k);
            int64_t *epoch = sg_test_ref_i64(ref, key, 1);
            float *za = REF("za", (int64_t)B * d), *zb = REF("zb", (int64_t)B * d);
            float *want_loss = REF("loss", 1), *want_a = REF("dza", (int64_t)B * d);
            float *want_b = REF("dzb", (int64_t)B * d), *want_u = REF("u", N);
            float *dza = sg_xmalloc(sizeof(float) * (size_t)B * (size_t)d);
            float *dzb = sg_xmalloc(sizeof(float) * (size_t)B * (size_t)d);
            float loss = NAN;
            SG_CHECK(sogclr_uni_set_epoch(&l, (int)epoch[0]) == 0, "set_epoch");
            int rc = PATHS[path](&l, c, za, zb, idx, B, d, &loss, dza, dzb);
            snprintf(label, sizeof label, "%s %s step %d returns 0", name, PATH_NAMES[path], k);
            sg_test_true(label, rc == 0);
#define CMP(what, got, want, n)                                                                    \
    (snprintf(label, sizeof label, "%s %s step %d %s", name, PATH_NAMES[path], k, what),           \
     sg_test_close(label, got, want, n, ATOL, RTOL))
            CMP("loss", &loss, want_loss, 1);
            CMP("dza", dza, want_a, (int64_t)B * d);
            CMP("dzb", dzb, want_b, (int64_t)B * d);
            CMP("u", l.u, want_u, N);
            if (cfg.isogclr) {
                float *want_tau = REF("tau", N), *want_m = REF("m", N);
                CMP("tau", l.tau, want_tau, N);
                CMP("tau_m", l.tau_m, want_m, N);
                sg_afree(want_tau);
                sg_afree(want_m);
            }
#undef CMP
#undef REF
            sg_afree(za);
            sg_afree(zb);
            sg_afree(want_loss);
            sg_afree(want_a);
            sg_afree(want_b);
            sg_afree(want_u);
            free(idx);
            free(epoch);
            free(dza);
            free(dzb);
        }
        sogclr_uni_free(&l);
    }
}

/* ---- gamma = 1 identities -------------------------------------------------------------------- */

static void test_identity(const struct sg_st_file *ref, struct sg_ctx *c, const char *name)
{
    struct sogclr_uni_config cfg;
    int steps, d;
    char key[128], label[160];
    snprintf(key, sizeof key, "id_%s_cfg", name);
    config_from_ref(ref, key, &cfg, &steps, &d);
    snprintf(key, sizeof key, "id_%s_idx", name);
    int B = (int)ref_len(ref, key);
    int64_t *idx = sg_test_ref_i64(ref, key, B);
#define REF(field, n) (snprintf(key, sizeof key, "id_%s_" field, name), sg_test_ref(ref, key, n))
    float *za = REF("za", (int64_t)B * d), *zb = REF("zb", (int64_t)B * d);
    float *u0 = REF("u0", cfg.N), *tau0 = REF("tau0", cfg.N);
    float *want_a = REF("grad_a", (int64_t)B * d), *want_b = REF("grad_b", (int64_t)B * d);
#undef REF
    float *dza = sg_xmalloc(sizeof(float) * (size_t)B * (size_t)d);
    float *dzb = sg_xmalloc(sizeof(float) * (size_t)B * (size_t)d);
    for (int path = 0; path < 2; path++) {
        struct sogclr_uni l;
        SG_CHECK(sogclr_uni_init(&l, &cfg) == 0, "%s", sg_last_error());
        memcpy(l.u, u0, sizeof(float) * (size_t)cfg.N); /* seen samples: gamma = 1 ignores u */
        if (cfg.isogclr) memcpy(l.tau, tau0, sizeof(float) * (size_t)cfg.N);
        float loss;
        SG_CHECK(PATHS[path](&l, c, za, zb, idx, B, d, &loss, dza, dzb) == 0, "%s",
                 sg_last_error());
        snprintf(label, sizeof label, "gamma=1 identity %s %s: dza == tau grad DCL", name,
                 PATH_NAMES[path]);
        sg_test_close(label, dza, want_a, (int64_t)B * d, ATOL, RTOL);
        snprintf(label, sizeof label, "gamma=1 identity %s %s: dzb == tau grad DCL", name,
                 PATH_NAMES[path]);
        sg_test_close(label, dzb, want_b, (int64_t)B * d, ATOL, RTOL);
        sogclr_uni_free(&l);
    }
    free(idx);
    free(dza);
    free(dzb);
    sg_afree(za);
    sg_afree(zb);
    sg_afree(u0);
    sg_afree(tau0);
    sg_afree(want_a);
    sg_afree(want_b);
}

/* ---- finite differences of the frozen-state surrogate ---------------------------------------- */

struct fd_ctx {
    int B, d;
    double gamma;
    double *tau;  /* (B) per-anchor tau (pre-step) */
    float *u_old; /* (B) stored u before the step */
    double *ur;   /* (2B) u_r at the base point, frozen */
};

/* g_r(x) for all rows of x = [za; zb] (2B, d) into g (2B). */
static void fd_g(const struct fd_ctx *f, const float *x, double *g)
{
    int B = f->B, d = f->d, R = 2 * B;
    for (int r = 0; r < R; r++) {
        int pr = r < B ? r + B : r - B;
        double acc = 0.0;
        for (int cc = 0; cc < R; cc++) {
            if (cc == r || cc == pr) continue;
            double s = 0.0;
            for (int q = 0; q < d; q++) s += (double)x[r * d + q] * x[cc * d + q];
            acc += exp(s / f->tau[r % B]);
        }
        g[r] = acc / (2.0 * (B - 1));
    }
}

static double fd_psi(void *user, const float *x)
{
    const struct fd_ctx *f = user;
    int B = f->B, d = f->d;
    double *g = sg_xmalloc(sizeof(double) * 2 * (size_t)B), total = 0.0;
    fd_g(f, x, g);
    for (int r = 0; r < 2 * B; r++) {
        int pr = r < B ? r + B : r - B;
        double pos = 0.0;
        for (int q = 0; q < d; q++) pos += (double)x[r * d + q] * x[pr * d + q];
        total += -pos + f->tau[r % B] * g[r] / fmax(f->ur[r], 1e-8);
    }
    free(g);
    return total / B;
}

static void test_fd(struct sg_ctx *c, int iso)
{
    const int B = 5, d = 7, N = 16;
    struct sogclr_uni_config cfg;
    sogclr_uni_config_default(&cfg, N);
    cfg.tau = 0.3f;
    cfg.gamma = 0.7f;
    cfg.isogclr = iso;
    cfg.eta = 0.2f; /* visibly different per-sample tau after the first step */
    float *x = sg_xmalloc(sizeof(float) * 2 * B * d), *grad = sg_xmalloc(sizeof(float) * 2 * B * d);
    int64_t first[5] = {0, 1, 2, 3, 4}, second[5] = {3, 9, 4, 12, 7}; /* 2 seen, 3 unseen */
    for (int path = 0; path < 2; path++) {
        struct sogclr_uni l;
        SG_CHECK(sogclr_uni_init(&l, &cfg) == 0, "%s", sg_last_error());
        float loss;
        random_unit_rows(x, 2 * B, d, 31);
        SG_CHECK(PATHS[path](&l, c, x, x + B * d, first, B, d, &loss, grad, grad + B * d) == 0,
                 "%s", sg_last_error());
        random_unit_rows(x, 2 * B, d, 32);
        struct fd_ctx f = {B, d, l.gamma, NULL, NULL, NULL};
        f.tau = sg_xmalloc(sizeof(double) * B);
        f.u_old = sg_xmalloc(sizeof(float) * B);
        f.ur = sg_xmalloc(sizeof(double) * 2 * B);
        for (int i = 0; i < B; i++) {
            f.tau[i] = iso ? l.tau[second[i]] : cfg.tau;
            f.u_old[i] = l.u[second[i]];
        }
        double g[10];
        fd_g(&f, x, g);
        for (int r = 0; r < 2 * B; r++) {
            float uo = f.u_old[r % B];
            f.ur[r] = uo == 0.0f ? g[r] : (1.0 - f.gamma) * uo + f.gamma * g[r];
        }
        SG_CHECK(PATHS[path](&l, c, x, x + B * d, second, B, d, &loss, grad, grad + B * d) == 0,
                 "%s", sg_last_error());
        char label[128];
        snprintf(label, sizeof label, "%s %s gradient vs d/dz Psi (u frozen, gamma 0.7)",
                 iso ? "iSogCLR" : "SogCLR", PATH_NAMES[path]);
        /* central differences, eps 1e-3: truncation ~ eps^2 p / tau^3 ~ 1e-5 */
        sg_test_fd(label, fd_psi, &f, x, 2 * B * d, grad, 70, 1e-3f, 5e-5f, 1e-3f);
        free(f.tau);
        free(f.u_old);
        free(f.ur);
        sogclr_uni_free(&l);
    }
    free(x);
    free(grad);
}

/* ---- fast vs ref on a multi-tile batch ------------------------------------------------------- */

static void test_fast_vs_ref(struct sg_ctx *c, int iso)
{
    const int B = 70, d = 33, N = 200; /* 2B = 140: three 64-row tiles, the last partial */
    struct sogclr_uni_config cfg;
    sogclr_uni_config_default(&cfg, N);
    cfg.isogclr = iso;
    cfg.tau = 0.1f;
    struct sogclr_uni lf, lr;
    SG_CHECK(sogclr_uni_init(&lf, &cfg) == 0 && sogclr_uni_init(&lr, &cfg) == 0, "init");
    size_t n = (size_t)B * d;
    float *za = sg_xmalloc(sizeof(float) * n), *zb = sg_xmalloc(sizeof(float) * n);
    float *ga[2], *gb[2];
    for (int p = 0; p < 2; p++) {
        ga[p] = sg_xmalloc(sizeof(float) * n);
        gb[p] = sg_xmalloc(sizeof(float) * n);
    }
    int64_t idx[70];
    for (int s = 0; s < 3; s++) {
        random_unit_rows(za, B, d, 100 + s);
        random_unit_rows(zb, B, d, 200 + s);
        for (size_t q = 0; q < n; q++) zb[q] = 0.3f * zb[q] + za[q]; /* correlated views */
        normalize_rows(zb, B, d);
        random_indices(idx, B, N, 300 + s);
        float loss[2];
        SG_CHECK(sogclr_uni_forward_backward_ref(&lr, za, zb, idx, B, d, &loss[0], ga[0], gb[0]) ==
                     0,
                 "%s", sg_last_error());
        SG_CHECK(sogclr_uni_forward_backward(&lf, c, za, zb, idx, B, d, &loss[1], ga[1], gb[1]) ==
                     0,
                 "%s", sg_last_error());
        char label[128];
        snprintf(label, sizeof label, "fast vs ref B=70 d=33 %s step %d loss", iso ? "iso" : "sog",
                 s);
        sg_test_close(label, &loss[1], &loss[0], 1, ATOL, RTOL);
        snprintf(label, sizeof label, "fast vs ref B=70 d=33 %s step %d dza", iso ? "iso" : "sog",
                 s);
        sg_test_close(label, ga[1], ga[0], (int64_t)n, 1e-6f, RTOL);
        snprintf(label, sizeof label, "fast vs ref B=70 d=33 %s step %d dzb", iso ? "iso" : "sog",
                 s);
        sg_test_close(label, gb[1], gb[0], (int64_t)n, 1e-6f, RTOL);
        snprintf(label, sizeof label, "fast vs ref B=70 d=33 %s step %d u", iso ? "iso" : "sog", s);
        sg_test_close(label, lf.u, lr.u, N, ATOL, RTOL);
        if (iso) {
            snprintf(label, sizeof label, "fast vs ref B=70 d=33 iso step %d tau", s);
            sg_test_close(label, lf.tau, lr.tau, N, ATOL, RTOL);
        }
    }
    for (int p = 0; p < 2; p++) {
        free(ga[p]);
        free(gb[p]);
    }
    free(za);
    free(zb);
    sogclr_uni_free(&lf);
    sogclr_uni_free(&lr);
}

/* ---- schedule, workspace --------------------------------------------------------------------- */

static void test_schedule(void)
{
    struct sogclr_uni_config cfg;
    sogclr_uni_config_default(&cfg, 4);
    cfg.gamma = 0.2f;
    cfg.schedule = SOGCLR_UNI_GAMMA_COSINE;
    cfg.gamma_decay_epochs = 4;
    struct sogclr_uni l;
    SG_CHECK(sogclr_uni_init(&l, &cfg) == 0, "%s", sg_last_error());
    float got[7], want[7];
    sg_test_true("cosine gamma is 1 before any set_epoch", l.gamma == 1.0f);
    for (int e = 0; e < 7; e++) {
        SG_CHECK(sogclr_uni_set_epoch(&l, e) == 0, "set_epoch");
        got[e] = l.gamma;
        want[e] = e < 4 ? (float)(0.8 * 0.5 * (1.0 + cos(3.14159265358979 * e / 4.0)) + 0.2) : 0.2f;
    }
    sg_test_close("cosine gamma schedule 1 -> 0.2 over 4 epochs", got, want, 7, 1e-7f, 0);
    sg_test_true("set_epoch(-1) rejected", sogclr_uni_set_epoch(&l, -1) == -1 && l.epoch == 6);
    sogclr_uni_free(&l);
    cfg.schedule = SOGCLR_UNI_GAMMA_CONSTANT;
    SG_CHECK(sogclr_uni_init(&l, &cfg) == 0, "%s", sg_last_error());
    int ok = l.gamma == 0.2f;
    for (int e = 0; e < 5; e++) ok = ok && sogclr_uni_set_epoch(&l, e) == 0 && l.gamma == 0.2f;
    sg_test_true("constant gamma in every epoch, epoch 0 included", ok);
    sogclr_uni_free(&l);
}

static void test_workspace(struct sg_ctx *c)
{
    struct sogclr_uni_config cfg;
    sogclr_uni_config_default(&cfg, 50);
    struct sogclr_uni l;
    SG_CHECK(sogclr_uni_init(&l, &cfg) == 0, "%s", sg_last_error());
    float za[8 * 16], zb[8 * 16], dza[8 * 16], dzb[8 * 16], loss;
    int64_t idx[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    random_unit_rows(za, 8, 16, 5);
    random_unit_rows(zb, 8, 16, 6);
    SG_CHECK(sogclr_uni_forward_backward(&l, c, za, zb, idx, 8, 16, &loss, dza, dzb) == 0, "step");
    const void *ps = l.ws_s, *pz = l.ws_z, *pr = l.ws_row;
    int ok = 1;
    for (int B = 2; B <= 8; B += 3)
        ok = ok && sogclr_uni_forward_backward(&l, c, za, zb, idx, B, 16, &loss, dza, dzb) == 0;
    ok = ok && sogclr_uni_forward_backward(&l, c, za, zb, idx, 8, 16, &loss, NULL, NULL) == 0;
    sg_test_true("workspace reused for smaller or equal batches (no regrowth)",
                 ok && ps == l.ws_s && pz == l.ws_z && pr == l.ws_row);
    sogclr_uni_free(&l);
}

/* ---- state save / load ----------------------------------------------------------------------- */

struct run_out {
    float loss[8];
    float *grad; /* (steps, 2, B, d) */
};

static void resume_case(struct sg_ctx *c, int iso)
{
    enum { STEPS = 8, SAVE_AFTER = 4, B = 6, D = 10, N = 24 };
    static const int epochs[STEPS] = {0, 0, 1, 1, 2, 2, 3, 4};
    struct sogclr_uni_config cfg;
    sogclr_uni_config_default(&cfg, N);
    cfg.isogclr = iso;
    cfg.eta = 0.05f;
    cfg.gamma = 0.3f;
    cfg.schedule = SOGCLR_UNI_GAMMA_COSINE;
    cfg.gamma_decay_epochs = 3;
    float za[STEPS][B * D], zb[STEPS][B * D];
    int64_t idx[STEPS][B];
    for (int s = 0; s < STEPS; s++) {
        random_unit_rows(za[s], B, D, 1000 + s);
        random_unit_rows(zb[s], B, D, 2000 + s);
        random_indices(idx[s], B, N, 3000 + s);
    }
    float loss_a[STEPS], loss_b[STEPS], ga[STEPS][2][B * D], gb[STEPS][2][B * D];
    struct sogclr_uni full, part, resumed;
    SG_CHECK(sogclr_uni_init(&full, &cfg) == 0 && sogclr_uni_init(&part, &cfg) == 0, "init");
    for (int s = 0; s < STEPS; s++) {
        SG_CHECK(sogclr_uni_set_epoch(&full, epochs[s]) == 0, "epoch");
        SG_CHECK(sogclr_uni_forward_backward(&full, c, za[s], zb[s], idx[s], B, D, &loss_a[s],
                                             ga[s][0], ga[s][1]) == 0,
                 "%s", sg_last_error());
    }
    for (int s = 0; s < SAVE_AFTER; s++) {
        SG_CHECK(sogclr_uni_set_epoch(&part, epochs[s]) == 0, "epoch");
        SG_CHECK(sogclr_uni_forward_backward(&part, c, za[s], zb[s], idx[s], B, D, &loss_b[s],
                                             gb[s][0], gb[s][1]) == 0,
                 "%s", sg_last_error());
    }
    struct sg_st_writer w;
    sg_stw_init(&w);
    float other = 1.0f;
    int64_t one = 1;
    sg_stw_add_f32(&w, "model.u", 1, &one, &other); /* another owner's tensor, same suffix */
    SG_CHECK(sogclr_uni_state_save(&part, &w, "loss.uni.") == 0, "%s", sg_last_error());
    uint8_t *buf;
    size_t len;
    SG_CHECK(sg_stw_serialize(&w, &buf, &len) == 0, "%s", sg_last_error());
    sg_stw_free(&w);
    struct sg_st_file f;
    SG_CHECK(sg_st_open_buffer(&f, buf, len, "resume") == 0, "%s", sg_last_error());
    SG_CHECK(sogclr_uni_init(&resumed, &cfg) == 0, "init");
    sg_test_true(iso ? "iSogCLR state load" : "SogCLR state load",
                 sogclr_uni_state_load(&resumed, &f, "loss.uni.") == 0);
    for (int s = SAVE_AFTER; s < STEPS; s++) {
        SG_CHECK(sogclr_uni_set_epoch(&resumed, epochs[s]) == 0, "epoch");
        SG_CHECK(sogclr_uni_forward_backward(&resumed, c, za[s], zb[s], idx[s], B, D, &loss_b[s],
                                             gb[s][0], gb[s][1]) == 0,
                 "%s", sg_last_error());
    }
    int same = !memcmp(loss_a, loss_b, sizeof loss_a) && !memcmp(ga, gb, sizeof ga) &&
               !memcmp(full.u, resumed.u, sizeof(float) * N) && full.gamma == resumed.gamma;
    if (iso)
        same = same && !memcmp(full.tau, resumed.tau, sizeof(float) * N) &&
               !memcmp(full.tau_m, resumed.tau_m, sizeof(float) * N);
    sg_test_true(iso ? "iSogCLR resume after save/load is bit-identical (8 steps, cosine gamma)"
                     : "SogCLR resume after save/load is bit-identical (8 steps, cosine gamma)",
                 same);

    /* Failing loads leave the state untouched. */
    struct snapshot snap;
    snap_take(&snap, &resumed);
    int rc = sogclr_uni_state_load(&resumed, &f, "loss.other.");
    sg_test_true("load with a missing prefix fails, state untouched",
                 rc == -1 && snap_same(&snap, &resumed) && strstr(sg_last_error(), "missing"));
    struct sogclr_uni_config cfg2 = cfg;
    cfg2.N = N + 1;
    struct sogclr_uni wrong;
    SG_CHECK(sogclr_uni_init(&wrong, &cfg2) == 0, "init");
    rc = sogclr_uni_state_load(&wrong, &f, "loss.uni.");
    sg_test_true("load with a different N fails clearly",
                 rc == -1 && strstr(sg_last_error(), "N = 25") && wrong.u[0] == 0.0f);
    sogclr_uni_free(&wrong);
    cfg2 = cfg;
    cfg2.isogclr = !iso;
    SG_CHECK(sogclr_uni_init(&wrong, &cfg2) == 0, "init");
    rc = sogclr_uni_state_load(&wrong, &f, "loss.uni.");
    sg_test_true("load with the isogclr flag flipped fails clearly",
                 rc == -1 && strstr(sg_last_error(), "isogclr"));
    sogclr_uni_free(&wrong);
    sg_st_close(&f);

    /* Bad values: NaN u, gamma 0, negative epoch. */
    static const char *what[3] = {"NaN in u", "gamma 0", "epoch -1"};
    for (int t = 0; t < 3; t++) {
        float u[N], gamma = t == 1 ? 0.0f : 0.5f;
        int64_t n = N, epoch = t == 2 ? -1 : 3;
        memcpy(u, resumed.u, sizeof u);
        if (t == 0) u[5] = NAN;
        sg_stw_init(&w);
        sg_stw_add_f32(&w, "u", 1, &n, u);
        if (iso) {
            sg_stw_add_f32(&w, "tau", 1, &n, resumed.tau);
            sg_stw_add_f32(&w, "tau_m", 1, &n, resumed.tau_m);
        }
        sg_stw_add_f32(&w, "gamma", 1, &one, &gamma);
        sg_stw_add(&w, "epoch", SG_I64, 1, &one, &epoch);
        SG_CHECK(sg_stw_serialize(&w, &buf, &len) == 0, "%s", sg_last_error());
        sg_stw_free(&w);
        SG_CHECK(sg_st_open_buffer(&f, buf, len, "bad") == 0, "%s", sg_last_error());
        char label[96];
        snprintf(label, sizeof label, "load rejects %s, state untouched", what[t]);
        sg_test_true(label,
                     sogclr_uni_state_load(&resumed, &f, "") == -1 && snap_same(&snap, &resumed));
        sg_st_close(&f);
    }
    snap_free(&snap);
    sogclr_uni_free(&full);
    sogclr_uni_free(&part);
    sogclr_uni_free(&resumed);
}

/* ---- bad inputs and configs ------------------------------------------------------------------ */

static void test_bad_inputs(struct sg_ctx *c, int iso)
{
    enum { B = 4, D = 6, N = 10 };
    struct sogclr_uni_config cfg;
    sogclr_uni_config_default(&cfg, N);
    cfg.isogclr = iso;
    struct sogclr_uni l;
    SG_CHECK(sogclr_uni_init(&l, &cfg) == 0, "init");
    float za[B * D], zb[B * D], dza[B * D], dzb[B * D], loss;
    int64_t idx[B] = {0, 3, 5, 9};
    random_unit_rows(za, B, D, 7);
    random_unit_rows(zb, B, D, 8);
    SG_CHECK(sogclr_uni_forward_backward(&l, c, za, zb, idx, B, D, &loss, dza, dzb) == 0, "seed");
    struct snapshot snap;
    snap_take(&snap, &l);
    static const char *names[] = {
        "NaN in za",     "Inf in zb", "index -1", "index N",
        "duplicate idx", "B = 1",     "d = 0",    "za row not normalised"};
    static const char *want[] = {"NaN",   "NaN",        "outside", "outside",
                                 "twice", "batch size", "dim",     "L2-normalised"};
    for (int t = 0; t < 8; t++) {
        float a[B * D], b[B * D];
        int64_t id[B];
        int bb = B, dd = D;
        memcpy(a, za, sizeof a);
        memcpy(b, zb, sizeof b);
        memcpy(id, idx, sizeof id);
        switch (t) {
        case 0:
            a[7] = NAN;
            break;
        case 1:
            b[13] = INFINITY;
            break;
        case 2:
            id[2] = -1;
            break;
        case 3:
            id[3] = N;
            break;
        case 4:
            id[3] = 0;
            break;
        case 5:
            bb = 1;
            break;
        case 6:
            dd = 0;
            break;
        case 7:
            for (int k = 0; k < D; k++) a[2 * D + k] *= 1.1f;
            break;
        }
        for (int path = 0; path < 2; path++) {
            sg_clear_error();
            int rc = PATHS[path](&l, c, a, b, id, bb, dd, &loss, dza, dzb);
            char label[128];
            snprintf(label, sizeof label, "%s %s: %s -> -1, state bit-identical",
                     iso ? "iSogCLR" : "SogCLR", PATH_NAMES[path], names[t]);
            sg_test_true(label,
                         rc == -1 && snap_same(&snap, &l) && strstr(sg_last_error(), want[t]));
        }
    }
    snap_free(&snap);
    sogclr_uni_free(&l);
}

static void test_bad_configs(void)
{
    static const char *names[] = {"N = 0",
                                  "tau 0.012 below the float32 floor",
                                  "tau NaN",
                                  "gamma 0",
                                  "gamma 1.5",
                                  "cosine without decay epochs",
                                  "iso tau_min 0.01",
                                  "iso tau above tau_max",
                                  "iso beta 1.5",
                                  "iso eta -1"};
    for (int t = 0; t < 10; t++) {
        struct sogclr_uni_config cfg;
        sogclr_uni_config_default(&cfg, 10);
        switch (t) {
        case 0:
            cfg.N = 0;
            break;
        case 1:
            cfg.tau = 0.012f;
            break;
        case 2:
            cfg.tau = NAN;
            break;
        case 3:
            cfg.gamma = 0.0f;
            break;
        case 4:
            cfg.gamma = 1.5f;
            break;
        case 5:
            cfg.schedule = SOGCLR_UNI_GAMMA_COSINE;
            break;
        case 6:
            cfg.isogclr = 1, cfg.tau_min = 0.01f;
            break;
        case 7:
            cfg.isogclr = 1, cfg.tau = 0.8f;
            break;
        case 8:
            cfg.isogclr = 1, cfg.beta = 1.5f;
            break;
        case 9:
            cfg.isogclr = 1, cfg.eta = -1.0f;
            break;
        }
        struct sogclr_uni l;
        char label[96];
        snprintf(label, sizeof label, "config rejected: %s", names[t]);
        int rc = sogclr_uni_init(&l, &cfg);
        sg_test_true(label, rc == -1 && l.u == NULL);
        if (t == 1) printf("     message: %s\n", sg_last_error());
        if (rc == 0) sogclr_uni_free(&l);
    }
    struct sogclr_uni_config cfg;
    sogclr_uni_config_default(&cfg, 10);
    cfg.tau = SOGCLR_UNI_TAU_FLOOR;
    struct sogclr_uni l;
    sg_test_true("tau at the floor accepted", sogclr_uni_init(&l, &cfg) == 0);
    sogclr_uni_free(&l);
}

int main(void)
{
    struct sg_ctx c;
    SG_CHECK(sg_ctx_init(&c, SG_DEVICE_CPU, 0, 0) == 0, "%s", sg_last_error());
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "sogclr_uni.safetensors");
    static const char *seqs[] = {"const", "cos", "iso", "isocos", "smalltau", "big"};
    for (size_t s = 0; s < sizeof seqs / sizeof seqs[0]; s++) test_sequence(&ref, &c, seqs[s]);
    test_identity(&ref, &c, "sog");
    test_identity(&ref, &c, "iso");
    for (int iso = 0; iso < 2; iso++) {
        test_fd(&c, iso);
        test_fast_vs_ref(&c, iso);
        resume_case(&c, iso);
        test_bad_inputs(&c, iso);
    }
    test_schedule();
    test_workspace(&c);
    test_bad_configs();
    sg_st_close(&ref);
    sg_ctx_free(&c);
    return sg_test_summary("test_sogclr_uni");
}
