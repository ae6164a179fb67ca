# `sogclip train`: training config, loss interface, checkpoints, the training loop.
list(APPEND SG_OP_SOURCES train/config.c train/host_stage.c train/train_loss.c train/ssl.c train/checkpoint.c train/trainer.c
     tools/cmd_train.c)
list(APPEND SG_OP_SOURCES tools/cmd_demo.c)
set_source_files_properties(tools/cmd_demo.c PROPERTIES COMPILE_DEFINITIONS
                            "SG_SOURCE_DIR=\"${CMAKE_SOURCE_DIR}\"")
list(APPEND SG_TESTS test_train)
cmake_language(DEFER CALL target_compile_definitions test_train PRIVATE
               SG_TEST_DATA_DIR="${CMAKE_SOURCE_DIR}/tests/data")
cmake_language(DEFER CALL target_compile_definitions test_train PRIVATE
               SG_CLI="$<TARGET_FILE:sogclip_cli>")
cmake_language(DEFER CALL add_dependencies test_train sogclip_cli)
