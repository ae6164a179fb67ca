/*
 * train/runlog.h — run logging for `sogclip train`: metrics.jsonl, TensorBoard scalars and a
 * self-contained report.html, all in the run folder.
 *
 *  - metrics.jsonl: one JSON object per commit, {"step": n, "epoch": e, "<tag>": x, ...} in the
 *    order the tags were given; numbers with %.9g; NaN/Inf are written as null and listed in
 *    "nonfinite": ["<tag>", ...] on the same line. Flushed at every commit.
 *  - TensorBoard (optional): events.out.tfevents.* (train/tfevents.h), one scalar event per
 *    sg_runlog_scalar with its own step (open_clip tags: train/loss, train/lr, val/..., any
 *    string the caller passes).
 *  - report.html: inline-SVG line plots per tag group (loss, learning rate, temperature,
 *    u statistics, eval metrics, then one plot per other tag), a table of final values and the
 *    resolved config YAML; no external scripts, fonts or links. Written atomically.
 * The in-memory series behind the report are built from the committed lines (x = the commit
 * step), so a report written after a resume covers the whole run exactly as metrics.jsonl
 * does. Each tag keeps at most SG_RUNLOG_MAX_POINTS plot points (bucket means, re-halved as the
 * run grows) plus exact last/min/max.
 * Errors: open/commit/report return -1 with sg_err (disk full included); nothing crashes, and a
 * failed TensorBoard writer is closed and reported once while metrics.jsonl carries on.
 */
#ifndef SG_RUNLOG_H
#define SG_RUNLOG_H

#include <stdint.h>
#include <stdio.h>

#define SG_RUNLOG_MAX_POINTS 2000

enum {
    SG_RUNLOG_TENSORBOARD = 1, /* also write TensorBoard event files */
    SG_RUNLOG_OVERWRITE = 2,   /* fresh open: replace an existing non-empty metrics.jsonl */
};

struct sg_runlog_series;  /* per-tag statistics and plot points (runlog.c) */
struct sg_runlog_pending; /* scalars given since the last commit */

struct sg_runlog {
    char *dir, *jsonl_path, *report_path;
    FILE *jsonl;
    struct sg_tfevents *tb; /* NULL when off or after a failure */
    int tb_failed;
    struct sg_runlog_series *series;
    int nseries, cap_series;
    struct sg_runlog_pending *pending;
    int npending, cap_pending;
    int64_t lines;         /* committed lines, resumed ones included */
    int64_t resumed_lines; /* lines read back by sg_runlog_resume */
    int64_t dropped_lines; /* resume: lines after resume_step and a truncated tail, removed */
    int64_t bad_lines;     /* resume: unparsable lines, kept in the file but not plotted */
    int64_t nonfinite;     /* NaN/Inf values committed (written as null) */
    int64_t first_step, last_step;
    int last_epoch;
};

/* Fresh run: creates `dir` (and parents) if needed and starts metrics.jsonl; fails when a
 * non-empty metrics.jsonl exists unless SG_RUNLOG_OVERWRITE. flags: SG_RUNLOG_* bits. */
int sg_runlog_open(struct sg_runlog *l, const char *dir, int flags);
/* Resumed run: reads the existing metrics.jsonl back into the series, drops lines with step >
 * resume_step (all are kept when resume_step < 0) and a truncated last line (a crash mid-write),
 * then appends. With TensorBoard, the new event file starts with a SessionLog START at
 * resume_step + 1, so TensorBoard discards the old files' steps after the checkpoint (a fresh
 * run's file starts with START at step 0, which TensorBoard needs to see first). A missing
 * metrics.jsonl is not an error (the run starts logging now). */
int sg_runlog_resume(struct sg_runlog *l, const char *dir, int flags, int64_t resume_step);

/* Records a scalar for the next commit (a tag given twice keeps the last value); `step` is the
 * TensorBoard step. Never fails: the work (and any error) happens in sg_runlog_commit. */
void sg_runlog_scalar(struct sg_runlog *l, const char *tag, int64_t step, double value);
/* Writes one metrics.jsonl line with the scalars given since the last commit (none: nothing is
 * written), their TensorBoard events, and flushes both. 0 or -1 (sg_err). */
int sg_runlog_commit(struct sg_runlog *l, int64_t step, int epoch);
/* Writes <dir>/report.html (temp file + rename). config_yaml and title may be NULL. */
int sg_runlog_report(struct sg_runlog *l, const char *config_yaml, const char *title);
const char *sg_runlog_report_path(const struct sg_runlog *l);
const char *sg_runlog_jsonl_path(const struct sg_runlog *l);
/* Path of the current TensorBoard event file, or NULL. */
const char *sg_runlog_tfevents_path(const struct sg_runlog *l);
/* Closes the files and frees everything (scalars not yet committed are discarded); returns -1
 * when a final flush failed. Safe on a zeroed or failed-to-open struct. */
int sg_runlog_close(struct sg_runlog *l);

#endif
