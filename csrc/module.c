/*
 * module.c - fastopt._core: the only file that knows CPython and NumPy.
 *
 * Each function parses its arguments, checks every array (type, dtype, shape,
 * contiguity, writeability, overlap) before anything is written, releases the
 * GIL around the kernel call, and raises TypeError/ValueError naming the
 * argument on bad input.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef NPY_NO_DEPRECATED_API
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#endif
#define PY_ARRAY_UNIQUE_SYMBOL fastopt_ARRAY_API
#include <numpy/arrayobject.h>

#include <math.h>
#include <stdlib.h>

#include "fastopt.h"

static PyObject *np_shares_memory; /* numpy.shares_memory, for strided overlap */

/* ------------------------------------------------------------------ */
/* argument checking                                                   */
/* ------------------------------------------------------------------ */

static int dtype_code(int typenum)
{
    return typenum == NPY_FLOAT32 ? FO_F32 : typenum == NPY_FLOAT64 ? FO_F64 : -1;
}

/* An array that fastopt's Python layer allocates and passes to a kernel:
 * exactly `typenum`, C-contiguous, aligned, native, writeable when `writable`,
 * and `size` elements (any when size < 0).  Returns a borrowed reference. */
static PyArrayObject *exact_array(PyObject *o, const char *name, int typenum, int writable,
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
static int float_typenum(PyObject *o, const char *name)
{
    if (!PyArray_Check(o) || dtype_code(PyArray_TYPE((PyArrayObject *)o)) < 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a float32 or float64 numpy.ndarray", name);
        return -1;
    }
    return PyArray_TYPE((PyArrayObject *)o);
}

/* the byte range [lo, hi) an array's elements lie in; lo == hi when empty */
static void extent(PyArrayObject *a, char **lo, char **hi)
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
static int overlaps(PyArrayObject *a, PyArrayObject *b)
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

/* ------------------------------------------------------------------ */
/* optimizer updates                                                   */
/* ------------------------------------------------------------------ */

/* the hyperparameters that do not change from step to step, as the Python
 * optimizers cache them: (weight_decay, clipnorm, global_clipnorm, clipvalue,
 * momentum, nesterov, rho, centered, beta_1, beta_2, epsilon, amsgrad) */
static int parse_hyper(PyObject *t, fo_optim_hyper *h)
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

static int check_kind(int kind)
{
    if (kind < 0 || kind >= FO_N_OPTIM) {
        PyErr_Format(PyExc_ValueError, "unknown optimizer kind %d", kind);
        return -1;
    }
    return 0;
}

/* a written buffer of an update, for the overlap check */
typedef struct {
    char *lo, *hi, *reach;
    PyArrayObject *arr; /* the caller's array (for a variable, not its copy) */
    Py_ssize_t var;     /* index of the variable */
    int slot;           /* -1 for the variable itself */
} written;

static int cmp_written(const void *a, const void *b)
{
    const written *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void describe(char *buf, size_t n, const written *w)
{
    if (w->slot < 0)
        snprintf(buf, n, "variables[%zd]", w->var);
    else
        snprintf(buf, n, "slots[%zd][%d]", w->var, w->slot);
}

/* the last written range (sorted by start) that starts before hi, or NULL */
static const written *find_written(const written *w, Py_ssize_t nw, const char *hi)
{
    Py_ssize_t lo_i = 0, hi_i = nw;
    while (lo_i < hi_i) {
        Py_ssize_t mid = (lo_i + hi_i) / 2;
        if (w[mid].lo < hi)
            lo_i = mid + 1;
        else
            hi_i = mid;
    }
    return lo_i > 0 ? &w[lo_i - 1] : NULL;
}

PyDoc_STRVAR(optim_update_doc,
             "optim_update(kind, variables, grads, slots, hyper, learning_rate, iteration)\n\n"
             "One optimizer step over every variable, in place.  slots[i] is a 3-tuple of the\n"
             "variable's state arrays (None where unused); a pair whose gradient is None is\n"
             "skipped.  Nothing is written unless every argument is valid.");

/* sort the written ranges by start: insertion sort for the usual handful */
static void sort_written(written *w, Py_ssize_t nw)
{
    if (nw > 16) {
        qsort(w, (size_t)nw, sizeof(*w), cmp_written);
        return;
    }
    for (Py_ssize_t i = 1; i < nw; i++) {
        written t = w[i];
        Py_ssize_t j = i;
        for (; j > 0 && w[j - 1].lo > t.lo; j--)
            w[j] = w[j - 1];
        w[j] = t;
    }
}

/* the gradient of variable i as a C-contiguous array of the variable's dtype
 * (new reference), or NULL with TypeError/ValueError naming grads[i] */
static PyArrayObject *gradient_array(PyObject *g, PyArrayObject *va, Py_ssize_t i)
{
    const int typenum = PyArray_TYPE(va);
    if (PyArray_Check(g)) {
        PyArrayObject *ga = (PyArrayObject *)g;
        /* the common case: nothing to convert */
        if (PyArray_TYPE(ga) == typenum && PyArray_ISCARRAY_RO(ga) && PyArray_ISNOTSWAPPED(ga) &&
            PyArray_SAMESHAPE(ga, va)) {
            Py_INCREF(g);
            return ga;
        }
    }
    PyArrayObject *ga = (PyArrayObject *)PyArray_FROM_O(g);
    if (ga == NULL)
        return NULL;
    if (!PyArray_ISFLOAT(ga)) {
        PyErr_Format(PyExc_TypeError, "grads[%zd] must be a floating-point array, got dtype %S", i,
                     (PyObject *)PyArray_DESCR(ga));
        Py_DECREF(ga);
        return NULL;
    }
    PyArray_Descr *vdescr = PyArray_DescrFromType(typenum);
    /* Python floats and lists of them carry no precision of their own (NumPy's
     * weak scalars): they take the variable's dtype.  Arrays must cast safely. */
    const int weak = !PyArray_Check(g) && !PyArray_IsScalar(g, Generic);
    if (!weak && !PyArray_CanCastTypeTo(PyArray_DESCR(ga), vdescr, NPY_SAFE_CASTING)) {
        PyErr_Format(PyExc_TypeError,
                     "grads[%zd] has dtype %S but variables[%zd] has dtype %S; casting would "
                     "lose precision, cast the gradient explicitly",
                     i, (PyObject *)PyArray_DESCR(ga), i, (PyObject *)vdescr);
        Py_DECREF(vdescr);
        Py_DECREF(ga);
        return NULL;
    }
    if (!PyArray_SAMESHAPE(ga, va)) {
        PyObject *gs = PyObject_GetAttrString((PyObject *)ga, "shape");
        PyObject *vs = PyObject_GetAttrString((PyObject *)va, "shape");
        PyErr_Format(PyExc_ValueError, "grads[%zd] has shape %S but variables[%zd] has shape %S", i,
                     gs, i, vs);
        Py_XDECREF(gs);
        Py_XDECREF(vs);
        Py_DECREF(vdescr);
        Py_DECREF(ga);
        return NULL;
    }
    PyArrayObject *c = (PyArrayObject *)PyArray_FromArray(
        ga, vdescr, NPY_ARRAY_IN_ARRAY | (weak ? NPY_ARRAY_FORCECAST : 0)); /* steals vdescr */
    Py_DECREF(ga);
    return c;
}

#define FO_STACK_VARS 8 /* updates of up to this many variables need no heap */

static PyObject *py_optim_update(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "optim_update(kind, variables, grads, slots, hyper, learning_rate, iteration)");
        return NULL;
    }
    const long kind = PyLong_AsLong(args[0]);
    fo_optim_hyper h;
    if ((kind == -1 && PyErr_Occurred()) || check_kind((int)kind) < 0 || parse_hyper(args[4], &h) < 0)
        return NULL;
    h.learning_rate = PyFloat_AsDouble(args[5]);
    h.iteration = PyLong_AsLongLong(args[6]);
    if (PyErr_Occurred())
        return NULL;
    int used[FO_MAX_SLOTS];
    fo_optim_slots_used((int)kind, &h, used);

    PyObject *vars = NULL, *grads = NULL, *slots = NULL, *result = NULL;
    PyArrayObject *vin_s[FO_STACK_VARS], *gin_s[FO_STACK_VARS];
    fo_optim_buffers bufs_s[FO_STACK_VARS];
    written w_s[FO_STACK_VARS * (FO_MAX_SLOTS + 1)];
    PyArrayObject **vin = vin_s, **gin = gin_s; /* new references */
    fo_optim_buffers *bufs = bufs_s;
    written *w = w_s;
    Py_ssize_t n = 0, nw = 0;

    vars = PySequence_Fast(args[1], "variables must be a sequence");
    grads = vars ? PySequence_Fast(args[2], "grads must be a sequence") : NULL;
    slots = grads ? PySequence_Fast(args[3], "slots must be a sequence") : NULL;
    if (!slots)
        goto fail;
    n = PySequence_Fast_GET_SIZE(vars);
    if (PySequence_Fast_GET_SIZE(grads) != n || PySequence_Fast_GET_SIZE(slots) != n) {
        PyErr_Format(PyExc_ValueError, "got %zd variables, %zd grads and %zd slot tuples", n,
                     PySequence_Fast_GET_SIZE(grads), PySequence_Fast_GET_SIZE(slots));
        n = 0;
        goto fail;
    }
    if (n > FO_STACK_VARS) {
        vin = PyMem_Calloc(n, sizeof(*vin));
        gin = PyMem_Calloc(n, sizeof(*gin));
        bufs = PyMem_Calloc(n, sizeof(*bufs));
        w = PyMem_Calloc(n * (FO_MAX_SLOTS + 1), sizeof(*w));
        if (!vin || !gin || !bufs || !w) {
            PyErr_NoMemory();
            goto fail;
        }
    } else {
        memset(vin_s, 0, sizeof vin_s);
        memset(gin_s, 0, sizeof gin_s);
    }

    Py_ssize_t nb = 0; /* variables with a gradient: bufs[0..nb) */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PySequence_Fast_GET_ITEM(vars, i);
        PyObject *s = PySequence_Fast_GET_ITEM(slots, i);
        if (PySequence_Fast_GET_ITEM(grads, i) == Py_None)
            continue; /* Keras: a variable without a gradient is left alone */
        if (!PyArray_Check(v)) {
            PyErr_Format(PyExc_TypeError,
                         "variables[%zd] must be a numpy.ndarray (updated in place), got %.100s",
                         i, Py_TYPE(v)->tp_name);
            goto fail;
        }
        PyArrayObject *va = (PyArrayObject *)v;
        const int typenum = PyArray_TYPE(va), code = dtype_code(typenum);
        if (code < 0) {
            PyErr_Format(PyExc_TypeError, "variables[%zd] must have dtype float32 or float64, got %S",
                         i, (PyObject *)PyArray_DESCR(va));
            goto fail;
        }
        if (!PyArray_ISWRITEABLE(va)) {
            PyErr_Format(PyExc_ValueError, "variables[%zd] is read-only; it is updated in place", i);
            goto fail;
        }
        if (!PyArray_IS_C_CONTIGUOUS(va)) {
            /* elements that share memory (stride 0, as_strided) cannot each be updated */
            char *lo, *hi;
            extent(va, &lo, &hi);
            if (hi - lo < PyArray_NBYTES(va)) {
                PyErr_Format(PyExc_ValueError,
                             "variables[%zd] has elements that share memory; it cannot be updated "
                             "in place", i);
                goto fail;
            }
        }
        /* the gradient: any floating array that casts safely to the variable's dtype */
        if (!(gin[i] = gradient_array(PySequence_Fast_GET_ITEM(grads, i), va, i)))
            goto fail;
        /* the state: arrays fastopt allocated, one per used slot */
        if (!PyTuple_Check(s) || PyTuple_GET_SIZE(s) != FO_MAX_SLOTS) {
            PyErr_Format(PyExc_TypeError, "slots[%zd] must be a %d-tuple", i, FO_MAX_SLOTS);
            goto fail;
        }
        fo_optim_buffers *bi = &bufs[nb++];
        bi->dtype = code;
        bi->n = (size_t)PyArray_SIZE(va);
        for (int k = 0; k < FO_MAX_SLOTS; k++) {
            bi->slot[k] = NULL;
            if (!used[k])
                continue;
            char name[64];
            snprintf(name, sizeof name, "slots[%zd][%d]", i, k);
            PyArrayObject *sa = exact_array(PyTuple_GET_ITEM(s, k), name, typenum, 1,
                                            PyArray_SIZE(va));
            if (sa == NULL)
                goto fail;
            bi->slot[k] = PyArray_DATA(sa);
            written *wk = &w[nw++];
            extent(sa, &wk->lo, &wk->hi);
            wk->arr = sa;
            wk->var = i;
            wk->slot = k;
        }
        written *wv = &w[nw++];
        extent(va, &wv->lo, &wv->hi);
        wv->arr = va;
        wv->var = i;
        wv->slot = -1;
    }

    /* no two written buffers may share memory (the same variable twice included) */
    sort_written(w, nw);
    const written *clash[2] = {NULL, NULL};
    for (Py_ssize_t a = 0; a < nw; a++) {
        for (Py_ssize_t b = a + 1; b < nw && w[b].lo < w[a].hi; b++) {
            int ov = overlaps(w[a].arr, w[b].arr);
            if (ov < 0)
                goto fail;
            /* name the caller's variables rather than their state where both clash */
            if (ov && (!clash[0] || (w[a].slot < 0 && w[b].slot < 0))) {
                clash[0] = &w[a];
                clash[1] = &w[b];
            }
        }
    }
    if (clash[0]) {
        char da[48], db[48];
        const written *x = clash[0]->var <= clash[1]->var ? clash[0] : clash[1];
        describe(da, sizeof da, x);
        describe(db, sizeof db, x == clash[0] ? clash[1] : clash[0]);
        PyErr_Format(PyExc_ValueError, "%s and %s share memory; each is updated in place", da, db);
        goto fail;
    }

    /* a gradient that shares memory with anything written is read from a copy;
     * reach[j] is the furthest end of w[0..j], so the walk back can stop early */
    for (Py_ssize_t j = 0; j < nw; j++)
        w[j].reach = j > 0 && w[j - 1].reach > w[j].hi ? w[j - 1].reach : w[j].hi;
    for (Py_ssize_t i = 0; i < n; i++) {
        char *lo, *hi;
        if (gin[i] == NULL)
            continue;
        extent(gin[i], &lo, &hi);
        int copy = 0;
        for (const written *p = find_written(w, nw, hi); p && p->reach > lo && !copy;
             p = p > w ? p - 1 : NULL) {
            copy = overlaps(gin[i], p->arr);
            if (copy < 0)
                goto fail;
        }
        if (copy) {
            PyArrayObject *c = (PyArrayObject *)PyArray_NewCopy(gin[i], NPY_CORDER);
            if (c == NULL)
                goto fail;
            Py_SETREF(gin[i], c);
        }
    }

    /* the variables: written through a contiguous copy that is written back
     * (WRITEBACKIFCOPY) when a variable is a strided view or byte-swapped */
    for (Py_ssize_t i = 0, b = 0; i < n; i++) {
        PyArrayObject *va = (PyArrayObject *)PySequence_Fast_GET_ITEM(vars, i);
        if (gin[i] == NULL)
            continue;
        if (PyArray_ISCARRAY(va) && PyArray_ISNOTSWAPPED(va)) {
            Py_INCREF(va);
            vin[i] = va;
        } else {
            PyArray_Descr *d = PyArray_DescrFromType(PyArray_TYPE(va));
            vin[i] = (PyArrayObject *)PyArray_FromArray(va, d, NPY_ARRAY_INOUT_ARRAY2);
            if (vin[i] == NULL)
                goto fail;
        }
        bufs[b].var = PyArray_DATA(vin[i]);
        bufs[b++].grad = PyArray_DATA(gin[i]);
    }

    Py_BEGIN_ALLOW_THREADS
    fo_optim_update((int)kind, (size_t)nb, bufs, &h);
    Py_END_ALLOW_THREADS

    for (Py_ssize_t i = 0; i < n; i++) {
        if (vin[i] && PyArray_ResolveWritebackIfCopy(vin[i]) < 0)
            goto fail;
        Py_CLEAR(vin[i]);
    }
    result = Py_NewRef(Py_None);

fail:
    for (Py_ssize_t i = 0; vin && i < n; i++) {
        if (vin[i]) {
            PyArray_DiscardWritebackIfCopy(vin[i]);
            Py_DECREF(vin[i]);
        }
    }
    for (Py_ssize_t i = 0; gin && i < n; i++)
        Py_XDECREF(gin[i]);
    if (vin != vin_s) {
        PyMem_Free(vin);
        PyMem_Free(gin);
        PyMem_Free(bufs);
        PyMem_Free(w);
    }
    Py_XDECREF(vars);
    Py_XDECREF(grads);
    Py_XDECREF(slots);
    return result;
}

/* ------------------------------------------------------------------ */
/* dense layers, loss, matrix product                                  */
/* ------------------------------------------------------------------ */

static int check_act(int act)
{
    if (act < 0 || act >= FO_N_ACT) {
        PyErr_Format(PyExc_ValueError, "unknown activation code %d", act);
        return -1;
    }
    return 0;
}

/* a 2-d exact array with the given shape (-1: any) */
static PyArrayObject *exact_2d(PyObject *o, const char *name, int typenum, int writable,
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
static int check_disjoint(PyArrayObject **arrs, const char **names, int n_out, int n)
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

/* ------------------------------------------------------------------ */
/* networks and the training loop                                      */
/* ------------------------------------------------------------------ */

/* spec = (units, activations, use_bias, l1, l2): units has n_layers + 1 entries */
static int parse_net(PyObject *spec, fo_net *net)
{
    PyObject *units, *acts, *bias, *l1, *l2;
    if (!PyArg_ParseTuple(spec, "O!O!O!O!O!;spec must be (units, activations, use_bias, l1, l2)",
                          &PyTuple_Type, &units, &PyTuple_Type, &acts, &PyTuple_Type, &bias,
                          &PyTuple_Type, &l1, &PyTuple_Type, &l2))
        return -1;
    Py_ssize_t L = PyTuple_GET_SIZE(acts);
    if (L < 1 || L > FO_MAX_LAYERS || PyTuple_GET_SIZE(units) != L + 1 ||
        PyTuple_GET_SIZE(bias) != L || PyTuple_GET_SIZE(l1) != L || PyTuple_GET_SIZE(l2) != L) {
        PyErr_Format(PyExc_ValueError, "spec: a network has 1 to %d layers, with one more unit "
                                       "count than layers", FO_MAX_LAYERS);
        return -1;
    }
    net->n_layers = (size_t)L;
    for (Py_ssize_t i = 0; i <= L; i++) {
        Py_ssize_t u = PyLong_AsSsize_t(PyTuple_GET_ITEM(units, i));
        if (u == -1 && PyErr_Occurred())
            return -1;
        if (u < 1) {
            PyErr_Format(PyExc_ValueError, "spec: units[%zd] must be positive", i);
            return -1;
        }
        if (u > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "spec: units[%zd] = %zd is too large", i, u);
            return -1;
        }
        net->units[i] = (size_t)u;
    }
    /* the parameter count and a row of workspace must fit in memory's index range,
     * so that no size computed from them later wraps around */
    size_t params = 0, row = 2 * net->units[0] + net->units[L], k;
    for (Py_ssize_t i = 0; i < L; i++) {
        int bad = __builtin_mul_overflow(net->units[i], net->units[i + 1], &k) ||
                  __builtin_add_overflow(params, k + net->units[i + 1], &params) ||
                  __builtin_add_overflow(row, 3 * net->units[i + 1], &row);
        if (bad || params > (size_t)PY_SSIZE_T_MAX / 16 || row > (size_t)PY_SSIZE_T_MAX / 16) {
            PyErr_SetString(PyExc_ValueError, "spec: the network is too large");
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < L; i++) {
        long a = PyLong_AsLong(PyTuple_GET_ITEM(acts, i));
        int b = PyObject_IsTrue(PyTuple_GET_ITEM(bias, i));
        double r1 = PyFloat_AsDouble(PyTuple_GET_ITEM(l1, i));
        double r2 = PyFloat_AsDouble(PyTuple_GET_ITEM(l2, i));
        if (PyErr_Occurred() || b < 0)
            return -1;
        if (check_act((int)a) < 0)
            return -1;
        if (!(r1 >= 0) || !(r2 >= 0) || isinf(r1) || isinf(r2)) {
            PyErr_SetString(PyExc_ValueError, "spec: regularization factors must be finite and >= 0");
            return -1;
        }
        net->act[i] = (int)a;
        net->use_bias[i] = b;
        net->l1[i] = r1;
        net->l2[i] = r2;
    }
    return 0;
}

static PyObject *py_net_sizes(PyObject *self, PyObject *args)
{
    PyObject *spec;
    Py_ssize_t B;
    fo_net net;
    if (!PyArg_ParseTuple(args, "On", &spec, &B) || parse_net(spec, &net) < 0)
        return NULL;
    if (B < 0) {
        PyErr_SetString(PyExc_ValueError, "batch rows must be >= 0");
        return NULL;
    }
    if (B > 0 && fo_net_workspace(&net, 1) > (size_t)PY_SSIZE_T_MAX / (size_t)B) {
        PyErr_SetString(PyExc_ValueError, "too many rows for this network");
        return NULL;
    }
    return Py_BuildValue("nn", (Py_ssize_t)fo_net_n_params(&net),
                         (Py_ssize_t)fo_net_workspace(&net, (size_t)B));
}

/* what every network call shares: the network, its dtype, params and x */
typedef struct {
    fo_net net;
    int typenum;
    PyArrayObject *params, *x;
    npy_intp rows; /* of x */
} net_args;

static int net_common(PyObject *spec, PyObject *params_o, PyObject *xo, net_args *a)
{
    if (parse_net(spec, &a->net) < 0)
        return -1;
    if ((a->typenum = float_typenum(params_o, "params")) < 0)
        return -1;
    a->params = exact_array(params_o, "params", a->typenum, 0, (npy_intp)fo_net_n_params(&a->net));
    if (!a->params)
        return -1;
    a->x = exact_2d(xo, "x", a->typenum, 0, -1, (npy_intp)a->net.units[0]);
    if (!a->x)
        return -1;
    a->rows = PyArray_DIM(a->x, 0);
    return 0;
}

/* the workspace array, checked to hold fo_net_workspace(rows) elements */
static PyArrayObject *work_array(PyObject *wo, const net_args *a, size_t rows)
{
    if (rows > 0 && fo_net_workspace(&a->net, 1) > (size_t)PY_SSIZE_T_MAX / rows) {
        PyErr_SetString(PyExc_ValueError, "work: too many rows for this network");
        return NULL;
    }
    PyArrayObject *work = exact_array(wo, "work", a->typenum, 1, -1);
    if (work && PyArray_SIZE(work) < (npy_intp)fo_net_workspace(&a->net, rows)) {
        PyErr_SetString(PyExc_ValueError, "work is too small for this batch size");
        return NULL;
    }
    return work;
}

PyDoc_STRVAR(net_forward_doc, "net_forward(out, x, params, spec, work)\n\n"
                              "out (B, units[-1]) = the network applied to x (B, units[0]).");

static PyObject *py_net_forward(PyObject *self, PyObject *args)
{
    PyObject *oo, *xo, *po, *spec, *wo;
    net_args na;
    if (!PyArg_ParseTuple(args, "OOOOO", &oo, &xo, &po, &spec, &wo) ||
        net_common(spec, po, xo, &na) < 0)
        return NULL;
    const fo_net *net = &na.net;
    PyArrayObject *x = na.x;
    const npy_intp B = na.rows;
    PyArrayObject *out = exact_2d(oo, "out", na.typenum, 1, B, (npy_intp)net->units[net->n_layers]);
    PyArrayObject *work = out ? work_array(wo, &na, (size_t)B) : NULL;
    if (!work)
        return NULL;
    PyArrayObject *arrs[] = {out, work, x, na.params};
    const char *names[] = {"out", "work", "x", "params"};
    if (check_disjoint(arrs, names, 2, 4) < 0)
        return NULL;
    if (B > 0) {
        Py_BEGIN_ALLOW_THREADS
        if (na.typenum == NPY_FLOAT32)
            fo_net_forward_f32(PyArray_DATA(out), PyArray_DATA(x), PyArray_DATA(na.params), net, B,
                               PyArray_DATA(work));
        else
            fo_net_forward_f64(PyArray_DATA(out), PyArray_DATA(x), PyArray_DATA(na.params), net, B,
                               PyArray_DATA(work));
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *stats_tuple(const fo_stats *st)
{
    return Py_BuildValue("dddd", st->loss, st->sse, st->sae, st->penalty);
}

PyDoc_STRVAR(net_gradients_doc,
             "net_gradients(grads, x, y, params, spec, work) -> (loss*B, sse, sae, penalty*B)\n\n"
             "grads = d(mean squared error + penalties)/d(params) over the batch x, y.");

static PyObject *py_net_gradients(PyObject *self, PyObject *args)
{
    PyObject *go, *xo, *yo, *po, *spec, *wo;
    net_args na;
    if (!PyArg_ParseTuple(args, "OOOOOO", &go, &xo, &yo, &po, &spec, &wo) ||
        net_common(spec, po, xo, &na) < 0)
        return NULL;
    const fo_net *net = &na.net;
    PyArrayObject *x = na.x;
    const npy_intp B = na.rows;
    if (B < 1) {
        PyErr_SetString(PyExc_ValueError, "x must have at least one row");
        return NULL;
    }
    PyArrayObject *y = exact_2d(yo, "y", na.typenum, 0, B, (npy_intp)net->units[net->n_layers]);
    PyArrayObject *g = y ? exact_array(go, "grads", na.typenum, 1, PyArray_SIZE(na.params)) : NULL;
    PyArrayObject *work = g ? work_array(wo, &na, (size_t)B) : NULL;
    if (!work)
        return NULL;
    PyArrayObject *arrs[] = {g, work, x, y, na.params};
    const char *names[] = {"grads", "work", "x", "y", "params"};
    if (check_disjoint(arrs, names, 2, 5) < 0)
        return NULL;
    fo_stats st = {0, 0, 0, 0};
    Py_BEGIN_ALLOW_THREADS
    if (na.typenum == NPY_FLOAT32)
        fo_net_gradients_f32(PyArray_DATA(g), PyArray_DATA(x), PyArray_DATA(y),
                             PyArray_DATA(na.params), net, B, PyArray_DATA(work), &st);
    else
        fo_net_gradients_f64(PyArray_DATA(g), PyArray_DATA(x), PyArray_DATA(y),
                             PyArray_DATA(na.params), net, B, PyArray_DATA(work), &st);
    Py_END_ALLOW_THREADS
    return stats_tuple(&st);
}

PyDoc_STRVAR(train_epoch_doc,
             "train_epoch(params, grads, slots, kind, hyper, lr, iteration, x, y, batch_size,\n"
             "            spec, perm, rng_state, shuffle, work, epochs=1, stats=None)\n"
             "    -> (steps, loss*n, sse, sae, penalty*n)\n\n"
             "Epochs of mini-batch training in C.  lr is a float64 array with one learning\n"
             "rate per step (of every epoch), or one for all.  params and the slots are\n"
             "updated in place.  The sums returned are over all epochs; stats, a float64\n"
             "(epochs, 4) array, receives each epoch's (loss*n, sse, sae, penalty*n).");

static PyObject *py_train_epoch(PyObject *self, PyObject *args)
{
    PyObject *po, *go, *slots_o, *hyper_o, *lro, *xo, *yo, *spec, *permo, *rngo, *wo;
    int kind, shuffle;
    long long iteration;
    Py_ssize_t batch, epochs = 1;
    PyObject *stats_o = Py_None;
    if (!PyArg_ParseTuple(args, "OOO!iOOLOOnOOOpO|nO", &po, &go, &PyTuple_Type, &slots_o, &kind,
                          &hyper_o, &lro, &iteration, &xo, &yo, &batch, &spec, &permo, &rngo,
                          &shuffle, &wo, &epochs, &stats_o))
        return NULL;
    if (epochs < 1) {
        PyErr_Format(PyExc_ValueError, "epochs must be >= 1, got %zd", epochs);
        return NULL;
    }
    net_args na;
    fo_optim_hyper h;
    if (net_common(spec, po, xo, &na) < 0 || check_kind(kind) < 0 || parse_hyper(hyper_o, &h) < 0)
        return NULL;
    h.iteration = iteration;
    const fo_net *net = &na.net;
    const int tn = na.typenum;
    if (!PyArray_ISWRITEABLE(na.params)) {
        PyErr_SetString(PyExc_ValueError, "params is read-only but is written in place");
        return NULL;
    }
    if (batch < 1) {
        PyErr_Format(PyExc_ValueError, "batch_size must be >= 1, got %zd", batch);
        return NULL;
    }
    PyArrayObject *x = na.x;
    const npy_intp n = na.rows;
    PyArrayObject *y = exact_2d(yo, "y", tn, 0, n, (npy_intp)net->units[net->n_layers]);
    PyArrayObject *g = y ? exact_array(go, "grads", tn, 1, PyArray_SIZE(na.params)) : NULL;
    PyArrayObject *perm = g ? exact_array(permo, "perm", NPY_INT64, 1, n) : NULL;
    PyArrayObject *rng = perm ? exact_array(rngo, "rng_state", NPY_UINT64, 1, 4) : NULL;
    PyArrayObject *lr = rng ? exact_array(lro, "lr", NPY_FLOAT64, 0, -1) : NULL;
    const size_t rows = (size_t)(batch < n ? batch : (n > 0 ? n : 1));
    PyArrayObject *work = lr ? work_array(wo, &na, rows) : NULL;
    if (!work)
        return NULL;
    const npy_intp steps = n == 0 ? 0 : (n + batch - 1) / batch;
    if (PyArray_SIZE(lr) != 1 && (steps > PY_SSIZE_T_MAX / epochs || PyArray_SIZE(lr) != steps * epochs)) {
        PyErr_Format(PyExc_ValueError, "lr must have 1 or %zd (steps x epochs) entries, got %zd",
                     steps * epochs, PyArray_SIZE(lr));
        return NULL;
    }
    PyArrayObject *stats = NULL;
    if (stats_o != Py_None) {
        stats = exact_2d(stats_o, "stats", NPY_FLOAT64, 1, epochs, 4);
        if (!stats)
            return NULL;
    } else if (epochs > 1) {
        PyErr_SetString(PyExc_ValueError, "stats is needed for more than one epoch");
        return NULL;
    }
    int used[FO_MAX_SLOTS];
    fo_optim_slots_used(kind, &h, used);
    PyArrayObject *arrs[6 + FO_MAX_SLOTS + 3] = {na.params, g, perm, rng, work, stats};
    const char *names[6 + FO_MAX_SLOTS + 3] = {"params", "grads", "perm", "rng_state", "work", "stats"};
    static const char *slot_names[FO_MAX_SLOTS] = {"slots[0]", "slots[1]", "slots[2]"};
    void *slot[FO_MAX_SLOTS] = {NULL, NULL, NULL};
    if (PyTuple_GET_SIZE(slots_o) != FO_MAX_SLOTS) {
        PyErr_Format(PyExc_TypeError, "slots must be a %d-tuple", FO_MAX_SLOTS);
        return NULL;
    }
    int na_ = 6;
    for (int k = 0; k < FO_MAX_SLOTS; k++) {
        if (!used[k])
            continue;
        PyArrayObject *s = exact_array(PyTuple_GET_ITEM(slots_o, k), slot_names[k], tn, 1,
                                       PyArray_SIZE(na.params));
        if (!s)
            return NULL;
        slot[k] = PyArray_DATA(s);
        arrs[na_] = s;
        names[na_++] = slot_names[k];
    }
    const int n_out = na_;
    arrs[na_] = x;
    names[na_++] = "x";
    arrs[na_] = y;
    names[na_++] = "y";
    arrs[na_] = lr;
    names[na_++] = "lr";
    if (check_disjoint(arrs, names, n_out, na_) < 0)
        return NULL;
    const double *lrp = PyArray_DATA(lr);
    for (npy_intp i = 0; i < PyArray_SIZE(lr); i++) {
        if (!(lrp[i] >= 0) || isinf(lrp[i])) {
            PyErr_Format(PyExc_ValueError, "lr[%zd] must be finite and >= 0", i);
            return NULL;
        }
    }
    fo_stats one, *per_epoch = stats ? (fo_stats *)PyMem_Malloc(epochs * sizeof(fo_stats)) : &one;
    if (!per_epoch)
        return PyErr_NoMemory();
    size_t done = 0;
    fo_rng state;
    memcpy(state.s, PyArray_DATA(rng), sizeof state.s);
    Py_BEGIN_ALLOW_THREADS
    if (tn == NPY_FLOAT32)
        done = fo_train_epochs_f32(PyArray_DATA(na.params), PyArray_DATA(g), (float **)slot, kind,
                                   &h, lrp, PyArray_SIZE(lr), PyArray_DATA(x), PyArray_DATA(y), n,
                                   batch, net, PyArray_DATA(perm), &state, shuffle,
                                   PyArray_DATA(work), epochs, per_epoch);
    else
        done = fo_train_epochs_f64(PyArray_DATA(na.params), PyArray_DATA(g), (double **)slot, kind,
                                   &h, lrp, PyArray_SIZE(lr), PyArray_DATA(x), PyArray_DATA(y), n,
                                   batch, net, PyArray_DATA(perm), &state, shuffle,
                                   PyArray_DATA(work), epochs, per_epoch);
    Py_END_ALLOW_THREADS
    memcpy(PyArray_DATA(rng), state.s, sizeof state.s);
    fo_stats total = {0, 0, 0, 0};
    for (Py_ssize_t e = 0; e < epochs; e++) {
        const fo_stats *st = &per_epoch[e];
        total.loss += st->loss;
        total.sse += st->sse;
        total.sae += st->sae;
        total.penalty += st->penalty;
        if (stats) {
            double *row = (double *)PyArray_GETPTR2(stats, e, 0);
            row[0] = st->loss;
            row[1] = st->sse;
            row[2] = st->sae;
            row[3] = st->penalty;
        }
    }
    if (per_epoch != &one)
        PyMem_Free(per_epoch);
    return Py_BuildValue("ndddd", (Py_ssize_t)done, total.loss, total.sse, total.sae, total.penalty);
}

/* ------------------------------------------------------------------ */
/* linear regression (article 000)                                     */
/* ------------------------------------------------------------------ */

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

static PyObject *py_rng_seed(PyObject *self, PyObject *args)
{
    PyObject *so;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OK", &so, &seed))
        return NULL;
    PyArrayObject *s = exact_array(so, "rng_state", NPY_UINT64, 1, 4);
    if (!s)
        return NULL;
    fo_rng r;
    fo_rng_seed(&r, (uint64_t)seed);
    memcpy(PyArray_DATA(s), r.s, sizeof r.s);
    Py_RETURN_NONE;
}

static PyObject *py_shuffle(PyObject *self, PyObject *args)
{
    PyObject *po, *so;
    if (!PyArg_ParseTuple(args, "OO", &po, &so))
        return NULL;
    PyArrayObject *p = exact_array(po, "perm", NPY_INT64, 1, -1);
    PyArrayObject *s = p ? exact_array(so, "rng_state", NPY_UINT64, 1, 4) : NULL;
    if (!s)
        return NULL;
    fo_rng r;
    memcpy(r.s, PyArray_DATA(s), sizeof r.s);
    fo_shuffle(PyArray_DATA(p), (size_t)PyArray_SIZE(p), &r);
    memcpy(PyArray_DATA(s), r.s, sizeof r.s);
    Py_RETURN_NONE;
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

static PyMethodDef methods[] = {
    {"optim_update", (PyCFunction)(void (*)(void))py_optim_update, METH_FASTCALL, optim_update_doc},
    {"gemm", (PyCFunction)(void (*)(void))py_gemm, METH_VARARGS | METH_KEYWORDS, gemm_doc},
    {"dense_forward", py_dense_forward, METH_VARARGS, dense_forward_doc},
    {"dense_backward", py_dense_backward, METH_VARARGS, dense_backward_doc},
    {"mse", py_mse, METH_VARARGS, mse_doc},
    {"all_finite", py_all_finite, METH_O,
     "all_finite(a) -> True if no element of a C-contiguous float32/float64 array is NaN or inf"},
    {"net_sizes", py_net_sizes, METH_VARARGS,
     "net_sizes(spec, batch_rows) -> (number of parameters, workspace elements)"},
    {"net_forward", py_net_forward, METH_VARARGS, net_forward_doc},
    {"net_gradients", py_net_gradients, METH_VARARGS, net_gradients_doc},
    {"train_epoch", py_train_epoch, METH_VARARGS, train_epoch_doc},
    {"linear_gradient", py_linear_gradient, METH_VARARGS, linear_gradient_doc},
    {"linear_gd", py_linear_gd, METH_VARARGS, linear_gd_doc},
    {"rng_seed", py_rng_seed, METH_VARARGS, "rng_seed(state, seed): seed a uint64[4] xoshiro256** state"},
    {"shuffle", py_shuffle, METH_VARARGS, "shuffle(perm, state): Fisher-Yates shuffle of an int64 array"},
    {"blas_threshold", py_blas_threshold, METH_VARARGS,
     "blas_threshold([n]) -> previous value; products of >= n multiply-adds use BLAS"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_core",
                                       "fastopt's C kernels (see fastopt.reference for their twins)",
                                       -1, methods};

PyMODINIT_FUNC PyInit__core(void)
{
    import_array();
    PyObject *np = PyImport_ImportModule("numpy");
    if (!np)
        return NULL;
    np_shares_memory = PyObject_GetAttrString(np, "shares_memory");
    Py_DECREF(np);
    if (!np_shares_memory)
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
#ifdef FO_HAVE_BLAS
    PyModule_AddIntConstant(m, "HAVE_BLAS", 1);
#else
    PyModule_AddIntConstant(m, "HAVE_BLAS", 0);
#endif
    PyModule_AddIntConstant(m, "SGD", FO_SGD);
    PyModule_AddIntConstant(m, "ADAGRAD", FO_ADAGRAD);
    PyModule_AddIntConstant(m, "RMSPROP", FO_RMSPROP);
    PyModule_AddIntConstant(m, "ADAM", FO_ADAM);
    PyModule_AddIntConstant(m, "LINEAR", FO_LINEAR);
    PyModule_AddIntConstant(m, "RELU", FO_RELU);
    PyModule_AddIntConstant(m, "SIGMOID", FO_SIGMOID);
    PyModule_AddIntConstant(m, "TANH", FO_TANH);
    return m;
}
