/* dense.c - matrix products, dense layers and the MSE loss for float32 and
 * float64 (from dense_impl.h).  Products of at least fo_blas_threshold
 * multiply-adds go to OpenBLAS (the scipy-openblas32 build NumPy and SciPy
 * use), smaller ones to a C loop the compiler vectorizes. */
#include <math.h>
#include <string.h>

#include "fastopt.h"

#ifdef FO_HAVE_BLAS
#include <cblas.h>
#endif

/* measured with benchmarks/bench_gemm.py: OpenBLAS (SkylakeX kernels) beats the
 * C loop from a few dozen multiply-adds on; any value in 16..64 is within 1% of
 * the per-shape best (geometric mean), 32768 was 1.95x off */
size_t fo_blas_threshold = 64;

#define T float
#define S f32
#define FO_EXP_FN expf
#define FO_TANH_FN tanhf
#ifdef FO_HAVE_BLAS
#define FO_BLAS_GEMM scipy_cblas_sgemm
#endif
#include "dense_impl.h"
#undef T
#undef S
#undef FO_EXP_FN
#undef FO_TANH_FN
#undef FO_BLAS_GEMM

#define T double
#define S f64
#define FO_EXP_FN exp
#define FO_TANH_FN tanh
#ifdef FO_HAVE_BLAS
#define FO_BLAS_GEMM scipy_cblas_dgemm
#endif
#include "dense_impl.h"
#undef T
#undef S
#undef FO_EXP_FN
#undef FO_TANH_FN
#undef FO_BLAS_GEMM
