/*
 * data/tar.h — tar archives for WebDataset shards: an index built from the headers only, random
 * reads of member bytes with pread, and a small ustar writer.
 *
 * Reader (POSIX.1-1988 ustar, GNU and POSIX.1-2001 pax, as GNU tar and Python's tarfile write):
 *   - regular files ('0', '\0', '7') are indexed: name, payload offset, size;
 *   - GNU long names ('L') and pax extended headers ('x': path=, size=) apply to the next member;
 *     global pax headers ('g'), GNU long link names ('K'), directories and links are skipped;
 *   - the ustar prefix field is joined to the name ("prefix/name") when the magic is "ustar\0";
 *   - sizes in octal or GNU base-256; checksums accepted as unsigned or signed byte sums (both
 *     exist in the wild).
 * Only the 512-byte headers (and 'L'/'x' payloads) are read, never member data.
 * Hostile input: a bad checksum, a malformed number, a size past the end of the file or a
 * truncated header returns -1 with sg_err naming the file and the byte offset; an archive cut at
 * a header boundary (no end-of-archive blocks) is accepted as the members read so far.
 * After sg_tar_open the index is immutable: sg_tar_read may be called from several threads.
 *
 * Writer: ustar members (names over 100 bytes get a GNU 'L' header), mode 0644, uid/gid 0,
 * mtime 0 (reproducible shards), written to path.tmp; sg_tar_writer_finish
 * appends the two zero blocks, fsyncs and renames to path (a crash never leaves a half shard).
 */
#ifndef SG_DATA_TAR_H
#define SG_DATA_TAR_H

#include <stddef.h>
#include <stdint.h>

struct sg_tar_member {
    char *name;     /* full member name (long names and pax path applied) */
    int64_t offset; /* byte offset of the payload in the file */
    int64_t size;   /* payload bytes */
};

struct sg_tar {
    char *path;
    int fd; /* open for sg_tar_read when keep_open, else -1 (reads open the file) */
    int64_t file_size;
    struct sg_tar_member *members; /* (n) in archive order */
    int64_t n;
};

/* Index the tar file at path. keep_open: keep a descriptor for reads (else each sg_tar_read
 * opens and closes the file, for datasets with thousands of shards). Returns 0 or -1 (sg_err). */
int sg_tar_open(const char *path, int keep_open, struct sg_tar **out);
void sg_tar_close(struct sg_tar *t);

/* Read `size` bytes at `offset` of the archive file (a member payload) into buf. Thread-safe.
 * Returns 0, or -1 with sg_err (I/O error, file shrunk since indexing). */
int sg_tar_pread(const struct sg_tar *t, int64_t offset, int64_t size, void *buf);
/* Read member i's payload into buf (at least members[i].size bytes). */
int sg_tar_read(const struct sg_tar *t, int64_t i, void *buf);

struct sg_tar_writer;
/* Start writing path (bytes go to path.tmp until finish). Returns NULL with sg_err. */
struct sg_tar_writer *sg_tar_writer_open(const char *path);
int sg_tar_writer_add(struct sg_tar_writer *w, const char *name, const void *data, size_t len);
/* End-of-archive blocks, fsync, rename to the final path; frees w. Returns 0 or -1 (sg_err). */
int sg_tar_writer_finish(struct sg_tar_writer *w);
/* Remove the temporary file and free w (after an error). */
void sg_tar_writer_abort(struct sg_tar_writer *w);

#endif
