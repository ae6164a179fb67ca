/*
 * data/synth.c — the synthetic captioned shapes dataset (contract: data/synth.h). Our own
 * design: splitmix64 streams keyed by (seed, split, index), 4x4 supersampled point-in-shape
 * rendering, captions from a small template grammar with synonyms, JPEG through
 * sg_encode_jpeg (data/image.h). Compiled with -ffp-contract=off (cmake/synth.cmake) so the
 * float geometry, hence every pixel, is the same under any x86-64 build.
 */
#define _GNU_SOURCE /* syncfs */
#include "data/synth.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "data/image.h"

/* ---- tables ------------------------------------------------------------------------------ */

static const char *const shape_names[SG_SYNTH_NSHAPES] = {"circle", "square", "triangle",
                                                          "star",   "cross",  "ring"};
static const char *const colour_names[SG_SYNTH_NCOLOURS] = {"red",    "green",  "blue",  "yellow",
                                                            "purple", "orange", "white", "black"};
static const char *const size_names[SG_SYNTH_NSIZES] = {"small", "large"};
static const char *const pos_names[SG_SYNTH_NPOS] = {"left", "right", "top", "bottom", "center"};
static const char *const bg_names[SG_SYNTH_NBG] = {"light gray", "dark gray", "beige",
                                                   "navy",       "brown",     "teal"};

static const uint8_t colour_rgb[SG_SYNTH_NCOLOURS][3] = {
    {220, 35, 35},  {40, 170, 60},  {35, 75, 225},   {240, 220, 40},
    {140, 55, 190}, {250, 140, 25}, {245, 245, 245}, {20, 20, 20}};
static const uint8_t bg_rgb[SG_SYNTH_NBG][3] = {{195, 195, 195}, {75, 75, 75},  {220, 205, 170},
                                                {30, 40, 85},    {115, 80, 50}, {35, 115, 115}};

/* Synonyms used in captions (NULL-terminated; the first is the canonical name). */
static const char *const shape_words[SG_SYNTH_NSHAPES][3] = {
    {"circle", "disk", NULL},     {"square", NULL},       {"triangle", NULL}, {"star", NULL},
    {"cross", "plus sign", NULL}, {"ring", "donut", NULL}};
static const char *const colour_words[SG_SYNTH_NCOLOURS][3] = {
    {"red", NULL},    {"green", NULL}, {"blue", NULL}, {"yellow", NULL}, {"purple", "violet", NULL},
    {"orange", NULL}, {"white", NULL}, {"black", NULL}};
static const char *const size_words[SG_SYNTH_NSIZES][4] = {{"small", "little", "tiny", NULL},
                                                           {"large", "big", NULL}};
static const char *const pos_long[SG_SYNTH_NPOS][4] = {
    {"on the left", "on the left side", "to the left", NULL},
    {"on the right", "on the right side", "to the right", NULL},
    {"at the top", "near the top", "in the upper half", NULL},
    {"at the bottom", "near the bottom", "in the lower half", NULL},
    {"in the center", "in the middle", "at the center", NULL}};
static const char *const pos_short[SG_SYNTH_NPOS][3] = {{"left side", "left", NULL},
                                                        {"right side", "right", NULL},
                                                        {"top", "upper half", NULL},
                                                        {"bottom", "lower half", NULL},
                                                        {"center", "middle", NULL}};
/* Object centres per position (fractions of the image, y down). */
static const float pos_xy[SG_SYNTH_NPOS][2] = {
    {0.27f, 0.5f}, {0.73f, 0.5f}, {0.5f, 0.27f}, {0.5f, 0.73f}, {0.5f, 0.5f}};

static const char *const zeroshot_templates[] = {"a photo of a {}.", "a {}.", "a picture of a {}.",
                                                 "there is a {} in the image.",
                                                 "a {} on a plain background."};

const char *sg_synth_shape_name(int s)
{
    return shape_names[s];
}
const char *sg_synth_colour_name(int c)
{
    return colour_names[c];
}
const char *sg_synth_size_name(int s)
{
    return size_names[s];
}
const char *sg_synth_pos_name(int p)
{
    return pos_names[p];
}
const char *sg_synth_bg_name(int b)
{
    return bg_names[b];
}
const uint8_t *sg_synth_colour_rgb(int c)
{
    return colour_rgb[c];
}
const uint8_t *sg_synth_bg_rgb(int b)
{
    return bg_rgb[b];
}

/* Rank of names[i] in strcmp order. */
static int name_rank(const char *const *names, int n, int i)
{
    int r = 0;
    for (int k = 0; k < n; k++) r += strcmp(names[k], names[i]) < 0;
    return r;
}

/* No colour (shape) name is a prefix of another, so "<colour>_<shape>" sorts by colour name,
 * then by shape name. */
int sg_synth_class(int colour, int shape)
{
    return name_rank(colour_names, SG_SYNTH_NCOLOURS, colour) * SG_SYNTH_NSHAPES +
           name_rank(shape_names, SG_SYNTH_NSHAPES, shape);
}

void sg_synth_class_attrs(int cls, int *colour, int *shape)
{
    SG_CHECK(cls >= 0 && cls < SG_SYNTH_NCLASSES, "class %d", cls);
    for (int c = 0; c < SG_SYNTH_NCOLOURS; c++)
        for (int s = 0; s < SG_SYNTH_NSHAPES; s++)
            if (sg_synth_class(c, s) == cls) {
                *colour = c;
                *shape = s;
                return;
            }
    SG_PANIC("unreachable");
}

void sg_synth_class_name(int cls, char sep, char *buf, size_t n)
{
    int c, s;
    sg_synth_class_attrs(cls, &c, &s);
    snprintf(buf, n, "%s%c%s", colour_names[c], sep, shape_names[s]);
}

/* ---- random streams (splitmix64) ------------------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

struct srng {
    uint64_t s;
};

static uint64_t srng_next(struct srng *r)
{
    r->s += 0x9E3779B97F4A7C15ull;
    return mix64(r->s);
}

static float srng_unif(struct srng *r, float lo, float hi) /* [lo, hi), 24 bits */
{
    return lo + (hi - lo) * ((float)(srng_next(r) >> 40) * (1.0f / 16777216.0f));
}

static int srng_int(struct srng *r, int n) /* [0, n) */
{
    return (int)(((srng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static const char *pick(struct srng *r, const char *const *words)
{
    int n = 0;
    while (words[n]) n++;
    return words[srng_int(r, n)];
}

/* ---- sampling ---------------------------------------------------------------------------- */

/* Extent of a shape (bounding radius) in units of its radius r: triangle circumradius 1.15,
 * star 1.1, square corner 0.82*sqrt(2), cross corner |(1, 0.32)| (geom_inside). */
static float shape_extent(int shape)
{
    switch (shape) {
    case SG_SHAPE_TRIANGLE:
        return 1.15f;
    case SG_SHAPE_STAR:
        return 1.1f;
    case SG_SHAPE_SQUARE:
        return 1.16f;
    case SG_SHAPE_CROSS:
        return 1.05f;
    default:
        return 1.0f;
    }
}

static int rgb_dist2(const uint8_t *a, const uint8_t *b)
{
    int d = 0;
    for (int c = 0; c < 3; c++) d += ((int)a[c] - b[c]) * ((int)a[c] - b[c]);
    return d;
}

static void place_object(struct srng *r, struct sg_synth_object *o)
{
    o->cx = pos_xy[o->pos][0] + srng_unif(r, -0.04f, 0.04f);
    o->cy = pos_xy[o->pos][1] + srng_unif(r, -0.04f, 0.04f);
    o->r = o->size == SG_SIZE_LARGE ? srng_unif(r, 0.18f, 0.22f) : srng_unif(r, 0.10f, 0.13f);
    float maxrot = (o->shape == SG_SHAPE_CIRCLE || o->shape == SG_SHAPE_RING)     ? 0.0f
                   : (o->shape == SG_SHAPE_TRIANGLE || o->shape == SG_SHAPE_STAR) ? 0.25f
                                                                                  : 0.2f;
    o->rot = srng_unif(r, -maxrot, maxrot);
    for (int c = 0; c < 3; c++) {
        int v = colour_rgb[o->colour][c] + srng_int(r, 25) - 12;
        o->rgb[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

static int objects_overlap(const struct sg_synth_object *a, const struct sg_synth_object *b)
{
    float dx = a->cx - b->cx, dy = a->cy - b->cy;
    float need = a->r * shape_extent(a->shape) + b->r * shape_extent(b->shape) + 0.02f;
    return dx * dx + dy * dy < need * need;
}

/* Second object: another colour and position, not overlapping the first. 0 when none fits. */
static int sample_second(struct srng *r, struct sg_synth_desc *d)
{
    struct sg_synth_object *a = &d->obj[0], *b = &d->obj[1];
    for (int attempt = 0; attempt < 64; attempt++) {
        b->colour = (a->colour + 1 + srng_int(r, SG_SYNTH_NCOLOURS - 1)) % SG_SYNTH_NCOLOURS;
        b->shape = srng_int(r, SG_SYNTH_NSHAPES);
        b->size = srng_int(r, SG_SYNTH_NSIZES);
        b->pos = (a->pos + 1 + srng_int(r, SG_SYNTH_NPOS - 1)) % SG_SYNTH_NPOS;
        place_object(r, b);
        if (!objects_overlap(a, b)) return 1;
    }
    return 0;
}

/* Background: a palette colour far (RGB distance >= 100) from every object's nominal colour. */
static void sample_background(struct srng *r, struct sg_synth_desc *d)
{
    int ok[SG_SYNTH_NBG], nok = 0;
    for (int b = 0; b < SG_SYNTH_NBG; b++) {
        int far = 1;
        for (int k = 0; k < d->nobj; k++)
            far &= rgb_dist2(bg_rgb[b], colour_rgb[d->obj[k].colour]) >= 100 * 100;
        if (far) ok[nok++] = b;
    }
    SG_CHECK(nok > 0, "no background fits colours %d/%d", d->obj[0].colour, d->obj[1].colour);
    d->bg = ok[srng_int(r, nok)];
    for (int c = 0; c < 3; c++) {
        int v = bg_rgb[d->bg][c] + srng_int(r, 21) - 10;
        d->bg_rgb[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    int texture = srng_int(r, 3); /* 0 plain, 1 gradient, 2 gradient + noise */
    d->grad[0] = texture ? srng_unif(r, -20.0f, 20.0f) : 0.0f;
    d->grad[1] = texture ? srng_unif(r, -20.0f, 20.0f) : 0.0f;
    d->noise = texture == 2 ? 8 : texture == 1 ? 4 : 2;
}

void sg_synth_sample(uint64_t seed, int split, int64_t index, struct sg_synth_desc *d)
{
    memset(d, 0, sizeof(*d));
    d->seed = seed;
    d->split = split;
    d->index = index;
    struct srng r = {mix64(mix64(mix64(seed) + (uint64_t)split) + (uint64_t)index)};
    struct sg_synth_object *a = &d->obj[0];
    if (split == SG_SYNTH_VAL) { /* balanced classes for the zero-shot split */
        int cls = (int)(index % SG_SYNTH_NCLASSES);
        a->colour = cls / SG_SYNTH_NSHAPES;
        a->shape = cls % SG_SYNTH_NSHAPES;
    } else {
        a->colour = srng_int(&r, SG_SYNTH_NCOLOURS);
        a->shape = srng_int(&r, SG_SYNTH_NSHAPES);
    }
    a->size = srng_int(&r, SG_SYNTH_NSIZES);
    a->pos = srng_int(&r, SG_SYNTH_NPOS);
    place_object(&r, a);
    d->nobj = 1;
    /* 30% two objects: at random in train; in val, rounds 2, 5 and 8 of every 10 rounds through
     * the classes, so that every class has the same number of single-object images. */
    float u = srng_unif(&r, 0.0f, 1.0f);
    int round10 = (int)((index / SG_SYNTH_NCLASSES) % 10);
    int two = split == SG_SYNTH_VAL ? round10 % 3 == 2 : u < 0.3f;
    if (two && sample_second(&r, d)) d->nobj = 2;
    if (d->nobj == 1) memset(&d->obj[1], 0, sizeof(d->obj[1]));
    sample_background(&r, d);
    d->noise_seed = srng_next(&r);
    d->caption_seed = srng_next(&r);
    d->label = d->nobj == 1 ? sg_synth_class(a->colour, a->shape) : -1;
}

/* ---- rendering --------------------------------------------------------------------------- */

#define SS 4 /* supersampling: SS x SS points per pixel */

struct geom {
    int shape;
    float cx, cy, rad; /* pixels */
    float cs, sn;      /* rotation */
    int npoly;
    float poly[10][2]; /* triangle / star vertices, local units (y down) */
};

static void geom_init(struct geom *g, const struct sg_synth_object *o, int w, int h)
{
    g->shape = o->shape;
    g->cx = o->cx * (float)w;
    g->cy = o->cy * (float)h;
    g->rad = o->r * (float)(w < h ? w : h);
    g->cs = cosf(o->rot);
    g->sn = sinf(o->rot);
    g->npoly = 0;
    const float pi = 3.14159265358979f;
    if (o->shape == SG_SHAPE_TRIANGLE) {
        g->npoly = 3;
        for (int k = 0; k < 3; k++) {
            float ang = -0.5f * pi + (float)k * (2.0f * pi / 3.0f);
            g->poly[k][0] = 1.15f * cosf(ang);
            g->poly[k][1] = 1.15f * sinf(ang);
        }
    } else if (o->shape == SG_SHAPE_STAR) {
        g->npoly = 10;
        for (int k = 0; k < 10; k++) {
            float ang = -0.5f * pi + (float)k * (pi / 5.0f);
            float rr = (k % 2 == 0) ? 1.1f : 0.46f;
            g->poly[k][0] = rr * cosf(ang);
            g->poly[k][1] = rr * sinf(ang);
        }
    }
}

/* Even-odd crossing test. */
static int in_polygon(const float (*p)[2], int n, float u, float v)
{
    int c = 0;
    for (int i = 0, j = n - 1; i < n; j = i++) {
        if ((p[i][1] > v) != (p[j][1] > v) &&
            u < (p[j][0] - p[i][0]) * (v - p[i][1]) / (p[j][1] - p[i][1]) + p[i][0])
            c = !c;
    }
    return c;
}

/* Is the point (x, y) in pixel coordinates inside the shape? */
static int geom_inside(const struct geom *g, float x, float y)
{
    float dx = x - g->cx, dy = y - g->cy;
    float u = (g->cs * dx + g->sn * dy) / g->rad; /* rotate by -rot, scale to units */
    float v = (-g->sn * dx + g->cs * dy) / g->rad;
    float au = fabsf(u), av = fabsf(v), r2 = u * u + v * v;
    switch (g->shape) {
    case SG_SHAPE_CIRCLE:
        return r2 <= 1.0f;
    case SG_SHAPE_RING:
        return r2 <= 1.0f && r2 >= 0.55f * 0.55f;
    case SG_SHAPE_SQUARE:
        return au <= 0.82f && av <= 0.82f;
    case SG_SHAPE_CROSS:
        return (au <= 0.32f && av <= 1.0f) || (av <= 0.32f && au <= 1.0f);
    default:
        return in_polygon((const float(*)[2])g->poly, g->npoly, u, v);
    }
}

static uint8_t clamp_u8(float v)
{
    return (uint8_t)(v <= 0.0f ? 0 : v >= 255.0f ? 255 : (int)(v + 0.5f));
}

static void render_background(const struct sg_synth_desc *d, int w, int h, uint8_t *px)
{
    for (int y = 0; y < h; y++) {
        float fy = ((float)y + 0.5f) / (float)h - 0.5f;
        for (int x = 0; x < w; x++) {
            float fx = ((float)x + 0.5f) / (float)w - 0.5f;
            uint64_t hsh = mix64(d->noise_seed + (uint64_t)y * (uint64_t)w + (uint64_t)x);
            int nz = (int)(hsh % (uint64_t)(2 * d->noise + 1)) - d->noise;
            float t = d->grad[0] * fx + d->grad[1] * fy + (float)nz;
            uint8_t *p = px + ((size_t)y * (size_t)w + (size_t)x) * 3;
            for (int c = 0; c < 3; c++) p[c] = clamp_u8((float)d->bg_rgb[c] + t);
        }
    }
}

static void render_object(const struct sg_synth_object *o, int w, int h, uint8_t *px)
{
    struct geom g;
    geom_init(&g, o, w, h);
    float ext = 1.2f * g.rad * shape_extent(o->shape);
    int x0 = SG_MAX(0, (int)floorf(g.cx - ext)), x1 = SG_MIN(w, (int)ceilf(g.cx + ext) + 1);
    int y0 = SG_MAX(0, (int)floorf(g.cy - ext)), y1 = SG_MIN(h, (int)ceilf(g.cy + ext) + 1);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            int cnt = 0;
            for (int sy = 0; sy < SS; sy++)
                for (int sx = 0; sx < SS; sx++)
                    cnt += geom_inside(&g, (float)x + ((float)sx + 0.5f) / SS,
                                       (float)y + ((float)sy + 0.5f) / SS);
            if (cnt == 0) continue;
            float a = (float)cnt / (SS * SS);
            uint8_t *p = px + ((size_t)y * (size_t)w + (size_t)x) * 3;
            for (int c = 0; c < 3; c++)
                p[c] = clamp_u8((float)p[c] * (1.0f - a) + (float)o->rgb[c] * a);
        }
}

void sg_synth_render(const struct sg_synth_desc *d, int w, int h, uint8_t *px)
{
    render_background(d, w, h, px);
    for (int k = 0; k < d->nobj; k++) render_object(&d->obj[k], w, h, px);
}

/* ---- captions ---------------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t cap, len;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    if (b->len >= b->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (k > 0) b->len = SG_MIN(b->cap - 1, b->len + (size_t)k);
}

static const char *article(const char *word)
{
    return strchr("aeiou", word[0]) ? "an" : "a";
}

/* Noun phrase without article: "[size ]colour shape". */
static void noun_phrase(struct srng *r, const struct sg_synth_object *o, char *buf, size_t n)
{
    const char *col = pick(r, colour_words[o->colour]);
    const char *shp = pick(r, shape_words[o->shape]);
    if (srng_unif(r, 0.0f, 1.0f) < 0.7f)
        snprintf(buf, n, "%s %s %s", pick(r, size_words[o->size]), col, shp);
    else
        snprintf(buf, n, "%s %s", col, shp);
}

static void caption_single(struct srng *r, const struct sg_synth_desc *d, struct sbuf *b)
{
    char np[64];
    noun_phrase(r, &d->obj[0], np, sizeof np);
    const char *a = article(np);
    const char *pp = pick(r, pos_long[d->obj[0].pos]), *sp = pick(r, pos_short[d->obj[0].pos]);
    const char *bg = bg_names[d->bg];
    switch (srng_int(r, 10)) {
    case 0:
        sb_add(b, "%s %s %s", a, np, pp);
        break;
    case 1:
        sb_add(b, "a photo of %s %s %s.", a, np, pp);
        break;
    case 2:
        sb_add(b, "there is %s %s %s", a, np, pp);
        break;
    case 3:
        sb_add(b, "%s, %s", np, sp);
        break;
    case 4:
        sb_add(b, "%s %s %s, %s background", a, np, pp, bg);
        break;
    case 5:
        sb_add(b, "a photo of %s %s.", a, np);
        break;
    case 6:
        sb_add(b, "%s %s on %s %s background", a, np, article(bg), bg);
        break;
    case 7:
        sb_add(b, "an image with %s %s %s", a, np, pp);
        break;
    case 8:
        sb_add(b, "%c%s, there is %s %s.", pp[0] - 'a' + 'A', pp + 1, a, np);
        break;
    default:
        sb_add(b, "%s %s", a, np);
        break;
    }
}

/* Two objects: a conjunction of two phrases, in either order. */
static void caption_pair(struct srng *r, const struct sg_synth_desc *d, struct sbuf *b)
{
    char n1[64], n2[64];
    int first = srng_int(r, 2);
    const struct sg_synth_object *o1 = &d->obj[first], *o2 = &d->obj[1 - first];
    noun_phrase(r, o1, n1, sizeof n1);
    noun_phrase(r, o2, n2, sizeof n2);
    const char *a1 = article(n1), *a2 = article(n2);
    const char *p1 = pick(r, pos_long[o1->pos]), *p2 = pick(r, pos_long[o2->pos]);
    const char *s1 = pick(r, pos_short[o1->pos]), *s2 = pick(r, pos_short[o2->pos]);
    switch (srng_int(r, 6)) {
    case 0:
        sb_add(b, "%s %s %s and %s %s %s", a1, n1, p1, a2, n2, p2);
        break;
    case 1:
        sb_add(b, "a photo of %s %s and %s %s.", a1, n1, a2, n2);
        break;
    case 2:
        sb_add(b, "there is %s %s %s and %s %s %s", a1, n1, p1, a2, n2, p2);
        break;
    case 3:
        sb_add(b, "%s, %s; %s, %s", n1, s1, n2, s2);
        break;
    case 4:
        sb_add(b, "two shapes: %s %s and %s %s", a1, n1, a2, n2);
        break;
    default:
        sb_add(b, "%s %s %s and %s %s", a1, n1, p1, a2, n2);
        break;
    }
}

void sg_synth_captions(const struct sg_synth_desc *d, int n, char (*out)[SG_SYNTH_CAPTION_MAX])
{
    SG_CHECK(n >= 1 && n <= 8, "n = %d", n);
    for (int k = 0; k < n; k++) {
        for (int attempt = 0; attempt < 32; attempt++) {
            struct srng r = {mix64(d->caption_seed + (uint64_t)(k * 32 + attempt))};
            struct sbuf b = {out[k], SG_SYNTH_CAPTION_MAX, 0};
            out[k][0] = 0;
            if (d->nobj == 2)
                caption_pair(&r, d, &b);
            else
                caption_single(&r, d, &b);
            int dup = 0;
            for (int j = 0; j < k; j++) dup |= strcmp(out[j], out[k]) == 0;
            if (!dup) break;
        }
    }
}

/* ---- files ------------------------------------------------------------------------------- */

struct gbuf { /* growable byte buffer */
    char *p;
    size_t len, cap;
};

static void gb_add(struct gbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = SG_MAX(b->cap * 2, b->len + n + 4096);
        b->p = sg_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void gb_printf(struct gbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gb_printf(struct gbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    gb_add(b, tmp);
}

static int join_path(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int join_path(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= n) return sg_err("path too long: '%s...'", out);
    return 0;
}

/* 1 when the file at path holds exactly data[0..len). */
static int same_content(const char *path, const void *data, size_t len)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size != len) return 0;
    char *old = NULL;
    size_t olen = 0;
    if (sg_read_file(path, &old, &olen) != 0) {
        sg_clear_error();
        return 0;
    }
    int same = olen == len && memcmp(old, data, len) == 0;
    free(old);
    return same;
}

/* Write path (via path.tmp + rename, no fsync: the run ends with syncfs) unless it already
 * holds these bytes. *written or *kept is incremented. */
static int write_if_changed(const char *path, const void *data, size_t len, int64_t *written,
                            int64_t *kept)
{
    if (same_content(path, data, len)) {
        (*kept)++;
        return 0;
    }
    char tmp[4096 + 8];
    if (join_path(tmp, sizeof tmp, "%s.tmp", path) != 0) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return sg_err("cannot create '%s': %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t k = write(fd, p, left);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return sg_err("writing '%s': %s\n---> HINT: is the disk full?", tmp, strerror(e));
        }
        p += k;
        left -= (size_t)k;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return sg_err("writing '%s': %s", path, strerror(e));
    }
    (*written)++;
    return 0;
}

/* Text file: atomic with fsync, skipped when unchanged. */
static int write_text(const char *dir, const char *name, const struct gbuf *b)
{
    char path[4096];
    if (join_path(path, sizeof path, "%s/%s", dir, name) != 0) return -1;
    if (same_content(path, b->p, b->len)) return 0;
    return sg_write_file_atomic(path, b->p, b->len);
}

/* "123456.jpg" or "123456.jpg.tmp" -> 1 and *index; other names -> 0. */
static int image_name(const char *name, int64_t *index, int *tmp)
{
    size_t nd = strspn(name, "0123456789");
    if (nd == 0 || nd > 15) return 0;
    *tmp = strcmp(name + nd, ".jpg.tmp") == 0;
    if (!*tmp && strcmp(name + nd, ".jpg") != 0) return 0;
    *index = strtoll(name, NULL, 10);
    char canon[32];
    snprintf(canon, sizeof canon, "%06lld", (long long)*index);
    return strlen(canon) == nd && strncmp(canon, name, nd) == 0;
}

/* Remove our image files in dir that are not expected: names that are not canonical, temp
 * files, index >= n, or (labels != NULL) labels[index] != cls. Other files are left alone. */
static int prune_images(const char *dir, int64_t n, const int *labels, int cls, int64_t *removed)
{
    DIR *dp = opendir(dir);
    if (!dp) return sg_err("cannot list '%s': %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(dp)) != NULL) {
        size_t nd = strspn(e->d_name, "0123456789");
        if (nd == 0 || strncmp(e->d_name + nd, ".jpg", 4) != 0) continue;
        int64_t idx = -1;
        int tmp = 0;
        int keep =
            image_name(e->d_name, &idx, &tmp) && !tmp && idx < n && (!labels || labels[idx] == cls);
        if (keep) continue;
        char path[4096];
        if (join_path(path, sizeof path, "%s/%s", dir, e->d_name) != 0)
            rc = -1;
        else if (unlink(path) != 0)
            rc = sg_err("cannot remove stale '%s': %s", path, strerror(errno));
        else
            (*removed)++;
    }
    closedir(dp);
    return rc;
}

/* ---- generation -------------------------------------------------------------------------- */

void sg_synth_opts_default(struct sg_synth_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->size = 64;
    o->ntrain = 8000;
    o->nval = 1000;
    o->seed = 0;
    o->ncaptions = 2;
    o->quality = 90;
}

/* FNV-1a of the renders and captions of a few images: any change of the generator's output
 * (not only a version bump) invalidates an existing .complete. */
static uint64_t generator_fingerprint(const struct sg_synth_opts *o)
{
    uint64_t h = 0xCBF29CE484222325ull;
    uint8_t px[32 * 32 * 3];
    char caps[8][SG_SYNTH_CAPTION_MAX];
    for (int k = 0; k < 16; k++) {
        struct sg_synth_desc d;
        sg_synth_sample(o->seed, k % 2, k / 2, &d);
        sg_synth_render(&d, 32, 32, px);
        sg_synth_captions(&d, o->ncaptions, caps);
        for (size_t i = 0; i < sizeof px; i++) h = (h ^ px[i]) * 0x100000001B3ull;
        for (int c = 0; c < o->ncaptions; c++)
            for (const char *p = caps[c]; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001B3ull;
    }
    return h;
}

static void options_text(const struct sg_synth_opts *o, struct gbuf *b)
{
    gb_printf(b,
              "sogclip synth v%d\nsize %d\ntrain %lld\nval %lld\nseed %llu\ncaptions %d\n"
              "quality %d\nfingerprint %016llx\n",
              SG_SYNTH_VERSION, o->size, (long long)o->ntrain, (long long)o->nval,
              (unsigned long long)o->seed, o->ncaptions, o->quality,
              (unsigned long long)generator_fingerprint(o));
}

static int check_opts(const struct sg_synth_opts *o)
{
    if (!o->dir || !o->dir[0]) return sg_err("synth: no output folder given");
    if (o->size < 16 || o->size > 1024)
        return sg_err("synth: image size %d outside 16..1024", o->size);
    if (o->ntrain < 1 || o->ntrain > 100000000 || o->nval < 0 || o->nval > 100000000)
        return sg_err("synth: counts train=%lld val=%lld: need 1..1e8 train, 0..1e8 val",
                      (long long)o->ntrain, (long long)o->nval);
    if (o->ncaptions < 1 || o->ncaptions > 8)
        return sg_err("synth: %d captions per image: allowed 1..8", o->ncaptions);
    if (o->quality < 1 || o->quality > 100)
        return sg_err("synth: JPEG quality %d outside 1..100", o->quality);
    return 0;
}

/* The folder must be new, empty, or a synth dataset (.synth marker). */
static int prepare_dir(const char *dir)
{
    if (sg_mkdir_p(dir) != 0) return -1;
    char marker[4096];
    if (join_path(marker, sizeof marker, "%s/.synth", dir) != 0) return -1;
    struct stat st;
    if (stat(marker, &st) == 0) return 0;
    DIR *dp = opendir(dir);
    if (!dp) return sg_err("cannot list '%s': %s", dir, strerror(errno));
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(dp)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = 0;
    closedir(dp);
    if (!empty)
        return sg_err("'%s' is not empty and is not a synth dataset (no .synth file)\n---> HINT: "
                      "choose a new or empty output folder",
                      dir);
    const char *text = "sogclip data synth output folder\n";
    return sg_write_file_atomic(marker, text, strlen(text));
}

struct gen {
    const struct sg_synth_opts *o;
    struct sg_synth_stats *st;
    struct sg_decoder *dec;
    struct sg_image img;
    int *val_labels; /* (nval) zero-shot class or -1 */
    int64_t zs_count[SG_SYNTH_NCLASSES];
    struct gbuf tsv[2], captions;
};

static int gen_image(struct gen *g, int split, int64_t i)
{
    const struct sg_synth_opts *o = g->o;
    const char *sname = split == SG_SYNTH_TRAIN ? "train" : "val";
    struct sg_synth_desc d;
    sg_synth_sample(o->seed, split, i, &d);
    sg_synth_render(&d, o->size, o->size, g->img.px);
    uint8_t *jpg = NULL;
    size_t jlen = 0;
    if (sg_encode_jpeg(g->dec, &g->img, o->quality, &jpg, &jlen) != 0) return -1;
    char rel[64], path[4096];
    snprintf(rel, sizeof rel, "images/%s/%06lld.jpg", sname, (long long)i);
    int rc = join_path(path, sizeof path, "%s/%s", o->dir, rel);
    if (rc == 0) rc = write_if_changed(path, jpg, jlen, &g->st->written, &g->st->kept);
    if (rc == 0 && split == SG_SYNTH_VAL) {
        if (d.label >= 0) {
            char cls[64];
            sg_synth_class_name(d.label, '_', cls, sizeof cls);
            rc = join_path(path, sizeof path, "%s/zeroshot/val/%s/%06lld.jpg", o->dir, cls,
                           (long long)i);
            if (rc == 0) rc = write_if_changed(path, jpg, jlen, &g->st->written, &g->st->kept);
        }
    }
    free(jpg);
    char caps[8][SG_SYNTH_CAPTION_MAX];
    sg_synth_captions(&d, o->ncaptions, caps);
    for (int k = 0; k < o->ncaptions; k++) {
        gb_printf(&g->tsv[split], "%s\t%s\n", rel, caps[k]);
        if (split == SG_SYNTH_TRAIN) gb_printf(&g->captions, "%s\n", caps[k]);
    }
    if (split == SG_SYNTH_TRAIN)
        g->st->train_captions += o->ncaptions;
    else
        g->st->val_captions += o->ncaptions;
    return rc;
}

static int gen_split(struct gen *g, int split)
{
    int64_t n = split == SG_SYNTH_TRAIN ? g->o->ntrain : g->o->nval;
    gb_add(&g->tsv[split], "image\tcaption\n");
    for (int64_t i = 0; i < n; i++) {
        if (gen_image(g, split, i) != 0) return -1;
        if (g->o->verbose && ((i + 1) % 1000 == 0 || i + 1 == n))
            fprintf(stderr, "\rsynth: %s %lld/%lld", split ? "val" : "train", (long long)(i + 1),
                    (long long)n);
    }
    if (g->o->verbose && n > 0) fprintf(stderr, "\n");
    return 0;
}

static int make_folders(const struct sg_synth_opts *o, const int64_t *zs_count)
{
    char path[4096];
    const char *sub[] = {"images/train", "images/val", "zeroshot/val"};
    for (int k = 0; k < 3; k++)
        if (join_path(path, sizeof path, "%s/%s", o->dir, sub[k]) != 0 || sg_mkdir_p(path) != 0)
            return -1;
    for (int c = 0; c < SG_SYNTH_NCLASSES; c++) {
        char cls[64];
        sg_synth_class_name(c, '_', cls, sizeof cls);
        if (zs_count[c] == 0) continue; /* ImageFolder rejects empty class folders */
        if (join_path(path, sizeof path, "%s/zeroshot/val/%s", o->dir, cls) != 0 ||
            sg_mkdir_p(path) != 0)
            return -1;
    }
    return 0;
}

static int prune_all(struct gen *g)
{
    const struct sg_synth_opts *o = g->o;
    char path[4096];
    if (join_path(path, sizeof path, "%s/images/train", o->dir) != 0 ||
        prune_images(path, o->ntrain, NULL, 0, &g->st->removed) != 0)
        return -1;
    if (join_path(path, sizeof path, "%s/images/val", o->dir) != 0 ||
        prune_images(path, o->nval, NULL, 0, &g->st->removed) != 0)
        return -1;
    for (int c = 0; c < SG_SYNTH_NCLASSES; c++) {
        char cls[64];
        struct stat sb;
        sg_synth_class_name(c, '_', cls, sizeof cls);
        if (join_path(path, sizeof path, "%s/zeroshot/val/%s", o->dir, cls) != 0) return -1;
        if (stat(path, &sb) != 0) continue;
        if (prune_images(path, o->nval, g->val_labels, c, &g->st->removed) != 0) return -1;
        if (g->zs_count[c] == 0 && rmdir(path) != 0)
            return sg_err("cannot remove the stale class folder '%s': %s\n---> HINT: this val "
                          "split has no image of the class; delete the folder",
                          path, strerror(errno));
    }
    return 0;
}

static void readme_text(const struct gen *g, struct gbuf *b)
{
    const struct sg_synth_opts *o = g->o;
    int64_t zmin = INT64_MAX, zmax = 0;
    int ncls = 0;
    for (int c = 0; c < SG_SYNTH_NCLASSES; c++) {
        if (g->zs_count[c] == 0) continue;
        ncls++;
        zmin = SG_MIN(zmin, g->zs_count[c]);
        zmax = SG_MAX(zmax, g->zs_count[c]);
    }
    gb_printf(b,
              "sogclip synthetic shapes dataset (generator version %d, seed %llu)\n"
              "Made by: sogclip data synth DIR --size %d --train %lld --val %lld --seed %llu "
              "--captions %d --quality %d\n\n",
              SG_SYNTH_VERSION, (unsigned long long)o->seed, o->size, (long long)o->ntrain,
              (long long)o->nval, (unsigned long long)o->seed, o->ncaptions, o->quality);
    gb_printf(b,
              "%dx%d RGB JPEGs (quality %d) of one or two (30%%) anti-aliased filled shapes "
              "on a plain or lightly textured background.\n",
              o->size, o->size, o->quality);
    gb_add(b, "  shapes:      circle square triangle star cross ring\n"
              "  colours:     red green blue yellow purple orange white black\n"
              "  sizes:       small large\n"
              "  positions:   left right top bottom center\n"
              "  backgrounds: light gray, dark gray, beige, navy, brown, teal (never close to an "
              "object colour)\n"
              "Captions come from a template grammar with synonyms; every caption names the colour "
              "and shape of every object, some also size, position and background.\n\n");
    gb_printf(b, "train.tsv     %lld images, %lld captions (images/train)\n", (long long)o->ntrain,
              (long long)g->st->train_captions);
    gb_printf(b, "val.tsv       %lld images, %lld captions (images/val)\n", (long long)o->nval,
              (long long)g->st->val_captions);
    if (ncls == 0) zmin = 0;
    gb_printf(b,
              "zeroshot/val  %lld single-object val images in %d class folders "
              "<colour>_<shape> (%lld..%lld per class)\n",
              (long long)g->st->zeroshot_images, ncls, (long long)zmin, (long long)zmax);
    gb_add(b, "zeroshot/classnames.txt, zeroshot/templates.txt  class names (folder order) and "
              "prompt templates\n"
              "captions.txt  every training caption, one per line (sogclip tokenizer train "
              "--input)\n");
}

static int write_texts(struct gen *g)
{
    const char *dir = g->o->dir;
    struct gbuf b = {0};
    int rc = write_text(dir, "train.tsv", &g->tsv[0]);
    if (rc == 0) rc = write_text(dir, "val.tsv", &g->tsv[1]);
    if (rc == 0) rc = write_text(dir, "captions.txt", &g->captions);
    for (int c = 0; rc == 0 && c < SG_SYNTH_NCLASSES; c++) {
        char name[64];
        if (g->zs_count[c] == 0) continue;
        sg_synth_class_name(c, ' ', name, sizeof name);
        gb_printf(&b, "%s\n", name);
    }
    if (rc == 0) rc = write_text(dir, "zeroshot/classnames.txt", &b);
    b.len = 0;
    for (size_t k = 0; k < sizeof zeroshot_templates / sizeof zeroshot_templates[0]; k++)
        gb_printf(&b, "%s\n", zeroshot_templates[k]);
    if (rc == 0) rc = write_text(dir, "zeroshot/templates.txt", &b);
    b.len = 0;
    readme_text(g, &b);
    if (rc == 0) rc = write_text(dir, "README.txt", &b);
    free(b.p);
    return rc;
}

/* Flush everything to disk, then write .complete. */
static int finish(const struct sg_synth_opts *o, const struct gbuf *opts)
{
    int fd = open(o->dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return sg_err("cannot open '%s': %s", o->dir, strerror(errno));
    int rc = syncfs(fd);
    close(fd);
    if (rc != 0) return sg_err("syncing '%s': %s", o->dir, strerror(errno));
    return write_text(o->dir, ".complete", opts);
}

int sg_synth_generate(const struct sg_synth_opts *o, struct sg_synth_stats *st)
{
    memset(st, 0, sizeof(*st));
    double t0 = sg_time_now();
    if (check_opts(o) != 0 || prepare_dir(o->dir) != 0) return -1;
    struct gbuf want = {0};
    options_text(o, &want);
    char done[4096];
    if (join_path(done, sizeof done, "%s/.complete", o->dir) != 0) return -1;
    if (!o->force && same_content(done, want.p, want.len)) {
        free(want.p);
        st->skipped = 1;
        st->seconds = sg_time_now() - t0;
        return 0;
    }
    if (unlink(done) != 0 && errno != ENOENT) {
        free(want.p);
        return sg_err("cannot remove '%s': %s", done, strerror(errno));
    }
    struct gen g = {.o = o, .st = st};
    g.dec = sg_decoder_new();
    g.img.w = g.img.h = o->size;
    g.img.cap = (size_t)o->size * (size_t)o->size * 3;
    g.img.px = sg_xmalloc(g.img.cap);
    g.val_labels = sg_xmalloc(sizeof(int) * (size_t)(o->nval + 1));
    for (int64_t i = 0; i < o->nval; i++) { /* zero-shot classes first: folders to make */
        struct sg_synth_desc d;
        sg_synth_sample(o->seed, SG_SYNTH_VAL, i, &d);
        g.val_labels[i] = d.label;
        if (d.label >= 0) {
            st->zeroshot_classes += g.zs_count[d.label] == 0;
            g.zs_count[d.label]++;
            st->zeroshot_images++;
        }
    }
    int rc = make_folders(o, g.zs_count);
    if (rc == 0) rc = gen_split(&g, SG_SYNTH_TRAIN);
    if (rc == 0) rc = gen_split(&g, SG_SYNTH_VAL);
    if (rc == 0) rc = prune_all(&g);
    if (rc == 0) rc = write_texts(&g);
    if (rc == 0) rc = finish(o, &want);
    free(want.p);
    free(g.tsv[0].p);
    free(g.tsv[1].p);
    free(g.captions.p);
    free(g.val_labels);
    sg_image_free(&g.img);
    sg_decoder_free(g.dec);
    st->seconds = sg_time_now() - t0;
    return rc;
}
