/*
 * core/common.h — error handling, checked allocation and file helpers.
 *
 * Two kinds of failure (DESIGN.md 2.4):
 *  - programmer errors and device-library failures: SG_CHECK / SG_PANIC print the condition,
 *    function, file and line and abort(). Always on (never assert()).
 *  - input errors (files, configs, samples): functions return a negative int and record a
 *    message with sg_err(); callers read it with sg_last_error(). Library code never exits.
 * The error message buffer is thread-local, like errno, so loader threads do not race.
 */
#ifndef SG_COMMON_H
#define SG_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SG_UNUSED(x)      ((void)(x))
#define SG_MIN(a, b)      ((a) < (b) ? (a) : (b))
#define SG_MAX(a, b)      ((a) > (b) ? (a) : (b))
#define SG_CEIL_DIV(a, b) (((a) + (b)-1) / (b))

void sg_panic_at(const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));
void sg_check_failed(const char *file, int line, const char *func, const char *cond,
                     const char *fmt, ...) __attribute__((noreturn, format(printf, 5, 6)));

/* Always-on check for invariants; aborts with location and a formatted message. */
#define SG_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) sg_check_failed(__FILE__, __LINE__, __func__, #cond, __VA_ARGS__);            \
    } while (0)
#define SG_PANIC(...) sg_panic_at(__FILE__, __LINE__, __func__, __VA_ARGS__)

/* Record an input error (printf-style) for the caller; always returns -1 so that
 * `return sg_err("...")` reads naturally. Messages should end with what to do about it. */
int sg_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prepend context ("loading foo.safetensors: ") to the current error; returns -1. */
int sg_err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *sg_last_error(void);
void sg_clear_error(void);

/* Allocation: out of memory is not recoverable for us; these panic with the size and a hint. */
void *sg_xmalloc(size_t bytes);
void *sg_xcalloc(size_t n, size_t size);
void *sg_xrealloc(void *p, size_t bytes);
char *sg_xstrdup(const char *s);
/* 64-byte aligned allocation (AVX-512 lines); free with sg_afree. */
void *sg_xmalloc_aligned(size_t bytes);
void sg_afree(void *p);

/* Files: return NULL / -1 with sg_err set (path, strerror and a hint); never panic. */
FILE *sg_fopen(const char *path, const char *mode);
int sg_fread_exact(FILE *f, void *dst, size_t bytes, const char *path);
int sg_fwrite_all(FILE *f, const void *src, size_t bytes, const char *path);
/* Read a whole file into a malloc'd buffer (NUL-terminated for convenience). */
int sg_read_file(const char *path, char **out, size_t *out_len);
/* mkdir -p: create dir and its missing parents (0755). Returns 0, or -1 with sg_err (a part
 * cannot be created, or the path exists and is not a folder). */
int sg_mkdir_p(const char *dir);
/* Write a file atomically: path.tmp, fsync, rename; a crash never leaves a half-written file. */
int sg_write_file_atomic(const char *path, const void *data, size_t len);

/* Wall clock in seconds (monotonic). */
double sg_time_now(void);

#endif
