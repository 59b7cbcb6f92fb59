/* loss.c - the losses of one batch with their gradients, the fused
 * sigmoid/softmax + cross-entropy form, target and weight checks and the
 * metrics' per-batch sums, for float32 and float64 (from loss_impl.h). */
#include <math.h>
#include <string.h>

#include "fastopt.h"

int fo_loss_fuses(const fo_loss_spec *s, int act)
{
    if (s->from_logits)
        return 0;
    return (s->kind == FO_LOSS_BCE && act == FO_SIGMOID) ||
           ((s->kind == FO_LOSS_CCE || s->kind == FO_LOSS_SCCE) && act == FO_SOFTMAX);
}

size_t fo_metric_acc_size(const fo_metric_spec *m, size_t C)
{
    return m->kind == FO_METRIC_R2 ? 4 * C + 1 : 2;
}

#define T float
#define S f32
#define FO_EXP_FN expf
#define FO_LOG_FN logf
#define FO_LOG1P_FN log1pf
#define FO_TANH_FN tanhf
#define FO_FABS_FN fabsf
#define FO_FLOOR_FN floorf
#include "loss_impl.h"
#undef T
#undef S
#undef FO_EXP_FN
#undef FO_LOG_FN
#undef FO_LOG1P_FN
#undef FO_TANH_FN
#undef FO_FABS_FN
#undef FO_FLOOR_FN

#define T double
#define S f64
#define FO_EXP_FN exp
#define FO_LOG_FN log
#define FO_LOG1P_FN log1p
#define FO_TANH_FN tanh
#define FO_FABS_FN fabs
#define FO_FLOOR_FN floor
#include "loss_impl.h"
#undef T
#undef S
#undef FO_EXP_FN
#undef FO_LOG_FN
#undef FO_LOG1P_FN
#undef FO_TANH_FN
#undef FO_FABS_FN
#undef FO_FLOOR_FN
