/*
 * core/safetensors.h — reader and writer for the safetensors format (huggingface/safetensors):
 *   [u64 little-endian N][N bytes of JSON header][data buffer]
 *   header: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 *            "__metadata__": {"key": "value", ...}}
 * offsets are relative to the data buffer. One format serves checkpoints, exports and the
 * PyTorch-generated test references.
 *
 * The reader is hostile-input safe: the header length, every offset, every shape product and
 * dtype are validated against the file size before any tensor is exposed; a bad file is
 * rejected with sg_err() naming the file and the offending entry, never read out of bounds.
 * The writer sorts nothing (entries keep insertion order), pads the header to 8 bytes and
 * writes atomically (tmp file + fsync + rename).
 */
#ifndef SG_SAFETENSORS_H
#define SG_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

struct sg_st_entry {
    char *name;
    enum sg_dtype dtype;
    int ndim;
    int64_t shape[SG_MAX_DIMS];
    uint64_t begin, end; /* byte offsets into the data buffer */
};

struct sg_st_file {
    char *path;
    uint8_t *map; /* whole file (mmap or malloc) */
    size_t map_len;
    int mapped;          /* 1 if map came from mmap */
    const uint8_t *data; /* start of the data buffer */
    size_t data_len;
    int n;
    struct sg_st_entry *entries;
    int nmeta;
    char **meta_keys, **meta_vals;
};

/* Open and validate a file. Returns 0, or -1 with sg_last_error() set. */
int sg_st_open(struct sg_st_file *f, const char *path);
/* Validate an in-memory image (takes ownership of buf, which must come from malloc). */
int sg_st_open_buffer(struct sg_st_file *f, uint8_t *buf, size_t len, const char *label);
void sg_st_close(struct sg_st_file *f);

const struct sg_st_entry *sg_st_find(const struct sg_st_file *f, const char *name);
const void *sg_st_raw(const struct sg_st_file *f, const struct sg_st_entry *e);
const char *sg_st_meta(const struct sg_st_file *f, const char *key); /* NULL if absent */

/* Copy a tensor into dst as float32, converting F16/BF16/I32/I64/U8. Fails (-1, sg_err) when the
 * name is missing or its element count differs from numel. */
int sg_st_read_f32(const struct sg_st_file *f, const char *name, float *dst, int64_t numel);
/* Same for integer tensors into int64 (I32, I64, U8). */
int sg_st_read_i64(const struct sg_st_file *f, const char *name, int64_t *dst, int64_t numel);
/* Malloc'd float32 copy; numel and shape (may be NULL) returned. NULL with sg_err on failure. */
float *sg_st_load_f32(const struct sg_st_file *f, const char *name, int64_t *numel, int *ndim,
                      int64_t *shape);

struct sg_st_writer {
    int n, cap;
    struct sg_st_entry *entries;
    void **datas; /* owned copies of each tensor's bytes */
    int nmeta, capmeta;
    char **meta_keys, **meta_vals;
};

void sg_stw_init(struct sg_st_writer *w);
/* Add a tensor (bytes copied now). Names must be unique (checked). */
void sg_stw_add(struct sg_st_writer *w, const char *name, enum sg_dtype dtype, int ndim,
                const int64_t *shape, const void *data);
void sg_stw_add_f32(struct sg_st_writer *w, const char *name, int ndim, const int64_t *shape,
                    const float *data);
void sg_stw_meta(struct sg_st_writer *w, const char *key, const char *value);
/* Serialize to memory (malloc'd) or to a file atomically. */
int sg_stw_serialize(const struct sg_st_writer *w, uint8_t **out, size_t *out_len);
int sg_stw_save(const struct sg_st_writer *w, const char *path);
void sg_stw_free(struct sg_st_writer *w);

#endif
