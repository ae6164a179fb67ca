/*
 * losses/sogclr.c — two-way SogCLR (see sogclr.h): a global constant tau on top of the shared
 * bimodal GCL engine (losses/gcl_bimodal.c).
 */
#include "losses/sogclr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

static const char WHO[] = "sogclr";

int sogclr_init(struct sogclr *l, const struct sogclr_config *cfg)
{
    SG_CHECK(l && cfg, "NULL loss or config");
    memset(l, 0, sizeof *l);
    if (!(cfg->tau > 0.0f && isfinite(cfg->tau)))
        return sg_err("sogclr: tau = %g must be a finite positive temperature", (double)cfg->tau);
    if (gcl_bi_sched_init(&l->sched, WHO, cfg->gamma_schedule, cfg->gamma,
                          cfg->gamma_decay_epochs) != 0)
        return -1;
    if (gcl_bi_state_init(&l->st, cfg->N) != 0) return -1;
    l->cfg = *cfg;
    gcl_bi_ws_init(&l->ws);
    return 0;
}

static void dev_free(struct sogclr *l);

void sogclr_free(struct sogclr *l)
{
    dev_free(l);
    free(l->dist_buf);
    gcl_bi_state_free(&l->st);
    gcl_bi_ws_free(&l->ws);
    memset(l, 0, sizeof *l);
}

int sogclr_set_epoch(struct sogclr *l, int64_t epoch)
{
    return gcl_bi_sched_set_epoch(&l->sched, WHO, epoch);
}

static int begin(struct sogclr *l, const float *zi, const float *zt, const int64_t *idx, int B,
                 int d, int nthreads, float *dzi, float *dzt)
{
    SG_CHECK(l && zi && zt && idx && dzi && dzt, "NULL argument");
    if (gcl_bi_begin(&l->ws, WHO, l->st.N, zi, zt, idx, B, d, nthreads) != 0) return -1;
    for (int i = 0; i < B; i++) {
        l->ws.rows.tau_img[i] = l->cfg.tau;
        l->ws.rows.tau_txt[i] = l->cfg.tau;
    }
    return 0;
}

/* Output values from the per-anchor rows of the step (workspace rows on the CPU, downloaded
 * rows on CUDA). */
static void finish(const struct sogclr *l, const struct gcl_bi_rows *rows, int B,
                   struct sogclr_out *out)
{
    if (!out) return;
    out->loss = (float)gcl_bi_surrogate(rows, B);
    out->objective = (float)gcl_bi_objective(rows, B);
    out->gamma = l->sched.gamma_cur;
}

int sogclr_step_cpu(struct sg_ctx *c, struct sogclr *l, const float *zi, const float *zt,
                    const int64_t *idx, int B, int d, float *dzi, float *dzt,
                    struct sogclr_out *out)
{
    if (begin(l, zi, zt, idx, B, d, c->nthreads, dzi, dzt) != 0) return -1;
    gcl_bi_step_cpu(c, &l->ws, &l->st, zi, zt, idx, B, d, l->sched.gamma_cur, dzi, dzt);
    finish(l, &l->ws.rows, B, out);
    return 0;
}

int sogclr_step_ref(struct sogclr *l, const float *zi, const float *zt, const int64_t *idx, int B,
                    int d, float *dzi, float *dzt, struct sogclr_out *out)
{
    if (begin(l, zi, zt, idx, B, d, 1, dzi, dzt) != 0) return -1;
    gcl_bi_step_ref(&l->ws, &l->st, zi, zt, idx, B, d, l->sched.gamma_cur, dzi, dzt);
    finish(l, &l->ws.rows, B, out);
    return 0;
}

#ifdef SG_CUDA
static void dev_free(struct sogclr *l)
{
    gcl_bi_dev_free(&l->dev);
}

int sogclr_step_cuda(struct sg_ctx *c, struct sogclr *l, const float *zi, const float *zt,
                     const int64_t *idx, int B, int d, float *dzi, float *dzt,
                     struct sogclr_out *out)
{
    SG_CHECK(l && zi && zt && idx && dzi && dzt, "NULL argument");
    if (B < 2 || d < 1) return sg_err("sogclr: need B >= 2 and d >= 1 (got B = %d, d = %d)", B, d);
    if (gcl_bi_dev_get(&l->dev, c, &l->st, B, WHO) != 0) return -1;
    for (int i = 0; i < B; i++) l->dev->host_ti[i] = l->dev->host_tt[i] = l->cfg.tau;
    struct gcl_bi_rows rows;
    if (gcl_bi_dev_step(l->dev, zi, zt, idx, B, d, l->sched.gamma_cur, dzi, dzt, out ? &rows : NULL,
                        WHO) != 0)
        return -1;
    finish(l, &rows, B, out);
    return 0;
}
#else
static void dev_free(struct sogclr *l)
{
    SG_UNUSED(l);
}
#endif

int sogclr_step(struct sg_ctx *c, struct sogclr *l, const float *zi, const float *zt,
                const int64_t *idx, int B, int d, float *dzi, float *dzt, struct sogclr_out *out)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        return sogclr_step_cpu(c, l, zi, zt, idx, B, d, dzi, dzt, out);
#ifdef SG_CUDA
    case SG_DEVICE_CUDA:
        return sogclr_step_cuda(c, l, zi, zt, idx, B, d, dzi, dzt, out);
#endif
    default:
        SG_PANIC("sogclr_step: device %d not supported by this build", (int)c->dev);
    }
}

size_t sogclr_workspace_bytes(const struct sogclr *l)
{
    return l->ws.bytes;
}

/* The state to save: the host arrays, refreshed from the GPU when the device copy is the
 * authoritative one. */
static void sync_host_state(const struct sogclr *l)
{
#ifdef SG_CUDA
    gcl_bi_dev_download_state(l->dev, (struct gcl_bi_state *)&l->st);
#else
    SG_UNUSED(l);
#endif
}

int sogclr_state_save(const struct sogclr *l, struct sg_st_writer *w, const char *prefix)
{
    char name[256];
    int64_t one[1] = {1};
    sync_host_state(l);
    gcl_bi_state_save(&l->st, w, prefix);
    gcl_bi_sched_save(&l->sched, w, prefix);
    snprintf(name, sizeof name, "%stau", prefix ? prefix : "");
    sg_stw_add_f32(w, name, 1, one, &l->cfg.tau);
    return 0;
}

int sogclr_state_load(struct sogclr *l, const struct sg_st_file *f, const char *prefix)
{
    if (gcl_bi_state_check(&l->st, f, prefix) != 0 || gcl_bi_sched_check(f, prefix) != 0)
        return sg_err_prefix("sogclr state: ");
    gcl_bi_state_copy_in(&l->st, f, prefix);
    gcl_bi_sched_copy_in(&l->sched, f, prefix);
#ifdef SG_CUDA
    return gcl_bi_dev_upload_state(l->dev, &l->st);
#endif
    return 0;
}
