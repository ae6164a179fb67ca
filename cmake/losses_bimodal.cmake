# Bimodal global contrastive losses (losses/): two-way SogCLR (the default loss), bimodal
# iSogCLR and FastCLIP-v3, all on the shared engine losses/gcl_bimodal.c.
list(APPEND SG_OP_SOURCES losses/gcl_bimodal.c losses/sogclr.c losses/isogclr.c
     losses/fastclip.c losses/gcl_bimodal_dist.c)
list(APPEND SG_TESTS test_sogclr test_isogclr test_fastclip)
# Loss benchmark vs its GEMM floor (bench/loss_compare.py runs it against bench/torch_loss.py).
# This fragment is included before the sogclip library target exists: defer the definition.
function(sg_add_bench_loss)
  add_executable(bench_loss bench/bench_loss.c)
  target_link_libraries(bench_loss PRIVATE sogclip)
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL sg_add_bench_loss)
