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
 *
 * Each element's inputs are all read before any of its outputs is written.
 * The arrays of a large step usually sit at one offset within their pages
 * (NumPy's allocations), and a load that follows a store to the same offset of
 * another page waits for that store (4K aliasing): with var loaded after the
 * slots were stored, SGD and Adam steps on L3-resident arrays ran about 20%
 * slower.  The written arrays are therefore not restrict-qualified, so the
 * compiler cannot move a read after a write (with restrict, GCC sank var's
 * load to its last use), and FO_IVDEP tells the vectorizer that iterations
 * are independent (the bindings refuse arrays that overlap), so no loop needs
 * run-time overlap checks.
 */
#ifndef FO_IVDEP
#if defined(__clang__)
#define FO_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define FO_IVDEP _Pragma("GCC ivdep")
#else
#define FO_IVDEP
#endif
#endif
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_FN(name) FO_CAT(name, S)

/* x's exponent bits plus one unit of the exponent: the sign bit of the result
 * is set exactly when they are all set (x is NaN or infinite).  ORed over a
 * loop and tested once at its end (fo_none_flagged): an AND and an ADD per
 * element, both in SSE2, where a compare and a mask took four operations. */
FO_INLINE U FO_FN(fo_nonfinite)(T x)
{
    U u;
    memcpy(&u, &x, sizeof u);
    return (U)((u & FO_EXP_BITS) + (FO_EXP_BITS & (U) - FO_EXP_BITS));
}

FO_INLINE int FO_FN(fo_none_flagged)(U bad)
{
    return (bad >> (sizeof(U) * 8 - 1)) == 0;
}

/* What the general loops apply besides the rule.  `general` is a compile-time
 * constant at every call site: -1, the rule alone, where the decay factor is
 * exactly 1 (no weight decay: var * 1 is var, so the multiply is left out);
 * 0, the plain loop, multiplies by the decay factor; 1 also scales and clips
 * the gradient; 2 also reads the weight-decay mask.  So each kernel is
 * compiled four times, every loop free of branches that would keep it from
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
    if (general > 0) {
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

/* var[i] after decoupled weight decay: var[i] itself when general == -1 */
FO_INLINE T FO_FN(fo_decayed)(T w, T decay, size_t i, int general, const FO_FN(fo_extra) *x)
{
    return general < 0 ? w : w * FO_FN(fo_decay)(decay, i, general, x);
}

FO_INLINE int FO_FN(fo_sgd_body)(T *var, T *mom, const T *restrict grad,
                                 size_t n, const fo_optim_hyper *h, int general,
                                 const FO_FN(fo_extra) *x)
{
    const T lr = (T)h->learning_rate;
    const T decay = (T)(1.0 - h->learning_rate * h->weight_decay);
    const T mu = (T)h->momentum;
    U bad = 0;
    if (mom == NULL) {
        FO_IVDEP
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, general, x);
            const T w0 = FO_FN(fo_decayed)(var[i], decay, i, general, x);
            T w = w0 - lr * g;
            var[i] = w;
            bad |= FO_FN(fo_nonfinite)(w);
        }
    } else if (h->nesterov) {
        FO_IVDEP
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, general, x);
            const T w0 = FO_FN(fo_decayed)(var[i], decay, i, general, x);
            T m = mu * mom[i] - lr * g;
            mom[i] = m;
            T w = w0 + (mu * m - lr * g);
            var[i] = w;
            bad |= FO_FN(fo_nonfinite)(w);
        }
    } else {
        FO_IVDEP
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, general, x);
            const T w0 = FO_FN(fo_decayed)(var[i], decay, i, general, x);
            T m = mu * mom[i] - lr * g;
            mom[i] = m;
            T w = w0 + m;
            var[i] = w;
            bad |= FO_FN(fo_nonfinite)(w);
        }
    }
    return FO_FN(fo_none_flagged)(bad);
}

FO_INLINE int FO_FN(fo_adagrad_body)(T *var, T *acc, const T *restrict grad,
                                     size_t n, const fo_optim_hyper *h, int general,
                                     const FO_FN(fo_extra) *x)
{
    const T lr = (T)h->learning_rate;
    const T decay = (T)(1.0 - h->learning_rate * h->weight_decay);
    const T eps = (T)h->epsilon;
    U bad = 0;
    FO_IVDEP
    for (size_t i = 0; i < n; i++) {
        T g = FO_FN(fo_load_grad)(grad, i, general, x);
        const T w0 = FO_FN(fo_decayed)(var[i], decay, i, general, x);
        T a = acc[i] + g * g;
        acc[i] = a;
        T w = w0 - lr * g / FO_SQRT(a + eps);
        var[i] = w;
        bad |= FO_FN(fo_nonfinite)(w);
    }
    return FO_FN(fo_none_flagged)(bad);
}

/* centered and with_momentum are compile-time constants at each call below, so
 * every combination is its own branch-free loop */
FO_INLINE int FO_FN(fo_rmsprop_loop)(T *var, T *vel, T *mom, T *avg, const T *restrict grad,
                                     size_t n,
                                     const fo_optim_hyper *h, int general,
                                     const FO_FN(fo_extra) *x, int centered, int with_momentum)
{
    const T lr = (T)h->learning_rate;
    const T decay = (T)(1.0 - h->learning_rate * h->weight_decay);
    const T eps = (T)h->epsilon;
    const T rho = (T)h->rho, one_m_rho = (T)(1.0 - h->rho);
    const T mu = (T)h->momentum;
    U bad = 0;
    FO_IVDEP
    for (size_t i = 0; i < n; i++) {
        T g = FO_FN(fo_load_grad)(grad, i, general, x);
        const T w0 = FO_FN(fo_decayed)(var[i], decay, i, general, x), v0 = vel[i];
        const T a0 = centered ? avg[i] : 0, m0 = with_momentum ? mom[i] : 0; /* constants */
        T v = rho * v0 + one_m_rho * (g * g);
        vel[i] = v;
        T denom = v + eps;
        if (centered) {
            T a = rho * a0 + one_m_rho * g;
            avg[i] = a;
            denom = v - a * a + eps;
        }
        T inc = lr * g / FO_SQRT(denom);
        if (with_momentum) {
            inc = mu * m0 + inc;
            mom[i] = inc;
        }
        T w = w0 - inc;
        var[i] = w;
        bad |= FO_FN(fo_nonfinite)(w);
    }
    return FO_FN(fo_none_flagged)(bad);
}

FO_INLINE int FO_FN(fo_rmsprop_body)(T *var, T *vel, T *mom, T *avg, const T *restrict grad,
                                     size_t n,
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

FO_INLINE int FO_FN(fo_adam_body)(T *var, T *m, T *v, T *v_hat, const T *restrict grad,
                                  size_t n,
                                  const fo_optim_hyper *h, int general,
                                  const FO_FN(fo_extra) *x)
{
    const T alpha = (T)h->adam_step_size;
    const T decay = (T)(1.0 - h->learning_rate * h->weight_decay);
    const T eps = (T)h->epsilon;
    const T one_m_b1 = (T)(1.0 - h->beta_1), one_m_b2 = (T)(1.0 - h->beta_2);
    U bad = 0;
    if (v_hat == NULL) {
        FO_IVDEP
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, general, x);
            const T w0 = FO_FN(fo_decayed)(var[i], decay, i, general, x);
            const T m0 = m[i], v0 = v[i];
            T mi = m0 + (g - m0) * one_m_b1;
            T vi = v0 + (g * g - v0) * one_m_b2;
            m[i] = mi;
            v[i] = vi;
            T w = w0 - alpha * mi / (FO_SQRT(vi) + eps);
            var[i] = w;
            bad |= FO_FN(fo_nonfinite)(w);
        }
    } else {
        FO_IVDEP
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, general, x);
            const T w0 = FO_FN(fo_decayed)(var[i], decay, i, general, x);
            const T m0 = m[i], v0 = v[i], vh0 = v_hat[i];
            T mi = m0 + (g - m0) * one_m_b1;
            T vi = v0 + (g * g - v0) * one_m_b2;
            T vh = vh0 > vi ? vh0 : vi;
            m[i] = mi;
            v[i] = vi;
            v_hat[i] = vh;
            T w = w0 - alpha * mi / (FO_SQRT(vh) + eps);
            var[i] = w;
            bad |= FO_FN(fo_nonfinite)(w);
        }
    }
    return FO_FN(fo_none_flagged)(bad);
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
        if ((T)(1.0 - h->learning_rate * h->weight_decay) == (T)1)                         \
            return body(__VA_ARGS__, -1, &x_);                                             \
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
