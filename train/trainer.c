/*
 * train/trainer.c — the training loop of `sogclip train` (see train/trainer.h).
 *
 * Devices: everything runs on one context (run.device, run.device_id; run.precision sets
 * ctx.precision on CUDA): parameters, optimizer moments, activations, feature gradients, the
 * loss state after its first step. Token ids stay on the host (the text encoder uploads the
 * used prefix); images and sample ids reach the device through the input feed below.
 */
#define _POSIX_C_SOURCE 200809L
#include "train/trainer.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/cuda_api.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "model/clip.h"
#include "model/clip_config.h"
#include "nn/optim.h"
#include "ops/input.h"
#include "text/tokenizer.h"
#include "eval/clip_eval.h"
#include "core/dist.h"
#include "train/checkpoint.h"
#include "train/runlog.h"
#include "train/tfevents.h"
#include "train/ssl.h"
#include "train/train_loss.h"

/* A rank still waiting in a collective this long after SIGINT/SIGTERM gives up (core/dist.h
 * sg_dist_set_stop): when a rank dies the launcher signals the others, which then end in
 * seconds rather than after dist.timeout_s; healthy ranks finish their step's collectives in
 * far less (a Ctrl-C still checkpoints). */
#define STOP_GRACE_S 30.0

static volatile sig_atomic_t g_stop_signal;

static void on_signal(int sig)
{
    g_stop_signal = sig;
}

/* ---- the input feed -------------------------------------------------------------------------
 * CPU: the loader's float batch is used in place and released after the step (as before the
 * GPU path existed: bit-identical results).
 * CUDA: the loader emits uint8 pixels (loader u8 option: 4x less to copy). A batch is copied into
 * one of two pinned staging slots and released at once, then its pixels and sample ids are
 * uploaded on a dedicated copy stream and an event is recorded; the compute stream waits on that
 * event (no host wait) and op_normalize_u8 writes the float images the model reads. The next
 * batch is fetched and its upload queued while the current step's forward runs (feed_prefetch,
 * called once the forward is queued), so the copy overlaps compute. Slot reuse is ordered by
 * events: a slot's upload waits (on the copy stream) for `used`, recorded on the compute stream
 * after the step that last read the slot; the host waits for a slot's previous upload (`up`)
 * before overwriting its pinned memory. Checkpoints record the loader position of the batch
 * last trained (a prefetched batch is simply fetched again after a resume).
 */
#define FEED_SLOTS 2

struct feed_slot {
    uint8_t *pin_img; /* (B, V, 3, S, S) pinned host */
    int64_t *pin_idx; /* (B) pinned host */
    int32_t *ids;     /* (B, T) host (NULL in ssl mode) */
    uint8_t *dev_img; /* (B, V, 3, S, S) device */
    int64_t *dev_idx; /* (B) device */
    void *up, *used;  /* events: upload done (copy stream); last reader done (compute stream) */
    int n;
    struct sg_loader_pos pos; /* loader position after this batch */
};

struct feed {
    int gpu;
    struct sg_batch *held; /* CPU: the loader batch of the current step */
    struct feed_slot slot[FEED_SLOTS];
    void *copy_stream;
    float *img;       /* (B, V, 3, S, S) device: the normalised images of the current step */
    int cur, pending; /* slot of the current step; slot holding the next batch, or -1 */
    int B, V, S, T;
    double wait; /* seconds the host spent waiting for / staging data */
};

/* One step's input, on the context's device except ids (host). */
struct fed {
    const float *img;   /* (n, V, 3, S, S) */
    const int32_t *ids; /* (n, T) host; NULL in ssl mode */
    const int64_t *idx; /* (n) */
    int n;
    struct sg_loader_pos pos;
};

struct trainer {
    const struct sg_train_config *cfg;
    const struct sg_train_opts *opts;
    struct sg_ctx ctx;
    struct sg_dist dist; /* data-parallel ranks (world 1: single process) */
    int B;               /* pairs per step on this rank: train.batch_size / world */
    struct sg_tokenizer *tok;
    struct sg_dataset *ds;
    struct sg_aug_config aug;
    struct sg_loader *loader;
    struct sg_clip_config mcfg;
    struct sg_clip *model; /* clip mode */
    struct sg_train_loss loss;
    struct sg_ssl_model *ssl; /* ssl mode */
    struct sg_ssl_loss ssl_loss;
    struct sg_params *ps; /* the trained parameters (either model) */
    struct sg_optim optim;
    struct sg_runlog log;
    char run_dir[SG_PATH_MAX + 160];
    char *config_yaml, *model_yaml;
    float *dzi, *dzt; /* (B,E) on the context's device */
    struct feed feed;
    struct sg_loader_pos pos; /* loader position after the last trained batch */
    int64_t step, total_steps;
    float base_lr;     /* optim.lr after lr_scaling */
    float base_lr_tau; /* the temperature's (optim.lr_tau, or base_lr), scaled alike */
    int progress_bar;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static char *model_config_yaml(const struct sg_clip_config *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    sg_clip_config_dump(f, m, 0);
    fclose(f);
    return buf;
}

/* ---- setup ------------------------------------------------------------------------------ */

static int open_tokenizer(struct trainer *t)
{
    struct sg_tokenizer_opts o;
    sg_tokenizer_default_opts(&o);
    o.lower = t->cfg->tokenizer.lower;
    o.clean_ws = t->cfg->tokenizer.clean_ws;
    return sg_tokenizer_load(t->cfg->tokenizer.model, &o, &t->tok);
}

static int open_data(struct trainer *t)
{
    const struct sg_train_config *c = t->cfg;
    struct sg_dataset_spec spec = {.kind = strcmp(c->data.kind, "auto") ? c->data.kind : NULL,
                                   .path = c->data.train,
                                   .image_root = c->data.image_root[0] ? c->data.image_root : NULL,
                                   .image_key = c->data.image_key[0] ? c->data.image_key : NULL,
                                   .caption_key =
                                       c->data.caption_key[0] ? c->data.caption_key : NULL,
                                   .separator = c->data.separator[0] ? c->data.separator : NULL};
    if (sg_dataset_open(&spec, &t->ds)) return -1;
    if (t->ds->n < c->train.batch_size)
        return sg_err("%s: %lld samples, fewer than train.batch_size %d", c->data.train,
                      (long long)t->ds->n, c->train.batch_size);
    static const enum sg_aug_preset presets[] = {SG_AUG_CLIP, SG_AUG_SIMCLR, SG_AUG_EVAL};
    int ssl = c->train.mode == SG_MODE_SSL;
    sg_aug_preset(&t->aug, presets[c->data.augment],
                  ssl ? c->ssl.image_size : t->mcfg.vision.image_size);
    struct sg_loader_config lc;
    sg_loader_default_config(&lc);
    lc.batch = t->B;
    lc.shard_rank = t->dist.rank; /* world 1: the whole dataset */
    lc.shard_world = t->dist.world;
    lc.workers = c->data.workers;
    lc.prefetch_batches = c->data.prefetch;
    lc.seed = (uint64_t)c->run.seed;
    lc.drop_last = 1;
    lc.aug = &t->aug;
    lc.tok = t->tok;
    lc.views = ssl ? 2 : 1;
    if (!ssl) lc.context_length = t->mcfg.text.context_length;
    lc.max_bad_fraction = c->data.max_bad_fraction;
    lc.decode_min_side = c->data.decode_min_side;
    lc.u8 = t->ctx.dev == SG_DEVICE_CUDA; /* normalised on the GPU after a 4x smaller upload */
    return sg_loader_open(&lc, t->ds, &t->loader);
}

/* The model must fit the tokenizer: vocabulary and end token. */
static int open_model(struct trainer *t)
{
    const struct sg_train_config *c = t->cfg;
    if (sg_clip_config_load(&t->mcfg, c->model.name)) return -1;
    t->mcfg.grad_checkpointing = c->model.grad_checkpointing;
    int V = sg_tokenizer_vocab_size(t->tok), bos, eos, pad;
    sg_tokenizer_special_ids(t->tok, &bos, &eos, &pad);
    if (V > t->mcfg.text.vocab_size)
        return sg_err("tokenizer %s has %d pieces but model %s has text_cfg.vocab_size %d",
                      c->tokenizer.model, V, c->model.name, t->mcfg.text.vocab_size);
    if (t->mcfg.text.eot_token < 0 && eos >= 0 && eos != V - 1) t->mcfg.text.eot_token = eos;
    t->model = sg_xcalloc(1, sizeof *t->model);
    sg_clip_create(t->model, &t->mcfg, &t->ctx, 1, (uint64_t)c->run.seed);
    sg_clip_plan(t->model, t->B);
    size_t be = (size_t)t->B * t->mcfg.embed_dim;
    t->dzi = sg_dev_alloc(&t->ctx, be * sizeof(float));
    t->dzt = sg_dev_alloc(&t->ctx, be * sizeof(float));
    return 0;
}

static int open_optim(struct trainer *t)
{
    const struct sg_train_config *c = t->cfg;
    static const enum sg_optim_kind kinds[] = {SG_OPT_ADAMW, SG_OPT_SGD, SG_OPT_LARS};
    struct sg_optim_config oc = {.kind = kinds[c->optim.name],
                                 .lr = c->optim.lr,
                                 .weight_decay = c->optim.weight_decay,
                                 .beta1 = c->optim.beta1,
                                 .beta2 = c->optim.beta2,
                                 .eps = c->optim.eps,
                                 .momentum = c->optim.momentum,
                                 .nesterov = c->optim.nesterov,
                                 .trust_coef = c->optim.trust_coef,
                                 .clip_grad_norm = c->optim.clip_grad_norm};
    t->base_lr = sg_lr_scale(c->optim.lr, c->train.batch_size, c->optim.lr_scaling);
    t->base_lr_tau = c->optim.lr_tau > 0.0f
                         ? sg_lr_scale(c->optim.lr_tau, c->train.batch_size, c->optim.lr_scaling)
                         : t->base_lr;
    return sg_optim_init(&t->optim, &oc, t->ps);
}

/* ---- input feed (see the top of the file) ------------------------------------------------ */

static void feed_init(struct trainer *t)
{
    struct feed *f = &t->feed;
    const struct sg_train_config *c = t->cfg;
    memset(f, 0, sizeof *f);
    f->cur = f->pending = -1;
    f->B = t->B;
    f->V = c->train.mode == SG_MODE_SSL ? 2 : 1;
    f->S = t->aug.size;
    f->T = c->train.mode == SG_MODE_SSL ? 0 : t->mcfg.text.context_length;
    if (t->ctx.dev != SG_DEVICE_CUDA) return;
#ifdef SG_CUDA
    struct sg_ctx *x = &t->ctx;
    size_t px = (size_t)f->B * f->V * 3 * f->S * f->S;
    f->gpu = 1;
    f->copy_stream = sg_cuda_stream_new(x);
    f->img = sg_dev_alloc(x, px * sizeof(float));
    for (int k = 0; k < FEED_SLOTS; k++) {
        struct feed_slot *s = &f->slot[k];
        s->pin_img = sg_host_alloc(x, px);
        s->pin_idx = sg_host_alloc(x, (size_t)f->B * sizeof(int64_t));
        s->ids = f->T ? sg_xmalloc((size_t)f->B * f->T * sizeof(int32_t)) : NULL;
        s->dev_img = sg_dev_alloc(x, px);
        s->dev_idx = sg_dev_alloc(x, (size_t)f->B * sizeof(int64_t));
        s->up = sg_cuda_event_new(x);
        s->used = sg_cuda_event_new(x);
    }
#else
    SG_PANIC("CUDA context in a build without CUDA");
#endif
}

static void feed_free(struct trainer *t)
{
    struct feed *f = &t->feed;
    if (f->held) sg_loader_release(t->loader, f->held);
    f->held = NULL;
#ifdef SG_CUDA
    if (f->gpu) {
        struct sg_ctx *x = &t->ctx;
        sg_cuda_stream_free(x, f->copy_stream); /* waits for queued uploads */
        sg_ctx_sync(x);
        for (int k = 0; k < FEED_SLOTS; k++) {
            struct feed_slot *s = &f->slot[k];
            sg_host_free(x, s->pin_img);
            sg_host_free(x, s->pin_idx);
            free(s->ids);
            sg_dev_free(x, s->dev_img);
            sg_dev_free(x, s->dev_idx);
            sg_cuda_event_free(x, s->up);
            sg_cuda_event_free(x, s->used);
        }
        sg_dev_free(x, f->img);
    }
#endif
    memset(f, 0, sizeof *f);
}

/* Before the loader restarts (new epoch, seek): forget a prefetched batch. */
static void feed_reset(struct trainer *t)
{
    t->feed.pending = -1;
}

#ifdef SG_CUDA
/* The next loader batch into slot k: staged in pinned memory, released, upload queued on the
 * copy stream. Returns 1, 0 (epoch done) or -1 (loader error, sg_err set). */
static int feed_fetch(struct trainer *t, int k)
{
    struct feed *f = &t->feed;
    struct feed_slot *s = &f->slot[k];
    struct sg_ctx *x = &t->ctx;
    struct sg_batch *b;
    double t0 = now_s();
    int rc = sg_loader_next(t->loader, &b);
    if (rc == 1) {
        size_t row = (size_t)f->V * 3 * f->S * f->S;
        sg_cuda_event_sync(x, s->up); /* the slot's previous upload has left the pinned buffer */
        memcpy(s->pin_img, b->img_u8, (size_t)b->n * row);
        memcpy(s->pin_idx, b->idx, (size_t)b->n * sizeof(int64_t));
        if (s->ids) memcpy(s->ids, b->ids, (size_t)b->n * f->T * sizeof(int32_t));
        s->n = b->n;
        sg_loader_position(t->loader, &s->pos);
        sg_loader_release(t->loader, b);
        /* the device slot is free once the step that last read it is done */
        sg_cuda_stream_wait_event(x, f->copy_stream, s->used);
        sg_cuda_memcpy_h2d_async(x, s->dev_img, s->pin_img, (size_t)s->n * row, f->copy_stream);
        sg_cuda_memcpy_h2d_async(x, s->dev_idx, s->pin_idx, (size_t)s->n * sizeof(int64_t),
                                 f->copy_stream);
        sg_cuda_event_record(x, s->up, f->copy_stream);
    }
    f->wait += now_s() - t0;
    return rc;
}
#endif

/* The next step's input. Returns 1, 0 (epoch done) or -1 (sg_err set). */
static int feed_next(struct trainer *t, struct fed *out)
{
    struct feed *f = &t->feed;
    memset(out, 0, sizeof *out);
    if (!f->gpu) {
        struct sg_batch *b;
        double t0 = now_s();
        int rc = sg_loader_next(t->loader, &b);
        f->wait += now_s() - t0;
        if (rc != 1) return rc;
        f->held = b;
        *out = (struct fed){b->img, b->ids, b->idx, b->n, {0, 0, 0, 0, 0}};
        sg_loader_position(t->loader, &out->pos);
        return 1;
    }
#ifdef SG_CUDA
    int k = f->pending;
    if (k < 0) {
        k = f->cur < 0 ? 0 : (f->cur + 1) % FEED_SLOTS;
        int rc = feed_fetch(t, k);
        if (rc != 1) return rc;
    }
    f->pending = -1;
    f->cur = k;
    struct feed_slot *s = &f->slot[k];
    sg_cuda_stream_wait_event(&t->ctx, NULL, s->up); /* compute waits for the upload */
    op_normalize_u8(&t->ctx, f->img, s->dev_img, (int64_t)s->n * f->V, (int64_t)f->S * f->S,
                    t->aug.mean, t->aug.std);
    *out = (struct fed){f->img, s->ids, s->dev_idx, s->n, s->pos};
    return 1;
#else
    return sg_err("CUDA feed in a build without CUDA");
#endif
}

/* GPU: fetch the next step's batch and queue its upload now (called while the current step's
 * forward is queued). A batch past the end of training or of the epoch is not fetched. */
static void feed_prefetch(struct trainer *t)
{
#ifdef SG_CUDA
    struct feed *f = &t->feed;
    if (!f->gpu || f->pending >= 0 || t->step + 1 >= t->total_steps) return;
    int k = (f->cur + 1) % FEED_SLOTS;
    if (feed_fetch(t, k) == 1) f->pending = k; /* 0 / -1 come back from the next feed_next */
#else
    SG_UNUSED(t);
#endif
}

/* The step is queued / done with its input. */
static void feed_done(struct trainer *t)
{
    struct feed *f = &t->feed;
    if (f->held) sg_loader_release(t->loader, f->held);
    f->held = NULL;
#ifdef SG_CUDA
    if (f->gpu) sg_cuda_event_record(&t->ctx, f->slot[f->cur].used, NULL);
#endif
}

static void loader_start_epoch(struct trainer *t, int64_t epoch)
{
    feed_reset(t);
    sg_loader_start_epoch(t->loader, epoch);
    sg_loader_position(t->loader, &t->pos);
}

static int loader_seek(struct trainer *t, const struct sg_loader_pos *pos)
{
    feed_reset(t);
    if (sg_loader_seek(t->loader, pos)) return -1;
    sg_loader_position(t->loader, &t->pos);
    return 0;
}

/* The GPU of this process: run.device_id + the launcher's local rank (one GPU per rank on a
 * node), modulo the GPUs visible (one visible GPU per rank, e.g. Slurm --gpus-per-task: 0). */
static int local_device_id(const struct sg_train_config *c)
{
    int r, w, local, id = c->run.device_id;
    if (!sg_dist_env(&r, &w, &local) || w < 2) return id;
#ifdef SG_CUDA
    int n = sg_cuda_device_count();
    if (n > 0) id = (id + local) % n;
#endif
    return id;
}

static int open_device(struct trainer *t)
{
    const struct sg_train_config *c = t->cfg;
    enum sg_device dev = c->run.device ? SG_DEVICE_CUDA : SG_DEVICE_CPU;
    int id = dev == SG_DEVICE_CUDA ? local_device_id(c) : c->run.device_id;
    if (sg_ctx_init(&t->ctx, dev, id, c->run.threads)) return -1;
    if (dev == SG_DEVICE_CUDA)
        t->ctx.precision = c->run.precision ? SG_PREC_BF16 : SG_PREC_FP32;
    else if (c->run.precision && !t->opts->quiet)
        fprintf(stderr, "sogclip train: note: run.precision bf16 applies to device cuda; the CPU "
                        "computes in fp32\n");
    if (!t->opts->quiet && dev == SG_DEVICE_CUDA)
        fprintf(stderr, "sogclip train: device cuda:%d, %s\n", id,
                c->run.precision ? "bf16 mixed precision" : "fp32");
    return 0;
}

/* Data-parallel step (distributed loss, gradient sum) whenever a distributed backend runs, also
 * with one rank (mpirun -np 1, or dist.backend nccl on one GPU: the same code path). */
static int data_parallel(const struct trainer *t)
{
    return t->dist.backend != SG_DIST_SINGLE;
}

/* Ranks from the launcher (mpirun / srun). Every loss has its data-parallel step (the FastCLIP
 * pattern: losses/gcl_bimodal_dist.h, losses/clip_dist.h, losses/sogclr_uni_dist.h,
 * losses/simclr_dist.h). */
static int open_dist(struct trainer *t)
{
    const struct sg_train_config *c = t->cfg;
    static const char *const names[] = {"auto", "single", "mpi", "nccl"};
    const char *be = t->opts->dist_backend ? t->opts->dist_backend : names[c->dist.backend];
    if (sg_dist_init(&t->dist, be, &t->ctx, c->dist.timeout_s)) return -1;
    int W = t->dist.world;
    t->B = c->train.batch_size / W;
    if (!data_parallel(t)) return 0;
    if (c->train.batch_size % W)
        return sg_err("train.batch_size %d is the global batch: it must be a multiple of the %d "
                      "ranks",
                      c->train.batch_size, W);
    if (c->dist.sync_bn && t->ctx.dev == SG_DEVICE_CUDA)
        return sg_err("dist.sync_bn is available on CPU ranks only (run.device cpu); on cuda "
                      "set dist.sync_bn false (each rank then normalises with its own batch)");
    if (c->dist.sync_bn) t->ctx.bn_sync = &t->dist; /* SyncBN (ops/norm.h) */
    sg_dist_set_stop(&g_stop_signal, STOP_GRACE_S);
    if (!t->opts->quiet && t->dist.rank == 0)
        fprintf(stderr, "sogclip train: %d rank%s (%s), %d pairs per rank, global batch %d\n", W,
                W > 1 ? "s" : "", sg_dist_backend_name(t->dist.backend), t->B, c->train.batch_size);
    return 0;
}

/* Hash of the resolved configuration without the per-process keys (run.device_id, run.threads:
 * launch scripts may set them per rank). */
static uint64_t run_config_hash(const struct sg_train_config *c)
{
    struct sg_train_config common = *c;
    common.run.device_id = 0;
    common.run.threads = 0;
    char *yaml = sg_train_config_yaml(&common);
    uint64_t h = sg_crc32c(yaml, strlen(yaml));
    free(yaml);
    return h;
}

/* The ranks' one collective before training: each rank's start-up verdict (rc), resolved
 * configuration and dataset size. A rank that failed to start (its own message printed) stops
 * the others at once, instead of leaving them in their first collective until dist.timeout_s;
 * and every rank must train the same run (same configuration file and overrides, same data). */
static int start_together(struct trainer *t, int rc)
{
    if (!data_parallel(t)) return rc;
    int W = t->dist.world;
    uint64_t mine[3] = {rc != 0, run_config_hash(t->cfg), t->ds ? (uint64_t)t->ds->n : 0};
    uint64_t *all = sg_xmalloc(sizeof mine * (size_t)W);
    int got = sg_dist_allgather(&t->dist, all, mine, sizeof mine);
    for (int r = 0; got == 0 && rc == 0 && r < W; r++) {
        const uint64_t *o = all + 3 * r;
        if (o[0])
            rc = sg_err("rank %d could not start (see its message); every rank stops", r);
        else if (o[1] != all[1])
            rc = sg_err("rank %d's resolved configuration differs from rank 0's: start every rank "
                        "with the same config file and key=value overrides (run.device_id and "
                        "run.threads may differ)",
                        r);
        else if (o[2] != all[2])
            rc = sg_err("rank %d sees %llu training samples, rank 0 sees %llu: every rank must "
                        "read the same dataset (same files on every node)",
                        r, (unsigned long long)o[2], (unsigned long long)all[2]);
    }
    free(all);
    return got ? -1 : rc;
}

static int setup(struct trainer *t)
{
    const struct sg_train_config *c = t->cfg;
    snprintf(t->run_dir, sizeof t->run_dir, "%s/%s", c->run.output_dir, c->run.name);
    if (sg_mkdir_p(t->run_dir)) return -1;
    if (open_device(t) || open_dist(t)) return -1;
    if (c->train.mode == SG_MODE_SSL) {
        t->ssl = sg_xcalloc(1, sizeof *t->ssl);
        if (sg_ssl_model_create(t->ssl, c, &t->ctx, t->B, (uint64_t)c->run.seed)) return -1;
        t->ps = &t->ssl->ps;
        if (open_data(t) || open_optim(t)) return -1;
        if (sg_ssl_loss_init(&t->ssl_loss, c, t->ds->n)) return -1;
        if (data_parallel(t)) t->ssl_loss.dist = &t->dist; /* the data-parallel ssl losses */
    } else {
        if (open_tokenizer(t) || open_model(t)) return -1;
        t->ps = &t->model->ps;
        if (open_data(t) || open_optim(t)) return -1;
        if (sg_train_loss_init(&t->loss, c, t->ds->n)) return -1;
        t->model_yaml = model_config_yaml(&t->mcfg);
    }
    feed_init(t);
    t->config_yaml = sg_train_config_yaml(c);
    char path[SG_PATH_MAX + 200];
    snprintf(path, sizeof path, "%s/config.yaml", t->run_dir);
    if (t->dist.rank == 0 && sg_write_file_atomic(path, t->config_yaml, strlen(t->config_yaml)))
        return -1;
    t->total_steps = t->ds->n / c->train.batch_size * c->train.epochs;
    if (c->train.max_steps > 0 && c->train.max_steps < t->total_steps)
        t->total_steps = c->train.max_steps;
    t->progress_bar = c->log.progress == SG_PROGRESS_BAR ||
                      (c->log.progress == SG_PROGRESS_AUTO && isatty(STDERR_FILENO));
    return 0;
}

/* ---- checkpoints ------------------------------------------------------------------------ */

static int save_checkpoint(struct trainer *t, struct sg_train_result *res)
{
    if (t->dist.rank != 0) return 0; /* rank 0 writes; every rank holds the same state */
    struct sg_st_writer w;
    struct sg_ckpt_state s = {
        .step = t->step, .optim_step = t->optim.step, .pos = t->pos, .world = t->dist.world};
    sg_ckpt_begin(&w, t->ps, &s, t->config_yaml, t->model_yaml);
    int rc = t->ssl ? sg_ssl_loss_save(&t->ssl_loss, &w, "loss.")
                    : sg_train_loss_save(&t->loss, &w, "loss.");
    if (rc == 0)
        rc = sg_ckpt_write(&w, t->run_dir, t->step, t->cfg->checkpoint.keep, res->checkpoint,
                           sizeof res->checkpoint);
    sg_stw_free(&w);
    return rc;
}

static int resume(struct trainer *t, const char *what, struct sg_loader_pos *pos)
{
    char path[SG_PATH_MAX + 200];
    if (!strcmp(what, "latest")) {
        if (sg_ckpt_latest(t->run_dir, path, sizeof path)) {
            fprintf(stderr, "sogclip train: no checkpoint in %s/checkpoints: starting fresh\n",
                    t->run_dir);
            return 1;
        }
    } else {
        snprintf(path, sizeof path, "%s", what);
    }
    struct sg_st_file f;
    if (sg_st_open(&f, path)) return -1;
    struct sg_ckpt_state s;
    int rc = sg_ckpt_load(&f, t->ps, &s);
    if (rc == 0)
        rc = t->ssl ? sg_ssl_loss_load(&t->ssl_loss, &f, "loss.")
                    : sg_train_loss_load(&t->loss, &f, "loss.");
    sg_st_close(&f);
    if (rc) return -1;
    if (s.world != t->dist.world)
        return sg_err("%s was written by a run of %lld ranks; resuming with %d is not supported "
                      "(each rank's data shard and loader position depend on the world size): "
                      "resume with %lld ranks",
                      path, (long long)s.world, t->dist.world, (long long)s.world);
    t->step = s.step;
    t->optim.step = s.optim_step;
    *pos = s.pos;
    fprintf(stderr, "sogclip train: resumed from %s (step %lld, epoch %lld)\n", path,
            (long long)s.step, (long long)s.pos.epoch);
    return 0;
}

/* ---- the step ----------------------------------------------------------------------------- */

/* Forward, loss and backward of either mode: gradients in t->ps. The next batch's upload is
 * queued once the forward is (feed_prefetch). */
static int forward_backward(struct trainer *t, const struct fed *b, struct sg_loss_values *v)
{
    memset(v, 0, sizeof *v);
    sg_params_zero_grad(t->ps);
    if (t->ssl) {
        v->tau = t->cfg->loss.tau;
        sg_ssl_forward(t->ssl, &t->ctx, b->img);
        feed_prefetch(t);
        int rc = sg_ssl_backward(t->ssl, &t->ssl_loss, &t->ctx, b->idx, &v->loss);
        v->objective = v->loss;
        v->gamma = t->ssl_loss.kind == SG_LOSS_SIMCLR ? 0.0f : t->ssl_loss.uni.gamma;
        return rc;
    }
    struct sg_clip *m = t->model;
    sg_clip_forward(m, &t->ctx, b->img, b->ids, 1);
    feed_prefetch(t);
    int E = t->mcfg.embed_dim;
    if (data_parallel(t)) { /* the data-parallel loss (train_loss.h) */
        if (sg_train_loss_step_dist(&t->loss, &t->dist, &t->ctx, m->zi, m->zt, b->idx, b->n, E,
                                    m->logit_scale, t->dzi, t->dzt, v))
            return -1;
    } else if (sg_train_loss_step(&t->loss, &t->ctx, m->zi, m->zt, b->idx, b->n, E, m->logit_scale,
                                  t->dzi, t->dzt, v)) {
        return -1;
    }
    sg_clip_backward(m, &t->ctx, t->dzi, t->dzt);
    return 0;
}

/* The learning rates of this step: the model's (warmup + cosine) and the temperature's
 * (optim.lr_tau_schedule; its cosine floor is lr_min scaled by lr_tau / lr). */
struct step_lr {
    float lr, lr_tau;
};

static struct step_lr step_lr(struct trainer *t)
{
    const struct sg_train_config *c = t->cfg;
    int64_t W = c->optim.warmup_steps, N = t->total_steps;
    struct step_lr r;
    r.lr = sg_lr_cosine(t->base_lr, c->optim.lr_min, W, N, t->step);
    r.lr_tau = r.lr;
    if (!t->model) return r; /* ssl: no temperature parameter */
    float p = 0.0f,
          floor = t->base_lr > 0.0f ? c->optim.lr_min * (t->base_lr_tau / t->base_lr) : 0.0f;
    if (c->optim.lr_tau_schedule == SG_LR_TAU_STEP_THRESH) /* reads the temperature (4 bytes) */
        sg_memcpy_d2h(&t->ctx, &p, t->model->logit_scale->data, sizeof p);
    r.lr_tau = sg_lr_tau((enum sg_lr_tau_schedule)c->optim.lr_tau_schedule, t->base_lr_tau, floor,
                         W, N, t->step, p);
    return r;
}

static int train_step(struct trainer *t, const struct fed *b, struct step_lr lr,
                      struct sg_loss_values *v, float *gnorm)
{
    if (forward_backward(t, b, v)) return sg_err_prefix("step %lld: ", (long long)t->step);
    if (t->opts->fault_nan_at > 0 && t->step + 1 == t->opts->fault_nan_at) v->loss = NAN;
    if (!isfinite(v->loss))
        return sg_err("step %lld: loss is %g; stopping without a checkpoint (the last good one "
                      "is kept)",
                      (long long)t->step, v->loss);
    /* data parallel: each rank's gradients are those of the global loss through its own
     * samples (losses/gcl_bimodal_dist.h), so the parameter gradient is their SUM */
    if (data_parallel(t) &&
        sg_dist_allreduce_sum_f32_dev(&t->dist, t->ps->grad, (int64_t)t->ps->total))
        return sg_err_prefix("step %lld: ", (long long)t->step);
    *gnorm = sg_optim_step_tau(&t->optim, t->ps, &t->ctx, lr.lr, lr.lr_tau);
    if (!isfinite(*gnorm))
        return sg_err("step %lld: gradient norm is %g (parameters left unchanged)",
                      (long long)t->step, *gnorm);
    if (t->model) sg_train_loss_after_step(&t->loss, &t->ctx, t->model->logit_scale);
    return 0;
}

struct meter {
    double t_start, wait0; /* wait0: t->feed.wait at the start */
    int64_t steps, samples;
};

static void log_step(struct trainer *t, const struct sg_loss_values *v, struct step_lr lr,
                     float gnorm, struct meter *mt, int64_t epoch)
{
    double elapsed = now_s() - mt->t_start;
    double sps = elapsed > 0 ? (double)mt->samples / elapsed : 0.0;
    double wait = elapsed > 0 ? (t->feed.wait - mt->wait0) / elapsed : 0.0;
    double eta = sps > 0 ? (double)(t->total_steps - t->step) * t->cfg->train.batch_size / sps : 0;
    if (t->dist.rank != 0) return; /* rank 0 logs */
    sg_runlog_scalar(&t->log, "train/loss", t->step, v->loss);
    sg_runlog_scalar(&t->log, "train/objective", t->step, v->objective);
    sg_runlog_scalar(&t->log, "train/lr", t->step, lr.lr);
    if (t->model && sg_train_loss_learns_logit_scale(&t->loss))
        sg_runlog_scalar(&t->log, "train/lr_tau", t->step, lr.lr_tau);
    sg_runlog_scalar(&t->log, "train/tau", t->step, v->tau);
    sg_runlog_scalar(&t->log, "train/gamma", t->step, v->gamma);
    sg_runlog_scalar(&t->log, "train/grad_norm", t->step, gnorm);
    sg_runlog_scalar(&t->log, "train/samples_per_second", t->step, sps);
    sg_runlog_scalar(&t->log, "train/data_time_fraction", t->step, wait);
    sg_runlog_commit(&t->log, t->step, (int)epoch);
    if (t->opts->quiet) return;
    const char *fmt = t->progress_bar ? "\r%s" : "%s\n";
    char line[256];
    snprintf(line, sizeof line,
             "epoch %lld step %lld/%lld  loss %.4f  lr %.2e  tau %.4f  %.1f samples/s  data "
             "%.0f%%  ETA %.0fs   ",
             (long long)epoch, (long long)t->step, (long long)t->total_steps, v->loss, lr.lr,
             v->tau, sps, 100.0 * wait, eta);
    fprintf(stderr, fmt, line);
}

/* Every metric of r as "val/<key>" scalars. */
static void log_results(struct trainer *t, const struct sg_results *r)
{
    char tag[128];
    for (int i = 0; i < r->n; i++) {
        snprintf(tag, sizeof tag, "val/%s", r->metrics[i].key);
        double v = r->metrics[i].value;
        if (r->metrics[i].kind == SG_RES_FRACTION) v *= 100.0; /* percent, as printed */
        sg_runlog_scalar(&t->log, tag, t->step, v);
    }
}

/* eval.zeroshot_dir / eval.retrieval on the live model (image-text mode); logged under val/. */
/* The final evaluation's results go to the run folder (eval_zeroshot.json,
 * eval_retrieval.json) and are handed to the caller in res. */
static int keep_final(struct trainer *t, struct sg_results *zs, struct sg_results *rt,
                      struct sg_train_result *res)
{
    char path[SG_PATH_MAX + 200];
    const struct sg_train_config *c = t->cfg;
    if (c->eval.zeroshot_dir[0]) {
        snprintf(path, sizeof path, "%s/eval_zeroshot.json", t->run_dir);
        if (sg_results_write_json(zs, path)) return -1;
        res->zeroshot = *zs, res->has_zeroshot = 1;
        memset(zs, 0, sizeof *zs); /* moved: the caller frees it */
    }
    if (c->eval.retrieval[0]) {
        snprintf(path, sizeof path, "%s/eval_retrieval.json", t->run_dir);
        if (sg_results_write_json(rt, path)) return -1;
        res->retrieval = *rt, res->has_retrieval = 1;
        memset(rt, 0, sizeof *rt);
    }
    return 0;
}

/* final: the end-of-training evaluation, whose results are kept (keep_final). */
static int evaluate_here(struct trainer *t, int64_t epoch, struct sg_train_result *final)
{
    const struct sg_train_config *c = t->cfg;
    if (t->opts->fault_slow_eval_s > 0) {
        struct timespec ts = {(time_t)t->opts->fault_slow_eval_s, 0};
        nanosleep(&ts, NULL);
    }
    struct sg_eval_model em;
    struct sg_results zs, rt;
    sg_eval_model_wrap(&em, &t->ctx, t->model, t->tok, c->data.workers);
    sg_results_init(&zs, "zeroshot_classification", c->eval.zeroshot_dir, c->model.name, "");
    sg_results_init(&rt, "zeroshot_retrieval", c->eval.retrieval, c->model.name, "");
    int rc = 0;
    if (c->eval.zeroshot_dir[0]) {
        const char *names = c->eval.zeroshot_classnames[0] ? c->eval.zeroshot_classnames : NULL;
        const char *tpls = c->eval.zeroshot_templates[0] ? c->eval.zeroshot_templates : NULL;
        rc = sg_eval_zeroshot(&em, c->eval.zeroshot_dir, names, tpls, &zs);
        if (rc == 0) log_results(t, &zs);
    }
    if (rc == 0 && c->eval.retrieval[0]) {
        rc = sg_eval_retrieval(&em, c->eval.retrieval, c->data.image_key, c->data.caption_key, &rt);
        if (rc == 0) log_results(t, &rt);
    }
    if (rc == 0) rc = sg_runlog_commit(&t->log, t->step, (int)epoch);
    if (rc == 0 && !t->opts->quiet) {
        fprintf(stderr, "%sevaluation after step %lld:\n", t->progress_bar ? "\n" : "",
                (long long)t->step);
        if (c->eval.zeroshot_dir[0]) sg_results_print(&zs, stderr);
        if (c->eval.retrieval[0]) sg_results_print(&rt, stderr);
    }
    if (rc == 0 && final) rc = keep_final(t, &zs, &rt, final);
    sg_results_free(&zs);
    sg_results_free(&rt);
    return rc;
}

/* Rank 0 evaluates. The other ranks wait for it at an all-reduce of its verdict without the
 * collective time-out (an evaluation may take longer than dist.timeout_s; a dead rank 0 still
 * ends the wait through the launcher's signal, sg_dist_set_stop), so every rank learns whether
 * it failed. */
static int evaluate(struct trainer *t, int64_t epoch, struct sg_train_result *final)
{
    const struct sg_train_config *c = t->cfg;
    if (t->ssl || (!c->eval.zeroshot_dir[0] && !c->eval.retrieval[0])) return 0;
    int rc = t->dist.rank == 0 ? evaluate_here(t, epoch, final) : 0;
    if (!data_parallel(t)) return rc;
    double keep = t->dist.timeout_s, failed = rc != 0;
    t->dist.timeout_s = 0.0; /* wait as long as the evaluation takes */
    int crc = sg_dist_allreduce_sum_f64(&t->dist, &failed, 1);
    t->dist.timeout_s = keep;
    if (crc || rc) return -1;
    return failed > 0 ? sg_err("rank 0's evaluation failed (see its message)") : 0;
}

/* One epoch from the loader's current position. Returns 0, 1 (stop requested) or -1. */
static int run_epoch(struct trainer *t, int64_t epoch, struct meter *mt,
                     struct sg_train_result *res)
{
    const struct sg_train_config *c = t->cfg;
    if (t->ssl)
        sg_ssl_loss_set_epoch(&t->ssl_loss, epoch);
    else
        sg_train_loss_set_epoch(&t->loss, epoch);
    for (;;) {
        if (t->step >= t->total_steps) return 1;
        struct fed b;
        int got = feed_next(t, &b);
        if (got < 0) return -1;
        if (got == 0) return 0;
        struct step_lr lr = step_lr(t);
        struct sg_loss_values v;
        float gnorm = 0.0f;
        int rc = train_step(t, &b, lr, &v, &gnorm);
        feed_done(t);
        if (rc) return -1;
        t->pos = b.pos;
        t->step++;
        mt->steps++;
        mt->samples += c->train.batch_size;
        res->last_loss = v.loss;
        if (t->step % c->train.log_every == 0 || t->step == t->total_steps)
            log_step(t, &v, lr, gnorm, mt, epoch);
        int periodic = c->checkpoint.every_steps > 0 && t->step % c->checkpoint.every_steps == 0;
        if (periodic && save_checkpoint(t, res)) return -1;
        if (g_stop_signal) return 1;
        if (t->opts->stop_after > 0 && mt->steps >= t->opts->stop_after) return 1;
    }
}

static void teardown(struct trainer *t)
{
    feed_free(t);
    if (t->loader) sg_loader_close(t->loader);
    if (t->ds) sg_dataset_free(t->ds);
    if (t->model) {
        sg_train_loss_free(&t->loss);
        sg_clip_destroy(t->model);
        free(t->model);
    }
    if (t->ssl) {
        sg_ssl_loss_free(&t->ssl_loss);
        sg_ssl_model_destroy(t->ssl);
        free(t->ssl);
    }
    if (t->tok) sg_tokenizer_free(t->tok);
    sg_optim_free(&t->optim);
    if (t->dzi) sg_dev_free(&t->ctx, t->dzi);
    if (t->dzt) sg_dev_free(&t->ctx, t->dzt);
    sg_dist_finalize(&t->dist);
    sg_dist_set_stop(NULL, 0.0);
    free(t->config_yaml);
    free(t->model_yaml);
    sg_ctx_free(&t->ctx); /* last: everything above may use it */
}

static int finish(struct trainer *t, struct sg_train_result *res, int interrupted)
{
    if (!t->opts->quiet && t->progress_bar) fputc('\n', stderr);
    if (save_checkpoint(t, res)) return -1;
    if (!interrupted && evaluate(t, t->cfg->train.epochs - 1, res)) return -1;
    if (t->dist.rank != 0) return 0;
    if (t->cfg->checkpoint.export_weights && !interrupted) {
        char path[SG_PATH_MAX + 200];
        snprintf(path, sizeof path, "%s/model.safetensors", t->run_dir);
        if (sg_ckpt_export_weights(t->ps, path, t->model_yaml, t->config_yaml)) return -1;
    }
    if (sg_runlog_report(&t->log, t->config_yaml, t->cfg->run.name) == 0)
        snprintf(res->report, sizeof res->report, "%s", sg_runlog_report_path(&t->log));
    return 0;
}

static int loop(struct trainer *t, struct sg_train_result *res, const struct sg_loader_pos *pos)
{
    struct meter mt = {now_s(), t->feed.wait, 0, 0};
    int64_t epoch = pos ? pos->epoch : 0;
    if (pos && loader_seek(t, pos)) return -1;
    if (!pos) loader_start_epoch(t, epoch);
    for (; epoch < t->cfg->train.epochs; epoch++) {
        if (epoch > (pos ? pos->epoch : 0)) loader_start_epoch(t, epoch);
        int rc = run_epoch(t, epoch, &mt, res);
        if (rc < 0) return -1;
        if (rc == 1) break;
        int every = t->cfg->eval.every_epochs;
        if (every > 0 && (epoch + 1) % every == 0 && epoch + 1 < t->cfg->train.epochs &&
            evaluate(t, epoch, NULL))
            return -1;
    }
    return 0;
}

int sg_train_run(const struct sg_train_config *cfg, const struct sg_train_opts *opts,
                 struct sg_train_result *res)
{
    struct trainer t;
    memset(&t, 0, sizeof t);
    memset(res, 0, sizeof *res);
    t.cfg = cfg;
    t.opts = opts;
    g_stop_signal = 0;
    int rc = setup(&t);
    struct sg_loader_pos pos;
    int resumed = 0;
    if (rc == 0 && opts->resume) {
        int r = resume(&t, opts->resume, &pos);
        rc = r < 0 ? -1 : 0;
        resumed = r == 0;
    }
    int flags = cfg->log.tensorboard ? SG_RUNLOG_TENSORBOARD : 0, logs = t.dist.rank == 0;
    if (rc == 0 && resumed && logs) rc = sg_runlog_resume(&t.log, t.run_dir, flags, t.step);
    if (rc == 0 && !resumed && logs && sg_runlog_open(&t.log, t.run_dir, flags)) {
        char why[512];
        snprintf(why, sizeof why, "%s", sg_last_error());
        rc = sg_err("%s (a run already exists there: use --resume latest, or another run.name)",
                    why);
    }
    rc = start_together(&t, rc);
    if (rc) {
        fprintf(stderr, "sogclip train: %s\n", sg_last_error());
        teardown(&t);
        return SG_TRAIN_FAILED;
    }
    snprintf(res->run_dir, sizeof res->run_dir, "%s", t.run_dir);
    res->rank = t.dist.rank;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    rc = loop(&t, res, resumed ? &pos : NULL);
    int interrupted = g_stop_signal != 0;
    if (rc == 0) rc = finish(&t, res, interrupted);
    res->steps = t.step;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc) fprintf(stderr, "\nsogclip train: %s\n", sg_last_error());
    sg_runlog_close(&t.log);
    teardown(&t);
    if (rc) return SG_TRAIN_FAILED;
    return interrupted ? SG_TRAIN_INTERRUPTED : SG_TRAIN_OK;
}

void sg_train_result_free(struct sg_train_result *res)
{
    if (res->has_zeroshot) sg_results_free(&res->zeroshot);
    if (res->has_retrieval) sg_results_free(&res->retrieval);
    res->has_zeroshot = res->has_retrieval = 0;
}
