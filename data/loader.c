/*
 * data/loader.c — deterministic multi-threaded data loader (contract: data/loader.h).
 *
 * One mutex guards the schedule; workers take two kinds of task:
 *   decode(p):  read + decode the sample at permutation position p into staging slot p % R
 *               (R = 4 * workers), pick its caption, keep its rng for the augmentation;
 *   augment(p): once p is resolved to (batch, row), augment its views straight into the batch
 *               buffer and tokenize its caption.
 * Resolution walks positions in order (res cursor) as their decodes finish: a bad sample is
 * counted and skipped, a good one takes the next row of the batch being filled. Because rows
 * and skips are decided in permutation order, batches do not depend on the worker count or on
 * timing. Workers prefer augment tasks (they free staging slots and finish batches).
 * After llm.c's dataloader (shuffled epochs, state save/load) and DESIGN.md 2.2.
 */
#include "data/loader.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "data/image.h"

#define MAX_BAD_LIST 100
#define MIN_SEEN     100

enum { ST_FREE, ST_DECODING, ST_DONE, ST_ASSIGNED, ST_AUGMENTING };
enum { B_FREE, B_FILLING, B_READY, B_OUT };

struct stage {
    int state;
    int64_t pos, index;
    int ok;
    struct sg_image img; /* decoded (H, W, 3) */
    struct sg_rng rng;   /* per-sample generator after the caption draw */
    char *caption;       /* chosen caption (NUL-terminated), or NULL */
    size_t caption_cap;
    int32_t cap_idx, label;
    int bslot, row;
    char msg[640]; /* "where: reason" for a bad sample */
};

struct bslot {
    struct sg_batch b;
    int state;
    int assigned, pending, closed, discard;
    int64_t end_cursor, seen_at_close, bad_at_close;
};

struct worker {
    struct sg_loader *l;
    pthread_t th;
    struct sg_decoder *dec;
    struct sg_aug_scratch *scratch;
    struct sg_raw_sample raw;
};

struct sg_loader {
    struct sg_loader_config cfg;
    struct sg_aug_config aug;
    const struct sg_dataset *ds;
    int B, S, T, V, W, P, R;
    int64_t n;     /* samples this loader walks per epoch (this rank's shard) */
    int64_t nfull; /* dataset size */
    int64_t *perm; /* (nfull); the first n entries are this rank's order */

    pthread_mutex_t mu;
    pthread_cond_t work, out, idle;
    int stop, active, busy;

    int64_t epoch;
    int64_t disp, res;        /* next position to decode / to resolve */
    int64_t cur_bnum;         /* batch number being filled */
    int cur_slot;             /* its ring slot, or -1 */
    int64_t next_out;         /* next batch number for the consumer */
    int64_t nbatches;         /* batches in the epoch once resolution is complete, else -1 */
    int64_t err_bnum;         /* batch number at which the error is reported, or -1 */
    char err_msg[1024];       /* the error for sg_loader_next */
    char first_bad[640];      /* first bad sample of the epoch */
    int64_t seen, bad;        /* this epoch, in resolution order */
    struct sg_loader_pos pos; /* after the last batch returned */

    struct stage *stages;   /* (R) */
    struct bslot *slots;    /* (P) */
    struct worker *workers; /* (W) */
    char *bad_msg[MAX_BAD_LIST];
    int64_t bad_idx[MAX_BAD_LIST];
    int nbad_list;
};

/* ---- seeds ------------------------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull; /* splitmix64 finaliser */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t fold32(uint64_t h)
{
    return (h ^ (h >> 32)) & 0xffffffffull;
}

uint64_t sg_loader_sample_seed(uint64_t seed, int64_t epoch, int64_t index)
{
    uint64_t h = mix64(seed ^ 0x5347434c4950ull); /* "SGCLIP" */
    h = mix64(h ^ (uint64_t)epoch);
    h = mix64(h ^ (uint64_t)index);
    return fold32(h); /* sg_rng_seed keeps 32 bits (torch's mt19937 seeding) */
}

static uint64_t epoch_seed(uint64_t seed, int64_t epoch)
{
    return fold32(mix64(mix64(seed ^ 0x5045524dull) ^ (uint64_t)epoch)); /* "PERM" */
}

void sg_loader_default_config(struct sg_loader_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->batch = 32;
    cfg->workers = 2;
    cfg->prefetch_batches = 2;
    cfg->shuffle = 1;
    cfg->views = 1;
    cfg->context_length = 77;
    cfg->max_bad_fraction = 0.05;
}

/* ---- resolution (under mu) -------------------------------------------------------------- */

static void record_bad(struct sg_loader *l, struct stage *st)
{
    l->bad++;
    if (l->bad == 1) snprintf(l->first_bad, sizeof(l->first_bad), "%s", st->msg);
    if (l->nbad_list < MAX_BAD_LIST) {
        l->bad_idx[l->nbad_list] = st->index;
        l->bad_msg[l->nbad_list++] = sg_xstrdup(st->msg);
    }
}

static void set_error_if_needed(struct sg_loader *l, int epoch_end)
{
    if (l->err_bnum >= 0 || l->bad == 0) return;
    double frac = (double)l->bad / (double)l->seen;
    int over = l->seen >= MIN_SEEN && frac > l->cfg.max_bad_fraction;
    if (!over && !(epoch_end && l->bad == l->seen)) return;
    l->err_bnum = l->cur_bnum;
    snprintf(l->err_msg, sizeof(l->err_msg),
             "%lld of %lld samples unreadable (%.1f%% > %g%%): first: %s\n---> HINT: run "
             "`sogclip data verify` on the dataset, or raise max_bad_fraction",
             (long long)l->bad, (long long)l->seen, 100.0 * frac, 100.0 * l->cfg.max_bad_fraction,
             l->first_bad);
    pthread_cond_broadcast(&l->out);
}

static void maybe_ready(struct sg_loader *l, struct bslot *bs)
{
    if (!bs->closed || bs->pending > 0) return;
    bs->state = bs->discard ? B_FREE : B_READY;
    pthread_cond_broadcast(bs->discard ? &l->work : &l->out);
}

static void close_batch(struct sg_loader *l, struct bslot *bs)
{
    bs->closed = 1;
    bs->end_cursor = l->res;
    bs->seen_at_close = l->seen;
    bs->bad_at_close = l->bad;
    bs->b.n = bs->assigned;
    l->cur_slot = -1;
    l->cur_bnum++;
    maybe_ready(l, bs);
}

static void resolve(struct sg_loader *l)
{
    while (l->res < l->n && l->err_bnum < 0) {
        struct stage *st = &l->stages[l->res % l->R];
        if (st->state != ST_DONE || st->pos != l->res) break;
        if (!st->ok) {
            l->seen++;
            record_bad(l, st);
            st->state = ST_FREE;
            l->res++;
            set_error_if_needed(l, 0);
            pthread_cond_broadcast(&l->work);
            continue;
        }
        if (l->cur_slot < 0) {
            int k = (int)(l->cur_bnum % l->P);
            struct bslot *bs = &l->slots[k];
            if (bs->state != B_FREE) break; /* wait for the consumer to release it */
            bs->state = B_FILLING;
            bs->assigned = bs->pending = bs->closed = bs->discard = 0;
            bs->b.epoch = l->epoch;
            bs->b.step = l->cur_bnum;
            l->cur_slot = k;
        }
        struct bslot *bs = &l->slots[l->cur_slot];
        l->seen++;
        st->bslot = l->cur_slot;
        st->row = bs->assigned++;
        bs->pending++;
        st->state = ST_ASSIGNED;
        l->res++;
        set_error_if_needed(l, 0);
        pthread_cond_broadcast(&l->work);
        if (bs->assigned == l->B) close_batch(l, bs);
    }
    if (l->res == l->n && l->nbatches < 0 && l->err_bnum < 0) {
        int64_t full = l->cur_bnum;
        if (l->cur_slot >= 0) {
            struct bslot *bs = &l->slots[l->cur_slot];
            bs->discard = l->cfg.drop_last;
            close_batch(l, bs);
            if (!l->cfg.drop_last) full++;
        }
        set_error_if_needed(l, 1);
        l->nbatches = full;
        pthread_cond_broadcast(&l->out);
    }
}

/* ---- tasks (outside mu) ----------------------------------------------------------------- */

static void copy_caption(struct stage *st, const char *s)
{
    size_t n = strlen(s) + 1;
    if (n > st->caption_cap) {
        free(st->caption);
        st->caption_cap = n + 64;
        st->caption = sg_xmalloc(st->caption_cap);
    }
    memcpy(st->caption, s, n);
}

static void task_decode(struct worker *w, struct stage *st)
{
    struct sg_loader *l = w->l;
    struct sg_raw_sample *raw = &w->raw;
    struct sg_decode_opts o = {0, l->cfg.decode_min_side};
    int rc = sg_dataset_read(l->ds, st->index, raw);
    if (rc == 0) rc = sg_decode(w->dec, raw->img, raw->img_len, &o, &st->img);
    if (rc != 0) {
        char where[512];
        if (raw->where[0])
            snprintf(where, sizeof(where), "%s", raw->where);
        else
            sg_dataset_where(l->ds, st->index, where, sizeof(where));
        const char *e = sg_last_error();
        /* dataset errors usually start with the path already */
        if (strncmp(e, where, strlen(where)) == 0 || strstr(e, where))
            snprintf(st->msg, sizeof(st->msg), "%s", e);
        else
            snprintf(st->msg, sizeof(st->msg), "%s: %s", where, e);
        char *nl = strchr(st->msg, '\n'); /* keep the reason, drop hints */
        if (nl) *nl = 0;
        st->ok = 0;
        return;
    }
    st->ok = 1;
    sg_rng_seed(&st->rng, sg_loader_sample_seed(l->cfg.seed, l->epoch, st->index));
    uint32_t pick = sg_rng_u32(&st->rng);
    st->label = raw->label;
    st->cap_idx = -1;
    if (raw->ncaptions > 0) {
        st->cap_idx = (int32_t)(pick % (uint32_t)raw->ncaptions);
        copy_caption(st, raw->captions[st->cap_idx]);
    }
}

static void task_augment(struct worker *w, struct stage *st)
{
    struct sg_loader *l = w->l;
    struct sg_batch *b = &l->slots[st->bslot].b;
    int r = st->row;
    size_t view = (size_t)3 * l->S * l->S;
    if (l->cfg.u8) {
        uint8_t *dst = b->img_u8 + (size_t)r * l->V * view;
        for (int v = 0; v < l->V; v++)
            sg_augment_u8(&l->aug, &st->rng, &st->img, dst + v * view, w->scratch);
    } else {
        float *dst = b->img + (size_t)r * l->V * view;
        for (int v = 0; v < l->V; v++)
            sg_augment(&l->aug, &st->rng, &st->img, dst + v * view, w->scratch);
    }
    if (l->cfg.tok) {
        const char *text = st->cap_idx >= 0 ? st->caption : "";
        int rc = sg_tokenizer_encode(l->cfg.tok, text, b->ids + (size_t)r * l->T, l->T);
        SG_CHECK(rc >= 0, "tokenizer: %s", sg_last_error());
    }
    b->idx[r] = st->index;
    b->labels[r] = st->label;
    b->caption[r] = st->cap_idx;
}

static struct stage *find_assigned(struct sg_loader *l)
{
    struct stage *best = NULL;
    for (int i = 0; i < l->R; i++) {
        struct stage *st = &l->stages[i];
        if (st->state == ST_ASSIGNED && (!best || st->pos < best->pos)) best = st;
    }
    return best;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct sg_loader *l = w->l;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (!l->active) {
            pthread_cond_wait(&l->work, &l->mu);
            continue;
        }
        resolve(l);
        struct stage *st = find_assigned(l);
        if (st) {
            st->state = ST_AUGMENTING;
            l->busy++;
            pthread_mutex_unlock(&l->mu);
            task_augment(w, st);
            pthread_mutex_lock(&l->mu);
            l->busy--;
            struct bslot *bs = &l->slots[st->bslot];
            st->state = ST_FREE;
            bs->pending--;
            maybe_ready(l, bs);
            pthread_cond_broadcast(&l->work);
            if (l->busy == 0) pthread_cond_broadcast(&l->idle);
            continue;
        }
        if (l->err_bnum < 0 && l->disp < l->n && l->stages[l->disp % l->R].state == ST_FREE) {
            st = &l->stages[l->disp % l->R];
            st->state = ST_DECODING;
            st->pos = l->disp;
            st->index = l->perm[l->disp];
            l->disp++;
            l->busy++;
            pthread_mutex_unlock(&l->mu);
            task_decode(w, st);
            pthread_mutex_lock(&l->mu);
            l->busy--;
            st->state = ST_DONE;
            pthread_cond_broadcast(&l->work);
            if (l->busy == 0) pthread_cond_broadcast(&l->idle);
            continue;
        }
        pthread_cond_wait(&l->work, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- API -------------------------------------------------------------------------------- */

static int check_config(const struct sg_loader_config *c, const struct sg_dataset *ds)
{
    if (c->batch < 1) return sg_err("loader: batch must be >= 1 (got %d)", c->batch);
    if (c->views != 1 && c->views != 2)
        return sg_err("loader: views must be 1 or 2 (got %d)", c->views);
    if (!c->aug) return sg_err("loader: an augmentation config is required");
    if (c->aug->size < 1) return sg_err("loader: augmentation size %d", c->aug->size);
    if (c->tok && c->context_length < 2)
        return sg_err("loader: context_length must be >= 2 (got %d)", c->context_length);
    if (ds->n < 1) return sg_err("loader: the dataset is empty");
    if (c->shard_world > 1 && (c->shard_rank < 0 || c->shard_rank >= c->shard_world))
        return sg_err("loader: shard_rank %d outside [0, %d)", c->shard_rank, c->shard_world);
    if (c->shard_world > 1 && ds->n < (int64_t)c->batch * c->shard_world)
        return sg_err("loader: %lld samples do not fill one global batch of %d x %d",
                      (long long)ds->n, c->shard_world, c->batch);
    if (c->max_bad_fraction < 0 || c->max_bad_fraction > 1)
        return sg_err("loader: max_bad_fraction must be in [0, 1] (got %g)", c->max_bad_fraction);
    return 0;
}

static void alloc_batches(struct sg_loader *l)
{
    size_t B = (size_t)l->B;
    for (int k = 0; k < l->P; k++) {
        struct sg_batch *b = &l->slots[k].b;
        b->views = l->V;
        b->size = l->S;
        b->T = l->cfg.tok ? l->T : 0;
        size_t px = B * (size_t)l->V * 3 * (size_t)l->S * (size_t)l->S;
        b->img = l->cfg.u8 ? NULL : sg_xmalloc_aligned(sizeof(float) * px);
        b->img_u8 = l->cfg.u8 ? sg_xmalloc_aligned(px) : NULL;
        b->ids = l->cfg.tok ? sg_xmalloc(sizeof(int32_t) * B * (size_t)l->T) : NULL;
        b->idx = sg_xmalloc(sizeof(int64_t) * B);
        b->labels = sg_xmalloc(sizeof(int32_t) * B);
        b->caption = sg_xmalloc(sizeof(int32_t) * B);
    }
}

int sg_loader_open(const struct sg_loader_config *cfg, const struct sg_dataset *ds,
                   struct sg_loader **out)
{
    *out = NULL;
    if (check_config(cfg, ds) != 0) return -1;
    struct sg_loader *l = sg_xcalloc(1, sizeof(*l));
    l->cfg = *cfg;
    l->aug = *cfg->aug;
    l->cfg.aug = &l->aug;
    l->ds = ds;
    l->nfull = ds->n;
    l->n = ds->n;
    l->B = cfg->batch;
    if (cfg->shard_world > 1) /* whole global batches only, this rank's blocks */
        l->n = ds->n / ((int64_t)cfg->batch * cfg->shard_world) * cfg->batch;
    l->S = cfg->aug->size;
    l->T = cfg->context_length;
    l->V = cfg->views;
    l->W = SG_MAX(cfg->workers, 1);
    l->P = SG_MAX(cfg->prefetch_batches, 1) + 1;
    l->R = 4 * l->W;
    l->perm = sg_xmalloc(sizeof(int64_t) * (size_t)l->nfull);
    l->stages = sg_xcalloc((size_t)l->R, sizeof(struct stage));
    l->slots = sg_xcalloc((size_t)l->P, sizeof(struct bslot));
    alloc_batches(l);
    l->err_bnum = -1;
    l->nbatches = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->out, NULL);
    pthread_cond_init(&l->idle, NULL);
    l->workers = sg_xcalloc((size_t)l->W, sizeof(struct worker));
    for (int i = 0; i < l->W; i++) {
        struct worker *w = &l->workers[i];
        w->l = l;
        w->dec = sg_decoder_new();
        w->scratch = sg_aug_scratch_new();
        SG_CHECK(w->dec && w->scratch, "decoder / scratch allocation");
        int rc = pthread_create(&w->th, NULL, worker_main, w);
        SG_CHECK(rc == 0, "pthread_create failed (%d)", rc);
    }
    *out = l;
    return 0;
}

/* Stop taking tasks and wait for running ones (under mu). */
static void drain(struct sg_loader *l)
{
    l->active = 0;
    while (l->busy > 0) pthread_cond_wait(&l->idle, &l->mu);
}

/* Keep this rank's blocks of each global batch, in order, at the front of perm. */
static void shard_perm(struct sg_loader *l)
{
    int W = l->cfg.shard_world, r = l->cfg.shard_rank;
    if (W <= 1) return;
    int64_t k = 0, B = l->B;
    for (int64_t p = 0; p < l->n / B * W * B; p++)
        if ((p / B) % W == r) l->perm[k++] = l->perm[p];
}

static void reset_epoch(struct sg_loader *l, const struct sg_loader_pos *p)
{
    for (int k = 0; k < l->P; k++)
        SG_CHECK(l->slots[k].state != B_OUT, "release every batch before starting an epoch");
    drain(l);
    for (int64_t i = 0; i < l->nfull; i++) l->perm[i] = i;
    if (l->cfg.shuffle) {
        struct sg_rng r;
        sg_rng_seed(&r, epoch_seed(l->cfg.seed, p->epoch));
        sg_rng_shuffle(&r, l->perm, l->nfull);
    }
    shard_perm(l);
    for (int i = 0; i < l->R; i++) l->stages[i].state = ST_FREE;
    for (int k = 0; k < l->P; k++) l->slots[k].state = B_FREE;
    l->epoch = p->epoch;
    l->disp = l->res = p->cursor;
    l->cur_bnum = l->next_out = p->step;
    l->cur_slot = -1;
    l->nbatches = -1;
    l->err_bnum = -1;
    l->seen = p->seen;
    l->bad = p->bad;
    snprintf(l->first_bad, sizeof(l->first_bad), "%s",
             p->bad > 0 ? "(before the resumed position)" : "");
    l->pos = *p;
    l->active = 1;
    resolve(l);
    pthread_cond_broadcast(&l->work);
}

void sg_loader_start_epoch(struct sg_loader *l, int64_t epoch)
{
    struct sg_loader_pos p = {epoch, 0, 0, 0, 0};
    pthread_mutex_lock(&l->mu);
    reset_epoch(l, &p);
    pthread_mutex_unlock(&l->mu);
}

int sg_loader_seek(struct sg_loader *l, const struct sg_loader_pos *p)
{
    if (p->epoch < 0 || p->cursor < 0 || p->cursor > l->n || p->step < 0 || p->seen < 0 ||
        p->bad < 0 || p->bad > p->seen || p->seen > p->cursor)
        return sg_err("loader position (epoch %lld, cursor %lld, step %lld) does not fit a "
                      "dataset of %lld samples\n---> HINT: was the checkpoint made with "
                      "another dataset?",
                      (long long)p->epoch, (long long)p->cursor, (long long)p->step,
                      (long long)l->n);
    pthread_mutex_lock(&l->mu);
    reset_epoch(l, p);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int sg_loader_next(struct sg_loader *l, struct sg_batch **b)
{
    *b = NULL;
    pthread_mutex_lock(&l->mu);
    SG_CHECK(l->active || l->nbatches >= 0 || l->err_bnum >= 0,
             "call sg_loader_start_epoch or sg_loader_seek first");
    int rc;
    for (;;) {
        if (l->err_bnum >= 0 && l->next_out >= l->err_bnum) {
            rc = sg_err("%s", l->err_msg);
            break;
        }
        if (l->nbatches >= 0 && l->next_out >= l->nbatches) {
            rc = 0;
            break;
        }
        int held = 0;
        for (int k = 0; k < l->P; k++) held += l->slots[k].state == B_OUT;
        SG_CHECK(held < l->P,
                 "the consumer holds all %d batches: release one before "
                 "sg_loader_next",
                 l->P);
        struct bslot *bs = &l->slots[l->next_out % l->P];
        if (bs->state == B_READY && bs->b.step == l->next_out) {
            bs->state = B_OUT;
            l->next_out++;
            l->pos = (struct sg_loader_pos){l->epoch, bs->end_cursor, l->next_out,
                                            bs->seen_at_close, bs->bad_at_close};
            *b = &bs->b;
            rc = 1;
            break;
        }
        pthread_cond_wait(&l->out, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void sg_loader_release(struct sg_loader *l, struct sg_batch *b)
{
    if (!b) return;
    pthread_mutex_lock(&l->mu);
    struct bslot *bs = (struct bslot *)((char *)b - offsetof(struct bslot, b));
    SG_CHECK(bs >= l->slots && bs < l->slots + l->P && bs->state == B_OUT,
             "sg_loader_release: not a batch handed out by this loader");
    bs->state = B_FREE;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
}

void sg_loader_position(const struct sg_loader *l, struct sg_loader_pos *p)
{
    struct sg_loader *m = (struct sg_loader *)l; /* the mutex is not part of the value */
    pthread_mutex_lock(&m->mu);
    *p = l->pos;
    pthread_mutex_unlock(&m->mu);
}

void sg_loader_stats(const struct sg_loader *l, int64_t *seen, int64_t *bad)
{
    struct sg_loader *m = (struct sg_loader *)l;
    pthread_mutex_lock(&m->mu);
    if (seen) *seen = l->seen;
    if (bad) *bad = l->bad;
    pthread_mutex_unlock(&m->mu);
}

int sg_loader_bad_count(const struct sg_loader *l)
{
    struct sg_loader *m = (struct sg_loader *)l;
    pthread_mutex_lock(&m->mu);
    int n = l->nbad_list;
    pthread_mutex_unlock(&m->mu);
    return n;
}

const char *sg_loader_bad(const struct sg_loader *l, int i, int64_t *index)
{
    struct sg_loader *m = (struct sg_loader *)l;
    pthread_mutex_lock(&m->mu);
    SG_CHECK(i >= 0 && i < l->nbad_list, "bad entry %d of %d", i, l->nbad_list);
    const char *s = l->bad_msg[i];
    if (index) *index = l->bad_idx[i];
    pthread_mutex_unlock(&m->mu);
    return s;
}

void sg_loader_close(struct sg_loader *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->W; i++) {
        struct worker *w = &l->workers[i];
        pthread_join(w->th, NULL);
        sg_decoder_free(w->dec);
        sg_aug_scratch_free(w->scratch);
        sg_raw_sample_free(&w->raw);
    }
    for (int i = 0; i < l->R; i++) {
        sg_image_free(&l->stages[i].img);
        free(l->stages[i].caption);
    }
    for (int k = 0; k < l->P; k++) {
        struct sg_batch *b = &l->slots[k].b;
        sg_afree(b->img);
        sg_afree(b->img_u8);
        free(b->ids);
        free(b->idx);
        free(b->labels);
        free(b->caption);
    }
    for (int i = 0; i < l->nbad_list; i++) free(l->bad_msg[i]);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->out);
    pthread_cond_destroy(&l->idle);
    free(l->workers);
    free(l->slots);
    free(l->stages);
    free(l->perm);
    free(l);
}
