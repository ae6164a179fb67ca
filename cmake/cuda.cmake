# CUDA backend sources and GPU-vs-CPU tests (tests exit 77 without a GPU)
if(SG_WITH_CUDA)
  list(APPEND SG_CUDA_SOURCES ops/cuda/ctx.cu ops/cuda/matmul.cu ops/cuda/activation.cu
       ops/cuda/norm.cu)
  list(APPEND SG_CUDA_TESTS test_cuda_ops)
endif()
