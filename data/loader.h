/*
 * data/loader.h — the training data loader: shuffled epochs over any dataset (data/dataset.h),
 * worker threads that read, decode (data/image.h), augment (data/transforms.h) and tokenize
 * (text/tokenizer.h) into a bounded ring of prefetched batches.
 *
 * Determinism (DESIGN.md 2.2, llm.c's dataloader): results depend only on (seed, epoch, dataset,
 * config), never on the worker count or timing.
 *   - Epoch order: perm = 0..N-1, shuffled (sg_rng_shuffle) by an sg_rng seeded from
 *     hash(seed, epoch); identity when shuffle = 0.
 *   - Per-sample randomness: an sg_rng seeded from hash(seed, epoch, index): its first u32
 *     picks the caption (one per image per epoch, u32 % ncaptions), then the views are
 *     augmented in order from the same generator.
 *   - Bad samples (read or decode failure) are skipped: batch k holds the next `batch` VALID
 *     samples in permutation order after batch k-1, in that order. Skips are counted and the
 *     first 100 remembered (sg_loader_bad); when bad/seen exceeds max_bad_fraction after at
 *     least 100 samples of an epoch (or every sample of an epoch is bad), sg_loader_next returns
 *     the batches before that point and then -1 with "12 of 150 samples unreadable (8.0% > 5%):
 *     first: images/x.jpg: truncated JPEG".
 *   - Position: (epoch, cursor = permutation position after the last sample of the last batch
 *     returned, step, seen, bad); sg_loader_seek to a saved position gives exactly the batches
 *     the uninterrupted run would have produced next.
 * Pipeline: a sample is decoded into one of 4*workers staging slots (uint8 RGB), then, once
 * every earlier position is resolved, assigned to its (batch, row) and augmented straight into
 * the batch buffer — no copy of the float images. The ring holds prefetch_batches + 1 batches so
 * the consumer can hold one while prefetch_batches more are filled.
 * uint8 output (cfg.u8): the batch holds the augmented pixels instead, normalisation left to the
 * consumer (the GPU trainer uploads 4x fewer bytes and normalises there: ops/input.h).
 * Threads: the sg_loader_* calls are for one consumer thread.
 */
#ifndef SG_DATA_LOADER_H
#define SG_DATA_LOADER_H

#include <stdint.h>

#include "data/dataset.h"
#include "data/transforms.h"
#include "text/tokenizer.h"

struct sg_loader_config {
    int batch;            /* B */
    int workers;          /* decode/augment threads (>= 1) */
    int prefetch_batches; /* batches filled ahead of the one the consumer holds (>= 1) */
    uint64_t seed;
    int shuffle, drop_last;
    const struct sg_aug_config *aug; /* required; output side S = aug->size */
    int views;                       /* 1, or 2 (SimCLR two views) */
    const struct sg_tokenizer *tok;  /* NULL: no ids */
    int context_length;              /* T (with tok) */
    double max_bad_fraction;         /* abort when bad/seen exceeds this (after 100 samples) */
    int decode_min_side;             /* > 0: allow JPEG DCT downscaling keeping min side >= it
                                        (0: full-resolution decode, as PIL) */
    int u8; /* 1: batches carry img_u8 (the augmented pixels before ToTensor + Normalize,
               sg_augment_u8) and img is NULL; 0: img (normalised float) only */
    /* Data-parallel sharding (shard_world > 1): every rank shuffles the whole dataset with the
     * same seed and takes, of each global batch of shard_world x batch samples, the block
     * shard_rank (global positions k*W*B + r*B .. + B); the tail that does not fill a global
     * batch is dropped. The ranks' shards are disjoint and, batch by batch, concatenate to the
     * batches a single process with batch W x B reads (with no bad samples: a bad sample is
     * skipped within its rank's stream). Default 0 / 1. */
    int shard_rank, shard_world;
};

/* batch 32, workers 2, prefetch 2, seed 0, shuffle 1, drop_last 0, views 1, context 77,
 * max_bad_fraction 0.05, decode_min_side 0, u8 0; aug and tok NULL. */
void sg_loader_default_config(struct sg_loader_config *cfg);

struct sg_batch {
    int n;              /* samples (B, or fewer for the last batch without drop_last) */
    int views, size, T; /* views, S, context length (0 without tok) */
    int64_t epoch;
    int64_t step;     /* batch number within the epoch */
    float *img;       /* (B, views, 3, S, S) normalized (NULL with cfg.u8) */
    int32_t *ids;     /* (B, T) token ids, NULL without tok */
    int64_t *idx;     /* (B) global sample indices */
    int32_t *labels;  /* (B) class labels, -1 when none */
    int32_t *caption; /* (B) caption chosen (index among the sample's captions), -1 when none */
    uint8_t *img_u8;  /* (B, views, 3, S, S) uint8 with cfg.u8 (op_normalize_u8 with the aug's
                         mean/std gives img exactly), else NULL */
};

struct sg_loader_pos {
    int64_t epoch, cursor, step, seen, bad;
};

struct sg_loader;

/* Validates cfg (batch >= 1, views 1 or 2, aug set, context_length >= 2 with tok, dataset not
 * empty) and starts the workers. ds must outlive the loader. Returns 0 or -1 (sg_err). */
int sg_loader_open(const struct sg_loader_config *cfg, const struct sg_dataset *ds,
                   struct sg_loader **out);
/* Start epoch `epoch` from its beginning (all batches must have been released). */
void sg_loader_start_epoch(struct sg_loader *l, int64_t epoch);
/* 1: *b is the next batch (give it back with sg_loader_release); 0: the epoch is done;
 * -1: too many bad samples (sg_err has the message). */
int sg_loader_next(struct sg_loader *l, struct sg_batch **b);
void sg_loader_release(struct sg_loader *l, struct sg_batch *b);
/* Where the next batch would start (valid after sg_loader_next or start/seek). */
void sg_loader_position(const struct sg_loader *l, struct sg_loader_pos *p);
/* Continue from a saved position (all batches must have been released). Returns 0, or -1 for a
 * position that does not fit the dataset. */
int sg_loader_seek(struct sg_loader *l, const struct sg_loader_pos *p);
/* Samples resolved and skipped in the current epoch. */
void sg_loader_stats(const struct sg_loader *l, int64_t *seen, int64_t *bad);
/* Number of remembered bad samples (first 100 since open) and entry i: its global index and
 * "where: reason" (valid until sg_loader_close). */
int sg_loader_bad_count(const struct sg_loader *l);
const char *sg_loader_bad(const struct sg_loader *l, int i, int64_t *index);
/* Stops and joins the workers (also mid-epoch) and frees everything. */
void sg_loader_close(struct sg_loader *l);

/* The per-sample seed (exposed for tests and tools): hash of (seed, epoch, index). */
uint64_t sg_loader_sample_seed(uint64_t seed, int64_t epoch, int64_t index);

#endif
