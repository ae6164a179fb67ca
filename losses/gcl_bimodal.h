/*
 * losses/gcl_bimodal.h — INTERNAL engine shared by the bimodal (image-text) global contrastive
 * losses: two-way SogCLR (losses/sogclr.h), bimodal iSogCLR (losses/isogclr.h) and FastCLIP-v3
 * (losses/fastclip.h). Callers use those headers; this one is for the loss implementations and
 * their tests. Math: docs/ALGORITHMS.md 2(b), 2(c), with the project's semantics of its first
 * section (per-sample unseen init, tau-scaled GCL estimator, no (B-1) factor).
 *
 * One step on a batch of B pairs, zi, zt (B, d) row-major fp32 L2-normalised, idx (B) distinct
 * global sample ids in [0, N), per-anchor temperatures tau_img[i], tau_txt[i] > 0, gamma in (0, 1]:
 *   S = zi zt^T;  D^I_ij = S_ij - S_ii (image anchor i vs text j);  D^T_ij = S_ji - S_ii.
 *   A = D / tau (row-wise tau of the anchor);  b_new_i = max(b_old[idx_i], max_j A_ij) (j = i
 *   included, A_ii = 0, so b >= 0);  e_ij = exp(A_ij - b_new_i) for j != i.
 *   u_new_i = max(1e-20, (1-gamma) u_old exp(b_old - b_new) + gamma (1/(B-1)) sum_{j!=i} e_ij),
 *   except u_old == 0 (never written): u_new_i = max(1e-20, (1/(B-1)) sum_{j!=i} e_ij).
 *   Unshifted U_i = u_new_i exp(b_new_i) = (1-gamma) U_old + gamma ghat_i,
 *   ghat_i = (1/(B-1)) sum_{j!=i} exp(D_ij/tau_i).  p_ij = e_ij / u_new_i = exp(D_ij/tau_i)/U_i.
 *   Feature gradient (overwritten):  dL/dS = M / (2B(B-1)) with, for i != j,
 *     M_ij = p^I_ij + p^T_ji,   M_ii = -sum_{j!=i} (p^I_ij + p^T_ij);
 *   dzi = M zt / (2B(B-1)),  dzt = M^T zi / (2B(B-1))  — the gradient of the surrogate
 *   (1/(2B(B-1))) sum_i sum_{j!=i} [sg(p^I_ij) D^I_ij + sg(p^T_ij) D^T_ij], i.e. the tau-scaled
 *   GCL estimator (1/(2B)) sum_i [tau^I_i grad ghat^I_i / U^I_i + tau^T_i grad ghat^T_i / U^T_i].
 *   Per-anchor outputs (struct gcl_bi_rows): logU = log(u_new) + b_new and
 *   pa_i = (1/(B-1)) sum_{j!=i} p_ij A_ij for both directions.
 *   State write (after everything else): u[idx_i] = u_new_i, b[idx_i] = b_new_i, both sides.
 *
 * gcl_bi_step_cpu: S by sg_gemm into the workspace, three fused row passes (row/column maxima;
 * row/column sums of e and e*A, storing e^I over S and e^T in W when B <= store_max_b;
 * coefficients M written over S, from the stored or recomputed e), then two sg_gemm for the
 * feature gradients. Its exponentials of A - b <= 0 are clamped below at exp(-87.3) ~ 1e-38
 * (no denormals or exact zeros; immaterial next to the 1e-20 floor of u). Row sums accumulate
 * in double; column (text-anchor) sums in float over blocks of 32 rows, then in per-thread double
 * partials merged in thread order: results depend on the thread count only through summation
 * order (a run is reproducible at a fixed thread count).
 * gcl_bi_step_ref: plain loops in double (the oracle in tests), same inputs and outputs.
 */
#ifndef SG_GCL_BIMODAL_H
#define SG_GCL_BIMODAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"
#include "core/safetensors.h"

#define GCL_BI_U_MIN 1e-20f

/* Per-sample states (N each, zero at init: u == 0 means "never written"). */
struct gcl_bi_state {
    int64_t N;
    float *u_img, *u_txt; /* b-shifted moving averages u = U exp(-b) */
    float *b_img, *b_txt; /* overflow guards: running max of D/tau */
};

/* Per-anchor results of the last step (B each; point into the workspace). */
struct gcl_bi_rows {
    float *tau_img, *tau_txt;   /* the step's temperatures (the caller fills them before a step) */
    float *logU_img, *logU_txt; /* log u_new + b_new */
    float *pa_img, *pa_txt;     /* (1/(B-1)) sum_{j!=i} p_ij A_ij */
};

/* The u update of one anchor (see above): rs = sum_{j != i} e_ij over the batch's n - 1
 * negatives (n: the batch, or the global batch of losses/gcl_bimodal_dist.c); returns
 * max(1e-20, (1-gamma) u_old exp(b_old - b_new) + gamma rs / (n-1)), or the fresh estimate
 * when u_old == 0 (never written). */
float gcl_bi_u_update(float u_old, float b_old, float b_new, double rs, int64_t n, float gamma);

/* Largest batch for which pass 2 stores its exponentials in a second B x B buffer W (pass 3
 * then only combines them); above it pass 3 recomputes them from S and W is not allocated. */
#define GCL_BI_STORE_MAX_B 2048

/* Grows on demand (B x B floats, a second B x B for B <= store_max_b, O(B nthreads)); no
 * allocation once sized. */
struct gcl_bi_ws {
    float *S;            /* (B, B) similarities, then the coefficient matrix M */
    float *W;            /* (B, B) exp(A^T - b^T) of pass 2, or NULL (recompute path) */
    float *anc;          /* per-anchor arrays, GCL_BI_NANC x B */
    double *part;        /* per-thread column sums of e^T and e^T A^T, nthreads x 2 x B */
    float *partf;        /* the same over one block of rows, nthreads x 2 x B */
    int32_t *pkey;       /* per-thread column maxima as sg_float_key, nthreads x B */
    int64_t *sidx;       /* sorted copy of idx (duplicate check), B */
    int64_t cap_b;       /* B the buffers are sized for */
    int64_t store_max_b; /* GCL_BI_STORE_MAX_B at init (tests lower it to cover both paths) */
    int cap_t;           /* threads the partials are sized for */
    size_t bytes;        /* total workspace bytes */
    struct gcl_bi_rows rows;
};

int gcl_bi_state_init(struct gcl_bi_state *s, int64_t N); /* -1 + sg_err when N < 1 */
void gcl_bi_state_free(struct gcl_bi_state *s);
/* Tensors "<prefix>u_img", "<prefix>u_txt", "<prefix>b_img", "<prefix>b_txt": F32 [N]. */
void gcl_bi_state_save(const struct gcl_bi_state *s, struct sg_st_writer *w, const char *prefix);
/* Checks every name, dtype and shape [N] first; copies only when all are valid. */
int gcl_bi_state_check(const struct gcl_bi_state *s, const struct sg_st_file *f,
                       const char *prefix);
void gcl_bi_state_copy_in(struct gcl_bi_state *s, const struct sg_st_file *f, const char *prefix);

/* Checks one F32 tensor "<prefix><name>" of shape [n] (-1 + sg_err naming it otherwise). */
int gcl_bi_check_vec(const struct sg_st_file *f, const char *prefix, const char *name, int64_t n);
void gcl_bi_read_vec(const struct sg_st_file *f, const char *prefix, const char *name, float *dst,
                     int64_t n);

void gcl_bi_ws_init(struct gcl_bi_ws *ws);
void gcl_bi_ws_free(struct gcl_bi_ws *ws);
/* Sizes the workspace for B anchors and nthreads threads; sets ws->rows. */
void gcl_bi_ws_reserve(struct gcl_bi_ws *ws, int64_t B, int nthreads);

/* Checks B >= 2 and d >= 1, reserves the workspace for B anchors and nthreads threads, then
 * validates the batch without touching any state: finite features, indices in [0, N) and
 * distinct (ws->sidx is the scratch). Returns 0 or -1 with sg_err("<who>: ..."). */
int gcl_bi_begin(struct gcl_bi_ws *ws, const char *who, int64_t N, const float *zi, const float *zt,
                 const int64_t *idx, int B, int d, int nthreads);

/* One step (see top). The batch must have passed gcl_bi_begin and
 * ws->rows.tau_img/tau_txt be filled. dzi, dzt (B, d) are overwritten. */
void gcl_bi_step_cpu(struct sg_ctx *c, struct gcl_bi_ws *ws, struct gcl_bi_state *st,
                     const float *zi, const float *zt, const int64_t *idx, int B, int d,
                     float gamma, float *dzi, float *dzt);
void gcl_bi_step_ref(struct gcl_bi_ws *ws, struct gcl_bi_state *st, const float *zi,
                     const float *zt, const int64_t *idx, int B, int d, float gamma, float *dzi,
                     float *dzt);

/* From the per-anchor rows of the last step: the surrogate value
 * (1/(2B)) sum_i [tau^I_i pa^I_i + tau^T_i pa^T_i] (= (1/(2B(B-1))) sum p D) and the GCL
 * objective estimate (1/(2B)) sum_i [tau^I_i logU^I_i + tau^T_i logU^T_i]. */
double gcl_bi_surrogate(const struct gcl_bi_rows *r, int B);
double gcl_bi_objective(const struct gcl_bi_rows *r, int B);

/* Gamma schedules (per epoch): constant (gamma every epoch; unseen samples are handled per
 * sample by the u == 0 rule), or cosine from 1 at epoch 0 to gamma (= gamma_min) at
 * decay_epochs, gamma_min from then on: gamma_e = (1-gamma_min)(1+cos(pi e/E))/2 + gamma_min. */
enum gcl_bi_gamma_schedule { GCL_BI_GAMMA_CONSTANT = 0, GCL_BI_GAMMA_COSINE = 1 };

struct gcl_bi_sched {
    int schedule;     /* enum gcl_bi_gamma_schedule */
    float gamma;      /* constant gamma, or gamma_min of the cosine schedule, in (0, 1] */
    int decay_epochs; /* cosine: E >= 1 */
    int64_t epoch;    /* current epoch (0 at init) */
    float gamma_cur;  /* gamma of the current epoch */
};

/* Validates the schedule parameters (-1 + sg_err naming `who`), sets epoch 0. */
int gcl_bi_sched_init(struct gcl_bi_sched *s, const char *who, int schedule, float gamma,
                      int decay_epochs);
int gcl_bi_sched_set_epoch(struct gcl_bi_sched *s, const char *who, int64_t epoch);
float gcl_bi_gamma_at(const struct gcl_bi_sched *s, int64_t epoch);
/* Tensors "<prefix>epoch" (I64 [1]) and "<prefix>gamma" (F32 [1], the current gamma). */
void gcl_bi_sched_save(const struct gcl_bi_sched *s, struct sg_st_writer *w, const char *prefix);
int gcl_bi_sched_check(const struct sg_st_file *f, const char *prefix);
void gcl_bi_sched_copy_in(struct gcl_bi_sched *s, const struct sg_st_file *f, const char *prefix);

#endif
