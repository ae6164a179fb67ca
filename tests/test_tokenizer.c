/*
 * tests/test_tokenizer.c — text/tokenizer.h against python3-sentencepiece: exact ids of ~20
 * strings (ASCII, punctuation, case with and without lower-casing, extra whitespace, accents,
 * CJK, Hangul, Cyrillic, emoji, empty, longer than T) at T = 16 and 77 with the committed model
 * tests/ref/data/tokenizer_test.model; batch encoding; decode round trips; invalid UTF-8;
 * special-id overrides; error paths (missing or corrupt model, short T, bad ids); training a tiny
 * model through the C API (unigram and bpe) and round-tripping with it.
 * References: tests/ref/gen_tokenizer.py -> tests/ref/data/tokenizer.safetensors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "tests/testutil.h"
#include "text/tokenizer.h"

#define NCASES     20
#define MODEL_PATH SG_REF_DIR "/tokenizer_test.model"

static struct sg_tokenizer *load_flags(int flags)
{
    struct sg_tokenizer_opts o;
    sg_tokenizer_default_opts(&o);
    o.lower = flags & 1;
    o.clean_ws = (flags >> 1) & 1;
    struct sg_tokenizer *t = NULL;
    if (sg_tokenizer_load(MODEL_PATH, &o, &t) != 0) {
        fprintf(stderr, "FAIL: loading %s: %s\n", MODEL_PATH, sg_last_error());
        exit(1);
    }
    return t;
}

static const char *case_text(const struct sg_st_file *ref, int i)
{
    char name[32];
    snprintf(name, sizeof name, "text_%d", i);
    const struct sg_st_entry *e = sg_st_find(ref, name);
    if (!e || e->dtype != SG_U8 || e->end <= e->begin) {
        fprintf(stderr, "FAIL: reference text '%s' missing or not U8\n", name);
        exit(1);
    }
    const char *s = sg_st_raw(ref, e);
    SG_CHECK(s[e->end - e->begin - 1] == '\0', "text_%d is not NUL-terminated", i);
    return s;
}

/* Exact comparison of int ids; prints the first mismatch. */
static int ids_equal(const char *label, const int32_t *got, const int64_t *want, int n)
{
    for (int i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            fprintf(stderr, "  %s: id[%d] = %d, want %lld\n", label, i, got[i], (long long)want[i]);
            return sg_test_true(label, 0);
        }
    }
    return sg_test_true(label, 1);
}

static void test_reference_ids(const struct sg_st_file *ref, struct sg_tokenizer *tok[4])
{
    static const int Ts[] = {16, 77};
    int64_t *flags = sg_test_ref_i64(ref, "flags", NCASES);
    char name[64];
    for (int k = 0; k < 2; k++) {
        int T = Ts[k];
        int32_t *ids = sg_xmalloc(sizeof(int32_t) * (size_t)T);
        for (int i = 0; i < NCASES; i++) {
            const char *text = case_text(ref, i);
            int len = sg_tokenizer_encode(tok[flags[i]], text, ids, T);
            snprintf(name, sizeof name, "ids_%d_%d", T, i);
            int64_t *want = sg_test_ref_i64(ref, name, T);
            ids_equal(name, ids, want, T);
            snprintf(name, sizeof name, "len_%d_%d", T, i);
            int64_t *wlen = sg_test_ref_i64(ref, name, 1);
            if (!sg_test_true(name, len == (int)wlen[0]))
                fprintf(stderr, "  got %d want %lld\n", len, (long long)wlen[0]);
            free(want);
            free(wlen);
        }
        free(ids);
    }
    /* Batch = one by one (flags 0 model, all cases). */
    const char *texts[NCASES];
    for (int i = 0; i < NCASES; i++) texts[i] = case_text(ref, i);
    int32_t batch[NCASES * 16], lens[NCASES], one[16];
    int ok = sg_tokenizer_encode_batch(tok[0], texts, NCASES, batch, 16, lens) == 0;
    for (int i = 0; i < NCASES && ok; i++) {
        int len = sg_tokenizer_encode(tok[0], texts[i], one, 16);
        ok = len == lens[i] && memcmp(one, batch + i * 16, sizeof one) == 0;
    }
    sg_test_true("encode_batch equals encode", ok);
    free(flags);
}

/* Cases whose text survives encode + decode unchanged (no unk, no truncation, no whitespace
 * the normaliser collapses, flags 0): ASCII, punctuation, accents, CJK, kana, Hangul, Cyrillic,
 * digits. (Upper-case letters are absent from the lower-case corpus: unk.) */
static void test_round_trip(const struct sg_st_file *ref, struct sg_tokenizer *t)
{
    static const int lossless[] = {0, 2, 8, 10, 11, 12, 13, 15};
    int32_t ids[77];
    for (size_t k = 0; k < sizeof lossless / sizeof lossless[0]; k++) {
        const char *text = case_text(ref, lossless[k]);
        int len = sg_tokenizer_encode(t, text, ids, 77);
        char *dec = NULL;
        int n = sg_tokenizer_decode(t, ids, 77, &dec);
        char label[64];
        snprintf(label, sizeof label, "round trip case %d", lossless[k]);
        if (!sg_test_true(label, len > 0 && n >= 0 && dec && strcmp(dec, text) == 0))
            fprintf(stderr, "  '%s' -> '%s'\n", text, dec ? dec : "(null)");
        free(dec);
    }
    /* The empty string decodes to the empty string. */
    int32_t e[16];
    char *dec = NULL;
    int len = sg_tokenizer_encode(t, "", e, 16);
    sg_test_true("empty: [bos, eos, pad...]", len == 2 && e[0] == 1 && e[1] == 2 && e[15] == 3);
    sg_test_true("empty decodes to ''",
                 sg_tokenizer_decode(t, e, 16, &dec) == 0 && !strcmp(dec, ""));
    free(dec);
}

static void test_invalid_utf8(const struct sg_st_file *ref, struct sg_tokenizer *t)
{
    static const char *const names[] = {"invalid_fffe", "invalid_trunc", "invalid_mid"};
    static const char *const texts[] = {"\xff\xfe", "caf\xc3", "a \xe4\xb8 cat"};
    for (int k = 0; k < 3; k++) {
        const struct sg_st_entry *e = sg_st_find(ref, names[k]);
        SG_CHECK(e && e->ndim == 1, "reference %s missing", names[k]);
        int n = (int)e->shape[0];
        int64_t *want = sg_test_ref_i64(ref, names[k], n);
        int32_t ids[16];
        int len = sg_tokenizer_encode(t, texts[k], ids, 16);
        sg_test_true(names[k], len == n);
        ids_equal(names[k], ids, want, n);
        int pad_ok = 1;
        for (int i = n; i < 16; i++) pad_ok &= ids[i] == 3;
        sg_test_true("invalid UTF-8 padded", pad_ok);
        /* Documented: malformed bytes become unk (0). */
        int has_unk = 0;
        for (int i = 0; i < n; i++) has_unk |= ids[i] == 0;
        sg_test_true("invalid UTF-8 gives unk", has_unk);
        char *dec = NULL;
        sg_test_true("invalid UTF-8 decodes", sg_tokenizer_decode(t, ids, 16, &dec) >= 0);
        free(dec);
        free(want);
    }
}

static void test_options_and_errors(struct sg_tokenizer *t)
{
    int bos, eos, pad;
    sg_tokenizer_special_ids(t, &bos, &eos, &pad);
    sg_test_true("special ids from the model", bos == 1 && eos == 2 && pad == 3);
    sg_test_true("vocab size", sg_tokenizer_vocab_size(t) == 234);

    /* Overrides: no bos/eos, pad 0: the ids are SentencePiece's alone. */
    struct sg_tokenizer_opts o;
    sg_tokenizer_default_opts(&o);
    o.bos_id = -1;
    o.eos_id = -1;
    o.pad_id = 0;
    struct sg_tokenizer *raw = NULL;
    sg_test_true("load with overrides", sg_tokenizer_load(MODEL_PATH, &o, &raw) == 0);
    int32_t a[16], b[16];
    int la = sg_tokenizer_encode(t, "a photo of a cat", a, 16);
    int lb = sg_tokenizer_encode(raw, "a photo of a cat", b, 16);
    int ok = lb == la - 2 && memcmp(a + 1, b, sizeof(int32_t) * (size_t)lb) == 0;
    for (int i = lb; i < 16; i++) ok &= b[i] == 0;
    sg_test_true("bos/eos disabled, pad 0", ok);
    sg_test_true("empty with no specials has length 0", sg_tokenizer_encode(raw, "", b, 4) == 0);
    sg_tokenizer_free(raw);

    /* Truncation at the smallest T: [bos, eos]. */
    sg_test_true("T = 2 keeps bos, eos",
                 sg_tokenizer_encode(t, "a photo", a, 2) == 2 && a[0] == 1 && a[1] == 2);
    sg_clear_error();
    sg_test_true("T = 1 rejected", sg_tokenizer_encode(t, "a", a, 1) == -1 &&
                                       strstr(sg_last_error(), "context length") != NULL);
    int32_t bad[3] = {1, 9999, 2};
    char *dec = NULL;
    sg_test_true("decode rejects out-of-range id", sg_tokenizer_decode(t, bad, 3, &dec) == -1 &&
                                                       dec == NULL &&
                                                       strstr(sg_last_error(), "9999") != NULL);
    o.bos_id = 5000;
    sg_test_true("bos override out of range rejected",
                 sg_tokenizer_load(MODEL_PATH, &o, &raw) == -1 && raw == NULL);

    struct sg_tokenizer *none = NULL;
    sg_clear_error();
    int rc = sg_tokenizer_load("/nonexistent/dir/no.model", NULL, &none);
    sg_test_true("missing model returns -1 with a message",
                 rc == -1 && none == NULL && strstr(sg_last_error(), "no.model") != NULL);
    rc = sg_tokenizer_load(SG_REF_DIR "/tokenizer.safetensors", NULL, &none);
    sg_test_true("non-model file returns -1", rc == -1 && none == NULL);
    fprintf(stderr, "(expected error: %s)\n", sg_last_error());
}

static int write_corpus(const char *path)
{
    static const char *const subj[] = {"a cat",   "a dog",        "two people", "a red car",
                                       "the man", "a small bird", "une femme",  "一只猫"};
    static const char *const verb[] = {"sitting on", "running across", "looking at",
                                       "standing near", "jumping over"};
    static const char *const obj[] = {"a sofa",  "the green grass",      "a busy street",
                                      "the sea", "an old train station", "a wooden table"};
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 5; j++)
            for (int k = 0; k < 6; k++) fprintf(f, "%s %s %s\n", subj[i], verb[j], obj[k]);
    return fclose(f);
}

static void test_train(void)
{
    char dir[] = "/tmp/sg_tok_XXXXXX";
    if (!mkdtemp(dir)) {
        sg_test_true("mkdtemp", 0);
        return;
    }
    char corpus[256], prefix[256], model[300], vocab[300];
    snprintf(corpus, sizeof corpus, "%s/captions.txt", dir);
    sg_test_true("write corpus", write_corpus(corpus) == 0);
    static const char *const types[] = {"unigram", "bpe"};
    for (int k = 0; k < 2; k++) {
        snprintf(prefix, sizeof prefix, "%s/tok_%s", dir, types[k]);
        snprintf(model, sizeof model, "%s.model", prefix);
        snprintf(vocab, sizeof vocab, "%s.vocab", prefix);
        struct sg_tokenizer_train_opts o = {80, types[k], 1, 0};
        int rc = sg_tokenizer_train(corpus, prefix, &o);
        if (!sg_test_true(types[k], rc == 0)) fprintf(stderr, "  %s\n", sg_last_error());
        struct sg_tokenizer *t = NULL;
        sg_test_true("trained model loads", sg_tokenizer_load(model, NULL, &t) == 0);
        if (t) {
            int bos, eos, pad;
            sg_tokenizer_special_ids(t, &bos, &eos, &pad);
            sg_test_true("trained special ids", bos == 1 && eos == 2 && pad == 3);
            const char *text = "a dog looking at the sea";
            int32_t ids[48];
            char *dec = NULL;
            int len = sg_tokenizer_encode(t, text, ids, 48);
            sg_tokenizer_decode(t, ids, 48, &dec);
            if (!sg_test_true("trained round trip",
                              len > 2 && len < 48 && dec && !strcmp(dec, text)))
                fprintf(stderr, "  '%s' -> '%s'\n", text, dec ? dec : "(null)");
            free(dec);
            sg_tokenizer_free(t);
        }
        unlink(model);
        unlink(vocab);
    }
    struct sg_tokenizer_train_opts bad = {80, "word2vec", 0, 0};
    sg_test_true("unknown model type rejected", sg_tokenizer_train(corpus, prefix, &bad) == -1);
    bad.model_type = "unigram";
    sg_test_true("missing corpus rejected",
                 sg_tokenizer_train("/nonexistent/captions.txt", prefix, &bad) == -1);
    unlink(corpus);
    rmdir(dir);
}

int main(void)
{
    struct sg_st_file ref;
    sg_test_ref_open(&ref, "tokenizer.safetensors");
    struct sg_tokenizer *tok[4];
    for (int f = 0; f < 4; f++) tok[f] = load_flags(f);
    test_reference_ids(&ref, tok);
    test_round_trip(&ref, tok[0]);
    test_invalid_utf8(&ref, tok[0]);
    test_options_and_errors(tok[0]);
    test_train();
    for (int f = 0; f < 4; f++) sg_tokenizer_free(tok[f]);
    sg_st_close(&ref);
    return sg_test_summary("test_tokenizer");
}
