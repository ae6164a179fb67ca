/*
 * eval/results.h — evaluation results as an aligned text table and as CLIP_benchmark's per-run
 * JSON (FIELD.md 5.7; CLIP_benchmark cli.py `run` dump and the return values of
 * metrics/zeroshot_*.py, linear_probe.py):
 *
 *   {"dataset": "flickr30k", "model": "ViT-B-32", "pretrained": "run/ckpt.safetensors",
 *    "task": "zeroshot_retrieval", "metrics": {"image_retrieval_recall@1": 0.4321, ...},
 *    "language": "en"}
 *
 * Keys and units, as CLIP_benchmark writes them (values are FRACTIONS in [0, 1], not percent):
 *   zeroshot_classification  acc1, acc5, mean_per_class_recall
 *   zeroshot_retrieval       image_retrieval_recall@K (text -> image), text_retrieval_recall@K
 *                            (image -> text), K = 1, 5, 10 (CLIP_benchmark's --recall_k list)
 *   linear_probe             lp_acc1, lp_acc5, lp_mean_per_class_recall, weight_decay, epochs,
 *                            seed, fewshot_k, normalized
 * Extra keys (ignored by CLIP_benchmark's CSV builder, which takes the union of keys):
 *   retrieval: image_retrieval_mean_rank, image_retrieval_median_rank, text_retrieval_mean_rank,
 *   text_retrieval_median_rank (1-based, open_clip's definition) and mean_recall (the mean of
 *   the six recalls: iSogCLR's r_mean / 100).
 * Differences: NaN/Inf (acc5 with fewer than 5 classes) is written as null, not Python's
 * non-standard NaN token, so the file is strict JSON; numbers use the shortest form that reads
 * back to the same double. Files are written atomically (tmp + fsync + rename).
 */
#ifndef SG_EVAL_RESULTS_H
#define SG_EVAL_RESULTS_H

#include <stdint.h>
#include <stdio.h>

#include "eval/metrics.h"

#define SG_TASK_ZEROSHOT_CLASSIFICATION "zeroshot_classification"
#define SG_TASK_ZEROSHOT_RETRIEVAL      "zeroshot_retrieval"
#define SG_TASK_LINEAR_PROBE            "linear_probe"

#define SG_RESULTS_MAX_METRICS 32
#define SG_RESULTS_KEY_LEN     48
#define SG_RESULTS_MAX_NOTES   8
#define SG_RESULTS_NOTE_LEN    160

enum sg_result_kind {
    SG_RES_FRACTION, /* a rate in [0, 1]; the table shows it as percent */
    SG_RES_NUMBER,   /* any real number */
    SG_RES_INT,      /* an integer (epochs, seed) */
    SG_RES_BOOL,     /* true / false */
};

struct sg_result_metric {
    char key[SG_RESULTS_KEY_LEN];
    enum sg_result_kind kind;
    double value; /* NaN or Inf: JSON null */
};

struct sg_results {
    char *dataset, *model, *pretrained, *task, *language; /* owned copies */
    int n;
    struct sg_result_metric metrics[SG_RESULTS_MAX_METRICS]; /* in insertion order */
    int n_notes;
    char notes[SG_RESULTS_MAX_NOTES][SG_RESULTS_NOTE_LEN]; /* table only, not JSON */
};

/* task: one of the SG_TASK_* names; the strings are copied; language defaults to "en". */
void sg_results_init(struct sg_results *r, const char *task, const char *dataset, const char *model,
                     const char *pretrained);
void sg_results_set_language(struct sg_results *r, const char *language);
void sg_results_free(struct sg_results *r);

/* Adds a metric (a key must be new and fit SG_RESULTS_KEY_LEN; at most SG_RESULTS_MAX_METRICS:
 * programmer errors, SG_CHECK). */
void sg_results_add(struct sg_results *r, const char *key, enum sg_result_kind kind, double value);
/* A free-text line shown under the table (e.g. classes excluded from a mean). */
void sg_results_note(struct sg_results *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Add the standard keys of each task (fractions computed from the counts). */
void sg_results_add_retrieval(struct sg_results *r, const struct sg_retrieval_metrics *m);
void sg_results_add_zeroshot(struct sg_results *r, const struct sg_cls_metrics *m);
/* fewshot_k: -1 for the whole training set; normalized: features were L2-normalised. */
void sg_results_add_linear_probe(struct sg_results *r, const struct sg_cls_metrics *m,
                                 double weight_decay, int epochs, int64_t seed, int fewshot_k,
                                 int normalized);

/* The JSON document (malloc'd, NUL-terminated, with a final newline). Returns 0. */
int sg_results_json(const struct sg_results *r, char **out, size_t *len);
/* Writes the JSON atomically. Returns 0, or -1 with sg_err() (path and reason). */
int sg_results_write_json(const struct sg_results *r, const char *path);
/* Prints the header fields, then one aligned row per metric (fractions as percent, NaN as
 * "n/a"), then the notes. */
void sg_results_print(const struct sg_results *r, FILE *f);

#endif
