/*
 * eval/clip_eval.h — evaluation of a CLIP model: embeddings of datasets and prompts, zero-shot
 * classification and image-text retrieval (protocols: ALGORITHMS.md 2(e); metrics:
 * eval/metrics.h; results: eval/results.h).
 *
 * Images go through the evaluation transform (resize the shorter side, center crop, the model's
 * resolution; data/transforms.h SG_AUG_EVAL), BatchNorm in eval mode, in dataset order, with the
 * model's planned batch (a last partial batch is padded; padding rows are dropped). Texts are
 * tokenized with the training tokenizer and embedded in batches the same way.
 * A model is loaded from a training checkpoint (train/checkpoint.h: model.<name> tensors, the
 * model and training configs in its metadata) or a weights-only export with its model_config.
 */
#ifndef SG_EVAL_CLIP_EVAL_H
#define SG_EVAL_CLIP_EVAL_H

#include <stdint.h>

#include "data/dataset.h"
#include "eval/metrics.h"
#include "eval/results.h"
#include "model/clip.h"
#include "text/tokenizer.h"

struct sg_eval_model {
    struct sg_ctx *ctx;
    struct sg_clip *model;
    struct sg_tokenizer *tok;
    int workers;
    const char *split;     /* retrieval on Karpathy JSON: the split ("test" when NULL) */
    int owned;             /* loaded by sg_eval_model_load (freed by sg_eval_model_free) */
    struct sg_ctx own_ctx; /* storage when owned */
    struct sg_clip own_model;
};

/* Load weights + model config (+ tokenizer: tokenizer_path, or the checkpoint's training config
 * tokenizer.model when NULL) on the CPU. batch: embedding batch. Returns 0 or -1 with sg_err. */
int sg_eval_model_load(struct sg_eval_model *em, const char *checkpoint, const char *tokenizer_path,
                       int batch, int threads);
/* The same on a device (SG_DEVICE_CUDA + ordinal: the model and its activations live there; a
 * checkpoint from either device loads). Embedding outputs are host arrays either way. */
int sg_eval_model_load_on(struct sg_eval_model *em, const char *checkpoint,
                          const char *tokenizer_path, int batch, int threads, enum sg_device dev,
                          int device_id);
void sg_eval_model_free(struct sg_eval_model *em);
/* A view of a live model (evaluation during training): nothing is copied or freed. The model's
 * activations are overwritten; its parameters and BN statistics are only read. */
void sg_eval_model_wrap(struct sg_eval_model *em, struct sg_ctx *c, struct sg_clip *m,
                        struct sg_tokenizer *tok, int workers);

/* Normalized image embeddings (ds->n, E) in dataset order, and labels (may be NULL): host
 * arrays whatever the model's device. */
int sg_embed_dataset_images(struct sg_eval_model *em, const struct sg_dataset *ds, float *out,
                            int32_t *labels);
/* Normalized text embeddings (n, E). */
int sg_embed_texts(struct sg_eval_model *em, const char *const *texts, int64_t n, float *out);

/* Every caption of every sample of ds (malloc'd strings) and its sample index: the count, or
 * -1 with sg_err (an unreadable sample). */
int64_t sg_dataset_all_captions(const struct sg_dataset *ds, char ***texts, int32_t **t2i);

/* A shipped zero-shot data file by name (configs/zeroshot/<name>.txt: "openai80", "simple7",
 * "imagenet1k") or, when the argument contains '/' or '.', the path itself. buf holds the
 * resolved path. NULL stays NULL. */
const char *sg_zeroshot_file(const char *name_or_path, char *buf, size_t n);

/* Zero-shot classification on an ImageNet-style folder: class names (a file with one name per
 * line, in label order, or "imagenet1k": the 1000 ImageNet names in class-index order, i.e.
 * sorted wnid folders; NULL: the folder's classnames.txt or folder names) and templates: a file
 * with one template per line ("a photo of a {}."), a set name ("openai80": CLIP's 80 ImageNet
 * prompts, "simple7": the OpenAI notebook's 7), or NULL for "a photo of a {}.". Fills r (task
 * zeroshot_classification). */
int sg_eval_zeroshot(struct sg_eval_model *em, const char *folder, const char *classnames,
                     const char *templates, struct sg_results *r);
/* Retrieval on a CSV/TSV of image,caption rows (several captions per image). */
int sg_eval_retrieval(struct sg_eval_model *em, const char *csv, const char *image_key,
                      const char *caption_key, struct sg_results *r);

#endif
