/*
 * linear_impl.h - article 000's linear regression by gradient descent,
 * expanded per dtype by linear.c.  Model pred = x @ w + b, loss
 * mean((pred - y)^2); one fused pass over x per iteration computes the
 * residuals and both gradients.
 */
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_FN(name) FO_CAT(name, S)

/* dw (d) = 2/n x^T e, *db = 2/n sum e, e = x w + b - y; x (n,d), y (n), w (d).
 * Returns the loss mean(e^2) at (w, b). */
double FO_FN(fo_linear_gradient)(T *restrict dw, T *db, const T *restrict x, const T *restrict y,
                                 const T *restrict w, T b, size_t n, size_t d)
{
    double se = 0;
    T sb = 0;
    for (size_t j = 0; j < d; j++)
        dw[j] = 0;
    for (size_t i = 0; i < n; i++) {
        const T *restrict xi = x + i * d;
        T pred = b;
        for (size_t j = 0; j < d; j++)
            pred += xi[j] * w[j];
        const T e = pred - y[i];
        se += (double)e * (double)e;
        sb += e;
        for (size_t j = 0; j < d; j++)
            dw[j] += e * xi[j];
    }
    const T scale = n ? (T)(2.0 / (double)n) : 0;
    for (size_t j = 0; j < d; j++)
        dw[j] *= scale;
    *db = sb * scale;
    return n ? se / (double)n : 0.0;
}

/* iters steps of w <- w - lr dw, b <- b - lr db; dw: d elements of scratch.
 * Returns the loss before the last step (or at (w, b) when iters == 0). */
double FO_FN(fo_linear_gd)(T *w, T *b, T *dw, const T *x, const T *y, size_t n, size_t d, double lr,
                           size_t iters)
{
    const T a = (T)lr;
    double loss = 0;
    T db;
    if (iters == 0)
        return FO_FN(fo_linear_gradient)(dw, &db, x, y, w, *b, n, d);
    for (size_t it = 0; it < iters; it++) {
        loss = FO_FN(fo_linear_gradient)(dw, &db, x, y, w, *b, n, d);
        for (size_t j = 0; j < d; j++)
            w[j] -= a * dw[j];
        *b -= a * db;
    }
    return loss;
}

#undef FO_FN
#undef FO_CAT
#undef FO_CAT_
