/*
 * surface_impl.h - the sufficient statistics of a least-squares problem in two
 * parameters, expanded per dtype by surface.c.  Rows a_i = (a_i0, a_i1) and
 * targets y_i are read as T; every sum is accumulated in double, in row order.
 */
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_FN(name) FO_CAT(name, S)

/* st = the statistics of loss(p) = mean_i (a_i . p - y_i)^2 about st->ref:
 * pass 1 sums A^T A and A^T y and solves for the least-squares point, pass 2
 * sums the residuals r_i = a_i . ref - y_i there (see fo_lsq2 in fastopt.h).
 * a (n, 2) row-major, y (n); n >= 1. */
void FO_FN(fo_lsq2_stats)(fo_lsq2 *st, const T *a, const T *y, size_t n)
{
    double s00 = 0, s01 = 0, s11 = 0, c0 = 0, c1 = 0;
    for (size_t i = 0; i < n; i++) {
        const double a0 = a[2 * i], a1 = a[2 * i + 1], yi = y[i];
        s00 += a0 * a0;
        s01 += a0 * a1;
        s11 += a1 * a1;
        c0 += a0 * yi;
        c1 += a1 * yi;
    }
    fo_lsq2_solve(st->ref, s00, s01, s11, c0, c1);
    double rr = 0, h0 = 0, h1 = 0;
    for (size_t i = 0; i < n; i++) {
        const double a0 = a[2 * i], a1 = a[2 * i + 1];
        const double r = a0 * st->ref[0] + a1 * st->ref[1] - (double)y[i];
        rr += r * r;
        h0 += a0 * r;
        h1 += a1 * r;
    }
    const double inv = 1.0 / (double)n;
    st->g00 = s00 * inv;
    st->g01 = s01 * inv;
    st->g11 = s11 * inv;
    st->h0 = h0 * inv;
    st->h1 = h1 * inv;
    st->rr = rr * inv;
}

#undef FO_FN
#undef FO_CAT
#undef FO_CAT_
