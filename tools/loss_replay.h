/*
 * tools/loss_replay.h — `sogclip loss`: replay a sequence of K loss steps from a safetensors
 * file and write every step's loss, gradients and the final state (contract in README,
 * "Loss replay"). Library function so that tests run it in-process.
 *
 * Input file:
 *   __metadata__: loss = sogclr | fastclip, steps = K, N, tau, gamma, gamma_schedule
 *                 (constant | cosine), gamma_decay_epochs, rho (fastclip)
 *   step.<k>.zi, step.<k>.zt   F32 [B_k, d]  L2-normalised image / text features
 *   step.<k>.index             I64 [B_k]     global sample ids
 *   step.<k>.epoch             I64 [1]       optional; default: the previous step's (0 first)
 *   step.<k>.tau               F32 [1]       fastclip: the temperature of step k
 *   state.*                    optional initial state, names as written by the loss's
 *                              *_state_save with prefix "state." (all of them, or none)
 * Output file: the input metadata, plus per step step.<k>.loss, step.<k>.objective (F32 [1]),
 *   step.<k>.dzi, step.<k>.dzt (F32 [B_k, d]), fastclip also step.<k>.dtau and
 *   step.<k>.dlog_scale (F32 [1]); and the final state under "state.".
 */
#ifndef SG_LOSS_REPLAY_H
#define SG_LOSS_REPLAY_H

/* Returns 0, or -1 with sg_last_error() set (file, step and tensor named). use_ref selects the
 * plain double-precision reference implementation instead of the fast path. */
int sg_loss_replay(const char *in_path, const char *out_path, int nthreads, int use_ref);

#endif
