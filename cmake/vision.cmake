# nn modules and the ResNet image encoder
list(APPEND SG_OP_SOURCES nn/layers.c vision/resnet.c)
list(APPEND SG_TESTS test_resnet)
