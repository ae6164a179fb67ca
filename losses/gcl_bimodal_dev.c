/* losses/gcl_bimodal_dev.c — see gcl_bimodal_dev.h (compiled in CUDA builds only). */
#include "losses/gcl_bimodal_dev.h"

#include <stdlib.h>

#include "core/common.h"

static void buffers_free(struct gcl_bi_dev *g)
{
    sg_dev_free(g->ctx, g->tau_img);
    sg_dev_free(g->ctx, g->tau_txt);
    sg_dev_free(g->ctx, g->rows);
}

void gcl_bi_dev_free(struct gcl_bi_dev **pg)
{
    struct gcl_bi_dev *g = *pg;
    if (!g) return;
    gcl_bi_cuda_free(g->ctx, &g->eng);
    buffers_free(g);
    free(g->host_rows);
    free(g->host_ti);
    free(g->host_tt);
    free(g->host_idx);
    free(g);
    *pg = NULL;
}

static void grow(struct gcl_bi_dev *g, int B)
{
    size_t n = (size_t)B;
    buffers_free(g);
    g->tau_img = sg_dev_alloc(g->ctx, sizeof(float) * n);
    g->tau_txt = sg_dev_alloc(g->ctx, sizeof(float) * n);
    g->rows = sg_dev_alloc(g->ctx, sizeof(float) * 4 * n);
    g->host_rows = sg_xrealloc(g->host_rows, sizeof(float) * 4 * n);
    g->host_ti = sg_xrealloc(g->host_ti, sizeof(float) * n);
    g->host_tt = sg_xrealloc(g->host_tt, sizeof(float) * n);
    g->host_idx = sg_xrealloc(g->host_idx, sizeof(int64_t) * n);
    g->cap = B;
}

int gcl_bi_dev_get(struct gcl_bi_dev **pg, struct sg_ctx *c, const struct gcl_bi_state *st, int B,
                   const char *who)
{
    if (!*pg) {
        struct gcl_bi_dev *g = sg_xcalloc(1, sizeof *g);
        g->ctx = c;
        if (gcl_bi_cuda_init(c, &g->eng, st->N) != 0 ||
            gcl_bi_cuda_state_upload(c, &g->eng, st) != 0) {
            free(g);
            return -1;
        }
        *pg = g;
    }
    struct gcl_bi_dev *g = *pg;
    SG_CHECK(g->ctx == c, "a %s loss is bound to the CUDA context of its first step", who);
    if (B > g->cap) grow(g, B);
    return 0;
}

int gcl_bi_dev_step(struct gcl_bi_dev *g, const float *zi, const float *zt, const int64_t *idx,
                    int B, int d, float gamma, float *dzi, float *dzt, struct gcl_bi_rows *rows,
                    const char *who)
{
    struct sg_ctx *c = g->ctx;
    sg_memcpy_h2d(c, g->tau_img, g->host_ti, sizeof(float) * (size_t)B);
    sg_memcpy_h2d(c, g->tau_txt, g->host_tt, sizeof(float) * (size_t)B);
    if (gcl_bi_cuda_step(c, &g->eng, g->tau_img, g->tau_txt, zi, zt, idx, B, d, gamma, dzi, dzt,
                         rows ? g->rows : NULL) != 0)
        return sg_err_prefix("%s: ", who);
    if (!rows) return 0;
    sg_memcpy_d2h(c, g->host_rows, g->rows, sizeof(float) * 4 * (size_t)B);
    float *r = g->host_rows;
    *rows = (struct gcl_bi_rows){g->host_ti, g->host_tt, r, r + B, r + 2 * B, r + 3 * B};
    return 0;
}

void gcl_bi_dev_download_state(struct gcl_bi_dev *g, struct gcl_bi_state *st)
{
    if (g) gcl_bi_cuda_state_download(g->ctx, &g->eng, st);
}

int gcl_bi_dev_upload_state(struct gcl_bi_dev *g, const struct gcl_bi_state *st)
{
    return g ? gcl_bi_cuda_state_upload(g->ctx, &g->eng, st) : 0;
}
