/*
 * bind_dense.c - bindings of the layer kernels: matrix product, dense forward and
 * backward, MSE, the finiteness check and the BLAS crossover.
 */
#include "binding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

PyDoc_STRVAR(gemm_doc, "gemm(trans_a, trans_b, alpha, a, b, beta, c, naive=False)\n\n"
                       "c = alpha * op(a) @ op(b) + beta * c in place (row-major).");

static PyObject *py_gemm(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"trans_a", "trans_b", "alpha", "a", "b", "beta", "c", "naive", NULL};
    int ta, tb, naive = 0;
    double alpha, beta;
    PyObject *ao, *bo, *co;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ppdOOdO|p", kwlist, &ta, &tb, &alpha, &ao, &bo,
                                     &beta, &co, &naive))
        return NULL;
    int typenum = float_typenum(co, "c");
    PyArrayObject *c = typenum < 0 ? NULL : exact_2d(co, "c", typenum, 1, -1, -1);
    if (!c)
        return NULL;
    npy_intp M = PyArray_DIM(c, 0), N = PyArray_DIM(c, 1);
    PyArrayObject *a = exact_2d(ao, "a", typenum, 0, -1, -1);
    PyArrayObject *b = a ? exact_2d(bo, "b", typenum, 0, -1, -1) : NULL;
    if (!b)
        return NULL;
    npy_intp K = ta ? PyArray_DIM(a, 0) : PyArray_DIM(a, 1);
    if ((ta ? PyArray_DIM(a, 1) : PyArray_DIM(a, 0)) != M ||
        (tb ? PyArray_DIM(b, 1) : PyArray_DIM(b, 0)) != K ||
        (tb ? PyArray_DIM(b, 0) : PyArray_DIM(b, 1)) != N) {
        PyErr_SetString(PyExc_ValueError, "gemm: shapes of a, b and c do not match");
        return NULL;
    }
    PyArrayObject *arrs[] = {c, a, b};
    const char *names[] = {"c", "a", "b"};
    if (check_disjoint(arrs, names, 1, 3) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        (naive ? fo_gemm_naive_f32 : fo_gemm_f32)(ta, tb, M, N, K, (float)alpha, PyArray_DATA(a),
                                                  PyArray_DATA(b), (float)beta, PyArray_DATA(c));
    } else {
        (naive ? fo_gemm_naive_f64 : fo_gemm_f64)(ta, tb, M, N, K, alpha, PyArray_DATA(a),
                                                  PyArray_DATA(b), beta, PyArray_DATA(c));
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* kernel (IN,OUT) and x (B,IN) of a dense layer call; sets the dtype */
static int layer_args(PyObject *ko, PyObject *xo, int *typenum, PyArrayObject **k, PyArrayObject **x)
{
    if ((*typenum = float_typenum(ko, "kernel")) < 0)
        return -1;
    if (!(*k = exact_2d(ko, "kernel", *typenum, 0, -1, -1)))
        return -1;
    *x = exact_2d(xo, "x", *typenum, 0, -1, PyArray_DIM(*k, 0));
    return *x ? 0 : -1;
}

PyDoc_STRVAR(dense_forward_doc, "dense_forward(out, x, kernel, bias, activation)\n\n"
                                "out = activation(x @ kernel + bias) in place; bias may be None.");

static PyObject *py_dense_forward(PyObject *self, PyObject *args)
{
    PyObject *oo, *xo, *ko, *bo;
    int act;
    int typenum;
    PyArrayObject *k, *x;
    if (!PyArg_ParseTuple(args, "OOOOi", &oo, &xo, &ko, &bo, &act) || check_act(act) < 0 ||
        layer_args(ko, xo, &typenum, &k, &x) < 0)
        return NULL;
    npy_intp IN = PyArray_DIM(k, 0), OUT = PyArray_DIM(k, 1), B = PyArray_DIM(x, 0);
    PyArrayObject *out = exact_2d(oo, "out", typenum, 1, B, OUT);
    PyArrayObject *b = NULL;
    if (!out)
        return NULL;
    if (bo != Py_None && !(b = exact_array(bo, "bias", typenum, 0, OUT)))
        return NULL;
    PyArrayObject *arrs[] = {out, x, k, b};
    const char *names[] = {"out", "x", "kernel", "bias"};
    if (check_disjoint(arrs, names, 1, 4) < 0)
        return NULL;
    const void *bp = b ? PyArray_DATA(b) : NULL;
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32)
        fo_dense_forward_f32(PyArray_DATA(out), PyArray_DATA(x), PyArray_DATA(k), bp, B, IN, OUT, act);
    else
        fo_dense_forward_f64(PyArray_DATA(out), PyArray_DATA(x), PyArray_DATA(k), bp, B, IN, OUT, act);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyDoc_STRVAR(dense_backward_doc,
             "dense_backward(dx, dkernel, dbias, dout, x, kernel, out, activation)\n\n"
             "Backprop through one dense layer.  dout holds dL/d(out) and is overwritten\n"
             "with dL/dz; dx and dbias may be None.");

static PyObject *py_dense_backward(PyObject *self, PyObject *args)
{
    PyObject *dxo, *dko, *dbo, *doo, *xo, *ko, *oo;
    int act;
    int typenum;
    PyArrayObject *k, *x;
    if (!PyArg_ParseTuple(args, "OOOOOOOi", &dxo, &dko, &dbo, &doo, &xo, &ko, &oo, &act) ||
        check_act(act) < 0 || layer_args(ko, xo, &typenum, &k, &x) < 0)
        return NULL;
    npy_intp IN = PyArray_DIM(k, 0), OUT = PyArray_DIM(k, 1), B = PyArray_DIM(x, 0);
    PyArrayObject *out = exact_2d(oo, "out", typenum, 0, B, OUT);
    PyArrayObject *dout = out ? exact_2d(doo, "dout", typenum, 1, B, OUT) : NULL;
    PyArrayObject *dk = dout ? exact_2d(dko, "dkernel", typenum, 1, IN, OUT) : NULL;
    if (!dk)
        return NULL;
    PyArrayObject *dx = NULL, *db = NULL;
    if (dxo != Py_None && !(dx = exact_2d(dxo, "dx", typenum, 1, B, IN)))
        return NULL;
    if (dbo != Py_None && !(db = exact_array(dbo, "dbias", typenum, 1, OUT)))
        return NULL;
    PyArrayObject *arrs[] = {dx, dk, db, dout, x, k, out};
    const char *names[] = {"dx", "dkernel", "dbias", "dout", "x", "kernel", "out"};
    if (check_disjoint(arrs, names, 4, 7) < 0)
        return NULL;
    void *dxp = dx ? PyArray_DATA(dx) : NULL, *dbp = db ? PyArray_DATA(db) : NULL;
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32)
        fo_dense_backward_f32(dxp, PyArray_DATA(dk), dbp, PyArray_DATA(dout), PyArray_DATA(x),
                              PyArray_DATA(k), PyArray_DATA(out), B, IN, OUT, act);
    else
        fo_dense_backward_f64(dxp, PyArray_DATA(dk), dbp, PyArray_DATA(dout), PyArray_DATA(x),
                              PyArray_DATA(k), PyArray_DATA(out), B, IN, OUT, act);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyDoc_STRVAR(mse_doc, "mse(pred, y, dpred=None, scale=0.0) -> (sum of squared errors, sum of "
                      "absolute errors)\n\nIf dpred is given it receives scale * (pred - y).");

static PyObject *py_mse(PyObject *self, PyObject *args)
{
    PyObject *po, *yo, *dpo = Py_None;
    double scale = 0;
    if (!PyArg_ParseTuple(args, "OO|Od", &po, &yo, &dpo, &scale))
        return NULL;
    int typenum = float_typenum(po, "pred");
    PyArrayObject *p = typenum < 0 ? NULL : exact_array(po, "pred", typenum, 0, -1);
    PyArrayObject *y = p ? exact_array(yo, "y", typenum, 0, PyArray_SIZE(p)) : NULL;
    if (!y)
        return NULL;
    PyArrayObject *dp = NULL;
    if (dpo != Py_None && !(dp = exact_array(dpo, "dpred", typenum, 1, PyArray_SIZE(p))))
        return NULL;
    PyArrayObject *arrs[] = {dp, p, y};
    const char *names[] = {"dpred", "pred", "y"};
    if (check_disjoint(arrs, names, 1, 3) < 0)
        return NULL;
    double sse, sae;
    void *dpp = dp ? PyArray_DATA(dp) : NULL;
    size_t n = (size_t)PyArray_SIZE(p);
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32)
        fo_mse_f32(dpp, PyArray_DATA(p), PyArray_DATA(y), n, scale, &sse, &sae);
    else
        fo_mse_f64(dpp, PyArray_DATA(p), PyArray_DATA(y), n, scale, &sse, &sae);
    Py_END_ALLOW_THREADS
    return Py_BuildValue("dd", sse, sae);
}

static PyObject *py_all_finite(PyObject *self, PyObject *a)
{
    int typenum = float_typenum(a, "a");
    PyArrayObject *arr = typenum < 0 ? NULL : exact_array(a, "a", typenum, 0, -1);
    if (!arr)
        return NULL;
    int ok;
    const size_t n = (size_t)PyArray_SIZE(arr);
    Py_BEGIN_ALLOW_THREADS
    ok = typenum == NPY_FLOAT32 ? fo_all_finite_f32(PyArray_DATA(arr), n)
                                : fo_all_finite_f64(PyArray_DATA(arr), n);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(ok);
}

static PyObject *py_blas_threshold(PyObject *self, PyObject *args)
{
    Py_ssize_t t = -1;
    if (!PyArg_ParseTuple(args, "|n", &t))
        return NULL;
    size_t old = fo_blas_threshold;
    if (t >= 0)
        fo_blas_threshold = (size_t)t;
    return PyLong_FromSize_t(old);
}

PyMethodDef fo_dense_methods[] = {
    {"gemm", (PyCFunction)(void (*)(void))py_gemm, METH_VARARGS | METH_KEYWORDS, gemm_doc},
    {"dense_forward", py_dense_forward, METH_VARARGS, dense_forward_doc},
    {"dense_backward", py_dense_backward, METH_VARARGS, dense_backward_doc},
    {"mse", py_mse, METH_VARARGS, mse_doc},
    {"all_finite", py_all_finite, METH_O,
     "all_finite(a) -> True if no element of a C-contiguous float32/float64 array is NaN or inf"},
    {"blas_threshold", py_blas_threshold, METH_VARARGS,
     "blas_threshold([n]) -> previous value; products of >= n multiply-adds use BLAS"},
    {NULL, NULL, 0, NULL}};
