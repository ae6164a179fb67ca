# The sogclip command (tools/sogclip.c is the only main()) and its library-side subcommands.
list(APPEND SG_OP_SOURCES tools/loss_replay.c tools/cmd_model.c)
list(APPEND SG_TESTS test_loss_replay)
