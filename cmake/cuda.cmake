# CUDA backend sources and GPU-vs-CPU tests (tests exit 77 without a GPU).
# Included before the sogclip target is created, so the compile options below apply to it.
if(SG_WITH_CUDA)
  list(APPEND SG_CUDA_SOURCES ops/cuda/ctx.cu ops/cuda/matmul.cu ops/cuda/activation.cu
       ops/cuda/norm.cu ops/cuda/cudnn.cu ops/cuda/pool.cu ops/cuda/softmax.cu
       ops/cuda/embedding.cu ops/cuda/elementwise.cu ops/cuda/loss.cu ops/cuda/attention.cu
       ops/cuda/patch.cu ops/cuda/input.cu nn/cuda/optim.cu losses/cuda/contrastive.cu)
  list(APPEND SG_CUDA_TESTS test_cuda_ops test_cuda_conv test_cuda_pointwise test_cuda_attention
       test_cuda_optim test_cuda_contrastive test_cuda_model test_cuda_train)
  # Host-side warnings as for C (-Wall comes from CMakeLists.txt); -lineinfo maps SASS to source
  # for compute-sanitizer / ncu at no runtime cost.
  add_compile_options($<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wextra,-Wshadow>
                      $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo>)
  if(SOGCLIP_WERROR)
    add_compile_options($<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>
                        $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Werror>)
  endif()
endif()
