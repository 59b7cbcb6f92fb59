/* bench.c - what the benchmarks measure fastopt against, kept apart from the
 * kernels: the memory floor of an optimizer step (one pass over the same
 * arrays on the same threads, next to no arithmetic) and which ISA the
 * FO_CLONES kernels run on this CPU. */
#include <stdlib.h>
#include <string.h>

#include "fastopt.h"

#define FO_STREAM_MAX_ARRAYS 8
#define FO_STREAM_BLOCK 512 /* elements per block: the sums stay in L1 */

/* written[k][i] += scale * sum_r read[r][i] for i in [lo, hi).  The common
 * case, one array read and up to four written (every optimizer step: the
 * gradient read, the variable and its slots read and written), streams all of
 * them at once as the step does; any other mix goes block by block.  Either
 * way each element of every array is loaded once and each written one stored
 * once. */
#define FO_STREAM_BODY(T, S)                                                                \
    FO_INLINE void stream1_##S(T *const *wr, const T *restrict rd, size_t lo, size_t hi,   \
                               T scale, const int nw)                                       \
    {                                                                                       \
        T *restrict w0 = wr[0], *restrict w1 = nw > 1 ? wr[1] : w0;                         \
        T *restrict w2 = nw > 2 ? wr[2] : w0, *restrict w3 = nw > 3 ? wr[3] : w0;           \
        /* every load before any store, as an optimizer step does: the arrays often      \
         * sit at one offset within their pages, and a load after a store to the same       \
         * offset of another page waits on it (4K aliasing) */                              \
        for (size_t i = lo; i < hi; i++) {                                                  \
            const T r = scale * rd[i];                                                      \
            const T a0 = w0[i], a1 = nw > 1 ? w1[i] : 0, a2 = nw > 2 ? w2[i] : 0;           \
            const T a3 = nw > 3 ? w3[i] : 0;                                                \
            w0[i] = a0 + r;                                                                 \
            if (nw > 1)                                                                     \
                w1[i] = a1 + r;                                                             \
            if (nw > 2)                                                                     \
                w2[i] = a2 + r;                                                             \
            if (nw > 3)                                                                     \
                w3[i] = a3 + r;                                                             \
        }                                                                                   \
    }                                                                                       \
    FO_CLONES                                                                               \
    static void stream_##S(T *const *wr, size_t nw, const T *const *rd, size_t nr,         \
                           size_t lo, size_t hi, T scale)                                   \
    {                                                                                       \
        if (nr == 1 && nw >= 1 && nw <= 4) {                                                \
            switch (nw) {                                                                   \
            case 1: stream1_##S(wr, rd[0], lo, hi, scale, 1); break;                        \
            case 2: stream1_##S(wr, rd[0], lo, hi, scale, 2); break;                        \
            case 3: stream1_##S(wr, rd[0], lo, hi, scale, 3); break;                        \
            default: stream1_##S(wr, rd[0], lo, hi, scale, 4); break;                       \
            }                                                                               \
            return;                                                                         \
        }                                                                                   \
        T s[FO_STREAM_BLOCK];                                                               \
        for (size_t i0 = lo; i0 < hi; i0 += FO_STREAM_BLOCK) {                              \
            const size_t m = hi - i0 < FO_STREAM_BLOCK ? hi - i0 : FO_STREAM_BLOCK;         \
            for (size_t i = 0; i < m; i++)                                                  \
                s[i] = 0;                                                                   \
            for (size_t r = 0; r < nr; r++) {                                               \
                const T *restrict src = rd[r] + i0;                                         \
                for (size_t i = 0; i < m; i++)                                              \
                    s[i] += src[i];                                                         \
            }                                                                               \
            for (size_t k = 0; k < nw; k++) {                                               \
                T *restrict dst = wr[k] + i0;                                               \
                for (size_t i = 0; i < m; i++)                                              \
                    dst[i] += scale * s[i];                                                 \
            }                                                                               \
        }                                                                                   \
    }
FO_STREAM_BODY(float, f32)
FO_STREAM_BODY(double, f64)

typedef struct {
    int dtype;
    void *const *wr;
    size_t nw;
    const void *const *rd;
    size_t nr;
    size_t n, chunk;
    double scale;
} stream_job;

static void stream_chunk(void *arg, size_t t)
{
    const stream_job *j = arg;
    const size_t lo = t * j->chunk, hi = lo + j->chunk < j->n ? lo + j->chunk : j->n;
    if (j->dtype == FO_F32)
        stream_f32((float *const *)j->wr, j->nw, (const float *const *)j->rd, j->nr, lo, hi,
                   (float)j->scale);
    else
        stream_f64((double *const *)j->wr, j->nw, (const double *const *)j->rd, j->nr, lo, hi,
                   j->scale);
}

/* split as the optimizer step splits a variable (optim.c): chunks of whole
 * cache lines that the caller and the pool's workers (parallel.c) take in turn */
void fo_stream(int dtype, void *const *written, size_t n_written, const void *const *read,
               size_t n_read, size_t n, int threads, double scale)
{
    stream_job job = {dtype, written, n_written, read, n_read, n, 0, scale};
    const size_t chunks = fo_range_chunks(n, &job.chunk);
    fo_parallel_for(chunks, stream_chunk, &job, threads < 1 ? 1 : threads);
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FO_HAVE_CPU_SUPPORTS 1
#endif

int fo_cpu_supports(const char *f)
{
#ifdef FO_HAVE_CPU_SUPPORTS
    __builtin_cpu_init();
    if (!strcmp(f, "avx512f"))
        return __builtin_cpu_supports("avx512f") != 0;
    if (!strcmp(f, "avx2"))
        return __builtin_cpu_supports("avx2") != 0;
    if (!strcmp(f, "fma"))
        return __builtin_cpu_supports("fma") != 0;
    if (!strcmp(f, "avx"))
        return __builtin_cpu_supports("avx") != 0;
    if (!strcmp(f, "sse4.2"))
        return __builtin_cpu_supports("sse4.2") != 0;
    return -1;
#else
    (void)f;
    return -1;
#endif
}

const char *fo_kernel_clone(void)
{
#if defined(FO_FORCE_CLONE) && defined(FO_CLONE_NAME)
    return FO_CLONE_NAME;
#elif defined(FO_CLONE_RESOLVER)
    /* GCC's and clang's resolver take the highest-priority clone the CPU runs */
    if (fo_cpu_supports("avx512f") == 1)
        return "avx512f";
    if (fo_cpu_supports("avx2") == 1)
        return "avx2";
    return "default";
#else
    return "default";
#endif
}
