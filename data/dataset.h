/*
 * data/dataset.h — datasets with random access: every sample (one image with its captions and
 * class label) has a stable global index in [0, N), and sg_dataset_read(ds, i) returns its
 * ENCODED image bytes, its captions and its label. One loader (data/loader.h) serves all formats.
 *
 * Formats (FIELD.md section 5):
 *   csv     CSV/TSV with a header row (open_clip --dataset-type csv): separator (default: ','
 *           for *.csv, tab otherwise; RFC-4180 quoting for ','; a TSV field is taken literally),
 *           image column (image_key; default "filepath", else "image") and caption column
 *           (caption_key; default "title", else "caption"). Relative image paths resolve against
 *           image_root, default the CSV file's folder (open_clip uses the working directory).
 *           Rows naming the same image are ONE sample with several captions, indexed in
 *           first-appearance order. Empty (whitespace-only) or invalid UTF-8 captions are dropped
 *           and counted (dropped_captions). Label: -1.
 *   wds     WebDataset tar shards: "dir/{00000..00012}.tar", comma alternatives "{a,b}",
 *           several specs joined with "::", or a directory (its *.tar, sorted). Members are
 *           grouped by the WebDataset rule (consecutive members sharing the name up to the first
 *           dot of the file name; members without an extension are ignored). Image: jpg, jpeg or
 *           png field (case-insensitive); captions: the txt field split into lines (our shard
 *           writer joins several captions with newlines), else the json caption_key (default
 *           "caption", a string or an array of strings); label: the cls field, else -1.
 *           Global index: the json "key" (an integer or a string of digits, as img2dataset
 *           writes) when every sample has one — it must be unique and in [0, N), else open fails
 *           naming the shard (ignore_json_key = 1 numbers samples in shard order instead);
 *           without json keys, the position in shard order. sizes.json beside the shards
 *           ({"00000.tar": n, ...}) is checked against the counted samples when present (every
 *           shard's headers are indexed at open anyway, for random access).
 *   folder  ImageNet layout root/<class>/[sub/]*.{jpg,jpeg,png} (any case), torchvision
 *           ImageFolder order (classes sorted; files in sorted os.walk order within a class),
 *           label = class position; or a flat folder with a labels file (spec.labels; lines
 *           "filename<TAB or spaces>label", label a class name such as a wnid or a class
 *           index; files in sorted name order). Class names: spec.classnames, else
 *           classnames.txt in the root or its parent, when its line count matches.
 *   karpathy  Karpathy's split JSON (dataset_coco.json, dataset_flickr8k/30k.json):
 *           {"images": [{"filepath"?, "filename", "split", "sentences": [{"raw"}, ...]}, ...]}.
 *           One sample per image of the chosen split (spec.split: default "test"; "all" keeps
 *           every image; a comma list such as "train,restval" keeps several), in file order;
 *           captions: the sentences' raw strings (empty / invalid UTF-8 dropped and counted);
 *           image: image_root (default: the JSON file's folder) / filepath / filename. Label -1.
 * kind NULL sniffs: a path ending in ".json" -> karpathy; a directory with *.tar files, or a path
 * with ".tar", "{" or "::" -> wds; a directory -> folder; a file -> csv.
 *
 * Reads are thread-safe (pread / open per read; no shared FILE*). Errors (missing image,
 * unreadable file) return -1 with sg_err naming the file; the sample's source name is also put
 * in out->where for reports.
 */
#ifndef SG_DATA_DATASET_H
#define SG_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

struct sg_dataset_spec {
    const char *kind;        /* "csv" | "tsv" | "wds" | "folder" | "karpathy" | NULL: sniff */
    const char *path;        /* csv file, shard spec, or folder */
    const char *image_root;  /* csv: base of relative image paths (NULL: the file's folder) */
    const char *image_key;   /* csv: image column (NULL: "filepath", else "image") */
    const char *caption_key; /* csv: caption column (NULL: "title", else "caption");
                                wds: json caption key (NULL: "caption") */
    const char *separator;   /* csv: "," "\t" (or the two characters \t), ";" ... NULL: by
                                extension */
    const char *labels;      /* folder: labels file for a flat folder */
    const char *classnames;  /* folder: class names file (NULL: look for classnames.txt) */
    int ignore_json_key;     /* wds: number samples in shard order even when json keys exist */
    const char *split;       /* karpathy: split(s) to keep, "test" | "all" | "train,restval"
                                (NULL: "test") */
};

/* One sample as read: buffers owned by the struct and grown on demand; reuse it across reads
 * and free it with sg_raw_sample_free. Zero-initialize before the first read. */
struct sg_raw_sample {
    uint8_t *img; /* (img_len) encoded image bytes */
    size_t img_len, img_cap;
    int ncaptions;         /* 0..k */
    const char **captions; /* (ncaptions) NUL-terminated UTF-8, pointing into text */
    int captions_cap;
    char *text; /* caption storage */
    size_t text_len, text_cap;
    int32_t label;   /* class index, or -1 */
    int ndropped;    /* captions dropped while reading (wds: empty / invalid UTF-8) */
    char where[512]; /* source, for messages: "images/x.jpg" or "shard.tar:key" */
};
void sg_raw_sample_free(struct sg_raw_sample *s);

struct sg_dataset;
struct sg_dataset_ops {
    int (*read)(const struct sg_dataset *ds, int64_t index, struct sg_raw_sample *out);
    /* Source name of a sample (for reports) without reading it. */
    void (*where)(const struct sg_dataset *ds, int64_t index, char *buf, size_t n);
    void (*free)(struct sg_dataset *ds);
};

struct sg_dataset {
    const struct sg_dataset_ops *ops;
    const char *kind; /* "csv", "wds", "folder", "karpathy" */
    char *path;
    int64_t n;                /* samples (images) */
    int64_t ncaptions;        /* captions kept (csv; -1 when not known without reading: wds) */
    int64_t dropped_captions; /* captions dropped at open (csv) */
    int nclasses;             /* 0 when unlabelled */
    char **class_ids;         /* (nclasses) folder names / label strings, or NULL */
    char **classnames;        /* (nclasses) human-readable names, or NULL */
    void *impl;
};

/* Open a dataset. Returns 0 and *out, or -1 with sg_err (what is wrong and a hint). */
int sg_dataset_open(const struct sg_dataset_spec *spec, struct sg_dataset **out);
/* Read sample `index` (0 <= index < n). Returns 0, or -1 with sg_err (out->where is set). */
int sg_dataset_read(const struct sg_dataset *ds, int64_t index, struct sg_raw_sample *out);
void sg_dataset_where(const struct sg_dataset *ds, int64_t index, char *buf, size_t n);
void sg_dataset_free(struct sg_dataset *ds);

/* ---- shared helpers (dataset implementations, tools) ---------------------------------- */

/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
int sg_utf8_valid(const char *s, size_t n);
/* Expand a shard spec: "::"-separated parts, each with {a..b} numeric ranges (zero padding kept
 * from the first bound) and {x,y} alternatives, nested and repeated. Returns the count and a
 * malloc'd array of malloc'd strings (*out), or -1 with sg_err (unbalanced braces, more than
 * 10 million names). */
int64_t sg_expand_braces(const char *spec, char ***out);
/* Read a whole file into out's img buffer (used by csv and folder). */
int sg_raw_read_file(const char *path, struct sg_raw_sample *out);
/* Append a caption (copied) to out; validates nothing. */
void sg_raw_add_caption(struct sg_raw_sample *out, const char *s, size_t n);
/* Clear captions, label and dropped count before filling a sample. */
void sg_raw_reset(struct sg_raw_sample *out);

/* An image list with its captions held in memory: the state behind the csv and karpathy
 * datasets, which both set ds->ops = &sg_captable_ops (read, where, free; data/ds_csv.c). */
struct sg_captable {
    char *base;         /* folder that relative image paths resolve against */
    char *paths;        /* arena of NUL-terminated image paths */
    int64_t *path_off;  /* (n) */
    char *caps;         /* arena of NUL-terminated captions */
    int64_t *cap_off;   /* (ncaptions) grouped by image */
    int64_t *cap_start; /* (n + 1) offsets into cap_off */
};
extern const struct sg_dataset_ops sg_captable_ops;

/* Format constructors (data/ds_csv.c, ds_wds.c, ds_folder.c, ds_karpathy.c). */
int sg_dataset_open_csv(const struct sg_dataset_spec *spec, struct sg_dataset **out);
int sg_dataset_open_wds(const struct sg_dataset_spec *spec, struct sg_dataset **out);
int sg_dataset_open_folder(const struct sg_dataset_spec *spec, struct sg_dataset **out);
int sg_dataset_open_karpathy(const struct sg_dataset_spec *spec, struct sg_dataset **out);

#endif
