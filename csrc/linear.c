/* linear.c - linear regression by full-batch gradient descent (article 000);
 * float32 and float64 from linear_impl.h, and the descent through the
 * sufficient statistics, which is float64 whatever the data's dtype. */
#include <string.h>

#include "fastopt.h"

#define T float
#define S f32
#include "linear_impl.h"
#undef T
#undef S

#define T double
#define S f64
#include "linear_impl.h"
#undef T
#undef S

/* The gradient of mean((x w + b - y)^2) from fo_linear_stats' statistics:
 * with r = mean(x).w + b - mean(y), the mean residual,
 *     dw = 2 (cov(x) w - cov(x, y) + mean(x) r),    db = 2 r
 * (mean(e x) = cov(x, e) + mean(x) mean(e) for e = x w + b - y), so a step
 * costs O(d^2) whatever n is.  The factor 2 is folded into the learning rate
 * (exact: a product by 2 only changes the exponent). */
FO_CLONES
void fo_linear_gd_stats(double *restrict w, double *restrict b, double *restrict g,
                        const double *restrict stats, size_t d, double lr, size_t iters)
{
    const double *cxx = stats, *cxy = stats + d * d, *mx = cxy + d, my = mx[d];
    const double lr2 = 2.0 * lr;
    if (d == 1) {
        const double c = cxx[0], q = cxy[0], m = mx[0];
        double w0 = w[0], b0 = *b;
        for (size_t it = 0; it < iters; it++) {
            const double r = m * w0 + b0 - my;
            const double gw = c * w0 - q + m * r;
            w0 -= lr2 * gw;
            b0 -= lr2 * r;
        }
        w[0] = w0;
        *b = b0;
        return;
    }
    double b0 = *b;
    for (size_t it = 0; it < iters; it++) {
        double r = b0 - my;
        for (size_t j = 0; j < d; j++)
            r += mx[j] * w[j];
        for (size_t j = 0; j < d; j++) {
            const double *restrict row = cxx + j * d;
            double s = -cxy[j];
            for (size_t k = 0; k < d; k++)
                s += row[k] * w[k];
            g[j] = s + mx[j] * r;
        }
        for (size_t j = 0; j < d; j++)
            w[j] -= lr2 * g[j];
        b0 -= lr2 * r;
    }
    *b = b0;
}
