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

/* State buffers ("slots") of a variable, each of the variable's size and dtype:
 * the first FO_KIND_SLOTS belong to the update rule (momentum, accumulator,
 * m/v/v_hat...), the others to Keras 3's base-optimizer features. */
#define FO_KIND_SLOTS 3
enum {
    FO_SLOT_EMA = 3,        /* use_ema: the moving average of the variable */
    FO_SLOT_ACCUM = 4,      /* gradient_accumulation_steps: the summed gradients */
    FO_SLOT_DECAY_MASK = 5, /* exclude_from_weight_decay: 1 where weight decay applies, 0 where not */
};
#define FO_MAX_SLOTS 6

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
    int64_t iteration;      /* 0-based count of update calls already made (Keras' `_iterations`:
                             * with gradient accumulation, every call counts) */
    /* Keras 3's base-optimizer features, all off when zero */
    int use_ema;                      /* keep a moving average of each variable (slot FO_SLOT_EMA) */
    double ema_momentum;              /* average <- m * average + (1 - m) * var */
    int64_t ema_overwrite_frequency;  /* var <- average every this many steps, 0 = never */
    int64_t gradient_accumulation_steps; /* update every this many calls with the mean gradient */
    double loss_scale_factor;         /* gradients are divided by it first, 0 = off */
    int decay_mask;                   /* weight decay only where slot FO_SLOT_DECAY_MASK is 1 */
    /* set by fo_optim_update for the kernels (any value on input): Adam's
     * bias-corrected step size lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) */
    double adam_step_size;
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
 *             Adam: [m, v, v_hat if amsgrad].
 *             then [average if use_ema, accumulator if gradient_accumulation_steps,
 *                   decay mask if decay_mask]. */
void fo_optim_slots_used(int kind, const fo_optim_hyper *h, int used[FO_MAX_SLOTS]);

/* One optimizer call over nvars variables (of either dtype), Keras 3's order:
 * gradients divided by loss_scale_factor; with gradient accumulation, summed
 * until every gradient_accumulation_steps-th call, which steps with their mean;
 * then clipping (clipnorm per variable, else global_clipnorm over all of them,
 * else clipvalue elementwise), decoupled weight decay and the rule of `kind`;
 * then the moving average (use_ema) and its periodic overwrite.
 * Returns 1 if every variable updated is finite afterwards, 0 if any element is
 * NaN or infinite (divergence; detected in the update's own pass). */
int fo_optim_update(int kind, size_t nvars, const fo_optim_buffers *bufs,
                    const fo_optim_hyper *h);

/* Whether the hyperparameters of one step survive the conversion to `dtype`
 * (FO_F32 or FO_F64) that the kernels do: 0 if so; else 1 (overflow: the value
 * becomes infinite) or 2 (underflow: a positive value becomes 0), with *name the
 * hyperparameter and *value its value. */
int fo_optim_check_hyper(int kind, int dtype, const fo_optim_hyper *h, const char **name,
                         double *value);

/* Adam's step size at update t = iteration + 1 (iteration counting updates) */
double fo_adam_step_size(const fo_optim_hyper *h);

/* the per-variable kernels the update is made of, with h as fo_optim_update
 * prepares it (iteration counting updates, adam_step_size set); grad_scale multiplies every
 * gradient element (after the division by loss_scale_factor) before it is
 * clipped to [-clipvalue, clipvalue] (clipvalue <= 0: no clip); decay_mask
 * (NULL: everywhere) says where weight decay applies.  Each returns 1 if every
 * element of var is finite after the update, else 0. */
#define FO_DECLARE_OPTIM(T, S)                                                              \
    int fo_sgd_step_##S(T *var, T *momentum, const T *grad, const T *decay_mask, size_t n, \
                        const fo_optim_hyper *h, double grad_scale);                        \
    int fo_adagrad_step_##S(T *var, T *accumulator, const T *grad, const T *decay_mask,    \
                            size_t n, const fo_optim_hyper *h, double grad_scale);          \
    int fo_rmsprop_step_##S(T *var, T *velocity, T *momentum, T *average_grad,             \
                            const T *grad, const T *decay_mask, size_t n,                   \
                            const fo_optim_hyper *h, double grad_scale);                    \
    int fo_adam_step_##S(T *var, T *m, T *v, T *v_hat, const T *grad, const T *decay_mask, \
                         size_t n, const fo_optim_hyper *h, double grad_scale);             \
    /* accum (n) += grad / lsf (lsf <= 0: 1) */                                            \
    void fo_accumulate_##S(T *accum, const T *grad, size_t n, double lsf);                 \
    /* accum (n) = (grad / lsf + accum) / steps: the mean gradient of a window */           \
    void fo_accumulated_mean_##S(T *accum, const T *grad, size_t n, double lsf,            \
                                 double steps);                                             \
    /* average = m * average + (1 - m) * var; then var = average if overwrite */            \
    void fo_ema_##S(T *average, T *var, size_t n, double m, int overwrite);                \
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

#endif /* FASTOPT_H */
