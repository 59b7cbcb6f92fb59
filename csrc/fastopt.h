/*
 * fastopt.h - types and kernel prototypes shared by every C file of fastopt.
 *
 * Kernels are plain functions over pointers and sizes: no Python.h here or in
 * any file but module.c.  Conventions (as in llm.c): outputs first, then const
 * inputs, then sizes, then a hyperparameter struct.  Every kernel exists for
 * float32 (suffix _f32) and float64 (suffix _f64), expanded from one template
 * (the *_impl.h headers, included once per dtype).
 */
#ifndef FASTOPT_H
#define FASTOPT_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define FO_INLINE static inline __attribute__((always_inline))
#else
#define FO_INLINE static inline
#endif

/* FO_CLONES: compile an elementwise kernel for AVX-512, AVX2 and the baseline
 * ISA and pick one at load time (GCC/clang function multi-versioning, an ifunc
 * resolver).  The build never assumes more than the baseline (no -march=native);
 * with -ffp-contract=off (setup.py) every clone gives bit-identical results.
 * Define FO_NO_CLONES to build the baseline only. */
#if defined(__x86_64__) && defined(__ELF__) && defined(__has_attribute) && !defined(FO_NO_CLONES)
#if __has_attribute(target_clones)
#define FO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef FO_CLONES
#define FO_CLONES
#endif

/* dtype codes, matching the order of the dispatch tables in module.c */
enum { FO_F32 = 0, FO_F64 = 1 };

/* ------------------------------------------------------------------ */
/* optimizers                                                          */
/* ------------------------------------------------------------------ */

enum { FO_SGD = 0, FO_ADAGRAD = 1, FO_RMSPROP = 2, FO_ADAM = 3, FO_N_OPTIM = 4 };

/* number of state buffers ("slots") each optimizer may use */
#define FO_MAX_SLOTS 3

typedef struct {
    double learning_rate;   /* for this step (schedules are evaluated by the caller) */
    double weight_decay;    /* decoupled: var *= 1 - learning_rate * weight_decay */
    double clipnorm;        /* per-variable norm clip, 0 = off */
    double global_clipnorm; /* norm clip over all variables of the step, 0 = off */
    double clipvalue;       /* elementwise clip to [-clipvalue, clipvalue], 0 = off */
    double momentum;        /* SGD, RMSprop */
    int nesterov;           /* SGD */
    double rho;             /* RMSprop */
    int centered;           /* RMSprop */
    double beta_1, beta_2;  /* Adam */
    double epsilon;         /* Adagrad, RMSprop, Adam */
    int amsgrad;            /* Adam */
    int64_t iteration;      /* 0-based count of steps already taken (Keras' `iterations`) */
} fo_optim_hyper;

/* one variable of an update: var and its slots are written, grad is read;
 * all of one dtype (FO_F32 or FO_F64) */
typedef struct {
    int dtype;
    void *var;
    const void *grad;
    void *slot[FO_MAX_SLOTS]; /* NULL where the optimizer does not use a slot */
    size_t n;
} fo_optim_buffers;

/* slots used: SGD: [momentum] if momentum > 0.
 *             Adagrad: [accumulator].
 *             RMSprop: [velocity, momentum if momentum > 0, average_gradient if centered].
 *             Adam: [m, v, v_hat if amsgrad]. */
void fo_optim_slots_used(int kind, const fo_optim_hyper *h, int used[FO_MAX_SLOTS]);

/* One optimizer step over nvars variables (of either dtype): gradient
 * clipping (clipnorm per variable, else global_clipnorm over all of them, else
 * clipvalue elementwise), decoupled weight decay, then the rule of `kind`. */
void fo_optim_update(int kind, size_t nvars, const fo_optim_buffers *bufs,
                     const fo_optim_hyper *h);

/* the per-variable kernels the update is made of; grad_scale multiplies every
 * gradient element before it is clipped to [-clipvalue, clipvalue] (clipvalue <= 0: no clip) */
#define FO_DECLARE_OPTIM(T, S)                                                              \
    void fo_sgd_step_##S(T *var, T *momentum, const T *grad, size_t n,                     \
                         const fo_optim_hyper *h, double grad_scale);                       \
    void fo_adagrad_step_##S(T *var, T *accumulator, const T *grad, size_t n,              \
                             const fo_optim_hyper *h, double grad_scale);                   \
    void fo_rmsprop_step_##S(T *var, T *velocity, T *momentum, T *average_grad,            \
                             const T *grad, size_t n, const fo_optim_hyper *h,              \
                             double grad_scale);                                            \
    void fo_adam_step_##S(T *var, T *m, T *v, T *v_hat, const T *grad, size_t n,           \
                          const fo_optim_hyper *h, double grad_scale);                      \
    double fo_sumsq_##S(const T *x, size_t n);
FO_DECLARE_OPTIM(float, f32)
FO_DECLARE_OPTIM(double, f64)

/* ------------------------------------------------------------------ */
/* dense layers, losses                                                */
/* ------------------------------------------------------------------ */

enum { FO_LINEAR = 0, FO_RELU = 1, FO_SIGMOID = 2, FO_TANH = 3, FO_N_ACT = 4 };

/* products with at least this many multiply-adds (M*N*K) go to BLAS */
extern size_t fo_blas_threshold;

#define FO_DECLARE_DENSE(T, S)                                                              \
    /* C (M,N) = alpha * op(A) @ op(B) + beta * C, row-major, op = transpose if ta/tb */    \
    void fo_gemm_##S(int ta, int tb, size_t M, size_t N, size_t K, T alpha, const T *A,    \
                     const T *B, T beta, T *C);                                             \
    void fo_gemm_naive_##S(int ta, int tb, size_t M, size_t N, size_t K, T alpha,          \
                           const T *A, const T *B, T beta, T *C);                           \
    /* out (B,OUT) = act(x (B,IN) @ kernel (IN,OUT) + bias (OUT)); bias may be NULL */      \
    void fo_dense_forward_##S(T *out, const T *x, const T *kernel, const T *bias,          \
                              size_t B, size_t IN, size_t OUT, int act);                    \
    /* dout (B,OUT): on entry dL/d(out), on exit dL/dz.  out: the forward's output.          \
     * dkernel (IN,OUT) = x^T dz, dbias (OUT) = sum_b dz, dx (B,IN) = dz kernel^T.            \
     * dbias and dx may be NULL. */                                                         \
    void fo_dense_backward_##S(T *dx, T *dkernel, T *dbias, T *dout, const T *x,           \
                               const T *kernel, const T *out, size_t B, size_t IN,          \
                               size_t OUT, int act);                                        \
    /* sum over n of (pred - y)^2 and |pred - y|; if dpred: dpred = scale * (pred - y) */    \
    void fo_mse_##S(T *dpred, const T *pred, const T *y, size_t n, double scale,           \
                    double *sse, double *sae);                                              \
    /* 1 if none of x[0..n) is NaN or infinite */                                           \
    int fo_all_finite_##S(const T *x, size_t n);
FO_DECLARE_DENSE(float, f32)
FO_DECLARE_DENSE(double, f64)

/* ------------------------------------------------------------------ */
/* the training loop                                                   */
/* ------------------------------------------------------------------ */

#define FO_MAX_LAYERS 64

/* A stack of dense layers over one flat parameter buffer laid out in Keras'
 * get_weights() order: kernel0 (IN0,OUT0), bias0 (OUT0), kernel1, ... */
typedef struct {
    size_t n_layers;
    size_t units[FO_MAX_LAYERS + 1]; /* units[0]: input features; units[l+1]: layer l */
    int act[FO_MAX_LAYERS];
    int use_bias[FO_MAX_LAYERS];
    double l1[FO_MAX_LAYERS], l2[FO_MAX_LAYERS]; /* kernel regularizers (Keras' meaning) */
} fo_net;

size_t fo_net_n_params(const fo_net *net);
/* offset of layer l's kernel and bias in the flat buffer */
size_t fo_net_kernel_offset(const fo_net *net, size_t l);
size_t fo_net_bias_offset(const fo_net *net, size_t l);
/* elements of workspace that fo_net_* need for a batch of B rows */
size_t fo_net_workspace(const fo_net *net, size_t B);

/* sums over the samples seen: squared and absolute error of the outputs */
typedef struct {
    double sse, sae;
    double penalty; /* the regularization penalty (added once per batch in the loss) */
    double loss;    /* sum over batches of batch_loss * batch_rows */
} fo_stats;

/* xoshiro256** state, seeded by splitmix64 from one 64-bit seed */
typedef struct { uint64_t s[4]; } fo_rng;
void fo_rng_seed(fo_rng *rng, uint64_t seed);
uint64_t fo_rng_next(fo_rng *rng);
/* Fisher-Yates shuffle of perm[0..n) */
void fo_shuffle(int64_t *perm, size_t n, fo_rng *rng);

#define FO_DECLARE_TRAIN(T, S)                                                              \
    /* out (B, units[L]) = forward of x (B, units[0]); work: fo_net_workspace(net, B) */     \
    void fo_net_forward_##S(T *out, const T *x, const T *params, const fo_net *net,        \
                            size_t B, T *work);                                             \
    /* grads (n_params) = d loss / d params for one batch, loss = mean squared error        \
     * + penalties; returns the loss; work: fo_net_workspace(net, B) */                     \
    double fo_net_gradients_##S(T *grads, const T *x, const T *y, const T *params,         \
                                const fo_net *net, size_t B, T *work, fo_stats *st);        \
    /* one epoch: optional shuffle, then for every batch gradients and an update.           \
     * lr has n_lr entries: one per step (schedule), or 1 (constant).  slots are the        \
     * optimizer's flat state buffers.  Returns the number of steps taken. */              \
    size_t fo_train_epoch_##S(T *params, T *grads, T *slot[FO_MAX_SLOTS], int kind,        \
                              fo_optim_hyper *h, const double *lr, size_t n_lr,             \
                              const T *X, const T *Y, size_t n, size_t batch,               \
                              const fo_net *net, int64_t *perm, fo_rng *rng, int shuffle,   \
                              T *work, fo_stats *st);                                       \
    /* `epochs` epochs in a row; lr has 1 entry or one per step of every epoch;              \
     * per_epoch[e] receives epoch e's sums.  Returns the number of steps taken. */         \
    size_t fo_train_epochs_##S(T *params, T *grads, T *slot[FO_MAX_SLOTS], int kind,       \
                               fo_optim_hyper *h, const double *lr, size_t n_lr,            \
                               const T *X, const T *Y, size_t n, size_t batch,              \
                               const fo_net *net, int64_t *perm, fo_rng *rng, int shuffle,  \
                               T *work, size_t epochs, fo_stats *per_epoch);
FO_DECLARE_TRAIN(float, f32)
FO_DECLARE_TRAIN(double, f64)

/* ------------------------------------------------------------------ */
/* linear regression by gradient descent (article 000)                 */
/* ------------------------------------------------------------------ */

#define FO_DECLARE_LINEAR(T, S)                                                             \
    /* dw (d), *db: gradient of mean((x w + b - y)^2) for x (n,d), y (n), w (d);           \
     * e: n elements of scratch.  Returns that loss. */                                     \
    double fo_linear_gradient_##S(T *dw, T *db, T *e, const T *x, const T *y, const T *w,  \
                                  T b, size_t n, size_t d);                                 \
    /* iters steps of gradient descent on w (d), *b; dw (d) and e (n) are scratch.         \
     * Returns the loss at the final (w, b). */                                             \
    double fo_linear_gd_##S(T *w, T *b, T *dw, T *e, const T *x, const T *y, size_t n,     \
                            size_t d, double lr, size_t iters);
FO_DECLARE_LINEAR(float, f32)
FO_DECLARE_LINEAR(double, f64)

/* ------------------------------------------------------------------ */
/* loss surface of a model linear in two parameters (compare's paths)  */
/* ------------------------------------------------------------------ */

/* loss(ref + d) = rr + 2 (h0 d0 + h1 d1) + d^T [g00 g01; g01 g11] d for
 * loss(p) = mean_i (a_i . p - y_i)^2: G = A^T A / n, h = A^T r / n and
 * rr = mean r^2 with the residuals r = A ref - y at the least-squares point ref */
typedef struct {
    double ref[2];
    double g00, g01, g11, h0, h1, rr;
} fo_lsq2;

#define FO_DECLARE_SURFACE(T, S)                                                            \
    /* st from a (n, 2) row-major and y (n), n >= 1, summed in double */                    \
    void fo_lsq2_stats_##S(fo_lsq2 *st, const T *a, const T *y, size_t n);
FO_DECLARE_SURFACE(float, f32)
FO_DECLARE_SURFACE(double, f64)

/* out (n1, n0): out[j * n0 + i] = the loss at p = (p0[i], p1[j]) plus the
 * penalty l1[k] |p_k| + l2[k] p_k^2 of each parameter k; O(1) per point */
void fo_lsq2_surface(double *out, const fo_lsq2 *st, const double *p0, size_t n0,
                     const double *p1, size_t n1, const double l1[2], const double l2[2]);

#endif /* FASTOPT_H */
