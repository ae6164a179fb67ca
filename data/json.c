/*
 * data/json.c — minimal streaming JSON reader (moved from data/ds_wds.c so the Karpathy split
 * reader can share it). Reference: RFC 8259. Contract: data/json.h.
 */
#include "data/json.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"

void sg_json_ws(struct sg_json_cur *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

int sg_json_skip_string(struct sg_json_cur *j)
{
    if (j->p >= j->end || *j->p != '"') return -1;
    for (j->p++; j->p < j->end; j->p++) {
        if (*j->p == '\\') {
            if (j->p + 1 >= j->end) break; /* a trailing backslash: unterminated */
            j->p++;
            continue;
        }
        if (*j->p == '"') {
            j->p++;
            return 0;
        }
    }
    j->p = j->end;
    return -1;
}

/* Skip the members of an object or the elements of an array; j->p just past the opener. */
static int skip_container(struct sg_json_cur *j, char open, int depth)
{
    char close = open == '{' ? '}' : ']';
    sg_json_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return 0;
    }
    for (;;) {
        if (open == '{') {
            sg_json_ws(j);
            if (sg_json_skip_string(j) != 0) return -1;
            sg_json_ws(j);
            if (j->p >= j->end || *j->p != ':') return -1;
            j->p++;
        }
        if (sg_json_skip_value(j, depth + 1) != 0) return -1;
        sg_json_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 0;
        }
        return -1;
    }
}

int sg_json_skip_value(struct sg_json_cur *j, int depth)
{
    if (depth > 64) return -1;
    sg_json_ws(j);
    if (j->p >= j->end) return -1;
    char c = *j->p;
    if (c == '"') return sg_json_skip_string(j);
    if (c == '{' || c == '[') {
        j->p++;
        return skip_container(j, c, depth);
    }
    /* number, true, false, null */
    const char *s = j->p;
    while (j->p < j->end && (strchr("+-.eE", *j->p) || (*j->p >= '0' && *j->p <= '9') ||
                             (*j->p >= 'a' && *j->p <= 'z')))
        j->p++;
    return j->p > s ? 0 : -1;
}

void sg_json_put_utf8(char **o, uint32_t cp)
{
    unsigned char *u = (unsigned char *)*o;
    int n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | (cp >> 6)), u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | (cp >> 18));
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    *o += n;
}

int sg_json_hex4(const char *s, const char *end, uint32_t *v)
{
    if (end - s < 4) return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (uint32_t)d;
    }
    return 0;
}

/* Decode \uXXXX (s at the 'u'; a following low surrogate pairs) into *o; advances s to the last
 * hex digit consumed. Returns 0 or -1. */
static int decode_u(const char **sp, const char *e, char **o)
{
    const char *s = *sp;
    uint32_t cp;
    if (sg_json_hex4(s + 1, e, &cp) != 0) return -1;
    s += 4;
    if (cp >= 0xd800 && cp < 0xdc00) {
        uint32_t lo;
        if (s + 2 < e && s[1] == '\\' && s[2] == 'u' && sg_json_hex4(s + 3, e, &lo) == 0 &&
            lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            s += 6;
        } else {
            cp = 0xfffd;
        }
    } else if (cp >= 0xdc00 && cp < 0xe000) {
        cp = 0xfffd;
    }
    sg_json_put_utf8(o, cp);
    *sp = s;
    return 0;
}

char *sg_json_decode(const char *s, const char *e, size_t *len)
{
    if (s >= e || *s != '"') return NULL;
    char *out = sg_xmalloc((size_t)(e - s) * 2 + 4), *o = out; /* \uXXXX (6) -> <= 4 bytes */
    for (s++; s < e && *s != '"'; s++) {
        if (*s != '\\') {
            *o++ = *s;
            continue;
        }
        if (++s >= e) break;
        switch (*s) {
        case 'n':
            *o++ = '\n';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'u':
            if (decode_u(&s, e, &o) != 0) goto bad;
            break;
        default:
            *o++ = *s;
            break; /* \" \\ \/ */
        }
    }
    if (s >= e) goto bad;
    *o = 0;
    *len = (size_t)(o - out);
    return out;
bad:
    free(out);
    return NULL;
}

/* One member "key": value at j->p; calls fn. Returns 1 when fn stopped, 0 to go on, -1 bad. */
static int visit_member(struct sg_json_cur *j, sg_json_member_fn fn, void *user)
{
    sg_json_ws(j);
    const char *ks = j->p;
    if (sg_json_skip_string(j) != 0) return -1;
    size_t klen;
    char *key = sg_json_decode(ks, j->p, &klen);
    if (!key) {
        j->p = ks;
        return -1;
    }
    sg_json_ws(j);
    if (j->p >= j->end || *j->p != ':') {
        free(key);
        return -1;
    }
    j->p++;
    sg_json_ws(j);
    const char *vs = j->p;
    if (sg_json_skip_value(j, 0) != 0) {
        free(key);
        return -1;
    }
    int stop = fn(user, key, vs, j->p);
    free(key);
    return stop ? 1 : 0;
}

static int members(struct sg_json_cur *j, sg_json_member_fn fn, void *user)
{
    sg_json_ws(j);
    if (j->p >= j->end || *j->p != '{') return -1;
    j->p++;
    sg_json_ws(j);
    if (j->p < j->end && *j->p == '}') return 0;
    for (;;) {
        int r = visit_member(j, fn, user);
        if (r != 0) return r < 0 ? -1 : 0;
        sg_json_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') return 0;
        return -1;
    }
}

int sg_json_members_at(const char *s, size_t n, sg_json_member_fn fn, void *user, size_t *err_off)
{
    struct sg_json_cur j = {s, s + n};
    int rc = members(&j, fn, user);
    if (rc != 0 && err_off) *err_off = (size_t)(SG_MIN(j.p, j.end) - s);
    return rc;
}

int sg_json_members(const char *s, size_t n, sg_json_member_fn fn, void *user)
{
    return sg_json_members_at(s, n, fn, user, NULL);
}

struct jfind {
    const char *want, *vs, *ve;
};

static int jfind_fn(void *user, const char *key, const char *vs, const char *ve)
{
    struct jfind *f = user;
    if (strcmp(key, f->want) != 0) return 0;
    f->vs = vs;
    f->ve = ve;
    return 1;
}

int sg_json_find(const char *s, size_t n, const char *key, const char **vs, const char **ve)
{
    struct jfind f = {key, NULL, NULL};
    if (sg_json_members(s, n, jfind_fn, &f) != 0) return -1;
    if (!f.vs) return 0;
    *vs = f.vs;
    *ve = f.ve;
    return 1;
}

int sg_json_int(const char *vs, const char *ve, int64_t *v)
{
    if (vs < ve && *vs == '"') {
        vs++;
        ve--;
        if (ve <= vs || *ve != '"') return -1;
    }
    if (vs >= ve || ve - vs > 18) return -1;
    int64_t x = 0;
    for (const char *p = vs; p < ve; p++) {
        if (*p < '0' || *p > '9') return -1;
        x = x * 10 + (*p - '0');
    }
    *v = x;
    return 0;
}
