/*
 * train/tfevents.c — TensorBoard event-file writer and verifying reader (see tfevents.h).
 * References: tensorboard/summary/writer/record_writer.py (framing, masked CRC-32C),
 * tensorboard/compat/proto/{event,summary}.proto (field numbers and wire types), torch
 * SummaryWriter(purge_step) (the file_version + SessionLog START pair on resume).
 */
#include "train/tfevents.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

/* ---- CRC-32C ---------------------------------------------------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t sg_crc32c_update(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_table_init);
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

uint32_t sg_crc32c_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

uint32_t sg_crc32c_unmask(uint32_t masked)
{
    uint32_t rot = masked - 0xa282ead8u;
    return (rot >> 17) | (rot << 15);
}

double sg_tfevents_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- protobuf encoding ------------------------------------------------------------------ */

struct pbuf {
    uint8_t *b;
    size_t len, cap;
};

static void pb_reserve(struct pbuf *p, size_t extra)
{
    if (p->len + extra <= p->cap) return;
    p->cap = SG_MAX(2 * p->cap, p->len + extra + 64);
    p->b = sg_xrealloc(p->b, p->cap);
}

static void put_u8(struct pbuf *p, uint8_t v)
{
    pb_reserve(p, 1);
    p->b[p->len++] = v;
}

static void put_le(struct pbuf *p, uint64_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++) put_u8(p, (uint8_t)(v >> (8 * i)));
}

static void put_varint(struct pbuf *p, uint64_t v)
{
    while (v >= 0x80) {
        put_u8(p, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_u8(p, (uint8_t)v);
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static void put_bytes(struct pbuf *p, const void *src, size_t n)
{
    pb_reserve(p, n);
    memcpy(p->b + p->len, src, n);
    p->len += n;
}

/* Event fields 1 (wall_time, fixed64) and 2 (step, varint). */
static void put_event_head(struct pbuf *p, double wall_time, int64_t step)
{
    uint64_t bits;
    memcpy(&bits, &wall_time, 8);
    put_u8(p, 0x09);
    put_le(p, bits, 8);
    put_u8(p, 0x10);
    put_varint(p, (uint64_t)step);
}

/* ---- writer ----------------------------------------------------------------------------- */

struct sg_tfevents {
    FILE *f;
    char *path;
    int failed;
    struct pbuf ev; /* one Event payload */
};

static int tfe_fail(struct sg_tfevents *h)
{
    h->failed = 1;
    return sg_err("writing TensorBoard events '%s' failed: %s\n---> HINT: is the disk full? "
                  "TensorBoard logging can be switched off in the config",
                  h->path, strerror(errno));
}

/* Frames h->ev as one TFRecord and hands it to stdio. */
static int write_record(struct sg_tfevents *h)
{
    if (h->failed) return sg_err("TensorBoard events '%s': an earlier write failed", h->path);
    uint8_t head[12], tail[4];
    uint64_t n = h->ev.len;
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)(n >> (8 * i));
    uint32_t c = sg_crc32c_mask(sg_crc32c(head, 8));
    for (int i = 0; i < 4; i++) head[8 + i] = (uint8_t)(c >> (8 * i));
    c = sg_crc32c_mask(sg_crc32c(h->ev.b, h->ev.len));
    for (int i = 0; i < 4; i++) tail[i] = (uint8_t)(c >> (8 * i));
    if (fwrite(head, 1, 12, h->f) != 12 || fwrite(h->ev.b, 1, h->ev.len, h->f) != h->ev.len ||
        fwrite(tail, 1, 4, h->f) != 4)
        return tfe_fail(h);
    return 0;
}

static int write_version(struct sg_tfevents *h)
{
    static const char version[] = "brain.Event:2";
    h->ev.len = 0;
    put_event_head(&h->ev, sg_tfevents_now(), 0);
    put_u8(&h->ev, 0x1a);
    put_varint(&h->ev, sizeof version - 1);
    put_bytes(&h->ev, version, sizeof version - 1);
    if (write_record(h) != 0 || sg_tfevents_flush(h) != 0) return -1;
    return 0;
}

/* Takes ownership of fd and path. */
static struct sg_tfevents *tfe_from_fd(int fd, char *path)
{
    struct sg_tfevents *h = sg_xcalloc(1, sizeof *h);
    h->path = path;
    h->f = fdopen(fd, "wb");
    if (!h->f) {
        sg_err("cannot open '%s' for writing: %s", path, strerror(errno));
        close(fd);
        sg_tfevents_close(h);
        return NULL;
    }
    if (write_version(h) != 0) {
        sg_tfevents_close(h);
        return NULL;
    }
    return h;
}

static int open_failed(const char *path)
{
    return sg_err("cannot create TensorBoard event file '%s': %s\n---> HINT: check that the run "
                  "folder exists and is writable",
                  path, strerror(errno));
}

struct sg_tfevents *sg_tfevents_open_path(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        open_failed(path);
        return NULL;
    }
    return tfe_from_fd(fd, sg_xstrdup(path));
}

static void host_name(char *host, size_t cap)
{
    if (gethostname(host, cap) != 0 || !host[0]) snprintf(host, cap, "localhost");
    host[cap - 1] = 0;
    for (char *c = host; *c; c++)
        if (*c == '/') *c = '_';
}

struct sg_tfevents *sg_tfevents_open(const char *dir)
{
    char host[256];
    host_name(host, sizeof host);
    size_t cap = strlen(dir) + strlen(host) + 96;
    char *path = sg_xmalloc(cap);
    long long t = (long long)time(NULL);
    /* TF's pattern; a name already taken (two writers in one second) gets .<pid>.<n>. */
    for (int n = 0; n < 100; n++) {
        int w = snprintf(path, cap, "%s/events.out.tfevents.%010lld.%s", dir, t, host);
        if (n > 0) snprintf(path + w, cap - (size_t)w, ".%ld.%d", (long)getpid(), n);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) return tfe_from_fd(fd, path);
        if (errno != EEXIST) break;
    }
    open_failed(path);
    free(path);
    return NULL;
}

const char *sg_tfevents_path(const struct sg_tfevents *h)
{
    return h->path;
}

int sg_tfevents_scalar(struct sg_tfevents *h, const char *tag, int64_t step, float value,
                       double wall_time)
{
    size_t tl = strlen(tag);
    if (tl == 0 || tl > 4096) return sg_err("TensorBoard tag of length %zu (want 1..4096)", tl);
    size_t value_len = 1 + varint_len(tl) + tl + 5;
    size_t summary_len = 1 + varint_len(value_len) + value_len;
    uint32_t bits;
    memcpy(&bits, &value, 4);
    h->ev.len = 0;
    put_event_head(&h->ev, wall_time > 0 ? wall_time : sg_tfevents_now(), step);
    put_u8(&h->ev, 0x2a); /* Event.summary */
    put_varint(&h->ev, summary_len);
    put_u8(&h->ev, 0x0a); /* Summary.value */
    put_varint(&h->ev, value_len);
    put_u8(&h->ev, 0x0a); /* Value.tag */
    put_varint(&h->ev, tl);
    put_bytes(&h->ev, tag, tl);
    put_u8(&h->ev, 0x15); /* Value.simple_value, fixed32 */
    put_le(&h->ev, bits, 4);
    return write_record(h);
}

int sg_tfevents_session_start(struct sg_tfevents *h, int64_t step, double wall_time)
{
    h->ev.len = 0;
    put_event_head(&h->ev, wall_time > 0 ? wall_time : sg_tfevents_now(), step);
    put_u8(&h->ev, 0x3a); /* Event.session_log = 7 (6 is the deprecated log_message) */
    put_u8(&h->ev, 2);
    put_u8(&h->ev, 0x08); /* SessionLog.status = START */
    put_u8(&h->ev, 1);
    return write_record(h);
}

int sg_tfevents_flush(struct sg_tfevents *h)
{
    if (h->failed) return sg_err("TensorBoard events '%s': an earlier write failed", h->path);
    if (fflush(h->f) != 0) return tfe_fail(h);
    return 0;
}

int sg_tfevents_close(struct sg_tfevents *h)
{
    if (!h) return 0;
    int rc = 0;
    if (h->f) {
        if (!h->failed && fflush(h->f) != 0) rc = tfe_fail(h);
        if (fclose(h->f) != 0 && rc == 0 && !h->failed) rc = tfe_fail(h);
    }
    free(h->ev.b);
    free(h->path);
    free(h);
    return rc;
}

/* ---- protobuf decoding ------------------------------------------------------------------ */

struct pb {
    const uint8_t *p, *e;
};

static int pb_varint(struct pb *b, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->e) return -1;
        uint8_t c = *b->p++;
        *v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) return 0;
    }
    return -1;
}

static int pb_fixed(struct pb *b, int nbytes, uint64_t *v)
{
    if (b->e - b->p < nbytes) return -1;
    *v = 0;
    for (int i = 0; i < nbytes; i++) *v |= (uint64_t)b->p[i] << (8 * i);
    b->p += nbytes;
    return 0;
}

/* A length-delimited field: *sub spans its bytes. */
static int pb_sub(struct pb *b, struct pb *sub)
{
    uint64_t n;
    if (pb_varint(b, &n) != 0 || n > (uint64_t)(b->e - b->p)) return -1;
    sub->p = b->p;
    sub->e = b->p + n;
    b->p += n;
    return 0;
}

/* Reads a key; *field, *wire. */
static int pb_key(struct pb *b, uint32_t *field, int *wire)
{
    uint64_t k;
    if (pb_varint(b, &k) != 0 || (k >> 3) == 0 || (k >> 3) > 0x1FFFFFFF) return -1;
    *field = (uint32_t)(k >> 3);
    *wire = (int)(k & 7);
    return 0;
}

static int pb_skip(struct pb *b, int wire)
{
    uint64_t v;
    struct pb sub;
    switch (wire) {
    case 0:
        return pb_varint(b, &v);
    case 1:
        return pb_fixed(b, 8, &v);
    case 2:
        return pb_sub(b, &sub);
    case 5:
        return pb_fixed(b, 4, &v);
    default:
        return -1; /* groups (3, 4) are not used by these messages */
    }
}

/* ---- reader ----------------------------------------------------------------------------- */

struct reader {
    const char *path;
    sg_tfevents_cb cb;
    void *user;
    struct sg_tfevent ev;
    char *str; /* NUL-terminated copy of the current tag / version */
    size_t str_cap;
    int emitted;
    int stop; /* the callback's non-zero return value */
};

static const char *copy_str(struct reader *r, struct pb s)
{
    size_t n = (size_t)(s.e - s.p);
    if (n + 1 > r->str_cap) {
        r->str_cap = n + 64;
        r->str = sg_xrealloc(r->str, r->str_cap);
    }
    memcpy(r->str, s.p, n);
    r->str[n] = 0;
    return r->str;
}

static int emit(struct reader *r, enum sg_tfevent_kind kind)
{
    r->ev.kind = kind;
    r->emitted = 1;
    r->stop = r->cb ? r->cb(r->user, &r->ev) : 0;
    return r->stop != 0; /* 1: stop */
}

/* The parsers return 0, -1 (malformed protobuf) or 1 (the callback asked to stop). */

/* Summary.Value: calls back for a simple_value. */
static int parse_value(struct reader *r, struct pb v)
{
    struct pb tag = {0, 0};
    int has_simple = 0;
    while (v.p < v.e) {
        uint32_t field;
        int wire;
        uint64_t bits;
        if (pb_key(&v, &field, &wire) != 0) return -1;
        if (field == 1 && wire == 2) {
            if (pb_sub(&v, &tag) != 0) return -1;
        } else if (field == 2 && wire == 5) {
            if (pb_fixed(&v, 4, &bits) != 0) return -1;
            uint32_t b32 = (uint32_t)bits;
            memcpy(&r->ev.value, &b32, 4);
            has_simple = 1;
        } else if (pb_skip(&v, wire) != 0) {
            return -1;
        }
    }
    if (!has_simple) return 0;
    r->ev.tag = tag.p ? copy_str(r, tag) : "";
    int rc = emit(r, SG_TFEVENT_SCALAR);
    r->ev.tag = NULL;
    return rc;
}

static int parse_summary(struct reader *r, struct pb s)
{
    while (s.p < s.e) {
        uint32_t field;
        int wire;
        struct pb v;
        if (pb_key(&s, &field, &wire) != 0) return -1;
        if (field == 1 && wire == 2) {
            if (pb_sub(&s, &v) != 0) return -1;
            int rc = parse_value(r, v);
            if (rc != 0) return rc;
        } else if (pb_skip(&s, wire) != 0) {
            return -1;
        }
    }
    return 0;
}

static int session_is_start(struct pb s, int *start)
{
    *start = 0;
    while (s.p < s.e) {
        uint32_t field;
        int wire;
        uint64_t v;
        if (pb_key(&s, &field, &wire) != 0) return -1;
        if (field == 1 && wire == 0) {
            if (pb_varint(&s, &v) != 0) return -1;
            *start = v == 1;
        } else if (pb_skip(&s, wire) != 0) {
            return -1;
        }
    }
    return 0;
}

struct event_fields {
    struct pb version, summary, session;
};

/* Top-level Event fields; sets wall_time and step in r->ev. */
static int parse_event_fields(struct reader *r, struct pb b, struct event_fields *f)
{
    memset(f, 0, sizeof *f);
    while (b.p < b.e) {
        uint32_t field;
        int wire;
        uint64_t v;
        if (pb_key(&b, &field, &wire) != 0) return -1;
        if (field == 1 && wire == 1) {
            if (pb_fixed(&b, 8, &v) != 0) return -1;
            memcpy(&r->ev.wall_time, &v, 8);
        } else if (field == 2 && wire == 0) {
            if (pb_varint(&b, &v) != 0) return -1;
            r->ev.step = (int64_t)v;
        } else if ((field == 3 || field == 5 || field == 7) && wire == 2) {
            struct pb *dst = field == 3 ? &f->version : field == 5 ? &f->summary : &f->session;
            if (pb_sub(&b, dst) != 0) return -1;
        } else if (pb_skip(&b, wire) != 0) {
            return -1;
        }
    }
    return 0;
}

/* One Event payload. */
static int parse_event(struct reader *r, const uint8_t *data, size_t n)
{
    struct event_fields f;
    r->ev.wall_time = 0;
    r->ev.step = 0;
    r->emitted = 0;
    if (parse_event_fields(r, (struct pb){data, data + n}, &f) != 0) return -1;
    int rc = 0, start = 0;
    if (f.version.p) {
        r->ev.text = copy_str(r, f.version);
        rc = emit(r, SG_TFEVENT_VERSION);
        r->ev.text = NULL;
    }
    if (rc == 0 && f.summary.p) rc = parse_summary(r, f.summary);
    if (rc == 0 && f.session.p) {
        if (session_is_start(f.session, &start) != 0) return -1;
        if (start) rc = emit(r, SG_TFEVENT_SESSION_START);
    }
    if (rc == 0 && !r->emitted) rc = emit(r, SG_TFEVENT_OTHER);
    return rc;
}

static int read_fail(struct reader *r, const char *what)
{
    return sg_err("TensorBoard events '%s': record %lld at byte offset %lld: %s\n---> HINT: the "
                  "file is damaged (or not an event file); TensorBoard ignores a truncated last "
                  "record",
                  r->path, (long long)r->ev.record, (long long)r->ev.offset, what);
}

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Reads and checks one framed record at r->ev.offset into *buf. 1: got one, 0: clean EOF. */
static int read_record(struct reader *r, FILE *f, int64_t file_size, uint8_t **buf, size_t *cap,
                       uint64_t *len)
{
    uint8_t head[12], tail[4];
    int64_t left = file_size - r->ev.offset;
    if (left == 0) return 0;
    if (left < 12 || fread(head, 1, 12, f) != 12) return read_fail(r, "truncated length header");
    uint64_t n = (uint64_t)le32(head) | (uint64_t)le32(head + 4) << 32;
    if (sg_crc32c_mask(sg_crc32c(head, 8)) != le32(head + 8))
        return read_fail(r, "length CRC mismatch");
    if (left < 16 || n > (uint64_t)(left - 16))
        return read_fail(r, "truncated record (length past end)");
    if (n + 1 > *cap) {
        *cap = (size_t)n + 1;
        *buf = sg_xrealloc(*buf, *cap);
    }
    if (fread(*buf, 1, (size_t)n, f) != n || fread(tail, 1, 4, f) != 4)
        return read_fail(r, "short read");
    if (sg_crc32c_mask(sg_crc32c(*buf, (size_t)n)) != le32(tail))
        return read_fail(r, "payload CRC mismatch");
    *len = n;
    return 1;
}

static int read_all(struct reader *r, FILE *f, int64_t file_size, int64_t *records)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint64_t n = 0;
    int rc;
    for (;;) {
        rc = read_record(r, f, file_size, &buf, &cap, &n);
        if (rc <= 0) break;
        rc = parse_event(r, buf, (size_t)n);
        if (rc == -1) rc = read_fail(r, "malformed Event protobuf");
        if (rc == 1) rc = r->stop;
        if (rc != 0) break;
        r->ev.record++;
        r->ev.offset += (int64_t)n + 16;
    }
    if (records) *records = r->ev.record;
    free(buf);
    return rc;
}

int sg_tfevents_read(const char *path, sg_tfevents_cb cb, void *user, int64_t *records)
{
    if (records) *records = 0;
    FILE *f = sg_fopen(path, "rb");
    if (!f) return -1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return sg_err("cannot stat '%s': %s", path, strerror(errno));
    }
    struct reader r = {.path = path, .cb = cb, .user = user};
    int rc = read_all(&r, f, (int64_t)st.st_size, records);
    free(r.str);
    fclose(f);
    return rc;
}
