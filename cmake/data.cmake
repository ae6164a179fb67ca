# Datasets and the loader: tar index/writer (data/tar.c), CSV/TSV, WebDataset and ImageNet-folder
# datasets (data/dataset.c + ds_*.c), the threaded deterministic loader (data/loader.c) and the
# `sogclip data verify|shards` subcommand (tools/cmd_data.c). Needs cmake/data_image.cmake
# (decode, augmentations) and cmake/text.cmake (tokenizer) included as well.
find_package(Threads REQUIRED)

list(APPEND SG_OP_SOURCES data/tar.c data/dataset.c data/ds_csv.c data/ds_wds.c data/ds_folder.c
     data/loader.c tools/cmd_data.c)
list(APPEND SG_TESTS test_tar test_dataset test_loader)
cmake_language(DEFER CALL target_link_libraries sogclip PUBLIC Threads::Threads)
# test_dataset / test_loader use ../shared/data when present (skipped with a message otherwise).
cmake_language(DEFER CALL target_compile_definitions test_dataset PRIVATE
               SG_SHARED_DATA_DIR="${CMAKE_SOURCE_DIR}/../shared/data")
cmake_language(DEFER CALL target_compile_definitions test_loader PRIVATE
               SG_SHARED_DATA_DIR="${CMAKE_SOURCE_DIR}/../shared/data")
