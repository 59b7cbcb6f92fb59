/*
 * reduce_impl.h - sums with 8 independent partial sums (so they vectorize
 * without -ffast-math, in a fixed order), for the kernel templates that
 * include it: needs T and FO_FN.
 */
/* sum of a[i] * b[i] with 8 partial sums */
FO_INLINE T FO_FN(fo_dot8)(const T *restrict a, const T *restrict b, size_t n)
{
    T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += a[i + k] * b[i + k];
    for (; i < n; i++)
        acc[0] += a[i] * b[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* sum of a[i] with 8 partial sums */
FO_INLINE T FO_FN(fo_sum8)(const T *restrict a, size_t n)
{
    T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += a[i + k];
    for (; i < n; i++)
        acc[0] += a[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
