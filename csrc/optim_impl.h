/*
 * optim_impl.h - the optimizer update kernels, written once and expanded for
 * each dtype by optim.c:  #define T float / S f32, then #include this file.
 *
 * Every kernel makes one pass over memory: it reads grad, var and its slots
 * once and writes var and the slots once.  The arithmetic is done in T, as
 * torch.optim does, so float32 runs at float32 speed.  The update rules are
 * Keras 3's (see python/fastopt/optimizers.py for the formulas and where they
 * differ from torch.optim).
 */
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_FN(name) FO_CAT(name, S)

/* The gradient element as the update sees it: scaled by the norm clip, then
 * clipped elementwise.  `clip` is a compile-time constant at every call site,
 * so each kernel is compiled twice: a plain loop and a clipping loop. */
FO_INLINE T FO_FN(fo_load_grad)(const T *restrict grad, size_t i, int clip, T scale, T cv)
{
    T g = grad[i];
    if (clip) {
        g *= scale;
        g = g > cv ? cv : (g < -cv ? -cv : g); /* NaN stays NaN */
    }
    return g;
}

FO_INLINE void FO_FN(fo_sgd_body)(T *restrict var, T *restrict mom, const T *restrict grad,
                                  size_t n, const fo_optim_hyper *h, int clip, T scale, T cv)
{
    const T lr = (T)h->learning_rate;
    const T decay = (T)(1.0 - h->learning_rate * h->weight_decay);
    const T mu = (T)h->momentum;
    if (mom == NULL) {
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, clip, scale, cv);
            var[i] = var[i] * decay - lr * g;
        }
    } else if (h->nesterov) {
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, clip, scale, cv);
            T m = mu * mom[i] - lr * g;
            mom[i] = m;
            var[i] = var[i] * decay + (mu * m - lr * g);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, clip, scale, cv);
            T m = mu * mom[i] - lr * g;
            mom[i] = m;
            var[i] = var[i] * decay + m;
        }
    }
}

FO_INLINE void FO_FN(fo_adagrad_body)(T *restrict var, T *restrict acc, const T *restrict grad,
                                      size_t n, const fo_optim_hyper *h, int clip, T scale,
                                      T cv)
{
    const T lr = (T)h->learning_rate;
    const T decay = (T)(1.0 - h->learning_rate * h->weight_decay);
    const T eps = (T)h->epsilon;
    for (size_t i = 0; i < n; i++) {
        T g = FO_FN(fo_load_grad)(grad, i, clip, scale, cv);
        T a = acc[i] + g * g;
        acc[i] = a;
        var[i] = var[i] * decay - lr * g / FO_SQRT(a + eps);
    }
}

FO_INLINE void FO_FN(fo_rmsprop_body)(T *restrict var, T *restrict vel, T *restrict mom,
                                      T *restrict avg, const T *restrict grad, size_t n,
                                      const fo_optim_hyper *h, int clip, T scale, T cv)
{
    const T lr = (T)h->learning_rate;
    const T decay = (T)(1.0 - h->learning_rate * h->weight_decay);
    const T eps = (T)h->epsilon;
    const T rho = (T)h->rho, one_m_rho = (T)(1.0 - h->rho);
    const T mu = (T)h->momentum;
    for (size_t i = 0; i < n; i++) {
        T g = FO_FN(fo_load_grad)(grad, i, clip, scale, cv);
        T v = rho * vel[i] + one_m_rho * (g * g);
        vel[i] = v;
        T denom = v + eps;
        if (avg) {
            T a = rho * avg[i] + one_m_rho * g;
            avg[i] = a;
            denom = v - a * a + eps;
        }
        T inc = lr * g / FO_SQRT(denom);
        if (mom) {
            inc = mu * mom[i] + inc;
            mom[i] = inc;
        }
        var[i] = var[i] * decay - inc;
    }
}

FO_INLINE void FO_FN(fo_adam_body)(T *restrict var, T *restrict m, T *restrict v,
                                   T *restrict v_hat, const T *restrict grad, size_t n,
                                   const fo_optim_hyper *h, int clip, T scale, T cv)
{
    const double t = (double)(h->iteration + 1);
    const double b1p = pow(h->beta_1, t), b2p = pow(h->beta_2, t);
    const T alpha = (T)(h->learning_rate * sqrt(1.0 - b2p) / (1.0 - b1p));
    const T decay = (T)(1.0 - h->learning_rate * h->weight_decay);
    const T eps = (T)h->epsilon;
    const T one_m_b1 = (T)(1.0 - h->beta_1), one_m_b2 = (T)(1.0 - h->beta_2);
    if (v_hat == NULL) {
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, clip, scale, cv);
            T mi = m[i] + (g - m[i]) * one_m_b1;
            T vi = v[i] + (g * g - v[i]) * one_m_b2;
            m[i] = mi;
            v[i] = vi;
            var[i] = var[i] * decay - alpha * mi / (FO_SQRT(vi) + eps);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            T g = FO_FN(fo_load_grad)(grad, i, clip, scale, cv);
            T mi = m[i] + (g - m[i]) * one_m_b1;
            T vi = v[i] + (g * g - v[i]) * one_m_b2;
            T vh = v_hat[i] > vi ? v_hat[i] : vi;
            m[i] = mi;
            v[i] = vi;
            v_hat[i] = vh;
            var[i] = var[i] * decay - alpha * mi / (FO_SQRT(vh) + eps);
        }
    }
}

/* The public kernels: pick the plain or the clipping loop once per call. */
#define FO_CLIP_DISPATCH(body, ...)                                                        \
    do {                                                                                   \
        const int clip_ = grad_scale != 1.0 || h->clipvalue > 0;                           \
        const T scale_ = (T)grad_scale;                                                    \
        const T cv_ = h->clipvalue > 0 ? (T)h->clipvalue : (T)INFINITY;                    \
        if (clip_)                                                                         \
            body(__VA_ARGS__, 1, scale_, cv_);                                             \
        else                                                                               \
            body(__VA_ARGS__, 0, scale_, cv_);                                             \
    } while (0)

FO_CLONES
void FO_FN(fo_sgd_step)(T *var, T *momentum, const T *grad, size_t n, const fo_optim_hyper *h,
                        double grad_scale)
{
    FO_CLIP_DISPATCH(FO_FN(fo_sgd_body), var, momentum, grad, n, h);
}

FO_CLONES
void FO_FN(fo_adagrad_step)(T *var, T *accumulator, const T *grad, size_t n,
                            const fo_optim_hyper *h, double grad_scale)
{
    FO_CLIP_DISPATCH(FO_FN(fo_adagrad_body), var, accumulator, grad, n, h);
}

FO_CLONES
void FO_FN(fo_rmsprop_step)(T *var, T *velocity, T *momentum, T *average_grad, const T *grad,
                            size_t n, const fo_optim_hyper *h, double grad_scale)
{
    FO_CLIP_DISPATCH(FO_FN(fo_rmsprop_body), var, velocity, momentum, average_grad, grad, n, h);
}

FO_CLONES
void FO_FN(fo_adam_step)(T *var, T *m, T *v, T *v_hat, const T *grad, size_t n,
                         const fo_optim_hyper *h, double grad_scale)
{
    FO_CLIP_DISPATCH(FO_FN(fo_adam_body), var, m, v, v_hat, grad, n, h);
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

#undef FO_CLIP_DISPATCH
#undef FO_FN
#undef FO_CAT
#undef FO_CAT_
