/*
 * tests/test_modified_resnet.c — vision/modified_resnet.c (CLIP ModifiedResNet) against PyTorch
 * (tests/ref/gen_modified_resnet.py, a plain-torch copy of CLIP model.py): parameters loaded by
 * their CLIP state_dict names, training-mode forward, backward of L = sum(out * wgt); compares the
 * output, every parameter gradient, the input gradient and the updated running stats; checks that
 * every reference key is registered, that plan == the bytes bind carves, the accumulate contract
 * (a second backward doubles the grads), and central finite differences on the attnpool
 * parameters (c_proj bias, q_proj weight, positional embedding) where the loss is smooth.
 * Cases: 32x32 (final 1x1, 2 tokens, 2 heads) and 64x64 (final 2x2, 5 tokens, 4 heads), width 2.
 *
 * Tolerances as tests/test_resnet.c: forward/running stats atol 1e-5 rtol 1e-4; gradients
 * atol 1e-4 rtol 1e-3 (13 fp32 convolutions with batch norm on tiny batches; the fast conv
 * paths sum in a different order than torch). The 32x32 case uses batch 4: at batch 2 layer4's
 * BN (1x1 spatial) normalises over 2 values, and torch's own fp32 gradients differ from fp64 by
 * 3.5e-3 on conv1.weight (this test then fails there, by up to 5e-3).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/common.h"
#include "core/ctx.h"
#include "core/params.h"
#include "tests/testutil.h"
#include "vision/modified_resnet.h"

/* Reference tensors under "<p>." that are not state_dict entries. */
static const char *const REF_EXTRA[] = {"grad.", "after.", "inp", "wgt", "out", "dinp", NULL};

static struct sg_ctx ctx;

struct mcase {
    const char *p;
    struct sg_mrn_config cfg;
    int B;
};

static const struct mcase CASES[] = {
    {"s32", {{1, 1, 1, 1}, 2, 2, 16, 32}, 4},
    {"s64", {{1, 1, 1, 1}, 2, 4, 12, 64}, 2},
};

struct model {
    struct sg_params ps;
    struct sg_mrn net;
    struct sg_arena acts;
    size_t plan;
};

static void model_build(struct model *md, const struct mcase *k)
{
    sg_params_init(&md->ps);
    sg_mrn_init(&md->net, &k->cfg, &md->ps, "");
    sg_params_alloc(&md->ps, &ctx, 0);
    md->plan = sg_mrn_plan(&md->net, k->B);
    sg_arena_init(&md->acts, &ctx, md->plan, "mrn acts");
    sg_mrn_bind(&md->net, &md->acts);
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
    float *out = sg_mrn_forward(&u->md->net, &ctx, u->inp, 1);
    return sg_test_dot(out, u->wgt, u->nout);
}

static void compare_params(struct model *md, const struct sg_st_file *f, const char *p)
{
    char key[256], label[256];
    int ngrad = 0;
    for (int i = 0; i < md->ps.n; i++) {
        struct sg_param *q = md->ps.items[i];
        int buf = (q->flags & SG_PARAM_BUFFER) != 0;
        snprintf(key, sizeof key, "%s.%s.%s", p, buf ? "after" : "grad", q->name);
        float *ref = sg_test_ref(f, key, q->numel);
        snprintf(label, sizeof label, "%s %s %s", p, buf ? "running stat" : "grad", q->name);
        if (buf) {
            sg_test_close(label, q->data, ref, q->numel, 1e-5f, 1e-4f);
        } else {
            sg_test_close(label, q->grad, ref, q->numel, 1e-4f, 1e-3f);
            ngrad++;
        }
        free(ref);
    }
    printf("  %s: %d params, %d gradients compared, activations %.2f MiB\n", p, md->ps.n, ngrad,
           (double)md->plan / (1 << 20));
}

static void run_case(const struct mcase *k, const struct sg_st_file *f)
{
    struct model md;
    char key[256], label[256];
    const char *p = k->p;
    int S = k->cfg.image_size;
    model_build(&md, k);
    char pre[64];
    snprintf(pre, sizeof pre, "%s.", p);
    sg_test_check_param_names(&md.ps, f, pre, REF_EXTRA, p);
    snprintf(label, sizeof label, "%s plan %zu == carved %zu", p, md.plan, md.acts.used);
    sg_test_true(label, md.plan == md.acts.used);
    sg_test_load_params(&md.ps, f, pre);

    int64_t nin = (int64_t)k->B * 3 * S * S, nout = (int64_t)k->B * k->cfg.output_dim;
    snprintf(key, sizeof key, "%s.inp", p);
    float *inp = sg_test_ref(f, key, nin);
    snprintf(key, sizeof key, "%s.wgt", p);
    float *wgt = sg_test_ref(f, key, nout);
    snprintf(key, sizeof key, "%s.out", p);
    float *ref_out = sg_test_ref(f, key, nout);
    snprintf(key, sizeof key, "%s.dinp", p);
    float *ref_dinp = sg_test_ref(f, key, nin);
    float *dinp = sg_xmalloc((size_t)nin * sizeof(float));

    sg_params_zero_grad(&md.ps);
    float *out = sg_mrn_forward(&md.net, &ctx, inp, 1);
    snprintf(label, sizeof label, "%s forward out", p);
    sg_test_close(label, out, ref_out, nout, 1e-5f, 1e-4f);
    sg_mrn_backward(&md.net, &ctx, dinp, wgt, 1);
    snprintf(label, sizeof label, "%s dinp", p);
    sg_test_close(label, dinp, ref_dinp, nin, 1e-4f, 1e-3f);
    compare_params(&md, f, p);

    /* Accumulation contract: a second backward doubles the parameter grads. */
    const char *acc[] = {"conv1.weight", "attnpool.positional_embedding"};
    float *g1[2];
    for (int j = 0; j < 2; j++) {
        struct sg_param *q = sg_params_find(&md.ps, acc[j]);
        g1[j] = sg_xmalloc((size_t)q->numel * sizeof(float));
        for (int64_t i = 0; i < q->numel; i++) g1[j][i] = 2.0f * q->grad[i];
    }
    sg_mrn_backward(&md.net, &ctx, NULL, wgt, 1);
    for (int j = 0; j < 2; j++) {
        struct sg_param *q = sg_params_find(&md.ps, acc[j]);
        snprintf(label, sizeof label, "%s second backward accumulates %s", p, acc[j]);
        sg_test_close(label, q->grad, g1[j], q->numel, 1e-5f, 1e-5f);
        free(g1[j]);
    }

    /* Finite differences on the attention pool (smooth: no ReLU / batch statistics after it). */
    sg_params_zero_grad(&md.ps);
    sg_mrn_forward(&md.net, &ctx, inp, 1);
    sg_mrn_backward(&md.net, &ctx, NULL, wgt, 1);
    struct fd_user u = {&md, inp, wgt, nout};
    const char *fdp[] = {"attnpool.c_proj.bias", "attnpool.q_proj.weight",
                         "attnpool.positional_embedding", "attnpool.k_proj.bias"};
    for (int j = 0; j < 4; j++) {
        struct sg_param *q = sg_params_find(&md.ps, fdp[j]);
        snprintf(label, sizeof label, "%s fd %s", p, fdp[j]);
        sg_test_fd(label, fd_loss, &u, q->data, q->numel, q->grad, 12, 1e-2f, 2e-3f, 3e-2f);
    }

    free(dinp);
    free(inp);
    free(wgt);
    free(ref_out);
    free(ref_dinp);
    sg_arena_free(&md.acts);
    sg_params_free(&md.ps);
}

int main(void)
{
    struct sg_st_file f;
    if (sg_ctx_init(&ctx, SG_DEVICE_CPU, 0, 0) != 0) {
        fprintf(stderr, "FAIL: ctx: %s\n", sg_last_error());
        return 1;
    }
    sg_test_ref_open(&f, "modified_resnet.safetensors");
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) run_case(&CASES[i], &f);
    sg_st_close(&f);
    sg_ctx_free(&ctx);
    return sg_test_summary("test_modified_resnet");
}
