/*
 * tests/test_train.c — `sogclip train` end to end on a tiny synthetic dataset (data/synth.h):
 *   - config errors (unknown key with a suggestion, wrong type, broken YAML, out of range) give
 *     file:line:col messages, and the CLI exits with 2;
 *   - N + N steps with a resume in the middle (mid-epoch) equal 2N uninterrupted steps bit for
 *     bit: parameters, optimizer moments, loss state, loader position (image-text and SSL);
 *   - a process killed with SIGKILL while it writes checkpoints always leaves a loadable newest
 *     checkpoint;
 *   - SIGTERM writes a checkpoint and stops with exit code 130; resuming finishes the run;
 *   - a non-finite loss stops the run (exit 1) without writing a checkpoint;
 *   - the run folder holds config.yaml, metrics.jsonl, a TensorBoard file whose records all
 *     pass their CRC checks, and report.html;
 *   - evaluation of the trained checkpoint: retrieval R@1 from `sogclip eval`'s path equals a
 *     brute force over the same embeddings (caption -> image mapping, dataset order), and
 *     zero-shot and the linear probe run on the synthetic zero-shot folder;
 *   - devices (the CPU side; tests/test_cuda_train.c runs the GPU): run.device / run.precision
 *     parse (train.precision: bf16 moves to run.precision), run.device: cuda without a GPU fails
 *     at setup with a message, run.precision: bf16 on the CPU trains exactly as fp32, and the
 *     loader's uint8 output normalised by op_normalize_u8 equals its float output bit for bit
 *     (the GPU input path's contract).
 */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "data/synth.h"
#include "eval/clip_eval.h"
#include "eval/linear_probe.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "ops/gemm.h"
#include "ops/input.h"
#include "testutil.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/ssl.h"
#include "train/tfevents.h"
#include "train/trainer.h"

#ifndef SG_TEST_DATA_DIR
#define SG_TEST_DATA_DIR "tests/data"
#endif

int sg_cmd_train(int argc, char **argv);

static char g_dir[256], g_cfg[512];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    SG_CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
}

/* 96 training images of 16 px (6 steps of 16 per epoch), a tokenizer, a config. */
static void make_fixture(void)
{
    sg_test_clip_fixture("sg_test_train", g_dir, sizeof g_dir);
    char data[320], path[400], text[4096];
    snprintf(data, sizeof data, "%s/data", g_dir);
    snprintf(text, sizeof text,
             "run: {name: base, output_dir: %s/runs, seed: 1, threads: 2}\n"
             "model: {name: %s/models/train-vit.yaml}\n"
             "data: {train: %s/train.tsv, image_key: image, caption_key: caption, workers: 2}\n"
             "tokenizer: {model: %s/tok.model}\n"
             "loss: {name: sogclr, tau: 0.1, gamma: 0.9}\n"
             "optim: {name: adamw, lr: 1.0e-3, warmup_steps: 2}\n"
             "train: {batch_size: 16, epochs: 2, log_every: 1}\n"
             "checkpoint: {every_steps: 0, keep: 2}\n"
             "log: {progress: lines}\n",
             g_dir, SG_TEST_DATA_DIR, data, data);
    snprintf(path, sizeof path, "%s/train.yaml", g_dir);
    write_file(path, text);
    snprintf(g_cfg, sizeof g_cfg, "%s", path);
}

static int run_n(const char *name, const char *resume, int64_t stop_after,
                 struct sg_train_result *res, const char *const *extra, int n)
{
    char o1[160];
    const char *over[16] = {o1};
    snprintf(o1, sizeof o1, "run.name=%s", name);
    for (int i = 0; i < n && i < 15; i++) over[1 + i] = extra[i];
    struct sg_train_config cfg;
    SG_CHECK(sg_train_config_load(&cfg, g_cfg, over, 1 + n) == 0, "%s", sg_last_error());
    struct sg_train_opts opts = {.resume = resume, .quiet = 1, .stop_after = stop_after};
    return sg_train_run(&cfg, &opts, res);
}

static int run(const char *name, const char *resume, int64_t stop_after, int64_t nan_at,
               struct sg_train_result *res, const char *extra)
{
    char o1[160];
    snprintf(o1, sizeof o1, "run.name=%s", name);
    const char *over[2] = {o1, extra};
    struct sg_train_config cfg;
    SG_CHECK(sg_train_config_load(&cfg, g_cfg, over, extra ? 2 : 1) == 0, "%s", sg_last_error());
    struct sg_train_opts opts = {
        .resume = resume, .quiet = 1, .stop_after = stop_after, .fault_nan_at = nan_at};
    return sg_train_run(&cfg, &opts, res);
}

/* ---- config errors ---------------------------------------------------------------------- */

static void expect_config_error(const char *file, const char *want)
{
    char path[512], label[600];
    struct sg_train_config cfg;
    snprintf(path, sizeof path, "%s/train/%s", SG_TEST_DATA_DIR, file);
    int rc = sg_train_config_load(&cfg, path, NULL, 0);
    const char *msg = sg_last_error();
    snprintf(label, sizeof label, "%s: '%s' in '%s'", file, want, msg);
    sg_test_true(label, rc == -1 && strstr(msg, want) != NULL);
    char *argv[] = {"-c", path};
    snprintf(label, sizeof label, "%s: sogclip train exits with 2", file);
    sg_test_true(label, sg_cmd_train(2, argv) == 2);
}

static void check_config_errors(void)
{
    expect_config_error("unknown_key.yaml",
                        "unknown_key.yaml:7:3: data.workrs: unknown key (did you mean 'workers'?");
    expect_config_error("bad_type.yaml", "bad_type.yaml:4:7: optim.lr: expected a number");
    expect_config_error("bad_yaml.yaml", "bad_yaml.yaml:");
    expect_config_error("out_of_range.yaml", "train.batch_size: value 1 out of range");
    struct sg_train_config cfg;
    const char *bad[] = {"optim.lrr=1"};
    sg_test_true("override typo is an error",
                 sg_train_config_load(&cfg, g_cfg, bad, 1) == -1 &&
                     strstr(sg_last_error(), "optim.lrr: unknown key (did you mean 'lr'"));
}

/* ---- resume equality ---------------------------------------------------------------------- */

static struct sg_train_result g_whole;

static void check_resume(void)
{
    struct sg_train_result a, b;
    sg_test_true("uninterrupted 12 steps", run("whole", NULL, 0, 0, &a, NULL) == 0);
    sg_test_true("12 steps done", a.steps == 12);
    sg_test_true("first 4 steps", run("split", NULL, 4, 0, &b, NULL) == 0 && b.steps == 4);
    sg_test_true("resume: 8 more", run("split", "latest", 0, 0, &b, NULL) == 0 && b.steps == 12);
    sg_test_true("4 + 8 steps == 12 steps, bit for bit",
                 sg_test_same_tensors(a.checkpoint, b.checkpoint));
    sg_test_true("report.html written", access(a.report, R_OK) == 0);
    g_whole = a;
}

/* The same for unimodal SSL (two views, ResNet + projection head, unimodal SogCLR). */
static void check_resume_ssl(void)
{
    struct sg_train_result a, b;
    char o[4][96] = {"loss.name=sogclr_uni", "ssl.image_size=16", "ssl.width=4",
                     "ssl.proj_hidden=32"};
    const char *extra[] = {"train.mode=ssl",     o[0], o[1], o[2], o[3], "ssl.proj_dim=16",
                           "data.augment=simclr"};
    int n = (int)(sizeof extra / sizeof extra[0]);
    sg_test_true("ssl: uninterrupted 12 steps", run_n("ssl_whole", NULL, 0, &a, extra, n) == 0);
    sg_test_true("ssl: first 5 steps", run_n("ssl_split", NULL, 5, &b, extra, n) == 0);
    sg_test_true("ssl: resume 7 more", run_n("ssl_split", "latest", 0, &b, extra, n) == 0);
    sg_test_true("ssl: 5 + 7 steps == 12 steps, bit for bit",
                 a.steps == 12 && b.steps == 12 &&
                     sg_test_same_tensors(a.checkpoint, b.checkpoint));
}

/* ssl.zero_init_residual reaches the backbone: the last BatchNorm of each block starts at 0. */
static void check_zero_init_residual(void)
{
    for (int z = 0; z < 2; z++) {
        const char *over[] = {"train.mode=ssl", "loss.name=sogclr_uni", "ssl.width=4",
                              z ? "ssl.zero_init_residual=true" : "ssl.zero_init_residual=false"};
        struct sg_train_config cfg;
        struct sg_ctx c;
        struct sg_ssl_model m;
        SG_CHECK(sg_train_config_load(&cfg, g_cfg, over, 4) == 0, "%s", sg_last_error());
        sg_ctx_init(&c, SG_DEVICE_CPU, 0, 1);
        SG_CHECK(sg_ssl_model_create(&m, &cfg, &c, cfg.train.batch_size, 1) == 0, "%s",
                 sg_last_error());
        int zeros = 0, ones = 0, blocks = 0;
        for (int i = 0; i < m.ps.n; i++) {
            const struct sg_param *p = m.ps.items[i];
            if (!strstr(p->name, ".bn2.weight") || !strstr(p->name, "layer")) continue;
            blocks++;
            for (int64_t k = 0; k < p->numel; k++)
                zeros += p->data[k] == 0.0f, ones += p->data[k] == 1.0f;
        }
        char label[160];
        snprintf(label, sizeof label, "ssl.zero_init_residual %s: %d blocks' bn2 weights %s",
                 z ? "true" : "false", blocks, z ? "all 0" : "all 1");
        sg_test_true(label, blocks == 8 && (z ? ones == 0 && zeros > 0 : zeros == 0 && ones > 0));
        sg_ssl_model_destroy(&m);
        sg_ctx_free(&c);
    }
}

/* ---- logs ------------------------------------------------------------------------------------ */

struct tb_count {
    int loss;
};

static int count_tb(void *user, const struct sg_tfevent *ev)
{
    struct tb_count *c = user;
    if (ev->kind == SG_TFEVENT_SCALAR && !strcmp(ev->tag, "train/loss")) c->loss++;
    return 0;
}

static void check_logs(void)
{
    char dir[400], path[800];
    snprintf(dir, sizeof dir, "%s/runs/whole", g_dir);
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    sg_test_true("config.yaml in the run folder", access(path, R_OK) == 0);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    sg_test_true("metrics.jsonl", access(path, R_OK) == 0);
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "events.out.tfevents.", 20)) {
            struct tb_count c = {0};
            int64_t records = 0;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            int rc = sg_tfevents_read(path, count_tb, &c, &records);
            found = rc == 0 && c.loss == 12;
        }
    if (d) closedir(d);
    sg_test_true("TensorBoard file: every CRC checks, 12 train/loss scalars", found);
}

/* ---- evaluation --------------------------------------------------------------------------------
 */

static double metric(const struct sg_results *r, const char *key)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->metrics[i].key, key)) return r->metrics[i].value;
    return -1.0;
}

/* Text -> image R@1 by brute force: caption t is a hit when no image scores above its own
 * (ties broken toward the lower index, as eval/metrics.h). */
static double brute_t2i_r1(const float *zi, int64_t ni, const float *zt, int64_t nt,
                           const int32_t *t2i, int E)
{
    int64_t hits = 0;
    for (int64_t t = 0; t < nt; t++) {
        double best = -1e30;
        int64_t arg = -1;
        for (int64_t i = 0; i < ni; i++) {
            double s = 0;
            for (int e = 0; e < E; e++) s += (double)zt[t * E + e] * zi[i * E + e];
            if (s > best) best = s, arg = i;
        }
        hits += arg == t2i[t];
    }
    return 100.0 * (double)hits / (double)nt;
}

/* Caption -> image index straight from the TSV (image<TAB>caption rows, images numbered in
 * first-appearance order), independent of the dataset code. Returns 1 when t2i matches. */
static int tsv_mapping_matches(const char *path, const int32_t *t2i, int64_t nt)
{
    FILE *f = fopen(path, "r");
    char line[1024], seen[256][128];
    int nseen = 0;
    int64_t row = 0;
    int ok = f != NULL;
    while (ok && fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab || row++ == 0) continue; /* header */
        *tab = 0;
        int img = -1;
        for (int i = 0; i < nseen; i++)
            if (!strcmp(seen[i], line)) img = i;
        if (img < 0 && nseen < 256) snprintf(seen[img = nseen++], sizeof seen[0], "%.127s", line);
        ok = row - 2 < nt && t2i[row - 2] == img;
    }
    if (f) fclose(f);
    return ok && row - 1 == nt;
}

static void check_eval(const struct sg_train_result *a)
{
    char val[400], zdir[400], names[400];
    snprintf(val, sizeof val, "%s/data/val.tsv", g_dir);
    snprintf(zdir, sizeof zdir, "%s/data/zeroshot/val", g_dir);
    snprintf(names, sizeof names, "%s/data/zeroshot/classnames.txt", g_dir);
    struct sg_eval_model em;
    struct sg_results rt, zs;
    sg_test_true("eval: load the trained checkpoint",
                 sg_eval_model_load(&em, a->checkpoint, NULL, 8, 2) == 0);
    sg_results_init(&rt, SG_TASK_ZEROSHOT_RETRIEVAL, val, "m", "");
    sg_test_true("eval: retrieval runs", sg_eval_retrieval(&em, val, "image", "caption", &rt) == 0);
    struct sg_dataset_spec spec = {.path = val, .image_key = "image", .caption_key = "caption"};
    struct sg_dataset *ds;
    SG_CHECK(sg_dataset_open(&spec, &ds) == 0, "%s", sg_last_error());
    char **texts;
    int32_t *t2i;
    int E = em.model->cfg.embed_dim;
    int64_t nt = sg_dataset_all_captions(ds, &texts, &t2i);
    sg_test_true("eval: caption -> image mapping equals the TSV's rows",
                 tsv_mapping_matches(val, t2i, nt));
    float *zi = sg_xmalloc(sizeof(float) * (size_t)ds->n * E);
    float *zt = sg_xmalloc(sizeof(float) * (size_t)nt * E);
    SG_CHECK(sg_embed_dataset_images(&em, ds, zi, NULL) == 0, "%s", sg_last_error());
    SG_CHECK(sg_embed_texts(&em, (const char *const *)texts, nt, zt) == 0, "%s", sg_last_error());
    double want = brute_t2i_r1(zi, ds->n, zt, nt, t2i, E);
    double got = metric(&rt, "image_retrieval_recall@1");
    char label[160];
    /* the brute force ranks in double, the GEMM in float: allow one near-tied caption */
    snprintf(label, sizeof label, "eval: text->image R@1 %.2f%% equals the brute force %.2f%%",
             100.0 * got, want);
    sg_test_true(label, fabs(100.0 * got - want) <= 100.0 / (double)nt + 1e-9);
    struct sg_retrieval_metrics m;
    SG_CHECK(sg_retrieval_eval(zi, ds->n, zt, nt, E, t2i, &m, NULL, NULL) == 0, "%s",
             sg_last_error());
    sg_test_true("eval: the CLI path equals the metrics on independently gathered embeddings",
                 fabs(m.t2i_recall[0] - 100.0 * got) < 1e-9 &&
                     fabs(m.i2t_recall[0] - 100.0 * metric(&rt, "text_retrieval_recall@1")) <
                         1e-9 &&
                     fabs(m.t2i_mean_rank - metric(&rt, "image_retrieval_mean_rank")) < 1e-9);
    sg_results_init(&zs, SG_TASK_ZEROSHOT_CLASSIFICATION, zdir, "m", "");
    sg_test_true("eval: zero-shot runs", sg_eval_zeroshot(&em, zdir, names, NULL, &zs) == 0);
    double acc = metric(&zs, "acc1");
    sg_test_true("eval: zero-shot top-1 is a fraction", acc >= 0.0 && acc <= 1.0);
    struct sg_results zs80;
    sg_results_init(&zs80, SG_TASK_ZEROSHOT_CLASSIFICATION, zdir, "m", "");
    sg_test_true("eval: zero-shot with the shipped openai80 templates runs",
                 sg_eval_zeroshot(&em, zdir, names, "openai80", &zs80) == 0);
    sg_results_free(&zs80);
    struct sg_linear_probe_opts lo = {.checkpoint = a->checkpoint,
                                      .train_dir = zdir,
                                      .val_dir = zdir,
                                      .batch = 8,
                                      .threads = 2,
                                      .workers = 2};
    sg_linprobe_config_default(&lo.probe);
    lo.probe.epochs = 5;
    struct sg_results lp;
    sg_results_init(&lp, SG_TASK_LINEAR_PROBE, zdir, "m", "");
    sg_test_true("eval: linear probe runs", sg_linear_probe_run(&lo, &lp) == 0);
    for (int64_t i = 0; i < nt; i++) free(texts[i]);
    free(texts);
    free(t2i);
    free(zi);
    free(zt);
    sg_dataset_free(ds);
    sg_results_free(&rt);
    sg_results_free(&zs);
    sg_results_free(&lp);
    sg_eval_model_free(&em);
}

/* ---- devices ------------------------------------------------------------------------------- */

static void check_device_config(void)
{
    struct sg_train_config cfg;
    const char *gpu[] = {"run.device=cuda", "run.device_id=1", "run.precision=bf16"};
    sg_test_true("run.device cuda, device_id, precision bf16 parse",
                 sg_train_config_load(&cfg, g_cfg, gpu, 3) == 0 && cfg.run.device == 1 &&
                     cfg.run.device_id == 1 && cfg.run.precision == 1);
    const char *old[] = {"train.precision=bf16"};
    sg_test_true("train.precision bf16 moves to run.precision",
                 sg_train_config_load(&cfg, g_cfg, old, 1) == 0 && cfg.run.precision == 1 &&
                     cfg.train.precision == 0);
    const char *bad[] = {"run.precision=fp16"};
    sg_test_true("run.precision fp16 is an error naming the choices",
                 sg_train_config_load(&cfg, g_cfg, bad, 1) == -1 &&
                     strstr(sg_last_error(), "run.precision: expected one of fp32, bf16"));
    if (sg_cuda_available()) return; /* the GPU itself: tests/test_cuda_train.c */
    struct sg_train_result r;
    int rc = run("nogpu", NULL, 0, 0, &r, "run.device=cuda");
    sg_test_true("run.device cuda without a GPU: exit 1 with a message naming cuda",
                 rc == SG_TRAIN_FAILED && strstr(sg_last_error(), "cuda") != NULL);
}

/* Every recipe in configs/ loads (typed keys, enums, model names); its data need not exist. */
static void check_recipes(void)
{
    char dir[400], path[700], label[800];
    snprintf(dir, sizeof dir, "%s/../../configs", SG_TEST_DATA_DIR);
    DIR *d = opendir(dir);
    SG_CHECK(d, "opendir %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct sg_train_config cfg;
        int rc = sg_train_config_load(&cfg, path, NULL, 0);
        snprintf(label, sizeof label, "recipe configs/%s loads%s%s", e->d_name, rc ? ": " : "",
                 rc ? sg_last_error() : "");
        sg_test_true(label, rc == 0);
        n++;
    }
    closedir(d);
    snprintf(label, sizeof label, "%d recipes in configs/", n);
    sg_test_true(label, n >= 10);
}

/* logit_scale of a checkpoint. */
static float ckpt_logit_scale(const char *path)
{
    struct sg_st_file f;
    int64_t n = 0;
    SG_CHECK(sg_st_open(&f, path) == 0, "%s", sg_last_error());
    float *p = sg_st_load_f32(&f, "model.logit_scale", &n, NULL, NULL);
    SG_CHECK(p && n == 1, "logit_scale in %s", path);
    float v = p[0];
    sg_afree(p);
    sg_st_close(&f);
    return v;
}

/* The last "train/lr_tau" of a run's metrics.jsonl (-1 when absent). */
static double last_lr_tau(const char *run_dir)
{
    char path[600], line[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    double v = -1.0;
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"train/lr_tau\": ");
        if (p) v = atof(p + strlen("\"train/lr_tau\": "));
    }
    if (f) fclose(f);
    return v;
}

/* optim.lr_tau (FastCLIP's logit_scale group): one FastCLIP step with lr_tau = lr / 4 moves
 * logit_scale a quarter as far as with lr_tau = lr (AdamW's first step is linear in the rate)
 * and leaves every other tensor, optimizer moments included, bit for bit the same. */
static void check_lr_tau(void)
{
    const char *same[2] = {"loss.name=fastclip", "optim.lr_tau=0"};
    const char *quarter[2] = {"loss.name=fastclip", "optim.lr_tau=2.5e-4"};
    struct sg_train_result a, b;
    int ok = run_n("tau_same", NULL, 1, &a, same, 2) == 0;
    ok &= run_n("tau_quarter", NULL, 1, &b, quarter, 2) == 0;
    sg_test_true("lr_tau runs: 1 FastCLIP step each", ok);
    if (!ok) return;
    sg_test_true("lr_tau changes logit_scale only (every other tensor bit-equal)",
                 sg_test_same_tensors_except(a.checkpoint, b.checkpoint, "model.logit_scale"));
    const float p0 = logf(1.0f / 0.07f); /* the model's initial logit scale */
    double da = ckpt_logit_scale(a.checkpoint) - p0, db = ckpt_logit_scale(b.checkpoint) - p0;
    char label[200];
    snprintf(label, sizeof label, "logit_scale moved %.3g with lr_tau = lr, %.3g with lr / 4", da,
             db);
    sg_test_true(label, fabs(da) > 1e-5 && fabs(db / da - 0.25) < 2e-3);
    /* warmup 2: step 0 runs at half the base rates (lr 5e-4, lr_tau 1.25e-4) */
    double la = last_lr_tau(a.run_dir), lb = last_lr_tau(b.run_dir);
    snprintf(label, sizeof label, "metrics.jsonl train/lr_tau: %g and %g (want 5e-4, 1.25e-4)", la,
             lb);
    sg_test_true(label, fabs(la - 5e-4) < 1e-9 && fabs(lb - 1.25e-4) < 1e-9);
}

/* bf16 is a CUDA setting: the CPU computes in fp32, the same bits. */
static void check_cpu_bf16(void)
{
    struct sg_train_result a, b;
    int ok = run("fp32_2", NULL, 2, 0, &a, NULL) == 0;
    ok &= run("bf16_2", NULL, 2, 0, &b, "run.precision=bf16") == 0;
    sg_test_true("run.precision bf16 on the CPU: 2 steps equal fp32's bit for bit",
                 ok && sg_test_same_tensors(a.checkpoint, b.checkpoint));
}

/* The loader's uint8 output normalised by op_normalize_u8 (CPU) equals its float output. */
static void check_loader_u8(enum sg_aug_preset preset, int views)
{
    char tsv[400], label[160];
    snprintf(tsv, sizeof tsv, "%s/data/train.tsv", g_dir);
    struct sg_ctx c;
    SG_CHECK(sg_ctx_init(&c, SG_DEVICE_CPU, 0, 2) == 0, "%s", sg_last_error());
    int batches = 0;
    int64_t ulps = sg_test_u8_vs_float(&c, tsv, (int)preset, views, 9, &batches);
    snprintf(label, sizeof label,
             "loader uint8 output + op_normalize_u8 == float output, bit for bit (preset %d, %d "
             "view(s), %d batches, max %lld ulp)",
             (int)preset, views, batches, (long long)ulps);
    sg_test_true(label, ulps == 0 && batches == 6);
    sg_ctx_free(&c);
}

/* ---- faults ---------------------------------------------------------------------------------- */

static void check_nan_stop(void)
{
    struct sg_train_result r;
    char latest[800];
    sg_test_true("nan run: first 3 steps", run("nan", NULL, 3, 0, &r, NULL) == 0);
    int rc = run("nan", "latest", 0, 6, &r, NULL);
    sg_test_true("non-finite loss stops with exit code 1", rc == SG_TRAIN_FAILED);
    char dir[400];
    snprintf(dir, sizeof dir, "%s/runs/nan", g_dir);
    sg_test_true("the good checkpoint is kept", sg_ckpt_latest(dir, latest, sizeof latest) == 0 &&
                                                    strstr(latest, "step_0000000003") != NULL);
}

static int latest_loads(const char *dir, int64_t *step)
{
    char latest[800];
    struct sg_st_file f;
    *step = -1;
    if (sg_ckpt_latest(dir, latest, sizeof latest)) return 1; /* none yet: fine */
    if (sg_st_open(&f, latest)) return 0;
    int64_t s;
    int ok = sg_st_read_i64(&f, "train.step", &s, 1) == 0;
    sg_st_close(&f);
    *step = s;
    return ok;
}

/* `sogclip train -c CONFIG run.name=NAME EXTRA [--resume latest]` in a child process (exec:
 * a fork of this multithreaded process could not run OpenMP). */
static pid_t spawn(const char *name, const char *extra, int resume)
{
    fflush(stdout); /* the child's freopen would flush a copy of pending output */
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        char o1[160];
        snprintf(o1, sizeof o1, "run.name=%s", name);
        if (!freopen("/dev/null", "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(99);
        if (resume)
            execl(SG_CLI, SG_CLI, "train", "-c", g_cfg, o1, extra, "--resume", "latest", NULL);
        else
            execl(SG_CLI, SG_CLI, "train", "-c", g_cfg, o1, extra, NULL);
        _exit(98);
    }
    return pid;
}

/* Children train with a checkpoint every step; SIGKILL at random moments. */
static void check_sigkill(void)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/runs/kill", g_dir);
    srand(7);
    int ok = 1;
    for (int round = 0; round < 6 && ok; round++) {
        pid_t pid = spawn("kill", "checkpoint.every_steps=1", round > 0);
        usleep((useconds_t)(100000 + rand() % 400000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        int64_t step;
        ok = latest_loads(dir, &step);
    }
    sg_test_true("SIGKILL during checkpoints: the newest checkpoint always loads", ok);
}

static void check_sigterm(void)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/runs/term", g_dir);
    pid_t pid = spawn("term", "train.epochs=200", 0);
    usleep(1500000);
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    sg_test_true("SIGTERM: exit code 130", WIFEXITED(status) && WEXITSTATUS(status) == 130);
    int64_t step;
    sg_test_true("SIGTERM: a checkpoint was written", latest_loads(dir, &step) && step > 0);
}

int main(void)
{
    make_fixture();
    check_config_errors();
    check_resume();
    check_resume_ssl();
    check_zero_init_residual();
    check_logs();
    check_eval(&g_whole);
    check_device_config();
    check_cpu_bf16();
    check_lr_tau();
    check_recipes();
    check_loader_u8(SG_AUG_CLIP, 1);
    check_loader_u8(SG_AUG_SIMCLR, 2);
    check_nan_stop();
    check_sigkill();
    check_sigterm();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (sg_test_failures() == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    return sg_test_summary("test_train");
}
