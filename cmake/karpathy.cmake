# Karpathy split JSON datasets (dataset_coco.json / dataset_flickr8k.json / dataset_flickr30k.json)
# for retrieval evaluation (data/ds_karpathy.c), on the shared minimal JSON reader (data/json.c,
# also used by data/ds_wds.c). Needs cmake/data.cmake and cmake/data_image.cmake.
list(APPEND SG_OP_SOURCES data/json.c data/ds_karpathy.c)
list(APPEND SG_TESTS test_karpathy)
