/* optim.c - optimizer update kernels (float32 and float64 from optim_impl.h)
 * and the step driver: loss scaling, gradient accumulation, clipping, the
 * rule of each optimizer, the moving average of the weights. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <unistd.h>
#endif

#include "fastopt.h"

#define T float
#define S f32
#define U uint32_t
#define FO_EXP_BITS 0x7f800000u
#define FO_SQRT sqrtf
#include "optim_impl.h"
#undef T
#undef S
#undef U
#undef FO_EXP_BITS
#undef FO_SQRT

#define T double
#define S f64
#define U uint64_t
#define FO_EXP_BITS 0x7ff0000000000000ull
#define FO_SQRT sqrt
#include "optim_impl.h"
#undef T
#undef S
#undef U
#undef FO_EXP_BITS
#undef FO_SQRT

void fo_optim_slots_used(int kind, const fo_optim_hyper *h, int used[FO_MAX_SLOTS])
{
    for (int k = 0; k < FO_MAX_SLOTS; k++)
        used[k] = 0;
    switch (kind) {
    case FO_SGD:
        used[0] = h->momentum > 0;
        break;
    case FO_ADAGRAD:
        used[0] = 1;
        break;
    case FO_RMSPROP:
        used[0] = 1;
        used[1] = h->momentum > 0;
        used[2] = h->centered != 0;
        break;
    case FO_ADAM:
        used[0] = used[1] = 1;
        used[2] = h->amsgrad != 0;
        break;
    }
    used[FO_SLOT_EMA] = h->use_ema != 0;
    used[FO_SLOT_ACCUM] = h->gradient_accumulation_steps > 1;
    used[FO_SLOT_DECAY_MASK] = h->decay_mask != 0;
}

/* what a value becomes in the kernels' dtype: 0 fine, 1 overflow, 2 underflow */
static int fo_convert(int dtype, double v)
{
    if (dtype == FO_F32) {
        const float f = (float)v;
        if (isfinite(v) && !isfinite(f))
            return 1;
        return v != 0 && f == 0 ? 2 : 0;
    }
    return 0; /* the hyperparameters are doubles already */
}

int fo_optim_check_hyper(int kind, int dtype, const fo_optim_hyper *h, const char **name,
                         double *value)
{
    /* underflow matters where a positive value becoming 0 changes the maths:
     * no step (learning_rate), a division by zero (epsilon, loss_scale_factor),
     * every gradient clipped to 0 (clipvalue).  The decay factor
     * 1 - learning_rate * weight_decay and Adam's step size may only overflow. */
    struct {
        const char *name;
        double v;
        int applies, underflow;
    } checks[] = {
        {"learning_rate", h->learning_rate, 1, 1},
        {"learning_rate * weight_decay", h->learning_rate * h->weight_decay, h->weight_decay > 0, 0},
        {"epsilon", h->epsilon, kind != FO_SGD, 1},
        {"clipvalue", h->clipvalue, h->clipvalue > 0 && h->clipnorm <= 0 && h->global_clipnorm <= 0, 1},
        {"loss_scale_factor", h->loss_scale_factor, h->loss_scale_factor > 0, 1},
        {"learning_rate (Adam's bias-corrected step size)", 0.0, 0, 0},
    };
    if (kind == FO_ADAM && h->learning_rate > 0) {
        /* lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) <= lr / (1 - beta_1) at every
         * step t: the exact value only when that bound does not fit */
        checks[5].v = h->learning_rate / (1.0 - h->beta_1);
        checks[5].applies = 1;
        if (fo_convert(dtype, checks[5].v) || !isfinite(checks[5].v)) {
            fo_optim_hyper u = *h;
            if (u.gradient_accumulation_steps > 1)
                u.iteration /= u.gradient_accumulation_steps;
            checks[5].v = fo_adam_step_size(&u);
        }
    }
    for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) {
        if (!checks[i].applies)
            continue;
        int r = isfinite(checks[i].v) ? fo_convert(dtype, checks[i].v) : 1;
        if (r == 2 && !checks[i].underflow)
            r = 0;
        if (r) {
            *name = checks[i].name;
            *value = checks[i].v;
            return r;
        }
    }
    return 0;
}

/* beta^t for t >= 1, without libm's slow underflow path when it is 0 */
static double power(double beta, double t)
{
    if (t > 64 && t * log(beta) < -746.0)
        return 0.0;
    return pow(beta, t);
}

double fo_adam_step_size(const fo_optim_hyper *h)
{
    const double t = (double)(h->iteration + 1);
    return h->learning_rate * sqrt(1.0 - power(h->beta_2, t)) / (1.0 - power(h->beta_1, t));
}

static double sumsq(int dtype, const void *x, size_t n)
{
    return dtype == FO_F32 ? fo_sumsq_f32((const float *)x, n) : fo_sumsq_f64((const double *)x, n);
}

/* Keras' clip_by_norm / clip_by_global_norm: g * c / max(norm, c).  A NaN
 * norm makes every gradient NaN, as in Keras and torch's clip_grad_norm_. */
static double clip_scale(double sq, double c)
{
    double norm = sqrt(sq);
    return norm <= c ? 1.0 : c / norm;
}

#define FO_STEP(T, S)                                                                       \
    static int step_##S(int kind, const fo_optim_buffers *b, const fo_optim_hyper *h,      \
                        double scale)                                                       \
    {                                                                                       \
        T *var = (T *)b->var;                                                               \
        const T *g = (const T *)b->grad;                                                    \
        T *s0 = (T *)b->slot[0], *s1 = (T *)b->slot[1], *s2 = (T *)b->slot[2];              \
        const T *mask = h->decay_mask ? (const T *)b->slot[FO_SLOT_DECAY_MASK] : NULL;      \
        switch (kind) {                                                                     \
        case FO_SGD:                                                                        \
            return fo_sgd_step_##S(var, s0, g, mask, b->n, h, scale);                       \
        case FO_ADAGRAD:                                                                    \
            return fo_adagrad_step_##S(var, s0, g, mask, b->n, h, scale);                   \
        case FO_RMSPROP:                                                                    \
            return fo_rmsprop_step_##S(var, s0, s1, s2, g, mask, b->n, h, scale);           \
        case FO_ADAM:                                                                       \
            return fo_adam_step_##S(var, s0, s1, s2, g, mask, b->n, h, scale);              \
        }                                                                                   \
        return 1;                                                                           \
    }
FO_STEP(float, f32)
FO_STEP(double, f64)

/* Large variables are split across threads: the update is elementwise, so
 * the result is bit-identical to one pass.  FASTOPT_NUM_THREADS sets the
 * thread count (default: the online CPUs, at most 8, as torch's fused
 * optimizers use); only variables of FO_SPLIT_MIN elements or more are split
 * (below that, waking a second thread costs more than it saves).  The variable
 * is cut into chunks (fo_range_chunks) that the calling thread and the
 * workers of parallel.c's pool take in turn: the caller starts at once (no
 * thread is created per step), and a worker that wakes late, or shares its
 * core with another process, takes fewer chunks instead of holding up a fixed
 * half of the step. */
#define FO_SPLIT_MIN ((size_t)1 << 20)
#define FO_MAX_THREADS 8

static int optim_threads(void)
{
    static int n; /* a benign race: every caller computes the same value */
    if (n == 0) {
        const char *e = getenv("FASTOPT_NUM_THREADS");
        int v = 1;
        if (e)
            v = atoi(e);
#ifdef _SC_NPROCESSORS_ONLN
        else
            v = (int)sysconf(_SC_NPROCESSORS_ONLN);
#endif
        n = v < 1 ? 1 : (v > FO_MAX_THREADS ? FO_MAX_THREADS : v);
    }
    return n;
}

static int step_one(int kind, const fo_optim_buffers *b, const fo_optim_hyper *h, double scale)
{
    return b->dtype == FO_F32 ? step_f32(kind, b, h, scale) : step_f64(kind, b, h, scale);
}

typedef struct {
    int kind;
    const fo_optim_buffers *b;
    const fo_optim_hyper *h;
    double scale;
    size_t chunk;
    unsigned char finite[FO_RANGE_MAX_CHUNKS]; /* one per chunk: no two threads write one byte */
} step_job;

static void step_chunk(void *ctx, size_t t)
{
    step_job *j = ctx;
    const size_t size = j->b->dtype == FO_F32 ? sizeof(float) : sizeof(double);
    const size_t lo = t * j->chunk, hi = lo + j->chunk < j->b->n ? lo + j->chunk : j->b->n;
    fo_optim_buffers c = *j->b;
    c.n = hi - lo;
    c.var = (char *)c.var + lo * size;
    c.grad = (const char *)c.grad + lo * size;
    for (int k = 0; k < FO_MAX_SLOTS; k++)
        if (c.slot[k])
            c.slot[k] = (char *)c.slot[k] + lo * size;
    j->finite[t] = (unsigned char)step_one(j->kind, &c, j->h, j->scale);
}

static int step_split(int kind, const fo_optim_buffers *b, const fo_optim_hyper *h, double scale)
{
    const int nt = b->n >= FO_SPLIT_MIN ? optim_threads() : 1;
    if (nt == 1)
        return step_one(kind, b, h, scale);
    step_job job = {kind, b, h, scale, 0, {0}};
    const size_t chunks = fo_range_chunks(b->n, &job.chunk);
    fo_parallel_for(chunks, step_chunk, &job, nt);
    int finite = 1;
    for (size_t t = 0; t < chunks; t++)
        finite &= job.finite[t];
    return finite;
}

/* the per-buffer passes of the base-optimizer features, per dtype */
static void accumulate(const fo_optim_buffers *b, double lsf)
{
    if (b->dtype == FO_F32)
        fo_accumulate_f32(b->slot[FO_SLOT_ACCUM], b->grad, b->n, lsf);
    else
        fo_accumulate_f64(b->slot[FO_SLOT_ACCUM], b->grad, b->n, lsf);
}

static void accumulated_mean(const fo_optim_buffers *b, double lsf, double steps)
{
    if (b->dtype == FO_F32)
        fo_accumulated_mean_f32(b->slot[FO_SLOT_ACCUM], b->grad, b->n, lsf, steps);
    else
        fo_accumulated_mean_f64(b->slot[FO_SLOT_ACCUM], b->grad, b->n, lsf, steps);
}

static void moving_average(const fo_optim_buffers *b, double m, int overwrite)
{
    if (b->dtype == FO_F32)
        fo_ema_f32(b->slot[FO_SLOT_EMA], b->var, b->n, m, overwrite);
    else
        fo_ema_f64(b->slot[FO_SLOT_EMA], b->var, b->n, m, overwrite);
}

int fo_optim_update(int kind, size_t nvars, const fo_optim_buffers *bufs,
                    const fo_optim_hyper *h)
{
    /* Keras' precedence: clipnorm, else global_clipnorm, else clipvalue */
    fo_optim_hyper hh = *h;
    if (hh.clipnorm > 0 || hh.global_clipnorm > 0)
        hh.clipvalue = 0;
    const int64_t acc = hh.gradient_accumulation_steps > 1 ? hh.gradient_accumulation_steps : 0;
    /* Keras' `iterations`: the updates made, which with accumulation is the
     * calls // gradient_accumulation_steps (Adam's t and the EMA count these) */
    const int64_t updates = acc ? hh.iteration / acc : hh.iteration;
    int finite = 1;
    if (acc && (hh.iteration + 1) % acc != 0) {
        for (size_t k = 0; k < nvars; k++)
            accumulate(&bufs[k], hh.loss_scale_factor);
    } else {
        double lsf = hh.loss_scale_factor > 0 ? hh.loss_scale_factor : 1.0;
        if (acc) {
            /* the window's mean gradient, unscaled, in the accumulator: the step reads it */
            for (size_t k = 0; k < nvars; k++)
                accumulated_mean(&bufs[k], hh.loss_scale_factor, (double)acc);
            hh.loss_scale_factor = 0;
            lsf = 1.0;
        }
        hh.iteration = updates;
        if (kind == FO_ADAM)
            hh.adam_step_size = fo_adam_step_size(&hh);
        double global_scale = 1.0;
        if (hh.clipnorm <= 0 && hh.global_clipnorm > 0) {
            double sq = 0;
            for (size_t k = 0; k < nvars; k++)
                sq += sumsq(bufs[k].dtype, acc ? bufs[k].slot[FO_SLOT_ACCUM] : bufs[k].grad,
                            bufs[k].n);
            global_scale = clip_scale(sq / (lsf * lsf), hh.global_clipnorm);
        }
        for (size_t k = 0; k < nvars; k++) {
            fo_optim_buffers b = bufs[k];
            if (acc)
                b.grad = b.slot[FO_SLOT_ACCUM];
            double scale = global_scale;
            if (hh.clipnorm > 0)
                scale = clip_scale(sumsq(b.dtype, b.grad, b.n) / (lsf * lsf), hh.clipnorm);
            finite &= step_split(kind, &b, &hh, scale);
            if (acc)
                memset(b.slot[FO_SLOT_ACCUM], 0, b.n * (b.dtype == FO_F32 ? sizeof(float) : sizeof(double)));
        }
    }
    if (hh.use_ema) {
        /* Keras: the average starts at the variable (momentum 0 at the first
         * update) and may overwrite it every ema_overwrite_frequency updates */
        const double m = updates != 0 ? hh.ema_momentum : 0.0;
        const int overwrite = hh.ema_overwrite_frequency > 0 &&
                              (updates + 1) % hh.ema_overwrite_frequency == 0;
        for (size_t k = 0; k < nvars; k++)
            moving_average(&bufs[k], m, overwrite);
    }
    return finite;
}
