# Text tokenizer: C API over SentencePiece (text/tokenizer.cc, the only C++ file besides CUDA)
# and the `sogclip tokenizer` subcommand. Needs libsentencepiece-dev (scripts/install_deps.sh).
# enable_language() is allowed here: include() keeps the top-level directory scope.
enable_language(CXX)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_CXX_FLAGS_RELEASE "-O3")
find_path(SENTENCEPIECE_INCLUDE_DIR sentencepiece_processor.h REQUIRED)
find_library(SENTENCEPIECE_LIBRARY NAMES sentencepiece REQUIRED)
find_library(SENTENCEPIECE_TRAIN_LIBRARY NAMES sentencepiece_train REQUIRED)

list(APPEND SG_OP_SOURCES text/tokenizer.cc tools/cmd_tokenizer.c)
list(APPEND SG_TESTS test_tokenizer)
set(SG_TOK_CXX_FLAGS -Wall -Wextra -Wshadow -march=${SOGCLIP_MARCH})
if(SOGCLIP_WERROR)
  list(APPEND SG_TOK_CXX_FLAGS -Werror)
endif()
set_source_files_properties(text/tokenizer.cc PROPERTIES COMPILE_OPTIONS "${SG_TOK_CXX_FLAGS}")
# The sogclip library target is created after the fragments: attach the library when the
# top-level directory is done. SG_TOKENIZER lets tools/sogclip.c offer the subcommand.
cmake_language(DEFER CALL target_include_directories sogclip PRIVATE ${SENTENCEPIECE_INCLUDE_DIR})
cmake_language(DEFER CALL target_link_libraries sogclip PUBLIC ${SENTENCEPIECE_TRAIN_LIBRARY}
               ${SENTENCEPIECE_LIBRARY})
cmake_language(DEFER CALL target_compile_definitions sogclip PUBLIC SG_TOKENIZER)
