/*
 * losses/fastclip.c — FastCLIP-v3 / RGCL-g (see fastclip.h): a caller-owned global temperature
 * and its gradient on top of the shared bimodal GCL engine (losses/gcl_bimodal.c).
 */
#include "losses/fastclip.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

static const char WHO[] = "fastclip";

int fastclip_init(struct fastclip *l, const struct fastclip_config *cfg)
{
    SG_CHECK(l && cfg, "NULL loss or config");
    memset(l, 0, sizeof *l);
    if (!isfinite(cfg->rho)) return sg_err("fastclip: rho must be finite");
    if (gcl_bi_sched_init(&l->sched, WHO, cfg->gamma_schedule, cfg->gamma,
                          cfg->gamma_decay_epochs) != 0)
        return -1;
    if (gcl_bi_state_init(&l->st, cfg->N) != 0) return -1;
    l->cfg = *cfg;
    gcl_bi_ws_init(&l->ws);
    return 0;
}

static void dev_free(struct fastclip *l);

void fastclip_free(struct fastclip *l)
{
    dev_free(l);
    free(l->dist_buf);
    gcl_bi_state_free(&l->st);
    gcl_bi_ws_free(&l->ws);
    memset(l, 0, sizeof *l);
}

int fastclip_set_epoch(struct fastclip *l, int64_t epoch)
{
    return gcl_bi_sched_set_epoch(&l->sched, WHO, epoch);
}

static int check_tau(float tau)
{
    if (!(tau > 0.0f && isfinite(tau)))
        return sg_err("fastclip: tau = %g must be a finite positive temperature", (double)tau);
    return 0;
}

static int begin(struct fastclip *l, float tau, const float *zi, const float *zt,
                 const int64_t *idx, int B, int d, int nthreads, float *dzi, float *dzt,
                 const struct fastclip_out *out)
{
    SG_CHECK(l && zi && zt && idx && dzi && dzt && out, "NULL argument");
    if (check_tau(tau) != 0) return -1;
    if (gcl_bi_begin(&l->ws, WHO, l->st.N, zi, zt, idx, B, d, nthreads) != 0) return -1;
    for (int i = 0; i < B; i++) {
        l->ws.rows.tau_img[i] = tau;
        l->ws.rows.tau_txt[i] = tau;
    }
    return 0;
}

/* loss, objective, dtau, dlog_scale from the step's per-anchor rows (host; shared by the CPU and
 * CUDA paths). */
static void finish(const struct fastclip *l, const struct gcl_bi_rows *r, float tau, int B,
                   struct fastclip_out *out)
{
    double logU = 0.0, pa = 0.0;
    for (int i = 0; i < B; i++) {
        logU += (double)r->logU_img[i] + r->logU_txt[i];
        pa += (double)r->pa_img[i] + r->pa_txt[i];
    }
    double rho = l->cfg.rho, dtau = rho + (logU - pa) / (2.0 * B);
    out->loss = (float)gcl_bi_surrogate(r, B);
    out->objective = (float)((double)tau * logU / (2.0 * B) + rho * tau);
    out->gamma = l->sched.gamma_cur;
    out->dtau = (float)dtau;
    out->dlog_scale = (float)(-(double)tau * dtau);
}

int fastclip_step_cpu(struct sg_ctx *c, struct fastclip *l, float tau, const float *zi,
                      const float *zt, const int64_t *idx, int B, int d, float *dzi, float *dzt,
                      struct fastclip_out *out)
{
    if (begin(l, tau, zi, zt, idx, B, d, c->nthreads, dzi, dzt, out) != 0) return -1;
    gcl_bi_step_cpu(c, &l->ws, &l->st, zi, zt, idx, B, d, l->sched.gamma_cur, dzi, dzt);
    finish(l, &l->ws.rows, tau, B, out);
    return 0;
}

int fastclip_step_ref(struct fastclip *l, float tau, const float *zi, const float *zt,
                      const int64_t *idx, int B, int d, float *dzi, float *dzt,
                      struct fastclip_out *out)
{
    if (begin(l, tau, zi, zt, idx, B, d, 1, dzi, dzt, out) != 0) return -1;
    gcl_bi_step_ref(&l->ws, &l->st, zi, zt, idx, B, d, l->sched.gamma_cur, dzi, dzt);
    finish(l, &l->ws.rows, tau, B, out);
    return 0;
}

#ifdef SG_CUDA
static void dev_free(struct fastclip *l)
{
    gcl_bi_dev_free(&l->dev);
}

int fastclip_step_cuda(struct sg_ctx *c, struct fastclip *l, float tau, const float *zi,
                       const float *zt, const int64_t *idx, int B, int d, float *dzi, float *dzt,
                       struct fastclip_out *out)
{
    SG_CHECK(l && zi && zt && idx && dzi && dzt && out, "NULL argument");
    if (check_tau(tau) != 0) return -1;
    if (B < 2 || d < 1)
        return sg_err("fastclip: need B >= 2 and d >= 1 (got B = %d, d = %d)", B, d);
    if (gcl_bi_dev_get(&l->dev, c, &l->st, B, WHO) != 0) return -1;
    for (int i = 0; i < B; i++) l->dev->host_ti[i] = l->dev->host_tt[i] = tau;
    struct gcl_bi_rows rows;
    if (gcl_bi_dev_step(l->dev, zi, zt, idx, B, d, l->sched.gamma_cur, dzi, dzt, &rows, WHO) != 0)
        return -1;
    finish(l, &rows, tau, B, out);
    return 0;
}
#else
static void dev_free(struct fastclip *l)
{
    SG_UNUSED(l);
}
#endif

int fastclip_step(struct sg_ctx *c, struct fastclip *l, float tau, const float *zi, const float *zt,
                  const int64_t *idx, int B, int d, float *dzi, float *dzt,
                  struct fastclip_out *out)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        return fastclip_step_cpu(c, l, tau, zi, zt, idx, B, d, dzi, dzt, out);
#ifdef SG_CUDA
    case SG_DEVICE_CUDA:
        return fastclip_step_cuda(c, l, tau, zi, zt, idx, B, d, dzi, dzt, out);
#endif
    default:
        SG_PANIC("fastclip_step: device %d not supported by this build", (int)c->dev);
    }
}

size_t fastclip_workspace_bytes(const struct fastclip *l)
{
    return l->ws.bytes;
}

/* The state to save: the host arrays, refreshed from the GPU when the device copy is the
 * authoritative one. */
static void sync_host_state(const struct fastclip *l)
{
#ifdef SG_CUDA
    gcl_bi_dev_download_state(l->dev, (struct gcl_bi_state *)&l->st);
#else
    SG_UNUSED(l);
#endif
}

int fastclip_state_save(const struct fastclip *l, struct sg_st_writer *w, const char *prefix)
{
    sync_host_state(l);
    gcl_bi_state_save(&l->st, w, prefix);
    gcl_bi_sched_save(&l->sched, w, prefix);
    return 0;
}

int fastclip_state_load(struct fastclip *l, const struct sg_st_file *f, const char *prefix)
{
    if (gcl_bi_state_check(&l->st, f, prefix) != 0 || gcl_bi_sched_check(f, prefix) != 0)
        return sg_err_prefix("fastclip state: ");
    gcl_bi_state_copy_in(&l->st, f, prefix);
    gcl_bi_sched_copy_in(&l->sched, f, prefix);
#ifdef SG_CUDA
    return gcl_bi_dev_upload_state(l->dev, &l->st);
#endif
    return 0;
}
