/*
 * bind_optim.c - the optimizer binding: one in-place step over a list of variables.
 */
#include "binding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

PyMethodDef fo_optim_methods[] = {
    {"optim_update", (PyCFunction)(void (*)(void))py_optim_update, METH_FASTCALL, optim_update_doc},
    {NULL, NULL, 0, NULL}};
