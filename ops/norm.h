/*
 * ops/norm.h — LayerNorm and BatchNorm (2d; 1d is HW = 1), forward and backward.
 *
 * layernorm (torch.nn.LayerNorm(C, eps)) over the last dim of inp(N,C):
 *   out = (inp - mean) * rstd * w + b,  rstd = 1/sqrt(var_biased + eps)
 *   forward fills mean(N), rstd(N) for backward (either may be NULL when no backward follows).
 *   w, b may be NULL (no affine).
 *   backward: dinp (overwrite), dw/db (accumulate); NULL to skip.
 *
 * batchnorm2d (torch.nn.BatchNorm2d(C, eps, momentum)) on inp(B,C,HW):
 *   training: mean/var over (B,HW) per channel; normalise with the BIASED variance;
 *     run_mean = (1-momentum)*run_mean + momentum*mean
 *     run_var  = (1-momentum)*run_var  + momentum*var_unbiased  (var * n/(n-1))
 *     (run_mean/run_var may be NULL: track_running_stats=False)
 *   eval: normalise with run_mean/run_var; mean/rstd are still filled (from the running stats)
 *     so that backward works in eval mode too (then the stats are constants).
 *   gamma/beta may be NULL (affine=False, as in SogCLR's last head BN).
 *   forward fills mean(C), rstd(C) (either may be NULL when no backward follows).
 *   Training needs B*HW > 1 (torch: "Expected more than 1 value per channel").
 *   backward (training): full batch-statistics gradient; (eval): dinp = dout*gamma*rstd.
 *     dinp overwrite; dgamma/dbeta accumulate; NULL to skip.
 *
 * SyncBN (torch.nn.SyncBatchNorm in training mode): when c->bn_sync is set (a struct sg_dist of
 * W ranks; CPU context and a host-memory backend, single or MPI), each rank passes its own B
 * samples and the statistics are those of the concatenated batch of all ranks:
 *   forward: per channel the mean and BIASED variance over all ranks' B*HW values (each rank's
 *     (count, mean, M2 = sum of squared deviations) all-gathered, then combined in rank order
 *     with Chan's formula, in double: identical on every rank); out normalised with them;
 *     run_mean/run_var updated with them (unbiased variance with the GLOBAL count), identically
 *     on every rank. mean/rstd filled with the global statistics. Needs global count > 1.
 *   backward: per channel sum(dout) and sum(dout * xhat) all-reduced (with the count); dinp uses
 *     the global sums and count. dgamma/dbeta ACCUMULATE THIS RANK'S LOCAL sums only: the caller
 *     must sum the parameter gradients over the ranks afterwards (the trainer all-reduces every
 *     gradient), which then equals the gradient of the global batch. With dinp NULL no
 *     collective runs (only dgamma/dbeta, local).
 *   Collectives: one allgather per training forward, one allreduce per training backward with
 *   dinp; every rank must make the same calls in the same order (SPMD). A failed collective
 *   (time-out, dead rank) panics with the dist error: the ops return void and a rank that cannot
 *   reach the others cannot continue (mpirun then tears the job down).
 *   Eval mode and c->bn_sync == NULL: unchanged, local (the NULL path is the code above,
 *   bit for bit). A CUDA context with bn_sync set in training mode is refused (SG_CHECK).
 */
#ifndef SG_NORM_H
#define SG_NORM_H

#include "core/ctx.h"

void op_layernorm_forward(struct sg_ctx *c, float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C, float eps);
void op_layernorm_backward(struct sg_ctx *c, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean, const float *rstd,
                           int N, int C);
void op_batchnorm2d_forward(struct sg_ctx *c, float *out, float *mean, float *rstd, float *run_mean,
                            float *run_var, const float *inp, const float *gamma, const float *beta,
                            int B, int C, int HW, float momentum, float eps, int training);
void op_batchnorm2d_backward(struct sg_ctx *c, float *dinp, float *dgamma, float *dbeta,
                             const float *dout, const float *inp, const float *gamma,
                             const float *mean, const float *rstd, int B, int C, int HW,
                             int training);

void layernorm_forward_ref(float *out, float *mean, float *rstd, const float *inp, const float *w,
                           const float *b, int N, int C, float eps);
void layernorm_backward_ref(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, int N, int C);
void batchnorm2d_forward_ref(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                             const float *inp, const float *gamma, const float *beta, int B, int C,
                             int HW, float momentum, float eps, int training);
void batchnorm2d_backward_ref(float *dinp, float *dgamma, float *dbeta, const float *dout,
                              const float *inp, const float *gamma, const float *mean,
                              const float *rstd, int B, int C, int HW, int training);

void layernorm_forward_cpu(struct sg_ctx *c, float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int N, int C, float eps);
void layernorm_backward_cpu(struct sg_ctx *c, float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean, const float *rstd,
                            int N, int C);
void batchnorm2d_forward_cpu(struct sg_ctx *c, float *out, float *mean, float *rstd,
                             float *run_mean, float *run_var, const float *inp, const float *gamma,
                             const float *beta, int B, int C, int HW, float momentum, float eps,
                             int training);
void batchnorm2d_backward_cpu(struct sg_ctx *c, float *dinp, float *dgamma, float *dbeta,
                              const float *dout, const float *inp, const float *gamma,
                              const float *mean, const float *rstd, int B, int C, int HW,
                              int training);

#ifdef SG_CUDA
void layernorm_forward_cuda(struct sg_ctx *c, float *out, float *mean, float *rstd,
                            const float *inp, const float *w, const float *b, int N, int C,
                            float eps);
void layernorm_backward_cuda(struct sg_ctx *c, float *dinp, float *dw, float *db, const float *dout,
                             const float *inp, const float *w, const float *mean, const float *rstd,
                             int N, int C);
/* ops/cuda/cudnn.cu: own deterministic kernels (per-channel partial sums + fixed-order finish) */
void batchnorm2d_forward_cuda(struct sg_ctx *c, float *out, float *mean, float *rstd,
                              float *run_mean, float *run_var, const float *inp, const float *gamma,
                              const float *beta, int B, int C, int HW, float momentum, float eps,
                              int training);
void batchnorm2d_backward_cuda(struct sg_ctx *c, float *dinp, float *dgamma, float *dbeta,
                               const float *dout, const float *inp, const float *gamma,
                               const float *mean, const float *rstd, int B, int C, int HW,
                               int training);
#endif

#endif
