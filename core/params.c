/* core/params.c — see params.h. */
#include "core/params.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/safetensors.h"

void sg_params_init(struct sg_params *ps)
{
    memset(ps, 0, sizeof *ps);
}

struct sg_param *sg_params_find(const struct sg_params *ps, const char *name)
{
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i]->name, name) == 0) return ps->items[i];
    return NULL;
}

struct sg_param *sg_params_add(struct sg_params *ps, const char *name, int ndim,
                               const int64_t *shape, unsigned flags, float init_scale)
{
    SG_CHECK(ps->data == NULL, "sg_params_add('%s') after sg_params_alloc", name);
    SG_CHECK(ndim >= 0 && ndim <= 4, "param '%s': %d dims", name, ndim);
    SG_CHECK(strlen(name) < SG_PARAM_NAME_MAX, "param name too long: '%s'", name);
    SG_CHECK(!sg_params_find(ps, name), "duplicate parameter name '%s'", name);
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 64;
        ps->items = sg_xrealloc(ps->items, sizeof(*ps->items) * (size_t)ps->cap);
    }
    struct sg_param *p = sg_xcalloc(1, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= shape[i];
    }
    p->flags = flags;
    p->init_scale = init_scale;
    p->offset = ps->total;
    ps->total += ((size_t)p->numel + 63) & ~(size_t)63;
    ps->items[ps->n++] = p;
    return p;
}

void sg_params_alloc(struct sg_params *ps, struct sg_ctx *c, int with_optim)
{
    size_t bytes = (ps->total ? ps->total : 64) * sizeof(float);
    ps->ctx = c;
    ps->data = sg_dev_alloc(c, bytes);
    ps->grad = sg_dev_alloc(c, bytes);
    sg_memset_zero(c, ps->data, bytes);
    sg_memset_zero(c, ps->grad, bytes);
    if (with_optim) {
        ps->m = sg_dev_alloc(c, bytes);
        ps->v = sg_dev_alloc(c, bytes);
        sg_memset_zero(c, ps->m, bytes);
        sg_memset_zero(c, ps->v, bytes);
    }
    for (int i = 0; i < ps->n; i++) {
        ps->items[i]->data = ps->data + ps->items[i]->offset;
        ps->items[i]->grad = ps->grad + ps->items[i]->offset;
    }
}

static void init_one(struct sg_param *p, float *host, struct sg_rng *rng)
{
    int64_t n = p->numel;
    if (p->flags & SG_PARAM_INIT_NORMAL)
        sg_rng_normal(rng, host, n, 0.0f, p->init_scale);
    else if (p->flags & SG_PARAM_INIT_UNIFORM)
        sg_rng_uniform(rng, host, n, -p->init_scale, p->init_scale);
    else if (p->flags & SG_PARAM_INIT_ONE)
        for (int64_t i = 0; i < n; i++) host[i] = 1.0f;
    else if (p->flags & SG_PARAM_INIT_CONST)
        for (int64_t i = 0; i < n; i++) host[i] = p->init_scale;
    else
        memset(host, 0, (size_t)n * sizeof(float));
}

void sg_params_init_values(struct sg_params *ps, struct sg_rng *rng)
{
    SG_CHECK(ps->data, "sg_params_init_values before sg_params_alloc");
    for (int i = 0; i < ps->n; i++) {
        struct sg_param *p = ps->items[i];
        float *host = sg_xmalloc((size_t)p->numel * sizeof(float));
        init_one(p, host, rng);
        sg_memcpy_h2d(ps->ctx, p->data, host, (size_t)p->numel * sizeof(float));
        free(host);
    }
}

void sg_params_zero_grad(struct sg_params *ps)
{
    sg_memset_zero(ps->ctx, ps->grad, ps->total * sizeof(float));
}

int64_t sg_params_count(const struct sg_params *ps, int trainable_only)
{
    int64_t n = 0;
    for (int i = 0; i < ps->n; i++)
        if (!trainable_only || !(ps->items[i]->flags & SG_PARAM_BUFFER)) n += ps->items[i]->numel;
    return n;
}

void sg_params_free(struct sg_params *ps)
{
    if (ps->ctx) {
        sg_dev_free(ps->ctx, ps->data);
        sg_dev_free(ps->ctx, ps->grad);
        sg_dev_free(ps->ctx, ps->m);
        sg_dev_free(ps->ctx, ps->v);
    }
    for (int i = 0; i < ps->n; i++) free(ps->items[i]);
    free(ps->items);
    memset(ps, 0, sizeof *ps);
}

int sg_params_save(const struct sg_params *ps, const char *path, const char *const *meta)
{
    struct sg_st_writer w;
    sg_stw_init(&w);
    float *host = sg_xmalloc((ps->total ? ps->total : 1) * sizeof(float));
    sg_memcpy_d2h(ps->ctx, host, ps->data, ps->total * sizeof(float));
    for (int i = 0; i < ps->n; i++) {
        const struct sg_param *p = ps->items[i];
        sg_stw_add_f32(&w, p->name, p->ndim, p->shape, host + p->offset);
    }
    for (int i = 0; meta && meta[i] && meta[i + 1]; i += 2) sg_stw_meta(&w, meta[i], meta[i + 1]);
    int rc = sg_stw_save(&w, path);
    sg_stw_free(&w);
    free(host);
    return rc;
}

static int check_shape(const struct sg_param *p, const struct sg_st_entry *e, const char *path)
{
    int same = e->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = e->shape[d] == p->shape[d];
    if (same) return 0;
    char a[96], b[96];
    return sg_err("%s: '%s' has shape %s, the model expects %s\n---> HINT: the checkpoint was "
                  "made for a different model configuration",
                  path, p->name, sg_shape_str(e->ndim, e->shape, a, sizeof a),
                  sg_shape_str(p->ndim, p->shape, b, sizeof b));
}

int sg_params_load(struct sg_params *ps, const char *path, int strict)
{
    struct sg_st_file f;
    if (sg_st_open(&f, path) != 0) return -1;
    int rc = 0;
    float *host = sg_xmalloc((ps->total ? ps->total : 1) * sizeof(float));
    sg_memcpy_d2h(ps->ctx, host, ps->data, ps->total * sizeof(float));
    for (int i = 0; i < ps->n && rc == 0; i++) {
        struct sg_param *p = ps->items[i];
        const struct sg_st_entry *e = sg_st_find(&f, p->name);
        if (!e) {
            if (strict) rc = sg_err("%s: missing parameter '%s'", path, p->name);
            continue;
        }
        rc = check_shape(p, e, path);
        if (rc == 0) rc = sg_st_read_f32(&f, p->name, host + p->offset, p->numel);
    }
    for (int i = 0; i < f.n && rc == 0 && strict; i++)
        if (!sg_params_find(ps, f.entries[i].name))
            rc = sg_err("%s: unexpected tensor '%s' (not a parameter of this model)", path,
                        f.entries[i].name);
    if (rc == 0) sg_memcpy_h2d(ps->ctx, ps->data, host, ps->total * sizeof(float));
    free(host);
    sg_st_close(&f);
    return rc;
}
