/*
 * data/json.h — a minimal streaming JSON reader over a byte span (no tree is built): skip values,
 * decode strings (\u escapes, surrogate pairs) to UTF-8, visit the members of an object, read
 * small integers. Used by the WebDataset reader (per-sample json, sizes.json) and the Karpathy
 * split reader. Reference: RFC 8259 (lenient: bare words such as true/false/null are skipped
 * without checking their spelling, strings are not checked for control characters).
 *
 * Hostile input: every function stays inside [p, end); nesting deeper than 64 is an error, so
 * recursion is bounded. Errors return -1 (or NULL) with no message: callers name the file.
 */
#ifndef SG_DATA_JSON_H
#define SG_DATA_JSON_H

#include <stddef.h>
#include <stdint.h>

/* A cursor over [p, end). On error the skip functions leave p at (or near) the offending byte,
 * never past end. */
struct sg_json_cur {
    const char *p, *end;
};

/* Skip JSON whitespace. */
void sg_json_ws(struct sg_json_cur *j);
/* Skip a string starting at '"'. Returns 0, or -1 (unterminated / not a string). */
int sg_json_skip_string(struct sg_json_cur *j);
/* Skip one value (leading whitespace allowed); depth counts nesting (pass 0). Returns 0 or -1. */
int sg_json_skip_value(struct sg_json_cur *j, int depth);
/* Parse 4 hex digits at s (bounded by end) into *v. Returns 0 or -1. */
int sg_json_hex4(const char *s, const char *end, uint32_t *v);
/* Write code point cp as UTF-8 at *o (up to 4 bytes) and advance *o. */
void sg_json_put_utf8(char **o, uint32_t cp);
/* Decode the JSON string at [s, e) (s at the opening quote) into a malloc'd NUL-terminated UTF-8
 * string of *len bytes (it may contain NULs from \u0000). An unpaired surrogate becomes U+FFFD.
 * Returns NULL when malformed. */
char *sg_json_decode(const char *s, const char *e, size_t *len);

/* Member visitor: key decoded, value span [vs, ve); return nonzero to stop. */
typedef int (*sg_json_member_fn)(void *user, const char *key, const char *vs, const char *ve);
/* Visit the members of the object spanning s[0..n) (leading whitespace allowed). Returns 0, or -1
 * when malformed (*err_off, when not NULL, gets the byte offset from s where parsing failed). */
int sg_json_members_at(const char *s, size_t n, sg_json_member_fn fn, void *user, size_t *err_off);
int sg_json_members(const char *s, size_t n, sg_json_member_fn fn, void *user);
/* 1 and the value span when the object has `key` (the first one), 0 when not, -1 when
 * malformed. */
int sg_json_find(const char *s, size_t n, const char *key, const char **vs, const char **ve);
/* A non-negative integer: a JSON number without fraction/exponent, or a string of digits (at
 * most 18 digits). Returns 0 or -1. */
int sg_json_int(const char *vs, const char *ve, int64_t *v);

#endif
