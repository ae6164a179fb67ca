/*
 * tests/test_conv.c — conv2d forward/backward against PyTorch (tests/ref/gen_conv.py ->
 * tests/ref/data/conv.safetensors) for every implementation: conv2d_*_ref, the oneDNN path,
 * the im2col+GEMM path and the public op_conv2d_* (CPU context).
 * Cases: odd shapes, stride 2 with a floored output, groups, depthwise, 1x1, 1x1/2, the 7x7/2
 * stem, a round 3x3, a 1x3 kernel, with and without bias; two 1x1 cases big enough for op_'s
 * GEMM branch, and one with C*9 >= 1024 (op_ takes dw from im2col, dinp from oneDNN).
 * Also checks the gradient contract (dinp overwritten, dw/db accumulated, NULL skipped), shape
 * bookkeeping, and central finite differences of the backward.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "ops/conv.h"
#include "tests/testutil.h"

/* Must match CASES in tests/ref/gen_conv.py. */
struct conv_case {
    int B, C, H, W, OC, KH, KW, stride, pad, groups, bias;
};
static const struct conv_case CASES[] = {
    {2, 3, 9, 7, 5, 3, 3, 2, 1, 1, 1},   {2, 3, 10, 8, 5, 3, 3, 2, 1, 1, 0},
    {2, 4, 6, 6, 6, 3, 3, 1, 1, 2, 0},   {2, 4, 5, 8, 4, 3, 3, 1, 1, 4, 1},
    {2, 8, 5, 5, 16, 1, 1, 1, 0, 1, 0},  {2, 6, 7, 7, 4, 1, 1, 2, 0, 1, 1},
    {1, 3, 24, 24, 8, 7, 7, 2, 3, 1, 0}, {4, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1},
    {2, 4, 5, 6, 3, 1, 3, 1, 1, 1, 1},   {3, 8, 12, 12, 8, 3, 3, 1, 1, 8, 0},
    {1, 4, 28, 28, 3, 1, 1, 1, 0, 1, 1}, {1, 2, 56, 56, 3, 1, 1, 2, 0, 1, 0},
    {2, 128, 4, 5, 3, 3, 3, 1, 1, 1, 1},
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

typedef void (*fwd_fn)(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *out,
                       const float *inp, const float *w, const float *b);
typedef void (*bwd_fn)(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *dinp, float *dw,
                       float *db, const float *dout, const float *inp, const float *w);

static void ref_fwd(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *out, const float *inp,
                    const float *w, const float *b)
{
    SG_UNUSED(c);
    conv2d_forward_ref(s, out, inp, w, b);
}

static void ref_bwd(struct sg_ctx *c, const struct sg_conv2d_shape *s, float *dinp, float *dw,
                    float *db, const float *dout, const float *inp, const float *w)
{
    SG_UNUSED(c);
    conv2d_backward_ref(s, dinp, dw, db, dout, inp, w);
}

struct path {
    const char *name;
    fwd_fn fwd;
    bwd_fn bwd;
};
static const struct path PATHS[] = {
    {"ref", ref_fwd, ref_bwd},
    {"dnnl", conv2d_forward_dnnl, conv2d_backward_dnnl},
    {"im2col", conv2d_forward_im2col, conv2d_backward_im2col},
    {"rows", conv2d_forward_rows, conv2d_backward_rows},
    {"op", op_conv2d_forward, op_conv2d_backward},
};

/* The reference tensors of one case. */
struct conv_ref {
    struct sg_conv2d_shape s;
    int64_t nx, nw, ny;
    float *x, *w, *b, *wgt, *out, *dx, *dw, *db;
};

static void ref_load(struct conv_ref *r, const struct sg_st_file *f, int i)
{
    const struct conv_case *k = &CASES[i];
    sg_conv2d_shape_init(&r->s, k->B, k->C, k->H, k->W, k->OC, k->KH, k->KW, k->stride, k->pad,
                         k->groups);
    r->nx = (int64_t)k->B * k->C * k->H * k->W;
    r->nw = (int64_t)k->OC * (k->C / k->groups) * k->KH * k->KW;
    r->ny = (int64_t)k->B * k->OC * r->s.OH * r->s.OW;
    char name[32];
#define LOAD(field, tag, n)                                                                        \
    (snprintf(name, sizeof name, "c%d_%s", i, tag), r->field = sg_test_ref(f, name, n))
    LOAD(x, "x", r->nx);
    LOAD(w, "w", r->nw);
    LOAD(wgt, "wgt", r->ny);
    LOAD(out, "out", r->ny);
    LOAD(dx, "dx", r->nx);
    LOAD(dw, "dw", r->nw);
    r->b = r->db = NULL;
    if (k->bias) {
        LOAD(b, "b", k->OC);
        LOAD(db, "db", k->OC);
    }
#undef LOAD
}

static void ref_free(struct conv_ref *r)
{
    float *p[] = {r->x, r->w, r->b, r->wgt, r->out, r->dx, r->dw, r->db};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) sg_afree(p[i]);
}

static float *filled(int64_t n, float v)
{
    float *x = sg_xmalloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = v;
    return x;
}

/* want[i] = base + times * ref[i] */
static float *expect_acc(const float *ref, int64_t n, float base, float times)
{
    float *e = filled(n, 0.0f);
    for (int64_t i = 0; i < n; i++) e[i] = base + times * ref[i];
    return e;
}

/* Tolerances: fp32 sums of at most a few hundred products of O(1) terms. */
#define ATOL 2e-5f
#define RTOL 1e-4f

static void check_path(struct sg_ctx *c, const struct path *p, const struct conv_ref *r, int i)
{
    char label[96];
    int OC = r->s.OC;
    float *out = filled(r->ny, 123.0f), *dx = filled(r->nx, 456.0f);
    float *dw = filled(r->nw, 0.25f), *db = filled(OC, 0.25f);
    p->fwd(c, &r->s, out, r->x, r->w, r->b);
    snprintf(label, sizeof label, "conv c%d %s forward", i, p->name);
    sg_test_close(label, out, r->out, r->ny, ATOL, RTOL);

    /* All gradients: dx overwritten (was 456), dw/db accumulated onto 0.25. */
    p->bwd(c, &r->s, dx, dw, r->b ? db : NULL, r->wgt, r->x, r->w);
    float *e_dw = expect_acc(r->dw, r->nw, 0.25f, 1.0f);
    snprintf(label, sizeof label, "conv c%d %s dinp", i, p->name);
    sg_test_close(label, dx, r->dx, r->nx, ATOL, RTOL);
    snprintf(label, sizeof label, "conv c%d %s dw (accumulated)", i, p->name);
    sg_test_close(label, dw, e_dw, r->nw, ATOL, RTOL);
    if (r->b) {
        float *e_db = expect_acc(r->db, OC, 0.25f, 1.0f);
        snprintf(label, sizeof label, "conv c%d %s db (accumulated)", i, p->name);
        sg_test_close(label, db, e_db, OC, ATOL, RTOL);
        free(e_db);
    }

    /* NULL skips: only dw, then only db, then only dinp. */
    p->bwd(c, &r->s, NULL, dw, NULL, r->wgt, r->x, r->w);
    free(e_dw);
    e_dw = expect_acc(r->dw, r->nw, 0.25f, 2.0f);
    snprintf(label, sizeof label, "conv c%d %s dw only (2nd accumulation)", i, p->name);
    sg_test_close(label, dw, e_dw, r->nw, ATOL, RTOL);
    if (r->b) {
        p->bwd(c, &r->s, NULL, NULL, db, r->wgt, r->x, r->w);
        float *e_db = expect_acc(r->db, OC, 0.25f, 2.0f);
        snprintf(label, sizeof label, "conv c%d %s db only (2nd accumulation)", i, p->name);
        sg_test_close(label, db, e_db, OC, ATOL, RTOL);
        free(e_db);
    }
    memset(dx, 0x7f, sizeof(float) * (size_t)r->nx);
    p->bwd(c, &r->s, dx, NULL, NULL, r->wgt, r->x, r->w);
    snprintf(label, sizeof label, "conv c%d %s dinp only (overwrites)", i, p->name);
    sg_test_close(label, dx, r->dx, r->nx, ATOL, RTOL);
    free(e_dw);
    free(out);
    free(dx);
    free(dw);
    free(db);
}

/* Finite differences of L = sum(out * wgt) through op_conv2d_forward. */
struct fd_user {
    struct sg_ctx *c;
    const struct conv_ref *r;
    float *out;
};

static double fd_loss(void *user, const float *x)
{
    SG_UNUSED(x); /* the perturbed tensor is one of r->x/w/b, perturbed in place */
    struct fd_user *u = user;
    op_conv2d_forward(u->c, &u->r->s, u->out, u->r->x, u->r->w, u->r->b);
    return sg_test_dot(u->out, u->r->wgt, u->r->ny);
}

static void check_fd(struct sg_ctx *c, struct conv_ref *r, int i)
{
    struct fd_user u = {c, r, filled(r->ny, 0.0f)};
    float *dx = filled(r->nx, 0.0f), *dw = filled(r->nw, 0.0f), *db = filled(r->s.OC, 0.0f);
    op_conv2d_backward(c, &r->s, dx, dw, r->b ? db : NULL, r->wgt, r->x, r->w);
    char label[64];
    /* The loss is linear in each argument, so the error is fp32 rounding of the forward
     * (~1e-7 * |L| / eps; observed <= 3e-5), hence atol 5e-4 at eps 1e-2. */
    snprintf(label, sizeof label, "conv c%d dinp", i);
    sg_test_fd(label, fd_loss, &u, r->x, r->nx, dx, 48, 1e-2f, 5e-4f, 1e-3f);
    snprintf(label, sizeof label, "conv c%d dw", i);
    sg_test_fd(label, fd_loss, &u, r->w, r->nw, dw, 48, 1e-2f, 5e-4f, 1e-3f);
    if (r->b) {
        snprintf(label, sizeof label, "conv c%d db", i);
        sg_test_fd(label, fd_loss, &u, r->b, r->s.OC, db, 48, 1e-2f, 5e-4f, 1e-3f);
    }
    free(u.out);
    free(dx);
    free(dw);
    free(db);
}

static void test_shape(void)
{
    struct sg_conv2d_shape s;
    sg_conv2d_shape_init(&s, 32, 3, 224, 224, 64, 7, 7, 2, 3, 1);
    sg_test_true("conv shape: 7x7/2 stem at 224 gives 112x112", s.OH == 112 && s.OW == 112);
    sg_conv2d_shape_init(&s, 2, 3, 10, 8, 5, 3, 3, 2, 1, 1);
    sg_test_true("conv shape: floored output 10x8 -> 5x4", s.OH == 5 && s.OW == 4);
    s = (struct sg_conv2d_shape){.B = 1,
                                 .C = 2,
                                 .H = 9,
                                 .W = 9,
                                 .OC = 2,
                                 .KH = 3,
                                 .KW = 1,
                                 .stride_h = 2,
                                 .stride_w = 1,
                                 .pad_h = 1,
                                 .pad_w = 0,
                                 .groups = 1};
    sg_conv2d_shape_finish(&s);
    sg_test_true("conv shape: non-square stride/pad by hand", s.OH == 5 && s.OW == 9);
}

int main(void)
{
    struct sg_ctx c;
    if (sg_ctx_init(&c, SG_DEVICE_CPU, 0, 2) != 0) {
        fprintf(stderr, "test_conv: %s\n", sg_last_error());
        return 1;
    }
    struct sg_st_file f;
    sg_test_ref_open(&f, "conv.safetensors");
    test_shape();
    for (int i = 0; i < NCASES; i++) {
        struct conv_ref r;
        ref_load(&r, &f, i);
        for (size_t p = 0; p < sizeof PATHS / sizeof PATHS[0]; p++)
            check_path(&c, &PATHS[p], &r, i);
        if (i == 0 || i == 2 || i == 3 || i == 6) check_fd(&c, &r, i);
        ref_free(&r);
    }
    sg_st_close(&f);
    sg_ctx_free(&c);
    return sg_test_summary("test_conv");
}
