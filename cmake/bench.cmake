# Benchmarks (run by hand; not tests). See README "Performance".
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/bench_ops.c)
  add_executable(bench_ops bench/bench_ops.c)
  target_link_libraries(bench_ops PRIVATE sogclip)
endif()
