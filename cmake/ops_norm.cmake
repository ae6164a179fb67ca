# layernorm / batchnorm
list(APPEND SG_OP_SOURCES ops/norm.c)
list(APPEND SG_TESTS test_norm)
