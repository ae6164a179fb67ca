/*
 * tests/test_vit.c — vision/vit.c (open_clip VisionTransformer image tower) against PyTorch
 * (tests/ref/gen_vit.py): each case's reference state_dict is loaded by its open_clip names; the
 * image is 2x3x16x16, width 32, 2 layers, E=16; "p4": patch 4 (16 patches), 2 heads, exact GELU;
 * "p8": patch 8 (4 patches), 4 heads, QuickGELU. Forward output and, for L = sum(out * wgt),
 * EVERY parameter gradient (conv1, class/positional embeddings, ln_pre, all block weights,
 * ln_post, proj) and the image gradient are compared. Also: every torch key is registered and
 * nothing else, plan == the bytes bind carves, the accumulate contract (a second backward doubles
 * the parameter grads and rewrites, not adds to, the image grad), a NULL image grad leaves the
 * parameter grads unchanged, and central finite differences on a few parameters of every kind
 * and on the image.
 *
 * Tolerances as tests/test_text_encoder.c (same transformer and layernorm chain): forward atol
 * 1e-5 rtol 1e-4; gradients atol 1e-5 rtol 1e-3 (2 blocks of layernorm/softmax backward, entries
 * O(0.1..1)); FD eps 1e-2 on a double-accumulated loss, atol 2e-3 rtol 2e-2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/common.h"
#include "core/ctx.h"
#include "core/params.h"
#include "core/rng.h"
#include "tests/testutil.h"
#include "vision/vit.h"

static struct sg_ctx ctx;

enum { S = 16, W = 32, LAYERS = 2, E = 16, B = 2, NIMG = B * 3 * S * S };

struct model {
    struct sg_params ps;
    struct sg_vit vit;
    struct sg_arena acts;
    size_t plan;
};

static void model_build(struct model *md, int patch, int heads, int quick)
{
    struct sg_vit_config cfg = {S, patch, W, LAYERS, heads, E, quick};
    sg_params_init(&md->ps);
    sg_vit_init(&md->vit, &cfg, &md->ps, "");
    sg_params_alloc(&md->ps, &ctx, 0);
    md->plan = sg_vit_plan(&md->vit, B);
    sg_arena_init(&md->acts, &ctx, md->plan, "vit acts");
    sg_vit_bind(&md->vit, &md->acts);
}

static void model_free(struct model *md)
{
    sg_arena_free(&md->acts);
    sg_params_free(&md->ps);
}

struct fd_user {
    struct model *md;
    const float *img;
    const float *wgt;
};

static double fd_loss(void *user, const float *x)
{
    struct fd_user *u = user;
    (void)x;
    float *out = sg_vit_forward(&u->md->vit, &ctx, u->img);
    return sg_test_dot(out, u->wgt, (int64_t)B * E);
}

static void check_grads(struct model *md, const struct sg_st_file *f, const char *p)
{
    char key[256], label[256];
    for (int i = 0; i < md->ps.n; i++) {
        struct sg_param *q = md->ps.items[i];
        snprintf(key, sizeof key, "%s.grad.%s", p, q->name);
        float *ref = sg_test_ref(f, key, q->numel);
        snprintf(label, sizeof label, "%s grad %s", p, q->name);
        sg_test_close(label, q->grad, ref, q->numel, 1e-5f, 1e-3f);
        free(ref);
    }
}

/* Second backward: param grads double, dimg is rewritten (same values, not doubled); a third
 * backward with dimg NULL still accumulates the params. */
static void check_accumulate(struct model *md, const float *wgt, const float *dimg, const char *p)
{
    char label[128];
    size_t bytes = md->ps.total * sizeof(float);
    float *g1 = sg_xmalloc(bytes), *d2 = sg_xmalloc(NIMG * sizeof(float));
    memcpy(g1, md->ps.grad, bytes);
    sg_vit_backward(&md->vit, &ctx, d2, wgt);
    for (size_t i = 0; i < md->ps.total; i++) g1[i] *= 2.0f;
    snprintf(label, sizeof label, "%s second backward accumulates (all params)", p);
    sg_test_close(label, md->ps.grad, g1, (int64_t)md->ps.total, 1e-6f, 1e-5f);
    snprintf(label, sizeof label, "%s second backward overwrites dimg", p);
    sg_test_close(label, d2, dimg, NIMG, 0.0f, 0.0f);
    for (size_t i = 0; i < md->ps.total; i++) g1[i] *= 1.5f;
    sg_vit_backward(&md->vit, &ctx, NULL, wgt);
    snprintf(label, sizeof label, "%s third backward (dimg NULL) accumulates", p);
    sg_test_close(label, md->ps.grad, g1, (int64_t)md->ps.total, 1e-6f, 1e-5f);
    free(g1);
    free(d2);
}

static void check_fd(struct model *md, float *img, const float *wgt, const char *p)
{
    static const char *names[] = {"conv1.weight",
                                  "class_embedding",
                                  "positional_embedding",
                                  "ln_pre.weight",
                                  "transformer.resblocks.0.attn.in_proj_weight",
                                  "transformer.resblocks.1.mlp.c_fc.bias",
                                  "ln_post.bias",
                                  "proj"};
    char label[256];
    struct fd_user u = {md, img, wgt};
    float *dimg = sg_xmalloc(NIMG * sizeof(float));
    sg_params_zero_grad(&md->ps);
    sg_vit_forward(&md->vit, &ctx, img);
    sg_vit_backward(&md->vit, &ctx, dimg, wgt);
    for (size_t j = 0; j < sizeof names / sizeof names[0]; j++) {
        struct sg_param *q = sg_params_find(&md->ps, names[j]);
        snprintf(label, sizeof label, "%s fd %s", p, names[j]);
        sg_test_fd(label, fd_loss, &u, q->data, q->numel, q->grad, 12, 1e-2f, 2e-3f, 2e-2f);
    }
    snprintf(label, sizeof label, "%s fd image", p);
    sg_test_fd(label, fd_loss, &u, img, NIMG, dimg, 16, 1e-2f, 2e-3f, 2e-2f);
    free(dimg);
}

static void run_case(const char *p, int patch, int heads, int quick, const struct sg_st_file *f)
{
    struct model md;
    char key[256], label[256];
    model_build(&md, patch, heads, quick);
    snprintf(label, sizeof label, "%s plan %zu == carved %zu", p, md.plan, md.acts.used);
    sg_test_true(label, md.plan == md.acts.used);
    char pre[32];
    snprintf(pre, sizeof pre, "%s.sd.", p);
    sg_test_check_param_names(&md.ps, f, pre, NULL, p);
    sg_test_load_params(&md.ps, f, pre);

    snprintf(key, sizeof key, "%s.img", p);
    float *img = sg_test_ref(f, key, NIMG);
    snprintf(key, sizeof key, "%s.wgt", p);
    float *wgt = sg_test_ref(f, key, (int64_t)B * E);
    snprintf(key, sizeof key, "%s.out", p);
    float *ref_out = sg_test_ref(f, key, (int64_t)B * E);
    snprintf(key, sizeof key, "%s.dimg", p);
    float *ref_dimg = sg_test_ref(f, key, NIMG);
    float *dimg = sg_xmalloc(NIMG * sizeof(float));

    sg_params_zero_grad(&md.ps);
    float *out = sg_vit_forward(&md.vit, &ctx, img);
    snprintf(label, sizeof label, "%s forward out", p);
    sg_test_close(label, out, ref_out, (int64_t)B * E, 1e-5f, 1e-4f);
    sg_vit_backward(&md.vit, &ctx, dimg, wgt);
    check_grads(&md, f, p);
    snprintf(label, sizeof label, "%s grad image", p);
    sg_test_close(label, dimg, ref_dimg, NIMG, 1e-5f, 1e-3f);
    printf("  %s: %d params, T %d, activations %.1f KiB\n", p, md.ps.n, md.vit.T,
           (double)md.plan / 1024.0);
    check_accumulate(&md, wgt, dimg, p);
    check_fd(&md, img, wgt, p);

    free(img);
    free(wgt);
    free(ref_out);
    free(ref_dimg);
    free(dimg);
    model_free(&md);
}

static void check_names_prefixed(void)
{
    struct sg_params ps;
    struct sg_vit vit;
    struct sg_rng rng;
    struct sg_vit_config cfg = {32, 16, W, 3, 4, E, 0};
    sg_params_init(&ps);
    sg_vit_init(&vit, &cfg, &ps, "visual");
    sg_params_alloc(&ps, &ctx, 0);
    sg_rng_seed(&rng, 3);
    sg_params_init_values(&ps, &rng);
    sg_test_true("prefixed: visual.transformer.resblocks.2.mlp.c_proj.weight",
                 sg_params_find(&ps, "visual.transformer.resblocks.2.mlp.c_proj.weight") != NULL);
    sg_test_true("prefixed: visual.conv1.weight, visual.proj",
                 sg_params_find(&ps, "visual.conv1.weight") != NULL &&
                     sg_params_find(&ps, "visual.proj") != NULL);
    sg_test_true("param count 8 + 12 per layer", ps.n == 8 + 12 * 3);
    sg_test_true("positional_embedding (1 + 2*2, W)", vit.pos->numel == 5 * W);
    sg_test_true("init: ln_post.weight 1, ln_pre.bias 0",
                 vit.lnpost_w->data[0] == 1.0f && vit.lnpre_b->data[5] == 0.0f);
    sg_params_free(&ps);
}

int main(void)
{
    struct sg_st_file f;
    if (sg_ctx_init(&ctx, SG_DEVICE_CPU, 0, 0) != 0) {
        fprintf(stderr, "FAIL: ctx: %s\n", sg_last_error());
        return 1;
    }
    sg_test_ref_open(&f, "vit.safetensors");
    run_case("p4", 4, 2, 0, &f);
    run_case("p8", 8, 4, 1, &f);
    check_names_prefixed();
    sg_st_close(&f);
    sg_ctx_free(&ctx);
    return sg_test_summary("test_vit");
}
