/* core/common.c — see common.h. */
#define _GNU_SOURCE
#include "core/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>

static _Thread_local char sg_errbuf[2048];

void sg_panic_at(const char *file, int line, const char *func, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "sogclip: fatal: %s:%d (%s): ", file, line, func);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

void sg_check_failed(const char *file, int line, const char *func, const char *cond,
                     const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "sogclip: fatal: %s:%d (%s): check failed: %s — ", file, line, func, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

int sg_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sg_errbuf, sizeof sg_errbuf, fmt, ap);
    va_end(ap);
    return -1;
}

int sg_err_prefix(const char *fmt, ...)
{
    char pre[512], old[sizeof sg_errbuf - sizeof pre];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, sg_errbuf, sizeof old - 1);
    old[sizeof old - 1] = 0;
    size_t np = strlen(pre);
    memcpy(sg_errbuf, pre, np);
    memcpy(sg_errbuf + np, old, strlen(old) + 1);
    return -1;
}

const char *sg_last_error(void)
{
    return sg_errbuf[0] ? sg_errbuf : "(no error recorded)";
}
void sg_clear_error(void)
{
    sg_errbuf[0] = 0;
}

#define OOM_HINT "---> HINT: reduce the batch size or model size, or free memory on this machine"

void *sg_xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) SG_PANIC("out of memory allocating %zu bytes\n" OOM_HINT, bytes);
    return p;
}

void *sg_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) SG_PANIC("out of memory allocating %zu x %zu bytes\n" OOM_HINT, n, size);
    return p;
}

void *sg_xrealloc(void *p, size_t bytes)
{
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) SG_PANIC("out of memory reallocating to %zu bytes\n" OOM_HINT, bytes);
    return q;
}

char *sg_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sg_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

void *sg_xmalloc_aligned(size_t bytes)
{
    void *p = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0)
        SG_PANIC("out of memory allocating %zu aligned bytes\n" OOM_HINT, bytes);
    return p;
}

void sg_afree(void *p)
{
    free(p);
}

FILE *sg_fopen(const char *path, const char *mode)
{
    FILE *f = fopen(path, mode);
    if (!f)
        sg_err("cannot open '%s' (mode %s): %s\n---> HINT: check the path and its permissions",
               path, mode, strerror(errno));
    return f;
}

int sg_fread_exact(FILE *f, void *dst, size_t bytes, const char *path)
{
    size_t got = fread(dst, 1, bytes, f);
    if (got != bytes)
        return sg_err("'%s': expected %zu bytes, read %zu (%s)\n---> HINT: the file is truncated "
                      "or corrupt; regenerate it",
                      path, bytes, got, ferror(f) ? strerror(errno) : "end of file");
    return 0;
}

int sg_fwrite_all(FILE *f, const void *src, size_t bytes, const char *path)
{
    if (fwrite(src, 1, bytes, f) != bytes)
        return sg_err("'%s': write of %zu bytes failed: %s\n---> HINT: is the disk full?", path,
                      bytes, strerror(errno));
    return 0;
}

int sg_read_file(const char *path, char **out, size_t *out_len)
{
    FILE *f = sg_fopen(path, "rb");
    if (!f) return -1;
    if (fseek(f, 0, SEEK_END) != 0) goto fail_close;
    long len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) goto fail_close;
    char *buf = sg_xmalloc((size_t)len + 1);
    if (sg_fread_exact(f, buf, (size_t)len, path) != 0) {
        free(buf);
        fclose(f);
        return -1;
    }
    buf[len] = 0;
    fclose(f);
    *out = buf;
    if (out_len) *out_len = (size_t)len;
    return 0;
fail_close:
    fclose(f);
    return sg_err("'%s': cannot determine its size: %s", path, strerror(errno));
}

int sg_mkdir_p(const char *dir)
{
    char *p = sg_xstrdup(dir);
    int rc = 0;
    for (char *c = p + 1; rc == 0; c++) {
        char save = *c;
        if (save != '/' && save != 0) continue;
        *c = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            rc = sg_err("cannot create folder '%s': %s\n---> HINT: check the path and its "
                        "permissions",
                        p, strerror(errno));
        *c = save;
        if (!save) break;
    }
    free(p);
    struct stat st;
    if (rc == 0 && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = sg_err("'%s' exists and is not a folder\n---> HINT: choose another path", dir);
    return rc;
}

int sg_write_file_atomic(const char *path, const void *data, size_t len)
{
    size_t n = strlen(path) + 16;
    char *tmp = sg_xmalloc(n);
    snprintf(tmp, n, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        sg_err("cannot create '%s': %s\n---> HINT: check that the directory exists and is "
               "writable",
               tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) goto fail;
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        fd = -1;
        goto fail;
    }
    free(tmp);
    return 0;
fail:
    sg_err("writing '%s' failed: %s\n---> HINT: is the disk full?", path, strerror(errno));
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}

double sg_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
