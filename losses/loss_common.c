/* losses/loss_common.c — see loss_common.h. */
#include "losses/loss_common.h"

#include <math.h>
#include <stdint.h>

#include "core/common.h"
#include "ops/vmath.h"

static int64_t count_nonfinite(const float *x, int64_t n)
{
    int64_t bad = 0;
#pragma omp simd reduction(+ : bad)
    for (int64_t i = 0; i < n; i++) bad += (sg_f32_bits(x[i]) & 0x7f800000u) == 0x7f800000u;
    return bad;
}

int sg_loss_check_finite(const char *who, const char *name, const float *z, int B, int d)
{
    int64_t n = (int64_t)B * d;
    if (count_nonfinite(z, n) == 0) return 0;
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(z[k]))
            return sg_err("%s: %s[%lld, %lld] = %g is not finite; the features must be finite "
                          "L2-normalised vectors (check the model for NaN/overflow)",
                          who, name, (long long)(k / d), (long long)(k % d), (double)z[k]);
    return 0;
}
