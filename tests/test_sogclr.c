/*
 * tests/test_sogclr.c — two-way SogCLR (losses/sogclr.h) against the float64 spec
 * implementation tests/ref/gen_sogclr.py -> tests/ref/data/sogclr.safetensors.
 *
 * Checks, for both sogclr_step_ref and sogclr_step (fast path):
 *  - three multi-step scenarios (constant gamma; cosine gamma with epoch changes mid-sequence;
 *    tau = 0.02 where exp(D/tau) reaches e^100): per step the surrogate loss, the objective
 *    estimate, dzi, dzt and the whole state (u_img, u_txt, b_img, b_txt) after the step; the
 *    batches mix unseen and seen samples and change size (workspace growth and reuse);
 *  - the gamma = 1 identity: gradient == tau * grad L_2way from the file, on seen samples;
 *  - finite differences of Psi(z) = (tau/(2B)) sum_i [ghat^I_i(z)/U^I_i + ghat^T_i(z)/U^T_i]
 *    with U frozen at the step's values (the function whose gradient the step returns);
 *  - a larger batch (B = 300, fast path at 1, 2 and 3 threads: the per-thread column partials;
 *    both the stored-exponential and the recompute pass 3) against the double reference;
 *  - bad inputs (NaN, Inf, index < 0 and >= N, duplicate index, B < 2, d < 1): -1 and the
 *    state bit-identical; bad configurations rejected at init;
 *  - checkpoint: save after k steps, load into a fresh object, continue: bit-identical to the
 *    uninterrupted run; loading into a loss of another N fails and leaves the state unchanged.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "core/safetensors.h"
#include "losses/sogclr.h"
#include "tests/testutil.h"

/* fp32 against float64. Gradients are O(1/B); the fp32 similarity carries ~1e-7 relative
 * error, amplified by 1/tau in the exponent (tau = 0.02: 5e-6), hence rtol 1e-4. */
#define ATOL 1e-5f
#define RTOL 1e-4f

struct scn {
    float tau, gamma;
    int schedule, decay, K, d;
    int64_t N, *Bs, *epochs;
};

static void load_scn(struct scn *s, const struct sg_st_file *ref, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "%s_cfg", name);
    float *cfg = sg_test_ref(ref, key, 7);
    s->tau = cfg[0], s->gamma = cfg[1], s->schedule = (int)cfg[2], s->decay = (int)cfg[3];
    s->N = (int64_t)cfg[4], s->K = (int)cfg[5], s->d = (int)cfg[6];
    sg_afree(cfg);
    snprintf(key, sizeof key, "%s_B", name);
    s->Bs = sg_test_ref_i64(ref, key, s->K);
    snprintf(key, sizeof key, "%s_epoch", name);
    s->epochs = sg_test_ref_i64(ref, key, s->K);
}

static void init_loss(struct sogclr *l, const struct scn *s)
{
    struct sogclr_config cfg = {s->N, s->tau, s->gamma, s->schedule, s->decay};
    SG_CHECK(sogclr_init(l, &cfg) == 0, "%s", sg_last_error());
}

/* Step data k of a scenario (malloc'd). */
struct stepdat {
    int B;
    float *zi, *zt;
    int64_t *idx;
};

static void load_step(struct stepdat *t, const struct sg_st_file *ref, const char *name,
                      const struct scn *s, int k)
{
    char key[128];
    t->B = (int)s->Bs[k];
    int64_t n = (int64_t)t->B * s->d;
    snprintf(key, sizeof key, "%s_%d_zi", name, k);
    t->zi = sg_test_ref(ref, key, n);
    snprintf(key, sizeof key, "%s_%d_zt", name, k);
    t->zt = sg_test_ref(ref, key, n);
    snprintf(key, sizeof key, "%s_%d_idx", name, k);
    t->idx = sg_test_ref_i64(ref, key, t->B);
}

static void free_step(struct stepdat *t)
{
    sg_afree(t->zi);
    sg_afree(t->zt);
    free(t->idx);
}

/* Calls set_epoch only when the epoch changes (as a training loop does at epoch boundaries),
 * so a resumed loss must have restored its epoch and gamma itself. */
static void maybe_set_epoch(struct sogclr *l, int64_t epoch)
{
    if (epoch != l->sched.epoch) SG_CHECK(sogclr_set_epoch(l, epoch) == 0, "set_epoch");
}

static void cmp_ref(const struct sg_st_file *ref, const char *key, const char *what,
                    const float *got, int64_t n, float atol, float rtol)
{
    char name[160], label[200];
    snprintf(name, sizeof name, "%s_%s", key, what);
    snprintf(label, sizeof label, "%s %s", key, what);
    float *want = sg_test_ref(ref, name, n);
    sg_test_close(label, got, want, n, atol, rtol);
    sg_afree(want);
}

static void check_scenario(struct sg_ctx *c, const struct sg_st_file *ref, const char *name,
                           int fast)
{
    struct scn s;
    load_scn(&s, ref, name);
    struct sogclr l;
    init_loss(&l, &s);
    char key[128];
    for (int k = 0; k < s.K; k++) {
        struct stepdat t;
        load_step(&t, ref, name, &s, k);
        int64_t n = (int64_t)t.B * s.d;
        float *dzi = sg_xmalloc(sizeof(float) * (size_t)n), *dzt = sg_xmalloc(sizeof(float) * n);
        struct sogclr_out o;
        maybe_set_epoch(&l, s.epochs[k]);
        int rc = fast ? sogclr_step(c, &l, t.zi, t.zt, t.idx, t.B, s.d, dzi, dzt, &o)
                      : sogclr_step_ref(&l, t.zi, t.zt, t.idx, t.B, s.d, dzi, dzt, &o);
        SG_CHECK(rc == 0, "%s", sg_last_error());
        snprintf(key, sizeof key, "%s_%d", name, k);
        char pk[160];
        snprintf(pk, sizeof pk, "%s%s", fast ? "fast " : "ref ", key);
        printf("  %s: B=%d gamma=%.4f loss=%.6f objective=%.6f\n", pk, t.B, (double)o.gamma,
               (double)o.loss, (double)o.objective);
        cmp_ref(ref, key, "loss", &o.loss, 1, ATOL, RTOL);
        cmp_ref(ref, key, "obj", &o.objective, 1, ATOL, RTOL);
        cmp_ref(ref, key, "dzi", dzi, n, ATOL, RTOL);
        cmp_ref(ref, key, "dzt", dzt, n, ATOL, RTOL);
        cmp_ref(ref, key, "u_img", l.st.u_img, s.N, ATOL, RTOL);
        cmp_ref(ref, key, "u_txt", l.st.u_txt, s.N, ATOL, RTOL);
        cmp_ref(ref, key, "b_img", l.st.b_img, s.N, ATOL, RTOL);
        cmp_ref(ref, key, "b_txt", l.st.b_txt, s.N, ATOL, RTOL);
        free(dzi);
        free(dzt);
        free_step(&t);
    }
    sogclr_free(&l);
    free(s.Bs);
    free(s.epochs);
}

/* gamma = 1 on seen samples: the gradient is tau * grad L_2way whatever the old state. */
static void check_identity(struct sg_ctx *c, const struct sg_st_file *ref)
{
    const int B = 7, d = 11;
    float *zi = sg_test_ref(ref, "id_zi", B * d), *zt = sg_test_ref(ref, "id_zt", B * d);
    int64_t *idx = sg_test_ref_i64(ref, "id_idx", B);
    float tau = sg_test_ref_scalar(ref, "id_tau");
    float *gi = sg_test_ref(ref, "id_dzi", B * d), *gt = sg_test_ref(ref, "id_dzt", B * d);
    float dzi[7 * 11], dzt[7 * 11];
    for (int fast = 0; fast < 2; fast++) {
        struct sogclr l;
        struct sogclr_config cfg = {10, tau, 1.0f, GCL_BI_GAMMA_CONSTANT, 0};
        SG_CHECK(sogclr_init(&l, &cfg) == 0, "%s", sg_last_error());
        for (int i = 0; i < 10; i++) l.st.u_img[i] = 0.5f, l.st.u_txt[i] = 2.0f;
        int rc = fast ? sogclr_step(c, &l, zi, zt, idx, B, d, dzi, dzt, NULL)
                      : sogclr_step_ref(&l, zi, zt, idx, B, d, dzi, dzt, NULL);
        SG_CHECK(rc == 0, "%s", sg_last_error());
        sg_test_close(fast ? "identity fast dzi = tau grad L_2way" : "identity ref dzi", dzi, gi,
                      B * d, ATOL, RTOL);
        sg_test_close(fast ? "identity fast dzt = tau grad L_2way" : "identity ref dzt", dzt, gt,
                      B * d, ATOL, RTOL);
        sogclr_free(&l);
    }
    sg_afree(zi);
    sg_afree(zt);
    sg_afree(gi);
    sg_afree(gt);
    free(idx);
}

/* Psi(z) with U frozen; x = [zi; zt] (2B, d). */
struct fd_psi {
    int B, d;
    double tau;
    const double *UI, *UT; /* (B) */
};

static double psi(void *user, const float *x)
{
    const struct fd_psi *a = user;
    const int B = a->B, d = a->d;
    const float *zi = x, *zt = x + (size_t)B * d;
    double *S = sg_xmalloc(sizeof(double) * (size_t)(B * B));
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            double acc = 0.0;
            for (int k = 0; k < d; k++) acc += (double)zi[i * d + k] * zt[j * d + k];
            S[i * B + j] = acc;
        }
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        double gI = 0.0, gT = 0.0;
        for (int j = 0; j < B; j++) {
            if (j == i) continue;
            gI += exp((S[i * B + j] - S[i * B + i]) / a->tau);
            gT += exp((S[j * B + i] - S[i * B + i]) / a->tau);
        }
        total += gI / (B - 1) / a->UI[i] + gT / (B - 1) / a->UT[i];
    }
    free(S);
    return a->tau * total / (2.0 * B);
}

static void check_fd(struct sg_ctx *c, const struct sg_st_file *ref)
{
    struct scn s;
    load_scn(&s, ref, "cos");
    struct sogclr l;
    init_loss(&l, &s);
    for (int k = 0; k < 3; k++) { /* the third step has seen samples and gamma < 1 */
        struct stepdat t;
        load_step(&t, ref, "cos", &s, k);
        const int B = t.B, d = s.d;
        float *x = sg_xmalloc(sizeof(float) * 2 * B * d),
              *g = sg_xmalloc(sizeof(float) * 2 * B * d);
        memcpy(x, t.zi, sizeof(float) * B * d);
        memcpy(x + B * d, t.zt, sizeof(float) * B * d);
        maybe_set_epoch(&l, s.epochs[k]);
        SG_CHECK(sogclr_step(c, &l, t.zi, t.zt, t.idx, B, d, g, g + B * d, NULL) == 0, "step");
        double UI[16], UT[16];
        for (int i = 0; i < B; i++) {
            int64_t q = t.idx[i];
            UI[i] = (double)l.st.u_img[q] * exp((double)l.st.b_img[q]);
            UT[i] = (double)l.st.u_txt[q] * exp((double)l.st.b_txt[q]);
        }
        struct fd_psi a = {B, d, s.tau, UI, UT};
        char label[64];
        snprintf(label, sizeof label, "fd Psi (U frozen) step %d", k);
        sg_test_fd(label, psi, &a, x, 2 * B * d, g, 2 * B * d, 0x1p-10f, 2e-5f, 2e-3f);
        free(x);
        free(g);
        free_step(&t);
    }
    sogclr_free(&l);
    free(s.Bs);
    free(s.epochs);
}

/* Gradient tolerance for the large cases: fp32 GEMM sums of B terms cancel, so absolute
 * errors scale with the largest gradient entry rather than each entry's own size. */
static float grad_atol(const float *ref, int64_t n)
{
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) m = fabsf(ref[i]) > m ? fabsf(ref[i]) : m;
    return 1e-5f * m;
}

static void normalize_rows(float *z, int B, int d)
{
    for (int i = 0; i < B; i++) {
        double s = 0.0;
        for (int k = 0; k < d; k++) s += (double)z[i * d + k] * z[i * d + k];
        for (int k = 0; k < d; k++) z[i * d + k] = (float)(z[i * d + k] / sqrt(s));
    }
}

/* B = 300 (S has 90000 entries: the threaded path) vs the double reference, 3 steps, with the
 * stored-exponential pass 3 (default for B <= GCL_BI_STORE_MAX_B) and the recompute path. */
static void check_large(void)
{
    const int B = 300, d = 32, K = 3;
    const int64_t N = 700;
    size_t nb = sizeof(float) * B * d;
    float *zi = sg_xmalloc(nb), *zt = sg_xmalloc(nb), *ri = sg_xmalloc(nb), *rt = sg_xmalloc(nb);
    float *fi = sg_xmalloc(nb), *ft = sg_xmalloc(nb);
    int64_t idx[300];
    for (int nt = 1; nt <= 3; nt++) {
        for (int store = 0; store < 2; store++) {
            struct sg_ctx c;
            SG_CHECK(sg_ctx_init(&c, SG_DEVICE_CPU, 0, nt) == 0, "ctx");
            struct sogclr lr, lf;
            struct sogclr_config cfg = {N, 0.05f, 0.7f, GCL_BI_GAMMA_CONSTANT, 0};
            SG_CHECK(sogclr_init(&lr, &cfg) == 0 && sogclr_init(&lf, &cfg) == 0, "init");
            if (!store) lf.ws.store_max_b = 0;
            const char *path = store ? "stored" : "recompute";
            for (int k = 0; k < K; k++) {
                sg_test_fill(zi, B * d, 100 + k, -1.0f, 1.0f);
                sg_test_fill(zt, B * d, 200 + k, -1.0f, 1.0f);
                for (int i = 0; i < B * d; i++) zt[i] = 0.5f * zt[i] + zi[i];
                normalize_rows(zi, B, d);
                normalize_rows(zt, B, d);
                for (int i = 0; i < B; i++) idx[i] = (i * 3 + k * 200) % N; /* overlaps by step */
                struct sogclr_out orf, off;
                SG_CHECK(sogclr_step_ref(&lr, zi, zt, idx, B, d, ri, rt, &orf) == 0, "ref");
                SG_CHECK(sogclr_step(&c, &lf, zi, zt, idx, B, d, fi, ft, &off) == 0, "fast");
                char label[128];
                snprintf(label, sizeof label, "large B=300 %s threads=%d step %d dzi", path, nt, k);
                sg_test_close(label, fi, ri, B * d, grad_atol(ri, B * d), 2e-4f);
                snprintf(label, sizeof label, "large B=300 %s threads=%d step %d dzt", path, nt, k);
                sg_test_close(label, ft, rt, B * d, grad_atol(rt, B * d), 2e-4f);
                snprintf(label, sizeof label, "large %s threads=%d step %d loss, objective", path,
                         nt, k);
                float got[2] = {off.loss, off.objective}, want[2] = {orf.loss, orf.objective};
                sg_test_close(label, got, want, 2, 1e-6f, 1e-4f);
            }
            sg_test_close("large u_img fast vs ref", lf.st.u_img, lr.st.u_img, N, 0.0f, 2e-4f);
            sg_test_close("large u_txt fast vs ref", lf.st.u_txt, lr.st.u_txt, N, 0.0f, 2e-4f);
            sg_test_close("large b_img fast vs ref", lf.st.b_img, lr.st.b_img, N, 0.0f, 1e-5f);
            sg_test_close("large b_txt fast vs ref", lf.st.b_txt, lr.st.b_txt, N, 0.0f, 1e-5f);
            size_t ws = sogclr_workspace_bytes(&lf);
            size_t bb = sizeof(float) * B * B;
            sg_test_true(store ? "stored path: workspace holds S and W"
                               : "recompute path: workspace holds S only",
                         (lf.ws.W != NULL) == store && ws >= bb * (store ? 2 : 1) &&
                             ws < bb * (store ? 3 : 2));
            SG_CHECK(sogclr_step(&c, &lf, zi, zt, idx, 100, d, fi, ft, NULL) == 0, "smaller");
            sg_test_true("workspace not regrown for a smaller batch",
                         sogclr_workspace_bytes(&lf) == ws);
            sogclr_free(&lr);
            sogclr_free(&lf);
            sg_ctx_free(&c);
        }
    }
    free(zi), free(zt), free(ri), free(rt), free(fi), free(ft);
}

/* ---- bad inputs ---- */

struct snap {
    float *u;
    int64_t N;
};

static void take_snap(struct snap *s, const struct sogclr *l)
{
    s->N = l->st.N;
    s->u = sg_xmalloc(sizeof(float) * 4 * (size_t)s->N);
    memcpy(s->u, l->st.u_img, sizeof(float) * s->N);
    memcpy(s->u + s->N, l->st.u_txt, sizeof(float) * s->N);
    memcpy(s->u + 2 * s->N, l->st.b_img, sizeof(float) * s->N);
    memcpy(s->u + 3 * s->N, l->st.b_txt, sizeof(float) * s->N);
}

static int same_snap(const struct snap *s, const struct sogclr *l)
{
    size_t b = sizeof(float) * s->N;
    return !memcmp(s->u, l->st.u_img, b) && !memcmp(s->u + s->N, l->st.u_txt, b) &&
           !memcmp(s->u + 2 * s->N, l->st.b_img, b) && !memcmp(s->u + 3 * s->N, l->st.b_txt, b);
}

static void check_bad_inputs(struct sg_ctx *c, const struct sg_st_file *ref)
{
    struct scn s;
    load_scn(&s, ref, "const");
    struct sogclr l;
    init_loss(&l, &s);
    struct stepdat t;
    load_step(&t, ref, "const", &s, 0);
    const int B = t.B, d = s.d;
    float dzi[8 * 16], dzt[8 * 16];
    SG_CHECK(sogclr_step(c, &l, t.zi, t.zt, t.idx, B, d, dzi, dzt, NULL) == 0, "first step");
    struct snap sn;
    take_snap(&sn, &l);
    for (int fast = 0; fast < 2; fast++) {
        for (int kase = 0; kase < 7; kase++) {
            float zi[8 * 16], zt[8 * 16];
            int64_t idx[8];
            memcpy(zi, t.zi, sizeof(float) * B * d);
            memcpy(zt, t.zt, sizeof(float) * B * d);
            memcpy(idx, t.idx, sizeof(int64_t) * B);
            int b = B, dd = d;
            const char *what = "";
            switch (kase) {
            case 0:
                zi[3 * d + 2] = NAN, what = "NaN in zi";
                break;
            case 1:
                zt[B * d - 1] = INFINITY, what = "Inf in zt";
                break;
            case 2:
                idx[2] = -1, what = "index -1";
                break;
            case 3:
                idx[B - 1] = s.N, what = "index N";
                break;
            case 4:
                idx[4] = idx[1], what = "duplicate index";
                break;
            case 5:
                b = 1, what = "B = 1";
                break;
            case 6:
                dd = 0, what = "d = 0";
                break;
            }
            sg_clear_error();
            int rc = fast ? sogclr_step(c, &l, zi, zt, idx, b, dd, dzi, dzt, NULL)
                          : sogclr_step_ref(&l, zi, zt, idx, b, dd, dzi, dzt, NULL);
            char label[128];
            snprintf(label, sizeof label, "%s bad input (%s): -1, message, state unchanged",
                     fast ? "fast" : "ref", what);
            sg_test_true(label, rc == -1 && sg_last_error()[0] != 0 && same_snap(&sn, &l));
            if (kase == 0 && fast) printf("  message: %s\n", sg_last_error());
        }
    }
    struct sogclr bad;
    struct sogclr_config cfgs[4] = {{10, 0.0f, 0.5f, 0, 0},
                                    {10, 0.1f, 1.5f, 0, 0},
                                    {10, 0.1f, 0.5f, GCL_BI_GAMMA_COSINE, 0},
                                    {0, 0.1f, 0.5f, 0, 0}};
    for (int k = 0; k < 4; k++) {
        char label[64];
        snprintf(label, sizeof label, "bad config %d rejected", k);
        sg_test_true(label, sogclr_init(&bad, &cfgs[k]) == -1);
    }
    free(sn.u);
    free_step(&t);
    sogclr_free(&l);
    free(s.Bs);
    free(s.epochs);
}

/* ---- checkpoint round trip ---- */

static void run_steps(struct sg_ctx *c, struct sogclr *l, const struct sg_st_file *ref,
                      const struct scn *s, int k0, int k1, float **grads)
{
    for (int k = k0; k < k1; k++) {
        struct stepdat t;
        load_step(&t, ref, "cos", s, k);
        maybe_set_epoch(l, s->epochs[k]);
        float *g = grads[k];
        SG_CHECK(sogclr_step(c, l, t.zi, t.zt, t.idx, t.B, s->d, g, g + t.B * s->d, NULL) == 0,
                 "%s", sg_last_error());
        free_step(&t);
    }
}

static void check_resume(struct sg_ctx *c, const struct sg_st_file *ref)
{
    struct scn s;
    load_scn(&s, ref, "cos");
    float *ga[8], *gb[8];
    for (int k = 0; k < s.K; k++) {
        ga[k] = sg_xcalloc(2 * 8 * 16, sizeof(float));
        gb[k] = sg_xcalloc(2 * 8 * 16, sizeof(float));
    }
    struct sogclr a, b;
    init_loss(&a, &s);
    run_steps(c, &a, ref, &s, 0, s.K, ga);
    const int ksave = 4; /* epochs[4] == epochs[3]: the resumed loss must restore gamma */
    init_loss(&b, &s);
    run_steps(c, &b, ref, &s, 0, ksave, gb);
    struct sg_st_writer w;
    sg_stw_init(&w);
    sogclr_state_save(&b, &w, "loss.");
    uint8_t *buf;
    size_t len;
    SG_CHECK(sg_stw_serialize(&w, &buf, &len) == 0, "serialize");
    sg_stw_free(&w);
    struct sg_st_file f;
    SG_CHECK(sg_st_open_buffer(&f, buf, len, "sogclr-state") == 0, "%s", sg_last_error());
    sogclr_free(&b);
    init_loss(&b, &s);
    sg_test_true("load state", sogclr_state_load(&b, &f, "loss.") == 0);
    run_steps(c, &b, ref, &s, ksave, s.K, gb);
    int same = 1;
    for (int k = ksave; k < s.K; k++)
        same &= !memcmp(ga[k], gb[k], sizeof(float) * 2 * (size_t)s.Bs[k] * s.d);
    sg_test_true("resumed gradients bit-identical", same);
    struct snap sa;
    take_snap(&sa, &a);
    sg_test_true("resumed state bit-identical", same_snap(&sa, &b));
    sg_test_true("resumed epoch and gamma",
                 a.sched.epoch == b.sched.epoch && a.sched.gamma_cur == b.sched.gamma_cur);
    /* a loss for another dataset size must refuse the file and keep its state */
    struct sogclr other;
    struct scn s2 = s;
    s2.N = s.N + 1;
    init_loss(&other, &s2);
    other.st.u_img[0] = 3.0f;
    struct snap so;
    take_snap(&so, &other);
    sg_clear_error();
    int rc = sogclr_state_load(&other, &f, "loss.");
    printf("  message: %s\n", sg_last_error());
    sg_test_true("load with other N fails, state unchanged", rc == -1 && same_snap(&so, &other));
    sg_test_true("load with a wrong prefix fails", sogclr_state_load(&other, &f, "x.") == -1);
    free(so.u);
    free(sa.u);
    sogclr_free(&other);
    sg_st_close(&f);
    sogclr_free(&a);
    sogclr_free(&b);
    for (int k = 0; k < s.K; k++) free(ga[k]), free(gb[k]);
    free(s.Bs);
    free(s.epochs);
}

int main(void)
{
    struct sg_ctx c;
    SG_CHECK(sg_ctx_init(&c, SG_DEVICE_CPU, 0, 2) == 0, "%s", sg_last_error());
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "sogclr.safetensors");
    static const char *scns[3] = {"const", "cos", "small"};
    for (int k = 0; k < 3; k++) {
        check_scenario(&c, &ref, scns[k], 0);
        check_scenario(&c, &ref, scns[k], 1);
    }
    check_identity(&c, &ref);
    check_fd(&c, &ref);
    check_large();
    check_bad_inputs(&c, &ref);
    check_resume(&c, &ref);
    sg_st_close(&ref);
    sg_ctx_free(&c);
    return sg_test_summary("test_sogclr");
}
