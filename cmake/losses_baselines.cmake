# Baseline losses: CLIP InfoNCE with learnable logit scale, SimCLR NT-Xent.
list(APPEND SG_OP_SOURCES losses/loss_common.c losses/clip.c losses/simclr.c losses/clip_dist.c
     losses/simclr_dist.c)
list(APPEND SG_TESTS test_clip_loss test_simclr)
