/* surface.c - the loss surface of a model that is linear in its two
 * parameters (article 004's Dense(1) on one feature: pred = w x + b), on a
 * grid, for compare's plot_paths.  Mean squared error is a quadratic in the
 * parameters, so after one pass over the data for its sufficient statistics
 * (surface_impl.h, float32 and float64 data, sums in double) each grid point
 * costs O(1). */
#include <math.h>

#include "fastopt.h"

/* ref = the solution of [s00 s01; s01 s11] ref = [c0; c1], or (0, 0) when the
 * matrix is (nearly) singular: the statistics stay exact about any point, the
 * least-squares one only keeps the grid values free of cancellation */
static void fo_lsq2_solve(double ref[2], double s00, double s01, double s11, double c0, double c1)
{
    const double det = s00 * s11 - s01 * s01;
    ref[0] = ref[1] = 0;
    if (isfinite(det) && det > 1e-12 * s00 * s11) {
        ref[0] = (s11 * c0 - s01 * c1) / det;
        ref[1] = (s00 * c1 - s01 * c0) / det;
        if (!isfinite(ref[0]) || !isfinite(ref[1]))
            ref[0] = ref[1] = 0;
    }
}

#define T float
#define S f32
#include "surface_impl.h"
#undef T
#undef S

#define T double
#define S f64
#include "surface_impl.h"
#undef T
#undef S

/* out[j * n0 + i] = loss at p = (p0[i], p1[j]):
 *   rr + 2 h . d + d^T G d,  d = p - ref   (>= 0; a rounding below 0 gives 0)
 * plus the penalty sum_k l1[k] |p_k| + l2[k] p_k^2 */
void fo_lsq2_surface(double *out, const fo_lsq2 *st, const double *p0, size_t n0,
                     const double *p1, size_t n1, const double l1[2], const double l2[2])
{
    for (size_t j = 0; j < n1; j++) {
        const double d1 = p1[j] - st->ref[1];
        const double pen1 = l1[1] * fabs(p1[j]) + l2[1] * p1[j] * p1[j];
        const double row = st->rr + 2 * st->h1 * d1 + st->g11 * d1 * d1;
        for (size_t i = 0; i < n0; i++) {
            const double d0 = p0[i] - st->ref[0];
            double q = row + 2 * st->h0 * d0 + (st->g00 * d0 + 2 * st->g01 * d1) * d0;
            if (q < 0)
                q = 0;
            out[j * n0 + i] = q + l1[0] * fabs(p0[i]) + l2[0] * p0[i] * p0[i] + pen1;
        }
    }
}
