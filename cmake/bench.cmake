# Benchmarks (run by hand through bench/compare.py; not tests). See README "Performance".
add_executable(bench_ops bench/bench_ops.c bench/bench_matmul.c bench/bench_conv.c
               bench/bench_norm.c bench/bench_pointwise.c bench/bench_embed_loss.c)
target_link_libraries(bench_ops PRIVATE sogclip)
# One CLIP training step vs bench/torch_clip_step.py (bench/clip_step_compare.py runs both).
add_executable(bench_clip_step bench/bench_clip_step.c)
target_link_libraries(bench_clip_step PRIVATE sogclip)
