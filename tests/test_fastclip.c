/*
 * tests/test_fastclip.c — FastCLIP-v3 / RGCL-g (losses/fastclip.h) against the float64 spec
 * implementation tests/ref/gen_fastclip.py -> tests/ref/data/fastclip.safetensors, whose
 * temperature gradient is torch autograd of the frozen-U objective (and, at gamma = 1, of the
 * mini-batch objective itself).
 *
 * Checks, for both fastclip_step_ref and fastclip_step (fast path):
 *  - a 6-step sequence (cosine gamma, epoch changes, a temperature that changes every step,
 *    overlapping batches): surrogate loss, objective, dzi, dzt, dtau, dlog_scale and the state;
 *  - finite differences in C of Phi(tau) = (1/(2B)) sum_i [tau log U_i + tau0 ghat_i(tau)/U_i]
 *    (both sides) + rho tau with U frozen after the step: dtau, and dlog_scale through
 *    tau = exp(-p);
 *  - at a fixed tau the feature gradient equals sogclr's (same engine, same estimator);
 *  - bad inputs (tau <= 0, NaN tau, NaN features, bad indices, B < 2, d < 1): -1, state
 *    unchanged; checkpoint round trip bit-identical; wrong N rejected.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "core/safetensors.h"
#include "losses/fastclip.h"
#include "losses/sogclr.h"
#include "tests/testutil.h"

/* fp32 against float64 (see test_sogclr.c). dtau sums O(1) terms (rho = 6.5 included). */
#define ATOL 1e-5f
#define RTOL 1e-4f

struct seq {
    struct fastclip_config cfg;
    int K, d;
    int64_t *Bs, *epochs;
    float *taus;
};

static void load_seq(struct seq *s, const struct sg_st_file *ref)
{
    float *c = sg_test_ref(ref, "cfg", 7);
    struct fastclip_config cfg = {(int64_t)c[3], c[0], (int)c[1], (int)c[2], c[6]};
    s->cfg = cfg;
    s->K = (int)c[4], s->d = (int)c[5];
    sg_afree(c);
    s->Bs = sg_test_ref_i64(ref, "B", s->K);
    s->epochs = sg_test_ref_i64(ref, "epoch", s->K);
    s->taus = sg_test_ref(ref, "tau", s->K);
}

static void free_seq(struct seq *s)
{
    free(s->Bs);
    free(s->epochs);
    sg_afree(s->taus);
}

struct stepdat {
    int B;
    float *zi, *zt;
    int64_t *idx;
};

static void load_step(struct stepdat *t, const struct sg_st_file *ref, const struct seq *s, int k)
{
    char key[64];
    t->B = (int)s->Bs[k];
    snprintf(key, sizeof key, "%d_zi", k);
    t->zi = sg_test_ref(ref, key, (int64_t)t->B * s->d);
    snprintf(key, sizeof key, "%d_zt", k);
    t->zt = sg_test_ref(ref, key, (int64_t)t->B * s->d);
    snprintf(key, sizeof key, "%d_idx", k);
    t->idx = sg_test_ref_i64(ref, key, t->B);
}

static void free_step(struct stepdat *t)
{
    sg_afree(t->zi);
    sg_afree(t->zt);
    free(t->idx);
}

static void maybe_set_epoch(struct fastclip *l, int64_t epoch)
{
    if (epoch != l->sched.epoch) SG_CHECK(fastclip_set_epoch(l, epoch) == 0, "set_epoch");
}

static int do_step(struct sg_ctx *c, struct fastclip *l, int fast, float tau,
                   const struct stepdat *t, int d, float *dzi, float *dzt, struct fastclip_out *o)
{
    return fast ? fastclip_step(c, l, tau, t->zi, t->zt, t->idx, t->B, d, dzi, dzt, o)
                : fastclip_step_ref(l, tau, t->zi, t->zt, t->idx, t->B, d, dzi, dzt, o);
}

static void cmp_ref(const struct sg_st_file *ref, const char *pfx, int k, const char *what,
                    const float *got, int64_t n)
{
    char name[96], label[128];
    snprintf(name, sizeof name, "%d_%s", k, what);
    snprintf(label, sizeof label, "%s step %d %s", pfx, k, what);
    float *want = sg_test_ref(ref, name, n);
    sg_test_close(label, got, want, n, ATOL, RTOL);
    sg_afree(want);
}

/* Phi(tau) with U frozen and sg(tau) = tau0, in double from the fp32 features. */
struct fd_tau {
    int B, d;
    const float *zi, *zt;
    double tau0, rho;
    const double *UI, *UT;
    int log_param; /* x is p = -log(tau) instead of tau */
};

static double phi(void *user, const float *x)
{
    const struct fd_tau *a = user;
    const int B = a->B, d = a->d;
    double tau = a->log_param ? exp(-(double)x[0]) : (double)x[0];
    double *S = sg_xmalloc(sizeof(double) * (size_t)(B * B));
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            double acc = 0.0;
            for (int k = 0; k < d; k++) acc += (double)a->zi[i * d + k] * a->zt[j * d + k];
            S[i * B + j] = acc;
        }
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        double gI = 0.0, gT = 0.0;
        for (int j = 0; j < B; j++) {
            if (j == i) continue;
            gI += exp((S[i * B + j] - S[i * B + i]) / tau) / (B - 1);
            gT += exp((S[j * B + i] - S[i * B + i]) / tau) / (B - 1);
        }
        total += tau * log(a->UI[i]) + a->tau0 * gI / a->UI[i];
        total += tau * log(a->UT[i]) + a->tau0 * gT / a->UT[i];
    }
    free(S);
    return total / (2.0 * B) + a->rho * tau;
}

static void check_sequence(struct sg_ctx *c, const struct sg_st_file *ref, int fast)
{
    struct seq s;
    load_seq(&s, ref);
    struct fastclip l;
    SG_CHECK(fastclip_init(&l, &s.cfg) == 0, "%s", sg_last_error());
    const char *pfx = fast ? "fast" : "ref";
    const int64_t N = s.cfg.N;
    for (int k = 0; k < s.K; k++) {
        struct stepdat t;
        load_step(&t, ref, &s, k);
        const int B = t.B, d = s.d;
        int64_t n = (int64_t)B * d;
        float *dzi = sg_xmalloc(sizeof(float) * n), *dzt = sg_xmalloc(sizeof(float) * n);
        struct fastclip_out o;
        maybe_set_epoch(&l, s.epochs[k]);
        float tau = s.taus[k];
        SG_CHECK(do_step(c, &l, fast, tau, &t, d, dzi, dzt, &o) == 0, "%s", sg_last_error());
        printf("  %s step %d: B=%d gamma=%.3f tau=%.4f loss=%.6f objective=%.6f dtau=%.6f "
               "dlog_scale=%.6f\n",
               pfx, k, B, (double)o.gamma, (double)tau, (double)o.loss, (double)o.objective,
               (double)o.dtau, (double)o.dlog_scale);
        cmp_ref(ref, pfx, k, "loss", &o.loss, 1);
        cmp_ref(ref, pfx, k, "obj", &o.objective, 1);
        cmp_ref(ref, pfx, k, "dzi", dzi, n);
        cmp_ref(ref, pfx, k, "dzt", dzt, n);
        cmp_ref(ref, pfx, k, "dtau", &o.dtau, 1);
        cmp_ref(ref, pfx, k, "dlogp", &o.dlog_scale, 1);
        cmp_ref(ref, pfx, k, "u_img", l.st.u_img, N);
        cmp_ref(ref, pfx, k, "u_txt", l.st.u_txt, N);
        cmp_ref(ref, pfx, k, "b_img", l.st.b_img, N);
        cmp_ref(ref, pfx, k, "b_txt", l.st.b_txt, N);
        if (fast) { /* finite differences of Phi, U frozen at the step's values */
            double UI[16], UT[16];
            for (int i = 0; i < B; i++) {
                int64_t q = t.idx[i];
                UI[i] = (double)l.st.u_img[q] * exp((double)l.st.b_img[q]);
                UT[i] = (double)l.st.u_txt[q] * exp((double)l.st.b_txt[q]);
            }
            struct fd_tau a = {B, d, t.zi, t.zt, tau, s.cfg.rho, UI, UT, 0};
            char label[64];
            float x = tau;
            snprintf(label, sizeof label, "fd dtau step %d", k);
            sg_test_fd(label, phi, &a, &x, 1, &o.dtau, 1, 1e-4f, 1e-4f, 1e-3f);
            a.log_param = 1;
            x = -logf(tau);
            snprintf(label, sizeof label, "fd dlog_scale step %d", k);
            sg_test_fd(label, phi, &a, &x, 1, &o.dlog_scale, 1, 1e-3f, 1e-5f, 1e-3f);
        }
        free(dzi);
        free(dzt);
        free_step(&t);
    }
    fastclip_free(&l);
    free_seq(&s);
}

/* The feature gradient at a fixed tau is sogclr's (bit-identical: same engine and inputs). */
static void check_vs_sogclr(struct sg_ctx *c, const struct sg_st_file *ref)
{
    struct seq s;
    load_seq(&s, ref);
    struct fastclip f;
    struct sogclr g;
    struct sogclr_config gc = {s.cfg.N, s.taus[0], s.cfg.gamma, s.cfg.gamma_schedule,
                               s.cfg.gamma_decay_epochs};
    SG_CHECK(fastclip_init(&f, &s.cfg) == 0 && sogclr_init(&g, &gc) == 0, "init");
    int eq = 1;
    for (int k = 0; k < s.K; k++) {
        struct stepdat t;
        load_step(&t, ref, &s, k);
        float a[2 * 8 * 16], b[2 * 8 * 16];
        struct fastclip_out o;
        maybe_set_epoch(&f, s.epochs[k]);
        if (s.epochs[k] != g.sched.epoch) sogclr_set_epoch(&g, s.epochs[k]);
        SG_CHECK(
            fastclip_step(c, &f, s.taus[0], t.zi, t.zt, t.idx, t.B, s.d, a, a + t.B * s.d, &o) == 0,
            "fastclip");
        SG_CHECK(sogclr_step(c, &g, t.zi, t.zt, t.idx, t.B, s.d, b, b + t.B * s.d, NULL) == 0,
                 "sogclr");
        eq &= !memcmp(a, b, sizeof(float) * 2 * t.B * s.d);
        free_step(&t);
    }
    sg_test_true("fixed tau: feature gradient == sogclr's", eq);
    fastclip_free(&f);
    sogclr_free(&g);
    free_seq(&s);
}

static float *snap(const struct fastclip *l)
{
    int64_t N = l->st.N;
    const float *a[4] = {l->st.u_img, l->st.u_txt, l->st.b_img, l->st.b_txt};
    float *s = sg_xmalloc(sizeof(float) * 4 * (size_t)N);
    for (int k = 0; k < 4; k++) memcpy(s + k * N, a[k], sizeof(float) * N);
    return s;
}

static int same(const float *s, const struct fastclip *l)
{
    float *t = snap(l);
    int eq = !memcmp(s, t, sizeof(float) * 4 * (size_t)l->st.N);
    free(t);
    return eq;
}

static void check_bad_inputs(struct sg_ctx *c, const struct sg_st_file *ref)
{
    struct seq s;
    load_seq(&s, ref);
    struct fastclip l;
    SG_CHECK(fastclip_init(&l, &s.cfg) == 0, "init");
    struct stepdat t;
    load_step(&t, ref, &s, 0);
    const int B = t.B, d = s.d;
    float dzi[8 * 16], dzt[8 * 16];
    struct fastclip_out o;
    SG_CHECK(fastclip_step(c, &l, 0.07f, t.zi, t.zt, t.idx, B, d, dzi, dzt, &o) == 0, "step");
    float *sn = snap(&l);
    static const char *what[8] = {"tau 0",   "tau NaN",   "NaN feature", "index -1",
                                  "index N", "duplicate", "B = 1",       "d = 0"};
    for (int fast = 0; fast < 2; fast++)
        for (int kase = 0; kase < 8; kase++) {
            float zi[8 * 16], zt[8 * 16], tau = 0.07f;
            int64_t idx[8];
            memcpy(zi, t.zi, sizeof(float) * B * d);
            memcpy(zt, t.zt, sizeof(float) * B * d);
            memcpy(idx, t.idx, sizeof(int64_t) * B);
            int b = B, dd = d;
            switch (kase) {
            case 0:
                tau = 0.0f;
                break;
            case 1:
                tau = NAN;
                break;
            case 2:
                zi[7] = NAN;
                break;
            case 3:
                idx[3] = -1;
                break;
            case 4:
                idx[0] = s.cfg.N;
                break;
            case 5:
                idx[1] = idx[2];
                break;
            case 6:
                b = 1;
                break;
            case 7:
                dd = 0;
                break;
            }
            struct stepdat bad = {b, zi, zt, idx};
            char label[96];
            snprintf(label, sizeof label, "%s bad input (%s): -1, state unchanged",
                     fast ? "fast" : "ref", what[kase]);
            sg_test_true(label,
                         do_step(c, &l, fast, tau, &bad, dd, dzi, dzt, &o) == -1 && same(sn, &l));
        }
    struct fastclip x;
    struct fastclip_config bc = s.cfg;
    bc.rho = NAN;
    sg_test_true("bad config (rho NaN) rejected", fastclip_init(&x, &bc) == -1);
    bc = s.cfg;
    bc.gamma_decay_epochs = 0;
    sg_test_true("bad config (cosine, 0 decay epochs) rejected", fastclip_init(&x, &bc) == -1);
    free(sn);
    free_step(&t);
    fastclip_free(&l);
    free_seq(&s);
}

static void run(struct sg_ctx *c, struct fastclip *l, const struct sg_st_file *ref,
                const struct seq *s, int k0, int k1, float **g)
{
    for (int k = k0; k < k1; k++) {
        struct stepdat t;
        load_step(&t, ref, s, k);
        maybe_set_epoch(l, s->epochs[k]);
        struct fastclip_out o;
        SG_CHECK(fastclip_step(c, l, s->taus[k], t.zi, t.zt, t.idx, t.B, s->d, g[k],
                               g[k] + t.B * s->d, &o) == 0,
                 "%s", sg_last_error());
        g[k][2 * 8 * 16] = o.dtau;
        free_step(&t);
    }
}

static void check_resume(struct sg_ctx *c, const struct sg_st_file *ref)
{
    struct seq s;
    load_seq(&s, ref);
    float *ga[8], *gb[8];
    for (int k = 0; k < s.K; k++) {
        ga[k] = sg_xcalloc(2 * 8 * 16 + 1, sizeof(float));
        gb[k] = sg_xcalloc(2 * 8 * 16 + 1, sizeof(float));
    }
    struct fastclip a, b;
    SG_CHECK(fastclip_init(&a, &s.cfg) == 0 && fastclip_init(&b, &s.cfg) == 0, "init");
    run(c, &a, ref, &s, 0, s.K, ga);
    const int ksave = 4; /* epochs[4] == epochs[3]: the loaded gamma is used */
    run(c, &b, ref, &s, 0, ksave, gb);
    struct sg_st_writer w;
    sg_stw_init(&w);
    fastclip_state_save(&b, &w, "fc/");
    uint8_t *buf;
    size_t len;
    SG_CHECK(sg_stw_serialize(&w, &buf, &len) == 0, "serialize");
    sg_stw_free(&w);
    struct sg_st_file f;
    SG_CHECK(sg_st_open_buffer(&f, buf, len, "fastclip-state") == 0, "%s", sg_last_error());
    fastclip_free(&b);
    SG_CHECK(fastclip_init(&b, &s.cfg) == 0, "init");
    sg_test_true("load state", fastclip_state_load(&b, &f, "fc/") == 0);
    run(c, &b, ref, &s, ksave, s.K, gb);
    int eq = 1;
    for (int k = ksave; k < s.K; k++) eq &= !memcmp(ga[k], gb[k], sizeof(float) * (2 * 8 * 16 + 1));
    sg_test_true("resumed gradients and dtau bit-identical", eq);
    float *sa = snap(&a);
    sg_test_true("resumed state bit-identical", same(sa, &b));
    free(sa);
    struct fastclip_config c2 = s.cfg;
    c2.N = 2 * s.cfg.N;
    struct fastclip o;
    SG_CHECK(fastclip_init(&o, &c2) == 0, "init");
    float *so = snap(&o);
    sg_test_true("load with other N fails, state unchanged",
                 fastclip_state_load(&o, &f, "fc/") == -1 && same(so, &o));
    free(so);
    fastclip_free(&o);
    sg_st_close(&f);
    fastclip_free(&a);
    fastclip_free(&b);
    for (int k = 0; k < s.K; k++) free(ga[k]), free(gb[k]);
    free_seq(&s);
}

int main(void)
{
    struct sg_ctx c;
    SG_CHECK(sg_ctx_init(&c, SG_DEVICE_CPU, 0, 2) == 0, "%s", sg_last_error());
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "fastclip.safetensors");
    check_sequence(&c, &ref, 0);
    check_sequence(&c, &ref, 1);
    check_vs_sogclr(&c, &ref);
    check_bad_inputs(&c, &ref);
    check_resume(&c, &ref);
    sg_st_close(&ref);
    sg_ctx_free(&c);
    return sg_test_summary("test_fastclip");
}
