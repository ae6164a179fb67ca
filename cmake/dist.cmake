# Distributed training collectives (core/dist.h): single process, MPI (host memory; Debian
# libopenmpi-dev + openmpi-bin) and NCCL (device memory; nccl.h / libnccl under the CUDA toolkit or
# NCCL_ROOT). Without MPI or NCCL the library still builds and those backends report an error.
list(APPEND SG_CORE_SOURCES core/dist.c)
list(APPEND SG_TESTS test_dist)

find_package(MPI COMPONENTS C)
if(MPI_C_FOUND)
  set_property(SOURCE core/dist.c APPEND PROPERTY COMPILE_DEFINITIONS SG_HAVE_MPI)
  cmake_language(DEFER CALL target_link_libraries sogclip PUBLIC MPI::MPI_C)
  message(STATUS "sogclip: MPI ${MPI_C_VERSION} (${MPIEXEC_EXECUTABLE})")
else()
  message(STATUS "sogclip: MPI not found (install libopenmpi-dev): the mpi backend is disabled")
endif()

if(SG_WITH_CUDA)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS $ENV{NCCL_ROOT}/include ${NCCL_ROOT}/include
            ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
               HINTS $ENV{NCCL_ROOT}/lib ${NCCL_ROOT}/lib ${CUDAToolkit_LIBRARY_DIR}
                     /usr/local/cuda/lib64 /usr/local/cuda/lib)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    list(APPEND SG_CUDA_SOURCES core/dist_nccl.c)
    set_property(SOURCE core/dist.c core/dist_nccl.c APPEND PROPERTY COMPILE_DEFINITIONS
                 SG_HAVE_NCCL)
    cmake_language(DEFER CALL target_include_directories sogclip PRIVATE ${NCCL_INCLUDE_DIR})
    cmake_language(DEFER CALL target_link_libraries sogclip PUBLIC ${NCCL_LIBRARY})
  endif()
  message(STATUS "sogclip: NCCL ${NCCL_LIBRARY} (set NCCL_ROOT if NOTFOUND)")
  list(APPEND SG_CUDA_TESTS test_dist_nccl) # one GPU, world 1; exits 77 without GPU / NCCL
endif()

list(APPEND SG_TESTS test_dist_loss test_dist_train test_syncbn)
cmake_language(DEFER CALL target_compile_definitions test_dist_train PRIVATE
               SG_TEST_DATA_DIR="${CMAKE_SOURCE_DIR}/tests/data")

# The MPI tests run under `mpirun -np 2` (test_dist also alone: environment parsing, single
# backend; test_dist_loss and test_syncbn alone: world 1; test_dist_train alone: NCCL on one GPU,
# else skips; test_dist_train also under `mpirun -np 1`: the data-parallel path). The environment lets
# Open MPI run as root and oversubscribed in a container (shared-memory transport without CMA,
# no UCX).
set(SG_MPI_TEST_ENV "OMP_NUM_THREADS=1;OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;OMPI_MCA_btl=self,vader;OMPI_MCA_btl_vader_single_copy_mechanism=none;OMPI_MCA_pml=ob1")
function(sg_add_mpi_test target np timeout)
  execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE version ERROR_QUIET)
  set(flags)
  if(version MATCHES "Open MPI|OpenRTE")
    set(flags --oversubscribe) # MPICH's mpiexec has no such flag (and needs none)
  endif()
  add_test(NAME ${target}_mpi${np}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${flags} ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:${target}> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(${target}_mpi${np} PROPERTIES LABELS mpi TIMEOUT ${timeout} ENVIRONMENT
                       "${SG_MPI_TEST_ENV}")
endfunction()
function(sg_add_mpi2_test target timeout)
  sg_add_mpi_test(${target} 2 ${timeout})
endfunction()
function(sg_add_dist_mpi_tests)
  set_tests_properties(test_dist test_dist_loss test_dist_train test_syncbn PROPERTIES LABELS mpi)
  if(NOT MPI_C_FOUND OR NOT MPIEXEC_EXECUTABLE)
    return()
  endif()
  sg_add_mpi2_test(test_dist 60)
  sg_add_mpi2_test(test_dist_loss 60)
  sg_add_mpi2_test(test_syncbn 60)
  sg_add_mpi2_test(test_dist_train 300)
  sg_add_mpi_test(test_dist_train 1 120) # the data-parallel path with one rank
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL sg_add_dist_mpi_tests)
