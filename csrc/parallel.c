/*
 * parallel.c - large matrix products split along a fixed partition, so that
 * their bits never depend on the thread count.
 *
 * OpenBLAS splits a threaded product by its thread count and blocks the
 * reduction dimension differently with one thread than with several, so the
 * same seeded fit gave other bits on a machine with another core count.
 * fo_gemm (dense_impl.h) therefore hands every product OpenBLAS might thread
 * to fo_parallel_for: the blocks are a function of the shape alone (fo_gemm_
 * partition), each block is one single-threaded BLAS call, and the blocks run
 * on as many threads as OpenBLAS was allowed (threadpoolctl and
 * OPENBLAS_NUM_THREADS keep their meaning: they set how many run at once).
 * The same pool runs the chunks of large optimizer steps (optim.c) and of the
 * benchmarks' memory floor (bench.c), cut by fo_range_chunks.
 *
 * Plain C and pthreads: no Python.h.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fastopt.h"

#ifdef FO_HAVE_BLAS
#include <cblas.h>
#endif

/* ------------------------------------------------------------------ */
/* OpenBLAS on one thread, for as long as any product of ours runs      */
/* ------------------------------------------------------------------ */

#ifndef _WIN32
#include <pthread.h>
#include <signal.h>

static pthread_mutex_t blas_mu = PTHREAD_MUTEX_INITIALIZER;
static int blas_users = 0, blas_saved = 1;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void register_fork_handler(void);

int fo_blas_one_thread_begin(void)
{
    pthread_once(&fork_once, register_fork_handler);
    pthread_mutex_lock(&blas_mu);
    if (blas_users++ == 0) {
#ifdef FO_HAVE_BLAS
        blas_saved = scipy_openblas_get_num_threads();
        if (blas_saved > 1)
            scipy_openblas_set_num_threads(1);
#endif
    }
    const int workers = blas_saved < 1 ? 1 : blas_saved;
    pthread_mutex_unlock(&blas_mu);
    return workers;
}

void fo_blas_one_thread_end(void)
{
    pthread_mutex_lock(&blas_mu);
    if (--blas_users == 0 && blas_saved > 1) {
#ifdef FO_HAVE_BLAS
        scipy_openblas_set_num_threads(blas_saved);
#endif
    }
    pthread_mutex_unlock(&blas_mu);
}

/* ------------------------------------------------------------------ */
/* a small pool: one job at a time, the caller works too                */
/* ------------------------------------------------------------------ */

#define FO_MAX_WORKERS 64

static pthread_mutex_t pool_user = PTHREAD_MUTEX_INITIALIZER; /* held by the caller of a job */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;   /* the job and the counters */
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER, done_cv = PTHREAD_COND_INITIALIZER;
static int pool_threads = 0;       /* workers started */
static unsigned long generation = 0; /* +1 per job */
static struct {
    fo_task_fn fn;
    void *ctx;
    size_t n, next, done;
    int helpers; /* workers 0 .. helpers-1 take part */
} job;

/* take tasks until none is left (pool_mu held on entry and exit) */
static void run_tasks(void)
{
    while (job.next < job.n) {
        const size_t i = job.next++;
        pthread_mutex_unlock(&pool_mu);
        job.fn(job.ctx, i);
        pthread_mutex_lock(&pool_mu);
        if (++job.done == job.n)
            pthread_cond_signal(&done_cv);
    }
}

static void *worker(void *arg)
{
    const int index = (int)(intptr_t)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool_mu);
    for (;;) {
        while (generation == seen)
            pthread_cond_wait(&work_cv, &pool_mu);
        seen = generation;
        if (index < job.helpers)
            run_tasks();
    }
    return NULL;
}

/* a forked child has none of the parent's workers, and no section of ours runs */
static void pool_after_fork(void)
{
    pthread_mutex_init(&pool_user, NULL);
    pthread_mutex_init(&pool_mu, NULL);
    pthread_cond_init(&work_cv, NULL);
    pthread_cond_init(&done_cv, NULL);
    pthread_mutex_init(&blas_mu, NULL);
    pool_threads = 0;
    generation = 0;
    blas_users = 0;
}

static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, pool_after_fork);
}

void fo_parallel_for(size_t n, fo_task_fn fn, void *ctx, int workers)
{
    pthread_once(&fork_once, register_fork_handler);
    /* one thread, one task, or the pool busy with another caller's job: in order here */
    if (workers <= 1 || n <= 1 || pthread_mutex_trylock(&pool_user) != 0) {
        for (size_t i = 0; i < n; i++)
            fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&pool_mu);
    int helpers = workers - 1;
    if ((size_t)helpers > n - 1)
        helpers = (int)(n - 1);
    if (helpers > FO_MAX_WORKERS)
        helpers = FO_MAX_WORKERS;
    while (pool_threads < helpers) {
        /* workers start with every signal blocked: signals go to the threads that handle them */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int err = pthread_create(&t, &attr, worker, (void *)(intptr_t)pool_threads);
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (err != 0)
            break; /* fewer helpers: the tasks still all run */
        pool_threads++;
    }
    job.fn = fn;
    job.ctx = ctx;
    job.n = n;
    job.next = 0;
    job.done = 0;
    job.helpers = helpers < pool_threads ? helpers : pool_threads;
    generation++;
    pthread_cond_broadcast(&work_cv);
    run_tasks();
    while (job.done < job.n)
        pthread_cond_wait(&done_cv, &pool_mu);
    job.helpers = 0;
    pthread_mutex_unlock(&pool_mu);
    pthread_mutex_unlock(&pool_user);
}

#else /* no pthreads: the blocks run in order, BLAS keeps its setting */

int fo_blas_one_thread_begin(void) { return 1; }
void fo_blas_one_thread_end(void) {}

void fo_parallel_for(size_t n, fo_task_fn fn, void *ctx, int workers)
{
    (void)workers;
    for (size_t i = 0; i < n; i++)
        fn(ctx, i);
}

#endif

size_t fo_range_chunks(size_t n, size_t *chunk)
{
    size_t c = (n + FO_RANGE_MAX_CHUNKS - 1) / FO_RANGE_MAX_CHUNKS;
    c = c < FO_RANGE_CHUNK ? FO_RANGE_CHUNK : (c + 15) & ~(size_t)15;
    *chunk = c;
    return n == 0 ? 0 : (n + c - 1) / c;
}

size_t fo_gemm_partition(size_t M, size_t N, size_t K, int *along_n)
{
    *along_n = N >= M;
    size_t nb = (*along_n ? N : M) / 256;
    const size_t work = M * N * K >> 20; /* a block is worth a thread from 2^20 multiply-adds */
    nb = nb < work ? nb : work;
    return nb < 1 ? 1 : nb > 8 ? 8 : nb;
}
