/*
 * linear_impl.h - article 000's linear regression, expanded per dtype by
 * linear.c.  Model pred = x @ w + b, loss mean((pred - y)^2).
 *
 * Two ways to run gradient descent on it:
 *   - fo_linear_gd_naive: the per-sample loop the article writes, each step a
 *     pass over the data in the data's dtype (kept as the reference, and for
 *     data with more features than samples);
 *   - fo_linear_stats + fo_linear_gd_stats (linear.c): the gradient is linear
 *     in (w, b) given the data's means and covariances, so those are computed
 *     once in float64 and each step costs O(d^2), whatever n is.
 */
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_FN(name) FO_CAT(name, S)

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

/* One feature (the article's case): with e = x w0 + b - y, *sw = sum e x,
 * *sb = sum e, and, when `with_sse`, the return value is sum e^2 (else 0).
 * One pass, two vector accumulators each to halve the add chains. */
FO_INLINE T FO_FN(fo_linear_sums1)(T *sw, T *sb, const T *restrict x, const T *restrict y,
                                   T w0, T b, size_t n, int with_sse)
{
    typedef FO_FN(fo_vec) V;
    V sb0 = {0}, sb1 = {0}, sw0 = {0}, sw1 = {0}, ss0 = {0}, ss1 = {0}, xv, yv;
    size_t i = 0;
    for (; i + 2 * FO_VN <= n; i += 2 * FO_VN) {
        memcpy(&xv, x + i, sizeof xv);
        memcpy(&yv, y + i, sizeof yv);
        V e = xv * w0 + b - yv;
        sb0 += e;
        sw0 += e * xv;
        if (with_sse)
            ss0 += e * e;
        memcpy(&xv, x + i + FO_VN, sizeof xv);
        memcpy(&yv, y + i + FO_VN, sizeof yv);
        e = xv * w0 + b - yv;
        sb1 += e;
        sw1 += e * xv;
        if (with_sse)
            ss1 += e * e;
    }
    T tb = 0, tw = 0, ts = 0;
    for (; i < n; i++) {
        const T e = x[i] * w0 + b - y[i];
        tb += e;
        tw += e * x[i];
        if (with_sse)
            ts += e * e;
    }
    sb0 += sb1;
    sw0 += sw1;
    *sb = FO_FN(fo_hsum)(&sb0) + tb;
    *sw = FO_FN(fo_hsum)(&sw0) + tw;
    if (!with_sse)
        return 0;
    ss0 += ss1;
    return FO_FN(fo_hsum)(&ss0) + ts;
}

/* dw (d) = 2/n x^T e, *db = 2/n sum e for e = x w + b - y, x (n,d), y (n), in
 * one pass; returns sum e^2 when `with_sse` (else 0) */
FO_INLINE T FO_FN(fo_linear_pass)(T *restrict dw, T *db, const T *restrict x, const T *restrict y,
                                  const T *restrict w, T b, size_t n, size_t d, int with_sse)
{
    const T scale = n ? (T)(2.0 / (double)n) : 0;
    T sb, sse = 0;
    if (d == 1) {
        T sw;
        sse = FO_FN(fo_linear_sums1)(&sw, &sb, x, y, w[0], b, n, with_sse);
        dw[0] = scale * sw;
    } else {
        sb = 0;
        for (size_t j = 0; j < d; j++)
            dw[j] = 0;
        for (size_t i = 0; i < n; i++) {
            const T *restrict xi = x + i * d;
            T pred = b;
            for (size_t j = 0; j < d; j++)
                pred += xi[j] * w[j];
            const T e = pred - y[i];
            sb += e;
            if (with_sse)
                sse += e * e;
            for (size_t j = 0; j < d; j++)
                dw[j] += e * xi[j];
        }
        for (size_t j = 0; j < d; j++)
            dw[j] *= scale;
    }
    *db = scale * sb;
    return sse;
}

FO_CLONES
double FO_FN(fo_linear_gradient)(T *dw, T *db, const T *x, const T *y, const T *w, T b, size_t n,
                                 size_t d)
{
    const T sse = FO_FN(fo_linear_pass)(dw, db, x, y, w, b, n, d, 1);
    return n ? (double)sse / (double)n : 0.0;
}

/* out (n) = (0 + x (n) * w0) + b: np.dot(x, w) + b for one feature, bit for bit
 * (the dot product's sum starts at +0, which turns a -0 product into +0) */
FO_CLONES
void FO_FN(fo_linear_predict1)(T *restrict out, const T *restrict x, T w0, T b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = ((T)0 + x[i] * w0) + b;
}

FO_CLONES
double FO_FN(fo_linear_gd_naive)(T *w, T *b, T *dw, const T *x, const T *y, size_t n, size_t d,
                                 double lr, size_t iters)
{
    const T a = (T)lr;
    T db;
    if (d == 1) {
        T w0 = w[0], b0 = *b;
        for (size_t it = 0; it < iters; it++) {
            FO_FN(fo_linear_pass)(dw, &db, x, y, &w0, b0, n, 1, 0);
            w0 -= a * dw[0];
            b0 -= a * db;
        }
        w[0] = w0;
        *b = b0;
    } else {
        for (size_t it = 0; it < iters; it++) {
            FO_FN(fo_linear_pass)(dw, &db, x, y, w, *b, n, d, 0);
            for (size_t j = 0; j < d; j++)
                w[j] -= a * dw[j];
            *b -= a * db;
        }
    }
    const T sse = FO_FN(fo_linear_pass)(dw, &db, x, y, w, *b, n, d, 1);
    return n ? (double)sse / (double)n : 0.0;
}

/* ---- the sufficient statistics, in float64 whatever T is ---- */

/* sum of x[i] and of y[i] in float64, 8 partial sums in a fixed order */
FO_INLINE void FO_FN(fo_sum_pair8)(double *sx, double *sy, const T *restrict x,
                                   const T *restrict y, size_t n)
{
    double ax[8] = {0}, ay[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            ax[k] += (double)x[i + k];
            ay[k] += (double)y[i + k];
        }
    for (; i < n; i++) {
        ax[0] += (double)x[i];
        ay[0] += (double)y[i];
    }
    *sx = ((ax[0] + ax[1]) + (ax[2] + ax[3])) + ((ax[4] + ax[5]) + (ax[6] + ax[7]));
    *sy = ((ay[0] + ay[1]) + (ay[2] + ay[3])) + ((ay[4] + ay[5]) + (ay[6] + ay[7]));
}

/* stats (d*d + 2d + 1) = [cov(x) (d,d), cov(x, y) (d), mean(x) (d), mean(y)]
 * of x (n,d), y (n), n >= 1, all in float64 (the 1/n covariances); work: 2d
 * doubles of scratch.  Two passes: the means, then the centered products
 * with the mean's correction (Chan, Golub and LeVeque's corrected two-pass
 * algorithm), so a large offset in the data costs no accuracy. */
FO_CLONES
void FO_FN(fo_linear_stats)(double *restrict stats, double *restrict work, const T *restrict x,
                            const T *restrict y, size_t n, size_t d)
{
    double *cxx = stats, *cxy = stats + d * d, *mx = cxy + d, *my = mx + d;
    const double inv_n = 1.0 / (double)n;
#define FO_SUM8(a) (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])))
    if (d == 1) {
        double sx, sy;
        FO_FN(fo_sum_pair8)(&sx, &sy, x, y, n);
        const double m = sx * inv_n, q = sy * inv_n;
        double du[8] = {0}, dv[8] = {0}, uu[8] = {0}, uv[8] = {0};
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) {
                const double u = (double)x[i + k] - m, v = (double)y[i + k] - q;
                du[k] += u;
                dv[k] += v;
                uu[k] += u * u;
                uv[k] += u * v;
            }
        for (; i < n; i++) {
            const double u = (double)x[i] - m, v = (double)y[i] - q;
            du[0] += u;
            dv[0] += v;
            uu[0] += u * u;
            uv[0] += u * v;
        }
        const double su = FO_SUM8(du), sv = FO_SUM8(dv);
        cxx[0] = (FO_SUM8(uu) - su * su * inv_n) * inv_n;
        cxy[0] = (FO_SUM8(uv) - su * sv * inv_n) * inv_n;
        mx[0] = m + su * inv_n;
        *my = q + sv * inv_n;
        return;
    }
#undef FO_SUM8
    /* general d: row by row, each statistic its own accumulator (the loops
     * over features vectorize without reordering any sum) */
    double *restrict su = work, *restrict u = work + d;
    double sy = 0, sv = 0;
    for (size_t j = 0; j < d; j++)
        mx[j] = su[j] = cxy[j] = 0;
    for (size_t i = 0; i < n; i++) {
        const T *restrict xi = x + i * d;
        for (size_t j = 0; j < d; j++)
            mx[j] += (double)xi[j];
        sy += (double)y[i];
    }
    for (size_t j = 0; j < d; j++)
        mx[j] *= inv_n;
    const double q = sy * inv_n;
    memset(cxx, 0, d * d * sizeof *cxx);
    for (size_t i = 0; i < n; i++) {
        const T *restrict xi = x + i * d;
        const double v = (double)y[i] - q;
        sv += v;
        for (size_t j = 0; j < d; j++) {
            u[j] = (double)xi[j] - mx[j];
            su[j] += u[j];
            cxy[j] += u[j] * v;
        }
        for (size_t j = 0; j < d; j++) {
            double *restrict row = cxx + j * d;
            const double uj = u[j];
            for (size_t k = j; k < d; k++)
                row[k] += uj * u[k];
        }
    }
    for (size_t j = 0; j < d; j++)
        for (size_t k = j; k < d; k++)
            cxx[j * d + k] = cxx[k * d + j] = (cxx[j * d + k] - su[j] * su[k] * inv_n) * inv_n;
    for (size_t j = 0; j < d; j++) {
        cxy[j] = (cxy[j] - su[j] * sv * inv_n) * inv_n;
        mx[j] += su[j] * inv_n;
    }
    *my = q + sv * inv_n;
}

/* mean((x w + b - y)^2) in float64 for float64 w (d), b */
FO_CLONES
double FO_FN(fo_linear_mse)(const T *restrict x, const T *restrict y, const double *restrict w,
                            double b, size_t n, size_t d)
{
    double acc[8] = {0};
    size_t i = 0;
    if (d == 1) {
        const double w0 = w[0];
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) {
                const double e = (double)x[i + k] * w0 + b - (double)y[i + k];
                acc[k] += e * e;
            }
    }
    for (; i < n; i++) {
        const T *restrict xi = x + i * d;
        double pred = b;
        for (size_t j = 0; j < d; j++)
            pred += (double)xi[j] * w[j];
        const double e = pred - (double)y[i];
        acc[0] += e * e;
    }
    const double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    return n ? s / (double)n : 0.0;
}

#undef FO_VN
#undef FO_FN
#undef FO_CAT
#undef FO_CAT_
