/* optim.c - optimizer update kernels (float32 and float64 from optim_impl.h)
 * and the step driver that clips gradients and dispatches on kind and dtype. */
#include <math.h>
#include <stdlib.h>
#ifndef _WIN32
#include <pthread.h>
#include <unistd.h>
#define FO_HAVE_PTHREAD 1
#endif

#include "fastopt.h"

#define T float
#define S f32
#define FO_SQRT sqrtf
#include "optim_impl.h"
#undef T
#undef S
#undef FO_SQRT

#define T double
#define S f64
#define FO_SQRT sqrt
#include "optim_impl.h"
#undef T
#undef S
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
    static void step_##S(int kind, const fo_optim_buffers *b, const fo_optim_hyper *h,     \
                         double scale)                                                      \
    {                                                                                       \
        T *var = (T *)b->var;                                                               \
        const T *g = (const T *)b->grad;                                                    \
        T *s0 = (T *)b->slot[0], *s1 = (T *)b->slot[1], *s2 = (T *)b->slot[2];              \
        switch (kind) {                                                                     \
        case FO_SGD:                                                                        \
            fo_sgd_step_##S(var, s0, g, b->n, h, scale);                                    \
            break;                                                                          \
        case FO_ADAGRAD:                                                                    \
            fo_adagrad_step_##S(var, s0, g, b->n, h, scale);                                \
            break;                                                                          \
        case FO_RMSPROP:                                                                    \
            fo_rmsprop_step_##S(var, s0, s1, s2, g, b->n, h, scale);                        \
            break;                                                                          \
        case FO_ADAM:                                                                       \
            fo_adam_step_##S(var, s0, s1, s2, g, b->n, h, scale);                           \
            break;                                                                          \
        }                                                                                   \
    }
FO_STEP(float, f32)
FO_STEP(double, f64)

/* Large variables are split across threads: the update is elementwise, so
 * the result is bit-identical to one pass.  FASTOPT_NUM_THREADS sets the
 * thread count (default: the online CPUs, at most 8, as torch's fused
 * optimizers use); only variables of FO_SPLIT_MIN elements or more are split
 * (below that, starting a thread costs more than a second core saves). */
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

typedef struct {
    int kind;
    fo_optim_buffers b;
    const fo_optim_hyper *h;
    double scale;
} step_job;

static void *step_job_run(void *arg)
{
    const step_job *j = arg;
    if (j->b.dtype == FO_F32)
        step_f32(j->kind, &j->b, j->h, j->scale);
    else
        step_f64(j->kind, &j->b, j->h, j->scale);
    return NULL;
}

static void step_split(int kind, const fo_optim_buffers *b, const fo_optim_hyper *h, double scale)
{
    const int nt = b->n >= FO_SPLIT_MIN ? optim_threads() : 1;
    step_job jobs[FO_MAX_THREADS];
#ifdef FO_HAVE_PTHREAD
    pthread_t th[FO_MAX_THREADS];
    int started[FO_MAX_THREADS] = {0};
#endif
    const size_t size = b->dtype == FO_F32 ? sizeof(float) : sizeof(double);
    const size_t chunk = (b->n / nt + 15) & ~(size_t)15; /* whole cache lines */
    for (int t = 0; t < nt; t++) {
        size_t lo = (size_t)t * chunk < b->n ? (size_t)t * chunk : b->n;
        size_t hi = t == nt - 1 || lo + chunk > b->n ? b->n : lo + chunk;
        jobs[t] = (step_job){kind, *b, h, scale};
        jobs[t].b.n = hi - lo;
        jobs[t].b.var = (char *)b->var + lo * size;
        jobs[t].b.grad = (const char *)b->grad + lo * size;
        for (int k = 0; k < FO_MAX_SLOTS; k++)
            if (b->slot[k])
                jobs[t].b.slot[k] = (char *)b->slot[k] + lo * size;
    }
#ifdef FO_HAVE_PTHREAD
    for (int t = 1; t < nt; t++)
        started[t] = pthread_create(&th[t], NULL, step_job_run, &jobs[t]) == 0;
#endif
    step_job_run(&jobs[0]);
    for (int t = 1; t < nt; t++) {
#ifdef FO_HAVE_PTHREAD
        if (started[t]) {
            pthread_join(th[t], NULL);
            continue;
        }
#endif
        step_job_run(&jobs[t]); /* no thread: do its share here */
    }
}

void fo_optim_update(int kind, size_t nvars, const fo_optim_buffers *bufs,
                     const fo_optim_hyper *h)
{
    /* Keras' precedence: clipnorm, else global_clipnorm, else clipvalue */
    fo_optim_hyper hh = *h;
    if (hh.clipnorm > 0 || hh.global_clipnorm > 0)
        hh.clipvalue = 0;
    h = &hh;
    double global_scale = 1.0;
    if (h->clipnorm <= 0 && h->global_clipnorm > 0) {
        double sq = 0;
        for (size_t k = 0; k < nvars; k++)
            sq += sumsq(bufs[k].dtype, bufs[k].grad, bufs[k].n);
        global_scale = clip_scale(sq, h->global_clipnorm);
    }
    for (size_t k = 0; k < nvars; k++) {
        double scale = global_scale;
        if (h->clipnorm > 0)
            scale = clip_scale(sumsq(bufs[k].dtype, bufs[k].grad, bufs[k].n), h->clipnorm);
        step_split(kind, &bufs[k], h, scale);
    }
}
