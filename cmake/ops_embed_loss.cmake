# embedding and cross-entropy
list(APPEND SG_OP_SOURCES ops/embedding.c ops/loss.c)
list(APPEND SG_TESTS test_embedding test_loss)
