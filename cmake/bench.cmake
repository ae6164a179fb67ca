# Benchmarks (run by hand through bench/compare.py; not tests). See README "Performance".
add_executable(bench_ops bench/bench_ops.c bench/bench_matmul.c bench/bench_conv.c
               bench/bench_norm.c bench/bench_pointwise.c bench/bench_embed_loss.c)
target_link_libraries(bench_ops PRIVATE sogclip)
