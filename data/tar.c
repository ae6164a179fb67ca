/*
 * data/tar.c — tar index (headers only), pread of member bytes, ustar writer. See data/tar.h.
 * Reference: POSIX.1-2017 pax/ustar "Interchange Format" (header layout, pax records), GNU tar
 * manual "Basic Tar Format" (L/K long names, base-256 numbers), Python tarfile.py (signed
 * checksums, accepting an archive without end blocks).
 */
#include "data/tar.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"

#define BLK           512
#define CACHE_BYTES   (64 * 1024)
#define MAX_META_SIZE (1 << 20) /* 'L' / 'x' payloads larger than this are refused */

/* Header field offsets and widths (ustar). */
enum {
    H_NAME = 0,
    H_SIZE = 124,
    H_CHKSUM = 148,
    H_TYPE = 156,
    H_MAGIC = 257,
    H_PREFIX = 345,
};

/* ---- reading with a small block cache (headers of small members are close together) ------- */

struct scan {
    int fd;
    const char *path;
    int64_t file_size;
    uint8_t *cache; /* (CACHE_BYTES) */
    int64_t cache_off, cache_len;
};

static int pread_full(int fd, void *buf, size_t n, int64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r == 0 ? 1 : -1; /* 1: short read (EOF) */
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* Copy n bytes at off into dst through the cache; off + n <= file_size is the caller's check. */
static int scan_read(struct scan *s, int64_t off, void *dst, int64_t n)
{
    if (n > CACHE_BYTES) {
        int r = pread_full(s->fd, dst, (size_t)n, off);
        if (r != 0)
            return sg_err("'%s': read of %lld bytes at offset %lld failed: %s", s->path,
                          (long long)n, (long long)off, r > 0 ? "file shrank" : strerror(errno));
        return 0;
    }
    if (off < s->cache_off || off + n > s->cache_off + s->cache_len) {
        int64_t len = SG_MIN((int64_t)CACHE_BYTES, s->file_size - off);
        int r = pread_full(s->fd, s->cache, (size_t)len, off);
        if (r != 0)
            return sg_err("'%s': read at offset %lld failed: %s", s->path, (long long)off,
                          r > 0 ? "file shrank" : strerror(errno));
        s->cache_off = off;
        s->cache_len = len;
    }
    memcpy(dst, s->cache + (off - s->cache_off), (size_t)n);
    return 0;
}

/* ---- header fields ---------------------------------------------------------------------- */

/* Octal (leading spaces, digits, then NUL/space padding) or GNU base-256. Returns 0 or -1. */
static int parse_number(const uint8_t *f, int width, int64_t *out)
{
    if (f[0] & 0x80) { /* base-256: 0x80 positive; 0xff (negative) is never valid here */
        if (f[0] != 0x80) return -1;
        uint64_t v = 0;
        for (int i = 1; i < width; i++) {
            if (v >> 55) return -1; /* would exceed 2^63 */
            v = (v << 8) | f[i];
        }
        *out = (int64_t)v;
        return 0;
    }
    int i = 0;
    while (i < width && f[i] == ' ') i++;
    uint64_t v = 0;
    int digits = 0;
    for (; i < width && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        if (v >> 60) return -1;
        v = v * 8 + (uint64_t)(f[i] - '0');
    }
    for (; i < width; i++)
        if (f[i] != ' ' && f[i] != 0) return -1;
    SG_UNUSED(digits); /* an all-NUL field reads as 0, as GNU tar does */
    *out = (int64_t)v;
    return 0;
}

static int checksum_ok(const uint8_t *h)
{
    int64_t want;
    if (parse_number(h + H_CHKSUM, 8, &want) != 0) return 0;
    int64_t us = 0, ss = 0;
    for (int i = 0; i < BLK; i++) {
        int in_field = i >= H_CHKSUM && i < H_CHKSUM + 8;
        us += in_field ? ' ' : h[i];
        ss += in_field ? ' ' : (signed char)h[i];
    }
    return want == us || want == ss;
}

static int all_zero(const uint8_t *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* NUL-terminated copy of a fixed-width, possibly unterminated field. */
static size_t field_str(const uint8_t *f, int width, char *dst)
{
    size_t n = strnlen((const char *)f, (size_t)width);
    memcpy(dst, f, n);
    dst[n] = 0;
    return n;
}

/* ---- pax extended headers ------------------------------------------------------------- */

/* Records "LEN key=value\n", LEN counting the whole record. Sets *path (malloc'd) and *size
 * (-1 when absent). Returns 0 or -1 (malformed). */
static int parse_pax(const char *p, int64_t n, char **path, int64_t *size)
{
    int64_t i = 0;
    while (i < n) {
        if (p[i] == 0) break; /* NUL padding after the records */
        int64_t len = 0, j = i;
        while (j < n && p[j] >= '0' && p[j] <= '9') {
            len = len * 10 + (p[j] - '0');
            if (len > n) return -1;
            j++;
        }
        if (j == i || j >= n || p[j] != ' ' || len <= j - i + 1 || i + len > n) return -1;
        if (p[i + len - 1] != '\n') return -1;
        const char *kv = p + j + 1, *end = p + i + len - 1;
        const char *eq = memchr(kv, '=', (size_t)(end - kv));
        if (!eq) return -1;
        size_t klen = (size_t)(eq - kv), vlen = (size_t)(end - eq - 1);
        if (klen == 4 && memcmp(kv, "path", 4) == 0) {
            free(*path);
            *path = sg_xmalloc(vlen + 1);
            memcpy(*path, eq + 1, vlen);
            (*path)[vlen] = 0;
        } else if (klen == 4 && memcmp(kv, "size", 4) == 0) {
            int64_t v = 0;
            if (vlen == 0 || vlen > 18) return -1;
            for (size_t k = 0; k < vlen; k++) {
                char c = eq[1 + k];
                if (c < '0' || c > '9') return -1;
                v = v * 10 + (c - '0');
            }
            *size = v;
        }
        i += len;
    }
    return 0;
}

/* ---- index ---------------------------------------------------------------------------- */

static void add_member(struct sg_tar *t, int64_t *cap, char *name, int64_t off, int64_t size)
{
    if (t->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        t->members = sg_xrealloc(t->members, sizeof(*t->members) * (size_t)*cap);
    }
    t->members[t->n++] = (struct sg_tar_member){name, off, size};
}

/* Read a metadata payload ('L' or 'x') of `size` bytes at off into a malloc'd NUL-terminated
 * buffer. */
static int read_meta(struct scan *s, int64_t off, int64_t size, char **out)
{
    if (size > MAX_META_SIZE)
        return sg_err("'%s': extended header at offset %lld is %lld bytes (limit %d)", s->path,
                      (long long)(off - BLK), (long long)size, MAX_META_SIZE);
    char *buf = sg_xmalloc((size_t)size + 1);
    if (scan_read(s, off, buf, size) != 0) {
        free(buf);
        return -1;
    }
    buf[size] = 0;
    *out = buf;
    return 0;
}

static int has_payload(char type)
{
    /* hard/soft links, char/block devices and FIFOs carry no data whatever their size field. */
    return !(type == '1' || type == '2' || type == '3' || type == '4' || type == '6');
}

static int scan_archive(struct scan *s, struct sg_tar *t)
{
    uint8_t h[BLK];
    int64_t off = 0, cap = 0;
    char *long_name = NULL, *pax_path = NULL;
    int64_t pax_size = -1;
    int rc = -1;
    const char *P = s->path;
    while (off < s->file_size) {
        int64_t left = s->file_size - off;
        if (left < BLK) {
            uint8_t tail[BLK];
            if (scan_read(s, off, tail, left) != 0) goto out;
            if (all_zero(tail, left)) break; /* cut inside the end-of-archive blocks */
            sg_err("'%s': truncated tar header at offset %lld (%lld of 512 bytes)\n---> HINT: "
                   "the file is cut short; re-copy or re-create the shard",
                   P, (long long)off, (long long)left);
            goto out;
        }
        if (scan_read(s, off, h, BLK) != 0) goto out;
        if (all_zero(h, BLK)) break; /* end of archive */
        if (!checksum_ok(h)) {
            sg_err("'%s': bad tar header checksum at offset %lld\n---> HINT: the file is "
                   "corrupt or not a tar archive",
                   P, (long long)off);
            goto out;
        }
        int64_t size;
        if (parse_number(h + H_SIZE, 12, &size) != 0) {
            sg_err("'%s': malformed size field in the tar header at offset %lld", P,
                   (long long)off);
            goto out;
        }
        char type = (char)h[H_TYPE];
        if (pax_size >= 0 && (type == '0' || type == 0 || type == '7')) size = pax_size;
        int64_t data = off + BLK;
        int64_t psize = has_payload(type) ? size : 0;
        if (psize > s->file_size - data) {
            sg_err("'%s': tar member at offset %lld has size %lld, past the end of the file "
                   "(%lld bytes)\n---> HINT: the file is truncated or corrupt",
                   P, (long long)off, (long long)psize, (long long)s->file_size);
            goto out;
        }
        if (type == 'L' || type == 'x') {
            char *meta = NULL;
            if (read_meta(s, data, psize, &meta) != 0) goto out;
            if (type == 'L') {
                free(long_name);
                long_name = meta;
            } else {
                int bad = parse_pax(meta, psize, &pax_path, &pax_size);
                free(meta);
                if (bad) {
                    sg_err("'%s': malformed pax extended header at offset %lld", P, (long long)off);
                    goto out;
                }
            }
        } else if (type == '0' || type == 0 || type == '7') {
            char *name;
            if (pax_path) {
                name = pax_path;
                pax_path = NULL;
            } else if (long_name) {
                name = long_name;
                long_name = NULL;
            } else {
                char buf[100 + 155 + 2];
                size_t k = 0;
                if (memcmp(h + H_MAGIC, "ustar\0", 6) == 0 && h[H_PREFIX]) {
                    k = field_str(h + H_PREFIX, 155, buf);
                    buf[k++] = '/';
                }
                field_str(h + H_NAME, 100, buf + k);
                name = sg_xstrdup(buf);
            }
            add_member(t, &cap, name, data, psize);
            free(long_name);
            long_name = NULL;
            pax_size = -1;
        } else if (type != 'g' && type != 'K') {
            /* directory, link, device, unknown: skipped; a pending long name/pax applies to it */
            free(long_name);
            free(pax_path);
            long_name = pax_path = NULL;
            pax_size = -1;
        }
        off = data + (psize + BLK - 1) / BLK * BLK;
    }
    rc = 0;
out:
    free(long_name);
    free(pax_path);
    return rc;
}

int sg_tar_open(const char *path, int keep_open, struct sg_tar **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sg_err("cannot open '%s': %s\n---> HINT: check the shard list / path", path,
                      strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sg_err("'%s' is not a regular file", path);
    }
    struct sg_tar *t = sg_xcalloc(1, sizeof(*t));
    t->path = sg_xstrdup(path);
    t->fd = -1;
    t->file_size = st.st_size;
    struct scan s = {fd, path, st.st_size, sg_xmalloc(CACHE_BYTES), 0, 0};
    int rc = scan_archive(&s, t);
    free(s.cache);
    if (rc != 0) {
        close(fd);
        sg_tar_close(t);
        return -1;
    }
    if (keep_open)
        t->fd = fd;
    else
        close(fd);
    *out = t;
    return 0;
}

void sg_tar_close(struct sg_tar *t)
{
    if (!t) return;
    if (t->fd >= 0) close(t->fd);
    for (int64_t i = 0; i < t->n; i++) free(t->members[i].name);
    free(t->members);
    free(t->path);
    free(t);
}

int sg_tar_pread(const struct sg_tar *t, int64_t offset, int64_t size, void *buf)
{
    if (offset < 0 || size < 0 || offset > t->file_size - size)
        return sg_err("'%s': read of %lld bytes at %lld is outside the archive", t->path,
                      (long long)size, (long long)offset);
    int fd = t->fd;
    if (fd < 0) {
        fd = open(t->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return sg_err("cannot open '%s': %s", t->path, strerror(errno));
    }
    int r = pread_full(fd, buf, (size_t)size, offset);
    int e = errno;
    if (t->fd < 0) close(fd);
    if (r != 0)
        return sg_err("'%s': read of %lld bytes at offset %lld failed: %s", t->path,
                      (long long)size, (long long)offset,
                      r > 0 ? "file shrank since it was indexed" : strerror(e));
    return 0;
}

int sg_tar_read(const struct sg_tar *t, int64_t i, void *buf)
{
    SG_CHECK(i >= 0 && i < t->n, "member %lld of %lld", (long long)i, (long long)t->n);
    return sg_tar_pread(t, t->members[i].offset, t->members[i].size, buf);
}

/* ---- writer ---------------------------------------------------------------------------- */

struct sg_tar_writer {
    char *path, *tmp;
    FILE *f;
};

struct sg_tar_writer *sg_tar_writer_open(const char *path)
{
    size_t n = strlen(path) + 8;
    char *tmp = sg_xmalloc(n);
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        sg_err("cannot create '%s': %s\n---> HINT: check that the directory exists and is "
               "writable",
               tmp, strerror(errno));
        free(tmp);
        return NULL;
    }
    struct sg_tar_writer *w = sg_xcalloc(1, sizeof(*w));
    w->path = sg_xstrdup(path);
    w->tmp = tmp;
    w->f = f;
    return w;
}

static void put_octal(uint8_t *f, int width, uint64_t v)
{
    /* width-1 octal digits, zero-padded, then NUL */
    for (int i = width - 2; i >= 0; i--) {
        f[i] = (uint8_t)('0' + (v & 7));
        v >>= 3;
    }
    f[width - 1] = 0;
}

static int write_header(struct sg_tar_writer *w, const char *name, size_t nlen, uint64_t size,
                        char type)
{
    uint8_t h[BLK] = {0};
    memcpy(h + H_NAME, name, SG_MIN(nlen, (size_t)100));
    put_octal(h + 100, 8, 0644);
    put_octal(h + 108, 8, 0);
    put_octal(h + 116, 8, 0);
    if (size < (1ull << 33)) {
        put_octal(h + H_SIZE, 12, size);
    } else { /* GNU base-256 */
        h[H_SIZE] = 0x80;
        for (int i = 11; i >= 1; i--, size >>= 8) h[H_SIZE + i] = (uint8_t)(size & 0xff);
    }
    put_octal(h + 136, 12, 0);
    h[H_TYPE] = (uint8_t)type;
    static const char ustar[8] = {'u', 's', 't', 'a', 'r', 0, '0', '0'};
    memcpy(h + H_MAGIC, ustar, 8);
    memset(h + H_CHKSUM, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < BLK; i++) sum += h[i];
    put_octal(h + H_CHKSUM, 7, sum); /* 6 digits + NUL, then the space left from memset */
    return sg_fwrite_all(w->f, h, BLK, w->tmp);
}

static int write_padded(struct sg_tar_writer *w, const void *data, size_t len)
{
    static const uint8_t zeros[BLK];
    if (len && sg_fwrite_all(w->f, data, len, w->tmp) != 0) return -1;
    size_t pad = (BLK - len % BLK) % BLK;
    return pad ? sg_fwrite_all(w->f, zeros, pad, w->tmp) : 0;
}

int sg_tar_writer_add(struct sg_tar_writer *w, const char *name, const void *data, size_t len)
{
    size_t nlen = strlen(name);
    if (nlen == 0) return sg_err("tar member name is empty");
    if (nlen > 100) {
        if (write_header(w, "././@LongLink", 13, nlen + 1, 'L') != 0) return -1;
        if (write_padded(w, name, nlen + 1) != 0) return -1;
    }
    if (write_header(w, name, nlen, len, '0') != 0) return -1;
    return write_padded(w, data, len);
}

int sg_tar_writer_finish(struct sg_tar_writer *w)
{
    static const uint8_t zeros[2 * BLK];
    int rc = sg_fwrite_all(w->f, zeros, sizeof(zeros), w->tmp);
    if (rc == 0 && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0))
        rc = sg_err("writing '%s' failed: %s\n---> HINT: is the disk full?", w->tmp,
                    strerror(errno));
    if (fclose(w->f) != 0 && rc == 0)
        rc = sg_err("closing '%s' failed: %s", w->tmp, strerror(errno));
    w->f = NULL;
    if (rc == 0 && rename(w->tmp, w->path) != 0)
        rc = sg_err("renaming '%s' to '%s' failed: %s", w->tmp, w->path, strerror(errno));
    if (rc != 0) unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w);
    return rc;
}

void sg_tar_writer_abort(struct sg_tar_writer *w)
{
    if (!w) return;
    if (w->f) fclose(w->f);
    unlink(w->tmp);
    free(w->path);
    free(w->tmp);
    free(w);
}
