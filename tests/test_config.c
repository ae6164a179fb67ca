/*
 * tests/test_config.c — the YAML configuration layer (core/yaml.h, core/config.h): loading
 * (nested sections, lists, empty files), every error message checked literally with its
 * file:line:col, command-line overrides, dump -> reload round trips, hostile input.
 * Inputs: the YAML files in tests/data/config (SG_TEST_DATA_DIR) and strings in this file.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/config.h"
#include "core/yaml.h"
#include "tests/testutil.h"

#ifndef SG_TEST_DATA_DIR
#error "SG_TEST_DATA_DIR must point at tests/data (set by cmake/config.cmake)"
#endif
#define DATA(f) SG_TEST_DATA_DIR "/config/" f

/* ---- the model configuration used by every test -------------------------------------------- */

struct t_vision {
    int arch;
    int image_size;
    int layers[4], n_layers;
    int width;
    int patch_size; /* no range: the whole int range */
    float ls_init;  /* no range */
};

struct t_text {
    int context_length, vocab_size, width, heads, layers;
    char tokenizer[16];
};

struct t_model {
    int embed_dim;
    int quick_gelu;
    float init_logit_scale;
    char name[16];
    struct t_vision vision;
    struct t_text text;
};

static const char *const archs[] = {"vit", "modified_resnet", "resnet", NULL};

#define VK(name, field) .key = name, .offset = offsetof(struct t_vision, field)
static const struct sg_cfg_key vision_keys[] = {
    {VK("arch", arch), .type = SG_CFG_ENUM, .choices = archs, .help = "image tower"},
    {VK("image_size", image_size), .type = SG_CFG_INT, .min = 1, .max = 4096,
     .help = "input resolution"},
    {VK("layers", layers), .type = SG_CFG_INT_LIST, .cap = 4, .min = 1, .max = 100,
     .offset_count = offsetof(struct t_vision, n_layers), .help = "depth or blocks per stage"},
    {VK("width", width), .type = SG_CFG_INT, .min = 1, .max = 8192, .help = "channels"},
    {VK("patch_size", patch_size), .type = SG_CFG_INT, .help = "ViT patch (no range)"},
    {VK("ls_init", ls_init), .type = SG_CFG_FLOAT, .help = "layer scale (no range)"},
    {NULL}};

#define TK(name, field) .key = name, .offset = offsetof(struct t_text, field)
static const struct sg_cfg_key text_keys[] = {
    {TK("context_length", context_length), .type = SG_CFG_INT, .min = 1, .max = 4096},
    {TK("vocab_size", vocab_size), .type = SG_CFG_INT, .min = 1, .max = 1000000},
    {TK("width", width), .type = SG_CFG_INT, .min = 1, .max = 8192},
    {TK("heads", heads), .type = SG_CFG_INT, .min = 1, .max = 128},
    {TK("layers", layers), .type = SG_CFG_INT, .min = 1, .max = 100},
    {TK("tokenizer", tokenizer), .type = SG_CFG_STRING, .cap = 16},
    {NULL}};

#define MK(name, field) .key = name, .offset = offsetof(struct t_model, field)
static const struct sg_cfg_key model_keys[] = {
    {MK("embed_dim", embed_dim), .type = SG_CFG_INT, .min = 1, .max = 65536,
     .help = "joint embedding width"},
    {MK("quick_gelu", quick_gelu), .type = SG_CFG_BOOL, .help = "x*sigmoid(1.702x)"},
    {MK("init_logit_scale", init_logit_scale), .type = SG_CFG_FLOAT, .min = 0, .max = 10,
     .help = "log(1/0.07)"},
    {MK("name", name), .type = SG_CFG_STRING, .cap = 16, .help = "free text"},
    {MK("vision_cfg", vision), .type = SG_CFG_SECTION, .sub = vision_keys, .help = "image tower"},
    {MK("text_cfg", text), .type = SG_CFG_SECTION, .sub = text_keys},
    {NULL}};

static void model_defaults(struct t_model *m)
{
    memset(m, 0, sizeof *m);
    m->embed_dim = 1;
    m->init_logit_scale = 2.6592f;
    snprintf(m->name, sizeof m->name, "default");
    m->vision = (struct t_vision){.arch = 2,
                                  .image_size = 32,
                                  .layers = {2},
                                  .n_layers = 1,
                                  .width = 8,
                                  .patch_size = 4,
                                  .ls_init = 0.0f};
    m->text = (struct t_text){.context_length = 8,
                              .vocab_size = 10,
                              .width = 8,
                              .heads = 1,
                              .layers = 1,
                              .tokenizer = "none"};
}

static int model_equal(const struct t_model *a, const struct t_model *b)
{
    const struct t_vision *va = &a->vision, *vb = &b->vision;
    const struct t_text *ta = &a->text, *tb = &b->text;
    int eq = a->embed_dim == b->embed_dim && a->quick_gelu == b->quick_gelu &&
             memcmp(&a->init_logit_scale, &b->init_logit_scale, sizeof(float)) == 0 &&
             strcmp(a->name, b->name) == 0;
    eq = eq && va->arch == vb->arch && va->image_size == vb->image_size &&
         va->n_layers == vb->n_layers && va->width == vb->width &&
         va->patch_size == vb->patch_size && memcmp(&va->ls_init, &vb->ls_init, 4) == 0 &&
         memcmp(va->layers, vb->layers, sizeof(int) * (size_t)SG_MAX(va->n_layers, 0)) == 0;
    return eq && ta->context_length == tb->context_length && ta->vocab_size == tb->vocab_size &&
           ta->width == tb->width && ta->heads == tb->heads && ta->layers == tb->layers &&
           strcmp(ta->tokenizer, tb->tokenizer) == 0;
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* Passes when rc is -1 and sg_last_error() is exactly `want`. */
static void expect_err(const char *label, int rc, const char *want)
{
    int ok = rc == -1 && strcmp(sg_last_error(), want) == 0;
    if (!ok)
        printf("  %s:\n    rc   %d\n    got  %s\n    want %s\n", label, rc, sg_last_error(), want);
    sg_test_true(label, ok);
}

/* Loads `text` as "t.yaml" and binds it onto defaults; returns the first error's rc. */
static int load_bind(const char *text, struct t_model *m)
{
    struct sg_ydoc d;
    model_defaults(m);
    sg_clear_error();
    int rc = sg_yaml_load_string(&d, text, "t.yaml");
    if (rc == 0) rc = sg_cfg_bind(&d, NULL, model_keys, m);
    sg_yaml_free(&d);
    return rc;
}

/* Label: the YAML text on one line, newlines shown as '|'. */
static void expect_bind_err(const char *text, const char *want)
{
    struct t_model m;
    char label[128];
    snprintf(label, sizeof label, "%s", text);
    for (char *p = label; *p; p++)
        if (*p == '\n') *p = '|';
    expect_err(label, load_bind(text, &m), want);
}

/* ---- loading ------------------------------------------------------------------------------- */

static void test_load_vit(void)
{
    struct sg_ydoc d;
    struct t_model m;
    model_defaults(&m);
    int rc = sg_yaml_load_file(&d, DATA("vit_b32.yaml"));
    if (rc) printf("  %s\n", sg_last_error());
    sg_test_true("vit_b32.yaml loads", rc == 0);
    if (rc) return;
    const struct sg_ynode *v = sg_ymap_get(d.root, "vision_cfg");
    const struct sg_ynode *w = sg_ymap_get(v, "width");
    sg_test_true("tree: vision_cfg.width scalar at 8:10", w && w->kind == SG_Y_SCALAR &&
                                                              strcmp(w->str, "768") == 0 &&
                                                              w->line == 8 && w->col == 10);
    sg_test_true("tree: key position 8:3", v && v->key_line[3] == 8 && v->key_col[3] == 3);
    sg_test_true("tree: sg_ymap_get misses", !sg_ymap_get(v, "nope") && !sg_ymap_get(w, "x"));
    rc = sg_cfg_bind(&d, NULL, model_keys, &m);
    if (rc) printf("  %s\n", sg_last_error());
    sg_test_true("vit_b32.yaml binds", rc == 0);
    sg_test_true("vit values", m.embed_dim == 512 && m.quick_gelu == 0 && m.vision.arch == 0 &&
                                   m.vision.image_size == 224 && m.vision.n_layers == 1 &&
                                   m.vision.layers[0] == 12 && m.vision.width == 768 &&
                                   m.vision.patch_size == 32 && m.text.context_length == 77 &&
                                   m.text.vocab_size == 49408 && m.text.width == 512 &&
                                   m.text.heads == 8 && m.text.layers == 12);
    sg_test_true("absent keys keep defaults", m.init_logit_scale == 2.6592f &&
                                                  strcmp(m.name, "default") == 0 &&
                                                  strcmp(m.text.tokenizer, "none") == 0);
    /* Binding a sub-mapping alone: messages still carry the full key path. */
    struct t_vision vis = m.vision;
    sg_test_true("bind a section alone",
                 sg_cfg_bind(&d, v, vision_keys, &vis) == 0 && vis.width == 768);
    expect_err("bind a section with the wrong table", sg_cfg_bind(&d, v, text_keys, &m.text),
               DATA("vit_b32.yaml") ":5:3: vision_cfg.arch: unknown key (valid keys: "
                                    "context_length, vocab_size, width, heads, layers, tokenizer)");
    sg_yaml_free(&d);
    sg_yaml_free(&d); /* idempotent */
    sg_test_true("free leaves an empty doc", d.root == NULL && d.path == NULL);
}

static void test_load_rn50(void)
{
    struct sg_ydoc d;
    struct t_model m;
    model_defaults(&m);
    int rc = sg_yaml_load_file(&d, DATA("rn50.yaml"));
    if (rc == 0) rc = sg_cfg_bind(&d, NULL, model_keys, &m);
    if (rc) printf("  %s\n", sg_last_error());
    sg_test_true("rn50.yaml loads and binds", rc == 0);
    const int want[4] = {3, 4, 6, 3};
    sg_test_true("rn50 block list", m.vision.n_layers == 4 && !memcmp(m.vision.layers, want, 16));
    sg_test_true("rn50 values", m.embed_dim == 1024 && m.quick_gelu == 1 &&
                                    m.init_logit_scale == 2.6592f &&
                                    strcmp(m.name, "RN50 (openai)") == 0 && m.vision.arch == 1 &&
                                    m.vision.ls_init == 1e-5f && m.text.heads == 8 &&
                                    strcmp(m.text.tokenizer, "bpe") == 0);
    sg_test_true("quoted flag", d.root && sg_ymap_get(d.root, "name")->quoted == 1 &&
                                    sg_ymap_get(d.root, "embed_dim")->quoted == 0);
    sg_yaml_free(&d);
}

static void test_empty(void)
{
    static const char *const files[] = {DATA("empty.yaml"), DATA("comments.yaml")};
    for (int i = 0; i < 2; i++) {
        struct sg_ydoc d;
        struct t_model m, def;
        model_defaults(&def);
        m = def;
        int rc = sg_yaml_load_file(&d, files[i]);
        sg_test_true(files[i], rc == 0 && d.root->kind == SG_Y_MAP && d.root->n == 0 &&
                                   sg_cfg_bind(&d, NULL, model_keys, &m) == 0 &&
                                   model_equal(&m, &def));
        sg_yaml_free(&d);
    }
    struct t_model m;
    sg_test_true("a lone '---' is an empty mapping", load_bind("---\n", &m) == 0);
    sg_test_true("empty string", load_bind("", &m) == 0);
}

/* ---- error messages ------------------------------------------------------------------------ */

static void test_file_errors(void)
{
    struct sg_ydoc d;
    struct t_model m;
    model_defaults(&m);
    int rc = sg_yaml_load_file(&d, DATA("typo.yaml"));
    expect_err("typo.yaml", rc ? rc : sg_cfg_bind(&d, NULL, model_keys, &m),
               DATA("typo.yaml") ":5:3: vision_cfg.widht: unknown key (did you mean 'width'?)");
    sg_yaml_free(&d);
    rc = sg_yaml_load_file(&d, DATA("bad_int.yaml"));
    expect_err("bad_int.yaml", rc ? rc : sg_cfg_bind(&d, NULL, model_keys, &m),
               DATA("bad_int.yaml") ":7:11: text_cfg.layers: expected an integer, got 'twelve'");
    sg_yaml_free(&d);
    expect_err("syntax.yaml", sg_yaml_load_file(&d, DATA("syntax.yaml")),
               DATA("syntax.yaml") ":5:8: did not find expected ',' or ']' "
                                   "(while parsing a flow sequence at 4:11)");
    sg_test_true("failed load leaves an empty doc", d.root == NULL && d.path == NULL);
    expect_err("dup.yaml", sg_yaml_load_file(&d, DATA("dup.yaml")),
               DATA("dup.yaml") ":5:3: duplicate key 'text_cfg.width' (first defined on line 3)");
    rc = sg_yaml_load_file(&d, DATA("missing.yaml"));
    sg_test_true("missing file: -1 naming the path",
                 rc == -1 && strstr(sg_last_error(), DATA("missing.yaml")) != NULL);
}

static void test_value_errors(void)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        /* unknown keys: edit distance, shared prefix, no suggestion */
        {"vision_cfg:\n  widht: 3\n",
         "t.yaml:2:3: vision_cfg.widht: unknown key (did you mean 'width'?)"},
        {"embed_dimension: 3\n", "t.yaml:1:1: embed_dimension: unknown key (did you mean "
                                 "'embed_dim'?)"},
        {"text_cfg:\n  context: 3\n",
         "t.yaml:2:3: text_cfg.context: unknown key (did you mean 'context_length'?)"},
        {"text_cfg: {hed: 3}\n", "t.yaml:1:12: text_cfg.hed: unknown key (did you mean 'heads'?)"},
        {"zzz: 1\n", "t.yaml:1:1: zzz: unknown key (valid keys: embed_dim, quick_gelu, "
                     "init_logit_scale, name, vision_cfg, text_cfg)"},
        /* INT */
        {"text_cfg:\n  layers: twelve\n",
         "t.yaml:2:11: text_cfg.layers: expected an integer, got 'twelve'"},
        {"embed_dim: 1.5\n", "t.yaml:1:12: embed_dim: expected an integer, got '1.5'"},
        {"embed_dim: 1e3\n", "t.yaml:1:12: embed_dim: expected an integer, got '1e3'"},
        {"embed_dim: 0x10\n", "t.yaml:1:12: embed_dim: expected an integer, got '0x10'"},
        {"embed_dim: \"512\"\n",
         "t.yaml:1:12: embed_dim: expected an integer, got '512' (quoted: remove the quotes)"},
        {"embed_dim: [1]\n", "t.yaml:1:12: embed_dim: expected an integer, got a list"},
        {"embed_dim: 0\n", "t.yaml:1:12: embed_dim: value 0 out of range [1, 65536]"},
        {"vision_cfg: {image_size: 0}\n",
         "t.yaml:1:26: vision_cfg.image_size: value 0 out of range [1, 4096]"},
        {"vision_cfg: {patch_size: 2147483648}\n",
         "t.yaml:1:26: vision_cfg.patch_size: value 2147483648 out of range [-2147483648, "
         "2147483647]"},
        {"vision_cfg: {patch_size: -99999999999999999999999}\n",
         "t.yaml:1:26: vision_cfg.patch_size: value -99999999999999999999999 out of range "
         "[-2147483648, 2147483647]"},
        /* FLOAT */
        {"init_logit_scale: abc\n", "t.yaml:1:19: init_logit_scale: expected a number, got 'abc'"},
        {"init_logit_scale: 1.2.3\n",
         "t.yaml:1:19: init_logit_scale: expected a number, got '1.2.3'"},
        {"vision_cfg: {ls_init: .inf}\n",
         "t.yaml:1:23: vision_cfg.ls_init: expected a finite number, got '.inf'"},
        {"vision_cfg: {ls_init: -inf}\n",
         "t.yaml:1:23: vision_cfg.ls_init: expected a finite number, got '-inf'"},
        {"vision_cfg: {ls_init: NaN}\n",
         "t.yaml:1:23: vision_cfg.ls_init: expected a finite number, got 'NaN'"},
        {"vision_cfg: {ls_init: 1e999}\n",
         "t.yaml:1:23: vision_cfg.ls_init: expected a finite number, got '1e999'"},
        {"vision_cfg: {ls_init: 1e39}\n", "t.yaml:1:23: vision_cfg.ls_init: value 1e39 out of "
                                          "range [-3.40282347e+38, 3.40282347e+38]"},
        {"init_logit_scale: 10.5\n", "t.yaml:1:19: init_logit_scale: value 10.5 out of range "
                                     "[0, 10]"},
        /* BOOL, ENUM, STRING */
        {"quick_gelu: maybe\n", "t.yaml:1:13: quick_gelu: expected true or false, got 'maybe'"},
        {"quick_gelu: 1\n", "t.yaml:1:13: quick_gelu: expected true or false, got '1'"},
        {"vision_cfg:\n  arch: vitt\n", "t.yaml:2:9: vision_cfg.arch: expected one of vit, "
                                        "modified_resnet, resnet, got 'vitt'"},
        {"vision_cfg:\n  arch: ViT\n", "t.yaml:2:9: vision_cfg.arch: expected one of vit, "
                                       "modified_resnet, resnet, got 'ViT'"},
        {"name: abcdefghijklmnopq\n", "t.yaml:1:7: name: longer than 15 bytes (got 17)"},
        {"name: {a: 1}\n", "t.yaml:1:7: name: expected a string, got a mapping"},
        /* INT_LIST */
        {"vision_cfg:\n  layers: {a: 1}\n",
         "t.yaml:2:11: vision_cfg.layers: expected a list of integers"},
        {"vision_cfg:\n  layers: x\n",
         "t.yaml:2:11: vision_cfg.layers: expected a list of integers, got 'x'"},
        {"vision_cfg:\n  layers: [3, 4, 6, 3, 3]\n",
         "t.yaml:2:11: vision_cfg.layers: at most 4 elements"},
        {"vision_cfg:\n  layers: [3, x, 6]\n",
         "t.yaml:2:15: vision_cfg.layers[1]: expected an integer, got 'x'"},
        {"vision_cfg:\n  layers:\n    - 3\n    - [4]\n",
         "t.yaml:4:7: vision_cfg.layers[1]: expected an integer, got a list"},
        {"vision_cfg:\n  layers: [3, 0]\n",
         "t.yaml:2:15: vision_cfg.layers[1]: value 0 out of range [1, 100]"},
        {"vision_cfg:\n  layers: 101\n",
         "t.yaml:2:11: vision_cfg.layers: value 101 out of range [1, 100]"},
        /* SECTION, null */
        {"vision_cfg: 5\n", "t.yaml:1:13: vision_cfg: expected a mapping"},
        {"vision_cfg: [1]\n", "t.yaml:1:13: vision_cfg: expected a mapping"},
        {"embed_dim:\nquick_gelu: true\n", "t.yaml:1:11: embed_dim: missing value"},
        {"embed_dim: ~\n", "t.yaml:1:12: embed_dim: missing value"},
        {"name: null\n", "t.yaml:1:7: name: missing value"},
        {"vision_cfg:\n# all commented out\n", "t.yaml:1:12: vision_cfg: missing value"},
        /* the first error in file order wins */
        {"embed_dim: x\nquick_gelu: y\n", "t.yaml:1:12: embed_dim: expected an integer, got 'x'"},
        /* loader */
        {"a: &x 1\nb: *x\n",
         "t.yaml:1:4: anchors and aliases (&x / *x) are not supported; repeat the value"},
        {"a: !!int 3\n", "t.yaml:1:4: tag 'tag:yaml.org,2002:int' is not supported (only !!str)"},
        {"a: 1\n---\nb: 2\n",
         "t.yaml:2:1: several YAML documents (---) in one input are not supported"},
        {"- 1\n- 2\n", "t.yaml:1:1: the top level must be a mapping (key: value lines)"},
        {"just text\n", "t.yaml:1:1: the top level must be a mapping (key: value lines)"},
        {"? [a]\n: 1\n", "t.yaml:1:3: mapping keys must be scalars, not collections"},
        {"a: \"x\\0y\"\n", "t.yaml:1:4: a NUL character in a scalar is not supported"},
        {"a: \xff\n", "t.yaml:1:4: invalid leading UTF-8 octet (0xFF)"},
        {"a: b: c\n", "t.yaml:1:5: mapping values are not allowed in this context"},
        {"a:\n  b: 1\n c: 2\n",
         "t.yaml:3:2: did not find expected key (while parsing a block mapping at 1:1)"},
        {"a: [1, 2\n", "t.yaml:2:1: did not find expected ',' or ']' (while parsing a flow "
                       "sequence at 1:4)"},
        {"x:\n  y: 1\n  z: 2\n  y: 3\n",
         "t.yaml:4:3: duplicate key 'x.y' (first defined on line 2)"},
        {"l:\n  - {p: 1, q: 2, p: 3}\n",
         "t.yaml:2:18: duplicate key 'l[0].p' (first defined on line 2)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_bind_err(cases[i].yaml, cases[i].want);
}

static void test_accepted_values(void)
{
    struct t_model m;
    int rc = load_bind("quick_gelu: YES\ninit_logit_scale: .5\nvision_cfg:\n  ls_init: -1e-3\n"
                       "  patch_size: -2147483648\n  layers: []\n  image_size: +7\n"
                       "name: !!str 123\n",
                       &m);
    if (rc) printf("  %s\n", sg_last_error());
    sg_test_true("accepted: YES, .5, -1e-3, INT_MIN, [], +7, !!str",
                 rc == 0 && m.quick_gelu == 1 && m.init_logit_scale == 0.5f &&
                     m.vision.ls_init == -1e-3f && m.vision.patch_size == INT_MIN &&
                     m.vision.n_layers == 0 && m.vision.image_size == 7 &&
                     strcmp(m.name, "123") == 0);
    static const char *const bools[] = {"true", "False", "yes", "No", "ON", "off"};
    for (int i = 0; i < 6; i++) {
        char text[64];
        snprintf(text, sizeof text, "quick_gelu: %s\n", bools[i]);
        rc = load_bind(text, &m);
        sg_test_true(bools[i], rc == 0 && m.quick_gelu == (i % 2 == 0));
    }
    rc = load_bind("init_logit_scale: 10\nname: ''\n", &m);
    sg_test_true("float range inclusive, int text as float, empty quoted string",
                 rc == 0 && m.init_logit_scale == 10.0f && m.name[0] == 0);
}

/* ---- overrides ----------------------------------------------------------------------------- */

static void test_overrides(void)
{
    struct sg_ydoc d;
    struct t_model m;
    model_defaults(&m);
    int rc = sg_yaml_load_file(&d, DATA("vit_b32.yaml"));
    rc = rc ? rc : sg_yaml_set(&d, "text_cfg.width", "640");             /* existing key */
    rc = rc ? rc : sg_yaml_set(&d, "vision_cfg.ls_init", "0.25");        /* new key */
    rc = rc ? rc : sg_yaml_set(&d, "vision_cfg.layers", "[3, 4, 6, 3]"); /* scalar -> list */
    rc = rc ? rc : sg_yaml_set(&d, "name", "\"\"");                      /* quoted value */
    rc = rc ? rc : sg_yaml_set(&d, "text_cfg.tokenizer", "a b: c #d");   /* verbatim */
    rc = rc ? rc : sg_yaml_set(&d, "embed_dim", "1024");
    rc = rc ? rc : sg_yaml_set(&d, "embed_dim", "768"); /* twice: the last wins */
    rc = rc ? rc : sg_cfg_bind(&d, NULL, model_keys, &m);
    if (rc) printf("  %s\n", sg_last_error());
    const int want[4] = {3, 4, 6, 3};
    sg_test_true("overrides: set, create, list, quoted, verbatim, repeat",
                 rc == 0 && m.text.width == 640 && m.vision.ls_init == 0.25f &&
                     m.vision.n_layers == 4 && !memcmp(m.vision.layers, want, 16) &&
                     m.name[0] == 0 && strcmp(m.text.tokenizer, "a b: c #d") == 0 &&
                     m.embed_dim == 768 && m.vision.width == 768);

    char where[128];
    sg_yaml_where(&d, sg_ymap_get(sg_ymap_get(d.root, "text_cfg"), "width"), where, sizeof where);
    sg_test_true("override location", strcmp(where, "override text_cfg.width=640") == 0);

    expect_err("through a scalar", sg_yaml_set(&d, "quick_gelu.x", "1"),
               "override quick_gelu.x=1: 'quick_gelu' is a scalar (" DATA(
                   "vit_b32.yaml") ":3:13), not a mapping");
    expect_err("through a list", sg_yaml_set(&d, "vision_cfg.layers.x.y", "1"),
               "override vision_cfg.layers.x.y=1: 'vision_cfg.layers' is a list (override "
               "vision_cfg.layers=[3, 4, 6, 3]), not a mapping");
    expect_err("replace a mapping", sg_yaml_set(&d, "vision_cfg", "3"),
               "override vision_cfg=3: 'vision_cfg' is a mapping (" DATA(
                   "vit_b32.yaml") ":5:3); set its keys one by one (vision_cfg.KEY=VALUE)");
    expect_err("empty component", sg_yaml_set(&d, "a..b", "1"),
               "override a..b=1: empty key component (write a.b.c=VALUE)");
    expect_err("bad flow list", sg_yaml_set(&d, "vision_cfg.layers", "[1, 2"),
               "override vision_cfg.layers=[1, 2: did not find expected ',' or ']' (while "
               "parsing a flow sequence at 1:4)");
    expect_err("list then text", sg_yaml_set(&d, "vision_cfg.layers", "[1] x"),
               "override vision_cfg.layers=[1] x: did not find expected key (while parsing a "
               "block mapping at 1:1)");
    sg_test_true("failed overrides leave the tree alone",
                 sg_ymap_get(d.root, "a") == NULL && sg_cfg_bind(&d, NULL, model_keys, &m) == 0);

    /* Creating a whole section, then errors located at the override. */
    rc = sg_yaml_set(&d, "extra.deep.key", "1");
    const struct sg_ynode *deep = sg_ymap_get(sg_ymap_get(d.root, "extra"), "deep");
    sg_test_true("create nested maps", rc == 0 && deep && deep->kind == SG_Y_MAP &&
                                           !strcmp(sg_ymap_get(deep, "key")->str, "1"));
    expect_err("unknown key from an override", sg_cfg_bind(&d, NULL, model_keys, &m),
               "override extra.deep.key=1: extra: unknown key (valid keys: embed_dim, "
               "quick_gelu, init_logit_scale, name, vision_cfg, text_cfg)");
    sg_yaml_free(&d);

    struct {
        const char *key, *value, *want;
    } bad[] = {
        {"text_cfg.heads", "many",
         "override text_cfg.heads=many: text_cfg.heads: expected an integer, got 'many'"},
        {"vision_cfg.widht", "3",
         "override vision_cfg.widht=3: vision_cfg.widht: unknown key "
         "(did you mean 'width'?)"},
        {"text_cfg.heads", "", "override text_cfg.heads=: text_cfg.heads: missing value"},
        {"text_cfg.heads", "0",
         "override text_cfg.heads=0: text_cfg.heads: value 0 out of "
         "range [1, 128]"},
        {"vision_cfg.layers", "[1, 2, 3, 4, 5]",
         "override vision_cfg.layers=[1, 2, 3, 4, 5]: vision_cfg.layers: at most 4 elements"},
        {"vision_cfg.layers", "[1, x]",
         "override vision_cfg.layers=[1, x]: vision_cfg.layers[1]: expected an integer, got "
         "'x'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        model_defaults(&m);
        rc = sg_yaml_load_file(&d, DATA("vit_b32.yaml"));
        rc = rc ? rc : sg_yaml_set(&d, bad[i].key, bad[i].value);
        expect_err(bad[i].want, rc ? rc : sg_cfg_bind(&d, NULL, model_keys, &m), bad[i].want);
        sg_yaml_free(&d);
    }
    /* Overrides on an empty document build the whole tree. */
    rc = sg_yaml_load_string(&d, "", "cli");
    rc = rc ? rc : sg_yaml_set(&d, "vision_cfg.arch", "resnet");
    rc = rc ? rc : sg_yaml_set(&d, "text_cfg.heads", "4");
    model_defaults(&m);
    rc = rc ? rc : sg_cfg_bind(&d, NULL, model_keys, &m);
    sg_test_true("overrides on an empty document",
                 rc == 0 && m.vision.arch == 2 && m.text.heads == 4);
    sg_yaml_free(&d);
}

/* ---- dump / reload ------------------------------------------------------------------------- */

/* Dumps m, reloads the text and binds it onto different defaults; 1 when equal. */
static int round_trip(const struct t_model *m, int verbose)
{
    char path[] = "/tmp/sg_test_config_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) return 0;
    int rc = sg_cfg_dump(f, model_keys, m, 0);
    fclose(f);
    struct sg_ydoc d;
    struct t_model back;
    model_defaults(&back);
    back.vision.arch = (m->vision.arch + 1) % 3;
    rc = rc ? rc : sg_yaml_load_file(&d, path);
    rc = rc ? rc : sg_cfg_bind(&d, NULL, model_keys, &back);
    if (rc || verbose || !model_equal(m, &back)) {
        char *text = NULL;
        size_t len;
        if (sg_read_file(path, &text, &len) == 0) printf("---- dump:\n%s", text);
        if (rc) printf("  %s\n", sg_last_error());
        free(text);
    }
    sg_yaml_free(&d);
    unlink(path);
    return rc == 0 && model_equal(m, &back);
}

static void test_round_trip(void)
{
    struct sg_ydoc d;
    struct t_model m;
    model_defaults(&m);
    int rc = sg_yaml_load_file(&d, DATA("rn50.yaml"));
    rc = rc ? rc : sg_cfg_bind(&d, NULL, model_keys, &m);
    sg_yaml_free(&d);
    sg_test_true("rn50 dump -> reload", rc == 0 && round_trip(&m, 1));

    static const char *const strings[] = {
        "",      "null",   "~",        "yes",  "Off",   "1.5",       "-x",
        " lead", "trail ", "a: b",     "x #y", "tab\t", "q\"\\",     "\xc3\xbc\xe2\x82\xac",
        "[x]",   "#c",     "plain_ok", "{}",   "a:",    "new\nline", "*ref",
        "'s'",   "@at",    "\x7f"};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        snprintf(m.name, sizeof m.name, "%s", strings[i]);
        snprintf(m.text.tokenizer, sizeof m.text.tokenizer, "%s",
                 strings[sizeof strings / sizeof strings[0] - 1 - i]);
        char label[64];
        snprintf(label, sizeof label, "string round trip #%zu", i);
        sg_test_true(label, round_trip(&m, 0));
    }
    static const float floats[] = {0.1f,  1e-8f,       FLT_MAX,     -FLT_MAX,
                                   -0.0f, FLT_MIN,     1e-45f,      123456789.0f,
                                   0.07f, 1.0f / 3.0f, 16777217.0f, -2.5e-20f};
    int ok = 1;
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        m.vision.ls_init = floats[i];
        ok &= round_trip(&m, 0);
    }
    sg_test_true("float round trips (bit-exact)", ok);
    m.vision.patch_size = INT_MIN;
    m.vision.n_layers = 0;
    m.quick_gelu = 0;
    sg_test_true("INT_MIN, empty list, false", round_trip(&m, 0));
    m.vision.patch_size = INT_MAX;
    m.vision.n_layers = 1;
    m.vision.layers[0] = 100;
    sg_test_true("INT_MAX, one-element list", round_trip(&m, 0));

    FILE *f = tmpfile();
    m.vision.arch = 7;
    expect_err("dump: bad enum index", f ? sg_cfg_dump(f, model_keys, &m, 2) : 0,
               "dumping config key 'arch': enum index 7 not in [0, 3)");
    m.vision.arch = 0;
    m.vision.n_layers = 5;
    expect_err("dump: bad list count", f ? sg_cfg_dump(f, model_keys, &m, 2) : 0,
               "dumping config key 'layers': count 5 not in [0, 4]");
    if (f) fclose(f);
}

/* ---- hostile input ------------------------------------------------------------------------- */

static void test_hostile(void)
{
    /* Nesting: the 65th level is refused, however deep the input goes. */
    size_t depth = 100000;
    char *text = sg_xmalloc(2 * depth + 8);
    memcpy(text, "x: ", 3);
    memset(text + 3, '[', depth);
    memset(text + 3 + depth, ']', depth);
    text[3 + 2 * depth] = 0;
    struct t_model m;
    expect_err("deep flow nesting", load_bind(text, &m),
               "t.yaml:1:67: nesting deeper than 64 levels");
    free(text);
    char *blk = sg_xmalloc(200 * 200);
    size_t len = 0;
    for (int i = 0; i < 100; i++) len += (size_t)sprintf(blk + len, "%*sk:\n", i, "");
    expect_err("deep block nesting", load_bind(blk, &m),
               "t.yaml:65:65: nesting deeper than 64 levels");
    free(blk);

    /* A 16 MB scalar loads; messages quote at most 48 bytes. */
    size_t big = 16u << 20;
    text = sg_xmalloc(big + 32);
    len = (size_t)sprintf(text, "embed_dim: ");
    memset(text + len, '7', big);
    text[len + big] = 'x';
    text[len + big + 1] = 0;
    expect_err("huge scalar", load_bind(text, &m),
               "t.yaml:1:12: embed_dim: expected an integer, got "
               "'777777777777777777777777777777777777777777777777...'");
    text[len + big] = 0;
    expect_err("huge integer", load_bind(text, &m),
               "t.yaml:1:12: embed_dim: value 777777777777777777777777777777777777777777777777... "
               "out of range [1, 65536]");
    memcpy(text, "name:      ", len);
    sg_test_true("huge string rejected by cap",
                 load_bind(text, &m) == -1 && strstr(sg_last_error(), "(got 16777216)"));
    free(text);

    /* Many keys: duplicates found without quadratic work. */
    size_t nkeys = 200000;
    text = sg_xmalloc(nkeys * 16 + 32);
    len = 0;
    for (size_t i = 0; i < nkeys; i++) len += (size_t)sprintf(text + len, "k%zu: 1\n", i);
    sprintf(text + len, "k17: 2\n");
    double t0 = sg_time_now();
    expect_err("duplicate among 200000 keys", load_bind(text, &m),
               "t.yaml:200001:1: duplicate key 'k17' (first defined on line 18)");
    sg_test_true("200000 keys load in under 5 s", sg_time_now() - t0 < 5.0);
    free(text);

    /* Garbage bytes never crash; they give an error with a location. */
    unsigned char junk[512];
    uint64_t s = 88172645463325252ull;
    int all_ok = 1;
    for (int trial = 0; trial < 300; trial++) {
        for (size_t i = 0; i < sizeof junk - 1; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            junk[i] = (unsigned char)("ab: -[]{},?&*!|>'\"%#\n 1.\t\x01\xc3"[s % 27]);
            if (junk[i] == 0) junk[i] = 'x';
        }
        junk[sizeof junk - 1] = 0;
        sg_clear_error();
        int rc = load_bind((const char *)junk, &m);
        all_ok &= rc == 0 || strncmp(sg_last_error(), "t.yaml:", 7) == 0;
    }
    sg_test_true("random YAML-ish bytes: clean errors", all_ok);
}

int main(void)
{
    test_load_vit();
    test_load_rn50();
    test_empty();
    test_file_errors();
    test_value_errors();
    test_accepted_values();
    test_overrides();
    test_round_trip();
    test_hostile();
    return sg_test_summary("test_config");
}
