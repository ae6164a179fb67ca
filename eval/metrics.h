/*
 * eval/metrics.h — evaluation metrics on given embeddings (no model code): image-text
 * retrieval, zero-shot classification and a linear probe on precomputed features.
 * Protocols: ALGORITHMS.md 2(e) and FIELD.md 5.6-5.7; reference code read: CLIP_benchmark
 * metrics/zeroshot_retrieval.py, zeroshot_classification.py, linear_probe.py; open_clip
 * get_clip_metrics (mean/median rank); SogCLR lincls.py (linear-probe recipe). The JSON form of
 * these results (fractions, CLIP_benchmark key names) is eval/results.h.
 *
 * Ranks and ties (every metric here)
 *   A query q scores every candidate j: s_qj (fp32, from sg_gemm). The rank of candidate p is
 *     rank(q, p) = 1 + #{j : s_qj > s_qp} + #{j < p : s_qj == s_qp}        (1-based)
 *   i.e. among equal scores the lower index ranks first: p's position in torch.sort(s_q,
 *   descending=True, stable=True), plus one. For top-1 this is torch.argmax (first maximal
 *   index), which CLIP_benchmark uses for mean_per_class_recall. CLIP_benchmark's recall@K and
 *   acc@K use torch.topk, whose choice among equal scores straddling the K-th place is
 *   unspecified: on CPU it comes from nth_element / partial_sort and is not index order (torch
 *   1.13: topk([.5, .25, .5, .5, 0, .5, .25], 3) returns indices 2, 5, 3), so no deterministic
 *   rule reproduces it; it always lies between the optimistic rule (1 + #{j : s_qj > s_qp}) and
 *   the pessimistic one (equal scores first), and ours does too. On tie-free scores (real
 *   embeddings) all rules agree exactly. Each metric struct counts the tie-affected queries
 *   (their positive's score equals a non-positive candidate's), so a user can see whether the
 *   rule mattered. Ties are taken on the computed fp32 scores. NaN/Inf inputs are rejected.
 *
 * Percent and fractions: these structs report percent (100 * hits / queries); eval/results.h
 * writes CLIP_benchmark's fractions (hits / queries).
 */
#ifndef SG_EVAL_METRICS_H
#define SG_EVAL_METRICS_H

#include <stdint.h>

#define SG_RECALL_NK 3
#define SG_RECALL_KS                                                                               \
    {                                                                                              \
        1, 5, 10                                                                                   \
    } /* the K of R@K, in this order everywhere */

/* ---------------------------------------------------------------------------------------------
 * Retrieval (CLIP_benchmark / open_clip protocol).
 *
 *   zi (Ni, E) image embeddings, zt (Nt, E) text embeddings, L2-normalised by the caller (the
 *   scores are raw dot products S = zt zi^T); text_to_image (Nt) the image of each caption
 *   (several captions per image allowed; images without captions are distractors).
 *   Text -> image ("image retrieval", IR; CLIP_benchmark image_retrieval_recall@K): caption t
 *     queries all Ni images; its rank is rank(t, text_to_image[t]) over the row S[t, :].
 *   Image -> text ("text retrieval", TR; text_retrieval_recall@K): image i queries all Nt
 *     captions; it is correct at K when ANY of its captions is in its top K, so its rank is
 *     the best (smallest) rank of its captions = the rank of its highest-scoring caption
 *     (lowest index on equal scores). Images with no caption are not image->text queries
 *     (CLIP_benchmark divides 0/0 for them and counts a miss; standard splits have none).
 *   R@K = 100 * #{queries with rank <= K} / #queries.
 *   mean rank = mean of the 1-based ranks; median rank = floor(median of the 1-based ranks)
 *     (= open_clip's floor(np.median(rank0)) + 1).
 *   r_mean = mean of the six recalls = (t2i_r_mean + i2t_r_mean) / 2 (iSogCLR itm_eval).
 * Memory and cost: scores are computed block_rows query rows at a time (sg_gemm), at most 1024
 * rows and 64 MiB of scores per block, once per direction (each direction ranks within rows of
 * its own GEMM, so ties are consistent within a query): 2 Nt Ni E multiply-adds in all (COCO
 * 5k test, E = 512: ~8 s on the 2-core dev machine under load). Threads: OpenMP over the rows of
 * a block; the ranking adds no thread dependence (the GEMM's rounding is oneDNN's).
 * ------------------------------------------------------------------------------------------- */
struct sg_retrieval_metrics {
    int64_t n_images, n_texts;
    int64_t n_i2t_queries;           /* images with >= 1 caption */
    int64_t t2i_hits[SG_RECALL_NK];  /* text -> image: captions with rank <= K */
    double t2i_recall[SG_RECALL_NK]; /* percent */
    double t2i_mean_rank, t2i_median_rank;
    int64_t t2i_ties;               /* captions whose image's score equals another image's */
    int64_t i2t_hits[SG_RECALL_NK]; /* image -> text: images with best caption rank <= K */
    double i2t_recall[SG_RECALL_NK];
    double i2t_mean_rank, i2t_median_rank;
    int64_t i2t_ties;              /* images whose best caption's score equals a non-caption's */
    double t2i_r_mean, i2t_r_mean; /* mean of the three recalls of one direction (percent) */
    double r_mean;                 /* mean of the six recalls (percent) */
};

/* Fills *m. t2i_rank (Nt) and i2t_rank (Ni) receive the 1-based ranks when not NULL (i2t_rank
 * is 0 for an image with no caption). Returns 0, or -1 with sg_err() on bad input (Ni, Nt or E
 * < 1, Ni or Nt >= 2^31, text_to_image outside [0, Ni), a NaN/Inf embedding); *m is then
 * zeroed. */
int sg_retrieval_eval(const float *zi, int64_t Ni, const float *zt, int64_t Nt, int E,
                      const int32_t *text_to_image, struct sg_retrieval_metrics *m,
                      int32_t *t2i_rank, int32_t *i2t_rank);
/* The same with an explicit block size (query rows per GEMM; <= 0: the default). */
int sg_retrieval_eval_blocked(const float *zi, int64_t Ni, const float *zt, int64_t Nt, int E,
                              const int32_t *text_to_image, struct sg_retrieval_metrics *m,
                              int32_t *t2i_rank, int32_t *i2t_rank, int64_t block_rows);

/* 100 * #{i : 1 <= rank[i] <= k} / #{i : rank[i] >= 1} (ranks of 0 are not queries), for any
 * K beyond 1, 5, 10. 0 when there are no queries. */
double sg_recall_at_k(const int32_t *rank, int64_t n, int k);

/* ---------------------------------------------------------------------------------------------
 * Classification: zero-shot and linear probe (CLIP_benchmark zeroshot_classification.py).
 *
 *   scores (N, C) per sample and class; labels (N) in [0, C).
 *   acc1 / acc5 = 100 * #{i : rank(i, labels[i]) <= 1 / 5} / N; acc5 is NaN when C < 5, as in
 *     CLIP_benchmark (written as null in JSON).
 *   Per-class recall (confusion-free): recall_c = 100 * #{i : y_i = c, rank(i, c) = 1} /
 *     #{i : y_i = c}, NaN for a class with no samples. mean_per_class_recall is the mean over
 *     the classes with samples only (n_classes_present of them) — sklearn's
 *     balanced_accuracy_score(target, argmax), which CLIP_benchmark reports, excludes them too.
 * ------------------------------------------------------------------------------------------- */
struct sg_cls_metrics {
    int64_t n;             /* samples */
    int n_classes;         /* C */
    int n_classes_present; /* classes with >= 1 sample: the denominator of the mean */
    int64_t correct1, correct5;
    double acc1, acc5;            /* percent; acc5 NaN when C < 5 */
    double mean_per_class_recall; /* percent */
    double balanced_accuracy;     /* the same as a fraction (sum of fractions / present) */
    int64_t ties;                 /* samples whose true class's score equals another class's */
};

/* Metrics of given scores. per_class_recall (C, percent, NaN where no samples) may be NULL.
 * Returns 0, or -1 with sg_err() (N < 1, C < 1, a label outside [0, C), a NaN score). */
int sg_cls_eval(const float *scores, const int32_t *labels, int64_t N, int C,
                struct sg_cls_metrics *m, double *per_class_recall);

/* Zero-shot classifier (open_clip / CLIP_benchmark zero_shot_classifier):
 *   prompt_emb (C, P, E): text embeddings of P prompts per class (templates x class names);
 *   W[c] = normalize( mean_p normalize(prompt_emb[c, p]) )    (C, E)
 *   normalize(x) = x / max(||x||_2, 1e-12) (F.normalize's eps; torch's final division has no
 *   eps, which differs only for an all-zero mean). Sums in double.
 * Returns 0, or -1 with sg_err() (C, P or E < 1, a NaN/Inf embedding). */
int sg_zeroshot_classifier(const float *prompt_emb, int C, int P, int E, float *W);

/* Zero-shot classification: scores = img W^T (N, C) computed 1024 rows at a time (sg_gemm;
 * CLIP_benchmark's factor 100 does not change ranks and is left out), then sg_cls_eval. img
 * (N, E) normalised image embeddings, W (C, E) from sg_zeroshot_classifier. */
int sg_zeroshot_eval(const float *img, int64_t N, const float *W, int C, int E,
                     const int32_t *labels, struct sg_cls_metrics *m, double *per_class_recall);

/* ---------------------------------------------------------------------------------------------
 * Linear probe: multinomial logistic regression on precomputed features (SogCLR lincls.py
 * recipe on cached features: a Linear(D, C) trained with SGD + momentum and a per-epoch cosine
 * learning rate; CLIP_benchmark's held-out weight-decay choice).
 *
 *   logits = X W^T + b                              X (B, D), W (C, D), b (C)
 *   L      = (1/B) sum_i [ logsumexp_c logits_ic - logits_{i,y_i} ]     (mean cross-entropy)
 *   G      = dL/dlogits = (softmax(logits) - onehot(y)) / B             (B, C)
 *   gW     = G^T X + wd W,   gb = sum_i G_i          (weight decay on W only, never on b)
 *   buf    = momentum * buf + g  (buf starts at 0),  param -= lr_e * buf      (torch SGD)
 *   lr_e   = lr * 0.5 * (1 + cos(pi * e / epochs)) for every step of epoch e (lincls)
 * Batches: full batch when batch_size <= 0 or >= N (rows in order); otherwise each epoch takes
 * the rows in a fresh order (shuffle = 1; sg_rng_shuffle of 0..N-1 on one sg_rng seeded with
 * seed + 1, reshuffled from the identity every epoch) or in order (shuffle = 0), in batches of
 * batch_size, the last one partial (drop_last = False). Init: W ~ N(0, init_std^2) drawn as
 * torch.manual_seed(seed); torch.empty(C, D).normal_(0, init_std) (core/rng.h), or zeros when
 * init_std == 0; b = 0. Deterministic: the same inputs give the same weights bit for bit (for
 * a fixed thread count of the GEMM). Large batches are processed 4096 rows at a time.
 * ------------------------------------------------------------------------------------------- */
struct sg_linprobe_config {
    int epochs;         /* lincls: 90 */
    int batch_size;     /* <= 0: full batch; lincls: 1024 */
    float lr;           /* base lr; lincls: 0.1 * batch_size / 256 */
    float momentum;     /* lincls: 0.9 */
    float weight_decay; /* lincls: 0 */
    float init_std;     /* lincls: 0.01 */
    uint64_t seed;
    int shuffle; /* 1: reshuffle every epoch (mini-batch); 0: rows in order */
};

/* lincls defaults: 90 epochs, batch 1024, lr 0.4, momentum 0.9, wd 0, init_std 0.01, seed 0,
 * shuffle. */
void sg_linprobe_config_default(struct sg_linprobe_config *cfg);

struct sg_linprobe {
    int C, D;
    float *W;         /* (C, D) */
    float *b;         /* (C) */
    double last_loss; /* mean cross-entropy over the last epoch's samples (before each step) */
};

/* Trains a probe (lp is overwritten; free it with sg_linprobe_free). Returns 0, or -1 with
 * sg_err() on bad input (N, D, C, epochs < 1, a label outside [0, C), NaN features, lr < 0,
 * momentum outside [0, 1), weight_decay < 0) or divergence (a non-finite loss or weight after
 * an epoch, e.g. lr * weight_decay > 2); lp is then empty. */
int sg_linprobe_train(struct sg_linprobe *lp, const struct sg_linprobe_config *cfg, const float *X,
                      const int32_t *y, int64_t N, int D, int C);
void sg_linprobe_free(struct sg_linprobe *lp);
/* logits (N, C) = X W^T + b. */
void sg_linprobe_logits(const struct sg_linprobe *lp, const float *X, int64_t N, float *logits);
/* Classification metrics of the probe on (X, y): sg_cls_eval of its logits. */
int sg_linprobe_eval(const struct sg_linprobe *lp, const float *X, const int32_t *y, int64_t N,
                     struct sg_cls_metrics *m, double *per_class_recall);

/* Held-out split of 0..N-1: one sg_rng_shuffle (sg_rng seeded with seed); the first
 * n_val = round(N * val_frac) (clamped to [1, N-1]) shuffled indices form the validation set,
 * the rest the training set; each set is returned in ascending order. train_idx and val_idx
 * hold N entries each. Returns 0, or -1 with sg_err() (N < 2, val_frac outside (0, 1)). */
int sg_linprobe_split(int64_t N, double val_frac, uint64_t seed, int64_t *train_idx,
                      int64_t *n_train, int64_t *val_idx, int64_t *n_val);

/* CLIP_benchmark's coarse weight-decay grid: logspace(-6, 2, 7) = 1e-6, ..., 100 (it then
 * refines on a 97-point grid, which this helper does not). Writes 7 values. */
#define SG_LINPROBE_WD_GRID_N 7
void sg_linprobe_wd_grid(float grid[SG_LINPROBE_WD_GRID_N]);

/* Chooses the weight decay: splits (X, y) with sg_linprobe_split(N, val_frac, cfg->seed), trains
 * one probe per grid value on the training part (cfg with that weight_decay) and scores top-1 on
 * the validation part; *best_wd is the value with the highest validation top-1, the first in
 * grid order on equal accuracy (CLIP_benchmark's strict "max_acc < acc1"). A grid value whose
 * training diverges is skipped (its val_acc1 is NaN). val_acc1 (n_grid, percent) may be NULL.
 * The caller then trains on all of (X, y) with *best_wd (CLIP_benchmark retrains on train +
 * val). Returns 0, or -1 with sg_err() (bad input, or every grid value diverged). */
int sg_linprobe_select_wd(const struct sg_linprobe_config *cfg, const float *X, const int32_t *y,
                          int64_t N, int D, int C, const float *grid, int n_grid, double val_frac,
                          float *best_wd, double *val_acc1);

#endif
