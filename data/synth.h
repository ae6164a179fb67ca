/*
 * data/synth.h — the synthetic captioned shapes dataset (`sogclip data synth`), used by the
 * embedded demo: a tiny CLIP trained on it for a few CPU minutes must reach zero-shot accuracy
 * and retrieval R@1 far above chance. Our own design (no reference implementation): CLEVR /
 * "ShapeWorld"-style renders with captions from a small grammar.
 *
 * Every image is described by a struct sg_synth_desc drawn from (seed, split, index) alone
 * (sg_synth_sample); the rendering (sg_synth_render) and the captions (sg_synth_captions) both
 * derive from that description, so tests can check captions and pixels against it.
 *   objects: 1 or 2 (30%) of 6 shapes x 8 colours x 2 sizes x 5 positions; two objects never
 *            overlap, have different colours and different positions;
 *   background: one of 6 muted colours (never close to an object colour: RGB distance >= 100),
 *            plain or lightly textured (linear gradient, per-pixel noise);
 *   rendering: 4x4 supersampled coverage (anti-aliased), integer output (H, W, 3) RGB.
 * Val images cycle through the 48 "<colour> <shape>" classes (obj[0]) and have two objects in
 * rounds 2, 5, 8 (mod 10) through the classes, so the zero-shot split (the single-object val
 * images) is balanced: 14-15 images per class for the default 1000.
 *
 * Output folder (sg_synth_generate; every file byte-identical for the same options):
 *   DIR/train.tsv, DIR/val.tsv         header "image<TAB>caption", one row per caption
 *   DIR/images/{train,val}/NNNNNN.jpg  the images
 *   DIR/zeroshot/val/<colour>_<shape>/NNNNNN.jpg  single-object val images (ImageNet folders:
 *                                      one per class present, i.e. all 48 unless val is tiny)
 *   DIR/zeroshot/classnames.txt        "<colour> <shape>" per class folder, in folder sort order
 *                                      (= sg_synth_class order when all 48 are present)
 *   DIR/zeroshot/templates.txt         prompt templates with {} for the class name
 *   DIR/captions.txt                   every training caption, one per line (tokenizer input)
 *   DIR/README.txt, DIR/.complete      description; the options of the finished run
 * Re-running with the same options is a no-op when DIR/.complete matches; otherwise files whose
 * bytes are already right are kept (an interrupted run resumes cheaply) and stale images are
 * removed. Images are written to NAME.tmp and renamed; text files atomically with fsync.
 */
#ifndef SG_DATA_SYNTH_H
#define SG_DATA_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#define SG_SYNTH_VERSION     1
#define SG_SYNTH_NSHAPES     6
#define SG_SYNTH_NCOLOURS    8
#define SG_SYNTH_NSIZES      2
#define SG_SYNTH_NPOS        5
#define SG_SYNTH_NBG         6
#define SG_SYNTH_NCLASSES    (SG_SYNTH_NSHAPES * SG_SYNTH_NCOLOURS)
#define SG_SYNTH_CAPTION_MAX 256 /* bytes per caption, NUL included */

enum sg_synth_shape {
    SG_SHAPE_CIRCLE,
    SG_SHAPE_SQUARE,
    SG_SHAPE_TRIANGLE,
    SG_SHAPE_STAR,
    SG_SHAPE_CROSS,
    SG_SHAPE_RING
};
enum sg_synth_colour {
    SG_COL_RED,
    SG_COL_GREEN,
    SG_COL_BLUE,
    SG_COL_YELLOW,
    SG_COL_PURPLE,
    SG_COL_ORANGE,
    SG_COL_WHITE,
    SG_COL_BLACK
};
enum sg_synth_size { SG_SIZE_SMALL, SG_SIZE_LARGE };
enum sg_synth_pos { SG_POS_LEFT, SG_POS_RIGHT, SG_POS_TOP, SG_POS_BOTTOM, SG_POS_CENTER };
enum sg_synth_split { SG_SYNTH_TRAIN, SG_SYNTH_VAL };

struct sg_synth_object {
    int shape, colour, size, pos; /* enum values above */
    float cx, cy;                 /* centre, fraction of width / height (y down) */
    float r;                      /* radius, fraction of min(width, height) */
    float rot;                    /* rotation, radians */
    uint8_t rgb[3];               /* fill: the nominal colour with per-image jitter */
};

struct sg_synth_desc {
    uint64_t seed;
    int split;
    int64_t index;
    int nobj; /* 1 or 2 */
    struct sg_synth_object obj[2];
    int bg;            /* background colour index (sg_synth_bg_name) */
    uint8_t bg_rgb[3]; /* background base colour (nominal + jitter) */
    float grad[2];     /* gradient added across the image: grad[0]*(x-0.5) + grad[1]*(y-0.5) */
    int noise;         /* per-pixel noise amplitude (uniform integer in [-noise, noise]) */
    uint64_t noise_seed, caption_seed;
    int label; /* zero-shot class (sg_synth_class) when nobj == 1, else -1 */
};

/* Names (canonical words; captions also use synonyms). */
const char *sg_synth_shape_name(int shape);
const char *sg_synth_colour_name(int colour);
const char *sg_synth_size_name(int size);
const char *sg_synth_pos_name(int pos);
const char *sg_synth_bg_name(int bg);
/* Nominal RGB of an object colour / a background colour (3 bytes). */
const uint8_t *sg_synth_colour_rgb(int colour);
const uint8_t *sg_synth_bg_rgb(int bg);

/* Zero-shot class of (colour, shape): its position among the folder names "<colour>_<shape>"
 * in strcmp order (the order of classnames.txt and of ImageFolder labels). */
int sg_synth_class(int colour, int shape);
/* Inverse of sg_synth_class. */
void sg_synth_class_attrs(int cls, int *colour, int *shape);
/* "<colour><sep><shape>", e.g. sep '_' for the folder, ' ' for the class name. */
void sg_synth_class_name(int cls, char sep, char *buf, size_t n);

/* The description of image `index` of `split`; depends only on the three arguments. */
void sg_synth_sample(uint64_t seed, int split, int64_t index, struct sg_synth_desc *d);
/* Render d at w x h into px (h, w, 3) RGB. */
void sg_synth_render(const struct sg_synth_desc *d, int w, int h, uint8_t *px);
/* Write n distinct captions (n <= 8) of d into out[0..n). Every caption names the colour and
 * the shape of every object (canonical word or synonym); size, position and background are
 * mentioned by some templates only. */
void sg_synth_captions(const struct sg_synth_desc *d, int n, char (*out)[SG_SYNTH_CAPTION_MAX]);

struct sg_synth_opts {
    const char *dir;
    int size;       /* image side in pixels (default 64; 16..1024) */
    int64_t ntrain; /* default 8000 */
    int64_t nval;   /* default 1000 */
    uint64_t seed;  /* default 0 */
    int ncaptions;  /* captions per image, 1..8 (default 2) */
    int quality;    /* JPEG quality (default 90) */
    int force;      /* regenerate even when DIR/.complete matches */
    int verbose;    /* progress on stderr */
};
struct sg_synth_stats {
    int skipped;                    /* 1: DIR/.complete matched, nothing done */
    int64_t written, kept, removed; /* image files */
    int64_t train_captions, val_captions, zeroshot_images;
    int zeroshot_classes; /* class folders (classes with a single-object val image) */
    double seconds;
};
/* Defaults for every field (dir NULL). */
void sg_synth_opts_default(struct sg_synth_opts *o);
/* Generate (or verify / resume) the dataset in o->dir. Returns 0, or -1 with sg_err. DIR may
 * not exist yet; an existing non-empty DIR must be a synth dataset (holds .synth). */
int sg_synth_generate(const struct sg_synth_opts *o, struct sg_synth_stats *st);

#endif
