# CLIP ModifiedResNet image encoder (vision/modified_resnet.c) and its torch-reference test.
list(APPEND SG_OP_SOURCES vision/modified_resnet.c)
list(APPEND SG_TESTS test_modified_resnet)
