/*
 * tools/sogclip.c — the `sogclip` command. Subcommands:
 *   sogclip loss IN.safetensors OUT.safetensors [--threads N] [--ref]
 *       replay a sequence of loss steps (file contract: README "Loss replay")
 *   sogclip demo [--out DIR]
 *       the embedded example: synthetic data, training, evaluation (tools/cmd_demo.c)
 *   sogclip train -c CONFIG.yaml [key=value ...] [--resume latest|PATH]
 *       training (tools/cmd_train.c, train/trainer.h)
 *   sogclip data verify|shards|synth ...
 *       dataset checks, WebDataset shard writer (tools/cmd_data.c), synthetic demo data
 *       (tools/cmd_synth.c)
 *   sogclip eval zeroshot|retrieval --checkpoint C --data D ...
 *       evaluation (tools/cmd_eval.c, eval/clip_eval.h)
 *   sogclip embed --checkpoint C --data D -o OUT.safetensors
 *       image / text embeddings of a dataset (tools/cmd_embed.c)
 *   sogclip model info|init NAME ...
 *       model configs, activation plans, initial weights (tools/cmd_model.c)
 *   sogclip tokenizer train|encode ...
 *       train a SentencePiece model / encode captions (tools/cmd_tokenizer.c; built with
 *       cmake/text.cmake, which defines SG_TOKENIZER)
 * (train and eval arrive with issues 6 and 7). The only place that decides exit codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "tools/loss_replay.h"

int sg_cmd_model(int argc, char **argv); /* tools/cmd_model.c */
int sg_cmd_train(int argc, char **argv); /* tools/cmd_train.c */
int sg_cmd_data(int argc, char **argv);  /* tools/cmd_data.c */
int sg_cmd_synth(int argc, char **argv); /* tools/cmd_synth.c */
int sg_cmd_eval(int argc, char **argv);  /* tools/cmd_eval.c */
int sg_cmd_demo(int argc, char **argv);  /* tools/cmd_demo.c */
int sg_cmd_embed(int argc, char **argv); /* tools/cmd_embed.c */
#ifdef SG_TOKENIZER
int sg_cmd_tokenizer(int argc, char **argv); /* tools/cmd_tokenizer.c */
#endif

static int usage(void)
{
    fprintf(stderr, "usage: sogclip demo [--out DIR]   (synthetic data, train, evaluate)\n"
                    "       sogclip train -c CONFIG.yaml [key=value ...] [--resume latest|PATH]\n"
                    "       sogclip data verify|shards|synth ...  (run without arguments for "
                    "help)\n"
                    "       sogclip eval zeroshot|retrieval --checkpoint C --data D ...\n"
                    "       sogclip embed --checkpoint C --data D -o OUT.safetensors\n"
                    "       sogclip loss IN.safetensors OUT.safetensors [--threads N] [--ref]\n"
                    "  replays K loss steps from IN and writes losses, gradients and the final\n"
                    "  state to OUT (contract: README, 'Loss replay')\n"
                    "       sogclip model info|init NAME ...  (model configs; run without "
                    "arguments for help)\n"
                    "       sogclip tokenizer train|encode ...  (SentencePiece; run without "
                    "arguments for help)\n");
    return 2;
}

static int cmd_loss(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    int threads = 0, use_ref = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--ref") == 0)
            use_ref = 1;
        else if (!in)
            in = argv[i];
        else if (!out)
            out = argv[i];
        else
            return usage();
    }
    if (!in || !out) return usage();
    if (sg_loss_replay(in, out, threads, use_ref) != 0) {
        fprintf(stderr, "sogclip loss: %s\n", sg_last_error());
        return 1;
    }
    printf("sogclip loss: wrote %s\n", out);
    return 0;
}

static int dispatch(int argc, char **argv)
{
    if (strcmp(argv[1], "loss") == 0) return cmd_loss(argc - 2, argv + 2);
    if (strcmp(argv[1], "model") == 0) return sg_cmd_model(argc - 2, argv + 2);
    if (strcmp(argv[1], "train") == 0) return sg_cmd_train(argc - 2, argv + 2);
    if (strcmp(argv[1], "eval") == 0) return sg_cmd_eval(argc - 2, argv + 2);
    if (strcmp(argv[1], "demo") == 0) return sg_cmd_demo(argc - 2, argv + 2);
    if (strcmp(argv[1], "embed") == 0) return sg_cmd_embed(argc - 2, argv + 2);
    if (strcmp(argv[1], "data") == 0 && argc > 2 && strcmp(argv[2], "synth") == 0)
        return sg_cmd_synth(argc - 3, argv + 3);
    if (strcmp(argv[1], "data") == 0) return sg_cmd_data(argc - 2, argv + 2);
#ifdef SG_TOKENIZER
    if (strcmp(argv[1], "tokenizer") == 0) return sg_cmd_tokenizer(argc - 2, argv + 2);
#endif
    fprintf(stderr, "sogclip: unknown command '%s'\n", argv[1]);
    return usage();
}

static int is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

/* `sogclip CMD ... --help` prints CMD's usage (every subcommand prints it on an unknown
 * argument) and exits 0. */
static int wants_help(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (is_help(argv[i])) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage();
    if (is_help(argv[1])) return usage(), 0;
    if (wants_help(argc, argv)) {
        char *help_argv[4] = {argv[0], argv[1], NULL, NULL};
        int n = 2;
        if (argc > 2 && !strcmp(argv[1], "data") && !strcmp(argv[2], "synth"))
            help_argv[n++] = argv[2];
        help_argv[n++] = "--help";
        argc = n;
        argv = help_argv;
        dispatch(argc, argv);
        return 0;
    }
    return dispatch(argc, argv);
}
