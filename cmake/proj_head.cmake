# SimCLR/SogCLR projection MLP head (vision/proj_head.c).
list(APPEND SG_OP_SOURCES vision/proj_head.c)
list(APPEND SG_TESTS test_proj_head)
