/*
 * text/tokenizer.h — plain C API over the SentencePiece library (libsentencepiece 0.1.97):
 * load a model, encode captions to a fixed context length, decode, train a model.
 * Ids equal python3-sentencepiece's `sp.encode(text)` for the same model and bytes (same library).
 *
 * Encode contract (open_clip's tokenize with a SentencePiece vocabulary), for context length T:
 *   1. optional pre-processing, in this order:
 *        lower:    ASCII A-Z -> a-z only (other letters, e.g. "É", are left alone);
 *        clean_ws: runs of ASCII whitespace (space \t \n \v \f \r) become one space, then leading
 *                  and trailing spaces are stripped (Unicode spaces are left to the model's
 *                  normaliser).
 *   2. ids = [bos] + SentencePiece ids + [eos], each special token only when its id >= 0;
 *   3. longer than T: the first T ids are kept and the last one is replaced by eos (when eos is
 *      enabled), so bos stays first and eos last;
 *   4. shorter than T: filled with pad up to T.
 *   The return value is the number of ids before padding (1..T, or 0 for an empty text with bos
 *   and eos both disabled).
 * Special ids: by default taken from the model (SentencePiece bos_id / eos_id / pad_id; a model
 * trained by sg_tokenizer_train has unk 0, bos 1, eos 2, pad 3). A model without a pad piece
 * (pad_id -1) pads with 0. sg_tokenizer_opts overrides any of them; a negative bos or eos
 * disables that token.
 * Invalid UTF-8 never fails: SentencePiece's normaliser replaces each malformed byte by U+FFFD,
 * which (absent from ordinary vocabularies) encodes to unk; adjacent unknown characters merge
 * into one unk id. E.g. "\xff\xfe" -> [bos, "▁", unk, eos] for the test model.
 * Errors (missing or corrupt model, bad arguments, training failures) return -1 with a message
 * for sg_last_error() (core/common.h); no C++ exception crosses this API.
 * A loaded tokenizer is immutable: encode/decode may be called from several threads at once.
 */
#ifndef SG_TOKENIZER_H
#define SG_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SG_TOK_FROM_MODEL (-100) /* special id: take it from the model */

struct sg_tokenizer;

struct sg_tokenizer_opts {
    int lower;    /* ASCII lower-casing before encoding */
    int clean_ws; /* collapse runs of ASCII whitespace to one space and strip the ends */
    int bos_id;   /* SG_TOK_FROM_MODEL (default), an id, or negative to disable */
    int eos_id;   /* SG_TOK_FROM_MODEL (default), an id, or negative to disable */
    int pad_id;   /* SG_TOK_FROM_MODEL (default; 0 when the model has none) or an id >= 0 */
};

/* Defaults: no lower-casing, no whitespace cleaning, special ids from the model. */
void sg_tokenizer_default_opts(struct sg_tokenizer_opts *o);

/* Loads a SentencePiece .model file. opts may be NULL (defaults). Returns 0, or -1 with sg_err
 * (file missing or not a model, special id out of range). */
int sg_tokenizer_load(const char *model_path, const struct sg_tokenizer_opts *opts,
                      struct sg_tokenizer **out);
void sg_tokenizer_free(struct sg_tokenizer *t);

/* Number of pieces (ids are in [0, vocab size)). */
int sg_tokenizer_vocab_size(const struct sg_tokenizer *t);
/* The special ids in effect (after defaults); any pointer may be NULL. */
void sg_tokenizer_special_ids(const struct sg_tokenizer *t, int *bos, int *eos, int *pad);

/* Encodes the NUL-terminated UTF-8 `text` into ids[T] (contract above). T >= 2 when bos and eos
 * are both enabled (>= 1 otherwise). Returns the number of ids before padding, or -1 with sg_err.
 */
int sg_tokenizer_encode(const struct sg_tokenizer *t, const char *text, int32_t *ids, int T);
/* Encodes n texts into ids[n][T]; lengths[n] (may be NULL) gets each return value. */
int sg_tokenizer_encode_batch(const struct sg_tokenizer *t, const char *const *texts, int n,
                              int32_t *ids, int T, int32_t *lengths);

/* Decodes ids[n] to a malloc'd NUL-terminated string (*out; free() it): a leading bos is
 * skipped, decoding stops at the first eos, pad ids are skipped (even when pad is 0 = unk).
 * Returns the string length, or -1 with sg_err for an id outside [0, vocab size). */
int sg_tokenizer_decode(const struct sg_tokenizer *t, const int32_t *ids, int n, char **out);

struct sg_tokenizer_train_opts {
    int vocab_size;         /* target size; a small corpus may give fewer pieces (no error) */
    const char *model_type; /* "unigram" (default when NULL) or "bpe" */
    int num_threads;        /* 0: SentencePiece's default */
    int verbose;            /* 0: only SentencePiece warnings and errors on stderr */
};

/* Trains a model from a text file (one caption per line) and writes prefix.model and
 * prefix.vocab. Special ids: unk 0, bos 1, eos 2, pad 3; character coverage 1.0 (every
 * character of the corpus is kept, so non-Latin captions are not mapped to unk).
 * Returns 0, or -1 with sg_err. */
int sg_tokenizer_train(const char *input_path, const char *model_prefix,
                       const struct sg_tokenizer_train_opts *opts);

#ifdef __cplusplus
}
#endif

#endif
