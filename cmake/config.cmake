# YAML configuration layer: core/yaml.c (libyaml event parser -> node tree, --set overrides) and
# core/config.c (key tables binding YAML onto C structs, dump). Needs libyaml-dev (pkg-config
# yaml-0.1; scripts/install_deps.sh installs it).
find_package(PkgConfig REQUIRED)
pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)

list(APPEND SG_OP_SOURCES core/yaml.c core/config.c)
list(APPEND SG_TESTS test_config)
# The sogclip library and the test targets are created after the fragments: attach libyaml and
# the test data directory when the top-level directory is done.
cmake_language(DEFER CALL target_link_libraries sogclip PUBLIC PkgConfig::YAML)
cmake_language(DEFER CALL target_compile_definitions test_config PRIVATE
               SG_TEST_DATA_DIR="${CMAKE_SOURCE_DIR}/tests/data")
