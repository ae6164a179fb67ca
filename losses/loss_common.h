/*
 * losses/loss_common.h — input checks shared by the loss families.
 *
 * sg_loss_check_finite(who, name, z, B, d): 0 when every element of the features z (B, d) is
 * finite; otherwise -1 with sg_err naming the loss, the tensor and the first bad element
 * "[row, col]". The scan is a vectorised exponent-bit test (all-ones exponent = Inf/NaN); the
 * slow locating pass runs only on failure.
 */
#ifndef SG_LOSS_COMMON_H
#define SG_LOSS_COMMON_H

int sg_loss_check_finite(const char *who, const char *name, const float *z, int B, int d);

#endif
