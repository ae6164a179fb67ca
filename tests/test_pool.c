/*
 * tests/test_pool.c — maxpool2d (values and torch's argmax indices), avgpool2d
 * (count_include_pad) and adaptive_avgpool2d, forward and backward, against PyTorch
 * (tests/ref/gen_pool.py -> tests/ref/data/pool.safetensors), for both the _ref loops and the
 * public op_* path (CPU context). Cases: odd and round shapes, stride 1 (overlapping windows),
 * no padding with floored output, all-negative inputs (padding acts as -inf), ties, adaptive
 * windows that overlap or repeat. Also: dinp is overwritten, and central finite differences.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "ops/pool.h"
#include "tests/testutil.h"

/* Must match the case tables in tests/ref/gen_pool.py. */
struct win_case {
    int B, C, H, W, k, stride, pad;
};
static const struct win_case MAX_CASES[] = {
    {2, 3, 9, 7, 3, 2, 1},  {2, 4, 8, 8, 2, 2, 0},   {2, 3, 7, 9, 3, 1, 1},
    {1, 2, 10, 9, 3, 2, 0}, {2, 2, 11, 11, 3, 2, 1}, {2, 2, 9, 8, 3, 2, 1},
};
static const struct win_case AVG_CASES[] = {
    {2, 3, 9, 7, 3, 2, 1}, {2, 4, 8, 8, 2, 2, 0}, {2, 3, 7, 9, 3, 1, 1}, {1, 2, 10, 9, 3, 2, 0}};
struct ada_case {
    int B, C, H, W, OH, OW;
};
static const struct ada_case ADA_CASES[] = {
    {2, 3, 7, 7, 1, 1}, {2, 3, 9, 7, 4, 3}, {2, 2, 5, 6, 7, 8}, {2, 4, 6, 6, 2, 3}};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Pool outputs are means or copies of O(1) inputs: fp32 rounding only. */
#define ATOL 1e-6f
#define RTOL 1e-5f

enum kind { MAXP, AVGP, ADAP };
static const char *KIND_NAME[] = {"maxpool", "avgpool", "adaptive_avgpool"};

/* One case, whatever the kind: shapes plus reference tensors. */
struct pcase {
    enum kind kind;
    int i, use_ref; /* use_ref: run the _ref path, else the op_ path */
    struct sg_pool2d_shape s;
    int B, C, H, W, OH, OW;
    int64_t nx, ny;
    float *x, *wgt, *out, *dx, *idx;
};

static void pc_load(struct pcase *pc, const struct sg_st_file *f, enum kind kind, int i)
{
    memset(pc, 0, sizeof *pc);
    pc->kind = kind;
    pc->i = i;
    if (kind == ADAP) {
        const struct ada_case *a = &ADA_CASES[i];
        pc->B = a->B, pc->C = a->C, pc->H = a->H, pc->W = a->W, pc->OH = a->OH, pc->OW = a->OW;
    } else {
        const struct win_case *w = kind == MAXP ? &MAX_CASES[i] : &AVG_CASES[i];
        sg_pool2d_shape_init(&pc->s, w->B, w->C, w->H, w->W, w->k, w->stride, w->pad);
        pc->B = w->B, pc->C = w->C, pc->H = w->H, pc->W = w->W, pc->OH = pc->s.OH,
        pc->OW = pc->s.OW;
    }
    pc->nx = (int64_t)pc->B * pc->C * pc->H * pc->W;
    pc->ny = (int64_t)pc->B * pc->C * pc->OH * pc->OW;
    const char *pre = kind == MAXP ? "mp" : kind == AVGP ? "ap" : "ad";
    char name[32];
#define LOAD(field, tag, n)                                                                        \
    (snprintf(name, sizeof name, "%s%d_%s", pre, i, tag), pc->field = sg_test_ref(f, name, n))
    LOAD(x, "x", pc->nx);
    LOAD(wgt, "wgt", pc->ny);
    LOAD(out, "out", pc->ny);
    LOAD(dx, "dx", pc->nx);
    if (kind == MAXP) LOAD(idx, "idx", pc->ny); /* int32 indices, read as exact floats */
#undef LOAD
}

static void pc_free(struct pcase *pc)
{
    sg_afree(pc->x);
    sg_afree(pc->wgt);
    sg_afree(pc->out);
    sg_afree(pc->dx);
    sg_afree(pc->idx);
}

static void run_fwd(struct sg_ctx *c, const struct pcase *pc, float *out, int32_t *argmax,
                    const float *x)
{
    const struct sg_pool2d_shape *s = &pc->s;
    switch (pc->kind) {
    case MAXP:
        if (pc->use_ref)
            maxpool2d_forward_ref(s, out, argmax, x);
        else
            op_maxpool2d_forward(c, s, out, argmax, x);
        break;
    case AVGP:
        if (pc->use_ref)
            avgpool2d_forward_ref(s, out, x);
        else
            op_avgpool2d_forward(c, s, out, x);
        break;
    case ADAP:
        if (pc->use_ref)
            adaptive_avgpool2d_forward_ref(out, x, pc->B, pc->C, pc->H, pc->W, pc->OH, pc->OW);
        else
            op_adaptive_avgpool2d_forward(c, out, x, pc->B, pc->C, pc->H, pc->W, pc->OH, pc->OW);
        break;
    }
}

static void run_bwd(struct sg_ctx *c, const struct pcase *pc, float *dx, const float *dy,
                    const int32_t *argmax)
{
    const struct sg_pool2d_shape *s = &pc->s;
    switch (pc->kind) {
    case MAXP:
        if (pc->use_ref)
            maxpool2d_backward_ref(s, dx, dy, argmax);
        else
            op_maxpool2d_backward(c, s, dx, dy, argmax);
        break;
    case AVGP:
        if (pc->use_ref)
            avgpool2d_backward_ref(s, dx, dy);
        else
            op_avgpool2d_backward(c, s, dx, dy);
        break;
    case ADAP:
        if (pc->use_ref)
            adaptive_avgpool2d_backward_ref(dx, dy, pc->B, pc->C, pc->H, pc->W, pc->OH, pc->OW);
        else
            op_adaptive_avgpool2d_backward(c, dx, dy, pc->B, pc->C, pc->H, pc->W, pc->OH, pc->OW);
        break;
    }
}

static void check_case(struct sg_ctx *c, struct pcase *pc)
{
    char label[96];
    const char *path = pc->use_ref ? "ref" : "op";
    float *out = sg_xmalloc(sizeof(float) * (size_t)pc->ny);
    float *dx = sg_xmalloc(sizeof(float) * (size_t)pc->nx);
    int32_t *argmax = sg_xmalloc(sizeof(int32_t) * (size_t)pc->ny);
    for (int64_t i = 0; i < pc->ny; i++) out[i] = 99.0f, argmax[i] = -1;
    for (int64_t i = 0; i < pc->nx; i++) dx[i] = 77.0f; /* must be overwritten */
    run_fwd(c, pc, out, argmax, pc->x);
    snprintf(label, sizeof label, "%s%d %s forward", KIND_NAME[pc->kind], pc->i, path);
    sg_test_close(label, out, pc->out, pc->ny, ATOL, RTOL);
    if (pc->kind == MAXP) {
        float *fa = sg_xmalloc(sizeof(float) * (size_t)pc->ny);
        for (int64_t i = 0; i < pc->ny; i++) fa[i] = (float)argmax[i];
        snprintf(label, sizeof label, "%s%d %s argmax == torch indices", KIND_NAME[pc->kind], pc->i,
                 path);
        sg_test_close(label, fa, pc->idx, pc->ny, 0.0f, 0.0f);
        free(fa);
    }
    run_bwd(c, pc, dx, pc->wgt, argmax);
    snprintf(label, sizeof label, "%s%d %s dinp", KIND_NAME[pc->kind], pc->i, path);
    sg_test_close(label, dx, pc->dx, pc->nx, ATOL, RTOL);
    free(out);
    free(dx);
    free(argmax);
}

struct fd_user {
    struct sg_ctx *c;
    const struct pcase *pc;
    float *out;
    int32_t *argmax;
};

static double fd_loss(void *user, const float *x)
{
    struct fd_user *u = user;
    run_fwd(u->c, u->pc, u->out, u->argmax, x);
    return sg_test_dot(u->out, u->pc->wgt, u->pc->ny);
}

/* Finite differences through the op_ path (random inputs only: max has kinks at ties). */
static void check_fd(struct sg_ctx *c, struct pcase *pc)
{
    struct fd_user u = {c, pc, sg_xmalloc(sizeof(float) * (size_t)pc->ny),
                        sg_xmalloc(sizeof(int32_t) * (size_t)pc->ny)};
    float *dx = sg_xmalloc(sizeof(float) * (size_t)pc->nx);
    run_fwd(c, pc, u.out, u.argmax, pc->x);
    run_bwd(c, pc, dx, pc->wgt, u.argmax);
    char label[64];
    snprintf(label, sizeof label, "%s%d dinp", KIND_NAME[pc->kind], pc->i);
    /* eps 1e-3 stays below the gap between distinct random values in a window (so the argmax
     * does not flip); the loss is piecewise linear, error is fp32 rounding / eps. */
    sg_test_fd(label, fd_loss, &u, pc->x, pc->nx, dx, 64, 1e-3f, 2e-3f, 1e-3f);
    free(u.out);
    free(u.argmax);
    free(dx);
}

static void test_shape(void)
{
    struct sg_pool2d_shape s;
    sg_pool2d_shape_init(&s, 32, 64, 112, 112, 3, 2, 1);
    sg_test_true("pool shape: 3x3/2 pad 1 on 112 gives 56", s.OH == 56 && s.OW == 56);
    sg_pool2d_shape_init(&s, 1, 2, 10, 9, 3, 2, 0);
    sg_test_true("pool shape: floored output 10x9 -> 4x4", s.OH == 4 && s.OW == 4);
}

int main(void)
{
    struct sg_ctx c;
    if (sg_ctx_init(&c, SG_DEVICE_CPU, 0, 2) != 0) {
        fprintf(stderr, "test_pool: %s\n", sg_last_error());
        return 1;
    }
    struct sg_st_file f;
    sg_test_ref_open(&f, "pool.safetensors");
    test_shape();
    const int counts[] = {COUNT(MAX_CASES), COUNT(AVG_CASES), COUNT(ADA_CASES)};
    for (int k = MAXP; k <= ADAP; k++)
        for (int i = 0; i < counts[k]; i++) {
            struct pcase pc;
            pc_load(&pc, &f, (enum kind)k, i);
            for (pc.use_ref = 1; pc.use_ref >= 0; pc.use_ref--) check_case(&c, &pc);
            pc.use_ref = 0;
            if (!(k == MAXP && i == 5)) check_fd(&c, &pc); /* skip the tie case: kinks */
            pc_free(&pc);
        }
    sg_st_close(&f);
    sg_ctx_free(&c);
    return sg_test_summary("test_pool");
}
