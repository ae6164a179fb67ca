/*
 * train/trainer.c — the training loop of `sogclip train` (see train/trainer.h).
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
#include "data/dataset.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "model/clip.h"
#include "model/clip_config.h"
#include "nn/optim.h"
#include "text/tokenizer.h"
#include "eval/clip_eval.h"
#include "train/checkpoint.h"
#include "train/runlog.h"
#include "train/ssl.h"
#include "train/train_loss.h"

static volatile sig_atomic_t g_stop_signal;

static void on_signal(int sig)
{
    g_stop_signal = sig;
}

struct trainer {
    const struct sg_train_config *cfg;
    const struct sg_train_opts *opts;
    struct sg_ctx ctx;
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
    float *dzi, *dzt; /* (B,E) */
    int64_t step, total_steps;
    float base_lr;
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
    lc.batch = c->train.batch_size;
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
    sg_clip_plan(t->model, c->train.batch_size);
    size_t be = (size_t)c->train.batch_size * t->mcfg.embed_dim;
    t->dzi = sg_xmalloc(be * sizeof(float));
    t->dzt = sg_xmalloc(be * sizeof(float));
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
    return sg_optim_init(&t->optim, &oc, t->ps);
}

static int setup(struct trainer *t)
{
    const struct sg_train_config *c = t->cfg;
    snprintf(t->run_dir, sizeof t->run_dir, "%s/%s", c->run.output_dir, c->run.name);
    if (sg_mkdir_p(t->run_dir)) return -1;
    if (sg_ctx_init(&t->ctx, SG_DEVICE_CPU, 0, c->run.threads)) return -1;
    if (c->train.mode == SG_MODE_SSL) {
        t->ssl = sg_xcalloc(1, sizeof *t->ssl);
        if (sg_ssl_model_create(t->ssl, c, &t->ctx, (uint64_t)c->run.seed)) return -1;
        t->ps = &t->ssl->ps;
        if (open_data(t) || open_optim(t)) return -1;
        if (sg_ssl_loss_init(&t->ssl_loss, c, t->ds->n)) return -1;
    } else {
        if (open_tokenizer(t) || open_model(t)) return -1;
        t->ps = &t->model->ps;
        if (open_data(t) || open_optim(t)) return -1;
        if (sg_train_loss_init(&t->loss, c, t->ds->n)) return -1;
        t->model_yaml = model_config_yaml(&t->mcfg);
    }
    t->config_yaml = sg_train_config_yaml(c);
    char path[SG_PATH_MAX + 200];
    snprintf(path, sizeof path, "%s/config.yaml", t->run_dir);
    if (sg_write_file_atomic(path, t->config_yaml, strlen(t->config_yaml))) return -1;
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
    struct sg_st_writer w;
    struct sg_ckpt_state s = {.step = t->step, .optim_step = t->optim.step};
    sg_loader_position(t->loader, &s.pos);
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
    t->step = s.step;
    t->optim.step = s.optim_step;
    *pos = s.pos;
    fprintf(stderr, "sogclip train: resumed from %s (step %lld, epoch %lld)\n", path,
            (long long)s.step, (long long)s.pos.epoch);
    return 0;
}

/* ---- the step ----------------------------------------------------------------------------- */

/* Forward, loss and backward of either mode: gradients in t->ps. */
static int forward_backward(struct trainer *t, const struct sg_batch *b, struct sg_loss_values *v)
{
    memset(v, 0, sizeof *v);
    sg_params_zero_grad(t->ps);
    if (t->ssl) {
        v->tau = t->cfg->loss.tau;
        int rc = sg_ssl_step(t->ssl, &t->ssl_loss, &t->ctx, b->img, b->idx, &v->loss);
        v->objective = v->loss;
        v->gamma = t->ssl_loss.kind == SG_LOSS_SIMCLR ? 0.0f : t->ssl_loss.uni.gamma;
        return rc;
    }
    struct sg_clip *m = t->model;
    sg_clip_forward(m, &t->ctx, b->img, b->ids, 1);
    if (sg_train_loss_step(&t->loss, &t->ctx, m->zi, m->zt, b->idx, b->n, t->mcfg.embed_dim,
                           m->logit_scale, t->dzi, t->dzt, v))
        return -1;
    sg_clip_backward(m, &t->ctx, t->dzi, t->dzt);
    return 0;
}

static int train_step(struct trainer *t, const struct sg_batch *b, float lr,
                      struct sg_loss_values *v, float *gnorm)
{
    if (forward_backward(t, b, v))
        return sg_err("step %lld: %s", (long long)t->step, sg_last_error());
    if (t->opts->fault_nan_at > 0 && t->step + 1 == t->opts->fault_nan_at) v->loss = NAN;
    if (!isfinite(v->loss))
        return sg_err("step %lld: loss is %g; stopping without a checkpoint (the last good one "
                      "is kept)",
                      (long long)t->step, v->loss);
    *gnorm = sg_optim_step(&t->optim, t->ps, &t->ctx, lr);
    if (!isfinite(*gnorm))
        return sg_err("step %lld: gradient norm is %g (parameters left unchanged)",
                      (long long)t->step, *gnorm);
    if (t->model) sg_train_loss_after_step(&t->loss, t->model->logit_scale);
    return 0;
}

struct meter {
    double t_start, data_wait;
    int64_t steps, samples;
};

static void log_step(struct trainer *t, const struct sg_loss_values *v, float lr, float gnorm,
                     struct meter *mt, int64_t epoch)
{
    double elapsed = now_s() - mt->t_start;
    double sps = elapsed > 0 ? (double)mt->samples / elapsed : 0.0;
    double wait = elapsed > 0 ? mt->data_wait / elapsed : 0.0;
    double eta = sps > 0 ? (double)(t->total_steps - t->step) * t->cfg->train.batch_size / sps : 0;
    sg_runlog_scalar(&t->log, "train/loss", t->step, v->loss);
    sg_runlog_scalar(&t->log, "train/objective", t->step, v->objective);
    sg_runlog_scalar(&t->log, "train/lr", t->step, lr);
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
             (long long)epoch, (long long)t->step, (long long)t->total_steps, v->loss, lr, v->tau,
             sps, 100.0 * wait, eta);
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
static int evaluate(struct trainer *t, int64_t epoch, struct sg_train_result *final)
{
    const struct sg_train_config *c = t->cfg;
    if (t->ssl || (!c->eval.zeroshot_dir[0] && !c->eval.retrieval[0])) return 0;
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
        struct sg_batch *b;
        double t0 = now_s();
        int got = sg_loader_next(t->loader, &b);
        mt->data_wait += now_s() - t0;
        if (got < 0) return -1;
        if (got == 0) return 0;
        float lr = sg_lr_cosine(t->base_lr, c->optim.lr_min, c->optim.warmup_steps, t->total_steps,
                                t->step);
        struct sg_loss_values v;
        float gnorm = 0.0f;
        int rc = train_step(t, b, lr, &v, &gnorm);
        sg_loader_release(t->loader, b);
        if (rc) return -1;
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
    free(t->dzi);
    free(t->dzt);
    free(t->config_yaml);
    free(t->model_yaml);
}

static int finish(struct trainer *t, struct sg_train_result *res, int interrupted)
{
    if (!t->opts->quiet && t->progress_bar) fputc('\n', stderr);
    if (save_checkpoint(t, res)) return -1;
    if (!interrupted && evaluate(t, t->cfg->train.epochs - 1, res)) return -1;
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
    struct meter mt = {now_s(), 0, 0, 0};
    int64_t epoch = pos ? pos->epoch : 0;
    if (pos && sg_loader_seek(t->loader, pos)) return -1;
    if (!pos) sg_loader_start_epoch(t->loader, epoch);
    for (; epoch < t->cfg->train.epochs; epoch++) {
        if (epoch > (pos ? pos->epoch : 0)) sg_loader_start_epoch(t->loader, epoch);
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
    int flags = cfg->log.tensorboard ? SG_RUNLOG_TENSORBOARD : 0;
    if (rc == 0 && resumed) rc = sg_runlog_resume(&t.log, t.run_dir, flags, t.step);
    if (rc == 0 && !resumed && sg_runlog_open(&t.log, t.run_dir, flags)) {
        char why[512];
        snprintf(why, sizeof why, "%s", sg_last_error());
        rc = sg_err("%s (a run already exists there: use --resume latest, or another run.name)",
                    why);
    }
    if (rc) {
        fprintf(stderr, "sogclip train: %s\n", sg_last_error());
        teardown(&t);
        return SG_TRAIN_FAILED;
    }
    snprintf(res->run_dir, sizeof res->run_dir, "%s", t.run_dir);
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
