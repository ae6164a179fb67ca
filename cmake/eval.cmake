# Evaluation metrics on given embeddings (retrieval, zero-shot, linear probe) and results
# output (table, CLIP_benchmark JSON): eval/metrics.c, eval/results.c.
list(APPEND SG_OP_SOURCES eval/metrics.c eval/results.c eval/clip_eval.c eval/linear_probe.c
     tools/cmd_eval.c tools/cmd_embed.c)
list(APPEND SG_TESTS test_metrics)
set_source_files_properties(eval/clip_eval.c PROPERTIES COMPILE_DEFINITIONS
                            "SG_SOURCE_DIR=\"${CMAKE_SOURCE_DIR}\"")
