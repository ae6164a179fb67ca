# conv2d / pooling
list(APPEND SG_OP_SOURCES ops/conv.c ops/pool.c)
list(APPEND SG_TESTS test_conv test_pool)
