# Optimizers (AdamW, SGD, LARS over the parameter table) and LR schedules: nn/optim.c.
# -ffp-contract=off: the updates follow torch's kernels op by op (explicit fmaf where torch
# fuses, nothing else fused); -fno-math-errno lets sqrtf vectorise.
list(APPEND SG_OP_SOURCES nn/optim.c)
list(APPEND SG_TESTS test_optim)
set_source_files_properties(nn/optim.c PROPERTIES COMPILE_OPTIONS "-ffp-contract=off;-fno-math-errno")
