/*
 * bind_optim.c - the optimizer bindings.
 *
 *   OptimizerBase.apply_gradients(grads_and_vars)   the C base class of
 *       fastopt.optimizers.Optimizer, whose method is the fast path for
 *       arguments that need no conversion (exact dtype, C-contiguous, aligned,
 *       same shape, state already known), all checks in C; anything else goes
 *       to optimizer._apply_thorough(pairs), the thorough path.
 *   optim_update(kind, variables, grads, slots, hyper, learning_rate, step, commits)
 *       the thorough path's C step: converts, checks and names every argument.
 *
 * Both run the same kernel (fo_optim_update) with the same hyperparameters, so
 * they give the same bits.  A step is all-or-nothing: every argument is checked
 * first, then (with the GIL released) every variable is stepped, then the step
 * counter is incremented, all in one C call that no KeyboardInterrupt can split.
 */
#include "binding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FO_STACK_VARS 8 /* updates of up to this many variables need no heap */
#define FO_FAST_VARS 16 /* the fast path takes up to this many variables */
/* steps of fewer elements keep the GIL (releasing and taking it back costs
 * more than such a step; NumPy draws the line near 500 elements) */
#define FO_GIL_FREE_MIN 4096

static int fast_enabled = 1; /* _core.optim_fast_path(False) forces the thorough path */

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

/* the ndarray that owns the memory an array covers: the last ndarray of its
 * base chain (NumPy collapses chains, so this is one or two steps) */
static PyObject *memory_owner(PyArrayObject *a)
{
    PyObject *o = (PyObject *)a;
    while (PyArray_Check(o)) {
        PyObject *b = PyArray_BASE((PyArrayObject *)o);
        if (b == NULL || !PyArray_Check(b))
            break;
        o = b;
    }
    return o;
}

/* the dtype key of the state: typenum, and whether the bytes are swapped */
static long dtype_key(PyArrayObject *a)
{
    return 2L * PyArray_TYPE(a) + (PyArray_ISNOTSWAPPED(a) ? 0 : 1);
}

/* a weak reference's object (only compared, never used), or NULL when dead */
static PyObject *weak_target(PyObject *ref)
{
    if (!PyWeakref_Check(ref))
        return NULL;
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *o;
    if (PyWeakref_GetRef(ref, &o) <= 0) {
        PyErr_Clear();
        return NULL;
    }
    Py_DECREF(o); /* the caller holds the array whose owner it is compared with */
    return o;
#else
    PyObject *o = PyWeakref_GET_OBJECT(ref);
    return o == Py_None ? NULL : o;
#endif
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

/* ValueError for a hyperparameter that does not survive the variable's dtype */
static int check_hyper_dtype(int kind, int code, const fo_optim_hyper *h)
{
    const char *name;
    double value;
    int r = fo_optim_check_hyper(kind, code, h, &name, &value);
    if (r == 0)
        return 0;
    PyObject *v = PyFloat_FromDouble(value);
    if (v == NULL)
        return -1;
    PyErr_Format(PyExc_ValueError,
                 r == 1 ? "%s = %R overflows float32 (the largest float32 is about 3.4e38); "
                          "use float64 variables or a smaller value"
                        : "%s = %R underflows to 0 in float32 (the smallest positive float32 is "
                          "about 1.4e-45); use float64 variables or a larger value",
                 name, v);
    Py_DECREF(v);
    return -1;
}

/* the step count as an int64 (1,) array the call increments, or NULL with an error */
static PyArrayObject *step_array(PyObject *o)
{
    PyArrayObject *s = exact_array(o, "step", NPY_INT64, 1, 1);
    if (s == NULL)
        return NULL;
    const int64_t v = *(int64_t *)PyArray_DATA(s);
    if (v < 0 || v >= FO_MAX_STEP) {
        PyErr_Format(PyExc_ValueError, "iterations = %lld: one more step would leave [0, 2**53]",
                     (long long)v);
        return NULL;
    }
    return s;
}

/* commits: None, or a list of (dict, key, value), set in order once the step is
 * sure to run; checked before anything is written */
static int check_commits(PyObject *commits)
{
    if (commits == Py_None)
        return 0;
    if (!PyList_Check(commits)) {
        PyErr_SetString(PyExc_TypeError, "commits must be a list of (dict, key, value)");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(commits); i++) {
        PyObject *c = PyList_GET_ITEM(commits, i);
        if (!PyTuple_Check(c) || PyTuple_GET_SIZE(c) != 3 || !PyDict_Check(PyTuple_GET_ITEM(c, 0))) {
            PyErr_SetString(PyExc_TypeError, "commits must be a list of (dict, key, value)");
            return -1;
        }
    }
    return 0;
}

static int apply_commits(PyObject *commits)
{
    if (commits == Py_None)
        return 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(commits); i++) {
        PyObject *c = PyList_GET_ITEM(commits, i);
        PyObject *d = PyTuple_GET_ITEM(c, 0), *k = PyTuple_GET_ITEM(c, 1), *v = PyTuple_GET_ITEM(c, 2);
        if ((v == Py_None ? PyDict_DelItem(d, k) : PyDict_SetItem(d, k, v)) < 0) {
            if (v != Py_None || !PyErr_ExceptionMatches(PyExc_KeyError))
                return -1;
            PyErr_Clear(); /* deleting what is already gone */
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* the thorough path                                                   */
/* ------------------------------------------------------------------ */

PyDoc_STRVAR(optim_update_doc,
             "optim_update(kind, variables, grads, slots, hyper, learning_rate, step, commits=None)\n"
             "    -> True if every variable stepped is finite afterwards\n\n"
             "One optimizer step over every variable, in place.  slots[i] is a tuple of the\n"
             "variable's state arrays (3 or MAX_SLOTS entries, None where unused); a pair whose\n"
             "gradient is None is skipped.  step is the count of steps taken: an int, or an int64\n"
             "array of shape (1,) that is incremented with the step.  commits, a list of\n"
             "(dict, key, value), is applied (value None: deleted) once every argument is known\n"
             "to be valid.  Nothing is written unless every argument is valid.");

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

/* a slot of variable i: an ndarray of the variable's native dtype and size,
 * writeable unless `readonly`; C-contiguous and aligned, or of the variable's
 * shape (then stepped through a C-ordered copy written back).  Borrowed. */
static PyArrayObject *slot_array(PyObject *o, PyArrayObject *va, Py_ssize_t i, int k, int readonly)
{
    char name[48];
    snprintf(name, sizeof name, "slots[%zd][%d]", i, k);
    if (!PyArray_Check(o) || PyArray_TYPE((PyArrayObject *)o) != PyArray_TYPE(va) ||
        !PyArray_ISNOTSWAPPED((PyArrayObject *)o)) {
        PyArray_Descr *want = PyArray_DescrFromType(PyArray_TYPE(va));
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray of dtype %S", name,
                     (PyObject *)want);
        Py_DECREF(want);
        return NULL;
    }
    PyArrayObject *s = (PyArrayObject *)o;
    if (!readonly && !PyArray_ISWRITEABLE(s)) {
        PyErr_Format(PyExc_ValueError, "%s is read-only but is written in place", name);
        return NULL;
    }
    if (PyArray_SIZE(s) != PyArray_SIZE(va)) {
        PyErr_Format(PyExc_ValueError, "%s must have %zd elements, got %zd", name,
                     PyArray_SIZE(va), PyArray_SIZE(s));
        return NULL;
    }
    if (!(PyArray_IS_C_CONTIGUOUS(s) && PyArray_ISALIGNED(s)) && !PyArray_SAMESHAPE(s, va)) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous or have the variable's shape", name);
        return NULL;
    }
    return s;
}

/* a C-contiguous aligned native array for writing `a` in place: `a` itself
 * (new reference) or a copy written back by PyArray_ResolveWritebackIfCopy */
static PyArrayObject *inout_array(PyArrayObject *a)
{
    if (PyArray_ISCARRAY(a) && PyArray_ISNOTSWAPPED(a))
        return (PyArrayObject *)Py_NewRef((PyObject *)a);
    PyArray_Descr *d = PyArray_DescrFromType(PyArray_TYPE(a));
    return (PyArrayObject *)PyArray_FromArray(a, d, NPY_ARRAY_INOUT_ARRAY2);
}

static PyObject *py_optim_update(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 && nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "optim_update(kind, variables, grads, slots, hyper, "
                                         "learning_rate, step, commits=None)");
        return NULL;
    }
    int kind;
    fo_optim_hyper h;
    if (parse_code(args[0], "optimizer kind", FO_N_OPTIM, &kind) < 0 || parse_hyper(args[4], &h) < 0)
        return NULL;
    if (parse_real(args[5], "learning_rate", &h.learning_rate) < 0)
        return NULL;
    if (!(h.learning_rate >= 0) || !isfinite(h.learning_rate)) {
        PyErr_Format(PyExc_ValueError, "learning_rate must be finite and >= 0, got %R", args[5]);
        return NULL;
    }
    PyArrayObject *step = NULL;
    if (PyLong_Check(args[6])) {
        long long it;
        if (parse_int(args[6], "iteration", 0, FO_MAX_STEP - 1, &it) < 0)
            return NULL;
        h.iteration = it;
    } else {
        if (!(step = step_array(args[6])))
            return NULL;
        h.iteration = *(int64_t *)PyArray_DATA(step);
    }
    PyObject *commits = nargs == 8 ? args[7] : Py_None;
    if (check_commits(commits) < 0)
        return NULL;
    int used[FO_MAX_SLOTS];
    fo_optim_slots_used(kind, &h, used);

    PyObject *vars = NULL, *grads = NULL, *slots = NULL, *result = NULL;
    PyArrayObject *vin_s[FO_STACK_VARS], *gin_s[FO_STACK_VARS];
    PyArrayObject *sarg_s[FO_STACK_VARS * FO_MAX_SLOTS], *sin_s[FO_STACK_VARS * FO_MAX_SLOTS];
    fo_optim_buffers bufs_s[FO_STACK_VARS];
    written w_s[FO_STACK_VARS * (FO_MAX_SLOTS + 1)];
    PyArrayObject **vin = vin_s, **gin = gin_s, **sin = sin_s; /* new references */
    PyArrayObject **sarg = sarg_s; /* the caller's slot arrays, borrowed */
    fo_optim_buffers *bufs = bufs_s;
    written *w = w_s;
    Py_ssize_t n = 0;
    int checked[2] = {0, 0}; /* dtypes whose hyperparameters were checked */

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
        sin = PyMem_Calloc(n * FO_MAX_SLOTS, sizeof(*sin));
        sarg = PyMem_Calloc(n * FO_MAX_SLOTS, sizeof(*sarg));
        bufs = PyMem_Calloc(n, sizeof(*bufs));
        w = PyMem_Calloc(n * (FO_MAX_SLOTS + 1), sizeof(*w));
        if (!vin || !gin || !sin || !sarg || !bufs || !w) {
            PyErr_NoMemory();
            goto fail;
        }
    } else {
        memset(vin_s, 0, sizeof vin_s);
        memset(gin_s, 0, sizeof gin_s);
        memset(sin_s, 0, sizeof sin_s);
        memset(sarg_s, 0, sizeof sarg_s);
    }

    Py_ssize_t nb = 0, nw = 0; /* variables with a gradient: bufs[0..nb) */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PySequence_Fast_GET_ITEM(vars, i);
        PyObject *g = PySequence_Fast_GET_ITEM(grads, i);
        PyObject *s = PySequence_Fast_GET_ITEM(slots, i);
        if (g == Py_None)
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
            /* compute_gradients returns read-only gradients: a read-only
             * "variable" next to a writable "gradient" is a swapped pair */
            if (PyArray_Check(g) && PyArray_ISWRITEABLE((PyArrayObject *)g))
                PyErr_Format(PyExc_ValueError,
                             "variables[%zd] is read-only; it is updated in place. grads[%zd] is "
                             "a writable array: were the pairs swapped? apply_gradients takes "
                             "zip(grads, variables), gradient first, as in Keras",
                             i, i);
            else
                PyErr_Format(PyExc_ValueError, "variables[%zd] is read-only; it is updated in place",
                             i);
            goto fail;
        }
        if (!PyArray_IS_C_CONTIGUOUS(va)) {
            /* elements that share memory (stride 0, as_strided) cannot each be updated */
            int ov = fo_internal_overlap(PyArray_NDIM(va), PyArray_DIMS(va), PyArray_STRIDES(va),
                                         PyArray_ITEMSIZE(va), FO_OVERLAP_MAX_WORK);
            if (ov) {
                PyErr_Format(PyExc_ValueError,
                             ov > 0 ? "variables[%zd] has elements that share memory; it cannot be "
                                      "updated in place"
                                    : "variables[%zd] has strides too irregular to rule out "
                                      "elements that share memory; pass a copy",
                             i);
                goto fail;
            }
        }
        if (!checked[code]) {
            if (check_hyper_dtype(kind, code, &h) < 0)
                goto fail;
            checked[code] = 1;
        }
        /* the gradient: any floating array that casts safely to the variable's dtype */
        if (!(gin[i] = gradient_array(g, va, i)))
            goto fail;
        /* the state: arrays fastopt allocated, one per used slot */
        char sname[32];
        snprintf(sname, sizeof sname, "slots[%zd]", i);
        PyObject *items[FO_MAX_SLOTS];
        if (parse_slot_tuple(s, sname, items) < 0)
            goto fail;
        fo_optim_buffers *bi = &bufs[nb++];
        bi->dtype = code;
        bi->n = (size_t)PyArray_SIZE(va);
        for (int k = 0; k < FO_MAX_SLOTS; k++) {
            bi->slot[k] = NULL;
            if (!used[k])
                continue;
            const int mask = k == FO_SLOT_DECAY_MASK;
            if (mask && items[k] == Py_None)
                continue; /* no mask for this variable: weight decay everywhere */
            PyArrayObject *sa = slot_array(items[k], va, i, k, mask);
            if (sa == NULL)
                goto fail;
            sarg[i * FO_MAX_SLOTS + k] = sa;
            if (mask)
                continue; /* read only */
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
    int clash_kind = 0;
    for (Py_ssize_t a = 0; a < nw; a++) {
        for (Py_ssize_t b = a + 1; b < nw && w[b].lo < w[a].hi; b++) {
            int ov = overlaps(w[a].arr, w[b].arr);
            if (ov == -1)
                goto fail;
            /* name the caller's variables rather than their state where both clash */
            if (ov && (!clash[0] || (w[a].slot < 0 && w[b].slot < 0))) {
                clash[0] = &w[a];
                clash[1] = &w[b];
                clash_kind = ov;
            }
        }
    }
    if (clash[0]) {
        char da[48], db[48];
        const written *x = clash[0]->var <= clash[1]->var ? clash[0] : clash[1];
        describe(da, sizeof da, x);
        describe(db, sizeof db, x == clash[0] ? clash[1] : clash[0]);
        PyErr_Format(PyExc_ValueError,
                     clash_kind == -2 ? "%s and %s may share memory (too irregular strides to "
                                        "rule it out); each is updated in place, pass copies"
                                      : "%s and %s share memory; each is updated in place",
                     da, db);
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
            if (copy == -1)
                goto fail;
        }
        if (copy) {
            PyArrayObject *c = (PyArrayObject *)PyArray_NewCopy(gin[i], NPY_CORDER);
            if (c == NULL)
                goto fail;
            Py_SETREF(gin[i], c);
        }
    }

    /* the variables and slots: written through a C-ordered copy that is written
     * back (WRITEBACKIFCOPY) when strided, unaligned or byte-swapped */
    for (Py_ssize_t i = 0, b = 0; i < n; i++) {
        PyArrayObject *va = (PyArrayObject *)PySequence_Fast_GET_ITEM(vars, i);
        if (gin[i] == NULL)
            continue;
        if (!(vin[i] = inout_array(va)))
            goto fail;
        bufs[b].var = PyArray_DATA(vin[i]);
        bufs[b].grad = PyArray_DATA(gin[i]);
        for (int k = 0; k < FO_MAX_SLOTS; k++) {
            const Py_ssize_t j = i * FO_MAX_SLOTS + k;
            if (sarg[j] == NULL)
                continue;
            if (!(sin[j] = inout_array(sarg[j])))
                goto fail;
            bufs[b].slot[k] = PyArray_DATA(sin[j]);
        }
        b++;
    }

    /* every argument is valid: register the new state, step, count the step */
    if (apply_commits(commits) < 0)
        goto fail;
    int finite;
    size_t total = 0;
    for (Py_ssize_t b = 0; b < nb; b++)
        total += bufs[b].n;
    if (total < FO_GIL_FREE_MIN) {
        finite = fo_optim_update(kind, (size_t)nb, bufs, &h);
    } else {
        Py_BEGIN_ALLOW_THREADS
        finite = fo_optim_update(kind, (size_t)nb, bufs, &h);
        Py_END_ALLOW_THREADS
    }
    for (Py_ssize_t j = 0; j < n * FO_MAX_SLOTS; j++) {
        if (sin[j] && PyArray_ResolveWritebackIfCopy(sin[j]) < 0)
            goto fail;
        Py_CLEAR(sin[j]);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (vin[i] && PyArray_ResolveWritebackIfCopy(vin[i]) < 0)
            goto fail;
        Py_CLEAR(vin[i]);
    }
    if (step)
        *(int64_t *)PyArray_DATA(step) += 1;
    result = PyBool_FromLong(finite);

fail:
    for (Py_ssize_t i = 0; vin && i < n; i++) {
        if (vin[i]) {
            PyArray_DiscardWritebackIfCopy(vin[i]);
            Py_DECREF(vin[i]);
        }
        for (int k = 0; sin && k < FO_MAX_SLOTS; k++) {
            PyArrayObject *sk = sin[i * FO_MAX_SLOTS + k];
            if (sk) {
                PyArray_DiscardWritebackIfCopy(sk);
                Py_DECREF(sk);
            }
        }
    }
    for (Py_ssize_t i = 0; gin && i < n; i++)
        Py_XDECREF(gin[i]);
    if (vin != vin_s) {
        PyMem_Free(vin);
        PyMem_Free(gin);
        PyMem_Free(sin);
        PyMem_Free(sarg);
        PyMem_Free(bufs);
        PyMem_Free(w);
    }
    Py_XDECREF(vars);
    Py_XDECREF(grads);
    Py_XDECREF(slots);
    return result;
}

/* ------------------------------------------------------------------ */
/* the fast path                                                       */
/* ------------------------------------------------------------------ */

static PyObject *s_fast, *s_thorough, *s_acquire, *s_release, *s_scheduled, *s_diverged;

static int intern_names(void)
{
    if (s_fast)
        return 0;
    s_fast = PyUnicode_InternFromString("_fast");
    s_thorough = PyUnicode_InternFromString("_apply_thorough");
    s_acquire = PyUnicode_InternFromString("acquire");
    s_release = PyUnicode_InternFromString("release");
    s_scheduled = PyUnicode_InternFromString("_scheduled");
    s_diverged = PyUnicode_InternFromString("_on_divergence");
    return s_fast && s_thorough && s_acquire && s_release && s_scheduled && s_diverged ? 0 : -1;
}

/* the state of a C-contiguous variable, if the thorough path registered it:
 * optimizer._bindings maps the variable's address to a tuple of bindings
 * (owner_ref, dtype_key, nbytes, layout, slots, ...); the one for this memory
 * has layout None (C order), this dtype and size, and the variable's owner,
 * alive and still covering it.  Borrowed slots tuple, or NULL (no error set). */
static PyObject *known_slots(PyObject *bindings, PyArrayObject *v)
{
    PyObject *key = PyLong_FromVoidPtr(PyArray_DATA(v));
    if (key == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *list = PyDict_GetItemWithError(bindings, key);
    Py_DECREF(key);
    if (list == NULL || !PyTuple_Check(list)) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *owner = memory_owner(v);
    const long dk = dtype_key(v);
    const Py_ssize_t nbytes = PyArray_NBYTES(v);
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(list); j++) {
        PyObject *b = PyTuple_GET_ITEM(list, j);
        if (!PyTuple_Check(b) || PyTuple_GET_SIZE(b) < 5 || PyTuple_GET_ITEM(b, 3) != Py_None)
            continue;
        if (PyLong_AsLong(PyTuple_GET_ITEM(b, 1)) != dk ||
            PyLong_AsSsize_t(PyTuple_GET_ITEM(b, 2)) != nbytes) {
            PyErr_Clear();
            continue;
        }
        if (weak_target(PyTuple_GET_ITEM(b, 0)) != owner)
            continue;
        if (PyArray_Check(owner)) { /* the owner still covers the memory (not resized) */
            char *lo, *hi;
            extent((PyArrayObject *)owner, &lo, &hi);
            if (PyArray_BYTES(v) < lo || PyArray_BYTES(v) + nbytes > hi)
                continue;
        }
        PyObject *slots = PyTuple_GET_ITEM(b, 4);
        return PyTuple_Check(slots) && PyTuple_GET_SIZE(slots) == FO_MAX_SLOTS ? slots : NULL;
    }
    return NULL;
}

/* lock.acquire() / lock.release(), through the lock type's method descriptors
 * (looked up once) rather than a method lookup per call */
static PyTypeObject *lock_type;
static PyObject *lock_acquire, *lock_release;

static int lock_call(PyObject *lock, PyObject *name)
{
    PyObject *r;
    if (lock_type == NULL) {
        lock_acquire = PyObject_GetAttr((PyObject *)Py_TYPE(lock), s_acquire);
        lock_release = lock_acquire ? PyObject_GetAttr((PyObject *)Py_TYPE(lock), s_release) : NULL;
        if (lock_release == NULL) {
            Py_CLEAR(lock_acquire);
            return -1;
        }
        lock_type = (PyTypeObject *)Py_NewRef((PyObject *)Py_TYPE(lock));
    }
    if (Py_TYPE(lock) == lock_type)
        r = PyObject_Vectorcall(name == s_acquire ? lock_acquire : lock_release, &lock, 1, NULL);
    else
        r = PyObject_CallMethodNoArgs(lock, name);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* a new list of the tuples (g[i], v[i]), i < n */
static PyObject *pairs_list(PyObject *const *g, PyObject *const *v, Py_ssize_t n)
{
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
        PyObject *p = PyTuple_Pack(2, g[i], v[i]);
        if (p == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, i, p);
    }
    return list;
}

/* Read the iterator `it` of apply_gradients' pairs.  While every item is a
 * tuple of two and there are at most FO_FAST_VARS (and `fast`), their items go
 * to g[], v[] (new references, *n of them) and *pairs stays NULL; otherwise
 * *pairs is a new list of every pair (those read, then the rest) and *n is 0.
 * -1 with an exception if iterating fails (nothing is kept then). */
static int read_pairs(PyObject *it, int fast, PyObject **g, PyObject **v, Py_ssize_t *n,
                      PyObject **pairs)
{
    PyObject *p, *list = NULL;
    *n = 0;
    *pairs = NULL;
    while ((p = PyIter_Next(it)) != NULL) {
        if (list == NULL && fast && *n < FO_FAST_VARS && PyTuple_CheckExact(p) &&
            PyTuple_GET_SIZE(p) == 2) {
            g[*n] = Py_NewRef(PyTuple_GET_ITEM(p, 0));
            v[*n] = Py_NewRef(PyTuple_GET_ITEM(p, 1));
            ++*n;
            Py_DECREF(p); /* the zip may reuse it */
            continue;
        }
        if (list == NULL) {
            list = pairs_list(g, v, *n);
            for (Py_ssize_t i = 0; i < *n; i++) {
                Py_DECREF(g[i]);
                Py_DECREF(v[i]);
            }
            *n = 0;
        }
        if (list == NULL || PyList_Append(list, p) < 0) {
            Py_DECREF(p);
            Py_XDECREF(list);
            return -1;
        }
        Py_DECREF(p);
    }
    if (PyErr_Occurred()) {
        for (Py_ssize_t i = 0; i < *n; i++) {
            Py_DECREF(g[i]);
            Py_DECREF(v[i]);
        }
        *n = 0;
        Py_XDECREF(list);
        return -1;
    }
    *pairs = list;
    return 0;
}


/* Built-in schedules evaluated here, without Python.  Optimizer._refresh_fast
 * puts (code, schedule) in _fast for a schedule whose Python formula uses only
 * IEEE-exact double operations (+ - * / sqrt floor), so the same operations in
 * the same order give the same bits as float(schedule(step)); the parameters
 * are read from the schedule at each step (it may be changed) and must be
 * floats (staircase a bool), else the schedule is called as any other.
 * (Schedules with pow/cos/log keep the Python call: NumPy may evaluate those
 * with other code (SIMD) than C's libm, not bit for bit the same.) */
enum { FO_SCHED_INVERSE_SQRT = 1, FO_SCHED_INVERSE_TIME = 2 };

typedef struct {
    int code;
    double p[3];
    int staircase;
} fo_sched;

static PyObject *s_initial, *s_beta, *s_decay_steps, *s_decay_rate, *s_staircase;

static int sched_float(PyObject *obj, PyObject *name, double *out)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) {
        PyErr_Clear();
        return 0;
    }
    const int ok = PyFloat_CheckExact(v);
    if (ok)
        *out = PyFloat_AS_DOUBLE(v);
    Py_DECREF(v);
    return ok;
}

/* 1 and *s filled if lr is (code, schedule) with float parameters, else 0 (no error set) */
static int sched_read(PyObject *lr, fo_sched *s)
{
    if (!PyTuple_CheckExact(lr) || PyTuple_GET_SIZE(lr) != 2 || !PyLong_CheckExact(PyTuple_GET_ITEM(lr, 0)))
        return 0;
    if (s_initial == NULL) {
        s_initial = PyUnicode_InternFromString("initial_learning_rate");
        s_beta = PyUnicode_InternFromString("beta");
        s_decay_steps = PyUnicode_InternFromString("decay_steps");
        s_decay_rate = PyUnicode_InternFromString("decay_rate");
        s_staircase = PyUnicode_InternFromString("staircase");
        if (!s_initial || !s_beta || !s_decay_steps || !s_decay_rate || !s_staircase) {
            PyErr_Clear();
            Py_CLEAR(s_initial);
            return 0;
        }
    }
    PyObject *obj = PyTuple_GET_ITEM(lr, 1);
    s->code = (int)PyLong_AsLong(PyTuple_GET_ITEM(lr, 0));
    s->staircase = 0;
    switch (s->code) {
    case FO_SCHED_INVERSE_SQRT:
        return sched_float(obj, s_initial, &s->p[0]) && sched_float(obj, s_beta, &s->p[1]);
    case FO_SCHED_INVERSE_TIME: {
        if (!sched_float(obj, s_initial, &s->p[0]) || !sched_float(obj, s_decay_steps, &s->p[1]) ||
            !sched_float(obj, s_decay_rate, &s->p[2]))
            return 0;
        PyObject *st = PyObject_GetAttr(obj, s_staircase);
        if (st == NULL) {
            PyErr_Clear();
            return 0;
        }
        const int ok = st == Py_True || st == Py_False;
        s->staircase = st == Py_True;
        Py_DECREF(st);
        return ok;
    }
    default:
        PyErr_Clear();
        return 0;
    }
}

/* the schedule's rate at step `step` (exact in a double: step <= 2**53) */
static double sched_value(const fo_sched *s, int64_t step)
{
    const double t = (double)step;
    switch (s->code) {
    case FO_SCHED_INVERSE_SQRT: /* initial_learning_rate / sqrt(1.0 + beta * step) */
        return s->p[0] / sqrt(1.0 + s->p[1] * t);
    case FO_SCHED_INVERSE_TIME: { /* initial / (1.0 + decay_rate * p), p = step / decay_steps */
        double p = t / s->p[1];
        if (s->staircase)
            p = floor(p);
        return s->p[0] / (1.0 + s->p[2] * p);
    }
    default:
        return NAN;
    }
}

PyDoc_STRVAR(optim_schedule_value_doc,
             "optim_schedule_value(fast_lr, step) -> float or None\n\n"
             "The learning rate the fast path computes in C for optimizer._fast[2] =\n"
             "(code, schedule) at call `step`, or None when it would call the schedule.");

static PyObject *py_optim_schedule_value(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "optim_schedule_value(fast_lr, step)");
        return NULL;
    }
    const long long step = PyLong_AsLongLong(args[1]);
    if (step == -1 && PyErr_Occurred())
        return NULL;
    if (step < 0 || step > FO_MAX_STEP) {
        PyErr_Format(PyExc_ValueError, "step must be in [0, 2**53], got %lld", step);
        return NULL;
    }
    fo_sched s;
    if (!sched_read(args[0], &s))
        Py_RETURN_NONE;
    return PyFloat_FromDouble(sched_value(&s, (int64_t)step));
}

/* Whether the fast path must take the optimizer's lock for this step: 1, or 0
 * when the step is atomic for every other thread anyway, or -1 with an error.
 * It is when the GIL stays held from here to the end of the step (a constant
 * learning rate, so no Python code runs; fewer than FO_GIL_FREE_MIN elements,
 * so the update keeps the GIL) and no thread holds the lock: a thread that
 * holds it marked it locked while it had the GIL, and one that takes it now
 * can do nothing with the optimizer before it has the GIL back, after this
 * step.  Without a GIL (a free-threaded build), always 1. */
static PyObject *lock_locked;

static int must_lock(PyObject *lock, int python_free_lr, PyArrayObject *const *va, Py_ssize_t n)
{
#ifdef Py_GIL_DISABLED
    return 1;
#else
    if (!python_free_lr || lock_type == NULL || Py_TYPE(lock) != lock_type)
        return 1;
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        total += (size_t)PyArray_SIZE(va[i]);
    if (total >= FO_GIL_FREE_MIN)
        return 1;
    if (lock_locked == NULL && (lock_locked = PyObject_GetAttrString((PyObject *)lock_type, "locked")) == NULL)
        return -1;
    PyObject *r = PyObject_Vectorcall(lock_locked, &lock, 1, NULL);
    if (r == NULL)
        return -1;
    const int held = PyObject_IsTrue(r);
    Py_DECREF(r);
    return held; /* -1 on error, 1 if held, 0 if free */
#endif
}

/* Optimizer.apply_gradients.  Pairs of arrays that need no conversion (exact
 * ndarrays of the variable's dtype, C-contiguous, aligned, native byte order,
 * the same shape, a writable variable whose state the optimizer holds, no
 * memory shared) are stepped here, under optimizer._lock; anything else goes
 * to optimizer._apply_thorough(list of pairs), which converts, explains and
 * refuses. */
static PyObject *optim_apply(PyObject *opt, PyObject *gv)
{
    if (intern_names() < 0)
        return NULL;
    PyObject *pairs = NULL, *fast = NULL, *result = NULL;
    /* references held while Python code may run (a schedule): the arrays and slot tuples */
    PyObject *held[3 * FO_FAST_VARS];
    int nheld = 0;
    /* the pairs' items (owned): gi[i], vi[i] of the i-th (gradient, variable) pair */
    PyObject *gi[FO_FAST_VARS], *vi[FO_FAST_VARS];
    Py_ssize_t n = 0;
    if (PyList_CheckExact(gv) || PyTuple_CheckExact(gv)) {
        pairs = Py_NewRef(gv);
    } else {
        PyObject *it = PyObject_GetIter(gv);
        if (it == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_TypeError))
                return NULL;
            PyErr_Clear(); /* not iterable: the thorough path says what to pass */
            return PyObject_CallMethodOneArg(opt, s_thorough, gv);
        }
        /* a zip is consumed once.  Its (gradient, variable) tuples are read here and
         * only their items kept, so that the zip reuses its tuple; anything else
         * (another item, too many pairs) makes the list of pairs for the thorough path */
        if (read_pairs(it, fast_enabled, gi, vi, &n, &pairs) < 0) {
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(it);
    }
    if (pairs != NULL) {
        if (!fast_enabled || PySequence_Fast_GET_SIZE(pairs) < 1 ||
            PySequence_Fast_GET_SIZE(pairs) > FO_FAST_VARS)
            goto slow;
        for (; n < PySequence_Fast_GET_SIZE(pairs); n++) {
            PyObject *p = PySequence_Fast_GET_ITEM(pairs, n);
            if (!PyTuple_CheckExact(p) || PyTuple_GET_SIZE(p) != 2)
                goto slow;
            gi[n] = Py_NewRef(PyTuple_GET_ITEM(p, 0));
            vi[n] = Py_NewRef(PyTuple_GET_ITEM(p, 1));
        }
    }
    if (n < 1)
        goto slow;
    fast = PyObject_GetAttr(opt, s_fast);
    if (fast == NULL) {
        PyErr_Clear();
        goto slow;
    }
    /* optimizer._fast = (kind, hyper, learning rate (a float, a built-in schedule or
     * None), bindings, step, lock) */
    if (!PyTuple_Check(fast) || PyTuple_GET_SIZE(fast) != 6 ||
        !PyDict_Check(PyTuple_GET_ITEM(fast, 3)))
        goto slow;
    PyObject *bindings = PyTuple_GET_ITEM(fast, 3), *lock = PyTuple_GET_ITEM(fast, 5);
    PyObject *lr_o = PyTuple_GET_ITEM(fast, 2);
    PyArrayObject *va[FO_FAST_VARS], *ga[FO_FAST_VARS];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *g = gi[i], *v = vi[i];
        if (!PyArray_CheckExact(v) || !PyArray_CheckExact(g))
            goto slow;
        va[i] = (PyArrayObject *)v;
        ga[i] = (PyArrayObject *)g;
        if (dtype_code(PyArray_TYPE(va[i])) < 0 || !PyArray_ISCARRAY(va[i]) ||
            !PyArray_ISNOTSWAPPED(va[i]) || PyArray_TYPE(ga[i]) != PyArray_TYPE(va[i]) ||
            !PyArray_ISCARRAY_RO(ga[i]) || !PyArray_ISNOTSWAPPED(ga[i]) ||
            !PyArray_SAMESHAPE(ga[i], va[i]))
            goto slow;
    }
    fo_optim_hyper h;
    const long kind = PyLong_AsLong(PyTuple_GET_ITEM(fast, 0));
    PyObject *packed = PyTuple_GET_ITEM(fast, 1); /* optim_pack_hyper(optimizer._hyper) */
    if ((kind == -1 && PyErr_Occurred()) || kind < 0 || kind >= FO_N_OPTIM ||
        !PyBytes_CheckExact(packed) || PyBytes_GET_SIZE(packed) != (Py_ssize_t)sizeof h) {
        PyErr_Clear();
        goto slow;
    }
    memcpy(&h, PyBytes_AS_STRING(packed), sizeof h);
    PyObject *step_o = PyTuple_GET_ITEM(fast, 4);
    if (!PyArray_CheckExact(step_o) || PyArray_TYPE((PyArrayObject *)step_o) != NPY_INT64 ||
        PyArray_SIZE((PyArrayObject *)step_o) != 1 || !PyArray_ISCARRAY((PyArrayObject *)step_o))
        goto slow;
    int64_t *step = PyArray_DATA((PyArrayObject *)step_o);
    int used[FO_MAX_SLOTS];
    fo_optim_slots_used((int)kind, &h, used);

    /* from here on the optimizer is ours: its state, step count and learning rate */
    fo_sched sched;
    const int c_sched = sched_read(lr_o, &sched);
    const int locking = must_lock(lock, PyFloat_CheckExact(lr_o) || c_sched, va, n);
    if (locking < 0)
        goto done;
    if (locking && lock_call(lock, s_acquire) < 0)
        goto done; /* interrupted while waiting: nothing changed */
    fo_optim_buffers bufs[FO_FAST_VARS];
    struct {
        const char *lo, *hi;
    } wr[FO_FAST_VARS * FO_MAX_SLOTS], rd[FO_FAST_VARS];
    int nwr = 0, decline = 0;
    const int64_t it = *step;
    if (it < 0 || it >= FO_MAX_STEP)
        decline = 1;
    for (Py_ssize_t i = 0; i < n && !decline; i++) {
        PyObject *slots = known_slots(bindings, va[i]);
        if (slots == NULL) {
            decline = 1; /* a first step: the thorough path creates the state */
            break;
        }
        held[nheld++] = Py_NewRef((PyObject *)va[i]);
        held[nheld++] = Py_NewRef((PyObject *)ga[i]);
        held[nheld++] = Py_NewRef(slots);
        fo_optim_buffers *b = &bufs[i];
        b->dtype = dtype_code(PyArray_TYPE(va[i]));
        b->n = (size_t)PyArray_SIZE(va[i]);
        b->var = PyArray_DATA(va[i]);
        b->grad = PyArray_DATA(ga[i]);
        wr[nwr].lo = PyArray_BYTES(va[i]);
        wr[nwr++].hi = PyArray_BYTES(va[i]) + PyArray_NBYTES(va[i]);
        rd[i].lo = PyArray_BYTES(ga[i]);
        rd[i].hi = PyArray_BYTES(ga[i]) + PyArray_NBYTES(ga[i]);
        for (int k = 0; k < FO_MAX_SLOTS; k++) {
            b->slot[k] = NULL;
            if (!used[k])
                continue;
            PyObject *s = PyTuple_GET_ITEM(slots, k);
            if (k == FO_SLOT_DECAY_MASK && s == Py_None)
                continue;
            PyArrayObject *sa = (PyArrayObject *)s;
            if (!PyArray_Check(s) || PyArray_TYPE(sa) != PyArray_TYPE(va[i]) ||
                !PyArray_ISCARRAY(sa) || !PyArray_ISNOTSWAPPED(sa) ||
                PyArray_SIZE(sa) != PyArray_SIZE(va[i])) {
                decline = 1;
                break;
            }
            b->slot[k] = PyArray_DATA(sa);
            if (k != FO_SLOT_DECAY_MASK) {
                wr[nwr].lo = PyArray_BYTES(sa);
                wr[nwr++].hi = PyArray_BYTES(sa) + PyArray_NBYTES(sa);
            }
        }
    }
    /* nothing written may share memory with anything else of the step */
    for (int a = 0; a < nwr && !decline; a++) {
        if (wr[a].lo == wr[a].hi)
            continue;
        for (int c = a + 1; c < nwr && !decline; c++)
            decline = wr[c].lo < wr[a].hi && wr[a].lo < wr[c].hi;
        for (Py_ssize_t i = 0; i < n && !decline; i++)
            decline = rd[i].lo < wr[a].hi && wr[a].lo < rd[i].hi && rd[i].lo != rd[i].hi;
    }
    double lr = 0;
    if (!decline) {
        if (PyFloat_CheckExact(lr_o)) {
            lr = PyFloat_AS_DOUBLE(lr_o);
        } else if (c_sched) {
            lr = sched_value(&sched, it);
        } else { /* a schedule: evaluated as the thorough path does (float(schedule(step))),
                  * a built-in one called here, any other by optimizer._scheduled(step) */
            PyObject *st = PyLong_FromLongLong((long long)it);
            PyObject *r = st == NULL ? NULL
                          : PyTuple_CheckExact(lr_o) ? PyObject_CallOneArg(PyTuple_GET_ITEM(lr_o, 1), st)
                          : lr_o != Py_None ? PyObject_CallOneArg(lr_o, st)
                                            : PyObject_CallMethodOneArg(opt, s_scheduled, st);
            Py_XDECREF(st);
            lr = r ? PyFloat_AsDouble(r) : -1.0;
            Py_XDECREF(r);
            if (PyErr_Occurred()) {
                PyObject *et, *ev, *tb;
                PyErr_Fetch(&et, &ev, &tb);
                if (locking)
                    lock_call(lock, s_release);
                PyErr_Restore(et, ev, tb);
                goto done;
            }
        }
        decline = !(lr >= 0) || !isfinite(lr);
    }
    h.learning_rate = lr;
    h.iteration = it;
    for (Py_ssize_t i = 0; i < n && !decline; i++) {
        const char *name;
        double value;
        decline = fo_optim_check_hyper((int)kind, bufs[i].dtype, &h, &name, &value) != 0;
    }
    if (decline) {
        if (locking && lock_call(lock, s_release) < 0)
            goto done;
        goto slow;
    }
    int finite;
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        total += bufs[i].n;
    if (total < FO_GIL_FREE_MIN) {
        finite = fo_optim_update((int)kind, (size_t)n, bufs, &h);
    } else {
        Py_BEGIN_ALLOW_THREADS
        finite = fo_optim_update((int)kind, (size_t)n, bufs, &h);
        Py_END_ALLOW_THREADS
    }
    *step = it + 1; /* counted with the step, in the same call */
    if (locking && lock_call(lock, s_release) < 0)
        goto done;
    if (!finite) {
        PyObject *r = PyObject_CallMethod(opt, "_on_divergence", "Ldi", (long long)(it + 1), lr, 2);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    const int64_t acc = h.gradient_accumulation_steps > 1 ? h.gradient_accumulation_steps : 1;
    result = PyLong_FromLongLong((long long)((it + 1) / acc));
    goto done;

slow:
    for (int i = 0; i < nheld; i++)
        Py_DECREF(held[i]);
    nheld = 0;
    if (pairs == NULL && (pairs = pairs_list(gi, vi, n)) == NULL)
        goto done;
    result = PyObject_CallMethodOneArg(opt, s_thorough, pairs);
done:
    for (int i = 0; i < nheld; i++)
        Py_DECREF(held[i]);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_DECREF(gi[i]);
        Py_DECREF(vi[i]);
    }
    Py_XDECREF(fast);
    Py_XDECREF(pairs);
    return result;
}

/* ------------------------------------------------------------------ */
/* helpers of the Python layer                                         */
/* ------------------------------------------------------------------ */

PyDoc_STRVAR(memory_key_doc,
             "memory_key(a) -> (owner, address, lo, hi, dtype_key, c_contiguous, dense)\n\n"
             "What optimizer state is keyed by: the ndarray that owns a's memory (the last\n"
             "ndarray of its base chain), the address of a's first element, the byte range\n"
             "[lo, hi) its elements lie in, a key of its dtype and byte order, whether it is\n"
             "C-contiguous, and whether its elements exactly tile [lo, hi) (any order).");

static PyObject *py_memory_key(PyObject *self, PyObject *a_o)
{
    if (!PyArray_Check(a_o)) {
        PyErr_Format(PyExc_TypeError, "memory_key: expected a numpy.ndarray, got %.100s",
                     Py_TYPE(a_o)->tp_name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)a_o;
    char *lo, *hi;
    extent(a, &lo, &hi);
    int dense = hi - lo == PyArray_NBYTES(a) &&
                fo_internal_overlap(PyArray_NDIM(a), PyArray_DIMS(a), PyArray_STRIDES(a),
                                    PyArray_ITEMSIZE(a), FO_OVERLAP_MAX_WORK) == 0;
    return Py_BuildValue("ONNNlOO", memory_owner(a), PyLong_FromVoidPtr(PyArray_DATA(a)),
                         PyLong_FromVoidPtr(lo), PyLong_FromVoidPtr(hi), dtype_key(a),
                         PyArray_IS_C_CONTIGUOUS(a) ? Py_True : Py_False,
                         dense ? Py_True : Py_False);
}

PyDoc_STRVAR(optim_commit_doc,
             "optim_commit(copies, commits, step=None, value=0)\n\n"
             "Copy every (dst, src) pair of arrays, apply the (dict, key, value) commits and set\n"
             "step[0] = value, in one call that a KeyboardInterrupt cannot split.  Every\n"
             "argument is checked before anything is written.");

static PyObject *py_optim_commit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "optim_commit(copies, commits, step=None, value=0)");
        return NULL;
    }
    PyObject *copies = args[0], *commits = args[1];
    PyArrayObject *step = NULL;
    long long value = 0;
    if (!PyList_Check(copies)) {
        PyErr_SetString(PyExc_TypeError, "copies must be a list of (dst, src) arrays");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(copies); i++) {
        PyObject *c = PyList_GET_ITEM(copies, i);
        if (!PyTuple_Check(c) || PyTuple_GET_SIZE(c) != 2 || !PyArray_Check(PyTuple_GET_ITEM(c, 0)) ||
            !PyArray_Check(PyTuple_GET_ITEM(c, 1))) {
            PyErr_SetString(PyExc_TypeError, "copies must be a list of (dst, src) arrays");
            return NULL;
        }
        PyArrayObject *d = (PyArrayObject *)PyTuple_GET_ITEM(c, 0);
        PyArrayObject *s = (PyArrayObject *)PyTuple_GET_ITEM(c, 1);
        if (!PyArray_ISWRITEABLE(d) || !PyArray_SAMESHAPE(d, s) ||
            !PyArray_CanCastTypeTo(PyArray_DESCR(s), PyArray_DESCR(d), NPY_SAME_KIND_CASTING)) {
            PyErr_Format(PyExc_ValueError, "copies[%zd]: dst must be writable, of src's shape and "
                                           "kind", i);
            return NULL;
        }
    }
    if (check_commits(commits) < 0)
        return NULL;
    if (nargs > 2 && args[2] != Py_None) {
        if (!(step = exact_array(args[2], "step", NPY_INT64, 1, 1)))
            return NULL;
        if (nargs > 3 && parse_int(args[3], "iterations", 0, FO_MAX_STEP, &value) < 0)
            return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(copies); i++) {
        PyObject *c = PyList_GET_ITEM(copies, i);
        if (PyArray_CopyInto((PyArrayObject *)PyTuple_GET_ITEM(c, 0),
                             (PyArrayObject *)PyTuple_GET_ITEM(c, 1)) < 0)
            return NULL;
    }
    if (apply_commits(commits) < 0)
        return NULL;
    if (step)
        *(int64_t *)PyArray_DATA(step) = (int64_t)value;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(optim_pack_hyper_doc,
             "optim_pack_hyper(hyper) -> bytes\n\n"
             "The hyperparameter tuple (Optimizer._hyper), checked and packed as the C step\n"
             "reads it: the fast path copies it instead of parsing the tuple at every call.");

static PyObject *py_optim_pack_hyper(PyObject *self, PyObject *t)
{
    fo_optim_hyper h;
    if (parse_hyper(t, &h) < 0)
        return NULL;
    return PyBytes_FromStringAndSize((const char *)&h, sizeof h);
}

static PyObject *py_optim_fast_path(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return fast_path_switch(&fast_enabled, "optim_fast_path", args, nargs);
}

PyMethodDef fo_optim_methods[] = {
    {"optim_update", (PyCFunction)(void (*)(void))py_optim_update, METH_FASTCALL, optim_update_doc},
    {"optim_commit", (PyCFunction)(void (*)(void))py_optim_commit, METH_FASTCALL, optim_commit_doc},
    {"optim_fast_path", (PyCFunction)(void (*)(void))py_optim_fast_path, METH_FASTCALL,
     "optim_fast_path(enabled=None) -> the previous setting; False sends every\n"
     "apply_gradients through the thorough path (for tests)"},
    {"memory_key", py_memory_key, METH_O, memory_key_doc},
    {"optim_pack_hyper", py_optim_pack_hyper, METH_O, optim_pack_hyper_doc},
    {"optim_schedule_value", (PyCFunction)(void (*)(void))py_optim_schedule_value, METH_FASTCALL,
     optim_schedule_value_doc},
    {NULL, NULL, 0, NULL}};

/* ------------------------------------------------------------------ */
/* OptimizerBase: the C base of fastopt.optimizers.Optimizer           */
/* ------------------------------------------------------------------ */

PyDoc_STRVAR(apply_gradients_doc,
             "apply_gradients($self, grads_and_vars)\n--\n\n"
             "Update every variable in place from its gradient; returns ``iterations``.\n\n"
             "``grads_and_vars`` is an iterable of ``(gradient, variable)`` pairs, as\n"
             "``zip(grads, model.trainable_variables)``.  Pairs whose gradient is ``None``\n"
             "are skipped (with a warning, as in Keras).  Nothing is written unless every\n"
             "pair is valid; the step and its count are one C call.  Arrays that need no\n"
             "conversion go straight to C (the fast path); the others are converted,\n"
             "checked and explained by ``_apply_thorough``, with the same results.  The\n"
             "update rule is the optimizer's (see its class).");

static PyObject *optbase_apply_gradients(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                         PyObject *kwnames)
{
    const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw != 1 ||
        (nkw == 1 && !PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0))) ||
        (nkw == 1 && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "grads_and_vars") != 0)) {
        PyErr_SetString(PyExc_TypeError, "apply_gradients() takes one argument, grads_and_vars "
                                         "(pairs of (gradient, variable))");
        return NULL;
    }
    return optim_apply(self, args[0]);
}

static PyMethodDef optbase_methods[] = {
    {"apply_gradients", (PyCFunction)(void (*)(void))optbase_apply_gradients,
     METH_FASTCALL | METH_KEYWORDS, apply_gradients_doc},
    {NULL, NULL, 0, NULL}};

static PyTypeObject OptimizerBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "fastopt._core.OptimizerBase",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The C base of fastopt.optimizers.Optimizer: apply_gradients' fast path,\n"
              "called as a method without a Python frame.",
    .tp_methods = optbase_methods,
    .tp_new = PyType_GenericNew,
};

int fo_optim_add_types(PyObject *module)
{
    if (PyType_Ready(&OptimizerBaseType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "OptimizerBase", (PyObject *)&OptimizerBaseType);
}
