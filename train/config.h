/*
 * train/config.h — the training configuration (`sogclip train -c FILE.yaml [key=value ...]`).
 * Every key is known and typed (core/config.h): an unknown key, a wrong type or an
 * out-of-range value stops before any work with "file:line:col: key: message", exit code 2.
 * The resolved configuration is written to the run folder (config.yaml) and into every
 * checkpoint's metadata.
 *
 *   run:        name, output_dir, seed, threads, device (cpu | cuda), device_id, precision
 *               (fp32 | bf16: bf16 mixed precision of the GEMM-heavy ops on cuda, ctx.precision;
 *               a CPU run computes in fp32 and says so)
 *   model:      name (configs/models/<name>.yaml or a path), grad_checkpointing
 *   data:       train (CSV/TSV, WebDataset shard list, or a folder), kind (auto | csv | wds |
 *               folder), image_root, image_key, caption_key, separator, workers, prefetch,
 *               max_bad_fraction, augment (clip | simclr | eval), decode_min_side
 *   tokenizer:  model (SentencePiece .model), lower, clean_ws
 *   loss:       name (sogclr | isogclr | fastclip | clip; ssl mode: sogclr_uni | isogclr_uni |
 *               simclr), tau, gamma, gamma_schedule
 *               (constant | cosine), gamma_decay_epochs, rho, tau_min, tau_max, eta, beta
 *   optim:      name (adamw | sgd | lars), lr, lr_min, weight_decay, beta1, beta2, eps,
 *               momentum, nesterov, trust_coef, warmup_steps, clip_grad_norm, lr_scaling
 *               (none | linear | sqrt), lr_tau (the temperature's learning rate: FastCLIP's
 *               logit_scale param group), lr_tau_schedule (cosine | constant | step_thresh)
 *   train:      mode (clip | ssl), batch_size, epochs, max_steps (0: epochs decide), log_every,
 *               precision (deprecated: bf16 there moves to run.precision; always fp32 after
 *               loading)
 *   ssl:        (mode ssl) image_size, layers [s1..s4], width, bottleneck, cifar_stem,
 *               zero_init_residual, proj_layers, proj_hidden, proj_dim — ResNet backbone +
 *               SogCLR projection head
 *   checkpoint: every_steps, keep, export_weights
 *   log:        tensorboard, progress (auto | bar | lines)
 *   eval:       every_epochs, zeroshot_dir, zeroshot_classnames, zeroshot_templates,
 *               retrieval (a CSV/TSV of held-out pairs), batch_size
 *   dist:       backend (auto | single | mpi | nccl), timeout_s, sync_bn — data-parallel
 *               training when launched by mpirun / srun: train.batch_size is the GLOBAL batch
 *               (each of the W ranks takes batch_size / W), so a config means the same run at
 *               any world size; sync_bn (default false): BatchNorm statistics over the global
 *               batch (SyncBN, ops/norm.h; CPU), as one process would compute them — without
 *               it each rank normalises with its own batch_size / W samples (torch DDP's
 *               default); no effect with one process or a model without BatchNorm
 */
#ifndef SG_TRAIN_CONFIG_H
#define SG_TRAIN_CONFIG_H

#include <stdio.h>

#include "core/yaml.h"

#define SG_PATH_MAX 512

enum sg_loss_kind {
    SG_LOSS_SOGCLR,
    SG_LOSS_ISOGCLR,
    SG_LOSS_FASTCLIP,
    SG_LOSS_CLIP,
    SG_LOSS_SOGCLR_UNI, /* unimodal SogCLR (ssl mode); isogclr_uni: per-sample temperatures */
    SG_LOSS_ISOGCLR_UNI,
    SG_LOSS_SIMCLR,
};
enum sg_train_mode { SG_MODE_CLIP, SG_MODE_SSL };
enum sg_optim_name { SG_OPTIM_ADAMW, SG_OPTIM_SGD, SG_OPTIM_LARS };
enum sg_aug_name { SG_AUGMENT_CLIP, SG_AUGMENT_SIMCLR, SG_AUGMENT_EVAL };
enum sg_progress { SG_PROGRESS_AUTO, SG_PROGRESS_BAR, SG_PROGRESS_LINES };

struct sg_train_config {
    struct {
        char name[128], output_dir[SG_PATH_MAX];
        int seed, threads, device, device_id, precision; /* device: 0 cpu, 1 cuda; precision:
                                                            0 fp32, 1 bf16 (enum sg_precision) */
    } run;
    struct {
        char name[SG_PATH_MAX];
        int grad_checkpointing;
    } model;
    struct {
        char train[SG_PATH_MAX], kind[16], image_root[SG_PATH_MAX];
        char image_key[64], caption_key[64], separator[8];
        int workers, prefetch, augment, decode_min_side;
        float max_bad_fraction;
    } data;
    struct {
        char model[SG_PATH_MAX];
        int lower, clean_ws;
    } tokenizer;
    struct {
        int name, gamma_schedule, gamma_decay_epochs;
        float tau, gamma, rho, tau_min, tau_max, eta, beta;
    } loss;
    struct {
        int name, nesterov, warmup_steps, lr_scaling;
        float lr, lr_min, weight_decay, beta1, beta2, eps, momentum, trust_coef, clip_grad_norm;
        float lr_tau;        /* the temperature's learning rate (0: lr) */
        int lr_tau_schedule; /* enum sg_lr_tau_schedule (nn/optim.h) */
    } optim;
    struct {
        int mode, batch_size, epochs, max_steps, log_every, precision;
    } train;
    struct {
        int image_size, layers[4], nlayers, width, bottleneck, cifar_stem, zero_init_residual;
        int proj_layers, proj_hidden, proj_dim;
    } ssl;
    struct {
        int every_steps, keep, export_weights;
    } checkpoint;
    struct {
        int tensorboard, progress;
    } log;
    struct {
        int every_epochs, batch_size;
        char zeroshot_dir[SG_PATH_MAX], zeroshot_classnames[SG_PATH_MAX];
        char zeroshot_templates[SG_PATH_MAX], retrieval[SG_PATH_MAX];
    } eval;
    struct {
        int backend;     /* 0 auto, 1 single, 2 mpi, 3 nccl */
        float timeout_s; /* per collective (0: wait forever) */
        int sync_bn;     /* BatchNorm statistics over all ranks (ctx.bn_sync) */
    } dist;
};

void sg_train_config_defaults(struct sg_train_config *cfg);
/* Load path, apply overrides ("a.b=v", n of them), bind and validate. Relative paths are
 * relative to the working directory (as open_clip's). Returns 0, or -1 with sg_err. */
int sg_train_config_load(struct sg_train_config *cfg, const char *path,
                         const char *const *overrides, int n);
/* The same from a YAML text (a checkpoint's "config" metadata); name labels messages. */
int sg_train_config_load_string(struct sg_train_config *cfg, const char *text, const char *name);
/* The resolved configuration as YAML (binds back to the same values). */
int sg_train_config_dump(FILE *f, const struct sg_train_config *cfg);
/* Same, into a malloc'd string (for checkpoint metadata and report.html). */
char *sg_train_config_yaml(const struct sg_train_config *cfg);

#endif
