/*
 * dense_impl.h - matrix products, activations, the dense layer's forward and
 * backward pass and inverted dropout, written once and expanded per dtype by
 * dense.c.  Needs T (element type), S (suffix), the math functions FO_EXP_FN,
 * FO_EXPM1_FN, FO_LOG1P_FN, FO_TANH_FN, FO_ERFC_FN, FO_FABS_FN of that type, and
 * FO_BLAS_GEMM (the cblas_?gemm of that dtype, or undefined for no BLAS).
 */
#define FO_CAT_(a, b) a##_##b
#define FO_CAT(a, b) FO_CAT_(a, b)
#define FO_FN(name) FO_CAT(name, S)

#include "reduce_impl.h"

/* C (M,N) = alpha * op(A) @ op(B) + beta * C, row-major, contiguous.
 * op(A) is (M,K): A is stored (M,K), or (K,M) if ta.  op(B) is (K,N): B is
 * stored (K,N), or (N,K) if tb.  beta == 0 overwrites C (NaN in C is not read). */
FO_CLONES
void FO_FN(fo_gemm_naive)(int ta, int tb, size_t M, size_t N, size_t K, T alpha,
                          const T *restrict A, const T *restrict B, T beta, T *restrict C)
{
    if (N == 1) {
        /* one output column (a layer of one unit, or of one input): C (M) = alpha
         * op(A) b + beta C, b = B's K elements, stored (K,1) or (1,K) alike */
        if (ta && M > 1) {
            for (size_t i = 0; i < M; i++)
                C[i] = beta == 0 ? 0 : beta == 1 ? C[i] : beta * C[i];
            for (size_t k = 0; k < K; k++) {
                const T b = alpha * B[k];
                const T *restrict a = A + k * M;
                for (size_t i = 0; i < M; i++)
                    C[i] += a[i] * b;
            }
            return;
        }
        if (K == 1) { /* an outer product: one input */
            const T b = B[0];
            for (size_t i = 0; i < M; i++) {
                const T s = alpha * (A[i] * b);
                C[i] = beta == 0 ? s : beta == 1 ? C[i] + s : beta * C[i] + s;
            }
            return;
        }
        for (size_t i = 0; i < M; i++) { /* A's row i (or, M == 1, A itself) dotted with b */
            const T s = alpha * FO_FN(fo_dot8)(A + i * K, B, K);
            C[i] = beta == 0 ? s : beta == 1 ? C[i] + s : beta * C[i] + s;
        }
        return;
    }
    for (size_t i = 0; i < M; i++) {
        T *restrict c = C + i * N;
        if (beta == 0)
            for (size_t j = 0; j < N; j++)
                c[j] = 0;
        else if (beta != 1)
            for (size_t j = 0; j < N; j++)
                c[j] *= beta;
        if (!tb) {
            /* row of C += a_ik * row k of B: the inner loop is contiguous */
            for (size_t k = 0; k < K; k++) {
                const T a = alpha * (ta ? A[k * M + i] : A[i * K + k]);
                const T *restrict b = B + k * N;
                for (size_t j = 0; j < N; j++)
                    c[j] += a * b[j];
            }
        } else if (!ta) {
            /* C_ij += alpha * (row i of A) . (row j of B) */
            for (size_t j = 0; j < N; j++)
                c[j] += alpha * FO_FN(fo_dot8)(A + i * K, B + j * K, K);
        } else {
            for (size_t j = 0; j < N; j++) {
                T s = 0;
                for (size_t k = 0; k < K; k++)
                    s += A[k * M + i] * B[j * K + k];
                c[j] += alpha * s;
            }
        }
    }
}

#ifdef FO_BLAS_GEMM
/* one block of a product split by fo_gemm_partition: C's columns (or rows)
 * [lo, hi), one single-threaded BLAS call */
typedef struct {
    int ta, tb, along_n;
    size_t M, N, K, nb;
    T alpha, beta;
    const T *A, *B;
    T *C;
} FO_FN(fo_gemm_job);

static void FO_FN(fo_gemm_block)(void *ctx, size_t b)
{
    const FO_FN(fo_gemm_job) *j = ctx;
    const size_t extent = j->along_n ? j->N : j->M;
    const size_t lo = b * extent / j->nb, hi = (b + 1) * extent / j->nb;
    const T *A = j->A, *B = j->B;
    T *C = j->C;
    size_t M = j->M, N = j->N;
    if (j->along_n) { /* columns lo..hi of op(B) and C */
        B += j->tb ? lo * j->K : lo;
        C += lo;
        N = hi - lo;
    } else { /* rows lo..hi of op(A) and C */
        A += j->ta ? lo : lo * j->K;
        C += lo * j->N;
        M = hi - lo;
    }
    FO_BLAS_GEMM(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                 (blasint)M, (blasint)N, (blasint)j->K, j->alpha, A, (blasint)(j->ta ? j->M : j->K),
                 B, (blasint)(j->tb ? j->K : j->N), j->beta, C, (blasint)j->N);
}
#endif

void FO_FN(fo_gemm)(int ta, int tb, size_t M, size_t N, size_t K, T alpha, const T *A,
                    const T *B, T beta, T *C)
{
    if (M == 0 || N == 0)
        return;
#ifdef FO_BLAS_GEMM
    /* blasint is 32-bit: larger products stay on the C loop.  A product with one
     * output column stays there up to 4096 multiply-adds: OpenBLAS' small-matrix
     * kernel has a fixed cost of a few hundred ns on those shapes */
    const size_t threshold = N == 1 && fo_blas_threshold < 4096 ? 4096 : fo_blas_threshold;
    if (M * N * K >= threshold && M < INT32_MAX && N < INT32_MAX && K < INT32_MAX &&
        K > 0) {
        if (M * N * K < FO_BLAS_DIRECT) { /* OpenBLAS runs these on one thread */
            FO_BLAS_GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                         (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)(ta ? M : K), B,
                         (blasint)(tb ? K : N), beta, C, (blasint)N);
            return;
        }
        /* larger ones might be threaded, and OpenBLAS' bits depend on its thread
         * count: blocks fixed by the shape, each on one BLAS thread (parallel.c) */
        FO_FN(fo_gemm_job) job = {ta, tb, 0, M, N, K, 0, alpha, beta, A, B, C};
        job.nb = fo_gemm_partition(M, N, K, &job.along_n);
        const int workers = fo_blas_one_thread_begin();
        fo_parallel_for(job.nb, FO_FN(fo_gemm_block), &job, workers);
        fo_blas_one_thread_end();
        return;
    }
#endif
    FO_FN(fo_gemm_naive)(ta, tb, M, N, K, alpha, A, B, beta, C);
}

/* z rows of one softmax: a = exp(z - max) / sum, stable for any finite z */
static void FO_FN(fo_softmax_rows)(T *a, const T *z, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++) {
        const T *zr = z + r * cols;
        T *ar = a + r * cols;
        T m = zr[0];
        for (size_t j = 1; j < cols; j++)
            m = zr[j] > m ? zr[j] : m;
        T sum = 0;
        for (size_t j = 0; j < cols; j++) {
            ar[j] = FO_EXP_FN(zr[j] - m); /* a may be z: zr[j] is not read again */
            sum += ar[j];
        }
        for (size_t j = 0; j < cols; j++)
            ar[j] /= sum;
    }
}

/* gelu's tanh form: s = 0.5 (1 + tanh u) = sigmoid(2u) and sc = 1 - s, with
 * u = sqrt(2/pi) (z + 0.044715 z^3), each computed without cancellation */
FO_INLINE void FO_FN(fo_gelu_tanh_gate)(T x, T *s, T *sc)
{
    const T beta = (T)(M_SQRT2 * M_2_SQRTPI * 0.5), kappa = (T)0.044715;
    const T u2 = 2 * (beta * (x + kappa * (x * x * x)));
    const T e = FO_EXP_FN(-FO_FABS_FN(u2)), r = 1 / (1 + e);
    *s = u2 >= 0 ? r : e * r;
    *sc = u2 >= 0 ? e * r : r;
}

/* a (rows, cols) = act(z); a may be z */
FO_CLONES
void FO_FN(fo_act_forward)(T *a, const T *z, size_t rows, size_t cols, int act, double param)
{
    const size_t n = rows * cols;
    const T p = (T)param;
    switch (act) {
    case FO_RELU:
        for (size_t i = 0; i < n; i++)
            a[i] = z[i] < 0 ? 0 : z[i]; /* NaN stays NaN, as in torch and TF */
        return;
    case FO_SIGMOID:
        for (size_t i = 0; i < n; i++)
            a[i] = 1 / (1 + FO_EXP_FN(-z[i]));
        return;
    case FO_TANH:
        for (size_t i = 0; i < n; i++)
            a[i] = FO_TANH_FN(z[i]);
        return;
    case FO_SOFTMAX:
        FO_FN(fo_softmax_rows)(a, z, rows, cols);
        return;
    case FO_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            a[i] = z[i] > 0 ? z[i] : p * z[i];
        return;
    case FO_ELU:
        for (size_t i = 0; i < n; i++)
            a[i] = z[i] > 0 ? z[i] : p * FO_EXPM1_FN(z[i]);
        return;
    case FO_GELU:
        /* 0.5 (1 + erf(z / sqrt 2)) as 0.5 erfc(-z / sqrt 2): no cancellation for z < 0 */
        for (size_t i = 0; i < n; i++)
            a[i] = z[i] * ((T)0.5 * FO_ERFC_FN(-z[i] * (T)M_SQRT1_2));
        return;
    case FO_GELU_TANH:
        /* 0.5 (1 + tanh u) = sigmoid(2u), computed without cancellation */
        for (size_t i = 0; i < n; i++) {
            T s, sc;
            FO_FN(fo_gelu_tanh_gate)(z[i], &s, &sc);
            a[i] = z[i] * s;
        }
        return;
    case FO_SILU:
        for (size_t i = 0; i < n; i++)
            a[i] = z[i] / (1 + FO_EXP_FN(-z[i]));
        return;
    case FO_SOFTPLUS:
        /* max(z, 0) + log1p(exp(-|z|)): no overflow for large z */
        for (size_t i = 0; i < n; i++)
            a[i] = (z[i] > 0 ? z[i] : 0) + FO_LOG1P_FN(FO_EXP_FN(-FO_FABS_FN(z[i])));
        return;
    case FO_SOFTSIGN:
        for (size_t i = 0; i < n; i++)
            a[i] = z[i] / (1 + FO_FABS_FN(z[i]));
        return;
    case FO_HARD_SIGMOID:
        for (size_t i = 0; i < n; i++) {
            T t = z[i] + 3;
            t = t < 0 ? 0 : t;
            a[i] = (t > 6 ? 6 : t) / 6;
        }
        return;
    case FO_EXPONENTIAL:
        for (size_t i = 0; i < n; i++)
            a[i] = FO_EXP_FN(z[i]);
        return;
    default: /* linear */
        if (a != z)
            memcpy(a, z, n * sizeof(T));
        return;
    }
}

/* dz = da * act'(z), written from the output a (and z for gelu, silu and
 * softsign): relu' = [a > 0], sigmoid' = a (1 - a), tanh' = 1 - a^2,
 * leaky' = a > 0 ? 1 : slope, elu' = a > 0 ? 1 : a + alpha, softplus' =
 * 1 - exp(-a), hard_sigmoid' = 1/6 on 0 < a < 1, exp' = a; softmax: per row
 * a * (da - sum_j a_j da_j).  dz may be da. */
FO_CLONES
void FO_FN(fo_act_backward)(T *dz, const T *da, const T *z, const T *a, size_t rows, size_t cols,
                            int act, double param)
{
    const size_t n = rows * cols;
    const T p = (T)param;
    if (fo_act_needs_z(act) && z == NULL) { /* a caller's mistake: say so in the result */
        for (size_t i = 0; i < n; i++)
            dz[i] = (T)NAN;
        return;
    }
    switch (act) {
    case FO_RELU:
        for (size_t i = 0; i < n; i++)
            dz[i] = a[i] > 0 ? da[i] : 0;
        return;
    case FO_SIGMOID:
        for (size_t i = 0; i < n; i++)
            dz[i] = da[i] * (a[i] * (1 - a[i]));
        return;
    case FO_TANH:
        for (size_t i = 0; i < n; i++)
            dz[i] = da[i] * (1 - a[i] * a[i]);
        return;
    case FO_SOFTMAX:
        for (size_t r = 0; r < rows; r++) {
            const T *ar = a + r * cols, *gr = da + r * cols;
            T *dr = dz + r * cols;
            T dot = 0;
            for (size_t j = 0; j < cols; j++)
                dot += ar[j] * gr[j];
            for (size_t j = 0; j < cols; j++)
                dr[j] = ar[j] * (gr[j] - dot);
        }
        return;
    case FO_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            dz[i] = a[i] > 0 ? da[i] : da[i] * p;
        return;
    case FO_ELU:
        for (size_t i = 0; i < n; i++)
            dz[i] = a[i] > 0 ? da[i] : da[i] * (a[i] + p);
        return;
    case FO_GELU: {
        const T k = (T)(M_2_SQRTPI * M_SQRT1_2 * 0.5); /* 1 / sqrt(2 pi) */
        for (size_t i = 0; i < n; i++) {
            const T x = z[i];
            const T cdf = (T)0.5 * FO_ERFC_FN(-x * (T)M_SQRT1_2);
            const T pdf = FO_EXP_FN((T)-0.5 * x * x) * k;
            dz[i] = da[i] * (cdf + x * pdf);
        }
        return;
    }
    case FO_GELU_TANH: {
        /* d/dz z s(z) = s + z 2 s (1 - s) beta (1 + 3 kappa z^2), s = sigmoid(2u) */
        const T beta = (T)(M_SQRT2 * M_2_SQRTPI * 0.5), kappa = (T)0.044715;
        for (size_t i = 0; i < n; i++) {
            const T x = z[i];
            T s, sc;
            FO_FN(fo_gelu_tanh_gate)(x, &s, &sc);
            dz[i] = da[i] * (s + x * (2 * s * sc) * (beta * (1 + 3 * kappa * (x * x))));
        }
        return;
    }
    case FO_SILU:
        for (size_t i = 0; i < n; i++) {
            const T s = 1 / (1 + FO_EXP_FN(-z[i]));
            dz[i] = da[i] * (s * (1 + z[i] * (1 - s)));
        }
        return;
    case FO_SOFTPLUS:
        for (size_t i = 0; i < n; i++)
            dz[i] = da[i] * -FO_EXPM1_FN(-a[i]);
        return;
    case FO_SOFTSIGN:
        for (size_t i = 0; i < n; i++) {
            const T d = 1 + FO_FABS_FN(z[i]);
            dz[i] = da[i] / (d * d);
        }
        return;
    case FO_HARD_SIGMOID:
        for (size_t i = 0; i < n; i++)
            dz[i] = a[i] > 0 && a[i] < 1 ? da[i] / 6 : 0;
        return;
    case FO_EXPONENTIAL:
        for (size_t i = 0; i < n; i++)
            dz[i] = da[i] * a[i];
        return;
    default: /* linear */
        if (dz != da)
            memcpy(dz, da, n * sizeof(T));
        return;
    }
}

/* out (B,OUT) = act(z), z = x (B,IN) @ kernel (IN,OUT) + bias (OUT), z kept when not NULL */
void FO_FN(fo_dense_forward_ex)(T *out, T *z, const T *x, const T *kernel, const T *bias,
                                size_t B, size_t IN, size_t OUT, int act, double param)
{
    T *pre = z ? z : out;
    if (bias && OUT == 1)
        for (size_t b = 0; b < B; b++)
            pre[b] = bias[0];
    else if (bias)
        for (size_t b = 0; b < B; b++)
            memcpy(pre + b * OUT, bias, OUT * sizeof(T));
    FO_FN(fo_gemm)(0, 0, B, OUT, IN, 1, x, kernel, bias ? 1 : 0, pre);
    FO_FN(fo_act_forward)(out, pre, B, OUT, act, param);
}

/* out (B,OUT) = act(x (B,IN) @ kernel (IN,OUT) + bias (OUT)), Keras' default parameter */
void FO_FN(fo_dense_forward)(T *out, const T *x, const T *kernel, const T *bias, size_t B,
                             size_t IN, size_t OUT, int act)
{
    FO_FN(fo_dense_forward_ex)(out, NULL, x, kernel, bias, B, IN, OUT, act,
                               fo_act_default_param(act));
}

/* dout (B,OUT) becomes dz = dout * act'(z) (fo_act_backward), then
 * dkernel = x^T dz, dbias = column sums of dz, dx = dz kernel^T */
FO_CLONES
void FO_FN(fo_dense_backward_ex)(T *dx, T *dkernel, T *dbias, T *dout, const T *x,
                                 const T *kernel, const T *z, const T *out, size_t B, size_t IN,
                                 size_t OUT, int act, double param)
{
    FO_FN(fo_act_backward)(dout, dout, z, out, B, OUT, act, param);
    /* dkernel (IN,OUT) = x^T (IN,B) @ dz (B,OUT) */
    FO_FN(fo_gemm)(1, 0, IN, OUT, B, 1, x, dout, 0, dkernel);
    if (dbias && OUT == 1) {
        dbias[0] = FO_FN(fo_sum8)(dout, B);
    } else if (dbias) {
        T *restrict db = dbias;
        for (size_t j = 0; j < OUT; j++)
            db[j] = 0;
        for (size_t b = 0; b < B; b++) {
            const T *restrict row = dout + b * OUT;
            for (size_t j = 0; j < OUT; j++)
                db[j] += row[j];
        }
    }
    /* dx (B,IN) = dz (B,OUT) @ kernel^T (OUT,IN) */
    if (dx)
        FO_FN(fo_gemm)(0, 1, B, IN, OUT, 1, dout, kernel, 0, dx);
}

void FO_FN(fo_dense_backward)(T *dx, T *dkernel, T *dbias, T *dout, const T *x, const T *kernel,
                              const T *out, size_t B, size_t IN, size_t OUT, int act)
{
    FO_FN(fo_dense_backward_ex)(dx, dkernel, dbias, dout, x, kernel, NULL, out, B, IN, OUT, act,
                                fo_act_default_param(act));
}

/* inverted dropout: mask (MR,MC) entries 1/(1-rate) with probability 1 - rate
 * (a 53-bit uniform u from the xoshiro stream, kept when u >= rate), else 0;
 * rate 0 draws nothing */
void FO_FN(fo_dropout_forward)(T *out, T *mask, const T *x, size_t B, size_t F, size_t MR,
                               size_t MC, double rate, fo_rng *rng)
{
    const size_t nm = MR * MC;
    if (rate <= 0) {
        for (size_t i = 0; i < nm; i++)
            mask[i] = 1;
    } else {
        const T scale = rate < 1 ? (T)(1.0 / (1.0 - rate)) : 0;
        for (size_t i = 0; i < nm; i++) {
            const double u = (double)(fo_rng_next(rng) >> 11) * 0x1.0p-53;
            mask[i] = u >= rate ? scale : 0;
        }
    }
    FO_FN(fo_dropout_backward)(out, x, mask, B, F, MR, MC);
}

void FO_FN(fo_dropout_backward)(T *dx, const T *dout, const T *mask, size_t B, size_t F, size_t MR,
                                size_t MC)
{
    for (size_t b = 0; b < B; b++) {
        const T *m = mask + (MR > 1 ? b * MC : 0);
        const T *g = dout + b * F;
        T *d = dx + b * F;
        if (MC > 1)
            for (size_t f = 0; f < F; f++)
                d[f] = g[f] * m[f];
        else
            for (size_t f = 0; f < F; f++)
                d[f] = g[f] * m[0];
    }
}

/* 1 if no element is NaN or infinite: x - x is 0 for finite x, NaN otherwise,
 * so a branch-free sum (8 partial sums, vectorized) tells */
FO_CLONES
int FO_FN(fo_all_finite)(const T *restrict x, size_t n)
{
    T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += x[i + k] - x[i + k];
    for (; i < n; i++)
        acc[0] += x[i] - x[i];
    T s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    return s == 0;
}

#undef FO_FN
#undef FO_CAT
#undef FO_CAT_
