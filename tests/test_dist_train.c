/*
 * tests/test_dist_train.c — data-parallel training (`mpirun -np 2`) against one process on the
 * same global batch. Run by ctest as `mpirun -np 2 test_dist_train` and `mpirun -np 1
 * test_dist_train`; alone it runs the NCCL backend on one GPU (sections 8-10), else skips (77).
 *
 * Fixture (rank 0 builds it, the path is broadcast): 96 synthetic captioned images of 16 px, a
 * 100-piece tokenizer, the tiny ViT CLIP of tests/data/models/train-vit.yaml, two-way SogCLR
 * (tau 0.1, gamma 0.9), SGD with momentum (lr 0.05: SGD keeps gradient differences as small as
 * they are, where AdamW's normalisation would turn rounding noise in exactly-zero gradients into
 * lr-sized steps), global batch 16, 4 steps.
 *   1. every rank trains the run alone (dist backend "single", batch 16) into its own folder;
 *   2. the ranks train it together (batch 8 each, the FastCLIP-pattern loss, gradients summed);
 *   3. rank 0 compares: the loss of every step (metrics.jsonl; relative 1e-4), and every tensor
 *      of the final checkpoints — parameters, optimizer momenta and the loss's u/b states —
 *      within 1e-5 (1 + |value|) (float sums reordered across ranks: ~1e-7 observed);
 *   4. the 2-rank run stopped after 2 steps and resumed by both ranks from rank 0's checkpoint
 *      ends with the same bytes in every tensor as the uninterrupted run;
 *   5. resuming the 2-rank checkpoint with one process is refused with a clear message, and
 *      ranks started with different overrides are refused before the first step, and a start-up
 *      failure on rank 0 alone (its run folder exists) stops every rank at once;
 *   6. BatchNorm: the same comparison (losses, every checkpoint tensor including the BatchNorm
 *      running statistics, same tolerances) with the ModifiedResNet CLIP of
 *      tests/data/models/train-rn.yaml (32 px: the fixture's 16 px images are resized up by the
 *      crop), dist.sync_bn true (SyncBN, ops/norm.h; with one process the key is a no-op) and
 *      lr 0.02: at lr 0.05 this small BatchNorm net amplifies float noise so much that one
 *      process with 2 threads instead of 1 already differs by 3e-4 after 4 steps; at 0.02 both
 *      that and the 2-rank run stay at 1.9e-6. Without dist.sync_bn the 2-rank run must differ
 *      (each rank normalises with its own 8 samples: ~1e5 values out of tolerance), which shows
 *      that the comparison sees the BatchNorm statistics;
 *  7b. ssl mode (ResNet-18-style backbone of width 4 with BatchNorm, dist.sync_bn, two SimCLR
 *      views): unimodal SogCLR, iSogCLR and SimCLR against one process (the loss's u, tau and
 *      tau_m states and the BatchNorm statistics included), within 10x the noise floor measured
 *      by a one-process run on 2 threads;
 *   7. FastCLIP-v3 (loss fastclip, cosine gamma) and CLIP (loss clip): the learnable temperature's
 *      gradient is added by rank 0 only before the sum over ranks; losses and every tensor
 *      (logit_scale included) equal the one-process run within the same tolerances;
 *  7c. bimodal iSogCLR (loss isogclr: per-sample temperatures, replicated) the same way;
 *   8. `mpirun -np 1`: the data-parallel code path with one rank (backend mpi: the distributed
 *      loss with G = B, the gradient "sum") equals the one-process run for sogclr, isogclr,
 *      fastclip and clip (same tolerances), on the CPU and, when a GPU is visible, on CUDA;
 *   9. CUDA ranks (a GPU visible, `mpirun -np 2`): the three losses with run.device cuda, the
 *      ranks sharing the GPU(s) (MPI stages the gradients through host memory), against one CUDA
 *      process; same tolerances (fp32 without TF32: only the loss's summation order differs);
 *  10. alone with a GPU and NCCL: dist.backend nccl with one rank on CUDA (the NCCL id through
 *      SOGCLIP_NCCL_ID_FILE; host collectives staged through the device, the gradient all-reduce
 *      on device memory) against one CUDA process, the three losses.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/ctx.h"
#include "core/dist.h"
#include "core/safetensors.h"
#include "data/synth.h"
#include "testutil.h"
#include "text/tokenizer.h"
#include "train/config.h"
#include "train/trainer.h"

#define STEPS 4

static char g_dir[256], g_cfg[512];
static double g_slow_eval; /* sg_train_opts.fault_slow_eval_s of the next runs */

static void make_fixture(void)
{
    sg_test_clip_fixture("sg_test_dist_train", g_dir, sizeof g_dir);
    char data[320], path[400], text[4096];
    snprintf(data, sizeof data, "%s/data", g_dir);
    snprintf(text, sizeof text,
             "run: {name: base, output_dir: %s/runs, seed: 3, threads: 1}\n"
             "model: {name: %s/models/train-vit.yaml}\n"
             "data: {train: %s/train.tsv, image_key: image, caption_key: caption, workers: 1}\n"
             "tokenizer: {model: %s/tok.model}\n"
             "loss: {name: sogclr, tau: 0.1, gamma: 0.9}\n"
             "optim: {name: sgd, lr: 0.05, momentum: 0.9, weight_decay: 1.0e-4}\n"
             "train: {batch_size: 16, epochs: 1, max_steps: %d, log_every: 1}\n"
             "checkpoint: {every_steps: 0, keep: 1, export_weights: false}\n"
             "log: {progress: lines, tensorboard: false}\n"
             "dist: {timeout_s: 60}\n",
             g_dir, SG_TEST_DATA_DIR, data, data, STEPS);
    snprintf(path, sizeof path, "%s/train.yaml", g_dir);
    FILE *f = fopen(path, "w");
    SG_CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s", path);
    snprintf(g_cfg, sizeof g_cfg, "%s", path);
}

/* The run of g_cfg named name, with up to 12 extra overrides ("key=value"). */
static int train_with(const char *name, const char *backend, const char *resume, int64_t stop_after,
                      const char *const *extra, int nextra, struct sg_train_result *res)
{
    char o1[160];
    const char *over[13] = {o1};
    snprintf(o1, sizeof o1, "run.name=%s", name);
    SG_CHECK(nextra >= 0 && nextra <= 12, "nextra %d", nextra);
    for (int i = 0; i < nextra; i++) over[1 + i] = extra[i];
    struct sg_train_config cfg;
    SG_CHECK(sg_train_config_load(&cfg, g_cfg, over, 1 + nextra) == 0, "%s", sg_last_error());
    struct sg_train_opts opts = {.resume = resume,
                                 .quiet = 1,
                                 .dist_backend = backend,
                                 .stop_after = stop_after,
                                 .fault_slow_eval_s = g_slow_eval};
    return sg_train_run(&cfg, &opts, res);
}

static int train_n(const char *name, const char *backend, const char *resume, int64_t stop_after,
                   struct sg_train_result *res)
{
    return train_with(name, backend, resume, stop_after, NULL, 0, res);
}

static int train(const char *name, const char *backend, const char *resume,
                 struct sg_train_result *res)
{
    return train_n(name, backend, resume, 0, res);
}

/* "loss" values of metrics.jsonl, in order. */
static int read_losses(const char *run_dir, double *loss, int max)
{
    char path[600], line[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && n < max && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"train/loss\": ");
        if (p) loss[n++] = atof(p + strlen("\"train/loss\": "));
    }
    if (f) fclose(f);
    return n;
}

/* Every f32 tensor of a against b: max |a - b| - 1e-5 |b| <= tol. expect_equal: a check
 * (prints the first mismatches); else only the number of values out of tolerance (returned).
 * *worst (may be NULL): the largest |a - b| - 1e-5 |b|. */
static int compare_checkpoints_tol(const char *pa, const char *pb, double tol, int expect_equal,
                                   double *worst_out)
{
    struct sg_st_file a, b;
    SG_CHECK(sg_st_open(&a, pa) == 0 && sg_st_open(&b, pb) == 0, "%s", sg_last_error());
    int bad = 0, nt = 0, nstate = 0;
    double worst = 0;
    for (int i = 0; i < a.n; i++) {
        const struct sg_st_entry *e = &a.entries[i];
        if (e->dtype != SG_F32) continue;
        int64_t n = 0, m = 0;
        float *x = sg_st_load_f32(&a, e->name, &n, NULL, NULL);
        float *y = sg_st_load_f32(&b, e->name, &m, NULL, NULL);
        SG_CHECK(x && y && n == m, "tensor %s missing or misshapen", e->name);
        for (int64_t k = 0; k < n; k++) {
            double d = fabs((double)x[k] - y[k]) - 1e-5 * fabs((double)y[k]);
            if (d > worst) worst = d;
            if (d > tol && bad++ < 5 && expect_equal)
                printf("  %s[%lld]: 2 ranks %.9g, 1 process %.9g\n", e->name, (long long)k, x[k],
                       y[k]);
        }
        nt++;
        nstate += strncmp(e->name, "loss.", 5) == 0;
        sg_afree(x);
        sg_afree(y);
    }
    char label[200];
    snprintf(label, sizeof label,
             "final checkpoints agree: %d tensors (%d of the loss state), max excess %.2g (allowed "
             "%.2g)",
             nt, nstate, worst, tol);
    if (expect_equal) sg_test_true(label, bad == 0 && nt > 0);
    if (worst_out) *worst_out = worst;
    sg_st_close(&a);
    sg_st_close(&b);
    return bad;
}

static int compare_checkpoints(const char *pa, const char *pb, int expect_equal)
{
    return compare_checkpoints_tol(pa, pb, 1e-5, expect_equal, NULL);
}

/* The per-step losses of two runs agree (relative 1e-4). */
static void compare_losses(const char *run_one, const char *run_two, int world)
{
    double l1[16], l2[16];
    int n1 = read_losses(run_one, l1, 16), n2 = read_losses(run_two, l2, 16), ok = 1;
    for (int k = 0; k < n1 && k < n2; k++) {
        printf("  step %d: loss 1 process %.7g, %d ranks %.7g\n", k + 1, l1[k], world, l2[k]);
        ok &= fabs(l1[k] - l2[k]) <= 1e-4 * fabs(l1[k]) + 1e-6;
    }
    char label[200];
    snprintf(label, sizeof label, "the %d logged losses equal the one-process run's", n1);
    sg_test_true(label, ok && n1 == STEPS && n2 == STEPS);
}

/* Section 6: the ModifiedResNet (BatchNorm) CLIP, with and without dist.sync_bn. */
static void batchnorm_runs(const struct sg_dist *d)
{
    char model[400], name[64], label[200];
    snprintf(model, sizeof model, "model.name=%s/models/train-rn.yaml", SG_TEST_DATA_DIR);
    const char *sync[3] = {model, "optim.lr=0.02", "dist.sync_bn=true"};
    snprintf(name, sizeof name, "rn_single_%d", d->rank);
    struct sg_train_result one, two, local;
    int r1 = train_with(name, "single", NULL, 0, sync, 3, &one);
    int r2 = train_with("rn_dist", NULL, NULL, 0, sync, 3, &two);
    int r3 = train_with("rn_dist_local", NULL, NULL, 0, sync, 2, &local);
    snprintf(label, sizeof label,
             "rank %d: ModifiedResNet runs finish: one process, %d ranks with and without "
             "dist.sync_bn (%d, %d, %d)",
             d->rank, d->world, r1, r2, r3);
    sg_test_true(label, r1 == 0 && r2 == 0 && r3 == 0 && two.steps == STEPS);
    if (d->rank != 0 || r1 || r2 || r3) return;
    printf("  ModifiedResNet, dist.sync_bn true:\n");
    compare_losses(one.run_dir, two.run_dir, d->world);
    compare_checkpoints(two.checkpoint, one.checkpoint, 1);
    int bad = compare_checkpoints(local.checkpoint, one.checkpoint, 0);
    snprintf(label, sizeof label,
             "without dist.sync_bn the %d-rank ModifiedResNet run differs (%d values out of "
             "tolerance)",
             d->world, bad);
    sg_test_true(label, bad > 0);
}

/* Section 7: FastCLIP-v3 and the CLIP baseline (a learnable temperature / logit scale: its
 * gradient is added once, by rank 0, then summed with the others). */
static void temperature_runs(const struct sg_dist *d)
{
    char name[64], label[200];
    const char *fast[2] = {"loss.name=fastclip", "loss.gamma_schedule=cosine"};
    const char *clip[1] = {"loss.name=clip"};
    for (int k = 0; k < 2; k++) {
        const char *const *over = k ? clip : fast, *what = k ? "CLIP" : "FastCLIP-v3";
        snprintf(name, sizeof name, "%s_single_%d", k ? "clip" : "fc", d->rank);
        struct sg_train_result one, two;
        int r1 = train_with(name, "single", NULL, 0, over, k ? 1 : 2, &one);
        int r2 = train_with(k ? "clip_dist" : "fc_dist", NULL, NULL, 0, over, k ? 1 : 2, &two);
        snprintf(label, sizeof label, "rank %d: %s runs finish: one process and %d ranks (%d, %d)",
                 d->rank, what, d->world, r1, r2);
        sg_test_true(label, r1 == 0 && r2 == 0 && two.steps == STEPS);
        if (d->rank != 0 || r1 || r2) continue;
        printf("  %s:\n", what);
        compare_losses(one.run_dir, two.run_dir, d->world);
        compare_checkpoints(two.checkpoint, one.checkpoint, 1); /* logit_scale included */
    }
}

/* Section 7b: ssl mode (ResNet + projection head, two views), unimodal SogCLR and iSogCLR
 * (losses/sogclr_uni_dist.h) and SimCLR (losses/simclr_dist.h) with dist.sync_bn, against one
 * process. This small BatchNorm net
 * amplifies float noise (a one-process run on 2 threads instead of 1 moves the momentum buffers
 * by ~1e-5 relative after 4 steps), so the checkpoints must agree within 10x that measured noise
 * floor (+ 1e-5); a wrong gradient or state moves values by orders of magnitude more. */
static void ssl_runs(const struct sg_dist *d)
{
    static const char *const loss[3] = {"loss.name=sogclr_uni", "loss.name=isogclr_uni",
                                        "loss.name=simclr"};
    char name[64], label[200];
    for (int k = 0; k < 3; k++) {
        const char *over[12] = {"train.mode=ssl",
                                loss[k],
                                "ssl.image_size=16",
                                "ssl.width=4",
                                "ssl.cifar_stem=true",
                                "ssl.proj_hidden=32",
                                "ssl.proj_dim=16",
                                "data.augment=simclr",
                                "dist.sync_bn=true",
                                "optim.lr=0.002",
                                k == 2 ? "loss.tau=0.5" : "loss.tau_min=0.05",
                                "run.threads=2"};
        struct sg_train_result one, two, noise;
        snprintf(name, sizeof name, "ssl%d_single_%d", k, d->rank);
        int r1 = train_with(name, "single", NULL, 0, over, 11, &one);
        snprintf(name, sizeof name, "ssl%d_threads2_%d", k, d->rank);
        int r3 = train_with(name, "single", NULL, 0, over, 12, &noise);
        snprintf(name, sizeof name, "ssl%d_dist", k);
        int r2 = train_with(name, NULL, NULL, 0, over, 11, &two);
        snprintf(label, sizeof label,
                 "rank %d: ssl %s runs finish: one process (1 and 2 threads) and %d ranks (%d, "
                 "%d, %d)",
                 d->rank, loss[k] + 10, d->world, r1, r3, r2);
        sg_test_true(label, r1 == 0 && r2 == 0 && r3 == 0 && two.steps == STEPS);
        if (d->rank != 0 || r1 || r2 || r3) continue;
        printf("  ssl, %s, dist.sync_bn true:\n", loss[k] + 10);
        compare_losses(one.run_dir, two.run_dir, d->world);
        double floor = 0;
        compare_checkpoints_tol(noise.checkpoint, one.checkpoint, 0, 0, &floor);
        printf("  noise floor (2 threads vs 1): max excess %.2g\n", floor);
        /* u (tau, tau_m) and the BatchNorm statistics included */
        compare_checkpoints_tol(two.checkpoint, one.checkpoint, 10 * floor + 1e-5, 1, NULL);
    }
}

/* Sections 7c, 8-10: the losses sogclr, isogclr, fastclip and clip (or `only` that one) on
 * `device`, one process against the data-parallel run on `backend` (NULL: auto, from the
 * launcher) with d->world ranks — world 1 included: the data-parallel code path (distributed
 * loss, gradient sum) with one rank. */
static void loss_runs(const struct sg_dist *d, const char *device, const char *backend,
                      const char *only)
{
    static const char *const loss[4] = {"sogclr", "isogclr", "fastclip", "clip"};
    char dev[64], los[64], name[96], label[240];
    snprintf(dev, sizeof dev, "run.device=%s", device);
    for (int k = 0; k < 4; k++) {
        if (only && strcmp(only, loss[k])) continue;
        snprintf(los, sizeof los, "loss.name=%s", loss[k]);
        const char *over[2] = {los, dev};
        struct sg_train_result one, two;
        snprintf(name, sizeof name, "%s_%s_single_%d", device, loss[k], d->rank);
        int r1 = train_with(name, "single", NULL, 0, over, 2, &one);
        snprintf(name, sizeof name, "%s_%s_dp", device, loss[k]);
        int r2 = train_with(name, backend, NULL, 0, over, 2, &two);
        snprintf(label, sizeof label,
                 "rank %d: %s on %s: one process and %d data-parallel rank(s) (%s) finish (%d, "
                 "%d)%s%s",
                 d->rank, loss[k], device, d->world, backend ? backend : "auto", r1, r2,
                 r1 || r2 ? ": " : "", r1 || r2 ? sg_last_error() : "");
        sg_test_true(label, r1 == 0 && r2 == 0 && two.steps == STEPS);
        if (d->rank != 0 || r1 || r2) continue;
        printf("  %s on %s, %d rank(s), backend %s:\n", loss[k], device, d->world,
               backend ? backend : "auto");
        compare_losses(one.run_dir, two.run_dir, d->world);
        compare_checkpoints(two.checkpoint, one.checkpoint, 1);
    }
}

static void remove_fixture(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) printf("  could not remove %s\n", g_dir);
}

/* Without a launcher: the NCCL backend with one rank on the GPU (dist.backend nccl, the NCCL id
 * through SOGCLIP_NCCL_ID_FILE) against one CUDA process; skipped without a GPU and NCCL. */
static int alone(void)
{
    if (!sg_cuda_available() || !sg_dist_have_nccl()) {
        printf("SKIP: alone, this test runs the nccl backend on one GPU (%s); run it under "
               "mpirun -np 1 or -np 2 for the MPI runs\n",
               sg_cuda_available() ? "this build has no NCCL" : "no CUDA GPU");
        return SG_TEST_SKIP;
    }
    struct sg_dist d;
    SG_CHECK(sg_dist_init(&d, "single", NULL, 60.0) == 0, "%s", sg_last_error());
    make_fixture();
    char idfile[300];
    snprintf(idfile, sizeof idfile, "%s/nccl.id", g_dir);
    setenv("SOGCLIP_NCCL_ID_FILE", idfile, 1);
    loss_runs(&d, "cuda", "nccl", NULL);
    if (sg_test_failures() == 0) remove_fixture();
    sg_dist_finalize(&d);
    return sg_test_summary("test_dist_train (nccl, 1 GPU)");
}

/* mpirun -np 1: the data-parallel path with one MPI rank on the CPU (and the GPU if any). */
static void world_one(const struct sg_dist *d)
{
    loss_runs(d, "cpu", "mpi", NULL);
    if (sg_cuda_available()) loss_runs(d, "cuda", "mpi", NULL);
}

/* mpirun -np 2 (and more): sections 1-7, then the GPU runs if a GPU is visible (rank on GPU
 * device_id + local rank modulo the GPUs, so one GPU may be shared; backend mpi, which stages the
 * device gradients through the host, as NCCL refuses two ranks on one GPU). */
static void world_many(struct sg_dist *d)
{
    char name[64];
    snprintf(name, sizeof name, "single_%d", d->rank);
    struct sg_train_result one, two, again;
    int r1 = train(name, "single", NULL, &one);
    int r2 = train("dist", NULL, NULL, &two);
    char label[200];
    snprintf(label, sizeof label, "rank %d: one-process and %d-rank runs finish (%d, %d)", d->rank,
             d->world, r1, r2);
    sg_test_true(label, r1 == 0 && r2 == 0 && two.steps == STEPS);
    /* 2 steps, then every rank resumes from rank 0's checkpoint: the same bytes as one go */
    struct sg_train_result half, rest;
    int r4 = train_n("dist_resumed", NULL, NULL, 2, &half);
    int r5 = r4 == 0 ? train("dist_resumed", NULL, "latest", &rest) : -1;
    snprintf(label, sizeof label, "rank %d: the %d-rank run stopped after 2 steps resumes (%d, %d)",
             d->rank, d->world, r4, r5);
    sg_test_true(label, r4 == 0 && r5 == 0 && rest.steps == STEPS);
    SG_CHECK(sg_dist_barrier(d) == 0, "%s", sg_last_error());
    if (d->rank == 0 && r4 == 0 && r5 == 0)
        sg_test_true("2 + 2 steps with a resume equal 4 steps, byte for byte (every tensor)",
                     sg_test_same_tensors(rest.checkpoint, two.checkpoint));
    if (d->rank == 0 && r1 == 0 && r2 == 0) {
        compare_losses(one.run_dir, two.run_dir, d->world);
        compare_checkpoints(two.checkpoint, one.checkpoint, 1);
        /* a 2-rank checkpoint does not resume in one process */
        int r3 = train("dist", "single", "latest", &again);
        snprintf(label, sizeof label, "resuming the %d-rank run with one process is refused: %s",
                 d->world, r3 ? sg_last_error() : "accepted");
        sg_test_true(label, r3 != 0 && strstr(sg_last_error(), "ranks"));
    }
    SG_CHECK(sg_dist_barrier(d) == 0, "%s", sg_last_error());
    /* ranks started with different overrides are refused before any step */
    struct sg_train_result mixed;
    const char *lr[1] = {d->rank == 0 ? "optim.lr=0.05" : "optim.lr=0.04"};
    int r6 = train_with("mixed", NULL, NULL, 0, lr, 1, &mixed);
    snprintf(label, sizeof label, "rank %d: ranks with different configurations are refused: %s",
             d->rank, r6 ? sg_last_error() : "accepted");
    sg_test_true(label, r6 != 0 && strstr(sg_last_error(), "configuration differs"));
    /* per-process keys may differ: run.threads 1 on rank 0, 2 on rank 1 trains */
    const char *th[1] = {d->rank == 0 ? "run.threads=1" : "run.threads=2"};
    int r8 = train_with("per_rank_threads", NULL, NULL, 1, th, 1, &mixed);
    snprintf(label, sizeof label, "rank %d: run.threads may differ per rank (%s)", d->rank,
             r8 ? sg_last_error() : "trains");
    sg_test_true(label, r8 == 0);
    /* rank 0's mid-training evaluation (2 s longer than usual) outlasts dist.timeout_s (1 s):
     * the other ranks wait for it instead of timing out in the next step */
    char retr[400];
    snprintf(retr, sizeof retr, "eval.retrieval=%s/data/train.tsv", g_dir);
    const char *ev[5] = {"dist.timeout_s=1", "eval.every_epochs=1", "train.epochs=2",
                         "train.max_steps=8", retr};
    g_slow_eval = 2.0;
    struct sg_train_result slow;
    int r9 = train_with("slow_eval", NULL, NULL, 0, ev, 5, &slow);
    g_slow_eval = 0.0;
    snprintf(label, sizeof label,
             "rank %d: ranks wait for rank 0's 2 s evaluation past a 1 s collective time-out "
             "(%s)",
             d->rank, r9 ? sg_last_error() : "8 steps");
    sg_test_true(label, r9 == 0 && slow.steps == 8);
    sg_train_result_free(&slow);
    /* rank 0 alone refuses to start (its run folder exists, no --resume): every rank stops at
     * once, not after dist.timeout_s (60 s here) */
    double t0 = sg_time_now();
    int r7 = train("dist", NULL, NULL, &again);
    double waited = sg_time_now() - t0;
    snprintf(label, sizeof label,
             "rank %d: a start-up failure on rank 0 stops every rank in %.1f s: %s", d->rank,
             waited, r7 ? sg_last_error() : "accepted");
    sg_test_true(label,
                 r7 != 0 && waited < 20.0 &&
                     (d->rank == 0 ? strstr(sg_last_error(), "already exists") != NULL
                                   : strstr(sg_last_error(), "rank 0 could not start") != NULL));
    SG_CHECK(sg_dist_barrier(d) == 0, "%s", sg_last_error());
    batchnorm_runs(d);
    sg_dist_barrier(d);
    temperature_runs(d);
    sg_dist_barrier(d);
    loss_runs(d, "cpu", NULL, "isogclr"); /* per-sample temperatures, replicated */
    sg_dist_barrier(d);
    ssl_runs(d);
    sg_dist_barrier(d);
    if (sg_cuda_available())
        loss_runs(d, "cuda", "mpi", NULL); /* NCCL refuses ranks sharing a GPU */
}

int main(void)
{
    int er, ew, el;
    if (!sg_dist_env(&er, &ew, &el)) return alone();
    struct sg_dist d;
    if (sg_dist_init(&d, ew > 1 ? "auto" : "mpi", NULL, 60.0)) {
        fprintf(stderr, "FAIL: %s\n", sg_last_error());
        return 1;
    }
    if (d.rank == 0) make_fixture();
    SG_CHECK(sg_dist_broadcast(&d, g_dir, sizeof g_dir, 0) == 0, "%s", sg_last_error());
    snprintf(g_cfg, sizeof g_cfg, "%s/train.yaml", g_dir);
    if (d.world == 1)
        world_one(&d);
    else
        world_many(&d);
    sg_dist_barrier(&d);
    double fails = sg_test_failures();
    sg_dist_allreduce_sum_f64(&d, &fails, 1);
    if (d.rank == 0) remove_fixture();
    sg_dist_finalize(&d);
    int rc = sg_test_summary("test_dist_train");
    return rc ? rc : (fails > 0 ? 1 : 0);
}
