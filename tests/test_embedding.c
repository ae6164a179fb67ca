/*
 * tests/test_embedding.c — embedding forward/backward (ops/embedding.h) against PyTorch
 * (F.embedding and the dense gradient of L = sum(out * wgt)), for both the _ref and the op_
 * paths: odd sizes with repeated ids (N=11, V=7, C=5), round sizes (64 ids into 32x48), and a
 * CLIP-sized vocabulary (V=49408, C=4, two padded 77-token sequences). Also: accumulation (+=),
 * finite differences, the fast path being bit-identical to the reference in both of its work
 * splits (column blocks, vocabulary ranges) at 1, 2 and 3 threads, and out-of-range ids aborting
 * with the offending value.
 * References: tests/ref/gen_embedding.py -> tests/ref/data/embedding.safetensors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/ctx.h"
#include "ops/embedding.h"
#include "tests/testutil.h"

/* Gradient sums of a few fp32 values: torch adds them in its own order. */
#define GRAD_ATOL 1e-6f
#define GRAD_RTOL 1e-5f

static int32_t *ref_ids(const struct sg_st_file *ref, const char *name, int n)
{
    int64_t *w = sg_test_ref_i64(ref, name, n);
    int32_t *ids = sg_xmalloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)w[i];
    free(w);
    return ids;
}

static float *zeros(size_t n)
{
    return sg_xcalloc(n, sizeof(float));
}

struct fd_emb {
    const int32_t *ids;
    const float *wgt;
    float *out;
    int N, V, C;
};

static double fd_loss(void *user, const float *table)
{
    struct fd_emb *a = user;
    embedding_forward_ref(a->out, a->ids, table, a->N, a->V, a->C);
    return sg_test_dot(a->out, a->wgt, (int64_t)a->N * a->C);
}

static const char *case_label(char *buf, size_t len, const char *key, int N, int V, int C,
                              const char *what)
{
    snprintf(buf, len, "%s %dx(%d,%d): %s", key, N, V, C, what);
    return buf;
}

/* A case with the whole table and gradient in the reference file. */
static void test_case(struct sg_ctx *c, const struct sg_st_file *ref, const char *key, int N, int V,
                      int C)
{
    char name[128], label[160];
    size_t nc = (size_t)N * C, vc = (size_t)V * C;
#define REF(suffix, n) (snprintf(name, sizeof name, "%s_" suffix, key), sg_test_ref(ref, name, n))
#define LABEL(what)    case_label(label, sizeof label, key, N, V, C, what)
    snprintf(name, sizeof name, "%s_ids", key);
    int32_t *ids = ref_ids(ref, name, N);
    float *table = REF("table", (int64_t)vc), *wgt = REF("wgt", (int64_t)nc);
    float *want_out = REF("out", (int64_t)nc), *want_dt = REF("dtable", (int64_t)vc);
    float *out = zeros(nc), *dt_ref = zeros(vc), *dt = zeros(vc), *twice = zeros(vc);

    embedding_forward_ref(out, ids, table, N, V, C);
    sg_test_close(LABEL("forward ref"), out, want_out, (int64_t)nc, 0, 0);
    memset(out, 0, nc * sizeof(float));
    op_embedding_forward(c, out, ids, table, N, V, C);
    sg_test_close(LABEL("forward op"), out, want_out, (int64_t)nc, 0, 0);

    embedding_backward_ref(dt_ref, wgt, ids, N, V, C);
    sg_test_close(LABEL("backward ref"), dt_ref, want_dt, (int64_t)vc, GRAD_ATOL, GRAD_RTOL);
    op_embedding_backward(c, dt, wgt, ids, N, V, C);
    sg_test_close(LABEL("backward op"), dt, want_dt, (int64_t)vc, GRAD_ATOL, GRAD_RTOL);
    sg_test_true(LABEL("backward op bit-identical to ref"),
                 memcmp(dt, dt_ref, vc * sizeof(float)) == 0);
    op_embedding_backward(c, dt, wgt, ids, N, V, C);
    for (size_t i = 0; i < vc; i++) twice[i] = 2.0f * want_dt[i];
    sg_test_close(LABEL("backward op accumulates (+=)"), dt, twice, (int64_t)vc, GRAD_ATOL,
                  GRAD_RTOL);

    struct fd_emb a = {ids, wgt, out, N, V, C};
    sg_test_fd(LABEL("finite differences"), fd_loss, &a, table, (int64_t)vc, dt_ref, 200, 1e-2f,
               1e-4f, 1e-3f);
#undef REF
#undef LABEL
    free(ids);
    sg_afree(table);
    sg_afree(wgt);
    sg_afree(want_out);
    sg_afree(want_dt);
    free(out);
    free(dt_ref);
    free(dt);
    free(twice);
}

/* Same formula as bigv_table in gen_embedding.py: exact in fp32. */
static float bigv_value(int v, int c)
{
    return (float)((v * 37 + c * 11) % 2001 - 1000) / 256.0f;
}

/* CLIP-sized vocabulary: only the touched gradient rows are in the reference file. */
static void test_bigv(struct sg_ctx *c, const struct sg_st_file *ref)
{
    const int N = 154, V = 49408, C = 4;
    size_t nc = (size_t)N * C, vc = (size_t)V * C;
    int32_t *ids = ref_ids(ref, "bigv_ids", N);
    const struct sg_st_entry *e = sg_st_find(ref, "bigv_uniq");
    SG_CHECK(e != NULL && e->ndim == 1, "reference tensor bigv_uniq missing");
    int64_t U = e->shape[0];
    int32_t *uniq = ref_ids(ref, "bigv_uniq", (int)U);
    float *wgt = sg_test_ref(ref, "bigv_wgt", (int64_t)nc);
    float *want_out = sg_test_ref(ref, "bigv_out", (int64_t)nc);
    float *want_rows = sg_test_ref(ref, "bigv_drows", U * C);
    float *table = sg_xmalloc(vc * sizeof(float)), *out = zeros(nc);
    float *dt_ref = zeros(vc), *dt = zeros(vc), *rows = zeros((size_t)U * C);
    for (int v = 0; v < V; v++)
        for (int j = 0; j < C; j++) table[(size_t)v * C + j] = bigv_value(v, j);

    embedding_forward_ref(out, ids, table, N, V, C);
    sg_test_close("bigv 154x(49408,4): forward ref", out, want_out, (int64_t)nc, 0, 0);
    memset(out, 0, nc * sizeof(float));
    op_embedding_forward(c, out, ids, table, N, V, C);
    sg_test_close("bigv 154x(49408,4): forward op", out, want_out, (int64_t)nc, 0, 0);

    embedding_backward_ref(dt_ref, wgt, ids, N, V, C);
    op_embedding_backward(c, dt, wgt, ids, N, V, C);
    float *paths[2] = {dt_ref, dt};
    const char *labels[2] = {"bigv: backward ref, touched rows", "bigv: backward op, touched rows"};
    for (int p = 0; p < 2; p++) {
        for (int64_t u = 0; u < U; u++)
            memcpy(rows + u * C, paths[p] + (size_t)uniq[u] * C, (size_t)C * sizeof(float));
        sg_test_close(labels[p], rows, want_rows, U * C, GRAD_ATOL, GRAD_RTOL);
        for (int64_t u = 0; u < U; u++)
            memset(paths[p] + (size_t)uniq[u] * C, 0, C * sizeof(float));
    }
    /* With the touched rows cleared, both gradients must be all zero. */
    int untouched = 1;
    for (size_t i = 0; i < vc; i++) untouched &= dt_ref[i] == 0.0f && dt[i] == 0.0f;
    sg_test_true("bigv: backward leaves the other 49k rows untouched", untouched);
    free(ids);
    free(uniq);
    sg_afree(wgt);
    sg_afree(want_out);
    sg_afree(want_rows);
    free(table);
    free(out);
    free(dt_ref);
    free(dt);
    free(rows);
}

/* Larger random problems that take the parallel paths: the fast backward must equal the
 * reference bit for bit (accumulating onto a non-zero gradient) whatever the thread count. */
static void test_parallel_paths(void)
{
    static const struct {
        int N, V, C;
        const char *what;
    } cases[] = {
        {3000, 100, 5, "vocabulary split (narrow rows)"},
        {3000, 37, 40, "column split, uneven blocks"},
        {2000, 500, 512, "column split, CLIP width"},
        {4096, 3, 64, "column split, 3 rows only"},
        {9000, 1, 7, "vocabulary split, one row (all ids equal)"},
    };
    static const int threads[] = {1, 2, 3};
    char label[160];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int N = cases[k].N, V = cases[k].V, C = cases[k].C;
        size_t nc = (size_t)N * C, vc = (size_t)V * C;
        int32_t *ids = sg_xmalloc(sizeof(int32_t) * (size_t)N);
        float *dout = sg_xmalloc(nc * sizeof(float)), *init = sg_xmalloc(vc * sizeof(float));
        float *dt_ref = sg_xmalloc(vc * sizeof(float)), *dt = sg_xmalloc(vc * sizeof(float));
        float *table = sg_xmalloc(vc * sizeof(float)), *out = sg_xmalloc(nc * sizeof(float));
        float *out_ref = sg_xmalloc(nc * sizeof(float));
        sg_test_fill(dout, (int64_t)nc, 100 + k, -1.0f, 1.0f);
        sg_test_fill(init, (int64_t)vc, 200 + k, -1.0f, 1.0f);
        sg_test_fill(table, (int64_t)vc, 300 + k, -1.0f, 1.0f);
        uint64_t s = 0x9e3779b97f4a7c15ull * (k + 1);
        for (int n = 0; n < N; n++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            ids[n] = (int32_t)(n % 5 == 0 ? 0 : (int)(s % (uint64_t)V)); /* many repeats of 0 */
        }
        memcpy(dt_ref, init, vc * sizeof(float));
        embedding_backward_ref(dt_ref, dout, ids, N, V, C);
        embedding_forward_ref(out_ref, ids, table, N, V, C);
        for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
            struct sg_ctx c;
            sg_ctx_init(&c, SG_DEVICE_CPU, 0, threads[t]);
            memcpy(dt, init, vc * sizeof(float));
            op_embedding_backward(&c, dt, dout, ids, N, V, C);
            op_embedding_forward(&c, out, ids, table, N, V, C);
            snprintf(label, sizeof label, "%dx(%d,%d) %s, %d threads: backward op == ref bitwise",
                     N, V, C, cases[k].what, threads[t]);
            sg_test_true(label, memcmp(dt, dt_ref, vc * sizeof(float)) == 0 &&
                                    memcmp(out, out_ref, nc * sizeof(float)) == 0);
            sg_ctx_free(&c);
        }
        free(ids);
        free(dout);
        free(init);
        free(dt_ref);
        free(dt);
        free(table);
        free(out);
        free(out_ref);
    }
}

static void bad_id_forward(void)
{
    struct sg_ctx c;
    sg_ctx_init(&c, SG_DEVICE_CPU, 0, 0);
    int32_t ids[4] = {0, 6, 2, 7};
    float table[7 * 3] = {0}, out[4 * 3];
    op_embedding_forward(&c, out, ids, table, 4, 7, 3);
}

static void bad_id_backward(void)
{
    int32_t ids[3] = {1, -2, 0};
    float dtable[7 * 3] = {0}, dout[3 * 3] = {0};
    embedding_backward_ref(dtable, dout, ids, 3, 7, 3);
}

int main(void)
{
    struct sg_ctx c;
    if (sg_ctx_init(&c, SG_DEVICE_CPU, 0, 0) != 0) {
        fprintf(stderr, "test_embedding: %s\n", sg_last_error());
        return 1;
    }
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "embedding.safetensors");
    test_case(&c, &ref, "small", 11, 7, 5);
    test_case(&c, &ref, "round", 64, 32, 48);
    test_bigv(&c, &ref);
    sg_st_close(&ref);
    test_parallel_paths();
    sg_ctx_init(&c, SG_DEVICE_CPU, 0, 0);
    sg_test_expect_abort("out-of-range id aborts with its value (forward op)", bad_id_forward,
                         "ids[3] = 7 is outside [0, V=7)");
    sg_test_expect_abort("negative id aborts with its value (backward ref)", bad_id_backward,
                         "ids[1] = -2 is outside [0, V=7)");
    sg_ctx_free(&c);
    return sg_test_summary("test_embedding");
}
