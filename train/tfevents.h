/*
 * train/tfevents.h — TensorBoard event files written (and read back) with no dependencies.
 *
 * Format (FIELD.md 5.2; tensorboard record_writer.py, event.proto, summary.proto):
 *  - file `events.out.tfevents.<10-digit unix time>.<hostname>` in a run folder (when that name
 *    is taken, `.<pid>.<n>` is appended: TensorBoard reads every file containing "tfevents");
 *  - TFRecord framing, little-endian: uint64 length, uint32 masked CRC-32C of the 8 length
 *    bytes, payload, uint32 masked CRC-32C of the payload;
 *    masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2^32);
 *  - payloads are hand-encoded protobuf `Event`s: 1 wall_time (double), 2 step (int64 varint),
 *    3 file_version "brain.Event:2" (the first record), 5 summary { repeated 1 value { 1 tag,
 *    2 simple_value (float) } }, 7 session_log { 1 status = START } (resume purge marker,
 *    as torch SummaryWriter(purge_step=...) writes it).
 * Errors (cannot create, disk full) return -1 / NULL with sg_err set; after a failed write the
 * handle stays failed (every later call returns -1) and nothing crashes.
 */
#ifndef SG_TFEVENTS_H
#define SG_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and xorout 0xFFFFFFFF).
 * Incremental: sg_crc32c_update(sg_crc32c_update(0, a), b) == CRC of a||b. */
uint32_t sg_crc32c_update(uint32_t crc, const void *data, size_t n);
static inline uint32_t sg_crc32c(const void *data, size_t n)
{
    return sg_crc32c_update(0, data, n);
}
/* TFRecord CRC masking and its inverse. */
uint32_t sg_crc32c_mask(uint32_t crc);
uint32_t sg_crc32c_unmask(uint32_t masked);

/* Current wall-clock time in seconds since the epoch (what TensorBoard's wall_time holds). */
double sg_tfevents_now(void);

struct sg_tfevents;

/* Creates a new event file in the existing directory `dir` and writes the file_version record.
 * Returns NULL with sg_err set on failure. */
struct sg_tfevents *sg_tfevents_open(const char *dir);
/* Same, writing exactly `path` (created or truncated). */
struct sg_tfevents *sg_tfevents_open_path(const char *path);
const char *sg_tfevents_path(const struct sg_tfevents *h);

/* One Event{wall_time, step, summary{value{tag, simple_value}}}; wall_time <= 0 means now.
 * Buffered: call sg_tfevents_flush to push records to the file. 0 or -1. */
int sg_tfevents_scalar(struct sg_tfevents *h, const char *tag, int64_t step, float value,
                       double wall_time);
/* Event{wall_time, step, session_log{status: START}}: TensorBoard's accumulator then drops the
 * earlier data with step >= `step` (a resumed run re-logging steps after its checkpoint). */
int sg_tfevents_session_start(struct sg_tfevents *h, int64_t step, double wall_time);
int sg_tfevents_flush(struct sg_tfevents *h);
/* Flushes, closes and frees (also after a failure); returns -1 when the final flush failed. */
int sg_tfevents_close(struct sg_tfevents *h);

/* ---- Reader: verifies both CRCs of every record and parses the events ------------------- */
enum sg_tfevent_kind {
    SG_TFEVENT_VERSION,       /* file_version set (`text`) */
    SG_TFEVENT_SCALAR,        /* one summary value with simple_value (`tag`, `value`) */
    SG_TFEVENT_SESSION_START, /* session_log status START */
    SG_TFEVENT_OTHER,         /* anything else (other summaries, graphs, ...) */
};
struct sg_tfevent {
    enum sg_tfevent_kind kind;
    int64_t record; /* record index in the file, from 0 */
    int64_t offset; /* byte offset of the record's length field */
    double wall_time;
    int64_t step;
    const char *tag;  /* SCALAR: NUL-terminated, valid during the callback */
    float value;      /* SCALAR */
    const char *text; /* VERSION: the file_version string */
};
/* Called once per scalar value (an Event holding several values calls it several times) and
 * once per other event; a non-zero return stops the reading (sg_tfevents_read returns it). */
typedef int (*sg_tfevents_cb)(void *user, const struct sg_tfevent *ev);
/* Reads every record of `path`. Returns 0 (or the callback's non-zero value), or -1 with
 * sg_err naming the record index and byte offset: CRC mismatch, truncated record, bad
 * protobuf. `records` (may be NULL) receives the number of complete, verified records. */
int sg_tfevents_read(const char *path, sg_tfevents_cb cb, void *user, int64_t *records);

#endif
