/*
 * tests/test_cuda_losses.c — the CUDA bimodal GCL engine step (losses/gcl_bimodal_cuda.h)
 * against the host engine (losses/gcl_bimodal.h). Exits 77 (ctest SKIP) without a CUDA GPU.
 *
 * Checks:
 *  - a 6-step sequence (N = 40, d = 13, B = 5, 8, 7, 8, 6, 8: the workspace grows and is
 *    reused; ids repeat and overlap across steps, so unseen -> seen transitions and the b_old
 *    rescale both occur; gamma changes every step; tau = 0.07 except one step with per-anchor
 *    temperatures in [0.02, 0.2], different for images and texts; one step with rows = NULL)
 *    through gcl_bi_cuda_step and gcl_bi_step_ref (float64 plain loops, the oracle; fed through
 *    gcl_bi_begin + ws.rows.tau_* as losses/sogclr.c does): after every step dzi, dzt, the rows
 *    (logU, pa, both directions) and the whole downloaded state (all N entries, untouched ones
 *    included);
 *  - run-to-run bit equality: the same step from the same uploaded state twice (dzi, dzt, rows,
 *    state);
 *  - bad inputs (NaN image feature, Inf text feature, id < 0, id >= N, duplicate id, tau = 0,
 *    tau = NaN, B < 2, d < 1, gamma outside (0, 1]): each returns -1 with a message, leaves the
 *    state bit-identical and does not write dzi, dzt or rows; a good step afterwards still
 *    matches the reference;
 *  - a large case, B = 1024, d = 512, two steps (the second half-overlapping, per-anchor taus)
 *    against the fp32 CPU fast path gcl_bi_step_cpu;
 *  - the public APIs on a CUDA context (device pointers, state moved to the GPU on the first
 *    step) against the same API on the CPU over the sequence: sogclr_step, fastclip_step (tau
 *    changing every step; dtau, dlog_scale too) and isogclr_step (per-sample tau and momentum
 *    kept on the host; saved tau_*, m_* too); losses, gradients and saved states must agree, and
 *    for fastclip/isogclr a loaded state is uploaded (a fresh state loaded into both, step 0
 *    repeated);
 *  - timing (information, not pass/fail; skipped when SG_TEST_NO_TIMING is set): the step at
 *    B = 1024, 4096, 8192 next to one B x B x d cuBLAS GEMM (the step runs three).
 *
 * Tolerances. Against the double reference (sequence): the GPU computes S in fp32 (d = 13:
 * |error| <~ 1e-7); the exponent A = D / tau multiplies it by 1/tau <= 50, so exp terms, u and
 * p carry relative errors up to ~5e-6 (plus a few ulp from expf/logf), and b (up to ~2/tau)
 * and A absolute errors up to ~5e-6; states also carry the previous step's error forward,
 * damped by (1 - gamma). Hence rtol 1e-4 throughout; atol 1e-5 for b, logU, pa (absolute
 * quantities of size up to ~100); u is compared relatively only (atol 0: u spans many decades
 * and a fixed atol would hide small ones). Gradients are O(1/B) with cancellation between the
 * diagonal M_ii = -sum and the off-diagonal terms (~10x at most here): atol = 2e-4 * rms(ref),
 * rtol 1e-4. Against the CPU fast path (large case): both fp32, but d = 512 GEMMs with
 * different summation orders differ by ~sqrt(512) * 6e-8 ~ 1.4e-6 in S, x 1/tau (<= 50) ->
 * ~7e-5 in A: rtol 5e-4, atol 1e-3 * rms for gradients, 2e-4 for b, logU, pa.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "losses/gcl_bimodal.h"
#include "tests/testutil.h"

#ifdef SG_CUDA
#include "losses/fastclip.h"
#include "losses/gcl_bimodal_cuda.h"
#include "losses/isogclr.h"
#include "losses/sogclr.h"
#include "ops/matmul.h"

struct tol {
    float grad_rel, grad_rtol; /* gradients: atol = grad_rel * rms(ref) */
    float row_atol, row_rtol;  /* logU, pa */
    float u_rtol;              /* u: relative only */
    float b_atol, b_rtol;
};
static const struct tol TOL_REF = {2e-4f, 1e-4f, 1e-5f, 1e-4f, 1e-4f, 1e-5f, 1e-4f};
static const struct tol TOL_CPU = {1e-3f, 5e-4f, 2e-4f, 5e-4f, 5e-4f, 2e-4f, 5e-4f};

/* ---- helpers ------------------------------------------------------------------------------ */

static double rms(const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0.0;
}

static void *to_dev(struct sg_ctx *g, const void *h, size_t bytes)
{
    void *d = sg_dev_alloc(g, bytes);
    sg_memcpy_h2d(g, d, h, bytes);
    return d;
}

static float *from_dev(struct sg_ctx *g, const float *d, int64_t n)
{
    float *h = sg_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    sg_memcpy_d2h(g, h, d, sizeof(float) * (size_t)n);
    return h;
}

/* A host batch: features (B, d) L2-normalised, text i correlated with image i by a per-pair
 * factor in [0, 2) (some strong, some weak positives), ids, per-anchor temperatures. */
struct batch {
    int B, d;
    float gamma;
    float *zi, *zt, *tau_img, *tau_txt;
    int64_t *idx;
};

static void normalise_rows(float *z, int B, int d)
{
    for (int i = 0; i < B; i++) {
        double s = 0.0;
        for (int k = 0; k < d; k++) s += (double)z[i * d + k] * z[i * d + k];
        double r = 1.0 / sqrt(s);
        for (int k = 0; k < d; k++) z[i * d + k] = (float)(z[i * d + k] * r);
    }
}

/* tau_lo == tau_hi: constant temperature; otherwise per anchor in [tau_lo, tau_hi). */
static void batch_make(struct batch *b, int B, int d, const int64_t *ids, float gamma, float tau_lo,
                       float tau_hi, uint64_t seed)
{
    int64_t n = (int64_t)B * d;
    b->B = B;
    b->d = d;
    b->gamma = gamma;
    b->zi = sg_xmalloc(sizeof(float) * (size_t)n);
    b->zt = sg_xmalloc(sizeof(float) * (size_t)n);
    b->tau_img = sg_xmalloc(sizeof(float) * (size_t)B);
    b->tau_txt = sg_xmalloc(sizeof(float) * (size_t)B);
    b->idx = sg_xmalloc(sizeof(int64_t) * (size_t)B);
    float *corr = sg_xmalloc(sizeof(float) * (size_t)B);
    sg_test_fill(b->zi, n, seed, -1.0f, 1.0f);
    sg_test_fill(b->zt, n, seed + 1, -1.0f, 1.0f);
    sg_test_fill(corr, B, seed + 2, 0.0f, 2.0f);
    normalise_rows(b->zi, B, d);
    for (int i = 0; i < B; i++)
        for (int k = 0; k < d; k++) b->zt[i * d + k] += corr[i] * b->zi[i * d + k];
    normalise_rows(b->zt, B, d);
    if (tau_hi > tau_lo) {
        sg_test_fill(b->tau_img, B, seed + 3, tau_lo, tau_hi);
        sg_test_fill(b->tau_txt, B, seed + 4, tau_lo, tau_hi);
    } else {
        for (int i = 0; i < B; i++) b->tau_img[i] = b->tau_txt[i] = tau_lo;
    }
    memcpy(b->idx, ids, sizeof(int64_t) * (size_t)B);
    free(corr);
}

static void batch_free(struct batch *b)
{
    free(b->zi);
    free(b->zt);
    free(b->tau_img);
    free(b->tau_txt);
    free(b->idx);
}

/* The batch on the device, outputs NaN-filled. */
struct dbatch {
    float *zi, *zt, *tau_img, *tau_txt, *dzi, *dzt, *rows;
    int64_t *idx;
};

static void dbatch_make(struct sg_ctx *g, struct dbatch *db, const struct batch *b)
{
    size_t nf = sizeof(float) * (size_t)b->B * (size_t)b->d, nb = sizeof(float) * (size_t)b->B;
    float *nan = sg_xmalloc(nf > 4 * nb ? nf : 4 * nb);
    for (size_t i = 0; i < (nf > 4 * nb ? nf : 4 * nb) / sizeof(float); i++) nan[i] = NAN;
    db->zi = to_dev(g, b->zi, nf);
    db->zt = to_dev(g, b->zt, nf);
    db->tau_img = to_dev(g, b->tau_img, nb);
    db->tau_txt = to_dev(g, b->tau_txt, nb);
    db->idx = to_dev(g, b->idx, sizeof(int64_t) * (size_t)b->B);
    db->dzi = to_dev(g, nan, nf);
    db->dzt = to_dev(g, nan, nf);
    db->rows = to_dev(g, nan, 4 * nb);
    free(nan);
}

static void dbatch_free(struct sg_ctx *g, struct dbatch *db)
{
    void *p[] = {db->zi, db->zt, db->tau_img, db->tau_txt, db->dzi, db->dzt, db->rows, db->idx};
    for (size_t k = 0; k < sizeof p / sizeof p[0]; k++) sg_dev_free(g, p[k]);
}

static int dev_step(struct sg_ctx *g, struct gcl_bi_cuda *e, const struct batch *b,
                    struct dbatch *db, int with_rows)
{
    return gcl_bi_cuda_step(g, e, db->tau_img, db->tau_txt, db->zi, db->zt, db->idx, b->B, b->d,
                            b->gamma, db->dzi, db->dzt, with_rows ? db->rows : NULL);
}

/* Host engine: cpu == NULL runs gcl_bi_step_ref, otherwise gcl_bi_step_cpu on that context. */
struct host_eng {
    struct gcl_bi_state st;
    struct gcl_bi_ws ws;
};

static void host_step(struct host_eng *h, struct sg_ctx *cpu, const struct batch *b, float *dzi,
                      float *dzt)
{
    int nt = cpu ? cpu->nthreads : 1;
    SG_CHECK(gcl_bi_begin(&h->ws, "host", h->st.N, b->zi, b->zt, b->idx, b->B, b->d, nt) == 0, "%s",
             sg_last_error());
    memcpy(h->ws.rows.tau_img, b->tau_img, sizeof(float) * (size_t)b->B);
    memcpy(h->ws.rows.tau_txt, b->tau_txt, sizeof(float) * (size_t)b->B);
    if (cpu)
        gcl_bi_step_cpu(cpu, &h->ws, &h->st, b->zi, b->zt, b->idx, b->B, b->d, b->gamma, dzi, dzt);
    else
        gcl_bi_step_ref(&h->ws, &h->st, b->zi, b->zt, b->idx, b->B, b->d, b->gamma, dzi, dzt);
}

/* Compares the device step's outputs and state with the host engine's. */
static void compare_step(struct sg_ctx *g, const char *tag, struct gcl_bi_cuda *e,
                         const struct dbatch *db, const struct host_eng *h, const float *dzi,
                         const float *dzt, int B, int d, int with_rows, const struct tol *t)
{
    char lab[160];
    int64_t n = (int64_t)B * d;
    float *gi = from_dev(g, db->dzi, n), *gt = from_dev(g, db->dzt, n);
    snprintf(lab, sizeof lab, "%s dzi", tag);
    sg_test_close(lab, gi, dzi, n, (float)SG_MAX(t->grad_rel * rms(dzi, n), 1e-9), t->grad_rtol);
    snprintf(lab, sizeof lab, "%s dzt", tag);
    sg_test_close(lab, gt, dzt, n, (float)SG_MAX(t->grad_rel * rms(dzt, n), 1e-9), t->grad_rtol);
    if (with_rows) {
        float *r = from_dev(g, db->rows, 4 * (int64_t)B);
        const float *ref[4] = {h->ws.rows.logU_img, h->ws.rows.logU_txt, h->ws.rows.pa_img,
                               h->ws.rows.pa_txt};
        static const char *names[4] = {"logU_img", "logU_txt", "pa_img", "pa_txt"};
        for (int k = 0; k < 4; k++) {
            snprintf(lab, sizeof lab, "%s rows %s", tag, names[k]);
            sg_test_close(lab, r + (int64_t)k * B, ref[k], B, t->row_atol, t->row_rtol);
        }
        free(r);
    }
    struct gcl_bi_state s;
    SG_CHECK(gcl_bi_state_init(&s, e->N) == 0, "state");
    SG_CHECK(gcl_bi_cuda_state_download(g, e, &s) == 0, "%s", sg_last_error());
    snprintf(lab, sizeof lab, "%s state u_img", tag);
    sg_test_close(lab, s.u_img, h->st.u_img, e->N, 0.0f, t->u_rtol);
    snprintf(lab, sizeof lab, "%s state u_txt", tag);
    sg_test_close(lab, s.u_txt, h->st.u_txt, e->N, 0.0f, t->u_rtol);
    snprintf(lab, sizeof lab, "%s state b_img", tag);
    sg_test_close(lab, s.b_img, h->st.b_img, e->N, t->b_atol, t->b_rtol);
    snprintf(lab, sizeof lab, "%s state b_txt", tag);
    sg_test_close(lab, s.b_txt, h->st.b_txt, e->N, t->b_atol, t->b_rtol);
    gcl_bi_state_free(&s);
    free(gi);
    free(gt);
}

static int state_equal(const struct gcl_bi_state *a, const struct gcl_bi_state *b)
{
    size_t n = sizeof(float) * (size_t)a->N;
    return a->N == b->N && !memcmp(a->u_img, b->u_img, n) && !memcmp(a->u_txt, b->u_txt, n) &&
           !memcmp(a->b_img, b->b_img, n) && !memcmp(a->b_txt, b->b_txt, n);
}

static int dev_equal(struct sg_ctx *g, const float *x, const float *y, int64_t n)
{
    float *a = from_dev(g, x, n), *b = from_dev(g, y, n);
    int eq = memcmp(a, b, sizeof(float) * (size_t)n) == 0;
    free(a);
    free(b);
    return eq;
}

/* ---- the sequence against the double reference ---------------------------------------------- */

#define SEQ_N 40
#define SEQ_D 13
#define SEQ_K 6

static const int seq_B[SEQ_K] = {5, 8, 7, 8, 6, 8};
static const float seq_gamma[SEQ_K] = {1.0f, 0.9f, 0.5f, 0.9f, 0.3f, 0.8f};
static const int64_t seq_ids[SEQ_K][8] = {
    {0, 1, 2, 3, 4},           {3, 4, 5, 6, 7, 8, 9, 39},
    {39, 0, 12, 5, 20, 21, 3}, {1, 2, 12, 13, 14, 0, 39, 22},
    {22, 30, 31, 1, 5, 9},     {0, 1, 2, 3, 4, 5, 6, 7},
};

static void make_seq_batch(struct batch *b, int k)
{
    int varied = k == 3;
    batch_make(b, seq_B[k], SEQ_D, seq_ids[k], seq_gamma[k], varied ? 0.02f : 0.07f,
               varied ? 0.2f : 0.07f, 1000 + 17 * (uint64_t)k);
}

/* One good step on both engines, compared. */
static void seq_step(struct sg_ctx *g, struct gcl_bi_cuda *e, struct host_eng *h,
                     const struct batch *b, const char *tag, int with_rows)
{
    int64_t n = (int64_t)b->B * b->d;
    float *dzi = sg_xmalloc(sizeof(float) * (size_t)n),
          *dzt = sg_xmalloc(sizeof(float) * (size_t)n);
    struct dbatch db;
    dbatch_make(g, &db, b);
    host_step(h, NULL, b, dzi, dzt);
    int rc = dev_step(g, e, b, &db, with_rows);
    char lab[160];
    snprintf(lab, sizeof lab, "%s returns 0", tag);
    if (sg_test_true(lab, rc == 0))
        compare_step(g, tag, e, &db, h, dzi, dzt, b->B, b->d, with_rows, &TOL_REF);
    else
        fprintf(stderr, "  error: %s\n", sg_last_error());
    dbatch_free(g, &db);
    free(dzi);
    free(dzt);
}

/* The same step twice from the same state: identical bits. */
static void test_determinism(struct sg_ctx *g, struct gcl_bi_cuda *e, const struct batch *b)
{
    struct gcl_bi_state s0, s1, s2;
    gcl_bi_state_init(&s0, e->N);
    gcl_bi_state_init(&s1, e->N);
    gcl_bi_state_init(&s2, e->N);
    gcl_bi_cuda_state_download(g, e, &s0);
    struct dbatch d1, d2;
    dbatch_make(g, &d1, b);
    dbatch_make(g, &d2, b);
    int rc = dev_step(g, e, b, &d1, 1);
    gcl_bi_cuda_state_download(g, e, &s1);
    gcl_bi_cuda_state_upload(g, e, &s0);
    rc |= dev_step(g, e, b, &d2, 1);
    gcl_bi_cuda_state_download(g, e, &s2);
    int64_t n = (int64_t)b->B * b->d;
    sg_test_true("determinism: both steps return 0", rc == 0);
    sg_test_true("determinism: dzi bit-identical", dev_equal(g, d1.dzi, d2.dzi, n));
    sg_test_true("determinism: dzt bit-identical", dev_equal(g, d1.dzt, d2.dzt, n));
    sg_test_true("determinism: rows bit-identical", dev_equal(g, d1.rows, d2.rows, 4 * b->B));
    sg_test_true("determinism: state bit-identical", state_equal(&s1, &s2));
    gcl_bi_cuda_state_upload(g, e, &s0); /* leave the state as before this test */
    gcl_bi_cuda_state_download(g, e, &s1);
    sg_test_true("state upload/download round trip bit-identical", state_equal(&s0, &s1));
    struct gcl_bi_state wrong;
    gcl_bi_state_init(&wrong, e->N + 1);
    sg_test_true("upload of a state with another N fails",
                 gcl_bi_cuda_state_upload(g, e, &wrong) == -1);
    dbatch_free(g, &d1);
    dbatch_free(g, &d2);
    gcl_bi_state_free(&s0);
    gcl_bi_state_free(&s1);
    gcl_bi_state_free(&s2);
    gcl_bi_state_free(&wrong);
}

/* ---- bad inputs ------------------------------------------------------------------------------ */

enum bad_kind {
    BAD_NAN_ZI,
    BAD_INF_ZT,
    BAD_ID_NEG,
    BAD_ID_N,
    BAD_DUP,
    BAD_TAU_ZERO,
    BAD_TAU_NAN,
    BAD_B1,
    BAD_D0,
    BAD_GAMMA0,
    BAD_GAMMA_BIG,
    BAD_COUNT
};
static const char *bad_names[BAD_COUNT] = {
    "NaN image feature", "Inf text feature", "index -1", "index N", "duplicate index",
    "tau_img = 0",       "tau_txt = NaN",    "B = 1",    "d = 0",   "gamma = 0",
    "gamma = 1.5"};

static void test_bad_input(struct sg_ctx *g, struct gcl_bi_cuda *e, const struct batch *good,
                           enum bad_kind kind)
{
    char lab[160];
    struct batch b;
    batch_make(&b, good->B, good->d, good->idx, good->gamma, 0.07f, 0.07f, 4242);
    int B = b.B, d = b.d;
    switch (kind) {
    case BAD_NAN_ZI:
        b.zi[(B - 1) * d + 3] = NAN;
        break;
    case BAD_INF_ZT:
        b.zt[2 * d] = -INFINITY;
        break;
    case BAD_ID_NEG:
        b.idx[4] = -1;
        break;
    case BAD_ID_N:
        b.idx[B - 1] = e->N;
        break;
    case BAD_DUP:
        b.idx[5] = b.idx[1];
        break;
    case BAD_TAU_ZERO:
        b.tau_img[2] = 0.0f;
        break;
    case BAD_TAU_NAN:
        b.tau_txt[0] = NAN;
        break;
    case BAD_B1:
        B = 1;
        break;
    case BAD_D0:
        d = 0;
        break;
    case BAD_GAMMA0:
        b.gamma = 0.0f;
        break;
    case BAD_GAMMA_BIG:
        b.gamma = 1.5f;
        break;
    default:
        SG_PANIC("bad kind %d", (int)kind);
    }
    struct dbatch db;
    dbatch_make(g, &db, &b);
    struct gcl_bi_state before, after;
    gcl_bi_state_init(&before, e->N);
    gcl_bi_state_init(&after, e->N);
    gcl_bi_cuda_state_download(g, e, &before);
    int64_t n = (int64_t)b.B * b.d;
    float *dzi0 = from_dev(g, db.dzi, n), *rows0 = from_dev(g, db.rows, 4 * (int64_t)b.B);
    sg_clear_error();
    int rc = gcl_bi_cuda_step(g, e, db.tau_img, db.tau_txt, db.zi, db.zt, db.idx, B, d, b.gamma,
                              db.dzi, db.dzt, db.rows);
    gcl_bi_cuda_state_download(g, e, &after);
    snprintf(lab, sizeof lab, "bad input (%s) returns -1 with a message", bad_names[kind]);
    sg_test_true(lab, rc == -1 && strstr(sg_last_error(), "gcl_bi_cuda") != NULL);
    printf("     message: %s\n", sg_last_error());
    snprintf(lab, sizeof lab, "bad input (%s): state bit-identical", bad_names[kind]);
    sg_test_true(lab, state_equal(&before, &after));
    float *dzi1 = from_dev(g, db.dzi, n), *rows1 = from_dev(g, db.rows, 4 * (int64_t)b.B);
    snprintf(lab, sizeof lab, "bad input (%s): dzi and rows not written", bad_names[kind]);
    sg_test_true(lab, !memcmp(dzi0, dzi1, sizeof(float) * (size_t)n) &&
                          !memcmp(rows0, rows1, sizeof(float) * 4 * (size_t)b.B));
    free(dzi0);
    free(dzi1);
    free(rows0);
    free(rows1);
    gcl_bi_state_free(&before);
    gcl_bi_state_free(&after);
    dbatch_free(g, &db);
    batch_free(&b);
}

static void test_sequence(struct sg_ctx *g)
{
    char tag[64];
    struct gcl_bi_cuda e;
    struct host_eng h;
    SG_CHECK(gcl_bi_cuda_init(g, &e, SEQ_N) == 0, "%s", sg_last_error());
    SG_CHECK(gcl_bi_state_init(&h.st, SEQ_N) == 0, "%s", sg_last_error());
    gcl_bi_ws_init(&h.ws);
    struct batch b;
    for (int k = 0; k < SEQ_K; k++) {
        make_seq_batch(&b, k);
        snprintf(tag, sizeof tag, "seq step %d (B=%d gamma=%g%s)", k, b.B, (double)b.gamma,
                 k == 3 ? ", per-anchor tau" : "");
        seq_step(g, &e, &h, &b, tag, k != 4);
        if (k < SEQ_K - 1) batch_free(&b);
    }
    test_determinism(g, &e, &b);
    for (int kind = 0; kind < BAD_COUNT; kind++) test_bad_input(g, &e, &b, (enum bad_kind)kind);
    batch_free(&b);
    /* a good step after the failures: still in step with the reference */
    make_seq_batch(&b, 1);
    b.gamma = 0.7f;
    seq_step(g, &e, &h, &b, "seq step after bad inputs (B=8 gamma=0.7)", 1);
    batch_free(&b);
    gcl_bi_cuda_free(g, &e);
    gcl_bi_state_free(&h.st);
    gcl_bi_ws_free(&h.ws);
    struct gcl_bi_cuda e0;
    sg_test_true("gcl_bi_cuda_init with N = 0 fails", gcl_bi_cuda_init(g, &e0, 0) == -1);
    gcl_bi_cuda_free(g, &e0); /* zeroed by the failed init: nothing to free */
}

/* ---- large batch against the CPU fast path ----------------------------------------------------
 */

static void test_large(struct sg_ctx *g)
{
    const int B = 1024, d = 512;
    const int64_t N = 3000;
    struct sg_ctx cpu;
    SG_CHECK(sg_ctx_init(&cpu, SG_DEVICE_CPU, 0, 0) == 0, "%s", sg_last_error());
    struct gcl_bi_cuda e;
    struct host_eng h;
    SG_CHECK(gcl_bi_cuda_init(g, &e, N) == 0, "%s", sg_last_error());
    SG_CHECK(gcl_bi_state_init(&h.st, N) == 0, "%s", sg_last_error());
    gcl_bi_ws_init(&h.ws);
    int64_t *ids = sg_xmalloc(sizeof(int64_t) * (size_t)B);
    float *dzi = sg_xmalloc(sizeof(float) * (size_t)B * d);
    float *dzt = sg_xmalloc(sizeof(float) * (size_t)B * d);
    for (int step = 0; step < 2; step++) {
        /* step 0: even ids 0..2046; step 1: the upper half of those again, plus odd ids */
        for (int i = 0; i < B; i++)
            ids[i] = step == 0 ? 2 * (int64_t)i : i < B / 2 ? 2 * (int64_t)(i + B / 2) : 2 * i + 1;
        struct batch b;
        batch_make(&b, B, d, ids, step ? 0.8f : 0.9f, step ? 0.03f : 0.07f, step ? 0.1f : 0.07f,
                   77 + (uint64_t)step);
        struct dbatch db;
        dbatch_make(g, &db, &b);
        host_step(&h, &cpu, &b, dzi, dzt);
        char tag[96];
        snprintf(tag, sizeof tag, "large B=%d d=%d step %d vs CPU fast path", B, d, step);
        int rc = dev_step(g, &e, &b, &db, 1);
        sg_test_true(tag, rc == 0);
        if (rc == 0) compare_step(g, tag, &e, &db, &h, dzi, dzt, B, d, 1, &TOL_CPU);
        dbatch_free(g, &db);
        batch_free(&b);
    }
    free(ids);
    free(dzi);
    free(dzt);
    gcl_bi_cuda_free(g, &e);
    gcl_bi_state_free(&h.st);
    gcl_bi_ws_free(&h.ws);
    sg_ctx_free(&cpu);
}

/* ---- timing (information only) ----------------------------------------------------------------
 */

static void time_step(struct sg_ctx *g, int B, int d, int iters)
{
    int64_t *ids = sg_xmalloc(sizeof(int64_t) * (size_t)B);
    for (int i = 0; i < B; i++) ids[i] = 3 * (int64_t)i;
    struct batch b;
    batch_make(&b, B, d, ids, 0.9f, 0.07f, 0.07f, 5 + (uint64_t)B);
    struct dbatch db;
    dbatch_make(g, &db, &b);
    struct gcl_bi_cuda e;
    SG_CHECK(gcl_bi_cuda_init(g, &e, 3 * (int64_t)B) == 0, "%s", sg_last_error());
    float *S = sg_dev_alloc(g, sizeof(float) * (size_t)B * (size_t)B);
    for (int i = 0; i < 3; i++) SG_CHECK(dev_step(g, &e, &b, &db, 1) == 0, "%s", sg_last_error());
    sg_ctx_sync(g);
    double t0 = sg_time_now();
    for (int i = 0; i < iters; i++) dev_step(g, &e, &b, &db, 1);
    sg_ctx_sync(g);
    double t1 = sg_time_now();
    for (int i = 0; i < 3; i++) op_linear_forward(g, S, db.zi, db.zt, NULL, B, d, B);
    sg_ctx_sync(g);
    double t2 = sg_time_now();
    for (int i = 0; i < iters; i++) op_linear_forward(g, S, db.zi, db.zt, NULL, B, d, B);
    sg_ctx_sync(g);
    double t3 = sg_time_now();
    double step_ms = 1e3 * (t1 - t0) / iters, gemm_ms = 1e3 * (t3 - t2) / iters;
    printf("info gcl_bi_cuda_step B=%d d=%d: %.3f ms per step; one B x B x d GEMM %.3f ms "
           "(%.0f GFLOP/s), 3 GEMMs %.3f ms; workspace %.1f MiB\n",
           B, d, step_ms, gemm_ms, 2.0 * B * B * d / (gemm_ms * 1e-3) * 1e-9, 3 * gemm_ms,
           (double)e.ws_bytes / (1 << 20));
    sg_dev_free(g, S);
    gcl_bi_cuda_free(g, &e);
    dbatch_free(g, &db);
    batch_free(&b);
    free(ids);
}

/* Serializes w (then frees it) and opens the image as f. */
static void writer_open(struct sg_st_writer *w, struct sg_st_file *f)
{
    uint8_t *buf;
    size_t len;
    sg_stw_serialize(w, &buf, &len);
    sg_stw_free(w);
    SG_CHECK(sg_st_open_buffer(f, buf, len, "state") == 0, "%s", sg_last_error());
}

/* Reads "<name>" (F32 [n]) of the state in w (freed) into a malloc'd array. */
static float *writer_vec(struct sg_st_writer *w, const char *name, int64_t n)
{
    struct sg_st_file f;
    writer_open(w, &f);
    float *x = sg_xmalloc(sizeof(float) * (size_t)n);
    SG_CHECK(sg_st_read_f32(&f, name, x, n) == 0, "%s", sg_last_error());
    sg_st_close(&f);
    return x;
}

/* Reads "<name>" (F32 [n]) of a serialized state into a malloc'd array. */
static float *state_vec(struct sogclr *l, const char *name, int64_t n)
{
    struct sg_st_writer w;
    sg_stw_init(&w);
    sogclr_state_save(l, &w, "");
    return writer_vec(&w, name, n);
}

/* The public API: sogclr_step on a CUDA context (device pointers, state moved to the GPU on the
 * first step) against sogclr_step on the CPU, over the 6-step sequence with a cosine schedule;
 * losses, objectives, gradients and the saved state must agree, and a state saved from the GPU
 * object and loaded into the CPU one continues identically. */
static void test_sogclr_api(struct sg_ctx *g)
{
    struct sg_ctx cpu;
    sg_ctx_init(&cpu, SG_DEVICE_CPU, 0, 0);
    struct sogclr_config cfg = {SEQ_N, 0.07f, 0.3f, GCL_BI_GAMMA_COSINE, 3};
    struct sogclr lg, lc;
    SG_CHECK(sogclr_init(&lg, &cfg) == 0 && sogclr_init(&lc, &cfg) == 0, "init");
    for (int k = 0; k < SEQ_K; k++) {
        struct batch b;
        struct dbatch db;
        make_seq_batch(&b, k);
        dbatch_make(g, &db, &b);
        sogclr_set_epoch(&lg, k / 2);
        sogclr_set_epoch(&lc, k / 2);
        int64_t n = (int64_t)b.B * b.d;
        float *dzi = sg_xmalloc(sizeof(float) * (size_t)n),
              *dzt = sg_xmalloc(sizeof(float) * (size_t)n);
        struct sogclr_out og, oc;
        int rg = sogclr_step(g, &lg, db.zi, db.zt, db.idx, b.B, b.d, db.dzi, db.dzt, &og);
        int rc = sogclr_step(&cpu, &lc, b.zi, b.zt, b.idx, b.B, b.d, dzi, dzt, &oc);
        char tag[96];
        snprintf(tag, sizeof tag, "sogclr api step %d: both succeed", k);
        sg_test_true(tag, rg == 0 && rc == 0);
        float *gdzi = from_dev(g, db.dzi, n), *gdzt = from_dev(g, db.dzt, n);
        float atol = 2e-4f * (float)rms(dzi, n);
        snprintf(tag, sizeof tag, "sogclr api step %d dzi", k);
        sg_test_close(tag, gdzi, dzi, n, atol, 1e-4f);
        snprintf(tag, sizeof tag, "sogclr api step %d dzt", k);
        sg_test_close(tag, gdzt, dzt, n, atol, 1e-4f);
        float lv[3] = {og.loss, og.objective, og.gamma}, lw[3] = {oc.loss, oc.objective, oc.gamma};
        snprintf(tag, sizeof tag, "sogclr api step %d loss/objective/gamma", k);
        sg_test_close(tag, lv, lw, 3, 1e-5f, 1e-4f);
        free(gdzi);
        free(gdzt);
        free(dzi);
        free(dzt);
        dbatch_free(g, &db);
        batch_free(&b);
    }
    const char *names[4] = {"u_img", "u_txt", "b_img", "b_txt"};
    for (int i = 0; i < 4; i++) {
        float *a = state_vec(&lg, names[i], SEQ_N), *c = state_vec(&lc, names[i], SEQ_N);
        char tag[64];
        snprintf(tag, sizeof tag, "sogclr api saved state %s (GPU vs CPU)", names[i]);
        sg_test_close(tag, a, c, SEQ_N, 1e-5f, 1e-4f);
        free(a);
        free(c);
    }
    sogclr_free(&lg);
    sogclr_free(&lc);
    sg_ctx_free(&cpu);
}

/* GPU gradients (device dzi, dzt of db) against the CPU ones (n = B d floats each). */
static void api_grads(struct sg_ctx *g, const char *what, const struct dbatch *db, const float *dzi,
                      const float *dzt, int64_t n)
{
    float *gdzi = from_dev(g, db->dzi, n), *gdzt = from_dev(g, db->dzt, n);
    float atol = 2e-4f * (float)rms(dzi, n);
    char tag[128];
    snprintf(tag, sizeof tag, "%s dzi", what);
    sg_test_close(tag, gdzi, dzi, n, atol, 1e-4f);
    snprintf(tag, sizeof tag, "%s dzt", what);
    sg_test_close(tag, gdzt, dzt, n, atol, 1e-4f);
    free(gdzi);
    free(gdzt);
}

/* fastclip: the temperature changes every step (uploaded per call on the GPU). */
static float fastclip_seq_tau(int k)
{
    return 0.03f + 0.011f * (float)k;
}

/* One fastclip step of sequence batch k on both objects, compared (tag: "<what> step k"). */
static void fastclip_api_step(struct sg_ctx *g, struct sg_ctx *cpu, struct fastclip *lg,
                              struct fastclip *lc, int k, const char *what)
{
    struct batch b;
    struct dbatch db;
    make_seq_batch(&b, k);
    dbatch_make(g, &db, &b);
    int64_t n = (int64_t)b.B * b.d;
    float *dzi = sg_xmalloc(sizeof(float) * (size_t)n),
          *dzt = sg_xmalloc(sizeof(float) * (size_t)n);
    struct fastclip_out og, oc;
    float tau = fastclip_seq_tau(k);
    int rg = fastclip_step(g, lg, tau, db.zi, db.zt, db.idx, b.B, b.d, db.dzi, db.dzt, &og);
    int rc = fastclip_step(cpu, lc, tau, b.zi, b.zt, b.idx, b.B, b.d, dzi, dzt, &oc);
    char tag[128], base[96];
    snprintf(base, sizeof base, "%s step %d", what, k);
    snprintf(tag, sizeof tag, "%s: both succeed", base);
    sg_test_true(tag, rg == 0 && rc == 0);
    api_grads(g, base, &db, dzi, dzt, n);
    float lv[4] = {og.loss, og.objective, og.gamma, og.dlog_scale};
    float lw[4] = {oc.loss, oc.objective, oc.gamma, oc.dlog_scale};
    snprintf(tag, sizeof tag, "%s loss/objective/gamma/dlog_scale", base);
    sg_test_close(tag, lv, lw, 4, 1e-5f, 1e-4f);
    /* dtau = rho + (sum logU - sum pa) / 2B: terms up to ~1/tau ~ 30 with ~5e-6 relative
     * error each, so atol 1e-4 */
    snprintf(tag, sizeof tag, "%s dtau", base);
    sg_test_close(tag, &og.dtau, &oc.dtau, 1, 1e-4f, 1e-4f);
    free(dzi);
    free(dzt);
    dbatch_free(g, &db);
    batch_free(&b);
}

static float *fastclip_vec(struct fastclip *l, const char *name, int64_t n)
{
    struct sg_st_writer w;
    sg_stw_init(&w);
    fastclip_state_save(l, &w, "");
    return writer_vec(&w, name, n);
}

/* fastclip_step on a CUDA context vs the CPU over the 6-step sequence (cosine schedule, tau
 * changing every step): loss, objective, dtau, dlog_scale, gradients, saved state; then the
 * state of a fresh object is loaded into both (the GPU one uploads it) and step 0 repeated. */
static void test_fastclip_api(struct sg_ctx *g)
{
    struct sg_ctx cpu;
    sg_ctx_init(&cpu, SG_DEVICE_CPU, 0, 0);
    struct fastclip_config cfg = {SEQ_N, 0.3f, GCL_BI_GAMMA_COSINE, 3, 6.5f};
    struct fastclip lg, lc, lz;
    SG_CHECK(fastclip_init(&lg, &cfg) == 0 && fastclip_init(&lc, &cfg) == 0 &&
                 fastclip_init(&lz, &cfg) == 0,
             "init");
    for (int k = 0; k < SEQ_K; k++) {
        fastclip_set_epoch(&lg, k / 2);
        fastclip_set_epoch(&lc, k / 2);
        fastclip_api_step(g, &cpu, &lg, &lc, k, "fastclip api");
    }
    const char *names[4] = {"u_img", "u_txt", "b_img", "b_txt"};
    for (int i = 0; i < 4; i++) {
        float *a = fastclip_vec(&lg, names[i], SEQ_N), *c = fastclip_vec(&lc, names[i], SEQ_N);
        char tag[64];
        snprintf(tag, sizeof tag, "fastclip api saved state %s (GPU vs CPU)", names[i]);
        sg_test_close(tag, a, c, SEQ_N, 1e-5f, 1e-4f);
        free(a);
        free(c);
    }
    struct sg_st_writer w;
    struct sg_st_file f;
    sg_stw_init(&w);
    fastclip_state_save(&lz, &w, "");
    writer_open(&w, &f);
    sg_test_true("fastclip api: fresh state loads into both",
                 fastclip_state_load(&lg, &f, "") == 0 && fastclip_state_load(&lc, &f, "") == 0);
    sg_st_close(&f);
    fastclip_api_step(g, &cpu, &lg, &lc, 0, "fastclip api after load");
    fastclip_free(&lg);
    fastclip_free(&lc);
    fastclip_free(&lz);
    sg_ctx_free(&cpu);
}

/* One isogclr step of sequence batch k on both objects, compared. */
static void isogclr_api_step(struct sg_ctx *g, struct sg_ctx *cpu, struct isogclr *lg,
                             struct isogclr *lc, int k, const char *what)
{
    struct batch b;
    struct dbatch db;
    make_seq_batch(&b, k);
    dbatch_make(g, &db, &b);
    int64_t n = (int64_t)b.B * b.d;
    float *dzi = sg_xmalloc(sizeof(float) * (size_t)n),
          *dzt = sg_xmalloc(sizeof(float) * (size_t)n);
    struct isogclr_out og, oc;
    int rg = isogclr_step(g, lg, db.zi, db.zt, db.idx, b.B, b.d, db.dzi, db.dzt, &og);
    int rc = isogclr_step(cpu, lc, b.zi, b.zt, b.idx, b.B, b.d, dzi, dzt, &oc);
    char tag[128], base[96];
    snprintf(base, sizeof base, "%s step %d", what, k);
    snprintf(tag, sizeof tag, "%s: both succeed", base);
    sg_test_true(tag, rg == 0 && rc == 0);
    api_grads(g, base, &db, dzi, dzt, n);
    float lv[5] = {og.loss, og.objective, og.gamma, og.tau_img_mean, og.tau_txt_mean};
    float lw[5] = {oc.loss, oc.objective, oc.gamma, oc.tau_img_mean, oc.tau_txt_mean};
    snprintf(tag, sizeof tag, "%s loss/objective/gamma/tau means", base);
    sg_test_close(tag, lv, lw, 5, 1e-5f, 1e-4f);
    free(dzi);
    free(dzt);
    dbatch_free(g, &db);
    batch_free(&b);
}

static float *isogclr_vec(struct isogclr *l, const char *name, int64_t n)
{
    struct sg_st_writer w;
    sg_stw_init(&w);
    isogclr_state_save(l, &w, "");
    return writer_vec(&w, name, n);
}

/* isogclr_step on a CUDA context vs the CPU over the 6-step sequence (cosine schedule; per-sample
 * temperatures move by eta m each step, so later steps use different temperatures per anchor):
 * loss, objective, tau means, gradients, the saved state incl. tau and m; then the state of a
 * fresh object is loaded into both and step 0 repeated. Tolerances: m accumulates
 * G = log U + rho - pa (terms up to ~1/tau ~ 50, ~5e-6 relative error): atol 1e-4 for m, and
 * eta times that for tau. */
static void test_isogclr_api(struct sg_ctx *g)
{
    struct sg_ctx cpu;
    sg_ctx_init(&cpu, SG_DEVICE_CPU, 0, 0);
    struct isogclr_config cfg = {SEQ_N, 0.05f, 0.3f, GCL_BI_GAMMA_COSINE, 3, 6.0f, 1e-3f,
                                 0.9f,  0.02f, 0.1f};
    struct isogclr lg, lc, lz;
    SG_CHECK(isogclr_init(&lg, &cfg) == 0 && isogclr_init(&lc, &cfg) == 0 &&
                 isogclr_init(&lz, &cfg) == 0,
             "init");
    for (int k = 0; k < SEQ_K; k++) {
        isogclr_set_epoch(&lg, k / 2);
        isogclr_set_epoch(&lc, k / 2);
        isogclr_api_step(g, &cpu, &lg, &lc, k, "isogclr api");
    }
    const char *names[8] = {"u_img",   "u_txt",   "b_img", "b_txt",
                            "tau_img", "tau_txt", "m_img", "m_txt"};
    const float atol[8] = {1e-5f, 1e-5f, 1e-5f, 1e-5f, 1e-6f, 1e-6f, 1e-4f, 1e-4f};
    for (int i = 0; i < 8; i++) {
        float *a = isogclr_vec(&lg, names[i], SEQ_N), *c = isogclr_vec(&lc, names[i], SEQ_N);
        char tag[64];
        snprintf(tag, sizeof tag, "isogclr api saved state %s (GPU vs CPU)", names[i]);
        sg_test_close(tag, a, c, SEQ_N, atol[i], 1e-4f);
        free(a);
        free(c);
    }
    struct sg_st_writer w;
    struct sg_st_file f;
    sg_stw_init(&w);
    isogclr_state_save(&lz, &w, "");
    writer_open(&w, &f);
    sg_test_true("isogclr api: fresh state loads into both",
                 isogclr_state_load(&lg, &f, "") == 0 && isogclr_state_load(&lc, &f, "") == 0);
    sg_st_close(&f);
    isogclr_api_step(g, &cpu, &lg, &lc, 0, "isogclr api after load");
    isogclr_free(&lg);
    isogclr_free(&lc);
    isogclr_free(&lz);
    sg_ctx_free(&cpu);
}

int main(void)
{
    if (!sg_cuda_available()) {
        printf("SKIP: no CUDA GPU\n");
        return SG_TEST_SKIP;
    }
    struct sg_ctx g;
    if (sg_ctx_init(&g, SG_DEVICE_CUDA, 0, 0) != 0) {
        fprintf(stderr, "FAIL: CUDA context: %s\n", sg_last_error());
        return 1;
    }
    test_sequence(&g);
    test_large(&g);
    test_sogclr_api(&g);
    test_fastclip_api(&g);
    test_isogclr_api(&g);
    if (!getenv("SG_TEST_NO_TIMING")) { /* e.g. under compute-sanitizer */
        time_step(&g, 1024, 512, 20);
        time_step(&g, 4096, 512, 20);
        time_step(&g, 8192, 768, 10);
    }
    sg_ctx_free(&g);
    return sg_test_summary("test_cuda_losses");
}

#else /* no CUDA backend in this build */

int main(void)
{
    printf("SKIP: no CUDA GPU (built without the CUDA backend)\n");
    return SG_TEST_SKIP;
}

#endif
