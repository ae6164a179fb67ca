/*
 * tests/test_tar.c — the tar index and writer (data/tar.h) on hand-built archives: ustar prefix
 * names, GNU long names ('L'), pax headers (path=, size=), base-256 sizes, signed checksums,
 * skipped directories/links/global headers; hostile input (bad checksum, size past EOF,
 * truncated header, malformed pax, a folder); every truncation length of a small archive gives
 * an error or a consistent prefix, and random byte corruption never crashes (run under
 * ASan/UBSan with -DSOGCLIP_SANITIZE=ON). The writer's archives read back byte for byte (and
 * through Python's tarfile when python3 is installed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "data/tar.h"
#include "tests/testutil.h"

static char tmpdir[256];

/* ---- archive builder -------------------------------------------------------------------- */

struct tb {
    uint8_t *p;
    size_t n, cap;
};

static void tb_put(struct tb *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 1024;
        b->p = sg_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void tb_pad(struct tb *b)
{
    static const uint8_t z[512];
    if (b->n % 512) tb_put(b, z, 512 - b->n % 512);
}

enum { GNU_MAGIC = 1, BAD_SUM = 2, BASE256 = 4, SIGNED_SUM = 8 };

static void tb_header(struct tb *b, const char *name, const char *prefix, uint64_t size, char type,
                      int flags)
{
    uint8_t h[512] = {0};
    memcpy(h, name, SG_MIN(strlen(name), (size_t)100));
    snprintf((char *)h + 100, 8, "%07o", 0644);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    if (flags & BASE256) {
        h[124] = 0x80;
        for (int i = 11; i >= 1; i--, size >>= 8) h[124 + i] = (uint8_t)(size & 0xff);
    } else {
        char num[32];
        snprintf(num, sizeof(num), "%011llo", (unsigned long long)size);
        memcpy(h + 124, num, 12);
    }
    snprintf((char *)h + 136, 12, "%011o", 0);
    h[156] = (uint8_t)type;
    if (flags & GNU_MAGIC)
        memcpy(h + 257, "ustar  \0", 8);
    else
        memcpy(h + 257, (const char[8]){'u', 's', 't', 'a', 'r', 0, '0', '0'}, 8);
    if (prefix) memcpy(h + 345, prefix, strlen(prefix));
    memset(h + 148, ' ', 8);
    long sum = 0;
    for (int i = 0; i < 512; i++) sum += (flags & SIGNED_SUM) ? (signed char)h[i] : h[i];
    if (flags & BAD_SUM) sum += 1;
    char chk[8];
    snprintf(chk, sizeof(chk), "%06lo", (unsigned long)sum);
    memcpy(h + 148, chk, 7);
    tb_put(b, h, 512);
}

static void tb_file(struct tb *b, const char *name, const char *data, int flags)
{
    size_t n = strlen(data);
    tb_header(b, name, NULL, n, '0', flags);
    tb_put(b, data, n);
    tb_pad(b);
}

static void tb_end(struct tb *b)
{
    static const uint8_t z[1024];
    tb_put(b, z, 1024);
}

/* One pax record "LEN key=value\n" with LEN counting itself. */
static void pax_record(char *dst, const char *key, const char *val)
{
    size_t body = strlen(key) + strlen(val) + 3; /* ' ', '=', '\n' */
    size_t len = body + 1;
    while (len != body + (size_t)snprintf(NULL, 0, "%zu", len)) len++;
    sprintf(dst + strlen(dst), "%zu %s=%s\n", len, key, val);
}

static void tb_pax(struct tb *b, const char *records)
{
    tb_header(b, "PaxHeaders/x", NULL, strlen(records), 'x', 0);
    tb_put(b, records, strlen(records));
    tb_pad(b);
}

static void tb_longname(struct tb *b, const char *name)
{
    tb_header(b, "././@LongLink", NULL, strlen(name) + 1, 'L', GNU_MAGIC);
    tb_put(b, name, strlen(name) + 1);
    tb_pad(b);
}

static char *write_tmp(const char *file, const void *p, size_t n)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, file);
    FILE *f = fopen(path, "wb");
    SG_CHECK(f, "%s", path);
    if (n) SG_CHECK(fwrite(p, 1, n, f) == n, "write");
    fclose(f);
    return path;
}

static int has_member(const struct sg_tar *t, int64_t i, const char *name, const char *data)
{
    if (i >= t->n) return 0;
    const struct sg_tar_member *m = &t->members[i];
    if (strcmp(m->name, name) != 0 || m->size != (int64_t)strlen(data)) {
        printf("  member %lld: '%s' (%lld bytes), want '%s' (%zu)\n", (long long)i, m->name,
               (long long)m->size, name, strlen(data));
        return 0;
    }
    char *buf = sg_xmalloc((size_t)m->size + 1);
    int ok = sg_tar_read(t, i, buf) == 0 && memcmp(buf, data, (size_t)m->size) == 0;
    free(buf);
    return ok;
}

/* ---- tests ------------------------------------------------------------------------------ */

static const char *long_name =
    "a/very/long/directory/name/that/goes/on/and/on/beyond/one/hundred/characters/so/that/the/"
    "ustar/name/field/is/too/short/sample000001.jpg";

static void build_rich(struct tb *b)
{
    tb_file(b, "s0.jpg", "JPEGDATA0", 0);
    tb_header(b, "dir/", NULL, 0, '5', 0); /* directory: skipped */
    tb_header(b, "b.txt", "some/prefix", 5, '0', 0);
    tb_put(b, "hello", 5);
    tb_pad(b);
    tb_longname(b, long_name);
    tb_header(b, "truncated-name-in-header", NULL, 3, '0', GNU_MAGIC);
    tb_put(b, "abc", 3);
    tb_pad(b);
    char rec[256] = "";
    pax_record(rec, "path", "pax/dir/s2.caption.txt");
    pax_record(rec, "mtime", "1700000000.5");
    pax_record(rec, "size", "11");
    tb_pax(b, rec);
    tb_header(b, "ignored", NULL, 0, '0', 0); /* pax size overrides the 0 */
    tb_put(b, "pax caption", 11);
    tb_pad(b);
    tb_header(b, "link", NULL, 0, '2', 0);  /* symlink: skipped */
    tb_header(b, "gpax", NULL, 13, 'g', 0); /* global pax: skipped with its payload */
    tb_put(b, "11 a=bcdefg\n\n", 13);
    tb_pad(b);
    tb_header(b, "big256.bin", NULL, 4, '0', BASE256);
    tb_put(b, "b256", 4);
    tb_pad(b);
    tb_file(b, "caf\xc3\xa9.txt", "signed", SIGNED_SUM); /* UTF-8 name, signed checksum */
    tb_file(b, "empty.txt", "", 0);
    tb_end(b);
}

static const char *rich_names[] = {
    "s0.jpg",     "some/prefix/b.txt", NULL,       "pax/dir/s2.caption.txt",
    "big256.bin", "caf\xc3\xa9.txt",   "empty.txt"};
static const char *rich_data[] = {"JPEGDATA0", "hello", "abc", "pax caption", "b256", "signed", ""};
#define RICH_N 7

static void test_rich(void)
{
    struct tb b = {0};
    build_rich(&b);
    const char *path = write_tmp("rich.tar", b.p, b.n);
    struct sg_tar *t;
    for (int keep = 0; keep < 2; keep++) {
        int rc = sg_tar_open(path, keep, &t);
        if (!sg_test_true("rich: opens", rc == 0)) {
            printf("  %s\n", sg_last_error());
            break;
        }
        sg_test_true("rich: member count", t->n == RICH_N);
        for (int i = 0; i < RICH_N; i++) {
            char label[64];
            snprintf(label, sizeof(label), "rich: member %d (keep_open %d)", i, keep);
            sg_test_true(label,
                         has_member(t, i, rich_names[i] ? rich_names[i] : long_name, rich_data[i]));
        }
        sg_tar_close(t);
    }
    free(b.p);
}

static void expect_error(const char *label, const void *p, size_t n, const char *want)
{
    const char *path = write_tmp("bad.tar", p, n);
    struct sg_tar *t = NULL;
    int rc = sg_tar_open(path, 1, &t);
    int ok = rc == -1 && t == NULL && strstr(sg_last_error(), want) &&
             strstr(sg_last_error(), "bad.tar");
    if (!sg_test_true(label, ok))
        printf("  rc %d, error '%s' (want '%s')\n", rc, rc ? sg_last_error() : "", want);
    if (rc == 0) sg_tar_close(t);
}

static void test_hostile(void)
{
    struct tb b = {0};
    tb_file(&b, "a.txt", "aaaa", 0);
    tb_file(&b, "b.txt", "bbbb", BAD_SUM);
    tb_end(&b);
    expect_error("bad checksum names the offset", b.p, b.n, "checksum at offset 1024");
    b.n = 0;
    tb_header(&b, "a.txt", NULL, 100000, '0', 0);
    tb_put(&b, "short", 5);
    tb_pad(&b);
    expect_error("size past EOF", b.p, b.n, "past the end of the file");
    b.n = 0;
    tb_file(&b, "a.txt", "aaaa", 0);
    tb_put(&b, "not a header", 12);
    expect_error("truncated header", b.p, b.n, "truncated tar header at offset 1024");
    b.n = 0;
    tb_pax(&b, "99 path=x\n");
    tb_file(&b, "a.txt", "aaaa", 0);
    tb_end(&b);
    expect_error("malformed pax record", b.p, b.n, "malformed pax");
    b.n = 0;
    tb_header(&b, "a.txt", NULL, 0, '0', 0);
    memcpy(b.p + 124, "12x45678901", 11); /* non-octal size, checksum recomputed below */
    memset(b.p + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += b.p[i];
    snprintf((char *)b.p + 148, 8, "%06o", sum);
    tb_end(&b);
    expect_error("malformed size", b.p, b.n, "malformed size");
    b.n = 0;
    for (int i = 0; i < 600; i++) tb_put(&b, "x", 1);
    expect_error("not a tar", b.p, b.n, "checksum at offset 0");
    free(b.p);
    struct sg_tar *t = NULL;
    sg_test_true("a folder is refused", sg_tar_open(tmpdir, 1, &t) == -1 && !t);
    sg_test_true("a missing file is refused", sg_tar_open("/nonexistent/x.tar", 1, &t) == -1 &&
                                                  strstr(sg_last_error(), "/nonexistent/x.tar"));
    /* empty file and only end blocks: zero members */
    const char *path = write_tmp("empty.tar", "", 0);
    sg_test_true("empty file: 0 members", sg_tar_open(path, 0, &t) == 0 && t->n == 0);
    sg_tar_close(t);
}

/* Every prefix of the rich archive: an error, or exactly the members that fit. */
static void test_truncations(void)
{
    struct tb b = {0};
    build_rich(&b);
    struct sg_tar *full;
    sg_tar_open(write_tmp("full.tar", b.p, b.n), 1, &full);
    int bad = 0, prefixes = 0, errors = 0;
    for (size_t len = 0; len <= b.n; len++) {
        const char *path = write_tmp("cut.tar", b.p, len);
        struct sg_tar *t = NULL;
        if (sg_tar_open(path, 1, &t) != 0) {
            errors++;
            if (!strstr(sg_last_error(), "cut.tar")) bad++;
            continue;
        }
        prefixes++;
        int64_t want = 0; /* members whose header and payload fit in len bytes */
        while (want < full->n &&
               full->members[want].offset + full->members[want].size <= (int64_t)len)
            want++;
        if (t->n != want) bad++;
        for (int64_t i = 0; i < t->n && i < full->n; i++) {
            const struct sg_tar_member *m = &t->members[i], *f = &full->members[i];
            if (strcmp(m->name, f->name) || m->offset != f->offset || m->size != f->size ||
                m->offset + m->size > (int64_t)len)
                bad++;
        }
        sg_tar_close(t);
    }
    printf("  truncations: %zu lengths, %d consistent prefixes, %d errors\n", b.n + 1, prefixes,
           errors);
    sg_test_true("every truncation: an error naming the file or a consistent prefix", bad == 0);
    sg_test_true("truncation: both outcomes seen", prefixes > 8 && errors > 100);
    sg_tar_close(full);
    free(b.p);
}

static uint64_t xs = 88172645463325252ull;
static uint64_t xorshift(void)
{
    xs ^= xs << 13;
    xs ^= xs >> 7;
    xs ^= xs << 17;
    return xs;
}

/* Random corruption of header bytes: must never crash; accepted members stay inside the file. */
static void test_corruption(void)
{
    struct tb b = {0};
    build_rich(&b);
    uint8_t *copy = sg_xmalloc(b.n);
    int bad = 0, opened = 0;
    for (int iter = 0; iter < 400; iter++) {
        memcpy(copy, b.p, b.n);
        int flips = 1 + (int)(xorshift() % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)(xorshift() % b.n);
            if (iter % 2) at = (at / 512) * 512 + 100 + xorshift() % 60; /* mode..chksum */
            copy[at % b.n] = (uint8_t)xorshift();
        }
        const char *path = write_tmp("fuzz.tar", copy, b.n);
        struct sg_tar *t = NULL;
        if (sg_tar_open(path, 1, &t) != 0) continue;
        opened++;
        for (int64_t i = 0; i < t->n; i++) {
            const struct sg_tar_member *m = &t->members[i];
            if (m->offset < 0 || m->size < 0 || m->offset + m->size > (int64_t)b.n) bad++;
        }
        sg_tar_close(t);
    }
    printf("  corruption: 400 variants, %d opened\n", opened);
    sg_test_true("random corruption: members inside the file", bad == 0);
    free(copy);
    free(b.p);
}

static void test_writer(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/written.tar", tmpdir);
    struct sg_tar_writer *w = sg_tar_writer_open(path);
    SG_CHECK(w, "%s", sg_last_error());
    char big[1500];
    for (int i = 0; i < 1500; i++) big[i] = (char)('a' + i % 26);
    sg_tar_writer_add(w, "000000000.jpg", big, 1500);
    sg_tar_writer_add(w, "000000000.txt", "a caption", 9);
    sg_tar_writer_add(w, long_name, "long", 4);
    sg_tar_writer_add(w, "empty.json", "", 0);
    sg_test_true("writer: only the temporary file exists before finish", access(path, F_OK) != 0);
    sg_test_true("writer: finish", sg_tar_writer_finish(w) == 0);
    sg_test_true("writer: temporary file renamed", access(path, F_OK) == 0);
    struct sg_tar *t;
    if (!sg_test_true("writer: reads back", sg_tar_open(path, 0, &t) == 0)) return;
    big[1499] = 0; /* has_member compares strlen bytes: compare the first 1499 */
    sg_test_true("writer: 4 members", t->n == 4);
    char *buf = sg_xmalloc(1500);
    sg_test_true("writer: big member", t->members[0].size == 1500 && sg_tar_read(t, 0, buf) == 0 &&
                                           memcmp(buf, big, 1499) == 0);
    free(buf);
    sg_test_true("writer: caption", has_member(t, 1, "000000000.txt", "a caption"));
    sg_test_true("writer: long name (GNU L)", has_member(t, 2, long_name, "long"));
    sg_test_true("writer: empty member", has_member(t, 3, "empty.json", ""));
    sg_test_true("pread outside the archive is refused",
                 sg_tar_pread(t, t->file_size - 2, 10, big) == -1);
    sg_tar_close(t);
    if (system("command -v python3 >/dev/null 2>&1") == 0) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "python3 -c \"import tarfile,sys; t=tarfile.open('%s'); "
                 "n=[m.name for m in t.getmembers()]; "
                 "sys.exit(0 if len(n)==4 and n[2]=='%s' and t.extractfile(n[1]).read()"
                 "==b'a caption' else 1)\"",
                 path, long_name);
        sg_test_true("writer: Python tarfile reads it", system(cmd) == 0);
    } else {
        printf("  python3 not found: tarfile cross-check skipped\n");
    }
    struct sg_tar_writer *w2 = sg_tar_writer_open(path);
    sg_test_true("writer: refuses an empty name", sg_tar_writer_add(w2, "", "x", 1) == -1);
    sg_tar_writer_abort(w2);
    sg_test_true("writer: abort keeps the finished file", access(path, F_OK) == 0);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg_test_tar_XXXXXX");
    SG_CHECK(mkdtemp(tmpdir), "mkdtemp");
    test_rich();
    test_hostile();
    test_truncations();
    test_corruption();
    test_writer();
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("  could not remove %s\n", tmpdir);
    return sg_test_summary("test_tar");
}
