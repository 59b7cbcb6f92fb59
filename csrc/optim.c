/* optim.c - optimizer update kernels (float32 and float64 from optim_impl.h)
 * and the step driver that clips gradients and dispatches on kind and dtype. */
#include <math.h>

#include "fastopt.h"

#define T float
#define S f32
#define FO_SQRT sqrtf
#include "optim_impl.h"
#undef T
#undef S
#undef FO_SQRT

#define T double
#define S f64
#define FO_SQRT sqrt
#include "optim_impl.h"
#undef T
#undef S
#undef FO_SQRT

void fo_optim_slots_used(int kind, const fo_optim_hyper *h, int used[FO_MAX_SLOTS])
{
    for (int k = 0; k < FO_MAX_SLOTS; k++)
        used[k] = 0;
    switch (kind) {
    case FO_SGD:
        used[0] = h->momentum > 0;
        break;
    case FO_ADAGRAD:
        used[0] = 1;
        break;
    case FO_RMSPROP:
        used[0] = 1;
        used[1] = h->momentum > 0;
        used[2] = h->centered != 0;
        break;
    case FO_ADAM:
        used[0] = used[1] = 1;
        used[2] = h->amsgrad != 0;
        break;
    }
}

static double sumsq(int dtype, const void *x, size_t n)
{
    return dtype == FO_F32 ? fo_sumsq_f32((const float *)x, n) : fo_sumsq_f64((const double *)x, n);
}

/* Keras' clip_by_norm / clip_by_global_norm: g * c / max(norm, c).  A NaN
 * norm makes every gradient NaN, as in Keras and torch's clip_grad_norm_. */
static double clip_scale(double sq, double c)
{
    double norm = sqrt(sq);
    return norm <= c ? 1.0 : c / norm;
}

#define FO_STEP(T, S)                                                                       \
    static void step_##S(int kind, const fo_optim_buffers *b, const fo_optim_hyper *h,     \
                         double scale)                                                      \
    {                                                                                       \
        T *var = (T *)b->var;                                                               \
        const T *g = (const T *)b->grad;                                                    \
        T *s0 = (T *)b->slot[0], *s1 = (T *)b->slot[1], *s2 = (T *)b->slot[2];              \
        switch (kind) {                                                                     \
        case FO_SGD:                                                                        \
            fo_sgd_step_##S(var, s0, g, b->n, h, scale);                                    \
            break;                                                                          \
        case FO_ADAGRAD:                                                                    \
            fo_adagrad_step_##S(var, s0, g, b->n, h, scale);                                \
            break;                                                                          \
        case FO_RMSPROP:                                                                    \
            fo_rmsprop_step_##S(var, s0, s1, s2, g, b->n, h, scale);                        \
            break;                                                                          \
        case FO_ADAM:                                                                       \
            fo_adam_step_##S(var, s0, s1, s2, g, b->n, h, scale);                           \
            break;                                                                          \
        }                                                                                   \
    }
FO_STEP(float, f32)
FO_STEP(double, f64)

void fo_optim_update(int kind, size_t nvars, const fo_optim_buffers *bufs,
                     const fo_optim_hyper *h)
{
    /* Keras' precedence: clipnorm, else global_clipnorm, else clipvalue */
    fo_optim_hyper hh = *h;
    if (hh.clipnorm > 0 || hh.global_clipnorm > 0)
        hh.clipvalue = 0;
    h = &hh;
    double global_scale = 1.0;
    if (h->clipnorm <= 0 && h->global_clipnorm > 0) {
        double sq = 0;
        for (size_t k = 0; k < nvars; k++)
            sq += sumsq(bufs[k].dtype, bufs[k].grad, bufs[k].n);
        global_scale = clip_scale(sq, h->global_clipnorm);
    }
    for (size_t k = 0; k < nvars; k++) {
        double scale = global_scale;
        if (h->clipnorm > 0)
            scale = clip_scale(sumsq(bufs[k].dtype, bufs[k].grad, bufs[k].n), h->clipnorm);
        if (bufs[k].dtype == FO_F32)
            step_f32(kind, &bufs[k], h, scale);
        else
            step_f64(kind, &bufs[k], h, scale);
    }
}
