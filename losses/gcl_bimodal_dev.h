/*
 * losses/gcl_bimodal_dev.h — the device side shared by the bimodal losses (sogclr, isogclr,
 * fastclip) on a CUDA context: the engine (losses/gcl_bimodal_cuda.h) plus the per-step
 * temperature and row buffers, created on a loss's first CUDA step. From then on the device
 * copy of u/b is the authoritative one: the loss downloads it before saving and uploads after
 * loading. Only available in CUDA builds (SG_CUDA).
 */
#ifndef SG_GCL_BIMODAL_DEV_H
#define SG_GCL_BIMODAL_DEV_H

#include <stdint.h>

#include "core/ctx.h"
#include "losses/gcl_bimodal.h"
#include "losses/gcl_bimodal_cuda.h"

struct gcl_bi_dev {
    struct sg_ctx *ctx;
    struct gcl_bi_cuda eng;   /* device u/b state + workspace */
    float *tau_img, *tau_txt; /* device (cap): the step's per-anchor temperatures */
    float *rows;              /* device (4, cap): logU_img, logU_txt, pa_img, pa_txt */
    float *host_rows;         /* host (4, cap) copy of rows */
    float *host_ti, *host_tt; /* host (cap): the temperatures the caller fills before a step */
    int64_t *host_idx;        /* host (cap): scratch for callers that need idx on the host */
    int cap;
};

#ifdef SG_CUDA
/* Returns the loss's device side, creating it on first use (uploading st) and growing its
 * buffers to B. A loss stays bound to the CUDA context of its first step (`who` names it). */
int gcl_bi_dev_get(struct gcl_bi_dev **pg, struct sg_ctx *c, const struct gcl_bi_state *st, int B,
                   const char *who);
void gcl_bi_dev_free(struct gcl_bi_dev **pg);
/* Uploads host_ti/host_tt (B), runs the engine step (device pointers), and when rows is not
 * NULL downloads the per-anchor rows into host memory and points *rows at them (tau fields:
 * host_ti/host_tt). Returns 0 or -1 with sg_err prefixed by `who`. */
int gcl_bi_dev_step(struct gcl_bi_dev *g, const float *zi, const float *zt, const int64_t *idx,
                    int B, int d, float gamma, float *dzi, float *dzt, struct gcl_bi_rows *rows,
                    const char *who);
/* State copies between the device and the loss's host arrays; no-ops when g is NULL. */
void gcl_bi_dev_download_state(struct gcl_bi_dev *g, struct gcl_bi_state *st);
int gcl_bi_dev_upload_state(struct gcl_bi_dev *g, const struct gcl_bi_state *st);
#endif

#endif
