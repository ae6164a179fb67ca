/*
 * train/trainer.h — `sogclip train`: image-text (CLIP-style) and SSL training on the CPU or one
 * CUDA GPU (run.device, run.precision).
 *
 * One run = one folder <output_dir>/<name>/ holding config.yaml (the resolved configuration),
 * checkpoints/step_*.safetensors (train/checkpoint.h), model.safetensors (weights only, open_clip
 * names), metrics.jsonl, TensorBoard events and report.html (train/runlog.h).
 * A step: batch from the loader (data/loader.h) -> model forward (model/clip.h) -> loss
 * (train/train_loss.h) -> backward -> optimizer (nn/optim.h) with the warmup-cosine learning rate
 * of this step. Everything that changes between steps is in the checkpoint, so `--resume`
 * continues bit-identically (same thread count).
 * Faults: a non-finite loss or gradient stops the run with a message naming the step, without
 * writing a checkpoint (the last good one stays); SIGINT/SIGTERM finish the current step, write a
 * checkpoint and return SG_TRAIN_INTERRUPTED; a failed checkpoint write (full disk) reports and
 * stops, leaving the previous checkpoint intact.
 */
#ifndef SG_TRAIN_TRAINER_H
#define SG_TRAIN_TRAINER_H

#include <stdint.h>

#include "eval/results.h"
#include "train/config.h"

enum { SG_TRAIN_OK = 0, SG_TRAIN_FAILED = 1, SG_TRAIN_CONFIG = 2, SG_TRAIN_INTERRUPTED = 130 };

struct sg_train_opts {
    const char *resume;   /* NULL, "latest", or a checkpoint path */
    int quiet;            /* no progress output (tests) */
    int64_t stop_after;   /* > 0: stop (with a checkpoint) after this many steps in this process */
    int64_t fault_nan_at; /* tests: > 0 makes the loss of global step fault_nan_at - 1 NaN */
    double fault_slow_eval_s; /* tests: rank 0's evaluations take this much longer */
    const char *dist_backend; /* NULL: the config's dist.backend; "single" forces one process */
};

struct sg_train_result {
    int64_t steps;   /* global step at the end */
    float last_loss; /* loss of the last step */
    char run_dir[SG_PATH_MAX + 160];
    char checkpoint[SG_PATH_MAX + 200]; /* last checkpoint written */
    char report[SG_PATH_MAX + 200];     /* report.html */
    /* the end-of-training evaluation (eval.zeroshot_dir / eval.retrieval), also written to
     * eval_zeroshot.json / eval_retrieval.json in the run folder; free with
     * sg_train_result_free */
    struct sg_results zeroshot, retrieval;
    int has_zeroshot, has_retrieval;
    int rank; /* this process's rank (data parallel: only rank 0 writes and reports) */
};

/* Runs the configured training. Returns an SG_TRAIN_* code; messages go to stderr. */
int sg_train_run(const struct sg_train_config *cfg, const struct sg_train_opts *opts,
                 struct sg_train_result *res);
void sg_train_result_free(struct sg_train_result *res);

#endif
