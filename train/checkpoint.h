/*
 * train/checkpoint.h — training checkpoints: one safetensors file holding everything a run
 * needs to continue bit-identically on the CPU:
 *   model.<name>      every parameter and buffer (open_clip names)
 *   optim.m.<name>    optimizer first moment / momentum buffer (trainable parameters)
 *   optim.v.<name>    AdamW second moment
 *   optim.step        I64 [1], optimizer steps taken
 *   loss.*            the loss state (u_img, u_txt, b_img, b_txt, epoch, gamma, ...)
 *   loader.epoch|cursor|step|seen|bad   I64 [1], the data position of the next batch
 *   train.step        I64 [1], global step
 * metadata: "config" (the resolved training YAML), "model_config" (model YAML), "format"
 * ("sogclip-checkpoint-1").
 * Written atomically (temporary file, fsync, rename; core/safetensors.h): a crash or a full
 * disk at any moment leaves the previous checkpoint intact. Files are
 * <run>/checkpoints/step_<%010lld>.safetensors; the newest K are kept.
 * The weights-only export <run>/model.safetensors holds model.<name> without the prefix
 * (loads into open_clip by name).
 * Devices: the parameter table may live on a CUDA context (arenas in device memory): saving
 * downloads, loading uploads; the file is the same either way, so a run trained on the GPU
 * resumes on the CPU and vice versa (each loss downloads / uploads its own state in its
 * state save / load).
 */
#ifndef SG_TRAIN_CHECKPOINT_H
#define SG_TRAIN_CHECKPOINT_H

#include <stdint.h>

#include "core/params.h"
#include "core/safetensors.h"
#include "data/loader.h"

struct sg_ckpt_state {
    int64_t step;             /* global step */
    int64_t optim_step;       /* optimizer steps */
    struct sg_loader_pos pos; /* of rank 0 (the ranks' positions advance in step) */
    int64_t world;            /* data-parallel world size of the run (1: single process) */
};

/* Start a writer holding the model, optimizer and positions; the caller adds the loss state
 * (under "loss.") and saves with sg_ckpt_write. */
void sg_ckpt_begin(struct sg_st_writer *w, const struct sg_params *ps,
                   const struct sg_ckpt_state *s, const char *config_yaml, const char *model_yaml);
/* Write atomically to <run>/checkpoints/step_<step>.safetensors, then delete all but the newest
 * `keep`. path receives the file name. Returns 0 or -1 (sg_err; the old files are untouched). */
int sg_ckpt_write(struct sg_st_writer *w, const char *run_dir, int64_t step, int keep, char *path,
                  size_t path_len);
/* Restore model, optimizer moments and positions from an open checkpoint file (names and shapes
 * checked first; nothing is written on a mismatch). Returns 0 or -1. */
int sg_ckpt_load(const struct sg_st_file *f, struct sg_params *ps, struct sg_ckpt_state *s);
/* Read "prefix<name>" into base + offset for every parameter (trainable ones only unless
 * buffers_too): the weights of a checkpoint ("model.") or an export (""). base is one of the
 * table's arenas (ps->data, ps->m, ps->v) on the table's device; on a CUDA table nothing is
 * written on failure. Returns 0 or -1. */
int sg_ckpt_read_arena(const struct sg_st_file *f, struct sg_params *ps, float *base,
                       const char *prefix, int buffers_too);
/* The newest checkpoint of a run ("latest"), or -1 when there is none. */
int sg_ckpt_latest(const char *run_dir, char *path, size_t path_len);
/* Weights only, open_clip names; metadata model_config and config (the training YAML, for the
 * tokenizer settings). */
int sg_ckpt_export_weights(const struct sg_params *ps, const char *path, const char *model_yaml,
                           const char *config_yaml);

#endif
