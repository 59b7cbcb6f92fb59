/*
 * bind_checks.c - the argument checks every binding shares: dtype, layout, shape,
 * writeability and memory overlap, each raising TypeError/ValueError that names the argument.
 */
#include "binding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

PyObject *np_shares_memory;
PyObject *np_too_hard;

static int cmp_intp(const void *x, const void *y)
{
    const npy_intp a = *(const npy_intp *)x, b = *(const npy_intp *)y;
    return a < b ? -1 : a > b;
}

/* ------------------------------------------------------------------ */
/* argument checking                                                   */
/* ------------------------------------------------------------------ */

int dtype_code(int typenum)
{
    return typenum == NPY_FLOAT32 ? FO_F32 : typenum == NPY_FLOAT64 ? FO_F64 : -1;
}

/* An array that fastopt's Python layer allocates and passes to a kernel:
 * exactly `typenum`, C-contiguous, aligned, native, writeable when `writable`,
 * and `size` elements (any when size < 0).  Returns a borrowed reference. */
PyArrayObject *exact_array(PyObject *o, const char *name, int typenum, int writable,
                                  npy_intp size)
{
    if (!PyArray_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray, got %.100s", name,
                     Py_TYPE(o)->tp_name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)o;
    if (PyArray_TYPE(a) != typenum || !PyArray_ISNOTSWAPPED(a)) {
        PyArray_Descr *want = PyArray_DescrFromType(typenum);
        PyErr_Format(PyExc_TypeError, "%s must have dtype %S, got %S", name, (PyObject *)want,
                     (PyObject *)PyArray_DESCR(a));
        Py_DECREF(want);
        return NULL;
    }
    if (!PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISALIGNED(a)) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous and aligned", name);
        return NULL;
    }
    if (writable && !PyArray_ISWRITEABLE(a)) {
        PyErr_Format(PyExc_ValueError, "%s is read-only but is written in place", name);
        return NULL;
    }
    if (size >= 0 && PyArray_SIZE(a) != size) {
        PyErr_Format(PyExc_ValueError, "%s must have %zd elements, got %zd", name, size,
                     PyArray_SIZE(a));
        return NULL;
    }
    return a;
}

/* the dtype of a call, from the array that fixes it: NPY_FLOAT32 or
 * NPY_FLOAT64, or -1 with a TypeError naming the argument */
int float_typenum(PyObject *o, const char *name)
{
    if (!PyArray_Check(o) || dtype_code(PyArray_TYPE((PyArrayObject *)o)) < 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a float32 or float64 numpy.ndarray", name);
        return -1;
    }
    return PyArray_TYPE((PyArrayObject *)o);
}

/* the byte range [lo, hi) an array's elements lie in; lo == hi when empty */
void extent(PyArrayObject *a, char **lo, char **hi)
{
    char *l = PyArray_BYTES(a), *h = PyArray_BYTES(a);
    if (PyArray_SIZE(a) == 0) {
        *lo = *hi = l;
        return;
    }
    for (int d = 0; d < PyArray_NDIM(a); d++) {
        npy_intp span = PyArray_STRIDE(a, d) * (PyArray_DIM(a, d) - 1);
        if (span < 0)
            l += span;
        else
            h += span;
    }
    *lo = l;
    *hi = h + PyArray_ITEMSIZE(a);
}

/* Exact self-overlap, in the spirit of NumPy's mem_overlap.c: do two distinct
 * index tuples of an array with these dims and byte strides reach a common
 * byte?  Equivalently: is there x != 0 with |x_d| < dims[d] and
 * |sum_d strides[d] x_d| < itemsize.  The common layouts are settled by a
 * sufficient condition (sorted by |stride|, each stride passes the extent of
 * the smaller dimensions, as in a mixed-radix number); the others exactly, by
 * sorting every element's offset, when there are at most max_work elements.
 * Returns 1 (overlap), 0 (none) or -1 (undecided within max_work). */
int fo_internal_overlap(int nd, const npy_intp *dims, const npy_intp *strides, npy_intp itemsize,
                        size_t max_work)
{
    npy_intp a[NPY_MAXDIMS], n[NPY_MAXDIMS];
    int m = 0;
    for (int d = 0; d < nd; d++) {
        if (dims[d] == 0)
            return 0; /* no element */
        if (dims[d] == 1)
            continue;
        npy_intp s = strides[d] < 0 ? -strides[d] : strides[d];
        if (s < itemsize)
            return 1; /* neighbours along d share a byte (stride 0 included) */
        /* insertion by |stride| */
        int j = m++;
        for (; j > 0 && a[j - 1] > s; j--) {
            a[j] = a[j - 1];
            n[j] = n[j - 1];
        }
        a[j] = s;
        n[j] = dims[d];
    }
    /* sufficient: a[k] >= itemsize + sum_{j<k} a[j] (n[j] - 1) for every k */
    int separated = 1;
    double reach = (double)itemsize; /* in double: no overflow for absurd strides */
    for (int k = 0; k < m && separated; k++) {
        if ((double)a[k] < reach)
            separated = 0;
        reach += (double)a[k] * (double)(n[k] - 1);
    }
    if (separated)
        return 0;
    /* pigeonhole: more bytes of elements than bytes spanned */
    double count = 1;
    for (int k = 0; k < m; k++)
        count *= (double)n[k];
    if (count * (double)itemsize > reach)
        return 1;
    if (count > (double)max_work)
        return -1;
    /* exact: every element's offset, sorted; a gap below itemsize is an overlap */
    size_t total = (size_t)count;
    npy_intp *off = malloc(total * sizeof *off);
    if (off == NULL)
        return -1;
    npy_intp idx[NPY_MAXDIMS] = {0}, cur = 0;
    for (size_t e = 0; e < total; e++) {
        off[e] = cur;
        for (int k = 0; k < m; k++) { /* odometer */
            if (++idx[k] < n[k]) {
                cur += a[k];
                break;
            }
            cur -= a[k] * (n[k] - 1);
            idx[k] = 0;
        }
    }
    qsort(off, total, sizeof *off, cmp_intp);
    int hit = 0;
    for (size_t e = 1; e < total && !hit; e++)
        hit = off[e] - off[e - 1] < itemsize;
    free(off);
    return hit;
}

/* 1 if a and b share memory, 0 if not, -2 if that could not be decided within
 * NumPy's bounded search (callers treat it as shared), -1 on error */
int overlaps(PyArrayObject *a, PyArrayObject *b)
{
    char *alo, *ahi, *blo, *bhi;
    extent(a, &alo, &ahi);
    extent(b, &blo, &bhi);
    if (alo == ahi || blo == bhi || ahi <= blo || bhi <= alo)
        return 0;
    if (PyArray_IS_C_CONTIGUOUS(a) && PyArray_IS_C_CONTIGUOUS(b))
        return 1;
    /* interleaved strided views may share bounds but no element: NumPy's exact
     * solver, with a bound on its work (it is exponential in the worst case) */
    PyObject *kw = Py_BuildValue("{s:n}", "max_work", (Py_ssize_t)FO_OVERLAP_MAX_WORK);
    PyObject *pos = kw ? PyTuple_Pack(2, (PyObject *)a, (PyObject *)b) : NULL;
    PyObject *r = pos ? PyObject_Call(np_shares_memory, pos, kw) : NULL;
    Py_XDECREF(kw);
    Py_XDECREF(pos);
    if (r == NULL) {
        if (np_too_hard && PyErr_ExceptionMatches(np_too_hard)) {
            PyErr_Clear();
            return -2;
        }
        return -1;
    }
    int t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

/* a 2-d exact array with the given shape (-1: any) */
PyArrayObject *exact_2d(PyObject *o, const char *name, int typenum, int writable,
                               npy_intp rows, npy_intp cols)
{
    PyArrayObject *a = exact_array(o, name, typenum, writable, -1);
    if (a == NULL)
        return NULL;
    if (PyArray_NDIM(a) != 2) {
        PyErr_Format(PyExc_ValueError, "%s must be 2-d, got %d-d", name, PyArray_NDIM(a));
        return NULL;
    }
    if ((rows >= 0 && PyArray_DIM(a, 0) != rows) || (cols >= 0 && PyArray_DIM(a, 1) != cols)) {
        char r[32] = "n", c[32] = "m"; /* a free dimension reads n or m */
        if (rows >= 0)
            snprintf(r, sizeof r, "%zd", (Py_ssize_t)rows);
        if (cols >= 0)
            snprintf(c, sizeof c, "%zd", (Py_ssize_t)cols);
        PyErr_Format(PyExc_ValueError, "%s must have shape (%s, %s), got (%zd, %zd)", name, r, c,
                     PyArray_DIM(a, 0), PyArray_DIM(a, 1));
        return NULL;
    }
    return a;
}

/* fail unless outputs[i] shares no memory with any other listed array */
int check_disjoint(PyArrayObject **arrs, const char **names, int n_out, int n)
{
    for (int i = 0; i < n_out; i++) {
        if (arrs[i] == NULL)
            continue;
        for (int j = 0; j < n; j++) {
            if (j == i || arrs[j] == NULL)
                continue;
            int ov = overlaps(arrs[i], arrs[j]);
            if (ov == -1)
                return -1;
            if (ov) {
                PyErr_Format(PyExc_ValueError,
                             ov == -2 ? "%s may share memory with %s (too many strides to rule it "
                                        "out); pass a copy"
                                      : "%s shares memory with %s",
                             names[i], names[j]);
                return -1;
            }
        }
    }
    return 0;
}

int check_act(int act)
{
    if (act < 0 || act >= FO_N_ACT) {
        PyErr_Format(PyExc_ValueError, "unknown activation code %d", act);
        return -1;
    }
    return 0;
}

int check_kind(long long kind)
{
    if (kind < 0 || kind >= FO_N_OPTIM) {
        PyErr_Format(PyExc_ValueError, "unknown optimizer kind %lld", kind);
        return -1;
    }
    return 0;
}

/* the tuple of a variable's slots: FO_KIND_SLOTS (the rule's own, as before
 * the base-optimizer features) or FO_MAX_SLOTS entries; items[k] borrowed,
 * Py_None where absent */
int parse_slot_tuple(PyObject *t, const char *name, PyObject *items[FO_MAX_SLOTS])
{
    if (!PyTuple_Check(t) ||
        (PyTuple_GET_SIZE(t) != FO_KIND_SLOTS && PyTuple_GET_SIZE(t) != FO_MAX_SLOTS)) {
        PyErr_Format(PyExc_TypeError, "%s must be a %d-tuple", name, FO_MAX_SLOTS);
        return -1;
    }
    for (int k = 0; k < FO_MAX_SLOTS; k++)
        items[k] = k < PyTuple_GET_SIZE(t) ? PyTuple_GET_ITEM(t, k) : Py_None;
    return 0;
}

/* The hyperparameters that do not change from step to step, as the Python
 * optimizers cache them (Optimizer._hyper):
 *   (weight_decay, clipnorm, global_clipnorm, clipvalue, momentum, nesterov,
 *    rho, centered, beta_1, beta_2, epsilon, amsgrad,
 *    use_ema, ema_momentum, ema_overwrite_frequency, gradient_accumulation_steps,
 *    loss_scale_factor, decay_mask)
 * The first 12 alone are accepted too (the base-optimizer features off).
 * Every entry is range-checked: reals finite and >= 0 (the decay factors < 1,
 * ema_momentum <= 1), flags 0 or 1, counts integers in [0, 2**53]. */
#define FO_HYPER_LEN 18
int parse_hyper(PyObject *t, fo_optim_hyper *h)
{
    if (!PyTuple_Check(t) || (PyTuple_GET_SIZE(t) != 12 && PyTuple_GET_SIZE(t) != FO_HYPER_LEN)) {
        PyErr_Format(PyExc_TypeError, "hyper must be a %d-tuple", FO_HYPER_LEN);
        return -1;
    }
    enum { REAL, UNIT, FLAG, COUNT };
    static const char *names[FO_HYPER_LEN] = {
        "weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "momentum", "nesterov",
        "rho", "centered", "beta_1", "beta_2", "epsilon", "amsgrad", "use_ema", "ema_momentum",
        "ema_overwrite_frequency", "gradient_accumulation_steps", "loss_scale_factor",
        "decay_mask"};
    static const int type[FO_HYPER_LEN] = {REAL, REAL, REAL, REAL, UNIT, FLAG, UNIT, FLAG, UNIT,
                                           UNIT, REAL, FLAG, FLAG, REAL, COUNT, COUNT, REAL, FLAG};
    double *d[FO_HYPER_LEN] = {&h->weight_decay, &h->clipnorm, &h->global_clipnorm,
                               &h->clipvalue, &h->momentum, NULL, &h->rho, NULL, &h->beta_1,
                               &h->beta_2, &h->epsilon, NULL, NULL, &h->ema_momentum, NULL, NULL,
                               &h->loss_scale_factor, NULL};
    int *flag[FO_HYPER_LEN] = {NULL, NULL, NULL, NULL, NULL, &h->nesterov, NULL, &h->centered,
                               NULL, NULL, NULL, &h->amsgrad, &h->use_ema, NULL, NULL, NULL,
                               NULL, &h->decay_mask};
    int64_t *count[FO_HYPER_LEN] = {NULL};
    count[14] = &h->ema_overwrite_frequency;
    count[15] = &h->gradient_accumulation_steps;
    memset(h, 0, sizeof(*h));
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t); i++) {
        PyObject *o = PyTuple_GET_ITEM(t, i);
        if (type[i] == FLAG || type[i] == COUNT) {
            if (!PyLong_Check(o)) { /* bool is an int */
                PyErr_Format(PyExc_TypeError, "hyper[%zd] (%s) must be an int, got %.100s", i,
                             names[i], Py_TYPE(o)->tp_name);
                return -1;
            }
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
            if (v == -1 && PyErr_Occurred())
                return -1;
            long long hi = type[i] == FLAG ? 1 : (1LL << 53);
            if (overflow || v < 0 || v > hi) {
                PyErr_Format(PyExc_ValueError, "hyper[%zd] (%s) must be in [0, %lld], got %R", i,
                             names[i], hi, o);
                return -1;
            }
            if (flag[i])
                *flag[i] = (int)v;
            else
                *count[i] = (int64_t)v;
            continue;
        }
        double v = PyFloat_AsDouble(o);
        if (v == -1.0 && PyErr_Occurred())
            return -1;
        const double hi = i == 13 ? 1.0 : INFINITY; /* ema_momentum <= 1 */
        if (!(v >= 0) || !isfinite(v) || v > hi || (type[i] == UNIT && v >= 1)) {
            PyErr_Format(PyExc_ValueError, "hyper[%zd] (%s) must be finite, >= 0%s, got %R", i,
                         names[i], type[i] == UNIT ? " and < 1" : (i == 13 ? " and <= 1" : ""), o);
            return -1;
        }
        *d[i] = v;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* codes, activations and aliasing (the loss, activation and dropout   */
/* bindings)                                                           */
/* ------------------------------------------------------------------ */

/* a Python int (not a bool) as long long, in [lo, hi]; checked before any narrowing */
static int int_in(PyObject *o, const char *name, long long lo, long long hi, long long *v)
{
    if (PyBool_Check(o) || !(PyLong_Check(o) || PyArray_IsScalar(o, Integer))) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %.100s", name, Py_TYPE(o)->tp_name);
        return -1;
    }
    PyObject *i = PyNumber_Index(o); /* a NumPy integer as a Python int */
    if (i == NULL)
        return -1;
    int overflow = 0;
    *v = PyLong_AsLongLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (*v == -1 && PyErr_Occurred())
        return -1;
    return overflow || *v < lo || *v > hi;
}

int parse_code(PyObject *o, const char *name, int n, int *code)
{
    long long v;
    int r = int_in(o, name, 0, (long long)n - 1, &v);
    if (r > 0)
        PyErr_Format(PyExc_ValueError, "%s must be a code in [0, %d), got %S", name, n, o);
    if (r)
        return -1;
    *code = (int)v;
    return 0;
}

int parse_int(PyObject *o, const char *name, long long lo, long long hi, long long *v)
{
    int r = int_in(o, name, lo, hi, v);
    if (r > 0)
        PyErr_Format(PyExc_ValueError, "%s must be an int in [%lld, %lld], got %S", name, lo, hi, o);
    return r ? -1 : 0;
}

int parse_real(PyObject *o, const char *name, double *v)
{
    /* Python and NumPy floats and ints; not bools, complex numbers or strings */
    if (PyBool_Check(o) || !(PyFloat_Check(o) || PyLong_Check(o) || PyArray_IsScalar(o, Floating) ||
                             PyArray_IsScalar(o, Integer))) {
        PyErr_Format(PyExc_TypeError, "%s must be a real number, got %.100s", name,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    *v = PyFloat_AsDouble(o);
    return *v == -1.0 && PyErr_Occurred() ? -1 : 0;
}

int finite_in_dtype(double v, int typenum)
{
    return typenum == NPY_FLOAT32 ? isfinite((float)v) : isfinite(v);
}

int parse_activation(PyObject *code_o, PyObject *param_o, int typenum, int *act, double *param)
{
    if (parse_code(code_o, "activation", FO_N_ACT, act) < 0)
        return -1;
    if (param_o == NULL || param_o == Py_None) {
        *param = fo_act_default_param(*act);
        return 0;
    }
    if (parse_real(param_o, "act_param", param) < 0)
        return -1;
    if (!fo_act_param_ok(*act, *param) || !finite_in_dtype(*param, typenum)) {
        PyErr_Format(PyExc_ValueError,
                     "act_param %R is out of range for activation %d (leaky_relu: negative_slope "
                     "in [0, 1]; elu: alpha >= 0; finite in the arrays' dtype)",
                     param_o, *act);
        return -1;
    }
    return 0;
}

int check_same_or_disjoint(PyArrayObject *out, const char *out_name, PyArrayObject *in,
                           const char *in_name)
{
    if (out == NULL || in == NULL)
        return 0;
    if (PyArray_DATA(out) == PyArray_DATA(in) && PyArray_NDIM(out) == PyArray_NDIM(in) &&
        PyArray_CompareLists(PyArray_DIMS(out), PyArray_DIMS(in), PyArray_NDIM(in)) &&
        PyArray_CompareLists(PyArray_STRIDES(out), PyArray_STRIDES(in), PyArray_NDIM(in)))
        return 0;
    int ov = overlaps(out, in);
    if (ov < 0)
        return -1;
    if (ov) {
        PyErr_Format(PyExc_ValueError, "%s partly overlaps %s (it may be the same array, or "
                     "share no memory with it)", out_name, in_name);
        return -1;
    }
    return 0;
}

PyObject *fast_path_switch(int *flag, const char *name, PyObject *const *args, Py_ssize_t nargs)
{
    const int before = *flag;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s(enabled=None) takes at most one argument", name);
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None) {
        const int t = PyObject_IsTrue(args[0]);
        if (t < 0)
            return NULL;
        *flag = t;
    }
    return PyBool_FromLong(before);
}
