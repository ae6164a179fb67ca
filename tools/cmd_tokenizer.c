/*
 * tools/cmd_tokenizer.c — `sogclip tokenizer` (text/tokenizer.h):
 *   sogclip tokenizer train --input captions.txt --model-prefix out --vocab-size N
 *                           [--model-type unigram|bpe] [--threads N]
 *       trains a SentencePiece model on one caption per line; writes out.model and out.vocab
 *   sogclip tokenizer encode --model m.model [--context T] [--lower] [--clean] "text" ...
 *       prints the T ids of each text (one line per text)
 * Returns a process exit code: 0 ok, 1 failure (message on stderr), 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "text/tokenizer.h"

int sg_cmd_tokenizer(int argc, char **argv);

static int tok_usage(void)
{
    fprintf(stderr,
            "usage: sogclip tokenizer train --input FILE --model-prefix OUT --vocab-size N\n"
            "                               [--model-type unigram|bpe] [--threads N]\n"
            "       sogclip tokenizer encode --model M.model [--context T] [--lower] [--clean] "
            "TEXT...\n");
    return 2;
}

static int cmd_train(int argc, char **argv)
{
    const char *input = NULL, *prefix = NULL;
    struct sg_tokenizer_train_opts o = {0, "unigram", 0, 1};
    for (int i = 0; i < argc; i++) {
        int more = i + 1 < argc;
        if (strcmp(argv[i], "--input") == 0 && more)
            input = argv[++i];
        else if (strcmp(argv[i], "--model-prefix") == 0 && more)
            prefix = argv[++i];
        else if (strcmp(argv[i], "--vocab-size") == 0 && more)
            o.vocab_size = atoi(argv[++i]);
        else if (strcmp(argv[i], "--model-type") == 0 && more)
            o.model_type = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && more)
            o.num_threads = atoi(argv[++i]);
        else
            return tok_usage();
    }
    if (!input || !prefix || o.vocab_size <= 0) return tok_usage();
    if (sg_tokenizer_train(input, prefix, &o) != 0) {
        fprintf(stderr, "sogclip tokenizer train: %s\n", sg_last_error());
        return 1;
    }
    printf("sogclip tokenizer: wrote %s.model and %s.vocab\n", prefix, prefix);
    return 0;
}

static int encode_texts(struct sg_tokenizer *t, char **texts, int n, int T)
{
    int32_t *ids = sg_xmalloc(sizeof(int32_t) * (size_t)T);
    int rc = 0;
    for (int k = 0; k < n && rc == 0; k++) {
        if (sg_tokenizer_encode(t, texts[k], ids, T) < 0) {
            fprintf(stderr, "sogclip tokenizer encode: %s\n", sg_last_error());
            rc = 1;
            break;
        }
        for (int i = 0; i < T; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    }
    free(ids);
    return rc;
}

static int cmd_encode(int argc, char **argv)
{
    const char *model = NULL;
    int T = 77, ntext = 0;
    struct sg_tokenizer_opts o;
    sg_tokenizer_default_opts(&o);
    char **texts = sg_xmalloc(sizeof(char *) * (size_t)(argc + 1));
    for (int i = 0; i < argc; i++) {
        int more = i + 1 < argc;
        if (strcmp(argv[i], "--model") == 0 && more)
            model = argv[++i];
        else if (strcmp(argv[i], "--context") == 0 && more)
            T = atoi(argv[++i]);
        else if (strcmp(argv[i], "--lower") == 0)
            o.lower = 1;
        else if (strcmp(argv[i], "--clean") == 0)
            o.clean_ws = 1;
        else
            texts[ntext++] = argv[i];
    }
    int rc = 2;
    struct sg_tokenizer *t = NULL;
    if (!model || ntext == 0 || T <= 0)
        rc = tok_usage();
    else if (sg_tokenizer_load(model, &o, &t) != 0) {
        fprintf(stderr, "sogclip tokenizer encode: %s\n", sg_last_error());
        rc = 1;
    } else
        rc = encode_texts(t, texts, ntext, T);
    sg_tokenizer_free(t);
    free(texts);
    return rc;
}

int sg_cmd_tokenizer(int argc, char **argv)
{
    if (argc < 1) return tok_usage();
    if (strcmp(argv[0], "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (strcmp(argv[0], "encode") == 0) return cmd_encode(argc - 1, argv + 1);
    return tok_usage();
}
