# Image decoding (data/image.c: TurboJPEG + libpng) and torchvision-style augmentations
# (data/transforms.c, data/resample.c). Needs libturbojpeg0-dev and libpng-dev (pkg-config
# libturbojpeg, libpng; scripts/install_deps.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(TURBOJPEG REQUIRED IMPORTED_TARGET libturbojpeg)
pkg_check_modules(PNG REQUIRED IMPORTED_TARGET libpng)
find_package(ZLIB REQUIRED) # test_decode patches PNG CRCs

list(APPEND SG_OP_SOURCES data/image.c data/resample.c data/transforms.c)
list(APPEND SG_TESTS test_decode test_transforms)
# The resampling and colour kernels reproduce torch's float rounding step by step: no implicit
# FMA contraction there (GCC contracts a*b+c by default in GNU C mode; the fused steps torch's
# build has are written as fmaf). -fno-trapping-math (torch is built with it too) changes no
# result; it lets GCC if-convert and vectorise the select-heavy colour loops.
set_source_files_properties(data/resample.c data/transforms.c PROPERTIES COMPILE_OPTIONS
                            "-ffp-contract=off;-fno-trapping-math")
cmake_language(DEFER CALL target_link_libraries sogclip PUBLIC PkgConfig::TURBOJPEG PkgConfig::PNG)
cmake_language(DEFER CALL target_link_libraries test_decode PRIVATE ZLIB::ZLIB)
# Tests and the benchmark read ../shared/data when present (skipped with a message otherwise).
cmake_language(DEFER CALL target_compile_definitions test_decode PRIVATE
               SG_SHARED_DATA_DIR="${CMAKE_SOURCE_DIR}/../shared/data")

# Data pipeline benchmark: decode + RandomResizedCrop + flip + normalise vs PIL + torchvision
# (bench/torch_data.py); bench/data_compare.py runs both.
add_executable(bench_data bench/bench_data.c)
target_link_libraries(bench_data PRIVATE sogclip)
target_compile_definitions(bench_data PRIVATE
                           SG_SHARED_DATA_DIR="${CMAKE_SOURCE_DIR}/../shared/data")
