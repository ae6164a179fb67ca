# unimodal SogCLR / iSogCLR loss (owner: unimodal)
list(APPEND SG_OP_SOURCES losses/sogclr_uni.c losses/sogclr_uni_dist.c)
list(APPEND SG_TESTS test_sogclr_uni)
