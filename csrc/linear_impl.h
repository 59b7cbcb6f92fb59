/*
 * linear_impl.h - article 000's linear regression by gradient descent,
 * expanded per dtype by linear.c.  Model pred = x @ w + b, loss
 * mean((pred - y)^2).  Each step makes two passes over the (small, cached)
 * data: the residuals e = x w + b - y, then the gradient 2/n [x^T e, sum e];
 * the sums use 8 independent partial sums so they vectorize.
 */
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_FN(name) FO_CAT(name, S)

#include "reduce_impl.h"

/* e (n) = x (n,d) w (d) + b - y (n) */
FO_INLINE void FO_FN(fo_residuals)(T *restrict e, const T *restrict x, const T *restrict y,
                                   const T *restrict w, T b, size_t n, size_t d)
{
    if (d == 1) {
        const T w0 = w[0];
        for (size_t i = 0; i < n; i++)
            e[i] = x[i] * w0 + b - y[i];
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const T *restrict xi = x + i * d;
        T pred = b;
        for (size_t j = 0; j < d; j++)
            pred += xi[j] * w[j];
        e[i] = pred - y[i];
    }
}

/* dw (d) = 2/n x^T e, *db = 2/n sum e */
FO_INLINE void FO_FN(fo_linear_grad)(T *restrict dw, T *db, const T *restrict e,
                                     const T *restrict x, size_t n, size_t d)
{
    const T scale = n ? (T)(2.0 / (double)n) : 0;
    *db = scale * FO_FN(fo_sum8)(e, n);
    if (d == 1) {
        dw[0] = scale * FO_FN(fo_dot8)(e, x, n);
        return;
    }
    for (size_t j = 0; j < d; j++)
        dw[j] = 0;
    for (size_t i = 0; i < n; i++) {
        const T *restrict xi = x + i * d;
        for (size_t j = 0; j < d; j++)
            dw[j] += e[i] * xi[j];
    }
    for (size_t j = 0; j < d; j++)
        dw[j] *= scale;
}

FO_INLINE double FO_FN(fo_mean_square)(const T *e, size_t n)
{
    return n ? (double)FO_FN(fo_dot8)(e, e, n) / (double)n : 0.0;
}

FO_CLONES
double FO_FN(fo_linear_gradient)(T *dw, T *db, T *e, const T *x, const T *y, const T *w, T b,
                                 size_t n, size_t d)
{
    FO_FN(fo_residuals)(e, x, y, w, b, n, d);
    FO_FN(fo_linear_grad)(dw, db, e, x, n, d);
    return FO_FN(fo_mean_square)(e, n);
}

/* 64 bytes of T: GCC/clang vector extensions, lowered to whatever the clone's
 * ISA has (one zmm, two ymm or four xmm registers); lanes are fixed by the
 * source, so every clone adds in the same order */
typedef T FO_FN(fo_vec) __attribute__((vector_size(64)));
#define FO_VN (64 / sizeof(T))

FO_INLINE T FO_FN(fo_hsum)(const FO_FN(fo_vec) *v)
{
    T lane[FO_VN];
    memcpy(lane, v, sizeof lane);
    for (size_t w = FO_VN / 2; w > 0; w /= 2) /* pairwise, in a fixed order */
        for (size_t k = 0; k < w; k++)
            lane[k] += lane[k + w];
    return lane[0];
}

/* one feature (the article's case): residuals and both sums in one pass,
 * two vector accumulators each to halve the add chains */
FO_INLINE void FO_FN(fo_linear_grad1)(T *dw, T *db, const T *restrict x, const T *restrict y,
                                      T w0, T b, size_t n)
{
    typedef FO_FN(fo_vec) V;
    V sb0 = {0}, sb1 = {0}, sw0 = {0}, sw1 = {0}, xv, yv;
    size_t i = 0;
    for (; i + 2 * FO_VN <= n; i += 2 * FO_VN) {
        memcpy(&xv, x + i, sizeof xv);
        memcpy(&yv, y + i, sizeof yv);
        V e = xv * w0 + b - yv;
        sb0 += e;
        sw0 += e * xv;
        memcpy(&xv, x + i + FO_VN, sizeof xv);
        memcpy(&yv, y + i + FO_VN, sizeof yv);
        e = xv * w0 + b - yv;
        sb1 += e;
        sw1 += e * xv;
    }
    T tb = 0, tw = 0;
    for (; i < n; i++) {
        const T e = x[i] * w0 + b - y[i];
        tb += e;
        tw += e * x[i];
    }
    const T scale = n ? (T)(2.0 / (double)n) : 0;
    sb0 += sb1;
    sw0 += sw1;
    *db = scale * (FO_FN(fo_hsum)(&sb0) + tb);
    *dw = scale * (FO_FN(fo_hsum)(&sw0) + tw);
}

#undef FO_VN

FO_CLONES
double FO_FN(fo_linear_gd)(T *w, T *b, T *dw, T *e, const T *x, const T *y, size_t n, size_t d,
                           double lr, size_t iters)
{
    const T a = (T)lr;
    T db;
    if (d == 1) {
        T w0 = w[0], b0 = *b;
        for (size_t it = 0; it < iters; it++) {
            FO_FN(fo_linear_grad1)(dw, &db, x, y, w0, b0, n);
            w0 -= a * dw[0];
            b0 -= a * db;
        }
        w[0] = w0;
        *b = b0;
    } else {
        for (size_t it = 0; it < iters; it++) {
            FO_FN(fo_residuals)(e, x, y, w, *b, n, d);
            FO_FN(fo_linear_grad)(dw, &db, e, x, n, d);
            for (size_t j = 0; j < d; j++)
                w[j] -= a * dw[j];
            *b -= a * db;
        }
    }
    FO_FN(fo_residuals)(e, x, y, w, *b, n, d);
    return FO_FN(fo_mean_square)(e, n);
}

#undef FO_FN
#undef FO_CAT
#undef FO_CAT_
