/*
 * train/config.c — training config key tables, defaults, loading and validation (see
 * train/config.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "train/config.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/config.h"

#define T(x) offsetof(struct sg_train_config, x)
#define INT(k, f, lo, hi, h)                                                                       \
    {                                                                                              \
        .key = k, .type = SG_CFG_INT, .offset = T(f), .min = lo, .max = hi, .help = h              \
    }
#define FLT(k, f, lo, hi, h)                                                                       \
    {                                                                                              \
        .key = k, .type = SG_CFG_FLOAT, .offset = T(f), .min = lo, .max = hi, .help = h            \
    }
#define BOOL(k, f, h)                                                                              \
    {                                                                                              \
        .key = k, .type = SG_CFG_BOOL, .offset = T(f), .help = h                                   \
    }
#define STR(k, f, h)                                                                               \
    {                                                                                              \
        .key = k, .type = SG_CFG_STRING, .offset = T(f),                                           \
        .cap = (int)sizeof(((struct sg_train_config *)0)->f), .help = h                            \
    }
#define ENUM(k, f, ch, h)                                                                          \
    {                                                                                              \
        .key = k, .type = SG_CFG_ENUM, .offset = T(f), .choices = ch, .help = h                    \
    }
/* sections bind at offset 0 of the whole struct: fields carry their full offsets */
#define SECTION(k, tab, h)                                                                         \
    {                                                                                              \
        .key = k, .type = SG_CFG_SECTION, .offset = 0, .sub = tab, .help = h                       \
    }

static const char *const devices[] = {"cpu", "cuda", NULL};
static const char *const augments[] = {"clip", "simclr", "eval", NULL};
static const char *const losses[] = {"sogclr",     "isogclr",     "fastclip", "clip",
                                     "sogclr_uni", "isogclr_uni", "simclr",   NULL};
static const char *const modes[] = {"clip", "ssl", NULL};
static const char *const schedules[] = {"constant", "cosine", NULL};
static const char *const optims[] = {"adamw", "sgd", "lars", NULL};
static const char *const scalings[] = {"none", "linear", "sqrt", NULL};
static const char *const lr_tau_schedules[] = {"cosine", "constant", "step_thresh", NULL};
static const char *const precisions[] = {"fp32", "bf16", NULL};
static const char *const progress[] = {"auto", "bar", "lines", NULL};
static const char *const dist_backends[] = {"auto", "single", "mpi", "nccl", NULL};

static const struct sg_cfg_key run_keys[] = {
    STR("name", run.name, "run name: the run folder is output_dir/name"),
    STR("output_dir", run.output_dir, "folder holding the run folders"),
    INT("seed", run.seed, 0, 2147483647, "seed of initialisation, shuffling and augmentation"),
    INT("threads", run.threads, 0, 1024, "CPU threads (0: all cores)"),
    ENUM("device", run.device, devices, "cpu or cuda"),
    INT("device_id", run.device_id, 0, 64, "CUDA device ordinal"),
    ENUM("precision", run.precision, precisions,
         "fp32, or bf16 mixed precision on cuda (the CPU computes in fp32)"),
    {0}};

static const struct sg_cfg_key model_keys[] = {
    STR("name", model.name, "model config: a name in configs/models or a path"),
    BOOL("grad_checkpointing", model.grad_checkpointing, "recompute transformer blocks"),
    {0}};

static const struct sg_cfg_key data_keys[] = {
    STR("train", data.train, "training data: CSV/TSV file, WebDataset shards, or a folder"),
    STR("kind", data.kind, "auto, csv, wds or folder"),
    STR("image_root", data.image_root, "folder for relative image paths (CSV/TSV)"),
    STR("image_key", data.image_key, "CSV/TSV column of image paths"),
    STR("caption_key", data.caption_key, "CSV/TSV column of captions"),
    STR("separator", data.separator, "CSV/TSV separator (empty: by extension)"),
    INT("workers", data.workers, 1, 256, "decode/augment threads"),
    INT("prefetch", data.prefetch, 1, 64, "batches prepared ahead"),
    ENUM("augment", data.augment, augments, "augmentation preset"),
    INT("decode_min_side", data.decode_min_side, 0, 65536, "JPEG DCT downscaling floor (0: off)"),
    FLT("max_bad_fraction", data.max_bad_fraction, 0, 1, "stop when more samples are unreadable"),
    {0}};

static const struct sg_cfg_key tok_keys[] = {
    STR("model", tokenizer.model, "SentencePiece model file"),
    BOOL("lower", tokenizer.lower, "ASCII lower-casing before encoding"),
    BOOL("clean_ws", tokenizer.clean_ws, "collapse whitespace before encoding"),
    {0}};

static const struct sg_cfg_key loss_keys[] = {
    ENUM("name", loss.name, losses, "sogclr (two-way, default), isogclr, fastclip or clip"),
    FLT("tau", loss.tau, 1e-4, 10, "temperature (initial temperature for isogclr/fastclip)"),
    FLT("gamma", loss.gamma, 1e-6, 1, "moving-average weight of u (gamma_min for cosine)"),
    ENUM("gamma_schedule", loss.gamma_schedule, schedules, "constant or cosine per epoch"),
    INT("gamma_decay_epochs", loss.gamma_decay_epochs, 1, 1000000, "cosine: epochs to gamma"),
    FLT("rho", loss.rho, 0, 100, "isogclr/fastclip: DRO radius"),
    FLT("tau_min", loss.tau_min, 1e-4, 10, "isogclr/fastclip: temperature floor"),
    FLT("tau_max", loss.tau_max, 1e-4, 10, "isogclr/fastclip: temperature ceiling"),
    FLT("eta", loss.eta, 0, 100, "isogclr: temperature step size"),
    FLT("beta", loss.beta, 0, 1, "isogclr: temperature momentum"),
    {0}};

static const struct sg_cfg_key optim_keys[] = {
    ENUM("name", optim.name, optims, "adamw, sgd or lars"),
    FLT("lr", optim.lr, 0, 100, "peak learning rate (before lr_scaling)"),
    FLT("lr_min", optim.lr_min, 0, 100, "cosine floor"),
    FLT("weight_decay", optim.weight_decay, 0, 10, "decoupled (adamw) or L2 (sgd, lars)"),
    FLT("beta1", optim.beta1, 0, 0.999999, "adamw"),
    FLT("beta2", optim.beta2, 0, 0.999999, "adamw"),
    FLT("eps", optim.eps, 0, 1, "adamw"),
    FLT("momentum", optim.momentum, 0, 0.999999, "sgd, lars"),
    BOOL("nesterov", optim.nesterov, "sgd"),
    FLT("trust_coef", optim.trust_coef, 0, 1, "lars trust coefficient"),
    INT("warmup_steps", optim.warmup_steps, 0, 100000000, "linear warmup steps"),
    FLT("clip_grad_norm", optim.clip_grad_norm, 0, 1e6, "global gradient-norm clip (0: off)"),
    ENUM("lr_scaling", optim.lr_scaling, scalings, "none, linear (B/256) or sqrt (sqrt B)"),
    FLT("lr_tau", optim.lr_tau, 0, 100,
        "learning rate of the temperature (logit_scale; losses clip, fastclip) (0: lr)"),
    ENUM("lr_tau_schedule", optim.lr_tau_schedule, lr_tau_schedules,
         "cosine (the model's warmup and cosine), constant, or step_thresh (lr_tau / 3 while tau "
         "<= 0.03)"),
    {0}};

static const struct sg_cfg_key ssl_keys[] = {
    INT("image_size", ssl.image_size, 8, 4096, "training crop side"),
    {.key = "layers",
     .type = SG_CFG_INT_LIST,
     .offset = T(ssl.layers),
     .offset_count = T(ssl.nlayers),
     .cap = 4,
     .min = 1,
     .max = 64,
     .help = "ResNet blocks per stage: [2,2,2,2] ResNet-18, [3,4,6,3] ResNet-50"},
    INT("width", ssl.width, 1, 4096, "ResNet base width"),
    BOOL("bottleneck", ssl.bottleneck, "Bottleneck blocks (ResNet-50)"),
    BOOL("cifar_stem", ssl.cifar_stem, "3x3 stride-1 stem without max-pool (CIFAR)"),
    BOOL("zero_init_residual", ssl.zero_init_residual,
         "last BatchNorm of every block starts at 0 (torchvision; SogCLR's ImageNet ResNet-50)"),
    INT("proj_layers", ssl.proj_layers, 1, 8, "projection head layers"),
    INT("proj_hidden", ssl.proj_hidden, 1, 65536, "projection head hidden width"),
    INT("proj_dim", ssl.proj_dim, 1, 65536, "projection output width"),
    {0}};

static const struct sg_cfg_key train_keys[] = {
    ENUM("mode", train.mode, modes, "clip (image-text) or ssl (two views, unimodal)"),
    INT("batch_size", train.batch_size, 2, 1 << 20, "pairs per step"),
    INT("epochs", train.epochs, 1, 1000000, "passes over the data"),
    INT("max_steps", train.max_steps, 0, 2000000000, "stop after this many steps (0: no limit)"),
    INT("log_every", train.log_every, 1, 1000000, "steps between log lines"),
    ENUM("precision", train.precision, precisions, "deprecated: use run.precision"),
    {0}};

static const struct sg_cfg_key ckpt_keys[] = {
    INT("every_steps", checkpoint.every_steps, 0, 2000000000, "checkpoint period (0: end only)"),
    INT("keep", checkpoint.keep, 1, 100000, "checkpoints kept"),
    BOOL("export_weights", checkpoint.export_weights, "also write weights-only model.safetensors"),
    {0}};

static const struct sg_cfg_key log_keys[] = {
    BOOL("tensorboard", log.tensorboard, "write TensorBoard event files"),
    ENUM("progress", log.progress, progress, "auto (bar on a terminal), bar or lines"),
    {0}};

static const struct sg_cfg_key eval_keys[] = {
    INT("every_epochs", eval.every_epochs, 0, 1000000, "evaluation period (0: end only)"),
    INT("batch_size", eval.batch_size, 1, 1 << 20, "evaluation batch"),
    STR("zeroshot_dir", eval.zeroshot_dir, "ImageNet-style folder for zero-shot (empty: off)"),
    STR("zeroshot_classnames", eval.zeroshot_classnames, "class names, one per line"),
    STR("zeroshot_templates", eval.zeroshot_templates, "prompt templates with {}"),
    STR("retrieval", eval.retrieval, "CSV/TSV of held-out pairs for retrieval (empty: off)"),
    {0}};

static const struct sg_cfg_key dist_keys[] = {
    ENUM("backend", dist.backend, dist_backends,
         "auto (from the launcher's environment), single, mpi or nccl"),
    FLT("timeout_s", dist.timeout_s, 0.0, 1e7,
        "seconds a collective may wait before the run stops with an error (0: forever)"),
    BOOL("sync_bn", dist.sync_bn,
         "BatchNorm statistics over the global batch of all ranks (SyncBN; CPU)"),
    {0}};

static const struct sg_cfg_key top_keys[] = {
    SECTION("run", run_keys, "run folder, seed, device"),
    SECTION("model", model_keys, "model"),
    SECTION("data", data_keys, "training data"),
    SECTION("tokenizer", tok_keys, "tokenizer"),
    SECTION("loss", loss_keys, "contrastive loss"),
    SECTION("optim", optim_keys, "optimizer and schedule"),
    SECTION("train", train_keys, "batch, epochs"),
    SECTION("ssl", ssl_keys, "unimodal self-supervised model (train.mode ssl)"),
    SECTION("checkpoint", ckpt_keys, "checkpoints"),
    SECTION("log", log_keys, "logging"),
    SECTION("eval", eval_keys, "evaluation during training"),
    SECTION("dist", dist_keys, "data-parallel training (mpirun / srun)"),
    {0}};

void sg_train_config_defaults(struct sg_train_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->run.name, sizeof c->run.name, "run");
    snprintf(c->run.output_dir, sizeof c->run.output_dir, "runs");
    snprintf(c->data.kind, sizeof c->data.kind, "auto");
    snprintf(c->data.image_key, sizeof c->data.image_key, "filepath");
    snprintf(c->data.caption_key, sizeof c->data.caption_key, "title");
    c->data.workers = 2;
    c->data.prefetch = 2;
    c->data.max_bad_fraction = 0.05f;
    c->loss.tau = 0.01f;
    c->loss.gamma = 0.9f;
    c->loss.gamma_decay_epochs = 1;
    c->loss.rho = 6.5f;
    c->loss.tau_min = 0.01f;
    c->loss.tau_max = 1.0f;
    c->loss.eta = 0.01f;
    c->loss.beta = 0.9f;
    c->optim.lr = 1e-3f;
    c->optim.weight_decay = 0.1f;
    c->optim.beta1 = 0.9f;
    c->optim.beta2 = 0.999f;
    c->optim.eps = 1e-8f;
    c->optim.momentum = 0.9f;
    c->optim.trust_coef = 0.001f;
    c->train.batch_size = 64;
    c->dist.timeout_s = 600.0f;
    c->train.epochs = 1;
    c->train.log_every = 10;
    c->checkpoint.keep = 3;
    c->checkpoint.export_weights = 1;
    c->log.tensorboard = 1;
    c->eval.batch_size = 128;
    c->ssl.image_size = 32;
    c->ssl.layers[0] = c->ssl.layers[1] = c->ssl.layers[2] = c->ssl.layers[3] = 2;
    c->ssl.nlayers = 4;
    c->ssl.width = 64;
    c->ssl.proj_layers = 2;
    c->ssl.proj_hidden = 2048;
    c->ssl.proj_dim = 128;
}

static int validate_mode(const struct sg_train_config *c, const char *path)
{
    int ssl_loss = c->loss.name >= SG_LOSS_SOGCLR_UNI;
    if (c->train.mode == SG_MODE_SSL) {
        if (!ssl_loss)
            return sg_err("%s: loss.name: train.mode ssl takes sogclr_uni, isogclr_uni or simclr",
                          path);
        if (c->ssl.nlayers != 4) return sg_err("%s: ssl.layers: four stages expected", path);
        return 0;
    }
    if (ssl_loss)
        return sg_err("%s: loss.name: %s is a unimodal loss: set train.mode: ssl", path,
                      losses[c->loss.name]);
    if (!c->model.name[0]) return sg_err("%s: model.name: missing (e.g. tiny-vit, ViT-B-32)", path);
    if (!c->tokenizer.model[0])
        return sg_err("%s: tokenizer.model: missing (train one: sogclip tokenizer train)", path);
    return 0;
}

static int validate(const struct sg_train_config *c, const char *path)
{
    if (!c->data.train[0])
        return sg_err("%s: data.train: missing (a CSV/TSV, shards or folder)", path);
    if (validate_mode(c, path)) return -1;
    if (c->loss.tau_min > c->loss.tau_max)
        return sg_err("%s: loss.tau_min %g > loss.tau_max %g", path, c->loss.tau_min,
                      c->loss.tau_max);
    return 0;
}

/* Overrides, bind and validate on a loaded document. */
static int load_doc(struct sg_train_config *cfg, struct sg_ydoc *d, const char *name,
                    const char *const *overrides, int n)
{
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *eq = strchr(overrides[i], '=');
        char key[256];
        if (!eq || eq == overrides[i] || (size_t)(eq - overrides[i]) >= sizeof key)
            return sg_err("override '%s': expected key=value (e.g. optim.lr=1e-4)", overrides[i]);
        snprintf(key, sizeof key, "%.*s", (int)(eq - overrides[i]), overrides[i]);
        rc = sg_yaml_set(d, key, eq + 1);
    }
    if (rc == 0) rc = sg_cfg_bind(d, d->root, top_keys, cfg);
    if (rc) return -1;
    /* the older key train.precision: bf16 moves to run.precision (and dumps as the default) */
    if (cfg->train.precision) cfg->run.precision = cfg->train.precision;
    cfg->train.precision = 0;
    return validate(cfg, name);
}

int sg_train_config_load(struct sg_train_config *cfg, const char *path,
                         const char *const *overrides, int n)
{
    struct sg_ydoc d;
    sg_train_config_defaults(cfg);
    if (sg_yaml_load_file(&d, path)) return -1;
    int rc = load_doc(cfg, &d, path, overrides, n);
    sg_yaml_free(&d);
    return rc;
}

int sg_train_config_load_string(struct sg_train_config *cfg, const char *text, const char *name)
{
    struct sg_ydoc d;
    sg_train_config_defaults(cfg);
    if (sg_yaml_load_string(&d, text, name)) return -1;
    int rc = load_doc(cfg, &d, name, NULL, 0);
    sg_yaml_free(&d);
    return rc;
}

int sg_train_config_dump(FILE *f, const struct sg_train_config *cfg)
{
    return sg_cfg_dump(f, top_keys, cfg, 0);
}

char *sg_train_config_yaml(const struct sg_train_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    int rc = sg_train_config_dump(f, cfg);
    fclose(f);
    if (rc) {
        free(buf);
        return NULL;
    }
    return buf;
}
