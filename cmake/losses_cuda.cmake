# CUDA loss engines (losses/cuda/) and their GPU-vs-host tests (exit 77 without a GPU).
# Included before the sogclip target is created (SG_CUDA_SOURCES go into the library).
if(SG_WITH_CUDA)
  # The bimodal GCL engine step (losses/gcl_bimodal_cuda.h) used by SogCLR/iSogCLR/FastCLIP.
  list(APPEND SG_CUDA_SOURCES losses/cuda/gcl_bimodal.cu losses/gcl_bimodal_dev.c)
  list(APPEND SG_CUDA_TESTS test_cuda_losses)
endif()
