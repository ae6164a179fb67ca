/*
 * tests/test_loss.c — softmax cross-entropy forward/backward (ops/loss.h) against PyTorch
 * (F.cross_entropy, mean reduction, label_smoothing; per-row losses from reduction='none'),
 * for both the _ref and the op_ paths: odd shape 7x13 with smoothing 0 and 0.1, logits of +-80
 * (overflow-free log-sum-exp), the CLIP InfoNCE shape 16x16 with targets = arange (explicit and
 * NULL), and a round 32x100 case. Also: dlogits is overwritten, NULL losses/probs, finite
 * differences of the backward, NaN propagation, a larger problem that takes the parallel path at
 * 1/2/3 threads, and out-of-range targets aborting with the offending value. References:
 * tests/ref/gen_loss.py -> tests/ref/data/loss.safetensors (computed in float64).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "ops/loss.h"
#include "tests/testutil.h"

/* fp32 against a float64 reference: probabilities and gradients to a few ulp. The losses are
 * lse - x_t with |x| up to 80, so they carry the fp32 rounding of the logits' scale (1e-5 of 80
 * is 8e-4 ulp-wise), hence the relative tolerance on them. */
#define PROB_ATOL 1e-6f
#define PROB_RTOL 1e-5f
#define LOSS_ATOL 1e-5f
#define LOSS_RTOL 1e-5f

static int32_t *ref_targets(const struct sg_st_file *ref, const char *name, int n)
{
    int64_t *w = sg_test_ref_i64(ref, name, n);
    int32_t *t = sg_xmalloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) t[i] = (int32_t)w[i];
    free(w);
    return t;
}

struct fd_ce {
    const int32_t *targets;
    float *losses; /* (N) scratch */
    int N, V;
    float ls, dloss;
};

/* dloss * mean loss, summed in double from the per-row fp32 losses: a probe changes one row,
 * so the other rows cancel exactly between the two evaluations and the numeric gradient only
 * carries that row's rounding. */
static double fd_loss(void *user, const float *logits)
{
    struct fd_ce *a = user;
    cross_entropy_forward_ref(a->losses, NULL, logits, a->targets, a->N, a->V, a->ls);
    double sum = 0.0;
    for (int n = 0; n < a->N; n++) sum += a->losses[n];
    return (double)a->dloss * sum / a->N;
}

struct ce_ref {
    float *logits, *losses, *probs, *dlogits, loss, ls, dloss;
    int32_t *targets;
};

static void load_case(struct ce_ref *r, const struct sg_st_file *ref, const char *key, int N, int V)
{
    char name[128];
    int64_t nv = (int64_t)N * V;
#define NAME(suffix) (snprintf(name, sizeof name, "%s_" suffix, key), name)
    r->logits = sg_test_ref(ref, NAME("logits"), nv);
    r->losses = sg_test_ref(ref, NAME("losses"), N);
    r->probs = sg_test_ref(ref, NAME("probs"), nv);
    r->dlogits = sg_test_ref(ref, NAME("dlogits"), nv);
    r->loss = sg_test_ref_scalar(ref, NAME("loss"));
    r->ls = sg_test_ref_scalar(ref, NAME("ls"));
    r->dloss = sg_test_ref_scalar(ref, NAME("dloss"));
    r->targets = ref_targets(ref, NAME("targets"), N);
#undef NAME
}

static void free_case(struct ce_ref *r)
{
    sg_afree(r->logits);
    sg_afree(r->losses);
    sg_afree(r->probs);
    sg_afree(r->dlogits);
    free(r->targets);
}

/* Forward and backward of one path (use_op: op_ dispatch, else _ref) against the reference. */
static void check_path(struct sg_ctx *c, const struct ce_ref *r, const char *key, int N, int V,
                       const int32_t *targets, int use_op, const char *how)
{
    char label[160];
    size_t nv = (size_t)N * V;
    float *losses = sg_xmalloc(sizeof(float) * (size_t)N), *probs = sg_xmalloc(nv * 4);
    float *dlogits = sg_xmalloc(nv * sizeof(float));
    for (size_t i = 0; i < nv; i++) dlogits[i] = NAN; /* must be overwritten everywhere */
#define LABEL(what) (snprintf(label, sizeof label, "%s %dx%d %s: %s", key, N, V, how, what), label)
    float loss = use_op
                     ? op_cross_entropy_forward(c, losses, probs, r->logits, targets, N, V, r->ls)
                     : cross_entropy_forward_ref(losses, probs, r->logits, targets, N, V, r->ls);
    sg_test_close(LABEL("mean loss"), &loss, &r->loss, 1, LOSS_ATOL, LOSS_RTOL);
    sg_test_close(LABEL("per-row losses"), losses, r->losses, N, LOSS_ATOL, LOSS_RTOL);
    sg_test_close(LABEL("probs"), probs, r->probs, (int64_t)nv, PROB_ATOL, PROB_RTOL);
    if (use_op)
        op_cross_entropy_backward(c, dlogits, probs, targets, N, V, r->dloss, r->ls);
    else
        cross_entropy_backward_ref(dlogits, probs, targets, N, V, r->dloss, r->ls);
    sg_test_close(LABEL("dlogits (overwrite)"), dlogits, r->dlogits, (int64_t)nv, PROB_ATOL,
                  PROB_RTOL);
    if (use_op) {
        float bare = op_cross_entropy_forward(c, NULL, NULL, r->logits, targets, N, V, r->ls);
        sg_test_true(LABEL("NULL losses/probs give the same mean"), bare == loss);
    }
#undef LABEL
    free(losses);
    free(probs);
    free(dlogits);
}

static void test_case(struct sg_ctx *c, const struct sg_st_file *ref, const char *key, int N, int V,
                      float fd_eps, float fd_atol)
{
    struct ce_ref r;
    load_case(&r, ref, key, N, V);
    check_path(c, &r, key, N, V, r.targets, 0, "ref");
    check_path(c, &r, key, N, V, r.targets, 1, "op");
    int arange = 1;
    for (int n = 0; n < N; n++) arange &= r.targets[n] == n;
    if (arange) {
        check_path(c, &r, key, N, V, NULL, 0, "ref targets=NULL");
        check_path(c, &r, key, N, V, NULL, 1, "op targets=NULL");
    }
    if (fd_eps > 0) {
        char label[128];
        snprintf(label, sizeof label, "%s %dx%d: finite differences", key, N, V);
        float *scratch = sg_xmalloc(sizeof(float) * (size_t)N);
        struct fd_ce a = {r.targets, scratch, N, V, r.ls, r.dloss};
        sg_test_fd(label, fd_loss, &a, r.logits, (int64_t)N * V, r.dlogits, 200, fd_eps, fd_atol,
                   1e-3f);
        free(scratch);
    }
    free_case(&r);
}

/* A problem large enough for the parallel path: op_ equals ref to fp32 accuracy and gives the
 * same bits at every thread count (per-row work is independent of the split; the mean is summed
 * in row order). */
static void test_parallel(void)
{
    const int N = 300, V = 517;
    size_t nv = (size_t)N * V;
    float *logits = sg_xmalloc(nv * 4), *probs_ref = sg_xmalloc(nv * 4);
    float *d_ref = sg_xmalloc(nv * 4), *probs[3], *d[3], loss[3];
    int32_t *targets = sg_xmalloc(sizeof(int32_t) * (size_t)N);
    sg_test_fill(logits, (int64_t)nv, 7, -20.0f, 20.0f);
    for (int n = 0; n < N; n++) targets[n] = (int32_t)((n * 131) % V);
    float loss_ref = cross_entropy_forward_ref(NULL, probs_ref, logits, targets, N, V, 0.05f);
    cross_entropy_backward_ref(d_ref, probs_ref, targets, N, V, 1.0f, 0.05f);
    for (int t = 0; t < 3; t++) {
        struct sg_ctx c;
        sg_ctx_init(&c, SG_DEVICE_CPU, 0, t + 1);
        probs[t] = sg_xmalloc(nv * 4);
        d[t] = sg_xmalloc(nv * 4);
        loss[t] = op_cross_entropy_forward(&c, NULL, probs[t], logits, targets, N, V, 0.05f);
        op_cross_entropy_backward(&c, d[t], probs[t], targets, N, V, 1.0f, 0.05f);
        sg_ctx_free(&c);
    }
    sg_test_close("300x517 op vs ref: mean loss", &loss[1], &loss_ref, 1, LOSS_ATOL, LOSS_RTOL);
    sg_test_close("300x517 op vs ref: probs", probs[1], probs_ref, (int64_t)nv, PROB_ATOL,
                  PROB_RTOL);
    sg_test_close("300x517 op vs ref: dlogits", d[1], d_ref, (int64_t)nv, 1e-8f, PROB_RTOL);
    int same = 1;
    for (int t = 1; t < 3; t++)
        same &= loss[t] == loss[0] && memcmp(probs[t], probs[0], nv * 4) == 0 &&
                memcmp(d[t], d[0], nv * 4) == 0;
    sg_test_true("300x517 op: bit-identical at 1, 2 and 3 threads", same);
    for (int t = 0; t < 3; t++) {
        free(probs[t]);
        free(d[t]);
    }
    free(logits);
    free(probs_ref);
    free(d_ref);
    free(targets);
}

/* A NaN logit must surface as a NaN loss (as in torch), not be hidden by the max or the
 * exponential's underflow flush; other rows stay finite. */
static void test_nan(struct sg_ctx *c)
{
    float logits[3 * 40], probs[3 * 40], losses[3];
    int32_t targets[3] = {0, 5, 39};
    sg_test_fill(logits, 3 * 40, 11, -3.0f, 3.0f);
    logits[40 + 7] = NAN;
    float l_ref = cross_entropy_forward_ref(losses, probs, logits, targets, 3, 40, 0.0f);
    sg_test_true("NaN logit: ref loss is NaN, other rows finite",
                 isnan(l_ref) && isnan(losses[1]) && isfinite(losses[0]) && isfinite(losses[2]));
    float l_op = op_cross_entropy_forward(c, losses, probs, logits, targets, 3, 40, 0.0f);
    sg_test_true("NaN logit: op loss is NaN, other rows finite",
                 isnan(l_op) && isnan(losses[1]) && isfinite(losses[0]) && isfinite(losses[2]));
}

static void bad_target(void)
{
    struct sg_ctx c;
    sg_ctx_init(&c, SG_DEVICE_CPU, 0, 0);
    float logits[3 * 4] = {0}, probs[3 * 4];
    int32_t targets[3] = {0, 4, 1};
    op_cross_entropy_forward(&c, NULL, probs, logits, targets, 3, 4, 0.0f);
}

static void null_targets_too_many_rows(void)
{
    float dlogits[5 * 4], probs[5 * 4] = {0};
    cross_entropy_backward_ref(dlogits, probs, NULL, 5, 4, 1.0f, 0.0f);
}

int main(void)
{
    struct sg_ctx c;
    if (sg_ctx_init(&c, SG_DEVICE_CPU, 0, 0) != 0) {
        fprintf(stderr, "test_loss: %s\n", sg_last_error());
        return 1;
    }
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "loss.safetensors");
    test_case(&c, &ref, "odd", 7, 13, 1e-2f, 1e-5f);
    test_case(&c, &ref, "odd_ls", 7, 13, 1e-2f, 1e-5f);
    /* Row losses near 160 carry fp32 rounding of 1.5e-5 (ulp of 160): a wider step keeps the
     * numeric gradient's noise below ulp(160)/2 / (N * eps) = 2.2e-5. */
    test_case(&c, &ref, "large", 7, 13, 5e-2f, 3e-5f);
    test_case(&c, &ref, "large_ls", 7, 13, 5e-2f, 3e-5f);
    test_case(&c, &ref, "clip", 16, 16, 1e-2f, 1e-5f);
    test_case(&c, &ref, "round", 32, 100, 1e-2f, 1e-5f);
    sg_st_close(&ref);
    test_parallel();
    test_nan(&c);
    sg_ctx_init(&c, SG_DEVICE_CPU, 0, 0);
    sg_test_expect_abort("out-of-range target aborts with its value", bad_target,
                         "targets[1] = 4 is outside [0, V=4)");
    sg_test_expect_abort("targets=NULL with N > V aborts", null_targets_too_many_rows,
                         "N=5 <= V=4");
    sg_ctx_free(&c);
    return sg_test_summary("test_loss");
}
