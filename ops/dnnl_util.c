/* ops/dnnl_util.c — see dnnl_util.h. */
#include "ops/dnnl_util.h"

#include <stdlib.h>
#include <string.h>

struct dnnl_cache_entry {
    char *key;
    void *obj;
    sg_dnnl_destroy_fn destroy;
};

struct sg_dnnl {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    struct dnnl_cache_entry *items;
    int n, cap;
};

static struct sg_dnnl *get(struct sg_ctx *c)
{
    if (c->dnnl) return c->dnnl;
    struct sg_dnnl *d = sg_xcalloc(1, sizeof *d);
    SG_DNNL_CHECK(dnnl_engine_create(&d->engine, dnnl_cpu, 0));
    SG_DNNL_CHECK(dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags));
    c->dnnl = d;
    return d;
}

dnnl_engine_t sg_dnnl_engine(struct sg_ctx *c)
{
    return get(c)->engine;
}
dnnl_stream_t sg_dnnl_stream(struct sg_ctx *c)
{
    return get(c)->stream;
}

void *sg_dnnl_cache_find(struct sg_ctx *c, const char *key)
{
    struct sg_dnnl *d = get(c);
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->items[i].key, key) == 0) return d->items[i].obj;
    return NULL;
}

void sg_dnnl_cache_put(struct sg_ctx *c, const char *key, void *obj, sg_dnnl_destroy_fn destroy)
{
    struct sg_dnnl *d = get(c);
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 32;
        d->items = sg_xrealloc(d->items, sizeof(*d->items) * (size_t)d->cap);
    }
    d->items[d->n].key = sg_xstrdup(key);
    d->items[d->n].obj = obj;
    d->items[d->n].destroy = destroy;
    d->n++;
}

void sg_dnnl_free(struct sg_dnnl *d)
{
    if (!d) return;
    for (int i = 0; i < d->n; i++) {
        if (d->items[i].destroy) d->items[i].destroy(d->items[i].obj);
        free(d->items[i].key);
    }
    free(d->items);
    dnnl_stream_destroy(d->stream);
    dnnl_engine_destroy(d->engine);
    free(d);
}
