/*
 * losses/gcl_bimodal_cuda.h — the bimodal GCL engine step (losses/gcl_bimodal.h) on the GPU,
 * with the per-sample state resident in device memory. Implemented in losses/cuda/gcl_bimodal.cu;
 * only available in CUDA builds (SG_CUDA). Plain C interface.
 *
 * Math: exactly the step at the top of losses/gcl_bimodal.h (docs/ALGORITHMS.md 2(b), 2(c)):
 *   S = zi zt^T;  D^I_ij = S_ij - S_ii;  D^T_ij = S_ji - S_ii;  A = D / tau (per anchor);
 *   b_new_i = max(b_old[idx_i], max_j A_ij) (j = i included, so b >= 0);
 *   u_new_i = max(1e-20, (1-gamma) u_old exp(b_old - b_new) + gamma (1/(B-1)) sum_{j!=i} e_ij),
 *   e_ij = exp(A_ij - b_new_i), and u_new_i = max(1e-20, (1/(B-1)) sum_{j!=i} e_ij) when
 *   u_old == 0 (never written);  p_ij = e_ij / u_new_i;
 *   M_ij = p^I_ij + p^T_ji (i != j),  M_ii = -sum_{j!=i} (p^I_ij + p^T_ij);
 *   dzi = M zt / (2B(B-1)),  dzt = M^T zi / (2B(B-1))          (OVERWRITTEN, (B, d) each);
 *   rows (optional, (4, B) row-major): logU_img, logU_txt (log u_new + b_new), pa_img, pa_txt
 *   ((1/(B-1)) sum_{j!=i} p_ij A_ij) — gcl_bi_surrogate / gcl_bi_objective take these;
 *   state write after everything else: u[idx_i] = u_new_i, b[idx_i] = b_new_i (both sides).
 *
 * Every pointer argument of gcl_bi_cuda_step is a DEVICE pointer: tau_img, tau_txt (B), zi, zt
 * (B, d) row-major fp32 L2-normalised features, idx (B) int64 distinct sample ids in [0, N),
 * dzi, dzt (B, d), rows (4, B) or NULL. All work is queued on the context's stream.
 *
 * Validation (before any state write): B >= 2, d >= 1, gamma in (0, 1] on the host; then on
 * the device: finite features, finite positive temperatures, ids in [0, N), no duplicate ids.
 * The duplicate check compares all pairs (B(B-1)/2 integer compares: no sort, no N-sized
 * marks; about 1/(12 d) of the 6 B^2 d flops of the step's GEMMs). The device status (a
 * few words) is copied to the host: this is the step's ONLY host synchronisation. On bad input
 * the step returns -1 with sg_err("gcl_bi_cuda: ...") and neither the state nor dzi, dzt, rows
 * are written.
 *
 * Numerics: the GEMMs are cuBLAS sgemm with TF32 disabled for the step even when the context
 * allows it (SOGCLIP_TF32=1): exp(D/tau) multiplies an S error by 1/tau (x100 at tau = 0.01),
 * so TF32's 5e-4 relative error would reach p. (NVIDIA_TF32_OVERRIDE=1 in the environment
 * overrides this; do not set it.) Exponentials of A - b <= 0 are clamped below at exp(-87.3),
 * as on the CPU. Reductions: S is processed in tiles of 32 columns x 64 rows; per tile, row
 * partials (warp shuffle tree over the 32 columns) and column partials (fixed-order serial sums
 * over 8 rows per thread, then over the 8 row phases) go to the workspace, and per-anchor
 * finalisers sum the partials in tile order in double. No float atomics: results are
 * bit-identical run to run on a given GPU model (cuBLAS's own guarantee: same architecture and
 * SM count).
 *
 * Workspace: one device buffer grown on demand: B^2 + B^2/32 + B^2/64 + 15 B floats
 * (gcl_bi_cuda::ws_bytes); growing synchronises once (cudaFree), steady state never allocates.
 * The state is 4 N floats of device memory.
 */
#ifndef SG_GCL_BIMODAL_CUDA_H
#define SG_GCL_BIMODAL_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"
#include "losses/gcl_bimodal.h"

#ifdef __cplusplus
extern "C" {
#endif

struct gcl_bi_cuda {
    int64_t N;
    float *u_img, *u_txt; /* device (N): b-shifted moving averages, 0 = never written */
    float *b_img, *b_txt; /* device (N): running max of D/tau */
    void *ws;             /* device workspace (S/M, partials, per-anchor arrays) */
    size_t ws_bytes;      /* its size */
    void *status;         /* device validation words */
};

#ifdef SG_CUDA
/* c: an initialised CUDA context. Allocates and zeroes the 4 N-float state; -1 + sg_err when
 * N < 1. Free with gcl_bi_cuda_free on the same context. */
int gcl_bi_cuda_init(struct sg_ctx *c, struct gcl_bi_cuda *g, int64_t N);
void gcl_bi_cuda_free(struct sg_ctx *c, struct gcl_bi_cuda *g);

/* Copy the whole state host <-> device (checkpoints, tests); -1 + sg_err when host->N != g->N.
 * Download synchronises; upload is queued (the host arrays may be reused at once). */
int gcl_bi_cuda_state_upload(struct sg_ctx *c, struct gcl_bi_cuda *g,
                             const struct gcl_bi_state *host);
int gcl_bi_cuda_state_download(struct sg_ctx *c, struct gcl_bi_cuda *g, struct gcl_bi_state *host);

/* One step (see top). Returns 0, or -1 with sg_err and nothing written. */
int gcl_bi_cuda_step(struct sg_ctx *c, struct gcl_bi_cuda *g, const float *tau_img,
                     const float *tau_txt, const float *zi, const float *zt, const int64_t *idx,
                     int B, int d, float gamma, float *dzi, float *dzt, float *rows);
#endif

#ifdef __cplusplus
}
#endif

#endif
