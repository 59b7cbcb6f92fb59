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
 * Define FO_NO_CLONES to build the baseline only, FO_FORCE_CLONE=avx2 (or
 * avx512f) to build that ISA only. */
#if defined(__x86_64__) && defined(__ELF__) && defined(__has_attribute) && !defined(FO_NO_CLONES)
#if defined(FO_FORCE_CLONE)
/* one clone only, e.g. -DFO_FORCE_CLONE=avx2 (setup.py: FASTOPT_FORCE_CLONE=avx2):
 * to measure on an AVX-512 machine the path an AVX2-only machine takes */
#define FO_STR_(x) #x
#define FO_STR(x) FO_STR_(x)
#define FO_CLONE_NAME FO_STR(FO_FORCE_CLONE)
#define FO_CLONES __attribute__((target(FO_CLONE_NAME)))
#elif __has_attribute(target_clones)
#define FO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define FO_CLONE_RESOLVER 1
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

/* activation codes (Keras 3 names); the first four keep their values */
enum {
    FO_LINEAR = 0,
    FO_RELU = 1,
    FO_SIGMOID = 2,
    FO_TANH = 3,
    FO_SOFTMAX = 4,       /* row-wise over the last axis */
    FO_LEAKY_RELU = 5,    /* param: negative_slope in [0, 1] (Keras default 0.2) */
    FO_ELU = 6,           /* param: alpha >= 0 (default 1.0) */
    FO_GELU = 7,          /* exact: 0.5 z (1 + erf(z / sqrt 2)), as 0.5 z erfc(-z / sqrt 2) */
    FO_GELU_TANH = 8,     /* Keras' approximate=True: 0.5 z (1 + tanh u), as z sigmoid(2u) */
    FO_SILU = 9,          /* z sigmoid(z), Keras' swish */
    FO_SOFTPLUS = 10,     /* log(1 + exp z) */
    FO_SOFTSIGN = 11,     /* z / (1 + |z|) */
    FO_HARD_SIGMOID = 12, /* Keras 3: relu6(z + 3) / 6 */
    FO_EXPONENTIAL = 13,  /* exp z */
    FO_N_ACT = 14
};

/* 1 if the backward pass of `act` reads the pre-activation z (gelu, gelu_tanh,
 * silu, softsign: more precise than from the output);
 * the others are differentiated from their output a = act(z) */
int fo_act_needs_z(int act);
/* Keras' default parameter of `act` (leaky_relu 0.2, elu 1.0; 0 for the rest) */
double fo_act_default_param(int act);
/* 1 if `param` is valid for `act` (leaky_relu: [0, 1]; elu: finite >= 0; others: any) */
int fo_act_param_ok(int act, double param);

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
/* an elementwise pass over n elements in chunks for fo_parallel_for: returns
 * how many, *chunk elements each (the last one shorter), a multiple of 16 (whole
 * cache lines in either dtype), FO_RANGE_CHUNK or more, at most FO_RANGE_MAX_CHUNKS
 * of them.  Threads take chunks in turn, so a thread that starts late or runs
 * on a busy core takes fewer: no thread waits for one fixed half of the work. */
#define FO_RANGE_CHUNK ((size_t)1 << 16)
#define FO_RANGE_MAX_CHUNKS 1024
size_t fo_range_chunks(size_t n, size_t *chunk);
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

/* loss codes (Keras 3 names) and reductions (Keras' `reduction`) */
enum {
    FO_LOSS_MSE = 0,      /* mean_squared_error */
    FO_LOSS_MAE = 1,      /* mean_absolute_error */
    FO_LOSS_HUBER = 2,    /* huber (delta) */
    FO_LOSS_LOG_COSH = 3, /* log_cosh */
    FO_LOSS_BCE = 4,      /* binary_crossentropy (from_logits, label_smoothing) */
    FO_LOSS_CCE = 5,      /* categorical_crossentropy (from_logits, label_smoothing) */
    FO_LOSS_SCCE = 6,     /* sparse_categorical_crossentropy (from_logits) */
    FO_N_LOSS = 7
};
enum {
    FO_REDUCE_SUM_OVER_BATCH_SIZE = 0, /* sum_b w_b l_b / B (also Keras' "mean") */
    FO_REDUCE_SUM = 1,                 /* sum_b w_b l_b */
    FO_REDUCE_MEAN_WITH_SAMPLE_WEIGHT = 2, /* sum_b w_b l_b / sum_b w_b (0 if that is 0) */
    FO_REDUCE_NONE = 3,                /* per-sample w_b l_b; the gradient is that of their sum */
    FO_N_REDUCE = 4
};

/* Keras' backend.epsilon(): probabilities are clipped to [eps, 1 - eps] */
#define FO_LOSS_EPSILON 1e-7

/* A loss as the training loop reads it.  l_b, the loss of row b of a (B, C)
 * prediction, is the mean over the C outputs of the elementwise loss (MSE,
 * MAE, Huber, log_cosh, BCE) or the cross-entropy of the row (CCE, SCCE). */
typedef struct {
    int kind;               /* FO_LOSS_* */
    int reduction;          /* FO_REDUCE_* */
    int from_logits;        /* BCE, CCE, SCCE: pred holds logits */
    double label_smoothing; /* BCE: y (1 - ls) + ls / 2; CCE: y (1 - ls) + ls / C */
    double delta;           /* Huber: quadratic for |e| <= delta, linear beyond */
} fo_loss_spec;

/* 1 if the last activation `act` followed by loss `s` is computed from the
 * logits as one stable function (sigmoid + BCE, softmax + CCE/SCCE, both with
 * from_logits == 0), so the loop skips the activation's backward pass */
int fo_loss_fuses(const fo_loss_spec *s, int act);

/* metric codes (Keras 3 names) for the per-batch sums of fo_metrics_update */
enum {
    FO_METRIC_MSE = 0,                  /* acc: [sum w_b mean_c e^2, sum w_b] */
    FO_METRIC_MAE = 1,                  /* [sum w_b mean_c |e|, sum w_b] */
    FO_METRIC_RMSE = 2,                 /* as MSE; the result is the square root */
    FO_METRIC_ACCURACY = 3,             /* [sum w_b mean_c [y == p], sum w_b] */
    FO_METRIC_BINARY_ACCURACY = 4,      /* [sum w_b mean_c [y == (p > threshold)], sum w_b] */
    FO_METRIC_CATEGORICAL_ACCURACY = 5, /* [sum w_b [argmax y == argmax p], sum w_b] */
    FO_METRIC_SPARSE_CATEGORICAL_ACCURACY = 6, /* [sum w_b [y_b == argmax p], sum w_b] */
    FO_METRIC_TOP_K_CATEGORICAL_ACCURACY = 7,  /* [sum w_b [argmax y in top k of p], sum w_b] */
    FO_METRIC_R2 = 8, /* per output c: sum w y, sum w y^2, sum w e^2, sum w; then #rows with w != 0 */
    FO_N_METRIC = 9
};

typedef struct {
    int kind;         /* FO_METRIC_* */
    double threshold; /* binary_accuracy */
    size_t k;         /* top_k_categorical_accuracy */
} fo_metric_spec;

/* doubles of accumulator a metric needs for C outputs (2, or 4 C + 1 for r2) */
size_t fo_metric_acc_size(const fo_metric_spec *m, size_t C);

/* ------------------------------------------------------------------ */
/* the network: layout, loss, forward, gradients, the training loop    */
/* ------------------------------------------------------------------ */

#define FO_MAX_LAYERS 64
#define FO_MAX_METRICS 32
enum { FO_NOISE_FULL = 0, FO_NOISE_ROWS = 1, FO_NOISE_COLS = 2 };

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
    /* what the training loop adds to Keras' Dense stack (all 0 by default) */
    double act_param[FO_MAX_LAYERS]; /* leaky_relu's slope, elu's alpha (fo_act_default_param) */
    double dropout[FO_MAX_LAYERS];   /* inverted dropout of layer l's output while training, rate */
    int noise[FO_MAX_LAYERS];        /* its mask: FO_NOISE_FULL, _ROWS (batch, 1), _COLS (1, features) */
    fo_loss_spec loss;               /* the batch loss (fo_batch_loss) */
    size_t ycols;                    /* columns of y: 1 (class indices) for SCCE, else units[L] */
    size_t n_metrics;                /* metrics summed per batch (fo_metrics_update), unweighted */
    fo_metric_spec metric[FO_MAX_METRICS];
    size_t n_acc;                    /* doubles of their accumulators (fo_metric_acc_size) */
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
/* 1 if the workspace holds layer l's pre-activation z (the last layer, and
 * activations whose backward pass reads z) */
int fo_net_keeps_z(const fo_net *net, size_t l);
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
    int64_t *step;            /* the caller's step counter, set to h.iteration when a call ends, or NULL */
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
    int bad;          /* FO_*: non-finite loss, loss above loss_start * 1e6, non-finite parameters
                       * (as the optimizer step finds them) */
    double loss;      /* the batch loss of the last step applied (NaN if none) */
} fo_report;

#define FO_DECLARE_TRAIN(T, S)                                                              \
    /* out (B, units[L]) = the network applied to x (B, units[0]).  Returns -1 if          \
     * ctl stopped it (out is then partly written), else 0. */                              \
    int fo_net_forward_##S(T *out, const T *x, const T *params, const fo_net *net,         \
                           size_t B, T *work, fo_ctl *ctl);                                 \
    /* grads (n_params) = d(batch loss)/d(params) of the batch x, y (sw: per-sample         \
     * weights or NULL; y (B, net->ycols)), batch loss = the reduced net->loss of the last   \
     * layer's output + penalties; st gets its sums, acc (net->n_acc, or NULL) the metric   \
     * sums.  Dropout runs with masks from rng (NULL: no dropout, as at inference).          \
     * Returns the batch loss, or NaN if ctl stopped it (grads, st then unspecified). */    \
    double fo_net_gradients_##S(T *grads, const T *x, const T *y, const T *sw,             \
                                const T *params, const fo_net *net, size_t B, T *work,      \
                                fo_stats *st, double *acc, fo_rng *rng, fo_ctl *ctl);       \
    /* the batch loss and sums of x, y without gradients or dropout; NaN if ctl stopped it */ \
    double fo_net_evaluate_##S(const T *x, const T *y, const T *sw, const T *params,       \
                               const fo_net *net, size_t B, T *work, fo_stats *st,          \
                               double *acc, fo_ctl *ctl);                                   \
    /* n_steps steps of mini-batch training from data->pos on: each computes a batch's      \
     * gradients (dropout masks from data->rng) and applies one optimizer step.             \
     * per_epoch[e] gets the sums of the e-th epoch the call touches (row 0: the epoch at   \
     * data->pos), per_epoch_acc[e * n_acc ...] its metric sums (NULL: none).  *loss_start   \
     * is the loss of the first step of a run (NaN: this call's first step sets it).  A     \
     * stop by ctl comes at a step boundary: every step is applied and counted whole, or    \
     * not at all (the generator too). */                                                  \
    fo_report fo_net_train_##S(T *params, T *grads, fo_opt *opt, fo_data *data,            \
                               const fo_net *net, size_t n_steps, T *work,                  \
                               fo_stats *per_epoch, double *per_epoch_acc,                  \
                               double *loss_start, fo_ctl *ctl);
FO_DECLARE_TRAIN(float, f32)
FO_DECLARE_TRAIN(double, f64)

/* ------------------------------------------------------------------ */
/* linear regression by gradient descent (article 000)                 */
/* ------------------------------------------------------------------ */

#define FO_DECLARE_LINEAR(T, S)                                                             \
    /* dw (d), *db: gradient of mean((x w + b - y)^2) for x (n,d), y (n), w (d), in one     \
     * pass.  Returns that loss. */                                                         \
    double fo_linear_gradient_##S(T *dw, T *db, const T *x, const T *y, const T *w, T b,   \
                                  size_t n, size_t d);                                      \
    /* out (n) = x (n) * w0 + b as np.dot(x[:, None], [w0]) + b gives it, bit for bit */    \
    void fo_linear_predict1_##S(T *out, const T *x, T w0, T b, size_t n);                  \
    /* iters steps of gradient descent on w (d), *b, each a pass over the data in T (the    \
     * article's loop, kept as the reference); dw (d) is scratch.  Returns the loss at      \
     * the final (w, b). */                                                                 \
    double fo_linear_gd_naive_##S(T *w, T *b, T *dw, const T *x, const T *y, size_t n,     \
                                  size_t d, double lr, size_t iters);                       \
    /* stats (d*d + 2d + 1) = [cov(x) (d,d), cov(x, y) (d), mean(x) (d), mean(y)] in        \
     * float64, the 1/n covariances; n >= 1; work: 2d doubles of scratch */                 \
    void fo_linear_stats_##S(double *stats, double *work, const T *x, const T *y, size_t n, \
                             size_t d);                                                     \
    /* mean((x w + b - y)^2) in float64, for float64 w (d) and b */                         \
    double fo_linear_mse_##S(const T *x, const T *y, const double *w, double b, size_t n,  \
                             size_t d);
FO_DECLARE_LINEAR(float, f32)
FO_DECLARE_LINEAR(double, f64)

/* iters steps of gradient descent on float64 w (d), *b through the statistics of
 * fo_linear_stats_*: O(d^2) per step whatever n is; g: d doubles of scratch */
void fo_linear_gd_stats(double *w, double *b, double *g, const double *stats, size_t d, double lr,
                        size_t iters);

/* ------------------------------------------------------------------ */
/* benchmark helpers (bench.c): not used by any kernel                 */
/* ------------------------------------------------------------------ */

/* one pass over n elements of float32 (dtype FO_F32) or float64 arrays on
 * `threads` threads: the n_read arrays read[] are read, the n_written arrays
 * written[] are read and written in place (written[k][i] += scale * sum of
 * read[.][i], so with scale = 0 the values do not change); the memory traffic
 * of an optimizer step that reads n_read + n_written arrays and writes
 * n_written of them, with next to no arithmetic */
void fo_stream(int dtype, void *const *written, size_t n_written, const void *const *read,
               size_t n_read, size_t n, int threads, double scale);
/* 1 if this CPU has the feature ("avx512f", "avx2", "fma", "avx", "sse4.2"), else 0
 * (-1 for a feature name this function does not know) */
int fo_cpu_supports(const char *feature);
/* the clone that FO_CLONES kernels run on this CPU: "avx512f", "avx2" or "default",
 * by the rule of GCC's target_clones resolver (the first of avx512f, avx2 the CPU
 * has, else default), or the one forced at build time */
const char *fo_kernel_clone(void);

/* ------------------------------------------------------------------ */
/* activations, losses, metrics and dropout (loss.c, dense.c)          */
/* ------------------------------------------------------------------ */


#define FO_DECLARE_LOSS(T, S)                                                                \
    /* a (rows, cols) = act(z), elementwise, or row-wise for softmax; a may be z */         \
    void fo_act_forward_##S(T *a, const T *z, size_t rows, size_t cols, int act,           \
                            double param);                                                  \
    /* dz = da * act'(z) (softmax: the row's Jacobian product a * (da - sum a da)),         \
     * from the output a, and z where fo_act_needs_z; dz may be da */                      \
    void fo_act_backward_##S(T *dz, const T *da, const T *z, const T *a, size_t rows,      \
                             size_t cols, int act, double param);                           \
    /* fo_dense_forward with the pre-activation kept in z (B,OUT) when z != NULL */          \
    void fo_dense_forward_ex_##S(T *out, T *z, const T *x, const T *kernel, const T *bias, \
                                 size_t B, size_t IN, size_t OUT, int act, double param);   \
    /* fo_dense_backward reading z (may be NULL unless fo_act_needs_z(act)) */              \
    void fo_dense_backward_ex_##S(T *dx, T *dkernel, T *dbias, T *dout, const T *x,        \
                                  const T *kernel, const T *z, const T *out, size_t B,      \
                                  size_t IN, size_t OUT, int act, double param);            \
    /* The loss of one batch and its gradient in one pass.  pred (B,C); y (B,C), or (B)     \
     * class indices (held as T) for SCCE; w (B) sample weights, NULL for all 1.            \
     * Returns the reduced loss (spec->reduction; none: the sum).  dpred (B,C), unless      \
     * NULL, receives d loss / d pred; values (B), unless NULL, receives w_b l_b.           \
     * SCCE labels must be valid (fo_loss_check_targets): a row whose label is not gives    \
     * a NaN loss and a NaN gradient row, never an out-of-range read. */                   \
    double fo_loss_##S(T *dpred, T *values, const T *pred, const T *y, const T *w,         \
                       size_t B, size_t C, const fo_loss_spec *spec);                       \
    /* The loss of act(z) and its gradient with respect to z, the last layer's             \
     * pre-activation: the fused logits form where fo_loss_fuses(spec, act), otherwise      \
     * the loss of a = act(z) followed by fo_act_backward.  dz (B,C) may be NULL;           \
     * z is read only when fused or fo_act_needs_z(act). */                                \
    double fo_act_loss_##S(T *dz, T *values, const T *z, const T *a, const T *y,           \
                           const T *w, size_t B, size_t C, int act, double act_param,       \
                           const fo_loss_spec *spec);                                       \
    /* First row of y (B, cols) the loss cannot take, or B.  Always: SCCE labels are        \
     * integers in [0, C) (cols == 1).  strict: CCE rows are >= 0 and sum to 1 (within      \
     * 1e-3); BCE targets lie in [0, 1]. */                                                 \
    size_t fo_loss_check_targets_##S(const T *y, size_t B, size_t cols, size_t C,          \
                                     int kind, int strict);                                 \
    /* First index of w (n) that is negative or not finite, or n */                         \
    size_t fo_check_weights_##S(const T *w, size_t n);                                      \
    /* Adds one batch to the accumulators of n_metrics metrics in one pass over the rows:   \
     * metric i's fo_metric_acc_size doubles follow metric i-1's in acc.  pred (B,C);       \
     * y (B, ycols): ycols == 1 (class indices) for sparse_categorical_accuracy, C for the   \
     * others (a metric whose y this is not is left unchanged); w (B) or NULL. */           \
    void fo_metrics_update_##S(double *acc, const fo_metric_spec *m, size_t n_metrics,     \
                               const T *pred, const T *y, size_t ycols, const T *w,         \
                               size_t B, size_t C);                                         \
    /* Inverted dropout of x (B,F): mask (MR,MC), MR in {1, B}, MC in {1, F} (Keras'         \
     * noise_shape), is drawn from rng: each entry 1 / (1 - rate) with probability          \
     * 1 - rate, else 0 (rate 1: all 0); out = x * mask broadcast.  out may be x. */        \
    void fo_dropout_forward_##S(T *out, T *mask, const T *x, size_t B, size_t F,           \
                                size_t MR, size_t MC, double rate, fo_rng *rng);            \
    /* dx (B,F) = dout * mask broadcast, the same mask; dx may be dout */                   \
    void fo_dropout_backward_##S(T *dx, const T *dout, const T *mask, size_t B, size_t F,  \
                                 size_t MR, size_t MC);
FO_DECLARE_LOSS(float, f32)
FO_DECLARE_LOSS(double, f64)

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
