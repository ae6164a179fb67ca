/*
 * text/tokenizer.cc — the C API of text/tokenizer.h over sentencepiece::SentencePieceProcessor
 * and SentencePieceTrainer (libsentencepiece 0.1.97). The only C++ file of sogclip besides the
 * CUDA sources. Every SentencePiece status error and every C++ exception (std::bad_alloc
 * included) is turned into -1 plus an sg_err message; nothing throws across the C boundary.
 * Reference: python3-sentencepiece (tests/ref/gen_tokenizer.py) gives the same ids.
 */
#include "text/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <unordered_map>
#include <vector>

extern "C" {
#include "core/common.h"
}

struct sg_tokenizer {
    sentencepiece::SentencePieceProcessor sp;
    struct sg_tokenizer_opts opts; /* special ids resolved (never SG_TOK_FROM_MODEL) */
    int vocab;
};

namespace
{

bool is_ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Lower-casing (ASCII only) and whitespace cleaning of text/tokenizer.h, step 1. */
std::string preprocess(const char *text, const struct sg_tokenizer_opts &o)
{
    std::string s(text);
    if (o.lower) {
        for (char &c : s)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    if (!o.clean_ws) return s;
    std::string r;
    r.reserve(s.size());
    bool pending = false; /* a whitespace run seen after some text */
    for (char c : s) {
        if (is_ascii_space(c)) {
            pending = !r.empty();
            continue;
        }
        if (pending) r.push_back(' ');
        pending = false;
        r.push_back(c);
    }
    return r;
}

int resolve_id(int want, int from_model, int vocab, const char *name, int *out)
{
    int id = want == SG_TOK_FROM_MODEL ? from_model : want;
    if (id >= vocab)
        return sg_err("tokenizer: %s id %d is outside the vocabulary (size %d); pass an id below "
                      "the vocabulary size",
                      name, id, vocab);
    *out = id < 0 ? -1 : id;
    return 0;
}

int load_impl(const char *path, const struct sg_tokenizer_opts *opts, struct sg_tokenizer **out)
{
    *out = nullptr;
    if (!path) return sg_err("tokenizer: model path is NULL");
    struct sg_tokenizer_opts o;
    sg_tokenizer_default_opts(&o);
    if (opts) o = *opts;
    sg_tokenizer *t = new sg_tokenizer();
    const auto st = t->sp.Load(path);
    if (!st.ok()) {
        delete t;
        return sg_err("tokenizer: cannot load SentencePiece model '%s': %s (check the path; "
                      "train one with `sogclip tokenizer train`)",
                      path, st.ToString().c_str());
    }
    t->vocab = t->sp.GetPieceSize();
    t->opts = o;
    int rc = resolve_id(o.bos_id, t->sp.bos_id(), t->vocab, "bos", &t->opts.bos_id);
    if (rc == 0) rc = resolve_id(o.eos_id, t->sp.eos_id(), t->vocab, "eos", &t->opts.eos_id);
    if (rc == 0) rc = resolve_id(o.pad_id, t->sp.pad_id(), t->vocab, "pad", &t->opts.pad_id);
    if (rc != 0) {
        delete t;
        return -1;
    }
    if (t->opts.pad_id < 0) t->opts.pad_id = 0; /* model without a pad piece */
    *out = t;
    return 0;
}

int encode_impl(const sg_tokenizer *t, const char *text, int32_t *ids, int T)
{
    if (!text) return sg_err("tokenizer: text is NULL");
    const sg_tokenizer_opts &o = t->opts;
    const int nspecial = (o.bos_id >= 0) + (o.eos_id >= 0);
    if (T < SG_MAX(nspecial, 1))
        return sg_err("tokenizer: context length %d is too short for bos/eos (need >= %d)", T,
                      SG_MAX(nspecial, 1));
    std::vector<int> body;
    const auto st = t->sp.Encode(preprocess(text, o), &body);
    if (!st.ok()) return sg_err("tokenizer: encode failed: %s", st.ToString().c_str());
    int n = 0;
    if (o.bos_id >= 0) ids[n++] = o.bos_id;
    const int room = T - n - (o.eos_id >= 0);
    const int nb = SG_MIN(static_cast<int>(body.size()), room);
    for (int i = 0; i < nb; i++) ids[n++] = body[static_cast<size_t>(i)];
    if (o.eos_id >= 0) ids[n++] = o.eos_id;
    for (int i = n; i < T; i++) ids[i] = o.pad_id;
    return n;
}

int decode_impl(const sg_tokenizer *t, const int32_t *ids, int n, char **out)
{
    *out = nullptr;
    const sg_tokenizer_opts &o = t->opts;
    std::vector<int> v;
    for (int i = 0; i < n; i++) {
        const int id = ids[i];
        if (id < 0 || id >= t->vocab)
            return sg_err("tokenizer: id %d at position %d is outside the vocabulary (size %d)", id,
                          i, t->vocab);
        if (i == 0 && id == o.bos_id) continue;
        if (id == o.eos_id) break;
        if (id == o.pad_id) continue;
        v.push_back(id);
    }
    std::string s;
    const auto st = t->sp.Decode(v, &s);
    if (!st.ok()) return sg_err("tokenizer: decode failed: %s", st.ToString().c_str());
    char *r = static_cast<char *>(std::malloc(s.size() + 1));
    if (!r) return sg_err("tokenizer: out of memory decoding %zu bytes", s.size());
    std::memcpy(r, s.c_str(), s.size() + 1);
    *out = r;
    return static_cast<int>(s.size());
}

int train_impl(const char *input, const char *prefix, const sg_tokenizer_train_opts *opts)
{
    if (!input || !prefix || !opts) return sg_err("tokenizer train: NULL argument");
    if (opts->vocab_size < 8)
        return sg_err("tokenizer train: vocab size %d is too small (use >= 8)", opts->vocab_size);
    const char *type = opts->model_type ? opts->model_type : "unigram";
    if (std::strcmp(type, "unigram") != 0 && std::strcmp(type, "bpe") != 0)
        return sg_err("tokenizer train: model type '%s' is not supported (use unigram or bpe)",
                      type);
    FILE *f = sg_fopen(input, "rb");
    if (!f) return sg_err_prefix("tokenizer train: ");
    fclose(f);
    std::unordered_map<std::string, std::string> kw = {
        {"input", input},
        {"model_prefix", prefix},
        {"vocab_size", std::to_string(opts->vocab_size)},
        {"model_type", type},
        {"character_coverage", "1.0"},
        {"hard_vocab_limit", "false"},
        {"unk_id", "0"},
        {"bos_id", "1"},
        {"eos_id", "2"},
        {"pad_id", "3"},
        {"minloglevel", opts->verbose ? "0" : "1"},
    };
    if (opts->num_threads > 0) kw["num_threads"] = std::to_string(opts->num_threads);
    const auto st = sentencepiece::SentencePieceTrainer::Train(kw);
    if (!st.ok())
        return sg_err("tokenizer train: SentencePiece training on '%s' failed: %s", input,
                      st.ToString().c_str());
    return 0;
}

} // namespace

extern "C" {

void sg_tokenizer_default_opts(struct sg_tokenizer_opts *o)
{
    o->lower = 0;
    o->clean_ws = 0;
    o->bos_id = SG_TOK_FROM_MODEL;
    o->eos_id = SG_TOK_FROM_MODEL;
    o->pad_id = SG_TOK_FROM_MODEL;
}

int sg_tokenizer_load(const char *model_path, const struct sg_tokenizer_opts *opts,
                      struct sg_tokenizer **out)
{
    try {
        return load_impl(model_path, opts, out);
    } catch (const std::exception &e) {
        return sg_err("tokenizer: loading '%s' failed: %s", model_path, e.what());
    } catch (...) {
        return sg_err("tokenizer: loading '%s' failed (unknown C++ exception)", model_path);
    }
}

void sg_tokenizer_free(struct sg_tokenizer *t)
{
    delete t;
}

int sg_tokenizer_vocab_size(const struct sg_tokenizer *t)
{
    return t->vocab;
}

void sg_tokenizer_special_ids(const struct sg_tokenizer *t, int *bos, int *eos, int *pad)
{
    if (bos) *bos = t->opts.bos_id;
    if (eos) *eos = t->opts.eos_id;
    if (pad) *pad = t->opts.pad_id;
}

int sg_tokenizer_encode(const struct sg_tokenizer *t, const char *text, int32_t *ids, int T)
{
    try {
        return encode_impl(t, text, ids, T);
    } catch (const std::exception &e) {
        return sg_err("tokenizer: encode failed: %s", e.what());
    } catch (...) {
        return sg_err("tokenizer: encode failed (unknown C++ exception)");
    }
}

int sg_tokenizer_encode_batch(const struct sg_tokenizer *t, const char *const *texts, int n,
                              int32_t *ids, int T, int32_t *lengths)
{
    for (int i = 0; i < n; i++) {
        const int len = sg_tokenizer_encode(t, texts[i], ids + static_cast<size_t>(i) * T, T);
        if (len < 0) return sg_err_prefix("text %d: ", i);
        if (lengths) lengths[i] = len;
    }
    return 0;
}

int sg_tokenizer_decode(const struct sg_tokenizer *t, const int32_t *ids, int n, char **out)
{
    try {
        return decode_impl(t, ids, n, out);
    } catch (const std::exception &e) {
        return sg_err("tokenizer: decode failed: %s", e.what());
    } catch (...) {
        return sg_err("tokenizer: decode failed (unknown C++ exception)");
    }
}

int sg_tokenizer_train(const char *input_path, const char *model_prefix,
                       const struct sg_tokenizer_train_opts *opts)
{
    try {
        return train_impl(input_path, model_prefix, opts);
    } catch (const std::exception &e) {
        return sg_err("tokenizer train: failed: %s", e.what());
    } catch (...) {
        return sg_err("tokenizer train: failed (unknown C++ exception)");
    }
}

} // extern "C"
