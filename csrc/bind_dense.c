/*
 * bind_dense.c - bindings of the layer kernels: matrix product, dense forward and
 * backward, activations, dropout, MSE, the finiteness check and the BLAS crossover.
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
    PyObject *alpha_o, *beta_o, *ao, *bo, *co;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ppOOOOO|p", kwlist, &ta, &tb, &alpha_o, &ao,
                                     &bo, &beta_o, &co, &naive) ||
        parse_real(alpha_o, "alpha", &alpha) < 0 || parse_real(beta_o, "beta", &beta) < 0)
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

PyDoc_STRVAR(dense_forward_doc,
             "dense_forward(out, x, kernel, bias, activation, act_param=None, z=None)\n\n"
             "out = activation(z), z = x @ kernel + bias, in place; bias may be None;\n"
             "z (B, OUT), when given, keeps the pre-activation; act_param None is Keras'\n"
             "default (leaky_relu 0.2, elu 1.0).");

static PyObject *py_dense_forward(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"out", "x", "kernel", "bias", "activation", "act_param", "z", NULL};
    PyObject *oo, *xo, *ko, *bo, *act_o, *param_o = Py_None, *zo = Py_None;
    int act, typenum;
    double param;
    PyArrayObject *k, *x;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO|OO", kwlist, &oo, &xo, &ko, &bo, &act_o,
                                     &param_o, &zo) ||
        layer_args(ko, xo, &typenum, &k, &x) < 0 ||
        parse_activation(act_o, param_o, typenum, &act, &param) < 0)
        return NULL;
    npy_intp IN = PyArray_DIM(k, 0), OUT = PyArray_DIM(k, 1), B = PyArray_DIM(x, 0);
    PyArrayObject *out = exact_2d(oo, "out", typenum, 1, B, OUT);
    PyArrayObject *b = NULL, *z = NULL;
    if (!out)
        return NULL;
    if (bo != Py_None && !(b = exact_array(bo, "bias", typenum, 0, OUT)))
        return NULL;
    if (zo != Py_None && !(z = exact_2d(zo, "z", typenum, 1, B, OUT)))
        return NULL;
    PyArrayObject *arrs[] = {out, z, x, k, b};
    const char *names[] = {"out", "z", "x", "kernel", "bias"};
    if (check_disjoint(arrs, names, 2, 5) < 0)
        return NULL;
    const void *bp = b ? PyArray_DATA(b) : NULL;
    void *zp = z ? PyArray_DATA(z) : NULL;
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32)
        fo_dense_forward_ex_f32(PyArray_DATA(out), zp, PyArray_DATA(x), PyArray_DATA(k), bp, B, IN,
                                OUT, act, param);
    else
        fo_dense_forward_ex_f64(PyArray_DATA(out), zp, PyArray_DATA(x), PyArray_DATA(k), bp, B, IN,
                                OUT, act, param);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyDoc_STRVAR(dense_backward_doc,
             "dense_backward(dx, dkernel, dbias, dout, x, kernel, out, activation, act_param=None,\n"
             "               z=None)\n\n"
             "Backprop through one dense layer.  dout holds dL/d(out) and is overwritten\n"
             "with dL/dz; dx and dbias may be None; z (the pre-activation) is required\n"
             "for gelu, silu and softsign.");

static PyObject *py_dense_backward(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"dx", "dkernel", "dbias", "dout", "x", "kernel", "out",
                             "activation", "act_param", "z", NULL};
    PyObject *dxo, *dko, *dbo, *doo, *xo, *ko, *oo, *act_o, *param_o = Py_None, *zo = Py_None;
    int act, typenum;
    double param;
    PyArrayObject *k, *x;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOOO|OO", kwlist, &dxo, &dko, &dbo, &doo,
                                     &xo, &ko, &oo, &act_o, &param_o, &zo) ||
        layer_args(ko, xo, &typenum, &k, &x) < 0 ||
        parse_activation(act_o, param_o, typenum, &act, &param) < 0)
        return NULL;
    npy_intp IN = PyArray_DIM(k, 0), OUT = PyArray_DIM(k, 1), B = PyArray_DIM(x, 0);
    PyArrayObject *out = exact_2d(oo, "out", typenum, 0, B, OUT);
    PyArrayObject *dout = out ? exact_2d(doo, "dout", typenum, 1, B, OUT) : NULL;
    PyArrayObject *dk = dout ? exact_2d(dko, "dkernel", typenum, 1, IN, OUT) : NULL;
    if (!dk)
        return NULL;
    PyArrayObject *dx = NULL, *db = NULL, *z = NULL;
    if (dxo != Py_None && !(dx = exact_2d(dxo, "dx", typenum, 1, B, IN)))
        return NULL;
    if (dbo != Py_None && !(db = exact_array(dbo, "dbias", typenum, 1, OUT)))
        return NULL;
    if (zo != Py_None && !(z = exact_2d(zo, "z", typenum, 0, B, OUT)))
        return NULL;
    if (fo_act_needs_z(act) && !z) {
        PyErr_Format(PyExc_ValueError, "z (the pre-activation) is required for activation %d", act);
        return NULL;
    }
    PyArrayObject *arrs[] = {dx, dk, db, dout, x, k, out, z};
    const char *names[] = {"dx", "dkernel", "dbias", "dout", "x", "kernel", "out", "z"};
    if (check_disjoint(arrs, names, 4, 8) < 0)
        return NULL;
    void *dxp = dx ? PyArray_DATA(dx) : NULL, *dbp = db ? PyArray_DATA(db) : NULL;
    const void *zp = z ? PyArray_DATA(z) : NULL;
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32)
        fo_dense_backward_ex_f32(dxp, PyArray_DATA(dk), dbp, PyArray_DATA(dout), PyArray_DATA(x),
                                 PyArray_DATA(k), zp, PyArray_DATA(out), B, IN, OUT, act, param);
    else
        fo_dense_backward_ex_f64(dxp, PyArray_DATA(dk), dbp, PyArray_DATA(dout), PyArray_DATA(x),
                                 PyArray_DATA(k), zp, PyArray_DATA(out), B, IN, OUT, act, param);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* rows and columns of an activation's input: softmax runs over the last axis */
static void rows_cols(PyArrayObject *a, size_t *rows, size_t *cols)
{
    const int nd = PyArray_NDIM(a);
    *cols = nd == 0 ? 1 : (size_t)PyArray_DIM(a, nd - 1);
    *rows = *cols == 0 ? 0 : (size_t)PyArray_SIZE(a) / *cols;
}

/* an array shaped like `like`, exactly of typenum, C-contiguous */
static PyArrayObject *same_shape(PyObject *o, const char *name, int typenum, int writable,
                                 PyArrayObject *like, const char *like_name)
{
    PyArrayObject *a = exact_array(o, name, typenum, writable, -1);
    if (!a)
        return NULL;
    if (PyArray_NDIM(a) != PyArray_NDIM(like) ||
        !PyArray_CompareLists(PyArray_DIMS(a), PyArray_DIMS(like), PyArray_NDIM(a))) {
        PyErr_Format(PyExc_ValueError, "%s must have the shape of %s", name, like_name);
        return NULL;
    }
    return a;
}

typedef void (*act_fwd_fn)(void *, const void *, size_t, size_t, int, double);
static const act_fwd_fn act_fwd_table[2] = {(act_fwd_fn)fo_act_forward_f32,
                                            (act_fwd_fn)fo_act_forward_f64};
typedef void (*act_bwd_fn)(void *, const void *, const void *, const void *, size_t, size_t, int,
                           double);
static const act_bwd_fn act_bwd_table[2] = {(act_bwd_fn)fo_act_backward_f32,
                                            (act_bwd_fn)fo_act_backward_f64};

PyDoc_STRVAR(activation_doc,
             "activation(out, z, activation, act_param=None)\n\n"
             "out = activation(z) elementwise (softmax: over the last axis); out may be z\n"
             "itself, but no other array sharing its memory.");

static PyObject *py_activation(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"out", "z", "activation", "act_param", NULL};
    PyObject *oo, *zo, *act_o, *param_o = Py_None;
    int act;
    double param;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|O", kwlist, &oo, &zo, &act_o, &param_o))
        return NULL;
    int typenum = float_typenum(zo, "z");
    if (typenum < 0 || parse_activation(act_o, param_o, typenum, &act, &param) < 0)
        return NULL;
    PyArrayObject *z = exact_array(zo, "z", typenum, 0, -1);
    PyArrayObject *out = z ? same_shape(oo, "out", typenum, 1, z, "z") : NULL;
    if (!out || check_same_or_disjoint(out, "out", z, "z") < 0)
        return NULL;
    size_t rows, cols;
    rows_cols(z, &rows, &cols);
    const int dt = dtype_code(typenum);
    Py_BEGIN_ALLOW_THREADS
    act_fwd_table[dt](PyArray_DATA(out), PyArray_DATA(z), rows, cols, act, param);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyDoc_STRVAR(activation_backward_doc,
             "activation_backward(dz, da, z, a, activation, act_param=None)\n\n"
             "dz = da * activation'(z) (softmax: the row-wise Jacobian product over the\n"
             "last axis), from a = activation(z); z may be None except for gelu, silu and\n"
             "softsign, a may be None for those.  dz may be da itself.");

static PyObject *py_activation_backward(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"dz", "da", "z", "a", "activation", "act_param", NULL};
    PyObject *dzo, *dao, *zo, *ao, *act_o, *param_o = Py_None;
    int act;
    double param;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO|O", kwlist, &dzo, &dao, &zo, &ao, &act_o,
                                     &param_o))
        return NULL;
    int typenum = float_typenum(dao, "da");
    if (typenum < 0 || parse_activation(act_o, param_o, typenum, &act, &param) < 0)
        return NULL;
    PyArrayObject *da = exact_array(dao, "da", typenum, 0, -1);
    PyArrayObject *dz = da ? same_shape(dzo, "dz", typenum, 1, da, "da") : NULL;
    if (!dz)
        return NULL;
    PyArrayObject *z = NULL, *a = NULL;
    const int needs_z = fo_act_needs_z(act);
    if (zo != Py_None && !(z = same_shape(zo, "z", typenum, 0, da, "da")))
        return NULL;
    if (ao != Py_None && !(a = same_shape(ao, "a", typenum, 0, da, "da")))
        return NULL;
    if (needs_z ? !z : !a) {
        PyErr_Format(PyExc_ValueError, "%s is required for activation %d", needs_z ? "z" : "a", act);
        return NULL;
    }
    if (check_same_or_disjoint(dz, "dz", da, "da") < 0)
        return NULL;
    PyArrayObject *arrs[] = {dz, z, a};
    const char *names[] = {"dz", "z", "a"};
    if (check_disjoint(arrs, names, 1, 3) < 0)
        return NULL;
    size_t rows, cols;
    rows_cols(da, &rows, &cols);
    const int dt = dtype_code(typenum);
    Py_BEGIN_ALLOW_THREADS
    act_bwd_table[dt](PyArray_DATA(dz), PyArray_DATA(da), z ? PyArray_DATA(z) : NULL,
                      a ? PyArray_DATA(a) : NULL, rows, cols, act, param);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* the mask of a dropout call: (MR, MC) with MR in {1, B}, MC in {1, F} */
static PyArrayObject *mask_arg(PyObject *o, int typenum, int writable, npy_intp B, npy_intp F)
{
    PyArrayObject *m = exact_2d(o, "mask", typenum, writable, -1, -1);
    if (!m)
        return NULL;
    const npy_intp r = PyArray_DIM(m, 0), c = PyArray_DIM(m, 1);
    if (!((r == 1 || r == B) && (c == 1 || c == F))) {
        PyErr_Format(PyExc_ValueError,
                     "mask must have shape (%zd, %zd), (%zd, 1), (1, %zd) or (1, 1) (Keras' "
                     "noise_shape), got (%zd, %zd)",
                     B, F, B, F, r, c);
        return NULL;
    }
    return m;
}

PyDoc_STRVAR(dropout_doc,
             "dropout(out, mask, x, rate, rng_state)\n\n"
             "Inverted dropout of x (B, F): mask (noise_shape, broadcast over x) is drawn\n"
             "from the xoshiro256** state rng_state (uint64, 4, advanced in place): each\n"
             "entry 1/(1 - rate) with probability 1 - rate, else 0; out = x * mask (out may\n"
             "be x itself).");

static PyObject *py_dropout(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"out", "mask", "x", "rate", "rng_state", NULL};
    PyObject *oo, *mo, *xo, *rate_o, *so;
    double rate;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO", kwlist, &oo, &mo, &xo, &rate_o, &so))
        return NULL;
    int typenum = float_typenum(xo, "x");
    if (typenum < 0 || parse_real(rate_o, "rate", &rate) < 0)
        return NULL;
    if (!(rate >= 0 && rate <= 1)) {
        PyErr_SetString(PyExc_ValueError, "rate must be in [0, 1]");
        return NULL;
    }
    PyArrayObject *x = exact_2d(xo, "x", typenum, 0, -1, -1);
    if (!x)
        return NULL;
    const npy_intp B = PyArray_DIM(x, 0), F = PyArray_DIM(x, 1);
    PyArrayObject *out = exact_2d(oo, "out", typenum, 1, B, F);
    PyArrayObject *m = out ? mask_arg(mo, typenum, 1, B, F) : NULL;
    PyArrayObject *st = m ? exact_array(so, "rng_state", NPY_UINT64, 1, 4) : NULL;
    if (!st)
        return NULL;
    const uint64_t *sv = PyArray_DATA(st);
    if ((sv[0] | sv[1] | sv[2] | sv[3]) == 0) {
        PyErr_SetString(PyExc_ValueError, "rng_state must not be all zero (xoshiro would stay at 0)");
        return NULL;
    }
    if (check_same_or_disjoint(out, "out", x, "x") < 0)
        return NULL;
    PyArrayObject *arrs[] = {m, st, out, x};
    const char *names[] = {"mask", "rng_state", "out", "x"};
    if (check_disjoint(arrs, names, 2, 4) < 0)
        return NULL;
    fo_rng *rng = PyArray_DATA(st);
    const size_t MR = PyArray_DIM(m, 0), MC = PyArray_DIM(m, 1);
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32)
        fo_dropout_forward_f32(PyArray_DATA(out), PyArray_DATA(m), PyArray_DATA(x), B, F, MR, MC,
                               rate, rng);
    else
        fo_dropout_forward_f64(PyArray_DATA(out), PyArray_DATA(m), PyArray_DATA(x), B, F, MR, MC,
                               rate, rng);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyDoc_STRVAR(dropout_backward_doc, "dropout_backward(dx, dout, mask)\n\n"
                                   "dx = dout * mask (broadcast as in dropout); dx may be dout.");

static PyObject *py_dropout_backward(PyObject *self, PyObject *args)
{
    PyObject *dxo, *doo, *mo;
    if (!PyArg_ParseTuple(args, "OOO", &dxo, &doo, &mo))
        return NULL;
    int typenum = float_typenum(doo, "dout");
    PyArrayObject *dout = typenum < 0 ? NULL : exact_2d(doo, "dout", typenum, 0, -1, -1);
    if (!dout)
        return NULL;
    const npy_intp B = PyArray_DIM(dout, 0), F = PyArray_DIM(dout, 1);
    PyArrayObject *dx = exact_2d(dxo, "dx", typenum, 1, B, F);
    PyArrayObject *m = dx ? mask_arg(mo, typenum, 0, B, F) : NULL;
    if (!m || check_same_or_disjoint(dx, "dx", dout, "dout") < 0)
        return NULL;
    PyArrayObject *arrs[] = {dx, m};
    const char *names[] = {"dx", "mask"};
    if (check_disjoint(arrs, names, 1, 2) < 0)
        return NULL;
    const size_t MR = PyArray_DIM(m, 0), MC = PyArray_DIM(m, 1);
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32)
        fo_dropout_backward_f32(PyArray_DATA(dx), PyArray_DATA(dout), PyArray_DATA(m), B, F, MR, MC);
    else
        fo_dropout_backward_f64(PyArray_DATA(dx), PyArray_DATA(dout), PyArray_DATA(m), B, F, MR, MC);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyDoc_STRVAR(mse_doc, "mse(pred, y, dpred=None, scale=0.0) -> (sum of squared errors, sum of "
                      "absolute errors)\n\nIf dpred is given it receives scale * (pred - y).");

static PyObject *py_mse(PyObject *self, PyObject *args)
{
    PyObject *po, *yo, *dpo = Py_None, *scale_o = NULL;
    double scale = 0;
    if (!PyArg_ParseTuple(args, "OO|OO", &po, &yo, &dpo, &scale_o) ||
        (scale_o && parse_real(scale_o, "scale", &scale) < 0))
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
    PyObject *t_o = NULL;
    long long t = -1;
    if (!PyArg_ParseTuple(args, "|O", &t_o) ||
        (t_o && parse_int(t_o, "n", -1, PY_SSIZE_T_MAX, &t) < 0))
        return NULL;
    size_t old = fo_blas_threshold;
    if (t >= 0)
        fo_blas_threshold = (size_t)t;
    return PyLong_FromSize_t(old);
}

PyMethodDef fo_dense_methods[] = {
    {"gemm", (PyCFunction)(void (*)(void))py_gemm, METH_VARARGS | METH_KEYWORDS, gemm_doc},
    {"dense_forward", (PyCFunction)(void (*)(void))py_dense_forward, METH_VARARGS | METH_KEYWORDS,
     dense_forward_doc},
    {"dense_backward", (PyCFunction)(void (*)(void))py_dense_backward,
     METH_VARARGS | METH_KEYWORDS, dense_backward_doc},
    {"activation", (PyCFunction)(void (*)(void))py_activation, METH_VARARGS | METH_KEYWORDS,
     activation_doc},
    {"activation_backward", (PyCFunction)(void (*)(void))py_activation_backward,
     METH_VARARGS | METH_KEYWORDS, activation_backward_doc},
    {"dropout", (PyCFunction)(void (*)(void))py_dropout, METH_VARARGS | METH_KEYWORDS, dropout_doc},
    {"dropout_backward", py_dropout_backward, METH_VARARGS, dropout_backward_doc},
    {"mse", py_mse, METH_VARARGS, mse_doc},
    {"all_finite", py_all_finite, METH_O,
     "all_finite(a) -> True if no element of a C-contiguous float32/float64 array is NaN or inf"},
    {"blas_threshold", py_blas_threshold, METH_VARARGS,
     "blas_threshold([n]) -> previous value; products of >= n multiply-adds use BLAS"},
    {NULL, NULL, 0, NULL}};
