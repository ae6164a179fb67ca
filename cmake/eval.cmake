# Evaluation metrics on given embeddings (retrieval, zero-shot, linear probe) and results
# output (table, CLIP_benchmark JSON): eval/metrics.c, eval/results.c.
list(APPEND SG_OP_SOURCES eval/metrics.c eval/results.c eval/clip_eval.c eval/linear_probe.c
     tools/cmd_eval.c tools/cmd_embed.c)
list(APPEND SG_TESTS test_metrics)
set_source_files_properties(eval/clip_eval.c PROPERTIES COMPILE_DEFINITIONS
                            "SG_SOURCE_DIR=\"${CMAKE_SOURCE_DIR}\"")
# End-to-end: a briefly trained Flickr8k model beats chance retrieval on the val split by a stated
# margin (scripts/check_flickr8k.sh; ~2.5 min on 2 cores; skipped without ../shared/data).
add_test(NAME flickr8k_beats_chance
         COMMAND ${CMAKE_SOURCE_DIR}/scripts/check_flickr8k.sh ${CMAKE_BINARY_DIR})
set_tests_properties(flickr8k_beats_chance PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 1200 LABELS long
                     ENVIRONMENT "OMP_NUM_THREADS=2")
