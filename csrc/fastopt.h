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
/* BLAS products of at least this many go through parallel.c: OpenBLAS on one
 * thread, the work split along blocks fixed by the shape (smaller ones it never
 * threads), so that no result depends on the BLAS thread count */
#define FO_BLAS_DIRECT ((size_t)8192)

/* parallel.c: fn(ctx, i) for i in [0, n), on up to `workers` threads (the caller's
 * included); in order on one thread when the pool is busy or workers <= 1 */
typedef void (*fo_task_fn)(void *ctx, size_t i);
void fo_parallel_for(size_t n, fo_task_fn fn, void *ctx, int workers);
/* OpenBLAS on one thread until the matching end (nested calls count); returns
 * the threads it was allowed before (threadpoolctl, OPENBLAS_NUM_THREADS) */
int fo_blas_one_thread_begin(void);
void fo_blas_one_thread_end(void);
/* the blocks of a product C (M,N) = op(A) (M,K) op(B) (K,N): along N when N >= M,
 * else along M, at least 256 columns (rows) and 2^20 multiply-adds each, at most
 * 8; a function of the shape alone.  *along_n tells which way. */
size_t fo_gemm_partition(size_t M, size_t N, size_t K, int *along_n);

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
/* the network: layout, loss, forward, gradients, the training loop    */
/* ------------------------------------------------------------------ */

#define FO_MAX_LAYERS 64

/* loss codes (fo_net.loss): the one loss function of a batch dispatches on it */
enum { FO_LOSS_MSE = 0, FO_N_LOSS = 1 };

/* A stack of dense layers over one flat parameter buffer laid out in Keras'
 * get_weights() order: kernel0 (IN0,OUT0), bias0 (OUT0), kernel1, ...
 * The caller fills the spec (n_layers .. loss); fo_net_layout fills the rest,
 * the one place that computes where each kernel and bias lives. */
typedef struct {
    size_t n_layers;
    size_t units[FO_MAX_LAYERS + 1]; /* units[0]: input features; units[l+1]: layer l */
    int act[FO_MAX_LAYERS];
    int use_bias[FO_MAX_LAYERS];
    double l1[FO_MAX_LAYERS], l2[FO_MAX_LAYERS]; /* kernel regularizers (Keras' meaning) */
    int loss;                                     /* FO_LOSS_* */
    /* the layout (fo_net_layout) */
    size_t kernel_off[FO_MAX_LAYERS]; /* kernel l: (units[l], units[l+1]) at kernel_off[l] */
    size_t bias_off[FO_MAX_LAYERS];   /* bias l: (units[l+1]) at bias_off[l], if use_bias[l] */
    size_t n_params;
    size_t widest;     /* the most units of any layer */
    size_t row_width;  /* workspace elements per row of a chunk */
    size_t chunk_rows; /* a batch is run through the layers in chunks of this many rows */
} fo_net;

/* fill the layout from units and use_bias; -1 if a size would overflow */
int fo_net_layout(fo_net *net);
/* elements of workspace that the fo_net_* kernels need for batches of up to B rows */
size_t fo_net_workspace(const fo_net *net, size_t B);

/* sums over the samples seen */
typedef struct {
    double sse, sae; /* squared and absolute error of every output (unweighted) */
    double penalty;  /* the regularization penalty, times the rows of each batch */
    double loss;     /* sum over batches of batch_loss * batch_rows */
} fo_stats;

/* adds a batch of B rows to st (errors: its error sums; loss: what its rows
 * gave; penalty: the regularization) and returns its loss, loss + penalty */
double fo_add_stats(fo_stats *st, const fo_stats *errors, double loss, double penalty, size_t B);

/* Long work stops at a chunk or step boundary when poll says so: the kernels
 * add the multiply-adds they did to `spent` and call poll(ctl) each time it
 * passes `budget`.  poll returns nonzero to stop (it sets ctl->stop). */
typedef struct fo_ctl {
    int (*poll)(struct fo_ctl *ctl);
    double budget, spent;
    int stop;
} fo_ctl;

FO_INLINE int fo_ctl_tick(fo_ctl *ctl, double work)
{
    if (ctl == NULL)
        return 0;
    ctl->spent += work;
    if (ctl->spent >= ctl->budget) {
        ctl->spent = 0;
        if (ctl->poll(ctl))
            ctl->stop = 1;
    }
    return ctl->stop;
}

/* xoshiro256** state, seeded by splitmix64 from one 64-bit seed; never all zero */
typedef struct { uint64_t s[4]; } fo_rng;
void fo_rng_seed(fo_rng *rng, uint64_t seed);
uint64_t fo_rng_next(fo_rng *rng);
/* Fisher-Yates shuffle of perm[0..n) */
void fo_shuffle(int64_t *perm, size_t n, fo_rng *rng);

/* the optimizer a training step updates the parameters with */
typedef struct {
    int kind;
    fo_optim_hyper h;         /* h.iteration: the steps taken; +1 per step applied */
    void *slot[FO_MAX_SLOTS]; /* flat state, n_params each (NULL where unused) */
    int64_t *step;            /* the caller's step counter, set to h.iteration per step, or NULL */
    const double *lr;         /* the learning rate of each step of a call, or one for all */
    size_t n_lr;
} fo_opt;

/* a data set walked in mini-batches, epoch after epoch */
typedef struct {
    const void *x, *y; /* (n, units[0]), (n, units[L]) */
    const void *sw;    /* (n) per-sample loss weights, or NULL */
    size_t n, batch;   /* 1 <= batch <= n */
    size_t steps;      /* batches per epoch: ceil(n / batch), or fewer */
    int shuffle;       /* reshuffle perm at the start of each epoch */
    int64_t *perm;     /* (n) the epoch's order, when shuffle */
    fo_rng *rng;
    size_t pos;        /* the batch of the epoch the next step trains on (0: a new epoch) */
} fo_data;

/* what a run of training steps reports */
enum { FO_OK = 0, FO_NONFINITE_LOSS = 1, FO_LOSS_BLOWUP = 2, FO_NONFINITE_PARAMS = 3 };
typedef struct {
    size_t done;      /* steps applied */
    int64_t bad_step; /* the first step of the call that diverged (see bad), or -1 */
    int bad;          /* FO_*: non-finite loss, loss above loss_start * 1e6, non-finite parameters */
    double loss;      /* the batch loss of the last step applied (NaN if none) */
} fo_report;

#define FO_DECLARE_TRAIN(T, S)                                                              \
    /* out (B, units[L]) = the network applied to x (B, units[0]).  Returns -1 if          \
     * ctl stopped it (out is then partly written), else 0. */                              \
    int fo_net_forward_##S(T *out, const T *x, const T *params, const fo_net *net,         \
                           size_t B, T *work, fo_ctl *ctl);                                 \
    /* grads (n_params) = d(batch loss)/d(params) of the batch x, y (sw: per-sample         \
     * weights or NULL), batch loss = sum_i sw_i loss_i / B + penalties; st gets its sums.  \
     * Returns the batch loss, or NaN if ctl stopped it (grads, st then unspecified). */    \
    double fo_net_gradients_##S(T *grads, const T *x, const T *y, const T *sw,             \
                                const T *params, const fo_net *net, size_t B, T *work,      \
                                fo_stats *st, fo_ctl *ctl);                                 \
    /* the batch loss and sums of x, y without gradients; NaN if ctl stopped it */          \
    double fo_net_evaluate_##S(const T *x, const T *y, const T *sw, const T *params,       \
                               const fo_net *net, size_t B, T *work, fo_stats *st,          \
                               fo_ctl *ctl);                                                \
    /* n_steps steps of mini-batch training from data->pos on: each computes a batch's      \
     * gradients and applies one optimizer step.  per_epoch[e] gets the sums of the e-th    \
     * epoch the call touches (row 0: the epoch at data->pos).  *loss_start is the loss of  \
     * the first step of a run (NaN: this call's first step sets it).  A stop by ctl        \
     * comes at a step boundary: every step is applied and counted whole, or not at all. */ \
    fo_report fo_net_train_##S(T *params, T *grads, fo_opt *opt, fo_data *data,            \
                               const fo_net *net, size_t n_steps, T *work,                  \
                               fo_stats *per_epoch, double *loss_start, fo_ctl *ctl);
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
