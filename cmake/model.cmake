# CLIP model assembly: image tower + text tower + logit scale from a model config
# (configs/models/<name>.yaml; SOGCLIP_MODEL_DIR overrides the directory at run time).
list(APPEND SG_OP_SOURCES model/clip.c model/clip_config.c)
set_source_files_properties(model/clip_config.c PROPERTIES COMPILE_DEFINITIONS
                            "SG_MODEL_DIR=\"${CMAKE_SOURCE_DIR}/configs/models\"")
list(APPEND SG_TESTS test_clip_model)
