/*
 * ops/dnnl_util.h — oneDNN engine, stream and a primitive cache, held in the context
 * (ctx->dnnl, created on first use). Creating a oneDNN primitive costs milliseconds, so ops
 * build one per (op, shape) key the first time and reuse it (darknet/cuDNN-style: descriptors
 * once at setup).
 */
#ifndef SG_DNNL_UTIL_H
#define SG_DNNL_UTIL_H

#include <dnnl.h>

#include "core/common.h"
#include "core/ctx.h"

#define SG_DNNL_CHECK(call)                                                                        \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) SG_PANIC("oneDNN call failed (status %d): %s", (int)st_, #call);  \
    } while (0)

typedef void (*sg_dnnl_destroy_fn)(void *obj);

dnnl_engine_t sg_dnnl_engine(struct sg_ctx *c);
dnnl_stream_t sg_dnnl_stream(struct sg_ctx *c);
/* Look up a cached object by key (any string that encodes op and shape); NULL if absent. */
void *sg_dnnl_cache_find(struct sg_ctx *c, const char *key);
/* Store obj under key; destroy(obj) runs when the context is freed. */
void sg_dnnl_cache_put(struct sg_ctx *c, const char *key, void *obj, sg_dnnl_destroy_fn destroy);
void sg_dnnl_free(struct sg_dnnl *d);

#endif
