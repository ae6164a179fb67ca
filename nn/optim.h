/*
 * nn/optim.h — optimizers over the parameter table (core/params.h) and learning-rate schedules.
 *
 * Optimizers (one step updates every trainable parameter in place; BUFFER params are skipped):
 *  - SG_OPT_ADAMW: torch.optim.AdamW (torch 1.13 `_single_tensor_adamw`), decoupled weight
 *    decay p *= 1 - lr*wd only for SG_PARAM_DECAY params (FastCLIP/open_clip: gain, bias, bn, ln
 *    and logit_scale get wd 0); exp_avg in ps->m, exp_avg_sq in ps->v.
 *  - SG_OPT_SGD: torch.optim.SGD (dampening 0), coupled decay g += wd*p only for DECAY params,
 *    momentum buffer in ps->m (first step: buf = g), optional Nesterov.
 *  - SG_OPT_LARS: the LARS of moco-v3 / SogCLR `sogclr/optimizer.py`: for params with ndim > 1
 *    (whatever their flags) g = g + wd*p, then g *= trust*||p||/||g|| (1 when either norm is 0);
 *    params with ndim <= 1 get neither. Then mu = momentum*mu + g (ps->m), p -= lr*mu.
 *  - clip_grad_norm > 0: torch.nn.utils.clip_grad_norm_ over all trainable grads before the
 *    step: scale = min(1, max_norm / (norm + 1e-6)). The scale is folded into the update: the
 *    grad arena itself is left unscaled (torch scales p.grad in place).
 *  - Temperature group: params flagged SG_PARAM_TEMPERATURE (CLIP's logit_scale) take their own
 *    learning rate lr_tau (sg_optim_step_tau), as FastCLIP's third AdamW param group.
 * Every step computes the global L2 norm of the trainable grads (before clipping) and returns
 * it (also in o->last_grad_norm). When it is not finite (NaN/Inf in a grad) the step is skipped:
 * nothing is updated and o->step does not advance; the caller sees the non-finite return value
 * (torch would write NaN into the parameters).
 *
 * Arithmetic follows torch's CPU kernels operation by operation in float32 (scalars such as
 * 1 - lr*wd and lr / (1 - beta1^t) in double, then rounded to float, as Python does; beta, eps,
 * wd and momentum are taken as the double of their shortest decimal, i.e. what Python's float
 * literal `0.999` is), so results agree with torch to about an ulp (tests/test_optim.c).
 *
 * Checkpoint state: the m and v arenas of the parameter table (ps->m, ps->v, saved by name like
 * the parameters) plus o->step. Nothing else persists between steps.
 *
 * sg_optim_step: OpenMP over each parameter's elements in fixed 4096-element chunks; norms in
 * double from per-chunk partial sums added in chunk order, so results do not depend on the
 * thread count. sg_optim_step_ref: plain loops, the spec.
 *
 * CUDA (parameter table and context on SG_DEVICE_CUDA; nn/cuda/optim.cu): the same step on the
 * GPU with the same per-step scalars (computed here on the host, struct sg_optim_coef) and the
 * same float operations in each element update, so AdamW and SGD match the CPU bit for bit; the
 * norms are double sums in another (fixed) order, so the returned norm, the clip scale and the
 * LARS ratios can differ from the CPU's by an ulp. Deterministic (no atomics). One
 * device-to-host copy (the 4-byte grad norm, for the skip / clip decision) per step.
 */
#ifndef SG_OPTIM_H
#define SG_OPTIM_H

#include <stdint.h>

#include "core/ctx.h"
#include "core/params.h"

enum sg_optim_kind { SG_OPT_ADAMW, SG_OPT_SGD, SG_OPT_LARS };

struct sg_optim_config {
    enum sg_optim_kind kind;
    float lr;                /* base learning rate (>= 0); each step takes its own lr */
    float weight_decay;      /* >= 0 */
    float beta1, beta2, eps; /* AdamW (torch defaults 0.9, 0.999, 1e-8) */
    float momentum;          /* SGD / LARS (>= 0; LARS: SogCLR 0.9) */
    int nesterov;            /* SGD only; needs momentum > 0 */
    float trust_coef;        /* LARS eta (> 0), SogCLR 0.001 */
    float clip_grad_norm;    /* > 0: global L2 norm clipping of the trainable grads; 0: off */
};

struct sg_optim {
    struct sg_optim_config cfg;
    int64_t step;         /* steps taken (AdamW bias correction uses step + 1 for the next) */
    float last_grad_norm; /* pre-clipping global grad norm of the last step */
    double *part;         /* (2 * max_chunks) per-chunk partial sums for the norms */
    int64_t max_chunks;   /* chunks of the largest trainable param at init */
    void *cuda;           /* CUDA: device tensor table and partial sums (nn/cuda/optim.cu),
                             built at the first CUDA step; NULL on the CPU */
};

/* Per-step scalars of the update, rounded to float where torch passes them to a float kernel
 * (built by nn/optim.c for both devices). */
struct sg_optim_coef {
    float gs;                               /* clip scale applied to every grad (1: none) */
    float decay;                            /* AdamW: 1 - lr*wd (DECAY params) */
    float b1, a1, b2, a2, bc2s, eps, nstep; /* AdamW: beta, 1-beta, sqrt(bc2), -lr/bc1 */
    float wd, mom, nlr, trust;              /* SGD/LARS: decay, momentum, -lr, eta */
    int nesterov;
    float decay_t, nstep_t, nlr_t; /* decay, nstep, nlr at lr_tau (SG_PARAM_TEMPERATURE) */
};

/* Validates cfg and sizes the scratch for ps (registered and allocated with with_optim = 1).
 * Returns 0, or -1 with sg_err (negative lr, betas outside [0, 1), ...). */
int sg_optim_init(struct sg_optim *o, const struct sg_optim_config *cfg, struct sg_params *ps);
/* Frees the host scratch and, after a CUDA step, the device table (free it before the table's
 * CUDA context). */
void sg_optim_free(struct sg_optim *o);

/* One step with learning rate lr (the schedule's value for this step). Weight decay per param
 * from its flags (AdamW, SGD) or its ndim (LARS). Returns the pre-clipping global grad norm.
 * c must be on the device of the parameter table. CPU: allocates nothing. CUDA: the first step
 * (and a step on another table) uploads a device table of the trainable tensors; every step
 * synchronises once (the norm comes back to the host) and leaves the update queued on c's
 * stream. Built without CUDA, a CUDA context panics. */
float sg_optim_step(struct sg_optim *o, struct sg_params *ps, struct sg_ctx *c, float lr);
/* The same step with learning rate lr_tau for the SG_PARAM_TEMPERATURE params (FastCLIP's
 * logit_scale param group {wd 0, lr = lr_tau}): their update is the one above with lr_tau in
 * place of lr (AdamW's step size lr_tau / bc1 and decay 1 - lr_tau wd, SGD's and LARS's -lr_tau);
 * moments, clipping and the norm are shared. sg_optim_step is this with lr_tau = lr. */
float sg_optim_step_tau(struct sg_optim *o, struct sg_params *ps, struct sg_ctx *c, float lr,
                        float lr_tau);
/* The same step as plain single-threaded loops (reference for tests). */
float sg_optim_step_ref(struct sg_optim *o, struct sg_params *ps, float lr);
float sg_optim_step_ref_tau(struct sg_optim *o, struct sg_params *ps, float lr, float lr_tau);

/* ---- CUDA backend (nn/cuda/optim.cu), called by sg_optim_step; ps and c on CUDA ---------- */

/* Global L2 norm of ps's trainable grads, as grad_norm on the CPU: per-param double sums of
 * squares (per-block partials summed in block order), each param's norm rounded to float, the
 * total in double in param order. Synchronises (4-byte device-to-host copy). */
float sg_optim_grad_norm_cuda(struct sg_optim *o, struct sg_params *ps, struct sg_ctx *c);
/* The update of every trainable param with the step's scalars (LARS: trust ratios from
 * deterministic per-param norms on the device). Asynchronous on c's stream. */
void sg_optim_update_cuda(struct sg_optim *o, struct sg_params *ps, struct sg_ctx *c,
                          const struct sg_optim_coef *k);
/* Frees o->cuda (device memory of the table's context). */
void sg_optim_free_cuda(struct sg_optim *o);

/* open_clip cosine_lr with a floor: step < warmup: base_lr*(step+1)/warmup; else
 * lr_min + 0.5*(1 + cos(pi*e/es))*(base_lr - lr_min), e = step - warmup, es = total - warmup.
 * Steps at or past total give lr_min (open_clip's formula would rise again). In double. */
float sg_lr_cosine(float base_lr, float lr_min, int64_t warmup, int64_t total, int64_t step);

/* The temperature's learning rate (FastCLIP's --lr_tau_scheduler, src/training/scheduler.py as its
 * main.py calls it), for sg_optim_step_tau:
 *   COSINE      sg_lr_cosine(lr_tau, lr_min, warmup, total, step): the model's warmup and cosine;
 *   CONSTANT    lr_tau from the first step (no warmup);
 *   STEP_THRESH lr_tau / 3 while the temperature tau = 1 / exp(logit_scale) is <= 0.03 at the
 *               step (float32 as torch evaluates it; no warmup, no memory: it switches back if tau
 *               rises above 0.03), else lr_tau. */
enum sg_lr_tau_schedule { SG_LR_TAU_COSINE = 0, SG_LR_TAU_CONSTANT = 1, SG_LR_TAU_STEP_THRESH = 2 };
float sg_lr_tau(enum sg_lr_tau_schedule s, float lr_tau, float lr_min, int64_t warmup,
                int64_t total, int64_t step, float logit_scale);

enum sg_lr_scaling { SG_LR_SCALE_NONE = 0, SG_LR_SCALE_LINEAR = 1, SG_LR_SCALE_SQRT = 2 };
/* Batch-size scaling: NONE lr; LINEAR lr*B/256; SQRT lr*sqrt(B) (SogCLR: 0.075*sqrt(B)). */
float sg_lr_scale(float lr, int batch, int mode);

#endif
