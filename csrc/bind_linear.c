/*
 * bind_linear.c - bindings of article 000's linear regression: one gradient,
 * one prediction, one loss, and a whole gradient descent in one call.
 *
 * gradient_fast, linear_model_fast and mse_loss_fast are the per-call fast
 * paths of fo.gradient, fo.linear_model and fo.mse_loss (METH_FASTCALL): when
 * every argument already has the dtype, layout and shape the kernel takes,
 * they check that in C and run the kernel; otherwise they return
 * NotImplemented, and the Python function takes its thorough path (which
 * converts, explains and refuses), ending in the same kernel, so both give
 * the same bits.  article_fast_path(False) makes them always decline (tests).
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

/* the loss and descent need at least one sample */
static int check_samples(PyArrayObject *x)
{
    if (PyArray_DIM(x, 0) == 0) {
        PyErr_SetString(PyExc_ValueError, "x holds no samples (shape (0, d))");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(linear_gradient_doc,
             "linear_gradient(dw, db, x, y, w, b) -> loss\n\n"
             "dw, db[0] = gradient of mean((x @ w + b - y)**2); x (n, d), y (n,), w (d,).");

static PyObject *py_linear_gradient(PyObject *self, PyObject *args)
{
    PyObject *dwo, *dbo, *xo, *yo, *wo, *bo;
    double b, loss;
    int tn;
    PyArrayObject *x, *y, *w;
    if (!PyArg_ParseTuple(args, "OOOOOO", &dwo, &dbo, &xo, &yo, &wo, &bo) ||
        parse_real(bo, "b", &b) < 0 || linear_args(xo, yo, wo, &tn, &x, &y, &w, 0) < 0)
        return NULL;
    PyArrayObject *dw = exact_array(dwo, "dw", tn, 1, PyArray_DIM(x, 1));
    PyArrayObject *db = dw ? exact_array(dbo, "db", tn, 1, 1) : NULL;
    if (!db)
        return NULL;
    PyArrayObject *arrs[] = {dw, db, x, y, w};
    const char *names[] = {"dw", "db", "x", "y", "w"};
    if (check_samples(x) < 0 || check_disjoint(arrs, names, 2, 5) < 0)
        return NULL;
    const size_t n = PyArray_DIM(x, 0), d = PyArray_DIM(x, 1);
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT32)
        loss = fo_linear_gradient_f32(PyArray_DATA(dw), PyArray_DATA(db), PyArray_DATA(x),
                                      PyArray_DATA(y), PyArray_DATA(w), (float)b, n, d);
    else
        loss = fo_linear_gradient_f64(PyArray_DATA(dw), PyArray_DATA(db), PyArray_DATA(x),
                                      PyArray_DATA(y), PyArray_DATA(w), b, n, d);
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(loss);
}

/* the numbers both descents take: a finite learning rate and a step count in [0, 2**53] */
static int gd_numbers(PyObject *lr_o, PyObject *iters_o, double *lr, Py_ssize_t *iters)
{
    long long it;
    if (parse_real(lr_o, "learning_rate", lr) < 0 ||
        parse_int(iters_o, "num_iterations", 0, (long long)1 << 53, &it) < 0)
        return -1;
    if (!isfinite(*lr)) {
        PyErr_Format(PyExc_ValueError, "learning_rate must be finite, got %R", lr_o);
        return -1;
    }
    *iters = (Py_ssize_t)it;
    return 0;
}

/* the checks both descents run: w, b (written) sharing no memory with each other or the data */
static int gd_checks(PyArrayObject *w, PyArrayObject *b, PyArrayObject *x, PyArrayObject *y)
{
    PyArrayObject *arrs[] = {w, b, x, y};
    const char *names[] = {"w", "b", "x", "y"};
    return check_disjoint(arrs, names, 2, 4);
}

PyDoc_STRVAR(linear_gd_naive_doc,
             "linear_gd_naive(w, b, x, y, learning_rate, num_iterations) -> loss at the final w, b\n\n"
             "Gradient descent on mean((x @ w + b - y)**2), w (d,) and b (1,) of x's dtype in place,\n"
             "each step a pass over the data in that dtype: the article's loop, the reference of\n"
             "linear_gd, and the faster one when d is large against n.");

static PyObject *py_linear_gd_naive(PyObject *self, PyObject *args)
{
    PyObject *wo, *bo, *xo, *yo, *lr_o, *iters_o;
    double lr, loss;
    Py_ssize_t iters;
    int tn;
    PyArrayObject *x, *y, *w;
    if (!PyArg_ParseTuple(args, "OOOOOO", &wo, &bo, &xo, &yo, &lr_o, &iters_o) ||
        gd_numbers(lr_o, iters_o, &lr, &iters) < 0 ||
        linear_args(xo, yo, wo, &tn, &x, &y, &w, 1) < 0)
        return NULL;
    PyArrayObject *b = exact_array(bo, "b", tn, 1, 1);
    if (!b)
        return NULL;
    if (gd_checks(w, b, x, y) < 0)
        return NULL;
    const size_t n = PyArray_DIM(x, 0), d = PyArray_DIM(x, 1);
    void *dw = PyMem_Malloc((d + 1) * PyArray_ITEMSIZE(w));
    if (!dw)
        return PyErr_NoMemory();
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT32)
        loss = fo_linear_gd_naive_f32(PyArray_DATA(w), PyArray_DATA(b), dw, PyArray_DATA(x),
                                      PyArray_DATA(y), n, d, lr, (size_t)iters);
    else
        loss = fo_linear_gd_naive_f64(PyArray_DATA(w), PyArray_DATA(b), dw, PyArray_DATA(x),
                                      PyArray_DATA(y), n, d, lr, (size_t)iters);
    Py_END_ALLOW_THREADS
    PyMem_Free(dw);
    return PyFloat_FromDouble(loss);
}

/* ------------------------------------------------------------------ */
/* gradient descent through the sufficient statistics                  */
/* ------------------------------------------------------------------ */

/* the statistics of x (n,d), y (n) into stats (d*d + 2d + 1), GIL released */
static int compute_stats(double *stats, double *work, int tn, PyArrayObject *x, PyArrayObject *y)
{
    const size_t n = PyArray_DIM(x, 0), d = PyArray_DIM(x, 1);
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT32)
        fo_linear_stats_f32(stats, work, PyArray_DATA(x), PyArray_DATA(y), n, d);
    else
        fo_linear_stats_f64(stats, work, PyArray_DATA(x), PyArray_DATA(y), n, d);
    Py_END_ALLOW_THREADS
    return 0;
}

PyDoc_STRVAR(linear_stats_doc,
             "linear_stats(x, y) -> float64 array of d*d + 2d + 1\n\n"
             "[cov(x) (d, d), cov(x, y) (d,), mean(x) (d,), mean(y)] of x (n, d), y (n,) in float64\n"
             "(covariances over n): what linear_gd's steps are computed from.");

static PyObject *py_linear_stats(PyObject *self, PyObject *args)
{
    PyObject *xo, *yo;
    int tn;
    if (!PyArg_ParseTuple(args, "OO", &xo, &yo) || (tn = float_typenum(xo, "x")) < 0)
        return NULL;
    PyArrayObject *x = exact_2d(xo, "x", tn, 0, -1, -1);
    PyArrayObject *y = x ? exact_array(yo, "y", tn, 0, PyArray_DIM(x, 0)) : NULL;
    if (!y || check_samples(x) < 0)
        return NULL;
    const npy_intp d = PyArray_DIM(x, 1), len = d * d + 2 * d + 1;
    PyArrayObject *stats = (PyArrayObject *)PyArray_SimpleNew(1, (npy_intp[]){len}, NPY_FLOAT64);
    double *work = PyMem_Malloc((2 * (size_t)d + 1) * sizeof(double));
    if (!stats || !work) {
        Py_XDECREF(stats);
        PyMem_Free(work);
        return PyErr_NoMemory();
    }
    compute_stats(PyArray_DATA(stats), work, tn, x, y);
    PyMem_Free(work);
    return (PyObject *)stats;
}

/* steps per GIL-released chunk: about 2**22 multiply-adds, a few ms, so that
 * an interrupt is heard between chunks */
static size_t gd_chunk(size_t d)
{
    const size_t per_step = d * d + 2 * d + 4;
    const size_t c = ((size_t)1 << 22) / per_step;
    return c ? c : 1;
}

PyDoc_STRVAR(linear_gd_doc,
             "linear_gd(w, b, x, y, learning_rate, num_iterations) -> loss at the final w, b\n\n"
             "Gradient descent on mean((x @ w + b - y)**2) for x (n, d), y (n,) of float32 or\n"
             "float64 (n >= 1): w (d,) and b (1,), float64 whatever x's dtype, in place.  The\n"
             "data's means and covariances are computed once, in float64; each step then\n"
             "costs O(d*d), whatever n is.  Interrupts are heard between chunks of steps;\n"
             "w and b then hold the state after a whole number of steps.  The loss is\n"
             "computed from the data, in float64.");

/* The descent through the statistics on float64 w (d), *b for x (n,d), y (n) of
 * typenum tn, n >= 1, in chunks of steps with the GIL released and pending
 * signals checked between chunks (then -1 with the exception set, w and b
 * holding the state after a whole number of steps).  *loss: the final loss. */
static int run_gd(double *w, double *b, int tn, const void *x, const void *y, size_t n, size_t d,
                  double lr, size_t iters, double *loss)
{
    /* stats (d*d + 2d + 1), then scratch: 2d for the statistics, d for the gradient */
    double *buf = PyMem_Malloc((d * d + 5 * d + 1) * sizeof(double));
    if (!buf) {
        PyErr_NoMemory();
        return -1;
    }
    double *stats = buf, *work = buf + d * d + 2 * d + 1;
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT32)
        fo_linear_stats_f32(stats, work, x, y, n, d);
    else
        fo_linear_stats_f64(stats, work, x, y, n, d);
    Py_END_ALLOW_THREADS
    const size_t chunk = gd_chunk(d);
    for (size_t done = 0; done < iters;) {
        const size_t k = iters - done < chunk ? iters - done : chunk;
        Py_BEGIN_ALLOW_THREADS
        fo_linear_gd_stats(w, b, work, stats, d, lr, k);
        Py_END_ALLOW_THREADS
        done += k;
        if (done < iters && PyErr_CheckSignals() < 0) {
            PyMem_Free(buf);
            return -1;
        }
    }
    PyMem_Free(buf);
    Py_BEGIN_ALLOW_THREADS
    *loss = tn == NPY_FLOAT32 ? fo_linear_mse_f32(x, y, w, *b, n, d) : fo_linear_mse_f64(x, y, w, *b, n, d);
    Py_END_ALLOW_THREADS
    return 0;
}

static PyObject *py_linear_gd(PyObject *self, PyObject *args)
{
    PyObject *wo, *bo, *xo, *yo, *lr_o, *iters_o;
    double lr, loss;
    Py_ssize_t iters;
    int tn;
    if (!PyArg_ParseTuple(args, "OOOOOO", &wo, &bo, &xo, &yo, &lr_o, &iters_o) ||
        gd_numbers(lr_o, iters_o, &lr, &iters) < 0 ||
        (tn = float_typenum(xo, "x")) < 0)
        return NULL;
    PyArrayObject *x = exact_2d(xo, "x", tn, 0, -1, -1);
    PyArrayObject *y = x ? exact_array(yo, "y", tn, 0, PyArray_DIM(x, 0)) : NULL;
    PyArrayObject *w = y ? exact_array(wo, "w", NPY_FLOAT64, 1, PyArray_DIM(x, 1)) : NULL;
    PyArrayObject *b = w ? exact_array(bo, "b", NPY_FLOAT64, 1, 1) : NULL;
    if (!b || check_samples(x) < 0)
        return NULL;
    if (gd_checks(w, b, x, y) < 0 ||
        run_gd(PyArray_DATA(w), PyArray_DATA(b), tn, PyArray_DATA(x), PyArray_DATA(y),
               PyArray_DIM(x, 0), PyArray_DIM(x, 1), lr, (size_t)iters, &loss) < 0)
        return NULL;
    return PyFloat_FromDouble(loss);
}

PyDoc_STRVAR(linear_by_stats_doc,
             "linear_by_stats(n, d, num_iterations) -> bool\n\n"
             "Whether linear_gd (the statistics: about n*d*d/2 multiply-adds once, then d*d per\n"
             "step) costs less than linear_gd_naive (about 2*n*d per step): when d is not large\n"
             "against n.");

static int by_stats(size_t n, size_t d, size_t iters)
{
    const double dd = (double)d;
    return dd * dd * ((double)(n / 2) + (double)iters) <=
           2.0 * (double)n * dd * (double)(iters ? iters : 1);
}

static PyObject *py_linear_by_stats(PyObject *self, PyObject *args)
{
    PyObject *n_o, *d_o, *iters_o;
    long long n, d, iters;
    if (!PyArg_ParseTuple(args, "OOO", &n_o, &d_o, &iters_o) ||
        parse_int(n_o, "n", 0, PY_SSIZE_T_MAX, &n) < 0 || parse_int(d_o, "d", 0, PY_SSIZE_T_MAX, &d) < 0 ||
        parse_int(iters_o, "num_iterations", 0, PY_SSIZE_T_MAX, &iters) < 0)
        return NULL;
    return PyBool_FromLong(by_stats((size_t)n, (size_t)d, (size_t)iters));
}

/* ------------------------------------------------------------------ */
/* the per-call fast paths                                              */
/* ------------------------------------------------------------------ */

static int article_fast = 1;

/* The GIL is released around a kernel of more than 500 elements
 * (NPY_BEGIN_THREADS_THRESHOLDED, NumPy's own rule): below that, releasing
 * and re-taking it costs more than the kernel. */

/* o if it is a plain ndarray of `typenum`, C-contiguous, aligned and in
 * native byte order, else NULL (no exception: the caller declines) */
static PyArrayObject *ready(PyObject *o, int typenum)
{
    if (!PyArray_CheckExact(o))
        return NULL;
    PyArrayObject *a = (PyArrayObject *)o;
    const int want = NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED;
    if (PyArray_TYPE(a) != typenum || (PyArray_FLAGS(a) & want) != want || !PyArray_ISNOTSWAPPED(a))
        return NULL;
    return a;
}

/* the dtype of a fast call, from its first array: NPY_FLOAT32/64, or -1 */
static int ready_typenum(PyObject *o)
{
    if (!PyArray_CheckExact(o))
        return -1;
    const int tn = PyArray_TYPE((PyArrayObject *)o);
    return tn == NPY_FLOAT32 || tn == NPY_FLOAT64 ? tn : -1;
}

/* 1 if the call may take its fast path and args[0], args[1] are ready arrays of
 * one float dtype (*tn); 0 to decline */
static int ready_pair(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want, int *tn,
                      PyArrayObject **a, PyArrayObject **b)
{
    return nargs == want && article_fast && (*tn = ready_typenum(args[0])) >= 0 &&
           (*a = ready(args[0], *tn)) && (*b = ready(args[1], *tn));
}

/* a is (len,) or (len, 1) */
static int is_column(PyArrayObject *a, npy_intp len)
{
    return (PyArray_NDIM(a) == 1 && PyArray_DIM(a, 0) == len) ||
           (PyArray_NDIM(a) == 2 && PyArray_DIM(a, 0) == len && PyArray_DIM(a, 1) == 1);
}

/* The bias as the thorough path reads it: a Python float, a small exact int
 * (exactly representable in float32), or a 0-d or (1,) ndarray of the call's
 * dtype.  *scalar: whether b is 0-d (db is then returned as a float).  For
 * float32, a float that does not fit is declined (NumPy warns on that cast).
 * Returns 0 to decline. */
static int ready_bias(PyObject *o, int tn, double *b, int *scalar)
{
    if (PyFloat_Check(o)) {
        *b = PyFloat_AS_DOUBLE(o);
        *scalar = 1;
    } else if (PyLong_CheckExact(o)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow || v > (1 << 24) || v < -(1 << 24)) {
            if (v == -1 && PyErr_Occurred())
                PyErr_Clear();
            return 0;
        }
        *b = (double)v;
        *scalar = 1;
    } else {
        PyArrayObject *a = ready(o, tn);
        if (!a || PyArray_SIZE(a) != 1 || PyArray_NDIM(a) > 1)
            return 0;
        *b = tn == NPY_FLOAT32 ? (double)*(float *)PyArray_DATA(a) : *(double *)PyArray_DATA(a);
        *scalar = PyArray_NDIM(a) == 0;
    }
    if (tn == NPY_FLOAT32 && isfinite(*b) && !isfinite((double)(float)*b))
        return 0;
    return 1;
}

#define DECLINE() Py_RETURN_NOTIMPLEMENTED

/* (w, b) as the thorough path returns them: steals w; b a float when b_scalar,
 * else a (1,) array of dtype tn */
static PyObject *weights_and_bias(PyArrayObject *w, double b, int b_scalar, int tn)
{
    PyObject *bo = NULL;
    if (b_scalar) {
        bo = PyFloat_FromDouble(b);
    } else if ((bo = PyArray_SimpleNew(1, (npy_intp[]){1}, tn))) {
        if (tn == NPY_FLOAT32)
            *(float *)PyArray_DATA((PyArrayObject *)bo) = (float)b;
        else
            *(double *)PyArray_DATA((PyArrayObject *)bo) = b;
    }
    PyObject *r = bo ? PyTuple_New(2) : NULL;
    if (!r) {
        Py_DECREF(w);
        Py_XDECREF(bo);
        return NULL;
    }
    PyTuple_SET_ITEM(r, 0, (PyObject *)w);
    PyTuple_SET_ITEM(r, 1, bo);
    return r;
}

/* the arguments (x, y, w, b) of gradient_fast and gradient_descent_fast */
typedef struct {
    int tn;                  /* NPY_FLOAT32 or NPY_FLOAT64 */
    PyArrayObject *x, *y, *w;
    npy_intp n, d;           /* x is (n, d), or (n,) with d = 1 */
    double b;
    int b_scalar;            /* b is 0-d: the bias result is a float */
} linear_args_ready;

/* 1 if x (n, d) or (n,), y (n,) or (n, 1), w (d,) or (d, 1) are ready arrays of
 * one float dtype, n >= 1, and b is a ready bias; 0 to decline */
static int ready_linear(PyObject *const *args, linear_args_ready *a)
{
    if ((a->tn = ready_typenum(args[0])) < 0 || !(a->x = ready(args[0], a->tn)) ||
        PyArray_NDIM(a->x) < 1 || PyArray_NDIM(a->x) > 2)
        return 0;
    a->n = PyArray_DIM(a->x, 0);
    a->d = PyArray_NDIM(a->x) == 2 ? PyArray_DIM(a->x, 1) : 1;
    a->y = ready(args[1], a->tn);
    a->w = ready(args[2], a->tn);
    return a->n > 0 && a->y && a->w && is_column(a->y, a->n) && is_column(a->w, a->d) &&
           ready_bias(args[3], a->tn, &a->b, &a->b_scalar);
}

PyDoc_STRVAR(gradient_fast_doc,
             "gradient_fast(x, y, w, b) -> (dw, db), or NotImplemented\n\n"
             "fo.gradient's fast path: x (n, d) or (n,), y (n,) or (n, 1), w (d,) or (d, 1), all\n"
             "plain C-contiguous ndarrays of one float dtype, b a float, a small int or a 0-d/(1,)\n"
             "array of that dtype, n >= 1, and a finite result.  Anything else: NotImplemented.");

static PyObject *py_gradient_fast(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    linear_args_ready a;
    if (nargs != 4 || !article_fast || !ready_linear(args, &a))
        DECLINE();
    PyArrayObject *x = a.x, *y = a.y, *w = a.w;
    const int tn = a.tn, b_scalar = a.b_scalar;
    const npy_intp n = a.n, d = a.d;
    const double b = a.b;
    PyArrayObject *dw = (PyArrayObject *)PyArray_SimpleNew(PyArray_NDIM(w), PyArray_DIMS(w), tn);
    if (!dw)
        return NULL;
    double db;
    if (tn == NPY_FLOAT32) {
        float db32;
        NPY_BEGIN_THREADS_DEF;
        NPY_BEGIN_THREADS_THRESHOLDED(n * d);
        fo_linear_gradient_f32(PyArray_DATA(dw), &db32, PyArray_DATA(x), PyArray_DATA(y),
                               PyArray_DATA(w), (float)b, n, d);
        NPY_END_THREADS;
        db = db32;
    } else {
        NPY_BEGIN_THREADS_DEF;
        NPY_BEGIN_THREADS_THRESHOLDED(n * d);
        fo_linear_gradient_f64(PyArray_DATA(dw), &db, PyArray_DATA(x), PyArray_DATA(y),
                               PyArray_DATA(w), b, n, d);
        NPY_END_THREADS;
    }
    /* db is a sum over every residual, each of which involves every input: a NaN
     * or inf anywhere makes it non-finite.  The thorough path then refuses the
     * input with its message (or, for finite input that overflowed, returns the
     * same bits as here). */
    if (!isfinite(db)) {
        Py_DECREF(dw);
        DECLINE();
    }
    return weights_and_bias(dw, db, b_scalar, tn);
}

PyDoc_STRVAR(linear_model_fast_doc,
             "linear_model_fast(x, w, b) -> np.dot(x, w) + b, or NotImplemented\n\n"
             "fo.linear_model's fast path for one feature: x (n, 1) or (n,) with n > 1, w (1,) or\n"
             "(1, 1), plain C-contiguous ndarrays of one float dtype, b a Python float, a small int\n"
             "or a 0-d/(1,) array of that dtype.");

static PyObject *py_linear_model_fast(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int tn;
    PyArrayObject *x, *w;
    if (!ready_pair(args, nargs, 3, &tn, &x, &w) || !is_column(w, 1))
        DECLINE();
    const npy_intp n = PyArray_DIM(x, 0);
    /* a 1-d x of one element stays 1-d in the thorough path (np.dot gives a scalar) */
    if (n == 0 || !(is_column(x, n) && (PyArray_NDIM(x) == 2 || n != 1)))
        DECLINE();
    /* a NumPy float64 scalar is not a "weak" Python float to NumPy: with float32
     * data it makes the sum float64, so it takes the thorough path */
    double b;
    int b_scalar;
    if ((tn == NPY_FLOAT32 && PyFloat_Check(args[2]) && !PyFloat_CheckExact(args[2])) ||
        !ready_bias(args[2], tn, &b, &b_scalar))
        DECLINE();
    npy_intp shape[2] = {n, 1};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(PyArray_NDIM(w), shape, tn);
    if (!out)
        return NULL;
    NPY_BEGIN_THREADS_DEF;
    NPY_BEGIN_THREADS_THRESHOLDED(n);
    if (tn == NPY_FLOAT32)
        fo_linear_predict1_f32(PyArray_DATA(out), PyArray_DATA(x), *(float *)PyArray_DATA(w),
                               (float)b, n);
    else
        fo_linear_predict1_f64(PyArray_DATA(out), PyArray_DATA(x), *(double *)PyArray_DATA(w),
                               b, n);
    NPY_END_THREADS;
    return (PyObject *)out;
}

PyDoc_STRVAR(mse_loss_fast_doc,
             "mse_loss_fast(y_true, y_pred) -> float, or NotImplemented\n\n"
             "fo.mse_loss's fast path: plain C-contiguous ndarrays of one float dtype, y_pred\n"
             "(samples, outputs) or (samples,), y_true of its shape ((n,) and (n, 1) aligning), at\n"
             "least one sample, a finite result: the loss kernel fo.losses.mean_squared_error runs.");

static PyObject *py_mse_loss_fast(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int tn;
    PyArrayObject *t, *p;
    if (!ready_pair(args, nargs, 2, &tn, &t, &p) || PyArray_NDIM(p) < 1 || PyArray_NDIM(p) > 2)
        DECLINE();
    /* as losses._batch reads them: p (B, C) or (B,) = (B, 1); t of p's shape, or for
     * C == 1 either (B,) or (B, 1) */
    const npy_intp B = PyArray_DIM(p, 0), C = PyArray_NDIM(p) == 2 ? PyArray_DIM(p, 1) : 1;
    const int same = PyArray_NDIM(t) == PyArray_NDIM(p) && PyArray_DIM(t, 0) == B &&
                     (PyArray_NDIM(t) == 1 || PyArray_DIM(t, 1) == C);
    if (B == 0 || !(same || (C == 1 && is_column(t, B))))
        DECLINE();
    const fo_loss_spec spec = {FO_LOSS_MSE, FO_REDUCE_SUM_OVER_BATCH_SIZE, 0, 0.0, 1.0};
    double loss;
    NPY_BEGIN_THREADS_DEF;
    NPY_BEGIN_THREADS_THRESHOLDED(B * C);
    if (tn == NPY_FLOAT32)
        loss = fo_loss_f32(NULL, NULL, PyArray_DATA(p), PyArray_DATA(t), NULL, B, C, &spec);
    else
        loss = fo_loss_f64(NULL, NULL, PyArray_DATA(p), PyArray_DATA(t), NULL, B, C, &spec);
    NPY_END_THREADS;
    if (!isfinite(loss)) /* NaN or inf in the input: the thorough path says which */
        DECLINE();
    return PyFloat_FromDouble(loss);
}

/* a Python float or small exact int as a double; 0 to decline */
static int ready_real(PyObject *o, double *v)
{
    if (PyFloat_Check(o)) {
        *v = PyFloat_AS_DOUBLE(o);
        return 1;
    }
    if (PyLong_CheckExact(o)) {
        int overflow;
        long long i = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow || i > ((long long)1 << 53) || i < -((long long)1 << 53)) {
            PyErr_Clear();
            return 0;
        }
        *v = (double)i;
        return 1;
    }
    return 0;
}

static int ready_finite(PyArrayObject *a, int tn)
{
    const size_t n = (size_t)PyArray_SIZE(a);
    return tn == NPY_FLOAT32 ? fo_all_finite_f32(PyArray_DATA(a), n)
                             : fo_all_finite_f64(PyArray_DATA(a), n);
}

PyDoc_STRVAR(gradient_descent_fast_doc,
             "gradient_descent_fast(x, y, w, b, learning_rate, num_iterations) -> (w, b), or\n"
             "NotImplemented\n\n"
             "fo.gradient_descent's fast path: the arrays as for gradient_fast and finite, a float\n"
             "learning rate >= 0, an int number of steps >= 0, d small enough against n for\n"
             "linear_gd, and a finite result.  The thorough path gives the same bits.");

static PyObject *py_gradient_descent_fast(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !article_fast)
        DECLINE();
    double lr;
    Py_ssize_t iters;
    if (!ready_real(args[4], &lr) || !isfinite(lr) || lr < 0 || !PyLong_CheckExact(args[5]))
        DECLINE();
    /* a count out of [0, 2**53] is the thorough path's to refuse */
    if ((iters = PyLong_AsSsize_t(args[5])) < 0 || iters > ((Py_ssize_t)1 << 53)) {
        PyErr_Clear();
        DECLINE();
    }
    linear_args_ready a;
    if (!ready_linear(args, &a))
        DECLINE();
    PyArrayObject *x = a.x, *y = a.y, *w = a.w;
    const int tn = a.tn, b_scalar = a.b_scalar;
    const npy_intp n = a.n, d = a.d;
    const double b = a.b;
    if (!isfinite(b) ||        !by_stats((size_t)n, (size_t)d, (size_t)iters) || !ready_finite(w, tn) ||
        !ready_finite(x, tn) || !ready_finite(y, tn))
        DECLINE();
    /* the state in float64, from the values the thorough path starts from: w and
     * b in the data's dtype */
    double *state = PyMem_Malloc(((size_t)d + 1) * sizeof(double)), loss;
    if (!state)
        return PyErr_NoMemory();
    for (npy_intp j = 0; j < d; j++)
        state[j] = tn == NPY_FLOAT32 ? (double)((float *)PyArray_DATA(w))[j]
                                     : ((double *)PyArray_DATA(w))[j];
    state[d] = tn == NPY_FLOAT32 ? (double)(float)b : b;
    if (run_gd(state, state + d, tn, PyArray_DATA(x), PyArray_DATA(y), n, d, lr, iters, &loss) < 0) {
        PyMem_Free(state);
        return NULL;
    }
    PyArrayObject *wo = (PyArrayObject *)PyArray_SimpleNew(PyArray_NDIM(w), PyArray_DIMS(w), tn);
    int finite = 1;
    if (wo && tn == NPY_FLOAT32) {
        float *o = PyArray_DATA(wo);
        for (npy_intp j = 0; j <= d; j++) {
            const float v = (float)state[j];
            finite &= isfinite(v) != 0;
            if (j < d)
                o[j] = v;
            else
                state[d] = v; /* b as the data's dtype holds it */
        }
    } else if (wo) {
        memcpy(PyArray_DATA(wo), state, (size_t)d * sizeof(double));
        for (npy_intp j = 0; j <= d; j++)
            finite &= isfinite(state[j]) != 0;
    }
    const double b_out = state[d];
    PyMem_Free(state);
    if (!wo)
        return NULL;
    if (!finite) { /* diverged: the thorough path warns */
        Py_DECREF(wo);
        DECLINE();
    }
    return weights_and_bias(wo, b_out, b_scalar, tn);
}

static PyObject *py_article_fast_path(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return fast_path_switch(&article_fast, "article_fast_path", args, nargs);
}

#define FASTCALL(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL

PyMethodDef fo_linear_methods[] = {
    {"linear_gradient", py_linear_gradient, METH_VARARGS, linear_gradient_doc},
    {"linear_gd", py_linear_gd, METH_VARARGS, linear_gd_doc},
    {"linear_gd_naive", py_linear_gd_naive, METH_VARARGS, linear_gd_naive_doc},
    {"linear_stats", py_linear_stats, METH_VARARGS, linear_stats_doc},
    {"linear_by_stats", py_linear_by_stats, METH_VARARGS, linear_by_stats_doc},
    {"gradient_descent_fast", FASTCALL(py_gradient_descent_fast), gradient_descent_fast_doc},
    {"gradient_fast", FASTCALL(py_gradient_fast), gradient_fast_doc},
    {"linear_model_fast", FASTCALL(py_linear_model_fast), linear_model_fast_doc},
    {"mse_loss_fast", FASTCALL(py_mse_loss_fast), mse_loss_fast_doc},
    {"article_fast_path", FASTCALL(py_article_fast_path),
     "article_fast_path([enabled]) -> previous setting: whether gradient_fast, linear_model_fast,\n"
     "mse_loss_fast and gradient_descent_fast run (False: they always return NotImplemented; for tests)"},
    {NULL, NULL, 0, NULL}};
