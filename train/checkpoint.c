/*
 * train/checkpoint.c — training checkpoints (see train/checkpoint.h).
 *
 * Devices: the parameter arenas (data, m, v) live on the table's context device. Saving
 * downloads each arena once into a host copy; loading reads into a host copy of the arena and
 * uploads it whole once every tensor has been read (so a failed load leaves the device arena
 * untouched). The file format does not depend on the device: a checkpoint written by a GPU run
 * resumes on the CPU and vice versa.
 */
#define _POSIX_C_SOURCE 200809L
#include "train/checkpoint.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"

#define FORMAT "sogclip-checkpoint-1"

static void add_i64(struct sg_st_writer *w, const char *name, int64_t v)
{
    int64_t one = 1;
    sg_stw_add(w, name, SG_I64, 1, &one, &v);
}

/* "prefix<name>" of every parameter (trainable only when !buffers_too) from arena base. */
static void add_arena(struct sg_st_writer *w, const struct sg_params *ps, const float *base,
                      const char *prefix, int buffers_too)
{
    char name[SG_PARAM_NAME_MAX + 16];
    for (int i = 0; i < ps->n; i++) {
        const struct sg_param *p = ps->items[i];
        if (!buffers_too && (p->flags & SG_PARAM_BUFFER)) continue;
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        sg_stw_add_f32(w, name, p->ndim, p->shape, base + p->offset);
    }
}

static int on_host(const struct sg_params *ps)
{
    return !ps->ctx || ps->ctx->dev == SG_DEVICE_CPU;
}

/* An arena of ps readable on the host: base itself on the CPU, else a downloaded copy in *tmp
 * (free it after use). */
static const float *host_view(const struct sg_params *ps, const float *base, float **tmp)
{
    *tmp = NULL;
    if (on_host(ps)) return base;
    *tmp = sg_xmalloc((ps->total ? ps->total : 1) * sizeof(float));
    sg_memcpy_d2h(ps->ctx, *tmp, base, ps->total * sizeof(float));
    return *tmp;
}

/* add_arena from an arena on the parameters' device */
static void add_dev_arena(struct sg_st_writer *w, const struct sg_params *ps, const float *base,
                          const char *prefix, int buffers_too)
{
    float *tmp;
    add_arena(w, ps, host_view(ps, base, &tmp), prefix, buffers_too);
    free(tmp);
}

void sg_ckpt_begin(struct sg_st_writer *w, const struct sg_params *ps,
                   const struct sg_ckpt_state *s, const char *config_yaml, const char *model_yaml)
{
    sg_stw_init(w);
    add_dev_arena(w, ps, ps->data, "model.", 1);
    if (ps->m) add_dev_arena(w, ps, ps->m, "optim.m.", 0);
    if (ps->v) add_dev_arena(w, ps, ps->v, "optim.v.", 0);
    add_i64(w, "optim.step", s->optim_step);
    add_i64(w, "train.step", s->step);
    add_i64(w, "loader.epoch", s->pos.epoch);
    add_i64(w, "loader.cursor", s->pos.cursor);
    add_i64(w, "loader.step", s->pos.step);
    add_i64(w, "loader.seen", s->pos.seen);
    add_i64(w, "loader.bad", s->pos.bad);
    add_i64(w, "dist.world", s->world > 0 ? s->world : 1);
    sg_stw_meta(w, "format", FORMAT);
    if (config_yaml) sg_stw_meta(w, "config", config_yaml);
    if (model_yaml) sg_stw_meta(w, "model_config", model_yaml);
}

static int is_ckpt_name(const char *n)
{
    size_t len = strlen(n);
    return !strncmp(n, "step_", 5) && len > 17 && !strcmp(n + len - 12, ".safetensors");
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted checkpoint file names of a run (zero-padded steps sort by name). */
static int list_ckpts(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    int n = 0, cap = 0;
    *names = NULL;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_ckpt_name(e->d_name)) continue;
        if (n == cap)
            *names = sg_xrealloc(*names, sizeof(char *) * (size_t)(cap = cap ? 2 * cap : 16));
        (*names)[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(*names, (size_t)n, sizeof(char *), cmp_names);
    return n;
}

int sg_ckpt_write(struct sg_st_writer *w, const char *run_dir, int64_t step, int keep, char *path,
                  size_t path_len)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    if (sg_mkdir_p(dir)) return -1;
    snprintf(path, path_len, "%s/step_%010lld.safetensors", dir, (long long)step);
    if (sg_stw_save(w, path)) return -1;
    char **names;
    int n = list_ckpts(dir, &names);
    for (int i = 0; i < n; i++) {
        if (i < n - keep) {
            char old[1400];
            snprintf(old, sizeof old, "%s/%s", dir, names[i]);
            unlink(old);
        }
        free(names[i]);
    }
    free(names);
    return 0;
}

int sg_ckpt_latest(const char *run_dir, char *path, size_t path_len)
{
    char dir[1024];
    char **names;
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    int n = list_ckpts(dir, &names);
    if (n > 0) snprintf(path, path_len, "%s/%s", dir, names[n - 1]);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return n > 0 ? 0 : -1;
}

static int read_i64(const struct sg_st_file *f, const char *name, int64_t *v)
{
    return sg_st_read_i64(f, name, v, 1);
}

/* Every tensor "prefix<name>" must exist with the parameter's shape. */
static int check_arena(const struct sg_st_file *f, const struct sg_params *ps, const char *prefix,
                       int buffers_too)
{
    char name[SG_PARAM_NAME_MAX + 16];
    for (int i = 0; i < ps->n; i++) {
        const struct sg_param *p = ps->items[i];
        if (!buffers_too && (p->flags & SG_PARAM_BUFFER)) continue;
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        const struct sg_st_entry *e = sg_st_find(f, name);
        int same = e && e->ndim == p->ndim && e->dtype == SG_F32;
        for (int d = 0; same && d < p->ndim; d++) same = e->shape[d] == p->shape[d];
        if (!same)
            return sg_err("%s: '%s' %s (is the checkpoint from another model?)", f->path, name,
                          e ? "has another shape or dtype" : "is missing");
    }
    return 0;
}

static int read_arena_host(const struct sg_st_file *f, const struct sg_params *ps, float *base,
                           const char *prefix, int buffers_too)
{
    char name[SG_PARAM_NAME_MAX + 16];
    for (int i = 0; i < ps->n; i++) {
        const struct sg_param *p = ps->items[i];
        if (!buffers_too && (p->flags & SG_PARAM_BUFFER)) continue;
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        if (sg_st_read_f32(f, name, base + p->offset, p->numel)) return -1;
    }
    return 0;
}

int sg_ckpt_read_arena(const struct sg_st_file *f, struct sg_params *ps, float *base,
                       const char *prefix, int buffers_too)
{
    if (on_host(ps)) return read_arena_host(f, ps, base, prefix, buffers_too);
    /* device arena: download (keeps what is not read: buffers, padding), read, upload whole */
    float *tmp;
    float *host = (float *)host_view(ps, base, &tmp);
    int rc = read_arena_host(f, ps, host, prefix, buffers_too);
    if (rc == 0) sg_memcpy_h2d(ps->ctx, base, host, ps->total * sizeof(float));
    free(tmp);
    return rc;
}

int sg_ckpt_load(const struct sg_st_file *f, struct sg_params *ps, struct sg_ckpt_state *s)
{
    const char *fmt = sg_st_meta(f, "format");
    if (!fmt || strcmp(fmt, FORMAT))
        return sg_err("%s: not a sogclip training checkpoint (format '%s')", f->path,
                      fmt ? fmt : "none");
    if (check_arena(f, ps, "model.", 1)) return -1;
    if (ps->m && check_arena(f, ps, "optim.m.", 0)) return -1;
    if (ps->v && check_arena(f, ps, "optim.v.", 0)) return -1;
    struct sg_ckpt_state t;
    if (read_i64(f, "optim.step", &t.optim_step) || read_i64(f, "train.step", &t.step) ||
        read_i64(f, "loader.epoch", &t.pos.epoch) || read_i64(f, "loader.cursor", &t.pos.cursor) ||
        read_i64(f, "loader.step", &t.pos.step) || read_i64(f, "loader.seen", &t.pos.seen) ||
        read_i64(f, "loader.bad", &t.pos.bad))
        return -1;
    t.world = 1; /* checkpoints from before distributed training: one process */
    if (sg_st_find(f, "dist.world") && read_i64(f, "dist.world", &t.world)) return -1;
    if (sg_ckpt_read_arena(f, ps, ps->data, "model.", 1)) return -1;
    if (ps->m && sg_ckpt_read_arena(f, ps, ps->m, "optim.m.", 0)) return -1;
    if (ps->v && sg_ckpt_read_arena(f, ps, ps->v, "optim.v.", 0)) return -1;
    *s = t;
    return 0;
}

int sg_ckpt_export_weights(const struct sg_params *ps, const char *path, const char *model_yaml,
                           const char *config_yaml)
{
    const char *meta[] = {"model_config", model_yaml ? model_yaml : "", "config",
                          config_yaml ? config_yaml : "", NULL};
    return sg_params_save(ps, path, meta);
}
