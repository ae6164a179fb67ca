# Synthetic captioned shapes dataset (data/synth.c) and `sogclip data synth` (tools/cmd_synth.c):
# the embedded demo's data. Needs cmake/data_image.cmake (sg_encode_jpeg, sg_decode) and, for
# test_synth, cmake/data.cmake (sg_dataset_open reads the output back).
list(APPEND SG_OP_SOURCES data/synth.c tools/cmd_synth.c)
list(APPEND SG_TESTS test_synth)
# Float geometry without FMA contraction: every pixel, hence every file, is the same under any
# x86-64 build.
set_source_files_properties(data/synth.c PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
