# open_clip text tower: nn/transformer.c (ResidualAttentionBlock / Transformer) and
# text/text_encoder.c (token + positional embedding, causal transformer, ln_final, EOT pooling,
# text_projection).
list(APPEND SG_OP_SOURCES nn/transformer.c text/text_encoder.c)
list(APPEND SG_TESTS test_text_encoder)
