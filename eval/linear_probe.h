/*
 * eval/linear_probe.h — linear-probe evaluation of a checkpoint (ALGORITHMS.md 2(e)): frozen
 * backbone (BatchNorm in eval mode), features extracted once for an ImageNet-style train and
 * val folder, then a multinomial logistic regression (eval/metrics.h sg_linprobe_*: the SogCLR
 * lincls recipe on cached features; weight decay fixed or chosen on a held-out 10% of train
 * from CLIP_benchmark's grid, then retrained on all of train).
 * Features: CLIP checkpoints — the normalized image embedding (CLIP_benchmark's encode_image);
 * unimodal SSL checkpoints — the ResNet backbone's pooled features (before the projection
 * head), the SogCLR protocol. Images: resize the shorter side to the model's resolution and
 * center crop (no random augmentation: features are computed once), ImageNet mean/std for SSL.
 */
#ifndef SG_EVAL_LINEAR_PROBE_H
#define SG_EVAL_LINEAR_PROBE_H

#include "eval/metrics.h"
#include "eval/results.h"

struct sg_linear_probe_opts {
    const char *checkpoint, *train_dir, *val_dir, *tokenizer;
    struct sg_linprobe_config probe; /* epochs, batch, lr, momentum, ... */
    int choose_wd;                   /* 1: held-out selection over the grid (probe.weight_decay
                                        ignored) */
    int batch, threads, workers;     /* feature extraction */
};

/* Runs the evaluation and fills r (task linear_probe). Returns 0 or -1 with sg_err. */
int sg_linear_probe_run(const struct sg_linear_probe_opts *o, struct sg_results *r);

#endif
