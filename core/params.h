/*
 * core/params.h — the parameter table. Every parameter is registered under its PyTorch
 * state_dict name (e.g. "visual.layer1.0.conv1.weight") with a shape and flags. After
 * registration, sg_params_alloc makes four arenas of identical layout — data, grad, Adam m,
 * Adam v — so optimizers are flat loops and checkpoints match by name, not by write order.
 * Parameter offsets are 64-float aligned. Buffers (BatchNorm running stats) are registered with
 * SG_PARAM_BUFFER: they are saved and loaded but get no gradient and are never optimized.
 */
#ifndef SG_PARAMS_H
#define SG_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "core/ctx.h"
#include "core/rng.h"

enum sg_param_flags {
    SG_PARAM_DECAY = 1u << 0,  /* apply weight decay (weights of linear/conv layers) */
    SG_PARAM_BUFFER = 1u << 1, /* not trainable (running_mean, running_var, ...) */
    /* the temperature (CLIP's logit_scale): the optimizer gives it its own learning rate,
     * FastCLIP's lr_tau group (nn/optim.h sg_optim_step_tau) */
    SG_PARAM_TEMPERATURE = 1u << 2,
    SG_PARAM_INIT_ZERO = 1u << 4,
    SG_PARAM_INIT_ONE = 1u << 5,
    SG_PARAM_INIT_NORMAL = 1u << 6,  /* normal(0, init_scale) */
    SG_PARAM_INIT_UNIFORM = 1u << 7, /* uniform(-init_scale, init_scale) */
    SG_PARAM_INIT_CONST = 1u << 8,   /* all elements = init_scale */
};

#define SG_PARAM_NAME_MAX 160

struct sg_param {
    char name[SG_PARAM_NAME_MAX];
    int ndim;
    int64_t shape[4];
    int64_t numel;
    size_t offset; /* in floats, into each of the four arenas */
    unsigned flags;
    float init_scale; /* std / bound / constant for the INIT_* flags */
    float *data;      /* (numel) on the params' device, valid after sg_params_alloc */
    float *grad;      /* (numel) */
};

struct sg_params {
    struct sg_param **items; /* stable pointers */
    int n, cap;
    size_t total; /* floats per arena, including alignment padding */
    struct sg_ctx *ctx;
    float *data, *grad, *m, *v; /* (total) each; m and v only when with_optim */
};

void sg_params_init(struct sg_params *ps);
/* Register a parameter; returns a stable handle. Panics on duplicate names. */
struct sg_param *sg_params_add(struct sg_params *ps, const char *name, int ndim,
                               const int64_t *shape, unsigned flags, float init_scale);
struct sg_param *sg_params_find(const struct sg_params *ps, const char *name);
/* Allocate the arenas on c's device and point every param at its slot. with_optim adds m, v. */
void sg_params_alloc(struct sg_params *ps, struct sg_ctx *c, int with_optim);
/* Fill every parameter per its INIT_* flag, in registration order, from rng (host side). */
void sg_params_init_values(struct sg_params *ps, struct sg_rng *rng);
void sg_params_zero_grad(struct sg_params *ps);
int64_t sg_params_count(const struct sg_params *ps, int trainable_only);
void sg_params_free(struct sg_params *ps);

/* Save every parameter (and buffer) under its name; meta may be NULL (key/value pairs, NULL
 * terminated). Atomic. Returns 0 or -1 with sg_err. */
int sg_params_save(const struct sg_params *ps, const char *path, const char *const *meta);
/* Load by name. strict: every registered param must be present and no extra tensors may
 * exist. Shapes must match exactly. */
int sg_params_load(struct sg_params *ps, const char *path, int strict);

#endif
