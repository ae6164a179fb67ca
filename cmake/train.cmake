# `sogclip train`: training config, loss interface, checkpoints, the training loop.
list(APPEND SG_OP_SOURCES train/config.c train/train_loss.c train/checkpoint.c train/trainer.c
     tools/cmd_train.c)
