# linear / matmul / attention (owner: matmul+attention family)
list(APPEND SG_OP_SOURCES ops/matmul.c ops/attention.c)
list(APPEND SG_TESTS test_matmul test_attention)
