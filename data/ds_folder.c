/*
 * data/ds_folder.c — ImageNet-style folders (FIELD.md 5.5): torchvision ImageFolder
 * (root/<class>/[sub/]*.ext, classes = sorted sub-folder names, files in sorted os.walk order per
 * class, label = class position; a class folder without images is an error, as torchvision's
 * find_classes/make_dataset), a flat folder with a labels file, or a flat folder of images
 * without labels (label -1, for self-supervised training). Contract: data/dataset.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "data/dataset.h"

#define MAX_DEPTH 32

struct folder_impl {
    char *root;
    char **rel;     /* (n) paths relative to root */
    int32_t *label; /* (n) */
};

static int has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    return strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
           strcasecmp(dot, ".png") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct names {
    char **v;
    int64_t n, cap;
};

static void names_push(struct names *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = sg_xrealloc(l->v, sizeof(char *) * (size_t)l->cap);
    }
    l->v[l->n++] = s;
}

static void names_free(struct names *l)
{
    for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static char *join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na == 0) return sg_xstrdup(b);
    char *s = sg_xmalloc(na + nb + 2);
    memcpy(s, a, na);
    s[na] = '/';
    memcpy(s + na + 1, b, nb + 1);
    return s;
}

/* Entries of dir (follows symlinks): sub-folders into dirs, image files into files; sorted. */
static int list_dir(const char *dir, struct names *dirs, struct names *files)
{
    DIR *d = opendir(dir);
    if (!d) return sg_err("cannot open folder '%s': %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *full = join(dir, e->d_name);
        struct stat st;
        int ok = stat(full, &st) == 0;
        free(full);
        if (!ok) continue; /* dangling link */
        if (S_ISDIR(st.st_mode) && dirs)
            names_push(dirs, sg_xstrdup(e->d_name));
        else if (S_ISREG(st.st_mode) && files && has_image_ext(e->d_name))
            names_push(files, sg_xstrdup(e->d_name));
    }
    closedir(d);
    if (dirs && dirs->n > 1) qsort(dirs->v, (size_t)dirs->n, sizeof(char *), cmp_str);
    if (files && files->n > 1) qsort(files->v, (size_t)files->n, sizeof(char *), cmp_str);
    return 0;
}

/* All image files under root/rel, as (dir, file) pairs ordered like sorted(os.walk(...)):
 * by directory path, then file name. Appends "rel/.../file" paths to out. */
struct walk_item {
    char *dir, *file;
};

static int cmp_walk(const void *a, const void *b)
{
    const struct walk_item *x = a, *y = b;
    int c = strcmp(x->dir, y->dir);
    return c ? c : strcmp(x->file, y->file);
}

static int walk(const char *root, const char *rel, int depth, struct walk_item **items, int64_t *n,
                int64_t *cap)
{
    if (depth > MAX_DEPTH)
        return sg_err("'%s/%s': folders nested deeper than %d (a symlink loop?)", root, rel,
                      MAX_DEPTH);
    char *dir = join(root, rel);
    struct names dirs = {0}, files = {0};
    int rc = list_dir(dir, &dirs, &files);
    free(dir);
    for (int64_t i = 0; rc == 0 && i < files.n; i++) {
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            *items = sg_xrealloc(*items, sizeof(**items) * (size_t)*cap);
        }
        (*items)[(*n)++] = (struct walk_item){sg_xstrdup(rel), files.v[i]};
        files.v[i] = NULL;
    }
    for (int64_t i = 0; rc == 0 && i < dirs.n; i++) {
        char *sub = join(rel, dirs.v[i]);
        rc = walk(root, sub, depth + 1, items, n, cap);
        free(sub);
    }
    names_free(&dirs);
    names_free(&files);
    return rc;
}

/* ---- samples ---------------------------------------------------------------------------- */

struct samples {
    char **rel;
    int32_t *label;
    int64_t n, cap;
};

static void samples_push(struct samples *s, char *rel, int32_t label)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->rel = sg_xrealloc(s->rel, sizeof(char *) * (size_t)s->cap);
        s->label = sg_xrealloc(s->label, sizeof(int32_t) * (size_t)s->cap);
    }
    s->rel[s->n] = rel;
    s->label[s->n++] = label;
}

static void samples_free(struct samples *s)
{
    for (int64_t i = 0; i < s->n; i++) free(s->rel[i]);
    free(s->rel);
    free(s->label);
}

static int image_folder(const char *root, struct names *classes, struct samples *out)
{
    for (int64_t c = 0; c < classes->n; c++) {
        struct walk_item *items = NULL;
        int64_t n = 0, cap = 0;
        int rc = walk(root, classes->v[c], 0, &items, &n, &cap);
        if (n > 1) qsort(items, (size_t)n, sizeof(*items), cmp_walk);
        for (int64_t i = 0; i < n; i++) {
            if (rc == 0) samples_push(out, join(items[i].dir, items[i].file), (int32_t)c);
            free(items[i].dir);
            free(items[i].file);
        }
        free(items);
        if (rc) return rc;
        if (n == 0)
            return sg_err("'%s/%s': class folder without .jpg/.jpeg/.png images\n---> HINT: "
                          "remove it or add images (class indices follow the sorted folder "
                          "names)",
                          root, classes->v[c]);
    }
    return 0;
}

/* ---- labels file (flat folder) ---------------------------------------------------------- */

static int is_int(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

static int read_lines(const char *path, struct names *lines)
{
    char *data;
    size_t len;
    if (sg_read_file(path, &data, &len) != 0) return -1;
    char *p = data;
    while (*p) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        if (n) {
            char *s = sg_xmalloc(n + 1);
            memcpy(s, p, n);
            s[n] = 0;
            names_push(lines, s);
        }
        if (!nl) break;
        p = nl + 1;
    }
    free(data);
    return 0;
}

static int64_t find_sorted(char **v, int64_t n, const char *s)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        int c = strcmp(v[mid], s);
        if (c == 0) return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Split "file<ws>label" lines; class ids from wnids.txt (root or parent) when present, else the
 * sorted distinct labels; integer labels are class indices. */
static int flat_labels(const char *root, const char *labels, const char *parent,
                       struct names *classes, struct samples *out)
{
    struct names lines = {0}, files = {0}, labs = {0};
    int rc = read_lines(labels, &lines);
    for (int64_t i = 0; rc == 0 && i < lines.n; i++) {
        char *s = lines.v[i];
        if (s[0] == '#') continue;
        char *ws = s + strcspn(s, " \t");
        if (!*ws) {
            rc = sg_err("%s: line '%s' has no label\n---> HINT: lines are 'filename<TAB>label'",
                        labels, s);
            break;
        }
        *ws = 0;
        char *lab = ws + 1;
        lab += strspn(lab, " \t");
        names_push(&files, sg_xstrdup(s));
        names_push(&labs, sg_xstrdup(lab));
    }
    int numeric = 1;
    for (int64_t i = 0; i < labs.n; i++) numeric &= is_int(labs.v[i]);
    if (rc == 0 && labs.n == 0) rc = sg_err("%s: no labelled files", labels);
    if (rc == 0 && !numeric) {
        char *wn[2] = {join(root, "wnids.txt"), join(parent, "wnids.txt")};
        struct stat st;
        for (int k = 0; k < 2 && classes->n == 0; k++)
            if (stat(wn[k], &st) == 0) rc = read_lines(wn[k], classes);
        free(wn[0]);
        free(wn[1]);
        if (classes->n == 0)
            for (int64_t i = 0; i < labs.n; i++) names_push(classes, sg_xstrdup(labs.v[i]));
        if (classes->n > 1) qsort(classes->v, (size_t)classes->n, sizeof(char *), cmp_str);
        int64_t m = 0; /* dedupe */
        for (int64_t i = 0; i < classes->n; i++) {
            if (m && strcmp(classes->v[m - 1], classes->v[i]) == 0)
                free(classes->v[i]);
            else
                classes->v[m++] = classes->v[i];
        }
        classes->n = m;
    }
    /* samples in sorted file-name order */
    int64_t *order = sg_xmalloc(sizeof(int64_t) * (size_t)SG_MAX(files.n, 1));
    char **sorted = sg_xmalloc(sizeof(char *) * (size_t)SG_MAX(files.n, 1));
    if (files.n > 0) memcpy(sorted, files.v, sizeof(char *) * (size_t)files.n);
    if (files.n > 1) qsort(sorted, (size_t)files.n, sizeof(char *), cmp_str);
    for (int64_t i = 0; rc == 0 && i + 1 < files.n; i++)
        if (strcmp(sorted[i], sorted[i + 1]) == 0)
            rc = sg_err("%s: file '%s' is listed twice", labels, sorted[i]);
    for (int64_t i = 0; rc == 0 && i < files.n; i++)
        order[find_sorted(sorted, files.n, files.v[i])] = i;
    int64_t maxlab = -1;
    for (int64_t k = 0; rc == 0 && k < files.n; k++) {
        int64_t i = order[k];
        int64_t lab =
            numeric ? strtoll(labs.v[i], NULL, 10) : find_sorted(classes->v, classes->n, labs.v[i]);
        if (lab < 0 || lab > INT32_MAX) {
            rc = sg_err("%s: label '%s' of '%s' is not a known class\n---> HINT: class ids come "
                        "from wnids.txt when present",
                        labels, labs.v[i], files.v[i]);
            break;
        }
        maxlab = SG_MAX(maxlab, lab);
        samples_push(out, sg_xstrdup(files.v[i]), (int32_t)lab);
    }
    if (rc == 0 && numeric)
        for (int64_t c = 0; c <= maxlab; c++) {
            char num[24];
            snprintf(num, sizeof(num), "%lld", (long long)c);
            names_push(classes, sg_xstrdup(num));
        }
    free(order);
    free(sorted);
    names_free(&lines);
    names_free(&files);
    names_free(&labs);
    return rc;
}

/* ---- open ------------------------------------------------------------------------------- */

static int folder_read(const struct sg_dataset *ds, int64_t index, struct sg_raw_sample *out);
static void folder_where(const struct sg_dataset *ds, int64_t index, char *buf, size_t n);
static void folder_free(struct sg_dataset *ds);
static const struct sg_dataset_ops folder_ops = {folder_read, folder_where, folder_free};

static char *parent_of(const char *root)
{
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') n--;
    while (n > 0 && root[n - 1] != '/') n--;
    while (n > 1 && root[n - 1] == '/') n--;
    if (n == 0) return sg_xstrdup("..");
    char *p = sg_xmalloc(n + 1);
    memcpy(p, root, n);
    p[n] = 0;
    return p;
}

/* Class names: the explicit file (must match), else classnames.txt in root or its parent when
 * its line count matches. */
static int load_classnames(const struct sg_dataset_spec *spec, const char *parent,
                           struct sg_dataset *ds)
{
    if (ds->nclasses == 0) return 0;
    struct names cn = {0};
    if (spec->classnames) {
        if (read_lines(spec->classnames, &cn) != 0) return -1;
        if (cn.n != ds->nclasses) {
            names_free(&cn);
            return sg_err("%s: %lld class names for %d classes", spec->classnames, (long long)cn.n,
                          ds->nclasses);
        }
    } else {
        char *cand[2] = {join(spec->path, "classnames.txt"), join(parent, "classnames.txt")};
        struct stat st;
        for (int k = 0; k < 2 && cn.n == 0; k++) {
            if (stat(cand[k], &st) != 0) continue;
            if (read_lines(cand[k], &cn) != 0 || cn.n != ds->nclasses) names_free(&cn);
            sg_clear_error();
        }
        free(cand[0]);
        free(cand[1]);
        if (cn.n == 0) return 0;
    }
    ds->classnames = cn.v;
    return 0;
}

int sg_dataset_open_folder(const struct sg_dataset_spec *spec, struct sg_dataset **out)
{
    const char *root = spec->path;
    char *parent = parent_of(root);
    struct names classes = {0};
    struct samples s = {0};
    int rc;
    if (spec->labels) {
        rc = flat_labels(root, spec->labels, parent, &classes, &s);
    } else {
        struct names files = {0};
        rc = list_dir(root, &classes, &files);
        if (rc == 0 && classes.n > 0) {
            rc = image_folder(root, &classes, &s);
        } else if (rc == 0) { /* flat folder of images, unlabelled */
            for (int64_t i = 0; i < files.n; i++) {
                samples_push(&s, files.v[i], -1);
                files.v[i] = NULL;
            }
            if (s.n == 0)
                rc = sg_err("'%s' has no class folders and no .jpg/.jpeg/.png images", root);
        }
        names_free(&files);
    }
    if (rc != 0) {
        names_free(&classes);
        samples_free(&s);
        free(parent);
        return -1;
    }
    struct folder_impl *im = sg_xcalloc(1, sizeof(*im));
    im->root = sg_xstrdup(root);
    im->rel = s.rel;
    im->label = s.label;
    struct sg_dataset *ds = sg_xcalloc(1, sizeof(*ds));
    ds->ops = &folder_ops;
    ds->kind = "folder";
    ds->path = sg_xstrdup(root);
    ds->n = s.n;
    ds->ncaptions = 0;
    ds->nclasses = (int)classes.n;
    ds->class_ids = classes.v;
    ds->impl = im;
    if (load_classnames(spec, parent, ds) != 0) {
        free(parent);
        sg_dataset_free(ds);
        return -1;
    }
    free(parent);
    *out = ds;
    return 0;
}

static int folder_read(const struct sg_dataset *ds, int64_t index, struct sg_raw_sample *out)
{
    const struct folder_impl *im = ds->impl;
    snprintf(out->where, sizeof(out->where), "%s", im->rel[index]);
    char full[4096];
    int k = snprintf(full, sizeof(full), "%s/%s", im->root, im->rel[index]);
    if (k < 0 || (size_t)k >= sizeof(full)) return sg_err("%s: path too long", im->rel[index]);
    if (sg_raw_read_file(full, out) != 0) return -1;
    out->label = im->label[index];
    return 0;
}

static void folder_where(const struct sg_dataset *ds, int64_t index, char *buf, size_t n)
{
    const struct folder_impl *im = ds->impl;
    snprintf(buf, n, "%s", im->rel[index]);
}

static void folder_free(struct sg_dataset *ds)
{
    struct folder_impl *im = ds->impl;
    if (!im) return;
    for (int64_t i = 0; i < ds->n; i++) free(im->rel[i]);
    free(im->rel);
    free(im->label);
    free(im->root);
    free(im);
}
