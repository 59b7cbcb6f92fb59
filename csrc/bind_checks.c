/*
 * bind_checks.c - the argument checks every binding shares: dtype, layout, shape,
 * writeability and memory overlap, each raising TypeError/ValueError that names the argument.
 */
#include "binding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

PyObject *np_shares_memory;

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

/* 1 if a and b share memory, 0 if not, -1 on error */
int overlaps(PyArrayObject *a, PyArrayObject *b)
{
    char *alo, *ahi, *blo, *bhi;
    extent(a, &alo, &ahi);
    extent(b, &blo, &bhi);
    if (alo == ahi || blo == bhi || ahi <= blo || bhi <= alo)
        return 0;
    if (PyArray_IS_C_CONTIGUOUS(a) && PyArray_IS_C_CONTIGUOUS(b))
        return 1;
    /* interleaved strided views may share bounds but no element */
    PyObject *r = PyObject_CallFunctionObjArgs(np_shares_memory, (PyObject *)a, (PyObject *)b, NULL);
    if (r == NULL)
        return -1;
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
            if (ov < 0)
                return -1;
            if (ov) {
                PyErr_Format(PyExc_ValueError, "%s shares memory with %s", names[i], names[j]);
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
    if (fo_act_needs_z(act)) {
        PyErr_Format(PyExc_ValueError,
                     "activation code %d (gelu, silu or softsign) is not supported by the training "
                     "loop yet: its backward pass needs the pre-activation values",
                     act);
        return -1;
    }
    return 0;
}

int check_kind(int kind)
{
    if (kind < 0 || kind >= FO_N_OPTIM) {
        PyErr_Format(PyExc_ValueError, "unknown optimizer kind %d", kind);
        return -1;
    }
    return 0;
}
/* the hyperparameters that do not change from step to step, as the Python
 * optimizers cache them: (weight_decay, clipnorm, global_clipnorm, clipvalue,
 * momentum, nesterov, rho, centered, beta_1, beta_2, epsilon, amsgrad) */
/* the hyperparameters that do not change from step to step, as the Python
 * optimizers cache them: (weight_decay, clipnorm, global_clipnorm, clipvalue,
 * momentum, nesterov, rho, centered, beta_1, beta_2, epsilon, amsgrad) */
int parse_hyper(PyObject *t, fo_optim_hyper *h)
{
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 12) {
        PyErr_SetString(PyExc_TypeError, "hyper must be a 12-tuple");
        return -1;
    }
    double *d[] = {&h->weight_decay, &h->clipnorm, &h->global_clipnorm, &h->clipvalue,
                   &h->momentum, NULL, &h->rho, NULL, &h->beta_1, &h->beta_2, &h->epsilon, NULL};
    int *flag[] = {NULL, NULL, NULL, NULL, NULL, &h->nesterov, NULL, &h->centered,
                   NULL, NULL, NULL, &h->amsgrad};
    memset(h, 0, sizeof(*h));
    for (int i = 0; i < 12; i++) {
        PyObject *o = PyTuple_GET_ITEM(t, i);
        if (d[i]) {
            *d[i] = PyFloat_AsDouble(o);
            if (*d[i] == -1.0 && PyErr_Occurred())
                return -1;
        } else if ((*flag[i] = PyObject_IsTrue(o)) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* codes, activations and aliasing (the loss, activation and dropout   */
/* bindings)                                                           */
/* ------------------------------------------------------------------ */

int parse_code(PyObject *o, const char *name, int n, int *code)
{
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %.100s", name, Py_TYPE(o)->tp_name);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 0 || v >= n) {
        PyErr_Format(PyExc_ValueError, "%s must be a code in [0, %d), got %S", name, n, o);
        return -1;
    }
    *code = (int)v;
    return 0;
}

int parse_real(PyObject *o, const char *name, double *v)
{
    if (PyBool_Check(o) || !(PyFloat_Check(o) || PyLong_Check(o))) {
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
