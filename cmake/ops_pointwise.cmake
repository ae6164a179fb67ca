# activations, softmax, elementwise (residual add, l2 normalise, dropout)
list(APPEND SG_OP_SOURCES ops/activation.c ops/softmax.c ops/elementwise.c)
list(APPEND SG_TESTS test_activation test_softmax test_elementwise)
