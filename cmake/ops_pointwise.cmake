# activations, softmax, elementwise (residual add, l2 normalise, dropout), layout ops (patch)
list(APPEND SG_OP_SOURCES ops/activation.c ops/softmax.c ops/elementwise.c ops/patch.c ops/input.c)
list(APPEND SG_TESTS test_activation test_softmax test_elementwise)
