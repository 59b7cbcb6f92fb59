/*
 * optim_impl.h - the optimizer update kernels, written once and expanded for
 * each dtype by optim.c:  #define T float / S f32 / U uint32_t / FO_EXP_BITS,
 * then #include this file.
 *
 * Every kernel makes one pass over memory: it reads grad, var and its slots
 * once and writes var and the slots once.  The arithmetic is done in T, as
 * torch.optim does, so float32 runs at float32 speed.  The update rules are
 * Keras 3's (see python/fastopt/optimizers.py for the formulas and where they
 * differ from torch.optim).  The same pass tells whether every new value of
 * var is finite (an integer OR of an exponent test, which vectorizes), so
 * divergence is noticed at no extra memory traffic.
 */
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_FN(name) FO_CAT(name, S)

/* 1 if x is NaN or infinite (all exponent bits set), as an integer of T's width */
FO_INLINE U FO_FN(fo_nonfinite)(T x)
{
    U u;
    memcpy(&u, &x, sizeof u);
    return (U)((u & FO_EXP_BITS) == FO_EXP_BITS);
}

/* What the general loops apply besides the rule.  `general` is a compile-time
 * constant at every call site: 0, the plain loop, applies none of it; 1 scales
 * and clips the gradient; 2 also reads the weight-decay mask.  So each kernel
 * is compiled three times, every loop free of branches that would keep it from
 * vectorizing. */
typedef struct {
    T lsf;               /* loss_scale_factor: g <- g / lsf (1 when off: exact) */
    T scale;             /* norm clip: g <- g * scale */
    T cv;                /* clipvalue: g <- clip(g, -cv, cv) (INFINITY when off) */
    const T *mask;       /* weight decay where mask[i] != 0 (general == 2 only) */
} FO_FN(fo_extra);

/* The gradient element as the update sees it. */
FO_INLINE T FO_FN(fo_load_grad)(const T *restrict grad, size_t i, int general,
                                const FO_FN(fo_extra) *x)
{
    T g = grad[i];
    if (general) {
        g = g / x->lsf;
        g *= x->scale;
        g = g > x->cv ? x->cv : (g < -x->cv ? -x->cv : g); /* NaN stays NaN */
    }
    return g;
}

/* The decoupled weight decay factor of element i. */
FO_INLINE T FO_FN(fo_decay)(T decay, size_t i, int general, const FO_FN(fo_extra) *x)
{
    if (general == 2) {
        /* decay where mask[i] != 0, else 1, blended with integer masks (a branch
         * or a floating-point select keeps some compilers from vectorizing) */
        const T one = 1;
        U bits, d, o, r;
        memcpy(&bits, &x->mask[i], sizeof bits);
        memcpy(&d, &decay, sizeof d);
        memcpy(&o, &one, sizeof o);
        const U on = (U)0 - (U)((U)(bits << 1) != 0); /* all ones unless mask[i] is +-0 */
        r = (d & on) | (o & ~on);
        T out;
        memcpy(&out, &r, sizeof out);
        return out;
    }
    return decay;
}

FO_INLINE int FO_FN(fo_sgd_body)(T *restrict var, T *restrict mom, const T *restrict grad,
                                 size_t n, const fo_optim_hyper *h, int general,
                                 const FO_FN(fo_extra) *x)
{
    const T lr = (T)h->learning_rate;
    const T decay = (T)(1.0 - h->learning_rate * h->weight_decay);
    const T mu = (T)h->momentum;
    U bad = 0;
    if (mom == NULL) {
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, general, x);
            T w = var[i] * FO_FN(fo_decay)(decay, i, general, x) - lr * g;
            var[i] = w;
            bad |= FO_FN(fo_nonfinite)(w);
        }
    } else if (h->nesterov) {
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, general, x);
            T m = mu * mom[i] - lr * g;
            mom[i] = m;
            T w = var[i] * FO_FN(fo_decay)(decay, i, general, x) + (mu * m - lr * g);
            var[i] = w;
            bad |= FO_FN(fo_nonfinite)(w);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, general, x);
            T m = mu * mom[i] - lr * g;
            mom[i] = m;
            T w = var[i] * FO_FN(fo_decay)(decay, i, general, x) + m;
            var[i] = w;
            bad |= FO_FN(fo_nonfinite)(w);
        }
    }
    return bad == 0;
}

FO_INLINE int FO_FN(fo_adagrad_body)(T *restrict var, T *restrict acc, const T *restrict grad,
                                     size_t n, const fo_optim_hyper *h, int general,
                                     const FO_FN(fo_extra) *x)
{
    const T lr = (T)h->learning_rate;
    const T decay = (T)(1.0 - h->learning_rate * h->weight_decay);
    const T eps = (T)h->epsilon;
    U bad = 0;
    for (size_t i = 0; i < n; i++) {
        T g = FO_FN(fo_load_grad)(grad, i, general, x);
        T a = acc[i] + g * g;
        acc[i] = a;
        T w = var[i] * FO_FN(fo_decay)(decay, i, general, x) - lr * g / FO_SQRT(a + eps);
        var[i] = w;
        bad |= FO_FN(fo_nonfinite)(w);
    }
    return bad == 0;
}

/* centered and with_momentum are compile-time constants at each call below, so
 * every combination is its own branch-free loop */
FO_INLINE int FO_FN(fo_rmsprop_loop)(T *restrict var, T *restrict vel, T *restrict mom,
                                     T *restrict avg, const T *restrict grad, size_t n,
                                     const fo_optim_hyper *h, int general,
                                     const FO_FN(fo_extra) *x, int centered, int with_momentum)
{
    const T lr = (T)h->learning_rate;
    const T decay = (T)(1.0 - h->learning_rate * h->weight_decay);
    const T eps = (T)h->epsilon;
    const T rho = (T)h->rho, one_m_rho = (T)(1.0 - h->rho);
    const T mu = (T)h->momentum;
    U bad = 0;
    for (size_t i = 0; i < n; i++) {
        T g = FO_FN(fo_load_grad)(grad, i, general, x);
        T v = rho * vel[i] + one_m_rho * (g * g);
        vel[i] = v;
        T denom = v + eps;
        if (centered) {
            T a = rho * avg[i] + one_m_rho * g;
            avg[i] = a;
            denom = v - a * a + eps;
        }
        T inc = lr * g / FO_SQRT(denom);
        if (with_momentum) {
            inc = mu * mom[i] + inc;
            mom[i] = inc;
        }
        T w = var[i] * FO_FN(fo_decay)(decay, i, general, x) - inc;
        var[i] = w;
        bad |= FO_FN(fo_nonfinite)(w);
    }
    return bad == 0;
}

FO_INLINE int FO_FN(fo_rmsprop_body)(T *restrict var, T *restrict vel, T *restrict mom,
                                     T *restrict avg, const T *restrict grad, size_t n,
                                     const fo_optim_hyper *h, int general,
                                     const FO_FN(fo_extra) *x)
{
    if (avg && mom)
        return FO_FN(fo_rmsprop_loop)(var, vel, mom, avg, grad, n, h, general, x, 1, 1);
    if (avg)
        return FO_FN(fo_rmsprop_loop)(var, vel, mom, avg, grad, n, h, general, x, 1, 0);
    if (mom)
        return FO_FN(fo_rmsprop_loop)(var, vel, mom, avg, grad, n, h, general, x, 0, 1);
    return FO_FN(fo_rmsprop_loop)(var, vel, mom, avg, grad, n, h, general, x, 0, 0);
}

FO_INLINE int FO_FN(fo_adam_body)(T *restrict var, T *restrict m, T *restrict v,
                                  T *restrict v_hat, const T *restrict grad, size_t n,
                                  const fo_optim_hyper *h, int general,
                                  const FO_FN(fo_extra) *x)
{
    const T alpha = (T)h->adam_step_size;
    const T decay = (T)(1.0 - h->learning_rate * h->weight_decay);
    const T eps = (T)h->epsilon;
    const T one_m_b1 = (T)(1.0 - h->beta_1), one_m_b2 = (T)(1.0 - h->beta_2);
    U bad = 0;
    if (v_hat == NULL) {
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, general, x);
            T mi = m[i] + (g - m[i]) * one_m_b1;
            T vi = v[i] + (g * g - v[i]) * one_m_b2;
            m[i] = mi;
            v[i] = vi;
            T w = var[i] * FO_FN(fo_decay)(decay, i, general, x) - alpha * mi / (FO_SQRT(vi) + eps);
            var[i] = w;
            bad |= FO_FN(fo_nonfinite)(w);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, general, x);
            T mi = m[i] + (g - m[i]) * one_m_b1;
            T vi = v[i] + (g * g - v[i]) * one_m_b2;
            T vh = v_hat[i] > vi ? v_hat[i] : vi;
            m[i] = mi;
            v[i] = vi;
            v_hat[i] = vh;
            T w = var[i] * FO_FN(fo_decay)(decay, i, general, x) - alpha * mi / (FO_SQRT(vh) + eps);
            var[i] = w;
            bad |= FO_FN(fo_nonfinite)(w);
        }
    }
    return bad == 0;
}

/* The public kernels: pick the plain or the general loop once per call. */
#define FO_DISPATCH(body, ...)                                                             \
    do {                                                                                   \
        const double lsf_ = h->loss_scale_factor > 0 ? h->loss_scale_factor : 1.0;        \
        FO_FN(fo_extra) x_ = {(T)lsf_, (T)grad_scale,                                      \
                              h->clipvalue > 0 ? (T)h->clipvalue : (T)INFINITY,            \
                              decay_mask};                                                 \
        if (decay_mask)                                                                    \
            return body(__VA_ARGS__, 2, &x_);                                              \
        if (grad_scale != 1.0 || h->clipvalue > 0 || lsf_ != 1.0)                          \
            return body(__VA_ARGS__, 1, &x_);                                              \
        return body(__VA_ARGS__, 0, &x_);                                                  \
    } while (0)

FO_CLONES
int FO_FN(fo_sgd_step)(T *var, T *momentum, const T *grad, const T *decay_mask, size_t n,
                       const fo_optim_hyper *h, double grad_scale)
{
    FO_DISPATCH(FO_FN(fo_sgd_body), var, momentum, grad, n, h);
}

FO_CLONES
int FO_FN(fo_adagrad_step)(T *var, T *accumulator, const T *grad, const T *decay_mask, size_t n,
                           const fo_optim_hyper *h, double grad_scale)
{
    FO_DISPATCH(FO_FN(fo_adagrad_body), var, accumulator, grad, n, h);
}

FO_CLONES
int FO_FN(fo_rmsprop_step)(T *var, T *velocity, T *momentum, T *average_grad, const T *grad,
                           const T *decay_mask, size_t n, const fo_optim_hyper *h,
                           double grad_scale)
{
    FO_DISPATCH(FO_FN(fo_rmsprop_body), var, velocity, momentum, average_grad, grad, n, h);
}

FO_CLONES
int FO_FN(fo_adam_step)(T *var, T *m, T *v, T *v_hat, const T *grad, const T *decay_mask,
                        size_t n, const fo_optim_hyper *h, double grad_scale)
{
    FO_DISPATCH(FO_FN(fo_adam_body), var, m, v, v_hat, grad, n, h);
}

/* gradient accumulation (Keras: acc <- g + acc, and (g + acc) / steps at the
 * update), the gradient unscaled by the loss scale factor first */
void FO_FN(fo_accumulate)(T *restrict accum, const T *restrict grad, size_t n, double lsf)
{
    const T s = (T)(lsf > 0 ? lsf : 1.0);
    for (size_t i = 0; i < n; i++)
        accum[i] = grad[i] / s + accum[i];
}

void FO_FN(fo_accumulated_mean)(T *restrict accum, const T *restrict grad, size_t n, double lsf,
                                double steps)
{
    const T s = (T)(lsf > 0 ? lsf : 1.0), k = (T)steps;
    for (size_t i = 0; i < n; i++)
        accum[i] = (grad[i] / s + accum[i]) / k;
}

/* Keras' moving average of the weights: m is 0 at the first step */
void FO_FN(fo_ema)(T *restrict average, T *restrict var, size_t n, double m, int overwrite)
{
    const T mt = (T)m, one_m = (T)1 - mt;
    for (size_t i = 0; i < n; i++) {
        T a = mt * average[i] + one_m * var[i];
        average[i] = a;
        if (overwrite)
            var[i] = a;
    }
}

/* sum of squares in double, with 8 independent partial sums so the loop
 * vectorizes without reassociating a single accumulator */
FO_CLONES
double FO_FN(fo_sumsq)(const T *restrict x, size_t n)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)x[i + k] * (double)x[i + k];
    for (; i < n; i++)
        acc[0] += (double)x[i] * (double)x[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

#undef FO_DISPATCH
#undef FO_FN
#undef FO_CAT
#undef FO_CAT_
