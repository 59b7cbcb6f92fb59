/*
 * bind_surface.c - binding of the loss surface on a grid (surface.c): the
 * contour lines under compare's parameter paths.
 */
#include "binding.h"

#include <math.h>

/* a 1-d float64 grid axis of finite values */
static PyArrayObject *grid_axis(PyObject *o, const char *name)
{
    PyArrayObject *g = exact_array(o, name, NPY_FLOAT64, 0, -1);
    if (!g)
        return NULL;
    if (PyArray_NDIM(g) != 1) {
        PyErr_Format(PyExc_ValueError, "%s must be 1-d, got %d-d", name, PyArray_NDIM(g));
        return NULL;
    }
    if (!fo_all_finite_f64(PyArray_DATA(g), (size_t)PyArray_SIZE(g))) {
        PyErr_Format(PyExc_ValueError, "%s contains NaN or inf", name);
        return NULL;
    }
    return g;
}

/* two penalty factors, each finite and >= 0 */
static int penalty_pair(PyObject *o, double f[2], const char *name)
{
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 2) {
        PyErr_Format(PyExc_TypeError, "%s must be a pair of numbers", name);
        return -1;
    }
    for (int k = 0; k < 2; k++) {
        if (parse_real(PyTuple_GET_ITEM(o, k), name, &f[k]) < 0)
            return -1;
        if (!(f[k] >= 0) || isinf(f[k])) {
            PyErr_Format(PyExc_ValueError, "%s[%d] must be finite and >= 0, got %g", name, k, f[k]);
            return -1;
        }
    }
    return 0;
}

PyDoc_STRVAR(lsq2_surface_doc,
             "lsq2_surface(out, a, y, p0, p1, l1, l2)\n\n"
             "out[j, i] = mean((a @ (p0[i], p1[j]) - y)**2) + sum_k l1[k] |p_k| + l2[k] p_k**2\n"
             "for a (n, 2) and y (n,) of one float dtype (n >= 1), p0 (n0,) and p1 (n1,)\n"
             "float64, out (n1, n0) float64; l1, l2 pairs of factors >= 0.  One pass over the\n"
             "data for its sums (in double), then O(1) per grid point.");

static PyObject *py_lsq2_surface(PyObject *self, PyObject *args)
{
    PyObject *oo, *ao, *yo, *p0o, *p1o, *l1o, *l2o;
    double l1[2], l2[2];
    if (!PyArg_ParseTuple(args, "OOOOOOO", &oo, &ao, &yo, &p0o, &p1o, &l1o, &l2o) ||
        penalty_pair(l1o, l1, "l1") < 0 || penalty_pair(l2o, l2, "l2") < 0)
        return NULL;
    int tn = float_typenum(ao, "a");
    PyArrayObject *a = tn < 0 ? NULL : exact_2d(ao, "a", tn, 0, -1, 2);
    PyArrayObject *y = a ? exact_array(yo, "y", tn, 0, PyArray_DIM(a, 0)) : NULL;
    PyArrayObject *p0 = y ? grid_axis(p0o, "p0") : NULL;
    PyArrayObject *p1 = p0 ? grid_axis(p1o, "p1") : NULL;
    PyArrayObject *out = p1 ? exact_2d(oo, "out", NPY_FLOAT64, 1, PyArray_DIM(p1, 0),
                                       PyArray_DIM(p0, 0)) : NULL;
    if (!out)
        return NULL;
    const size_t n = (size_t)PyArray_DIM(a, 0);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "a has no rows");
        return NULL;
    }
    int finite = tn == NPY_FLOAT32
                     ? fo_all_finite_f32(PyArray_DATA(a), 2 * n) && fo_all_finite_f32(PyArray_DATA(y), n)
                     : fo_all_finite_f64(PyArray_DATA(a), 2 * n) && fo_all_finite_f64(PyArray_DATA(y), n);
    if (!finite) {
        PyErr_SetString(PyExc_ValueError, "a or y contains NaN or inf");
        return NULL;
    }
    PyArrayObject *arrs[] = {out, a, y, p0, p1};
    const char *names[] = {"out", "a", "y", "p0", "p1"};
    if (check_disjoint(arrs, names, 1, 5) < 0)
        return NULL;
    fo_lsq2 st;
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT32)
        fo_lsq2_stats_f32(&st, PyArray_DATA(a), PyArray_DATA(y), n);
    else
        fo_lsq2_stats_f64(&st, PyArray_DATA(a), PyArray_DATA(y), n);
    fo_lsq2_surface(PyArray_DATA(out), &st, PyArray_DATA(p0), (size_t)PyArray_DIM(p0, 0),
                    PyArray_DATA(p1), (size_t)PyArray_DIM(p1, 0), l1, l2);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyMethodDef fo_surface_methods[] = {
    {"lsq2_surface", py_lsq2_surface, METH_VARARGS, lsq2_surface_doc},
    {NULL, NULL, 0, NULL}};
