/* dense.c - matrix products, activations, dense layers and dropout for float32
 * and float64 (from dense_impl.h).  Products of at least fo_blas_threshold
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

int fo_act_needs_z(int act)
{
    return act == FO_GELU || act == FO_GELU_TANH || act == FO_SILU || act == FO_SOFTSIGN;
}

double fo_act_default_param(int act)
{
    return act == FO_LEAKY_RELU ? 0.2 : act == FO_ELU ? 1.0 : 0.0;
}

int fo_act_param_ok(int act, double param)
{
    if (act == FO_LEAKY_RELU)
        return param >= 0 && param <= 1;
    if (act == FO_ELU)
        return param >= 0 && isfinite(param);
    return 1;
}

#define T float
#define S f32
#define FO_EXP_FN expf
#define FO_EXPM1_FN expm1f
#define FO_LOG1P_FN log1pf
#define FO_TANH_FN tanhf
#define FO_ERFC_FN erfcf
#define FO_FABS_FN fabsf
#ifdef FO_HAVE_BLAS
#define FO_BLAS_GEMM scipy_cblas_sgemm
#endif
#include "dense_impl.h"
#undef T
#undef S
#undef FO_EXP_FN
#undef FO_EXPM1_FN
#undef FO_LOG1P_FN
#undef FO_TANH_FN
#undef FO_ERFC_FN
#undef FO_FABS_FN
#undef FO_BLAS_GEMM

#define T double
#define S f64
#define FO_EXP_FN exp
#define FO_EXPM1_FN expm1
#define FO_LOG1P_FN log1p
#define FO_TANH_FN tanh
#define FO_ERFC_FN erfc
#define FO_FABS_FN fabs
#ifdef FO_HAVE_BLAS
#define FO_BLAS_GEMM scipy_cblas_dgemm
#endif
#include "dense_impl.h"
#undef T
#undef S
#undef FO_EXP_FN
#undef FO_EXPM1_FN
#undef FO_LOG1P_FN
#undef FO_TANH_FN
#undef FO_ERFC_FN
#undef FO_FABS_FN
#undef FO_BLAS_GEMM
