/*
 * tests/test_proj_head.c — vision/proj_head.c (SimCLR/SogCLR projection MLP: Linear -> BN1d ->
 * ReLU -> ... -> Linear -> BN1d(affine=False)) against PyTorch (tests/ref/gen_proj_head.py).
 *
 * Per case (2 layers at B=6, 12->16->8 and B=5, 7->9->3; 3 layers at B=16, 64->32->16):
 * the registered names equal the torch state_dict keys exactly (and no affine params on the last
 * BN), plan == the bytes bind carves; training-mode forward output, input gradient, every
 * parameter gradient and the updated running stats; the accumulate contract (a second backward
 * doubles the parameter grads; dinp stays overwritten); eval-mode forward (running stats) output,
 * input gradient and parameter gradients; central finite differences of the training-mode loss
 * on the first Linear weight and the first BN weight/bias.
 *
 * Tolerances: outputs and running stats atol 1e-5, rtol 1e-4; gradients atol 1e-4, rtol 1e-3
 * (the chain goes through two or three batch-norm backwards, each subtracting batch means of
 * products, with GEMMs summing in a different order than torch).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/common.h"
#include "core/ctx.h"
#include "core/params.h"
#include "tests/testutil.h"
#include "vision/proj_head.h"

/* Reference tensors under "<p>." that are not state_dict entries. */
static const char *const REF_EXTRA[] = {"grad.", "after.", "eval_", "inp",
                                        "wgt",   "out",    "dinp",  NULL};

static struct sg_ctx ctx;

struct hcase {
    const char *p;
    int L, B, din, dh, dout;
};

static const struct hcase CASES[] = {
    {"odd", 2, 6, 12, 16, 8},
    {"round", 3, 16, 64, 32, 16},
    {"two", 2, 5, 7, 9, 3},
};

struct model {
    struct sg_params ps;
    struct sg_proj_head head;
    struct sg_arena acts;
    size_t plan;
};

static void model_build(struct model *md, const struct hcase *k, const char *prefix)
{
    sg_params_init(&md->ps);
    sg_proj_head_init(&md->head, &md->ps, prefix, k->L, k->din, k->dh, k->dout);
    sg_params_alloc(&md->ps, &ctx, 0);
    md->plan = sg_proj_head_plan(&md->head, k->B);
    sg_arena_init(&md->acts, &ctx, md->plan, "proj_head acts");
    sg_proj_head_bind(&md->head, &md->acts);
}

static void model_free(struct model *md)
{
    sg_arena_free(&md->acts);
    sg_params_free(&md->ps);
}

static float *ref(const struct sg_st_file *f, const char *p, const char *what, const char *name,
                  int64_t n)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s%s", p, what, name);
    return sg_test_ref(f, key, n);
}

/* Compares every parameter grad with "<p>.<gkey><name>"; buffers with "<p>.after.<name>". */
static void check_params(struct model *md, const struct sg_st_file *f, const char *p,
                         const char *gkey, int buffers)
{
    char label[256];
    for (int i = 0; i < md->ps.n; i++) {
        struct sg_param *q = md->ps.items[i];
        int buf = (q->flags & SG_PARAM_BUFFER) != 0;
        if (buf && !buffers) continue;
        float *r = ref(f, p, buf ? "after." : gkey, q->name, q->numel);
        snprintf(label, sizeof label, "%s %s%s", p, buf ? "running stat " : gkey, q->name);
        if (buf)
            sg_test_close(label, q->data, r, q->numel, 1e-5f, 1e-4f);
        else
            sg_test_close(label, q->grad, r, q->numel, 1e-4f, 1e-3f);
        free(r);
    }
}

struct fd_user {
    struct model *md;
    const float *inp, *wgt;
    int64_t nout;
};

static double fd_loss(void *user, const float *x)
{
    struct fd_user *u = user;
    (void)x;
    float *out = sg_proj_head_forward(&u->md->head, &ctx, u->inp, 1);
    return sg_test_dot(out, u->wgt, u->nout);
}

static void run_case(const struct hcase *k, const struct sg_st_file *f)
{
    struct model md;
    char label[256];
    const char *p = k->p;
    model_build(&md, k, "");
    char pre[64];
    snprintf(pre, sizeof pre, "%s.", p);
    sg_test_check_param_names(&md.ps, f, pre, REF_EXTRA, p);
    snprintf(label, sizeof label, "%s plan %zu == carved %zu", p, md.plan, md.acts.used);
    sg_test_true(label, md.plan == md.acts.used);
    sg_test_load_params(&md.ps, f, pre);

    int64_t nin = (int64_t)k->B * k->din, nout = (int64_t)k->B * k->dout;
    float *inp = ref(f, p, "", "inp", nin), *wgt = ref(f, p, "", "wgt", nout);
    float *rout = ref(f, p, "", "out", nout), *rdinp = ref(f, p, "", "dinp", nin);
    float *eout = ref(f, p, "eval_", "out", nout), *edinp = ref(f, p, "eval_", "dinp", nin);
    float *dinp = sg_xmalloc((size_t)nin * sizeof(float));

    /* training mode */
    sg_params_zero_grad(&md.ps);
    float *out = sg_proj_head_forward(&md.head, &ctx, inp, 1);
    snprintf(label, sizeof label, "%s train out", p);
    sg_test_close(label, out, rout, nout, 1e-5f, 1e-4f);
    sg_proj_head_backward(&md.head, &ctx, dinp, wgt, 1);
    snprintf(label, sizeof label, "%s train dinp", p);
    sg_test_close(label, dinp, rdinp, nin, 1e-4f, 1e-3f);
    check_params(&md, f, p, "grad.", 1);

    /* accumulate: a second backward doubles every parameter grad, dinp is overwritten */
    int64_t tot = 0;
    for (int i = 0; i < md.ps.n; i++) tot += md.ps.items[i]->numel;
    float *g1 = sg_xmalloc((size_t)tot * sizeof(float)),
          *g2 = sg_xmalloc((size_t)tot * sizeof(float));
    int64_t o = 0;
    for (int i = 0; i < md.ps.n; i++) {
        struct sg_param *q = md.ps.items[i];
        if (q->flags & SG_PARAM_BUFFER) continue;
        for (int64_t j = 0; j < q->numel; j++) g1[o + j] = 2.0f * q->grad[j];
        o += q->numel;
    }
    for (int64_t j = 0; j < nin; j++) dinp[j] = 1e3f;
    sg_proj_head_backward(&md.head, &ctx, dinp, wgt, 1);
    o = 0;
    for (int i = 0; i < md.ps.n; i++) {
        struct sg_param *q = md.ps.items[i];
        if (q->flags & SG_PARAM_BUFFER) continue;
        memcpy(g2 + o, q->grad, (size_t)q->numel * sizeof(float));
        o += q->numel;
    }
    snprintf(label, sizeof label, "%s second backward accumulates", p);
    sg_test_close(label, g2, g1, o, 1e-5f, 1e-5f);
    snprintf(label, sizeof label, "%s second backward overwrites dinp", p);
    sg_test_close(label, dinp, rdinp, nin, 1e-4f, 1e-3f);

    /* finite differences (training mode; running stats drift but do not affect the output) */
    sg_params_zero_grad(&md.ps);
    sg_proj_head_forward(&md.head, &ctx, inp, 1);
    sg_proj_head_backward(&md.head, &ctx, NULL, wgt, 1);
    struct fd_user u = {&md, inp, wgt, nout};
    const char *fdp[] = {"0.weight", "1.weight", "1.bias"};
    for (int j = 0; j < 3; j++) {
        struct sg_param *q = sg_params_find(&md.ps, fdp[j]);
        snprintf(label, sizeof label, "%s fd %s", p, fdp[j]);
        sg_test_fd(label, fd_loss, &u, q->data, q->numel, q->grad, 16, 1e-3f, 2e-3f, 3e-2f);
    }

    /* eval mode with the torch-updated running stats (fd above moved ours) */
    sg_test_load_params(&md.ps, f, pre);
    for (int i = 0; i < md.ps.n; i++) {
        struct sg_param *q = md.ps.items[i];
        if (!(q->flags & SG_PARAM_BUFFER)) continue;
        float *r = ref(f, p, "after.", q->name, q->numel);
        memcpy(q->data, r, (size_t)q->numel * sizeof(float));
        free(r);
    }
    sg_params_zero_grad(&md.ps);
    out = sg_proj_head_forward(&md.head, &ctx, inp, 0);
    snprintf(label, sizeof label, "%s eval out", p);
    sg_test_close(label, out, eout, nout, 1e-5f, 1e-4f);
    sg_proj_head_backward(&md.head, &ctx, dinp, wgt, 0);
    snprintf(label, sizeof label, "%s eval dinp", p);
    sg_test_close(label, dinp, edinp, nin, 1e-4f, 1e-3f);
    check_params(&md, f, p, "eval_grad.", 0);
    printf("  %s: %d layers, %d params, activations %zu bytes\n", p, k->L, md.ps.n, md.plan);

    free(g1);
    free(g2);
    free(dinp);
    free(inp);
    free(wgt);
    free(rout);
    free(rdinp);
    free(eout);
    free(edinp);
    model_free(&md);
}

static void check_prefix(void)
{
    struct model md;
    const struct hcase k = {"p", 2, 4, 8, 16, 4};
    model_build(&md, &k, "fc");
    const char *want[] = {"fc.0.weight",       "fc.1.weight",      "fc.1.bias",
                          "fc.1.running_mean", "fc.1.running_var", "fc.3.weight",
                          "fc.4.running_mean", "fc.4.running_var"};
    int ok = md.ps.n == 8;
    for (int i = 0; i < 8; i++) ok &= sg_params_find(&md.ps, want[i]) != NULL;
    ok &= sg_params_find(&md.ps, "fc.4.weight") == NULL &&
          sg_params_find(&md.ps, "fc.4.bias") == NULL;
    sg_test_true("prefixed SogCLR names fc.{0,1,3,4}.*, no affine on the last BN", ok);
    model_free(&md);
}

int main(void)
{
    struct sg_st_file f;
    if (sg_ctx_init(&ctx, SG_DEVICE_CPU, 0, 0) != 0) {
        fprintf(stderr, "FAIL: ctx: %s\n", sg_last_error());
        return 1;
    }
    sg_test_ref_open(&f, "proj_head.safetensors");
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) run_case(&CASES[i], &f);
    check_prefix();
    sg_st_close(&f);
    sg_ctx_free(&ctx);
    return sg_test_summary("test_proj_head");
}
