/*
 * tests/test_text_encoder.c — text/text_encoder.c and nn/transformer.c (open_clip text tower)
 * against PyTorch (tests/ref/gen_text_encoder.py): the reference state_dict is loaded by its
 * open_clip names; token ids with the EOT (largest id) at positions 7, 3 and 0; forward output
 * and, for L = sum(out * wgt), EVERY parameter gradient (token table, positional embedding, all
 * block weights, ln_final, text_projection) are compared, for 2 heads + exact GELU ("h2") and
 * 4 heads + QuickGELU ("h4"), causal. Also: every torch key is registered and nothing else
 * (names match exactly), plan == the bytes bind carves, the EOT positions, the accumulate
 * contract (a second backward doubles the grads), and central finite differences on a few
 * parameters of every kind (the loss is smooth: LayerNorm, GELU, softmax).
 *
 * Tolerances: forward atol 1e-5 rtol 1e-4 (outputs are O(1); ~10 fp32 GEMMs/layernorms in a
 * different summation order than torch, observed errors ~1e-7..1e-6). Gradients atol 1e-5,
 * rtol 1e-3: the chain runs through 2 blocks of layernorm/softmax backward (cancellation in the
 * mean-subtracting terms); gradient entries are O(0.1..1). FD: eps 1e-2 on a loss accumulated
 * in double, atol 2e-3 rtol 2e-2 (truncation error O(eps^2 f''') with fp32 forward noise
 * ~1e-6/eps).
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
#include "text/text_encoder.h"

static struct sg_ctx ctx;

enum { V = 64, T = 8, C = 32, LAYERS = 2, E = 16, B = 3 };

struct model {
    struct sg_params ps;
    struct sg_text_encoder enc;
    struct sg_arena acts;
    size_t plan;
};

static void model_build(struct model *md, int heads, int quick, int eot_token)
{
    struct sg_text_encoder_config cfg = {V, T, C, LAYERS, heads, E, quick, eot_token};
    sg_params_init(&md->ps);
    sg_text_encoder_init(&md->enc, &cfg, &md->ps, "");
    sg_params_alloc(&md->ps, &ctx, 0);
    md->plan = sg_text_encoder_plan(&md->enc, B);
    sg_arena_init(&md->acts, &ctx, md->plan, "text acts");
    sg_text_encoder_bind(&md->enc, &md->acts);
}

static void model_free(struct model *md)
{
    sg_arena_free(&md->acts);
    sg_params_free(&md->ps);
}

struct fd_user {
    struct model *md;
    const int32_t *ids;
    const float *wgt;
};

static double fd_loss(void *user, const float *x)
{
    struct fd_user *u = user;
    (void)x;
    float *out = sg_text_encoder_forward(&u->md->enc, &ctx, u->ids);
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

static void check_accumulate(struct model *md, const float *wgt, const char *p)
{
    char label[128];
    size_t bytes = md->ps.total * sizeof(float);
    float *g1 = sg_xmalloc(bytes);
    memcpy(g1, md->ps.grad, bytes);
    sg_text_encoder_backward(&md->enc, &ctx, wgt);
    for (size_t i = 0; i < md->ps.total; i++) g1[i] *= 2.0f;
    snprintf(label, sizeof label, "%s second backward accumulates (all params)", p);
    sg_test_close(label, md->ps.grad, g1, (int64_t)md->ps.total, 1e-6f, 1e-5f);
    free(g1);
}

static void check_fd(struct model *md, const int32_t *ids, const float *wgt, const char *p)
{
    static const char *names[] = {"token_embedding.weight",
                                  "positional_embedding",
                                  "transformer.resblocks.0.attn.in_proj_weight",
                                  "transformer.resblocks.0.ln_1.weight",
                                  "transformer.resblocks.1.mlp.c_fc.bias",
                                  "transformer.resblocks.1.attn.out_proj.weight",
                                  "ln_final.bias",
                                  "text_projection"};
    char label[256];
    struct fd_user u = {md, ids, wgt};
    sg_params_zero_grad(&md->ps);
    sg_text_encoder_forward(&md->enc, &ctx, ids);
    sg_text_encoder_backward(&md->enc, &ctx, wgt);
    for (size_t j = 0; j < sizeof names / sizeof names[0]; j++) {
        struct sg_param *q = sg_params_find(&md->ps, names[j]);
        snprintf(label, sizeof label, "%s fd %s", p, names[j]);
        sg_test_fd(label, fd_loss, &u, q->data, q->numel, q->grad, 12, 1e-2f, 2e-3f, 2e-2f);
    }
}

/* Pooling by an explicit end token (eot_token = V-1, the reference's EOT) must select the same
 * rows as open_clip's argmax rule, and a row without it pools at the last position. */
static void check_eot_token(const int32_t *ids, const float *ref_out, const char *p, int heads,
                            int quick, const struct sg_st_file *f)
{
    struct model md;
    char label[256];
    int32_t noend[B * T];
    model_build(&md, heads, quick, V - 1);
    sg_test_load_params(&md.ps, f, "sd.");
    float *out = sg_text_encoder_forward(&md.enc, &ctx, ids);
    snprintf(label, sizeof label, "%s eot_token %d: same output as argmax pooling", p, V - 1);
    sg_test_close(label, out, ref_out, (int64_t)B * E, 1e-5f, 1e-4f);
    memcpy(noend, ids, sizeof noend);
    for (int t = 0; t < T; t++)
        if (noend[t] == V - 1) noend[t] = 1;
    sg_text_encoder_forward(&md.enc, &ctx, noend);
    snprintf(label, sizeof label, "%s eot_token: a row without it pools at T-1", p);
    sg_test_true(label, md.enc.eot[0] == T - 1 && md.enc.eot[1] == 3);
    model_free(&md);
}

static void run_case(const char *p, int heads, int quick, const struct sg_st_file *f)
{
    struct model md;
    char key[256], label[256];
    model_build(&md, heads, quick, -1);
    snprintf(label, sizeof label, "%s plan %zu == carved %zu", p, md.plan, md.acts.used);
    sg_test_true(label, md.plan == md.acts.used);
    sg_test_check_param_names(&md.ps, f, "sd.", NULL, p);
    sg_test_load_params(&md.ps, f, "sd.");

    snprintf(key, sizeof key, "%s.ids", p);
    int64_t *ids64 = sg_test_ref_i64(f, key, (int64_t)B * T);
    int32_t ids[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)ids64[i];
    free(ids64);
    snprintf(key, sizeof key, "%s.wgt", p);
    float *wgt = sg_test_ref(f, key, (int64_t)B * E);
    snprintf(key, sizeof key, "%s.out", p);
    float *ref_out = sg_test_ref(f, key, (int64_t)B * E);

    sg_params_zero_grad(&md.ps);
    float *out = sg_text_encoder_forward(&md.enc, &ctx, ids);
    snprintf(label, sizeof label, "%s eot positions 7,3,0", p);
    sg_test_true(label, md.enc.eot[0] == 7 && md.enc.eot[1] == 3 && md.enc.eot[2] == 0);
    snprintf(label, sizeof label, "%s forward out", p);
    sg_test_close(label, out, ref_out, (int64_t)B * E, 1e-5f, 1e-4f);
    sg_text_encoder_backward(&md.enc, &ctx, wgt);
    check_grads(&md, f, p);
    printf("  %s: %d params, activations %.1f KiB\n", p, md.ps.n, (double)md.plan / 1024.0);
    check_accumulate(&md, wgt, p);
    check_fd(&md, ids, wgt, p);
    check_eot_token(ids, ref_out, p, heads, quick, f);

    free(wgt);
    free(ref_out);
    model_free(&md);
}

static void check_names_prefixed(void)
{
    struct sg_params ps;
    struct sg_text_encoder enc;
    struct sg_rng rng;
    struct sg_text_encoder_config cfg = {V, T, C, 3, 4, E, 0, -1};
    sg_params_init(&ps);
    sg_text_encoder_init(&enc, &cfg, &ps, "text");
    sg_params_alloc(&ps, &ctx, 0);
    sg_rng_seed(&rng, 3);
    sg_params_init_values(&ps, &rng);
    sg_test_true("prefixed: text.transformer.resblocks.2.mlp.c_proj.weight",
                 sg_params_find(&ps, "text.transformer.resblocks.2.mlp.c_proj.weight") != NULL);
    sg_test_true("prefixed: text.text_projection",
                 sg_params_find(&ps, "text.text_projection") != NULL);
    sg_test_true("param count 4 + 12 per layer", ps.n == 5 + 12 * 3);
    sg_test_true("init: ln_final.weight 1, in_proj_bias 0",
                 enc.lnf_w->data[0] == 1.0f && enc.tr.blocks[1].in_b->data[5] == 0.0f);
    sg_params_free(&ps);
}

int main(void)
{
    struct sg_st_file f;
    if (sg_ctx_init(&ctx, SG_DEVICE_CPU, 0, 0) != 0) {
        fprintf(stderr, "FAIL: ctx: %s\n", sg_last_error());
        return 1;
    }
    sg_test_ref_open(&f, "text_encoder.safetensors");
    run_case("h2", 2, 0, &f);
    run_case("h4", 4, 1, &f);
    check_names_prefixed();
    sg_st_close(&f);
    sg_ctx_free(&ctx);
    return sg_test_summary("test_text_encoder");
}
