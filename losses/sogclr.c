/*
 * losses/sogclr.c — two-way SogCLR (see sogclr.h): a global constant tau on top of the shared
 * bimodal GCL engine (losses/gcl_bimodal.c).
 */
#include "losses/sogclr.h"

#include <math.h>
#include <stdio.h>
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

void sogclr_free(struct sogclr *l)
{
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

static void finish(const struct sogclr *l, int B, struct sogclr_out *out)
{
    if (!out) return;
    out->loss = (float)gcl_bi_surrogate(&l->ws.rows, B);
    out->objective = (float)gcl_bi_objective(&l->ws.rows, B);
    out->gamma = l->sched.gamma_cur;
}

int sogclr_step_cpu(struct sg_ctx *c, struct sogclr *l, const float *zi, const float *zt,
                    const int64_t *idx, int B, int d, float *dzi, float *dzt,
                    struct sogclr_out *out)
{
    if (begin(l, zi, zt, idx, B, d, c->nthreads, dzi, dzt) != 0) return -1;
    gcl_bi_step_cpu(c, &l->ws, &l->st, zi, zt, idx, B, d, l->sched.gamma_cur, dzi, dzt);
    finish(l, B, out);
    return 0;
}

int sogclr_step_ref(struct sogclr *l, const float *zi, const float *zt, const int64_t *idx, int B,
                    int d, float *dzi, float *dzt, struct sogclr_out *out)
{
    if (begin(l, zi, zt, idx, B, d, 1, dzi, dzt) != 0) return -1;
    gcl_bi_step_ref(&l->ws, &l->st, zi, zt, idx, B, d, l->sched.gamma_cur, dzi, dzt);
    finish(l, B, out);
    return 0;
}

int sogclr_step(struct sg_ctx *c, struct sogclr *l, const float *zi, const float *zt,
                const int64_t *idx, int B, int d, float *dzi, float *dzt, struct sogclr_out *out)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        return sogclr_step_cpu(c, l, zi, zt, idx, B, d, dzi, dzt, out);
    default:
        SG_PANIC("sogclr_step not implemented on CUDA yet");
    }
}

size_t sogclr_workspace_bytes(const struct sogclr *l)
{
    return l->ws.bytes;
}

int sogclr_state_save(const struct sogclr *l, struct sg_st_writer *w, const char *prefix)
{
    char name[256];
    int64_t one[1] = {1};
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
    return 0;
}
