/*
 * dense_impl.h - matrix products, the dense layer's forward and backward pass
 * and the MSE loss, written once and expanded per dtype by dense.c.
 * Needs T (element type), S (suffix), FO_EXP_FN, FO_TANH_FN and FO_BLAS_GEMM
 * (the cblas_?gemm of that dtype, or undefined for no BLAS).
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

FO_INLINE void FO_FN(fo_activate)(T *restrict z, size_t n, int act)
{
    switch (act) {
    case FO_RELU:
        for (size_t i = 0; i < n; i++)
            z[i] = z[i] < 0 ? 0 : z[i]; /* NaN stays NaN, as in torch and TF */
        break;
    case FO_SIGMOID:
        for (size_t i = 0; i < n; i++)
            z[i] = 1 / (1 + FO_EXP_FN(-z[i]));
        break;
    case FO_TANH:
        for (size_t i = 0; i < n; i++)
            z[i] = FO_TANH_FN(z[i]);
        break;
    default:
        break;
    }
}

/* out (B,OUT) = act(x (B,IN) @ kernel (IN,OUT) + bias (OUT)) */
FO_CLONES
void FO_FN(fo_dense_forward)(T *out, const T *x, const T *kernel, const T *bias, size_t B,
                             size_t IN, size_t OUT, int act)
{
    if (bias && OUT == 1)
        for (size_t b = 0; b < B; b++)
            out[b] = bias[0];
    else if (bias)
        for (size_t b = 0; b < B; b++)
            memcpy(out + b * OUT, bias, OUT * sizeof(T));
    FO_FN(fo_gemm)(0, 0, B, OUT, IN, 1, x, kernel, bias ? 1 : 0, out);
    FO_FN(fo_activate)(out, B * OUT, act);
}

/* dout (B,OUT) becomes dz = dout * act'(z), written from the forward's output a:
 * relu' = [a > 0], sigmoid' = a (1 - a), tanh' = 1 - a^2 */
FO_CLONES
void FO_FN(fo_dense_backward)(T *dx, T *dkernel, T *dbias, T *dout, const T *x, const T *kernel,
                              const T *out, size_t B, size_t IN, size_t OUT, int act)
{
    const size_t n = B * OUT;
    T *restrict d = dout;
    const T *restrict a = out;
    switch (act) {
    case FO_RELU:
        for (size_t i = 0; i < n; i++)
            d[i] = a[i] > 0 ? d[i] : 0;
        break;
    case FO_SIGMOID:
        for (size_t i = 0; i < n; i++)
            d[i] *= a[i] * (1 - a[i]);
        break;
    case FO_TANH:
        for (size_t i = 0; i < n; i++)
            d[i] *= 1 - a[i] * a[i];
        break;
    default:
        break;
    }
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

FO_CLONES
void FO_FN(fo_mse)(T *dpred, const T *restrict pred, const T *restrict y, size_t n, double scale,
                   double *sse, double *sae)
{
    double se[4] = {0, 0, 0, 0}, ae[4] = {0, 0, 0, 0};
    const T sc = (T)scale;
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) {
            T e = pred[i + k] - y[i + k];
            se[k] += (double)e * (double)e;
            ae[k] += fabs((double)e);
            if (dpred)
                dpred[i + k] = sc * e;
        }
    for (; i < n; i++) {
        T e = pred[i] - y[i];
        se[0] += (double)e * (double)e;
        ae[0] += fabs((double)e);
        if (dpred)
            dpred[i] = sc * e;
    }
    *sse = (se[0] + se[1]) + (se[2] + se[3]);
    *sae = (ae[0] + ae[1]) + (ae[2] + ae[3]);
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
