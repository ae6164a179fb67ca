/*
 * tools/cmd_synth.c — `sogclip data synth`: writes the synthetic captioned shapes dataset of
 * data/synth.h (the embedded demo's data):
 *   sogclip data synth DIR [--size 64] [--train 8000] [--val 1000] [--seed 0] [--captions 2]
 *                          [--quality 90] [--force] [--quiet]
 * (DIR may also be given as --out DIR). Re-running with the same options does nothing when
 * DIR/.complete matches. Returns a process exit code: 0 ok, 1 failure, 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/synth.h"

int sg_cmd_synth(int argc, char **argv);

static int synth_usage(void)
{
    fprintf(stderr,
            "usage: sogclip data synth DIR [--size 64] [--train 8000] [--val 1000] [--seed 0]\n"
            "                              [--captions 2] [--quality 90] [--force] [--quiet]\n"
            "  writes a deterministic captioned shapes dataset: DIR/train.tsv, val.tsv,\n"
            "  images/, zeroshot/ (ImageNet folders, classnames.txt, templates.txt),\n"
            "  captions.txt (tokenizer input) and README.txt\n");
    return 2;
}

/* Parses a non-negative integer option value; -1 on garbage. */
static long long parse_count(const char *s)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) return -1;
    return v;
}

/* Integer options: the field each one sets. */
static long long *int_option(const char *a, long long *vals)
{
    static const char *const names[] = {"--size", "--train",    "--val",
                                        "--seed", "--captions", "--quality"};
    for (int k = 0; k < 6; k++)
        if (strcmp(a, names[k]) == 0) return &vals[k];
    return NULL;
}

int sg_cmd_synth(int argc, char **argv)
{
    struct sg_synth_opts o;
    sg_synth_opts_default(&o);
    o.verbose = 1;
    long long vals[6] = {o.size, o.ntrain, o.nval, (long long)o.seed, o.ncaptions, o.quality};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        long long *dst = int_option(a, vals);
        if (strcmp(a, "--force") == 0) {
            o.force = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            o.verbose = 0;
        } else if (strcmp(a, "--out") == 0 && i + 1 < argc) {
            o.dir = argv[++i];
        } else if (dst) {
            if (i + 1 >= argc || (*dst = parse_count(argv[i + 1])) < 0) {
                fprintf(stderr, "sogclip data synth: %s needs a non-negative integer\n", a);
                return synth_usage();
            }
            i++;
        } else if (a[0] != '-' && !o.dir) {
            o.dir = a;
        } else {
            fprintf(stderr, "sogclip data synth: unknown argument '%s'\n", a);
            return synth_usage();
        }
    }
    o.size = (int)SG_MIN(vals[0], 1 << 20);
    o.ntrain = vals[1];
    o.nval = vals[2];
    o.seed = (uint64_t)vals[3];
    o.ncaptions = (int)SG_MIN(vals[4], 1000);
    o.quality = (int)SG_MIN(vals[5], 1000);
    if (!o.dir) return synth_usage();
    struct sg_synth_stats st;
    if (sg_synth_generate(&o, &st) != 0) {
        fprintf(stderr, "sogclip data synth: %s\n", sg_last_error());
        return 1;
    }
    if (st.skipped) {
        printf("sogclip data synth: %s is up to date (.complete matches; --force regenerates)\n",
               o.dir);
        return 0;
    }
    printf("sogclip data synth: %s: %lld train / %lld val images (%dx%d), %lld + %lld captions, "
           "%lld zero-shot images in %d classes; %lld files written, %lld kept, %lld removed "
           "(%.1f s)\n",
           o.dir, (long long)o.ntrain, (long long)o.nval, o.size, o.size,
           (long long)st.train_captions, (long long)st.val_captions, (long long)st.zeroshot_images,
           st.zeroshot_classes, (long long)st.written, (long long)st.kept, (long long)st.removed,
           st.seconds);
    return 0;
}
