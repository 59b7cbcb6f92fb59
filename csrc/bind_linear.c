/*
 * bind_linear.c - bindings of article 000's linear regression: one gradient, and a
 * whole gradient descent in one call.
 */
#include "binding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* x (n,d), y (n), w (d): exact arrays of one dtype; sets *typenum */
static int linear_args(PyObject *xo, PyObject *yo, PyObject *wo, int *typenum, PyArrayObject **x,
                       PyArrayObject **y, PyArrayObject **w, int w_writable)
{
    if ((*typenum = float_typenum(xo, "x")) < 0)
        return -1;
    if (!(*x = exact_2d(xo, "x", *typenum, 0, -1, -1)))
        return -1;
    if (!(*y = exact_array(yo, "y", *typenum, 0, PyArray_DIM(*x, 0))))
        return -1;
    if (!(*w = exact_array(wo, "w", *typenum, w_writable, PyArray_DIM(*x, 1))))
        return -1;
    return 0;
}

PyDoc_STRVAR(linear_gradient_doc,
             "linear_gradient(dw, db, x, y, w, b) -> loss\n\n"
             "dw, db[0] = gradient of mean((x @ w + b - y)**2); x (n, d), y (n,), w (d,).");

static PyObject *py_linear_gradient(PyObject *self, PyObject *args)
{
    PyObject *dwo, *dbo, *xo, *yo, *wo;
    double b, loss;
    int tn;
    PyArrayObject *x, *y, *w;
    if (!PyArg_ParseTuple(args, "OOOOOd", &dwo, &dbo, &xo, &yo, &wo, &b) ||
        linear_args(xo, yo, wo, &tn, &x, &y, &w, 0) < 0)
        return NULL;
    PyArrayObject *dw = exact_array(dwo, "dw", tn, 1, PyArray_DIM(x, 1));
    PyArrayObject *db = dw ? exact_array(dbo, "db", tn, 1, 1) : NULL;
    if (!db)
        return NULL;
    PyArrayObject *arrs[] = {dw, db, x, y, w};
    const char *names[] = {"dw", "db", "x", "y", "w"};
    if (check_disjoint(arrs, names, 2, 5) < 0)
        return NULL;
    const size_t n = PyArray_DIM(x, 0), d = PyArray_DIM(x, 1);
    void *e = PyMem_Malloc((n ? n : 1) * PyArray_ITEMSIZE(x));
    if (!e)
        return PyErr_NoMemory();
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT32)
        loss = fo_linear_gradient_f32(PyArray_DATA(dw), PyArray_DATA(db), e, PyArray_DATA(x),
                                      PyArray_DATA(y), PyArray_DATA(w), (float)b, n, d);
    else
        loss = fo_linear_gradient_f64(PyArray_DATA(dw), PyArray_DATA(db), e, PyArray_DATA(x),
                                      PyArray_DATA(y), PyArray_DATA(w), b, n, d);
    Py_END_ALLOW_THREADS
    PyMem_Free(e);
    return PyFloat_FromDouble(loss);
}

PyDoc_STRVAR(linear_gd_doc,
             "linear_gd(w, b, x, y, learning_rate, num_iterations) -> loss at the final w, b\n\n"
             "Gradient descent on mean((x @ w + b - y)**2), w (d,) and b (1,) in place.");

static PyObject *py_linear_gd(PyObject *self, PyObject *args)
{
    PyObject *wo, *bo, *xo, *yo;
    double lr, loss;
    Py_ssize_t iters;
    int tn;
    PyArrayObject *x, *y, *w;
    if (!PyArg_ParseTuple(args, "OOOOdn", &wo, &bo, &xo, &yo, &lr, &iters) ||
        linear_args(xo, yo, wo, &tn, &x, &y, &w, 1) < 0)
        return NULL;
    PyArrayObject *b = exact_array(bo, "b", tn, 1, 1);
    if (!b)
        return NULL;
    if (iters < 0 || !isfinite(lr)) {
        PyErr_SetString(PyExc_ValueError, "num_iterations must be >= 0 and learning_rate finite");
        return NULL;
    }
    PyArrayObject *arrs[] = {w, b, x, y};
    const char *names[] = {"w", "b", "x", "y"};
    if (check_disjoint(arrs, names, 2, 4) < 0)
        return NULL;
    const size_t n = PyArray_DIM(x, 0), d = PyArray_DIM(x, 1);
    /* scratch: dw (d) then e (n) */
    char *scratch = PyMem_Malloc((d + n + 1) * PyArray_ITEMSIZE(w));
    if (!scratch)
        return PyErr_NoMemory();
    void *dw = scratch, *e = scratch + d * PyArray_ITEMSIZE(w);
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT32)
        loss = fo_linear_gd_f32(PyArray_DATA(w), PyArray_DATA(b), dw, e, PyArray_DATA(x),
                                PyArray_DATA(y), n, d, lr, (size_t)iters);
    else
        loss = fo_linear_gd_f64(PyArray_DATA(w), PyArray_DATA(b), dw, e, PyArray_DATA(x),
                                PyArray_DATA(y), n, d, lr, (size_t)iters);
    Py_END_ALLOW_THREADS
    PyMem_Free(scratch);
    return PyFloat_FromDouble(loss);
}

PyMethodDef fo_linear_methods[] = {
    {"linear_gradient", py_linear_gradient, METH_VARARGS, linear_gradient_doc},
    {"linear_gd", py_linear_gd, METH_VARARGS, linear_gd_doc},
    {NULL, NULL, 0, NULL}};
