/*
 * optim_clone_driver.c - one optimizer step through fo_optim_update, for
 * tests/test_optim_clones.py.  The test compiles this file with csrc/optim.c
 * and csrc/parallel.c once per clone of the vectorized kernels
 * (FO_FORCE_CLONE=avx2 or avx512f, or FO_NO_CLONES for the baseline ISA) and
 * loads each build with ctypes, so that every clone this CPU can run is
 * checked against the NumPy twins, not only the one the resolver picks.
 * Plain C, no Python.h; the hyperparameter struct is filled here, so a field
 * added to it later starts at zero (off) as it does in the bindings.
 */
#include <string.h>

#include "fastopt.h"

/* the kernel code of an optimizer name, -1 if unknown */
int fo_test_kind(const char *name)
{
    if (!strcmp(name, "sgd"))
        return FO_SGD;
    if (!strcmp(name, "adagrad"))
        return FO_ADAGRAD;
    if (!strcmp(name, "rmsprop"))
        return FO_RMSPROP;
    if (!strcmp(name, "adam"))
        return FO_ADAM;
    return -1;
}

/* the dtype code of a float of `bits` bits, -1 if none */
int fo_test_dtype(int bits)
{
    return bits == 32 ? FO_F32 : bits == 64 ? FO_F64 : -1;
}

/* one step over n elements; hp = {learning_rate, weight_decay, momentum, rho,
 * beta_1, beta_2, epsilon, clipvalue}; slots as fo_optim_buffers documents
 * them (NULL where unused).  Returns fo_optim_update's finite flag. */
int fo_test_step(int kind, int dtype, size_t n, void *var, const void *grad, void *s0, void *s1,
                 void *s2, const double *hp, int nesterov, int centered, int amsgrad,
                 long long iteration)
{
    fo_optim_hyper h;
    memset(&h, 0, sizeof h);
    h.learning_rate = hp[0];
    h.weight_decay = hp[1];
    h.momentum = hp[2];
    h.rho = hp[3];
    h.beta_1 = hp[4];
    h.beta_2 = hp[5];
    h.epsilon = hp[6];
    h.clipvalue = hp[7];
    h.nesterov = nesterov;
    h.centered = centered;
    h.amsgrad = amsgrad;
    h.iteration = iteration;
    fo_optim_buffers b;
    memset(&b, 0, sizeof b);
    b.dtype = dtype;
    b.var = var;
    b.grad = grad;
    b.slot[0] = s0;
    b.slot[1] = s1;
    b.slot[2] = s2;
    b.n = n;
    return fo_optim_update(kind, 1, &b, &h);
}
