/*
 * tests/test_loss_replay.c — the `sogclip loss` replay tool end to end: replays reference
 * sequences in the file contract (tests/ref/gen_replay.py, from the float64 spec references of
 * gen_sogclr.py, gen_isogclr.py, gen_fastclip.py, gen_sogclr_uni.py, gen_clip_loss.py,
 * gen_simclr.py), reads the output file back, and compares every step's loss,
 * objective, feature and temperature gradients and the final state against the reference.
 * Both the fast path and --ref are replayed; a corrupt input must fail with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "tests/testutil.h"
#include "tools/loss_replay.h"

/* Compares every tensor "expect.<name>" of ref with "<name>" in out. */
static void compare_outputs(const struct sg_st_file *ref, const struct sg_st_file *out,
                            const char *tag)
{
    int compared = 0;
    for (int i = 0; i < ref->n; i++) {
        const char *name = ref->entries[i].name;
        if (strncmp(name, "expect.", 7) != 0) continue;
        int64_t n = sg_shape_numel(ref->entries[i].ndim, ref->entries[i].shape);
        float *want = sg_test_ref(ref, name, n);
        float *got = sg_test_ref(out, name + 7, n);
        char label[160];
        snprintf(label, sizeof label, "%s %s", tag, name + 7);
        /* fp32 C vs float64 reference; the b-shifted states and O(1) gradients (as in the
         * per-family tests) */
        sg_test_close(label, got, want, n, 2e-5f, 2e-4f);
        sg_afree(want);
        sg_afree(got);
        compared++;
    }
    sg_test_true("replay compared all expected tensors", compared > 0);
}

static void replay_one(const char *file, int use_ref)
{
    char in[1024], out[256], tag[64];
    snprintf(in, sizeof in, "%s/%s", SG_REF_DIR, file);
    snprintf(out, sizeof out, "test_loss_replay_%s%s.out.safetensors", use_ref ? "ref_" : "", file);
    snprintf(tag, sizeof tag, "%s%s", use_ref ? "ref " : "", file);
    int rc = sg_loss_replay(in, out, 0, use_ref);
    if (rc != 0) fprintf(stderr, "  replay error: %s\n", sg_last_error());
    if (!sg_test_true(tag, rc == 0)) return;
    struct sg_st_file ref, got;
    sg_test_ref_open(&ref, file);
    if (sg_st_open(&got, out) != 0) {
        sg_test_true("replay output readable", 0);
        sg_st_close(&ref);
        return;
    }
    sg_test_true("replay output keeps the metadata",
                 sg_st_meta(&got, "loss") &&
                     strcmp(sg_st_meta(&got, "loss"), sg_st_meta(&ref, "loss")) == 0);
    compare_outputs(&ref, &got, tag);
    sg_st_close(&got);
    sg_st_close(&ref);
    remove(out);
}

static void bad_inputs(void)
{
    const char *path = "test_loss_replay_bad.safetensors";
    struct sg_st_writer w;
    sg_stw_init(&w);
    sg_stw_meta(&w, "loss", "sogclr");
    sg_stw_meta(&w, "steps", "1");
    sg_stw_meta(&w, "N", "4");
    sg_stw_meta(&w, "tau", "0.1");
    float z[6] = {1, 0, 0, 1, 1, 0};
    int64_t idx[2] = {0, 7}, shape[2] = {2, 3}, ishape[1] = {2};
    sg_stw_add_f32(&w, "step.0.zi", 2, shape, z);
    sg_stw_add_f32(&w, "step.0.zt", 2, shape, z);
    sg_stw_add(&w, "step.0.index", SG_I64, 1, ishape, idx);
    sg_stw_save(&w, path);
    sg_stw_free(&w);
    int rc = sg_loss_replay(path, "test_loss_replay_bad.out", 0, 0);
    printf("     index error: %s\n", sg_last_error());
    sg_test_true("replay: index outside [0, N) is an error naming the step",
                 rc != 0 && strstr(sg_last_error(), "step 0") != NULL);
    remove(path);
    rc = sg_loss_replay("does-not-exist.safetensors", "x.out", 0, 0);
    sg_test_true("replay: missing input is an error", rc != 0);
}

int main(void)
{
    static const char *const files[] = {
        "replay_sogclr.safetensors",   "replay_isogclr.safetensors",
        "replay_fastclip.safetensors", "replay_sogclr_uni.safetensors",
        "replay_clip.safetensors",     "replay_simclr.safetensors",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        replay_one(files[i], 0);
        replay_one(files[i], 1);
    }
    bad_inputs();
    return sg_test_summary("test_loss_replay");
}
