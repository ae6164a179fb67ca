# open_clip / OpenAI CLIP VisionTransformer image tower (vision/vit.c on nn/transformer.c).
list(APPEND SG_OP_SOURCES vision/vit.c)
list(APPEND SG_TESTS test_vit)
