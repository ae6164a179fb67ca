# Run logging for `sogclip train`: train/tfevents.c (TensorBoard event files, CRC-32C, verifying
# reader) and train/runlog.c (metrics.jsonl, TensorBoard scalars, self-contained report.html).
list(APPEND SG_OP_SOURCES train/tfevents.c train/runlog.c)
list(APPEND SG_TESTS test_runlog)
