/*
 * losses/isogclr.c — bimodal iSogCLR (see isogclr.h): per-sample temperatures and their momentum
 * update on top of the shared bimodal GCL engine (losses/gcl_bimodal.c).
 */
#include "losses/isogclr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

static const char WHO[] = "isogclr";

static int check_config(const struct isogclr_config *c)
{
    if (!(c->tau_min > 0.0f && c->tau_max >= c->tau_min && isfinite(c->tau_max)))
        return sg_err("isogclr: need 0 < tau_min <= tau_max (got %g, %g)", (double)c->tau_min,
                      (double)c->tau_max);
    if (!(c->tau_init >= c->tau_min && c->tau_init <= c->tau_max))
        return sg_err("isogclr: tau_init = %g outside [tau_min, tau_max] = [%g, %g]",
                      (double)c->tau_init, (double)c->tau_min, (double)c->tau_max);
    if (!(c->eta >= 0.0f && isfinite(c->eta)))
        return sg_err("isogclr: eta = %g must be finite and >= 0", (double)c->eta);
    if (!(c->beta >= 0.0f && c->beta <= 1.0f))
        return sg_err("isogclr: beta = %g must be in [0, 1]", (double)c->beta);
    if (!isfinite(c->rho)) return sg_err("isogclr: rho must be finite");
    return 0;
}

int isogclr_init(struct isogclr *l, const struct isogclr_config *cfg)
{
    SG_CHECK(l && cfg, "NULL loss or config");
    memset(l, 0, sizeof *l);
    if (check_config(cfg) != 0) return -1;
    if (gcl_bi_sched_init(&l->sched, WHO, cfg->gamma_schedule, cfg->gamma,
                          cfg->gamma_decay_epochs) != 0)
        return -1;
    if (gcl_bi_state_init(&l->st, cfg->N) != 0) return -1;
    l->cfg = *cfg;
    size_t n = (size_t)cfg->N;
    l->tau_img = sg_xmalloc(sizeof(float) * n);
    l->tau_txt = sg_xmalloc(sizeof(float) * n);
    l->m_img = sg_xcalloc(n, sizeof(float));
    l->m_txt = sg_xcalloc(n, sizeof(float));
    for (size_t k = 0; k < n; k++) l->tau_img[k] = l->tau_txt[k] = cfg->tau_init;
    gcl_bi_ws_init(&l->ws);
    return 0;
}

static void dev_free(struct isogclr *l);

void isogclr_free(struct isogclr *l)
{
    dev_free(l);
    gcl_bi_state_free(&l->st);
    gcl_bi_ws_free(&l->ws);
    free(l->tau_img);
    free(l->tau_txt);
    free(l->m_img);
    free(l->m_txt);
    free(l->dist_buf);
    memset(l, 0, sizeof *l);
}

int isogclr_set_epoch(struct isogclr *l, int64_t epoch)
{
    return gcl_bi_sched_set_epoch(&l->sched, WHO, epoch);
}

static int begin(struct isogclr *l, const float *zi, const float *zt, const int64_t *idx, int B,
                 int d, int nthreads, float *dzi, float *dzt)
{
    SG_CHECK(l && zi && zt && idx && dzi && dzt, "NULL argument");
    if (gcl_bi_begin(&l->ws, WHO, l->st.N, zi, zt, idx, B, d, nthreads) != 0) return -1;
    for (int i = 0; i < B; i++) {
        l->ws.rows.tau_img[i] = l->tau_img[idx[i]];
        l->ws.rows.tau_txt[i] = l->tau_txt[idx[i]];
    }
    return 0;
}

/* m <- (1-beta) m + beta G;  tau <- clip(tau - eta m, tau_min, tau_max). */
void isogclr_tau_update(const struct isogclr_config *c, float *m, float *tau, float logU, float pa)
{
    float G = logU + c->rho - pa;
    float mn = (1.0f - c->beta) * *m + c->beta * G;
    float t = *tau - c->eta * mn;
    *m = mn;
    *tau = t < c->tau_min ? c->tau_min : t > c->tau_max ? c->tau_max : t;
}

/* out from the step's per-anchor rows, then the temperature/momentum update of the batch's
 * samples (host; shared by the CPU and CUDA paths). */
static void finish(struct isogclr *l, const struct gcl_bi_rows *r, const int64_t *idx, int B,
                   struct isogclr_out *out)
{
    if (out) {
        double ti = 0.0, tt = 0.0, rr = 0.0;
        for (int i = 0; i < B; i++) {
            ti += r->tau_img[i];
            tt += r->tau_txt[i];
        }
        rr = (double)l->cfg.rho * (ti + tt) / (2.0 * B);
        out->loss = (float)gcl_bi_surrogate(r, B);
        out->objective = (float)(gcl_bi_objective(r, B) + rr);
        out->gamma = l->sched.gamma_cur;
        out->tau_img_mean = (float)(ti / B);
        out->tau_txt_mean = (float)(tt / B);
    }
    for (int i = 0; i < B; i++) {
        int64_t k = idx[i];
        isogclr_tau_update(&l->cfg, &l->m_img[k], &l->tau_img[k], r->logU_img[i], r->pa_img[i]);
        isogclr_tau_update(&l->cfg, &l->m_txt[k], &l->tau_txt[k], r->logU_txt[i], r->pa_txt[i]);
    }
}

int isogclr_step_cpu(struct sg_ctx *c, struct isogclr *l, const float *zi, const float *zt,
                     const int64_t *idx, int B, int d, float *dzi, float *dzt,
                     struct isogclr_out *out)
{
    if (begin(l, zi, zt, idx, B, d, c->nthreads, dzi, dzt) != 0) return -1;
    gcl_bi_step_cpu(c, &l->ws, &l->st, zi, zt, idx, B, d, l->sched.gamma_cur, dzi, dzt);
    finish(l, &l->ws.rows, idx, B, out);
    return 0;
}

int isogclr_step_ref(struct isogclr *l, const float *zi, const float *zt, const int64_t *idx, int B,
                     int d, float *dzi, float *dzt, struct isogclr_out *out)
{
    if (begin(l, zi, zt, idx, B, d, 1, dzi, dzt) != 0) return -1;
    gcl_bi_step_ref(&l->ws, &l->st, zi, zt, idx, B, d, l->sched.gamma_cur, dzi, dzt);
    finish(l, &l->ws.rows, idx, B, out);
    return 0;
}

#ifdef SG_CUDA
static void dev_free(struct isogclr *l)
{
    gcl_bi_dev_free(&l->dev);
}

/* Copies idx to the host and gathers the batch's temperatures there (ids are range-checked
 * first: the device validates them only inside the step). */
static int gather_tau(struct isogclr *l, const int64_t *idx, int B)
{
    struct gcl_bi_dev *g = l->dev;
    sg_memcpy_d2h(g->ctx, g->host_idx, idx, sizeof(int64_t) * (size_t)B);
    for (int i = 0; i < B; i++) {
        int64_t k = g->host_idx[i];
        if (k < 0 || k >= l->st.N)
            return sg_err("isogclr: index %lld outside [0, %lld)", (long long)k,
                          (long long)l->st.N);
        g->host_ti[i] = l->tau_img[k];
        g->host_tt[i] = l->tau_txt[k];
    }
    return 0;
}

int isogclr_step_cuda(struct sg_ctx *c, struct isogclr *l, const float *zi, const float *zt,
                      const int64_t *idx, int B, int d, float *dzi, float *dzt,
                      struct isogclr_out *out)
{
    SG_CHECK(l && zi && zt && idx && dzi && dzt, "NULL argument");
    if (B < 2 || d < 1) return sg_err("isogclr: need B >= 2 and d >= 1 (got B = %d, d = %d)", B, d);
    if (gcl_bi_dev_get(&l->dev, c, &l->st, B, WHO) != 0 || gather_tau(l, idx, B) != 0) return -1;
    struct gcl_bi_rows rows;
    if (gcl_bi_dev_step(l->dev, zi, zt, idx, B, d, l->sched.gamma_cur, dzi, dzt, &rows, WHO) != 0)
        return -1;
    finish(l, &rows, l->dev->host_idx, B, out);
    return 0;
}
#else
static void dev_free(struct isogclr *l)
{
    SG_UNUSED(l);
}
#endif

int isogclr_step(struct sg_ctx *c, struct isogclr *l, const float *zi, const float *zt,
                 const int64_t *idx, int B, int d, float *dzi, float *dzt, struct isogclr_out *out)
{
    switch (c->dev) {
    case SG_DEVICE_CPU:
        return isogclr_step_cpu(c, l, zi, zt, idx, B, d, dzi, dzt, out);
#ifdef SG_CUDA
    case SG_DEVICE_CUDA:
        return isogclr_step_cuda(c, l, zi, zt, idx, B, d, dzi, dzt, out);
#endif
    default:
        SG_PANIC("isogclr_step: device %d not supported by this build", (int)c->dev);
    }
}

size_t isogclr_workspace_bytes(const struct isogclr *l)
{
    return l->ws.bytes;
}

static const char *const TAU_NAMES[4] = {"tau_img", "tau_txt", "m_img", "m_txt"};

int isogclr_state_save(const struct isogclr *l, struct sg_st_writer *w, const char *prefix)
{
    char name[256];
    int64_t shape[1] = {l->st.N};
    const float *arrs[4] = {l->tau_img, l->tau_txt, l->m_img, l->m_txt};
#ifdef SG_CUDA
    gcl_bi_dev_download_state(l->dev, (struct gcl_bi_state *)&l->st); /* device u/b rule */
#endif
    gcl_bi_state_save(&l->st, w, prefix);
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", TAU_NAMES[k]);
        sg_stw_add_f32(w, name, 1, shape, arrs[k]);
    }
    gcl_bi_sched_save(&l->sched, w, prefix);
    return 0;
}

int isogclr_state_load(struct isogclr *l, const struct sg_st_file *f, const char *prefix)
{
    if (gcl_bi_state_check(&l->st, f, prefix) != 0 || gcl_bi_sched_check(f, prefix) != 0)
        return sg_err_prefix("isogclr state: ");
    for (int k = 0; k < 4; k++)
        if (gcl_bi_check_vec(f, prefix, TAU_NAMES[k], l->st.N) != 0)
            return sg_err_prefix("isogclr state: ");
    float *arrs[4] = {l->tau_img, l->tau_txt, l->m_img, l->m_txt};
    gcl_bi_state_copy_in(&l->st, f, prefix);
    for (int k = 0; k < 4; k++) gcl_bi_read_vec(f, prefix, TAU_NAMES[k], arrs[k], l->st.N);
    gcl_bi_sched_copy_in(&l->sched, f, prefix);
#ifdef SG_CUDA
    return gcl_bi_dev_upload_state(l->dev, &l->st);
#endif
    return 0;
}
