/*
 * bind_net.c - the network binding.
 *
 * _core.Network is the C side of one model (kann's kann_t, llm.c's model
 * struct): the layer spec parsed once, the layout of every kernel and bias in
 * the flat buffer (fo_net_layout: the only place that computes it), the
 * workspace, the flat parameter, gradient and optimizer buffers bound at
 * compile time, and the model's shuffle generator.  Its calls are short:
 * forward(x), gradients(x, y), evaluate(x, y), train_on_batch(x, y, sw, lr),
 * and for fit, batches(...) once and train(batches, steps, lr, stats).
 *
 * The per-step calls take `soft`: arguments that already have the model's
 * dtype, C layout and shape (and are finite) run; anything else returns
 * NotImplemented and the Python layer converts, explains and refuses.
 *
 * Long work polls for signals about every 50 ms (py_poll) and stops at a
 * chunk or step boundary; a step is counted (the optimizer's _step array)
 * exactly when it is applied.  Calls that step an optimizer hold its _lock.
 *
 * The module-level net_sizes, net_forward, net_gradients and train_epoch are
 * thin wrappers over the same kernels, taking the spec and buffers each call.
 */
#include "binding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* gradients() keeps this many of its results for reuse (two alternate in a
 * loop that drops the previous step's gradients) */
#define FO_GRAD_SETS 2

/* workspaces up to this size are kept by a Network between calls */
#define FO_KEEP_WORK ((size_t)1 << 20)

/* ------------------------------------------------------------------ */
/* interrupts                                                          */
/* ------------------------------------------------------------------ */

typedef struct {
    fo_ctl ctl;
    PyThreadState *ts; /* NULL: the GIL is held (work too small to release it) */
    double next;       /* when to check signals next (monotonic seconds) */
} py_ctl;

/* below this many multiply-adds a kernel runs with the GIL held: releasing
 * and taking it back would cost more than the work (NumPy does the same) */
#define FO_GIL_WORK 4096.0

static double monotonic(void)
{
    struct timespec t;
#ifdef CLOCK_MONOTONIC
    clock_gettime(CLOCK_MONOTONIC, &t);
#else
    timespec_get(&t, TIME_UTC);
#endif
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* called by a kernel every ctl.budget multiply-adds: about every 50 ms, take
 * the GIL back, run the signal handlers and release it again */
static int py_poll(fo_ctl *c)
{
    py_ctl *p = (py_ctl *)c;
    const double t = monotonic();
    if (t < p->next)
        return 0;
    PyEval_RestoreThread(p->ts);
    const int err = PyErr_CheckSignals();
    p->ts = PyEval_SaveThread();
    p->next = monotonic() + 0.05;
    return err < 0;
}

#if PY_VERSION_HEX >= 0x030D0000
/* the thread that runs Python's signal handlers: the runtime's main thread
 * (_thread._get_main_thread_ident), or after a fork the thread that forked */
static unsigned long main_ident;
#ifndef _WIN32
#include <pthread.h>
static void main_ident_after_fork(void)
{
    main_ident = PyThread_get_thread_ident();
}
#endif

static int main_ident_init(void)
{
    PyObject *mod = PyImport_ImportModule("_thread");
    if (mod == NULL)
        return -1;
    PyObject *r = PyObject_CallMethod(mod, "_get_main_thread_ident", NULL);
    Py_DECREF(mod);
    if (r == NULL)
        return -1;
    main_ident = PyLong_AsUnsignedLong(r);
    Py_DECREF(r);
    if (PyErr_Occurred())
        return -1;
#ifndef _WIN32
    pthread_atfork(NULL, NULL, main_ident_after_fork);
#endif
    return 0;
}
#endif

/* whether this thread runs Python's signal handlers (the main thread of the
 * main interpreter): PyErr_CheckSignals does nothing in any other.  GIL held. */
static int handles_signals(void)
{
#if PY_VERSION_HEX < 0x030D0000
    return _PyOS_IsMainThread();
#else
    return PyThread_get_thread_ident() == main_ident && PyInterpreterState_Get() == PyInterpreterState_Main();
#endif
}

/* release the GIL for kernels of about `work` multiply-adds that poll through
 * p->ctl.  Only the thread that handles signals polls: in any other thread a
 * poll would take the GIL back for nothing, and wait for it while another
 * thread runs Python (a worker of a threaded grid search, each fit of which
 * stalled at its first poll until the other worker's Python let go). */
static void release_gil(py_ctl *p, double work)
{
    p->ctl.poll = py_poll;
    p->ctl.budget = (double)(1 << 20);
    p->ctl.spent = 0;
    p->ctl.stop = 0;
    p->next = 0; /* the first poll checks at once, then every 50 ms */
    p->ts = NULL;
    if (work < FO_GIL_WORK) {
        p->ctl.budget = INFINITY; /* short: no polls, the GIL stays */
        return;
    }
    if (!handles_signals())
        p->ctl.budget = INFINITY; /* no signal to look for: never poll */
    p->ts = PyEval_SaveThread();
}

/* take the GIL back: -1 (a signal handler's exception set) if the kernel stopped */
static int take_gil(py_ctl *p)
{
    if (p->ts)
        PyEval_RestoreThread(p->ts);
    return p->ctl.stop ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* the spec                                                            */
/* ------------------------------------------------------------------ */

/* spec = (units, activations, use_bias, l1, l2[, act_params, dropout, noise]):
 * units has n_layers + 1 entries, the others n_layers */
static int parse_net(PyObject *spec, fo_net *net)
{
    PyObject *units, *acts, *bias, *l1, *l2, *params = NULL, *drop = NULL, *noise = NULL;
    if (!PyTuple_Check(spec)) {
        PyErr_SetString(PyExc_TypeError, "spec must be (units, activations, use_bias, l1, l2"
                                         "[, act_params, dropout, noise])");
        return -1;
    }
    if (!PyArg_ParseTuple(spec, "O!O!O!O!O!|O!O!O!;spec must be (units, activations, use_bias, l1, l2"
                                "[, act_params, dropout, noise])",
                          &PyTuple_Type, &units, &PyTuple_Type, &acts, &PyTuple_Type, &bias,
                          &PyTuple_Type, &l1, &PyTuple_Type, &l2, &PyTuple_Type, &params,
                          &PyTuple_Type, &drop, &PyTuple_Type, &noise))
        return -1;
    memset(net, 0, sizeof(*net));
    Py_ssize_t L = PyTuple_GET_SIZE(acts);
    if ((params != NULL) != (noise != NULL)) {
        PyErr_SetString(PyExc_ValueError, "spec: act_params, dropout and noise come together");
        return -1;
    }
    if (L < 1 || L > FO_MAX_LAYERS || PyTuple_GET_SIZE(units) != L + 1 ||
        PyTuple_GET_SIZE(bias) != L || PyTuple_GET_SIZE(l1) != L || PyTuple_GET_SIZE(l2) != L ||
        (params && (PyTuple_GET_SIZE(params) != L || PyTuple_GET_SIZE(drop) != L ||
                    PyTuple_GET_SIZE(noise) != L))) {
        PyErr_Format(PyExc_ValueError, "spec: a network has 1 to %d layers, with one more unit "
                                       "count than layers", FO_MAX_LAYERS);
        return -1;
    }
    net->n_layers = (size_t)L;
    for (Py_ssize_t i = 0; i <= L; i++) {
        long long u;
        if (parse_int(PyTuple_GET_ITEM(units, i), "spec: units", LLONG_MIN, LLONG_MAX, &u) < 0)
            return -1;
        if (u < 1) {
            PyErr_Format(PyExc_ValueError, "spec: units[%zd] must be positive", i);
            return -1;
        }
        if (u > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "spec: units[%zd] = %lld is too large", i, u);
            return -1;
        }
        net->units[i] = (size_t)u;
    }
    for (Py_ssize_t i = 0; i < L; i++) {
        int a, b = PyObject_IsTrue(PyTuple_GET_ITEM(bias, i));
        double r1, r2;
        if (b < 0 || parse_code(PyTuple_GET_ITEM(acts, i), "spec: activation", FO_N_ACT, &a) < 0 ||
            parse_real(PyTuple_GET_ITEM(l1, i), "spec: l1", &r1) < 0 ||
            parse_real(PyTuple_GET_ITEM(l2, i), "spec: l2", &r2) < 0)
            return -1;
        if (check_act(a) < 0) /* one the training loop runs */
            return -1;
        if (!(r1 >= 0) || !(r2 >= 0) || isinf(r1) || isinf(r2)) {
            PyErr_SetString(PyExc_ValueError, "spec: regularization factors must be finite and >= 0");
            return -1;
        }
        net->act[i] = a;
        net->use_bias[i] = b;
        net->l1[i] = r1;
        net->l2[i] = r2;
        net->act_param[i] = fo_act_default_param((int)a);
        if (params == NULL)
            continue;
        const double ap = PyFloat_AsDouble(PyTuple_GET_ITEM(params, i));
        const double rate = PyFloat_AsDouble(PyTuple_GET_ITEM(drop, i));
        const long nz = PyLong_AsLong(PyTuple_GET_ITEM(noise, i));
        if (PyErr_Occurred())
            return -1;
        if (!fo_act_param_ok((int)a, ap)) {
            PyErr_Format(PyExc_ValueError, "spec: act_params[%zd] = %R is not valid for activation %ld", i,
                         PyTuple_GET_ITEM(params, i), a);
            return -1;
        }
        if (!(rate >= 0 && rate < 1)) {
            PyErr_Format(PyExc_ValueError, "spec: dropout[%zd] must be in [0, 1), got %R", i,
                         PyTuple_GET_ITEM(drop, i));
            return -1;
        }
        if (rate > 0 && i == L - 1) {
            PyErr_SetString(PyExc_ValueError, "spec: the last layer's output cannot have dropout "
                                              "(the loss reads it)");
            return -1;
        }
        if (nz < FO_NOISE_FULL || nz > FO_NOISE_COLS) {
            PyErr_Format(PyExc_ValueError, "spec: noise[%zd] must be 0 (full), 1 (rows) or 2 (columns)", i);
            return -1;
        }
        net->act_param[i] = ap;
        net->dropout[i] = rate;
        net->noise[i] = (int)nz;
    }
    net->loss = (fo_loss_spec){FO_LOSS_MSE, FO_REDUCE_SUM_OVER_BATCH_SIZE, 0, 0.0, 1.0};
    net->ycols = net->units[L];
    /* the parameter count and a row of workspace must fit in memory's index
     * range, so that no size computed from them later wraps around */
    if (fo_net_layout(net) < 0 || net->n_params > (size_t)PY_SSIZE_T_MAX / 16 ||
        net->row_width > (size_t)PY_SSIZE_T_MAX / 16) {
        PyErr_SetString(PyExc_ValueError, "spec: the network is too large");
        return -1;
    }
    return 0;
}

/* elements of workspace for batches of `rows` rows, or (size_t)-1 with an error */
static size_t workspace_size(const fo_net *net, size_t rows, const char *what)
{
    const size_t R = rows < net->chunk_rows ? rows : net->chunk_rows;
    if (R > 0 && net->row_width > ((size_t)PY_SSIZE_T_MAX / 16 - net->n_params) / R) {
        PyErr_Format(PyExc_ValueError, "%s: too many rows for this network", what);
        return (size_t)-1;
    }
    return fo_net_workspace(net, rows);
}

/* ------------------------------------------------------------------ */
/* argument checks shared by the Network methods                       */
/* ------------------------------------------------------------------ */

static int finite_array(PyArrayObject *a)
{
    const size_t n = (size_t)PyArray_SIZE(a);
    return PyArray_TYPE(a) == NPY_FLOAT32 ? fo_all_finite_f32(PyArray_DATA(a), n)
                                          : fo_all_finite_f64(PyArray_DATA(a), n);
}

/* An input of the network: exactly `typenum`, C-contiguous, aligned, native,
 * finite, shape (n, cols) (or (n,) when cols == 1), n >= 1 (and == rows when
 * rows >= 0).  Returns 1; 0 when soft and it needs the thorough path; -1 with
 * TypeError/ValueError naming `name`. */
static int data_array(PyObject *o, const char *name, int typenum, npy_intp cols, npy_intp rows,
                      int soft, PyArrayObject **out)
{
    if (soft) {
        if (!PyArray_CheckExact(o))
            return 0;
        PyArrayObject *a = (PyArrayObject *)o;
        const int nd = PyArray_NDIM(a);
        if (PyArray_TYPE(a) != typenum || !PyArray_ISCARRAY_RO(a) || !PyArray_ISNOTSWAPPED(a) ||
            !((nd == 2 && PyArray_DIM(a, 1) == cols) || (nd == 1 && cols == 1)) ||
            PyArray_DIM(a, 0) < 1 || (rows >= 0 && PyArray_DIM(a, 0) != rows) || !finite_array(a))
            return 0;
        *out = a;
        return 1;
    }
    PyArrayObject *a = exact_array(o, name, typenum, 0, -1);
    if (a == NULL)
        return -1;
    const int nd = PyArray_NDIM(a);
    if (!((nd == 2 && PyArray_DIM(a, 1) == cols) || (nd == 1 && cols == 1))) {
        PyObject *shape = PyObject_GetAttrString(o, "shape");
        if (shape)
            PyErr_Format(PyExc_ValueError, "%s must have shape (n, %zd), got %S", name, cols, shape);
        Py_XDECREF(shape);
        return -1;
    }
    if (PyArray_DIM(a, 0) < 1) {
        PyErr_Format(PyExc_ValueError, "%s has no samples", name);
        return -1;
    }
    if (rows >= 0 && PyArray_DIM(a, 0) != rows) {
        PyErr_Format(PyExc_ValueError, "x has %zd samples but %s has %zd", rows, name,
                     PyArray_DIM(a, 0));
        return -1;
    }
    if (!finite_array(a)) {
        PyErr_Format(PyExc_ValueError, "%s contains NaN or inf", name);
        return -1;
    }
    *out = a;
    return 1;
}

/* sample weights: None, or (n,) / (n, 1), finite and >= 0 */
static int weight_array(PyObject *o, int typenum, npy_intp n, int soft, PyArrayObject **out)
{
    *out = NULL;
    if (o == Py_None)
        return 1;
    int r = data_array(o, "sample_weight", typenum, 1, n, soft, out);
    if (r <= 0)
        return r;
    const npy_intp m = PyArray_SIZE(*out);
    const void *d = PyArray_DATA(*out);
    for (npy_intp i = 0; i < m; i++) {
        const double w = typenum == NPY_FLOAT32 ? (double)((const float *)d)[i] : ((const double *)d)[i];
        if (w < 0) {
            if (soft)
                return 0;
            PyErr_SetString(PyExc_ValueError, "sample_weight must be >= 0");
            return -1;
        }
    }
    return 1;
}

/* learning rates: a number, or a float64 array of 1 or `count` entries, each
 * finite and >= 0.  For a number, fills *one and returns Py_None. */
static PyArrayObject *lr_array(PyObject *o, npy_intp count, double *one)
{
    if (!PyArray_Check(o)) { /* a number */
        if (parse_real(o, "learning_rate", one) < 0)
            return NULL;
        if (!(*one >= 0) || isinf(*one)) {
            PyErr_Format(PyExc_ValueError, "the learning rate must be finite and >= 0, got %R", o);
            return NULL;
        }
        return (PyArrayObject *)Py_None;
    }
    PyArrayObject *lr = exact_array(o, "lr", NPY_FLOAT64, 0, -1);
    if (lr == NULL)
        return NULL;
    if (PyArray_SIZE(lr) != 1 && PyArray_SIZE(lr) != count) {
        PyErr_Format(PyExc_ValueError, "lr must have 1 or %zd entries, got %zd", count,
                     PyArray_SIZE(lr));
        return NULL;
    }
    const double *p = PyArray_DATA(lr);
    for (npy_intp i = 0; i < PyArray_SIZE(lr); i++) {
        if (!(p[i] >= 0) || isinf(p[i])) {
            PyErr_Format(PyExc_ValueError, "lr[%zd] must be finite and >= 0", i);
            return NULL;
        }
    }
    return lr;
}

/* "slots[k]", for messages (the GIL is held) */
static const char *slot_name(int k)
{
    static char names[FO_MAX_SLOTS][24];
    if (names[k][0] == 0)
        snprintf(names[k], sizeof names[k], "slots[%d]", k);
    return names[k];
}

static int rng_nonzero(PyArrayObject *rng)
{
    const uint64_t *s = PyArray_DATA(rng);
    if ((s[0] | s[1] | s[2] | s[3]) == 0) {
        PyErr_SetString(PyExc_ValueError,
                        "rng_state is all zeros: the shuffle generator would never move; "
                        "seed it (any other state is valid)");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* the Network type                                                    */
/* ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    fo_net net;
    int typenum;       /* NPY_FLOAT32 or NPY_FLOAT64 */
    PyArrayObject *rng; /* the model's uint64[4] shuffle state */
    /* bound by bind(): the model's flat buffers and its optimizer */
    PyArrayObject *params, *grads, *slots[FO_MAX_SLOTS];
    PyObject *opt, *hyper_obj, *lock_acquire, *lock_release;
    PyArrayObject *step; /* opt._step: int64[1], the optimizer's iterations */
    int kind;
    fo_optim_hyper hyper;
    double tob_start; /* train_on_batch's first loss since bind (divergence reference) */
    /* a workspace lent to one call at a time (others allocate their own) */
    void *work;
    size_t work_bytes;
    int work_busy;
    /* gradients' results kept for reuse (see grads_take) */
    PyObject *grad_sets[FO_GRAD_SETS];
    int grad_next; /* the kept result to replace next when all are busy */
} NetObject;

typedef struct {
    PyObject_HEAD
    NetObject *net;
    PyArrayObject *x, *y, *sw, *perm;
    fo_data data;
    double loss_start; /* the loss of the run's first step (NaN before it) */
    int busy;
} BatchesObject;

static PyTypeObject NetType, BatchesType;
static PyObject *str_hyper, *str_kind, *str_step, *str_lock;

static void *work_take(NetObject *self, size_t elems, int *owned)
{
    const size_t bytes = (elems ? elems : 1) * (size_t)(self->typenum == NPY_FLOAT32 ? 4 : 8);
    if (!self->work_busy && bytes <= FO_KEEP_WORK) {
        if (self->work_bytes < bytes) {
            PyMem_RawFree(self->work);
            self->work_bytes = 0;
            if (!(self->work = PyMem_RawMalloc(bytes))) {
                PyErr_NoMemory();
                return NULL;
            }
            self->work_bytes = bytes;
        }
        self->work_busy = 1;
        *owned = 0;
        return self->work;
    }
    void *p = PyMem_RawMalloc(bytes);
    if (!p)
        PyErr_NoMemory();
    *owned = 1;
    return p;
}

static void work_give(NetObject *self, void *p, int owned)
{
    if (owned)
        PyMem_RawFree(p);
    else
        self->work_busy = 0;
}

static void unbind(NetObject *self)
{
    Py_CLEAR(self->params);
    Py_CLEAR(self->grads);
    for (int k = 0; k < FO_MAX_SLOTS; k++)
        Py_CLEAR(self->slots[k]);
    Py_CLEAR(self->opt);
    Py_CLEAR(self->hyper_obj);
    Py_CLEAR(self->lock_acquire);
    Py_CLEAR(self->lock_release);
    Py_CLEAR(self->step);
}

static int net_traverse(NetObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->rng);
    Py_VISIT(self->params);
    Py_VISIT(self->grads);
    for (int k = 0; k < FO_MAX_SLOTS; k++)
        Py_VISIT(self->slots[k]);
    Py_VISIT(self->opt);
    Py_VISIT(self->hyper_obj);
    Py_VISIT(self->lock_acquire);
    Py_VISIT(self->lock_release);
    Py_VISIT(self->step);
    for (int k = 0; k < FO_GRAD_SETS; k++)
        Py_VISIT(self->grad_sets[k]);
    return 0;
}

static int net_clear(NetObject *self)
{
    unbind(self);
    Py_CLEAR(self->rng);
    for (int k = 0; k < FO_GRAD_SETS; k++)
        Py_CLEAR(self->grad_sets[k]);
    return 0;
}

static void net_dealloc(NetObject *self)
{
    PyObject_GC_UnTrack(self);
    net_clear(self);
    PyMem_RawFree(self->work);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(net_doc,
             "Network(spec, dtype, rng_state)\n\n"
             "The C side of one model: spec = (units, activations, use_bias, l1, l2) is\n"
             "parsed once and laid out (n_params, layout, views); dtype is float32 or\n"
             "float64; rng_state is the model's uint64[4] shuffle state, kept by reference.");

static int net_init(NetObject *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"spec", "dtype", "rng_state", NULL};
    PyObject *spec, *rng_o;
    PyArray_Descr *descr = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO&O", kw, &spec, PyArray_DescrConverter, &descr,
                                     &rng_o))
        return -1;
    const int typenum = descr->type_num;
    Py_DECREF(descr);
    if (dtype_code(typenum) < 0) {
        PyErr_SetString(PyExc_TypeError, "dtype must be float32 or float64");
        return -1;
    }
    fo_net net;
    if (parse_net(spec, &net) < 0)
        return -1;
    PyArrayObject *rng = exact_array(rng_o, "rng_state", NPY_UINT64, 1, 4);
    if (rng == NULL)
        return -1;
    net_clear(self);
    self->net = net;
    self->typenum = typenum;
    Py_INCREF(rng);
    self->rng = rng;
    self->tob_start = NAN;
    return 0;
}

/* the variables in Keras order (each layer's kernel, then its bias): the
 * number of them, and the shape and flat offset of the k-th */
static size_t n_variables(const fo_net *net)
{
    size_t n = 0;
    for (size_t l = 0; l < net->n_layers; l++)
        n += 1 + (net->use_bias[l] != 0);
    return n;
}

static void variable_shape(const fo_net *net, size_t k, int *nd, npy_intp dims[2], size_t *off)
{
    *nd = 0; /* k out of range (callers pass k < n_variables) */
    dims[0] = dims[1] = 0;
    *off = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        if (k == 0) {
            *nd = 2;
            dims[0] = (npy_intp)net->units[l];
            dims[1] = (npy_intp)net->units[l + 1];
            *off = net->kernel_off[l];
            return;
        }
        k--;
        if (net->use_bias[l]) {
            if (k == 0) {
                *nd = 1;
                dims[0] = (npy_intp)net->units[l + 1];
                *off = net->bias_off[l];
                return;
            }
            k--;
        }
    }
}

/* the views of every kernel and bias (Keras order) into a flat buffer */
static PyObject *make_views(NetObject *self, PyArrayObject *flat, int writeable)
{
    const fo_net *net = &self->net;
    const size_t nv = n_variables(net);
    PyObject *list = PyList_New((Py_ssize_t)nv);
    if (list == NULL)
        return NULL;
    char *base = PyArray_BYTES(flat);
    const npy_intp item = PyArray_ITEMSIZE(flat);
    for (size_t k = 0; k < nv; k++) {
        int nd;
        npy_intp dims[2];
        size_t off;
        variable_shape(net, k, &nd, dims, &off);
        PyArray_Descr *d = PyArray_DESCR(flat);
        Py_INCREF(d);
        PyObject *v = PyArray_NewFromDescr(&PyArray_Type, d, nd, dims, NULL, base + off * item,
                                           NPY_ARRAY_CARRAY_RO | (writeable ? NPY_ARRAY_WRITEABLE : 0),
                                           NULL);
        if (v == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)k, v);
        Py_INCREF(flat);
        if (PyArray_SetBaseObject((PyArrayObject *)v, (PyObject *)flat) < 0) {
            Py_DECREF(list);
            return NULL;
        }
    }
    return list;
}

/* an array nothing but its one holder references: no other reference, no weak
 * reference, no buffer export (a memoryview holds a reference too) */
static int held_once(PyObject *o, Py_ssize_t refs)
{
    return Py_REFCNT(o) == refs && PyArray_CheckExact(o) &&
           ((PyArrayObject_fields *)o)->weakreflist == NULL;
}

/* Is `list`, a result of gradients() kept in grad_sets, free to be written
 * again: referenced by the cache alone, as are its views and their flat
 * buffer, and each view still the shape, dtype and place make_views gave it
 * (an array's shape, strides and dtype can be set in place)?  Returns the flat
 * buffer, or NULL. */
static PyArrayObject *grad_set_free(NetObject *self, PyObject *list)
{
#ifdef Py_GIL_DISABLED
    return NULL; /* without the GIL a reference count is no proof that nobody holds it */
#endif
    const fo_net *net = &self->net;
    const Py_ssize_t nv = (Py_ssize_t)n_variables(net);
    if (list == NULL || Py_REFCNT(list) != 1 || PyList_GET_SIZE(list) != nv)
        return NULL;
    PyObject *flat = PyArray_BASE((PyArrayObject *)PyList_GET_ITEM(list, 0));
    if (flat == NULL || !held_once(flat, nv) || PyArray_TYPE((PyArrayObject *)flat) != self->typenum ||
        PyArray_NDIM((PyArrayObject *)flat) != 1 ||
        PyArray_DIM((PyArrayObject *)flat, 0) != (npy_intp)net->n_params ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)flat) || !PyArray_CHKFLAGS((PyArrayObject *)flat, NPY_ARRAY_OWNDATA))
        return NULL;
    char *base = PyArray_BYTES((PyArrayObject *)flat);
    const npy_intp item = PyArray_ITEMSIZE((PyArrayObject *)flat);
    for (Py_ssize_t k = 0; k < nv; k++) {
        PyArrayObject *v = (PyArrayObject *)PyList_GET_ITEM(list, k);
        int nd;
        npy_intp dims[2];
        size_t off;
        variable_shape(net, (size_t)k, &nd, dims, &off);
        if (!held_once((PyObject *)v, 1) || PyArray_BASE(v) != flat || PyArray_TYPE(v) != self->typenum ||
            PyArray_NDIM(v) != nd || PyArray_BYTES(v) != base + off * item ||
            PyArray_DIM(v, 0) != dims[0] || (nd == 2 && PyArray_DIM(v, 1) != dims[1]) ||
            !PyArray_IS_C_CONTIGUOUS(v))
            return NULL;
    }
    return (PyArrayObject *)flat;
}

/* The flat gradient buffer for one gradients() call and the list of its views
 * to return: a kept result that is free again (the articles' loop
 * `loss, grads = model.compute_gradients(x, y)` drops the previous step's
 * grads, so two results alternate and no array is allocated per step), else
 * a new one, kept in place of a busy one.  *list is a new reference, the flat
 * buffer borrowed from it; the views are read-only, so that a (variable,
 * gradient) pair passed the wrong way round is refused. */
static PyArrayObject *grads_take(NetObject *self, PyObject **list)
{
    for (int k = 0; k < FO_GRAD_SETS; k++) {
        PyArrayObject *flat = grad_set_free(self, self->grad_sets[k]);
        if (flat != NULL) {
            *list = Py_NewRef(self->grad_sets[k]);
            PyArray_CLEARFLAGS(flat, NPY_ARRAY_WRITEABLE); /* in case it was set writeable */
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(*list); i++)
                PyArray_CLEARFLAGS((PyArrayObject *)PyList_GET_ITEM(*list, i), NPY_ARRAY_WRITEABLE);
            return flat;
        }
    }
    const npy_intp np_ = (npy_intp)self->net.n_params;
    PyArrayObject *flat = (PyArrayObject *)PyArray_SimpleNew(1, &np_, self->typenum);
    if (flat == NULL)
        return NULL;
    PyArray_CLEARFLAGS(flat, NPY_ARRAY_WRITEABLE);
    *list = make_views(self, flat, 0);
    Py_DECREF(flat); /* held by its views */
    if (*list == NULL)
        return NULL;
    int slot = 0; /* an empty slot, else the one after the last replaced */
    while (slot < FO_GRAD_SETS && self->grad_sets[slot] != NULL)
        slot++;
    if (slot == FO_GRAD_SETS) {
        slot = self->grad_next;
        self->grad_next = (self->grad_next + 1) % FO_GRAD_SETS;
    }
    Py_XSETREF(self->grad_sets[slot], Py_NewRef(*list));
    return flat;
}

/* a flat buffer of this network: 1-d, the model's dtype, n_params elements */
static PyArrayObject *flat_array(NetObject *self, PyObject *o, const char *name, int writable)
{
    PyArrayObject *a = exact_array(o, name, self->typenum, writable, (npy_intp)self->net.n_params);
    if (a && PyArray_NDIM(a) != 1) {
        PyErr_Format(PyExc_ValueError, "%s must be 1-d", name);
        return NULL;
    }
    return a;
}

PyDoc_STRVAR(views_doc, "views(flat, writeable=True) -> [kernel0, bias0, kernel1, ...]\n\n"
                        "Views of every kernel (in, out) and bias (out) into a flat buffer of\n"
                        "n_params elements, in Keras' get_weights() order.");

static PyObject *net_views(NetObject *self, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"flat", "writeable", NULL};
    PyObject *fo;
    int writeable = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p", kw, &fo, &writeable))
        return NULL;
    PyArrayObject *flat = flat_array(self, fo, "flat", 0);
    if (flat == NULL)
        return NULL;
    if (writeable && !PyArray_ISWRITEABLE(flat)) {
        PyErr_SetString(PyExc_ValueError, "flat is read-only; ask for read-only views");
        return NULL;
    }
    return make_views(self, flat, writeable);
}

static PyObject *net_get_layout(NetObject *self, void *closure)
{
    const fo_net *net = &self->net;
    const size_t nv = n_variables(net);
    PyObject *t = PyTuple_New((Py_ssize_t)nv);
    for (size_t k = 0; t && k < nv; k++) {
        int nd;
        npy_intp dims[2];
        size_t off;
        variable_shape(net, k, &nd, dims, &off);
        PyObject *e = nd == 2 ? Py_BuildValue("(n(nn))", (Py_ssize_t)off, (Py_ssize_t)dims[0], (Py_ssize_t)dims[1])
                              : Py_BuildValue("(n(n))", (Py_ssize_t)off, (Py_ssize_t)dims[0]);
        if (e == NULL)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, (Py_ssize_t)k, e);
    }
    return t;
}

static PyObject *net_get_n_params(NetObject *self, void *c)
{
    return PyLong_FromSize_t(self->net.n_params);
}

static PyObject *net_get_units(NetObject *self, void *c)
{
    PyObject *t = PyTuple_New((Py_ssize_t)self->net.n_layers + 1);
    for (size_t i = 0; t && i <= self->net.n_layers; i++)
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, PyLong_FromSize_t(self->net.units[i]));
    return t;
}

static PyObject *net_get_chunk_rows(NetObject *self, void *c)
{
    return PyLong_FromSize_t(self->net.chunk_rows);
}

static PyObject *net_get_bound(NetObject *self, void *c)
{
    return PyBool_FromLong(self->params != NULL);
}

static PyObject *net_get_loss(NetObject *self, void *c)
{
    return PyLong_FromLong(self->net.loss.kind);
}

/* Network.loss = code, or (code, reduction, from_logits, label_smoothing, delta)
 * as fo.losses' c_spec gives it */
static int net_set_loss(NetObject *self, PyObject *value, void *c)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "the loss cannot be deleted");
        return -1;
    }
    fo_loss_spec sp = {FO_LOSS_MSE, FO_REDUCE_SUM_OVER_BATCH_SIZE, 0, 0.0, 1.0};
    long code, red = FO_REDUCE_SUM_OVER_BATCH_SIZE;
    int logits = 0;
    if (PyTuple_Check(value)) {
        if (!PyArg_ParseTuple(value, "llpdd;loss must be a code or (code, reduction, from_logits, "
                                     "label_smoothing, delta)",
                              &code, &red, &logits, &sp.label_smoothing, &sp.delta))
            return -1;
    } else {
        code = PyLong_AsLong(value);
        if (code == -1 && PyErr_Occurred())
            return -1;
    }
    if (code < 0 || code >= FO_N_LOSS) {
        PyErr_Format(PyExc_ValueError, "unknown loss code %ld", code);
        return -1;
    }
    if (red < 0 || red >= FO_N_REDUCE) {
        PyErr_Format(PyExc_ValueError, "unknown reduction code %ld", red);
        return -1;
    }
    if (!(sp.label_smoothing >= 0 && sp.label_smoothing <= 1) || !(sp.delta > 0) || isinf(sp.delta)) {
        PyErr_SetString(PyExc_ValueError, "loss: label_smoothing must be in [0, 1] and delta finite and > 0");
        return -1;
    }
    sp.kind = (int)code;
    sp.reduction = (int)red;
    sp.from_logits = logits;
    self->net.loss = sp;
    self->net.ycols = code == FO_LOSS_SCCE ? 1 : self->net.units[self->net.n_layers];
    return 0;
}

static PyObject *net_get_ycols(NetObject *self, void *c)
{
    return PyLong_FromSize_t(self->net.ycols);
}

static PyObject *net_get_n_acc(NetObject *self, void *c)
{
    return PyLong_FromSize_t(self->net.n_acc);
}

/* Network.metrics = ((kind, threshold, k), ...), fo.metrics' c_spec of each */
static int net_set_metrics(NetObject *self, PyObject *value, void *c)
{
    if (value == NULL || !PyTuple_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "metrics must be a tuple of (kind, threshold, k)");
        return -1;
    }
    const Py_ssize_t n = PyTuple_GET_SIZE(value);
    if (n > FO_MAX_METRICS) {
        PyErr_Format(PyExc_ValueError, "at most %d metrics", FO_MAX_METRICS);
        return -1;
    }
    fo_metric_spec m[FO_MAX_METRICS];
    size_t n_acc = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        long kind;
        Py_ssize_t k;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(value, i), "ldn;a metric is (kind, threshold, k)", &kind,
                              &m[i].threshold, &k))
            return -1;
        if (kind < 0 || kind >= FO_N_METRIC || k < 0) {
            PyErr_Format(PyExc_ValueError, "metrics[%zd]: unknown metric code %ld or k < 0", i, kind);
            return -1;
        }
        m[i].kind = (int)kind;
        m[i].k = (size_t)k;
        n_acc += fo_metric_acc_size(&m[i], self->net.units[self->net.n_layers]);
    }
    memcpy(self->net.metric, m, sizeof m);
    self->net.n_metrics = (size_t)n;
    self->net.n_acc = n_acc;
    return 0;
}

static PyObject *net_get_metrics(NetObject *self, void *c)
{
    PyObject *t = PyTuple_New((Py_ssize_t)self->net.n_metrics);
    for (size_t i = 0; t && i < self->net.n_metrics; i++) {
        const fo_metric_spec *m = &self->net.metric[i];
        PyObject *e = Py_BuildValue("(ldn)", (long)m->kind, m->threshold, (Py_ssize_t)m->k);
        if (e == NULL)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, (Py_ssize_t)i, e);
    }
    return t;
}

/* the metric sums of a call as a tuple of floats */
static PyObject *acc_tuple(const double *acc, size_t n)
{
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t && i < n; i++) {
        PyObject *v = PyFloat_FromDouble(acc[i]);
        if (v == NULL)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, (Py_ssize_t)i, v);
    }
    return t;
}

/* the used slots of the optimizer's current hyperparameters are all there */
static int check_slots_used(NetObject *self, const fo_optim_hyper *h, PyArrayObject *const slots[])
{
    int used[FO_MAX_SLOTS];
    fo_optim_slots_used(self->kind, h, used);
    for (int k = 0; k < FO_MAX_SLOTS; k++) {
        if (used[k] && slots[k] == NULL) {
            PyErr_Format(PyExc_ValueError,
                         "slots[%d] is None but the optimizer's hyperparameters need it; "
                         "compile the model with the optimizer again", k);
            return -1;
        }
    }
    return 0;
}

PyDoc_STRVAR(bind_doc,
             "bind(params, grads, optimizer, slots)\n\n"
             "Train the flat params (n_params) with the optimizer, or with None only run\n"
             "forward, gradients and evaluate.  grads is the model's flat gradient buffer,\n"
             "slots the optimizer's flat state (a tuple of MAX_SLOTS arrays or None).  The\n"
             "optimizer's _kind, _hyper, _step (int64[1], counted here per step applied) and\n"
             "_lock are read from it.  Everything is checked before anything is kept.");

static PyObject *net_bind(NetObject *self, PyObject *args)
{
    PyObject *po, *go, *opt, *slots_o;
    if (!PyArg_ParseTuple(args, "OOOO!", &po, &go, &opt, &PyTuple_Type, &slots_o))
        return NULL;
    PyArrayObject *params = flat_array(self, po, "params", 1);
    PyArrayObject *grads = params ? flat_array(self, go, "grads", 1) : NULL;
    if (grads == NULL)
        return NULL;
    if (PyTuple_GET_SIZE(slots_o) != FO_MAX_SLOTS) {
        PyErr_Format(PyExc_TypeError, "slots must be a %d-tuple", FO_MAX_SLOTS);
        return NULL;
    }
    PyArrayObject *slots[FO_MAX_SLOTS];
    PyArrayObject *arrs[2 + FO_MAX_SLOTS] = {params, grads};
    const char *names[2 + FO_MAX_SLOTS] = {"params", "grads"};
    int n = 2;
    for (int k = 0; k < FO_MAX_SLOTS; k++) {
        PyObject *s = PyTuple_GET_ITEM(slots_o, k);
        slots[k] = NULL;
        if (s == Py_None)
            continue;
        if (!(slots[k] = flat_array(self, s, slot_name(k), 1)))
            return NULL;
        arrs[n] = slots[k];
        names[n++] = slot_name(k);
    }
    if (check_disjoint(arrs, names, n, n) < 0)
        return NULL;
    if (opt == Py_None) { /* the parameters only: forward, gradients and evaluate */
        unbind(self);
        self->params = (PyArrayObject *)Py_NewRef(params);
        self->grads = (PyArrayObject *)Py_NewRef(grads);
        Py_RETURN_NONE;
    }
    /* the optimizer: its kind, step array, lock and hyperparameters */
    PyObject *kind_o = PyObject_GetAttr(opt, str_kind);
    if (kind_o == NULL)
        return NULL;
    int kind;
    const int bad = parse_code(kind_o, "optimizer._kind", FO_N_OPTIM, &kind);
    Py_DECREF(kind_o);
    if (bad < 0)
        return NULL;
    PyObject *step_o = PyObject_GetAttr(opt, str_step);
    if (step_o == NULL)
        return NULL;
    PyArrayObject *step = exact_array(step_o, "optimizer._step", NPY_INT64, 1, 1);
    PyObject *lock = step ? PyObject_GetAttr(opt, str_lock) : NULL;
    PyObject *acq = lock ? PyObject_GetAttrString(lock, "acquire") : NULL;
    PyObject *rel = acq ? PyObject_GetAttrString(lock, "release") : NULL;
    PyObject *hyper_o = rel ? PyObject_GetAttr(opt, str_hyper) : NULL;
    fo_optim_hyper h;
    const int prev_kind = self->kind;
    self->kind = (int)kind;
    if (!hyper_o || parse_hyper(hyper_o, &h) < 0 || check_slots_used(self, &h, slots) < 0) {
        self->kind = prev_kind;
        Py_XDECREF(lock);
        Py_XDECREF(acq);
        Py_XDECREF(rel);
        Py_XDECREF(hyper_o);
        Py_DECREF(step_o);
        return NULL;
    }
    Py_XDECREF(lock);
    unbind(self);
    self->kind = (int)kind;
    self->params = (PyArrayObject *)Py_NewRef(params);
    self->grads = (PyArrayObject *)Py_NewRef(grads);
    for (int k = 0; k < FO_MAX_SLOTS; k++)
        self->slots[k] = (PyArrayObject *)Py_XNewRef(slots[k]);
    self->opt = Py_NewRef(opt);
    self->step = step; /* the reference from GetAttr */
    self->lock_acquire = acq;
    self->lock_release = rel;
    self->hyper_obj = hyper_o;
    self->hyper = h;
    self->tob_start = NAN;
    Py_RETURN_NONE;
}

static PyObject *net_unbind(NetObject *self, PyObject *unused)
{
    unbind(self);
    Py_RETURN_NONE;
}

/* What a stepping call uses, held until it ends: another thread may rebind
 * the network (compile) while the kernel runs without the GIL. */
typedef struct {
    PyObject *obj[4 + FO_MAX_SLOTS];
    int n;
    PyObject *release; /* the optimizer lock's release (one of obj) */
} held_refs;

static void hold(held_refs *h, PyObject *o)
{
    if (o)
        h->obj[h->n++] = Py_NewRef(o);
}

/* release the optimizer's lock and the references; an error already set wins */
static void step_end(held_refs *h)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *r = PyObject_CallNoArgs(h->release);
    Py_XDECREF(r);
    if (et)
        PyErr_Restore(et, ev, tb);
    for (int i = 0; i < h->n; i++)
        Py_DECREF(h->obj[i]);
    h->n = 0;
}

/* take the optimizer's lock and fill *o for n_steps steps, holding what the
 * call uses; on failure nothing is held and the lock is released */
static int step_begin(NetObject *self, fo_opt *o, size_t n_steps, held_refs *held)
{
    held->n = 0;
    hold(held, self->lock_release);
    held->release = self->lock_release;
    hold(held, (PyObject *)self->params);
    hold(held, (PyObject *)self->grads);
    hold(held, (PyObject *)self->step);
    for (int k = 0; k < FO_MAX_SLOTS; k++)
        hold(held, (PyObject *)self->slots[k]);
    PyObject *r = PyObject_CallNoArgs(self->lock_acquire);
    if (r == NULL) {
        for (int i = 0; i < held->n; i++)
            Py_DECREF(held->obj[i]);
        held->n = 0;
        return -1;
    }
    Py_DECREF(r);
    PyObject *hyper_o = PyObject_GetAttr(self->opt, str_hyper);
    if (hyper_o == NULL)
        goto fail;
    if (hyper_o != self->hyper_obj) { /* reconfigured since the last step */
        fo_optim_hyper h;
        if (parse_hyper(hyper_o, &h) < 0 || check_slots_used(self, &h, self->slots) < 0) {
            Py_DECREF(hyper_o);
            goto fail;
        }
        Py_SETREF(self->hyper_obj, hyper_o);
        self->hyper = h;
    } else {
        Py_DECREF(hyper_o);
    }
    const int64_t step = *(int64_t *)PyArray_DATA(self->step);
    if (step < 0 || step > FO_MAX_STEP - (int64_t)n_steps) {
        PyErr_Format(PyExc_ValueError, "optimizer.iterations = %lld is out of range: it must stay "
                                       "in [0, 2**53]", (long long)step);
        goto fail;
    }
    o->kind = self->kind;
    o->h = self->hyper;
    o->h.iteration = step;
    for (int k = 0; k < FO_MAX_SLOTS; k++)
        o->slot[k] = self->slots[k] ? PyArray_DATA(self->slots[k]) : NULL;
    o->step = PyArray_DATA(self->step);
    return 0;
fail:
    step_end(held);
    return -1;
}

/* fail unless the inputs of a training call share no memory with what it writes */
static int inputs_disjoint(NetObject *self, PyArrayObject **in, const char **in_names, int n_in,
                           int soft)
{
    PyArrayObject *arrs[2 + FO_MAX_SLOTS + 4] = {self->params, self->grads};
    const char *names[2 + FO_MAX_SLOTS + 4] = {"params", "grads"};
    int n = 2;
    for (int k = 0; k < FO_MAX_SLOTS; k++) {
        if (self->slots[k]) {
            arrs[n] = self->slots[k];
            names[n++] = slot_name(k);
        }
    }
    const int n_out = n;
    for (int i = 0; i < n_in && i < 4; i++) {
        arrs[n] = in[i];
        names[n++] = in_names[i];
    }
    if (soft) {
        for (int i = 0; i < n_out; i++)
            for (int j = n_out; j < n; j++)
                if (arrs[j] && overlaps(arrs[i], arrs[j]) != 0) {
                    PyErr_Clear();
                    return 0;
                }
        return 1;
    }
    return check_disjoint(arrs, names, n_out, n) < 0 ? -1 : 1;
}

static int soft_flag(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t at)
{
    return nargs > at ? PyObject_IsTrue(args[at]) : 0;
}

PyDoc_STRVAR(forward_doc, "forward(x, soft=False) -> out (n, units[-1])\n\n"
                          "The network applied to x (n, units[0]) with the bound params.");

static PyObject *net_forward_m(NetObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "forward(x, soft=False)");
        return NULL;
    }
    const int soft = soft_flag(args, nargs, 1);
    if (soft < 0)
        return NULL;
    PyArrayObject *params = self->params;
    if (params == NULL) {
        if (soft)
            Py_RETURN_NOTIMPLEMENTED;
        PyErr_SetString(PyExc_ValueError, "forward: no params bound");
        return NULL;
    }
    const fo_net *net = &self->net;
    PyArrayObject *x;
    int r = data_array(args[0], "x", self->typenum, (npy_intp)net->units[0], -1, soft, &x);
    if (r <= 0) {
        if (r == 0)
            Py_RETURN_NOTIMPLEMENTED;
        return NULL;
    }
    const npy_intp n = PyArray_DIM(x, 0), dims[2] = {n, (npy_intp)net->units[net->n_layers]};
    const size_t ws = workspace_size(net, (size_t)n, "x");
    if (ws == (size_t)-1)
        return NULL;
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(2, dims, self->typenum);
    int owned;
    void *work = out ? work_take(self, ws, &owned) : NULL;
    if (work == NULL) {
        Py_XDECREF(out);
        return NULL;
    }
    Py_INCREF(params); /* kept while the GIL is released: another thread may rebind */
    py_ctl p;
    release_gil(&p, (double)n * (double)net->n_params);
    if (self->typenum == NPY_FLOAT32)
        fo_net_forward_f32(PyArray_DATA(out), PyArray_DATA(x), PyArray_DATA(params), net, n, work, &p.ctl);
    else
        fo_net_forward_f64(PyArray_DATA(out), PyArray_DATA(x), PyArray_DATA(params), net, n, work, &p.ctl);
    const int stopped = take_gil(&p);
    Py_DECREF(params);
    work_give(self, work, owned);
    if (stopped < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return (PyObject *)out;
}

/* x, y and sample weights of a batch call: 1 ok, 0 not fast (soft), -1 error */
static int batch_arrays(NetObject *self, PyObject *const *args, int soft, PyArrayObject **x,
                        PyArrayObject **y, PyArrayObject **sw)
{
    const fo_net *net = &self->net;
    int r = data_array(args[0], "x", self->typenum, (npy_intp)net->units[0], -1, soft, x);
    if (r > 0)
        r = data_array(args[1], "y", self->typenum, (npy_intp)net->ycols, PyArray_DIM(*x, 0), soft, y);
    if (r > 0)
        r = weight_array(args[2], self->typenum, PyArray_DIM(*x, 0), soft, sw);
    if (r > 0 && net->loss.kind >= FO_LOSS_BCE) { /* targets the loss can take (fo.losses' check) */
        const size_t B = (size_t)PyArray_DIM(*y, 0), C = net->units[net->n_layers];
        const size_t bad = self->typenum == NPY_FLOAT32
            ? fo_loss_check_targets_f32(PyArray_DATA(*y), B, net->ycols, C, net->loss.kind, 1)
            : fo_loss_check_targets_f64(PyArray_DATA(*y), B, net->ycols, C, net->loss.kind, 1);
        if (bad < B) {
            if (soft)
                return 0;
            PyErr_Format(PyExc_ValueError,
                         net->loss.kind == FO_LOSS_SCCE
                             ? "y: row %zu is not a class index in [0, %zu)"
                             : net->loss.kind == FO_LOSS_CCE
                                   ? "y: row %zu is not a distribution over the %zu classes (entries >= 0 "
                                     "summing to 1)"
                                   : "y: row %zu has a target outside [0, 1] (%zu outputs)",
                         bad, C);
            return -1;
        }
    }
    return r;
}

PyDoc_STRVAR(gradients_doc,
             "gradients(x, y, sample_weight=None, soft=False) -> (loss, grads)\n\n"
             "The batch loss (sum_i w_i loss_i / n + penalties) and its gradients, read-only\n"
             "views (Keras order) of one new flat array.");

/* the arguments of gradients and evaluate, (x, y, sample_weight=None, soft=False):
 * 1 with x, y, sw set, 0 when soft and the thorough path is needed, -1 on error */
static int xy_arguments(NetObject *self, const char *what, PyObject *const *args, Py_ssize_t nargs,
                        PyArrayObject **x, PyArrayObject **y, PyArrayObject **sw)
{
    if (nargs < 2 || nargs > 4) {
        PyErr_Format(PyExc_TypeError, "%s(x, y, sample_weight=None, soft=False)", what);
        return -1;
    }
    PyObject *argv[3] = {args[0], args[1], nargs > 2 ? args[2] : Py_None};
    const int soft = soft_flag(args, nargs, 3);
    if (soft < 0)
        return -1;
    if (self->params == NULL) {
        if (soft)
            return 0;
        PyErr_Format(PyExc_ValueError, "%s: no params bound", what);
        return -1;
    }
    return batch_arrays(self, argv, soft, x, y, sw);
}

static PyObject *net_gradients_m(NetObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyArrayObject *x, *y, *sw;
    const int r = xy_arguments(self, "gradients", args, nargs, &x, &y, &sw);
    if (r <= 0) {
        if (r == 0)
            Py_RETURN_NOTIMPLEMENTED;
        return NULL;
    }
    PyArrayObject *params = self->params;
    const fo_net *net = &self->net;
    const npy_intp n = PyArray_DIM(x, 0);
    const size_t ws = workspace_size(net, (size_t)n, "x");
    if (ws == (size_t)-1)
        return NULL;
    PyObject *views = NULL;
    PyArrayObject *g = grads_take(self, &views);
    int owned;
    void *work = g ? work_take(self, ws, &owned) : NULL;
    if (work == NULL) {
        Py_XDECREF(views);
        return NULL;
    }
    fo_stats st = {0, 0, 0, 0};
    double loss;
    const void *swp = sw ? PyArray_DATA(sw) : NULL;
    Py_INCREF(params); /* kept while the GIL is released: another thread may rebind */
    PyArrayObject *rng_a = (PyArrayObject *)Py_NewRef(self->rng);
    fo_rng rng; /* dropout's masks come from the model's stream */
    memcpy(rng.s, PyArray_DATA(rng_a), sizeof rng.s);
    py_ctl p;
    release_gil(&p, 3.0 * (double)n * (double)net->n_params);
    if (self->typenum == NPY_FLOAT32)
        loss = fo_net_gradients_f32(PyArray_DATA(g), PyArray_DATA(x), PyArray_DATA(y), swp,
                                    PyArray_DATA(params), net, n, work, &st, NULL, &rng, &p.ctl);
    else
        loss = fo_net_gradients_f64(PyArray_DATA(g), PyArray_DATA(x), PyArray_DATA(y), swp,
                                    PyArray_DATA(params), net, n, work, &st, NULL, &rng, &p.ctl);
    const int stopped = take_gil(&p);
    if (stopped == 0)
        memcpy(PyArray_DATA(rng_a), rng.s, sizeof rng.s);
    Py_DECREF(rng_a);
    Py_DECREF(params);
    work_give(self, work, owned);
    if (stopped < 0) {
        Py_DECREF(views);
        return NULL;
    }
    PyObject *lo = PyFloat_FromDouble(loss), *out = lo ? PyTuple_New(2) : NULL;
    if (out == NULL) {
        Py_XDECREF(lo);
        Py_DECREF(views);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 0, lo); /* (loss, views) without parsing a format per call */
    PyTuple_SET_ITEM(out, 1, views);
    return out;
}

PyDoc_STRVAR(evaluate_doc,
             "evaluate(x, y, sample_weight=None, soft=False) -> (loss, sse, sae, acc)\n\n"
             "The loss of x, y (the reduced loss + penalties), the sums of squared and\n"
             "absolute errors of every output (unweighted) and the metrics' sums (a tuple\n"
             "of n_acc floats), without dropout.");

static PyObject *net_evaluate_m(NetObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyArrayObject *x, *y, *sw;
    const int r = xy_arguments(self, "evaluate", args, nargs, &x, &y, &sw);
    if (r <= 0) {
        if (r == 0)
            Py_RETURN_NOTIMPLEMENTED;
        return NULL;
    }
    const fo_net *net = &self->net;
    const npy_intp n = PyArray_DIM(x, 0);
    const size_t ws = workspace_size(net, (size_t)n, "x");
    int owned;
    void *work = ws == (size_t)-1 ? NULL : work_take(self, ws, &owned);
    if (work == NULL)
        return NULL;
    fo_stats st = {0, 0, 0, 0};
    double loss, acc[FO_MAX_METRICS * 4 + 16];
    double *accp = net->n_acc <= sizeof acc / sizeof acc[0] ? acc : PyMem_Calloc(net->n_acc, sizeof(double));
    if (accp == NULL) {
        work_give(self, work, owned);
        return PyErr_NoMemory();
    }
    memset(accp, 0, net->n_acc * sizeof(double));
    const void *swp = sw ? PyArray_DATA(sw) : NULL;
    PyArrayObject *params = (PyArrayObject *)Py_NewRef(self->params); /* kept: see forward */
    py_ctl p;
    release_gil(&p, (double)n * (double)net->n_params);
    if (self->typenum == NPY_FLOAT32)
        loss = fo_net_evaluate_f32(PyArray_DATA(x), PyArray_DATA(y), swp, PyArray_DATA(params), net, n,
                                   work, &st, accp, &p.ctl);
    else
        loss = fo_net_evaluate_f64(PyArray_DATA(x), PyArray_DATA(y), swp, PyArray_DATA(params), net, n,
                                   work, &st, accp, &p.ctl);
    const int stopped = take_gil(&p);
    Py_DECREF(params);
    work_give(self, work, owned);
    PyObject *accs = stopped < 0 ? NULL : acc_tuple(accp, net->n_acc);
    if (accp != acc)
        PyMem_Free(accp);
    if (accs == NULL)
        return NULL;
    return Py_BuildValue("(dddN)", loss, st.sse, st.sae, accs);
}

PyDoc_STRVAR(train_on_batch_doc,
             "train_on_batch(x, y, sample_weight, lr, soft=False) -> (loss, sse, sae, bad, acc)\n\n"
             "One step on the batch x, y: forward, backward and the bound optimizer's update\n"
             "with learning rate lr (a float or a float64 array of 1), counted in its _step.\n"
             "loss is the batch's loss before the update; bad is nonzero when the loss or the\n"
             "parameters became non-finite, or the loss grew 1e6x above the first one since bind.");

static PyObject *net_train_on_batch(NetObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 4 || nargs > 5) {
        PyErr_SetString(PyExc_TypeError, "train_on_batch(x, y, sample_weight, lr, soft=False)");
        return NULL;
    }
    const int soft = soft_flag(args, nargs, 4);
    if (soft < 0)
        return NULL;
    if (self->opt == NULL) {
        if (soft)
            Py_RETURN_NOTIMPLEMENTED;
        PyErr_SetString(PyExc_ValueError, "train_on_batch: the network is not bound to an optimizer");
        return NULL;
    }
    PyArrayObject *x, *y, *sw;
    int r = batch_arrays(self, args, soft, &x, &y, &sw);
    if (r > 0) {
        PyArrayObject *in[3] = {x, y, sw};
        const char *in_names[3] = {"x", "y", "sample_weight"};
        r = inputs_disjoint(self, in, in_names, 3, soft);
    }
    if (r <= 0) {
        if (r == 0)
            Py_RETURN_NOTIMPLEMENTED;
        return NULL;
    }
    double lr1;
    PyArrayObject *lr = lr_array(args[3], 1, &lr1);
    if (lr == NULL)
        return NULL;
    const double *lrp = (PyObject *)lr == Py_None ? &lr1 : PyArray_DATA(lr);
    const fo_net *net = &self->net;
    const npy_intp n = PyArray_DIM(x, 0);
    const size_t ws = workspace_size(net, (size_t)n, "x");
    if (ws == (size_t)-1)
        return NULL;
    fo_opt o;
    held_refs held;
    if (step_begin(self, &o, 1, &held) < 0) /* the lock is held from here */
        return NULL;
    o.lr = lrp;
    o.n_lr = 1;
    PyArrayObject *params = self->params, *grads = self->grads;
    int owned;
    void *work = work_take(self, ws, &owned);
    if (work == NULL) {
        step_end(&held);
        return NULL;
    }
    double acc[FO_MAX_METRICS * 4 + 16];
    double *accp = net->n_acc <= sizeof acc / sizeof acc[0] ? acc : PyMem_Calloc(net->n_acc, sizeof(double));
    if (accp == NULL) {
        work_give(self, work, owned);
        step_end(&held);
        return PyErr_NoMemory();
    }
    memset(accp, 0, net->n_acc * sizeof(double));
    PyArrayObject *rng_a = (PyArrayObject *)Py_NewRef(self->rng);
    fo_rng rng; /* dropout's masks come from the model's stream */
    memcpy(rng.s, PyArray_DATA(rng_a), sizeof rng.s);
    fo_data d = {PyArray_DATA(x), PyArray_DATA(y), sw ? PyArray_DATA(sw) : NULL, (size_t)n, (size_t)n,
                 1, 0, NULL, &rng, 0};
    fo_stats st = {0, 0, 0, 0};
    fo_report rep;
    py_ctl p;
    release_gil(&p, 3.0 * (double)n * (double)net->n_params);
    if (self->typenum == NPY_FLOAT32)
        rep = fo_net_train_f32(PyArray_DATA(params), PyArray_DATA(grads), &o, &d, net, 1, work, &st,
                               accp, &self->tob_start, &p.ctl);
    else
        rep = fo_net_train_f64(PyArray_DATA(params), PyArray_DATA(grads), &o, &d, net, 1, work, &st,
                               accp, &self->tob_start, &p.ctl);
    const int stopped = take_gil(&p);
    memcpy(PyArray_DATA(rng_a), rng.s, sizeof rng.s);
    Py_DECREF(rng_a);
    work_give(self, work, owned);
    step_end(&held);
    PyObject *accs = stopped < 0 ? NULL : acc_tuple(accp, net->n_acc);
    if (accp != acc)
        PyMem_Free(accp);
    if (accs == NULL)
        return NULL;
    return Py_BuildValue("(dddiN)", rep.loss, st.sse, st.sae, rep.bad, accs);
}

PyDoc_STRVAR(batches_doc,
             "batches(x, y, sample_weight, batch_size, shuffle, steps_per_epoch=0) -> Batches\n\n"
             "The data set x, y (sample_weight: None or (n,)) walked in mini-batches of\n"
             "batch_size rows (at most n), steps_per_epoch of them per epoch (0: all),\n"
             "reshuffled at the start of each epoch with the model's generator.");

static PyObject *net_batches(NetObject *self, PyObject *args)
{
    PyObject *xo, *yo, *swo, *batch_o, *steps_o = NULL;
    long long batch, steps = 0;
    int shuffle;
    if (!PyArg_ParseTuple(args, "OOOOp|O", &xo, &yo, &swo, &batch_o, &shuffle, &steps_o) ||
        parse_int(batch_o, "batch_size", 1, PY_SSIZE_T_MAX, &batch) < 0 ||
        (steps_o && parse_int(steps_o, "steps_per_epoch", 0, PY_SSIZE_T_MAX, &steps) < 0))
        return NULL;
    PyObject *argv[3] = {xo, yo, swo};
    PyArrayObject *x, *y, *sw;
    if (batch_arrays(self, argv, 0, &x, &y, &sw) < 0)
        return NULL;
    const npy_intp n = PyArray_DIM(x, 0);
    if (batch < 1) {
        PyErr_Format(PyExc_ValueError, "batch_size must be >= 1, got %lld", batch);
        return NULL;
    }
    if (batch > n)
        batch = n;
    const npy_intp all = (n + batch - 1) / batch;
    if (steps < 0 || steps > all) {
        PyErr_Format(PyExc_ValueError, "steps_per_epoch must be in [1, %zd] (the batches of one "
                                       "epoch), got %lld", all, steps);
        return NULL;
    }
    if (workspace_size(&self->net, (size_t)batch, "batch_size") == (size_t)-1)
        return NULL;
    PyArrayObject *perm = NULL;
    if (shuffle && !(perm = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_INT64)))
        return NULL;
    BatchesObject *b = PyObject_GC_New(BatchesObject, &BatchesType);
    if (b == NULL) {
        Py_XDECREF(perm);
        return NULL;
    }
    b->net = (NetObject *)Py_NewRef(self);
    b->x = (PyArrayObject *)Py_NewRef(x);
    b->y = (PyArrayObject *)Py_NewRef(y);
    b->sw = (PyArrayObject *)Py_XNewRef(sw);
    b->perm = perm;
    b->data = (fo_data){PyArray_DATA(x), PyArray_DATA(y), sw ? PyArray_DATA(sw) : NULL, (size_t)n,
                        (size_t)batch, (size_t)(steps ? steps : all), shuffle,
                        perm ? PyArray_DATA(perm) : NULL, NULL, 0};
    b->loss_start = NAN;
    b->busy = 0;
    PyObject_GC_Track(b);
    return (PyObject *)b;
}

PyDoc_STRVAR(train_doc,
             "train(batches, n_steps, lr, stats) -> (steps, bad_step, bad, loss)\n\n"
             "n_steps steps of the bound optimizer over batches, from where it stands.  lr:\n"
             "float64 array of 1 or n_steps learning rates.  stats: float64 (epochs, 4 + n_acc),\n"
             "row e adds (loss*rows, sse, sae, penalty*rows, metric sums...) of the e-th epoch\n"
             "the call touches.\n"
             "bad_step: the first step (of this call) whose loss was non-finite or 1e6x the\n"
             "run's first, or -1 (or, bad == 3, the last step if the parameters are not\n"
             "finite); loss: the last step's.  On an interrupt every step taken is counted.");

static PyObject *net_train(NetObject *self, PyObject *args)
{
    BatchesObject *b;
    long long n_steps;
    PyObject *lro, *stats_o, *n_steps_o;
    if (!PyArg_ParseTuple(args, "O!OOO", &BatchesType, &b, &n_steps_o, &lro, &stats_o) ||
        parse_int(n_steps_o, "n_steps", LLONG_MIN, PY_SSIZE_T_MAX, &n_steps) < 0)
        return NULL;
    if (self->opt == NULL) {
        PyErr_SetString(PyExc_ValueError, "train: the network is not bound to an optimizer");
        return NULL;
    }
    if (b->net != self) {
        PyErr_SetString(PyExc_ValueError, "train: batches belong to another network");
        return NULL;
    }
    if (b->busy) {
        PyErr_SetString(PyExc_ValueError, "train: these batches are in use by another call");
        return NULL;
    }
    if (n_steps < 0) {
        PyErr_Format(PyExc_ValueError, "n_steps must be >= 0, got %lld", n_steps);
        return NULL;
    }
    fo_data *d = &b->data;
    /* the epochs the call touches: the one at d->pos and those after it */
    const npy_intp epochs = n_steps == 0 ? 0 : ((npy_intp)d->pos + n_steps + (npy_intp)d->steps - 1) /
                                                   (npy_intp)d->steps;
    double lr1;
    PyArrayObject *lr = lr_array(lro, n_steps, &lr1);
    if (lr == NULL)
        return NULL;
    const double *lrp = (PyObject *)lr == Py_None ? &lr1 : PyArray_DATA(lr);
    const npy_intp n_lr = (PyObject *)lr == Py_None ? 1 : PyArray_SIZE(lr);
    const size_t n_acc = self->net.n_acc;
    PyArrayObject *stats = exact_2d(stats_o, "stats", NPY_FLOAT64, 1, -1, 4 + (npy_intp)n_acc);
    if (stats == NULL)
        return NULL;
    if (PyArray_DIM(stats, 0) < epochs) {
        PyErr_Format(PyExc_ValueError, "stats must have at least %zd rows, got %zd", epochs,
                     PyArray_DIM(stats, 0));
        return NULL;
    }
    if (d->shuffle && rng_nonzero(self->rng) < 0)
        return NULL;
    PyArrayObject *in[4] = {b->x, b->y, b->sw, b->perm};
    const char *in_names[4] = {"x", "y", "sample_weight", "perm"};
    if (inputs_disjoint(self, in, in_names, 4, 0) < 0)
        return NULL;
    PyArrayObject *st_in[2] = {stats, self->rng};
    const char *st_names[2] = {"stats", "rng_state"};
    if (inputs_disjoint(self, st_in, st_names, 2, 0) < 0)
        return NULL;
    const size_t ws = workspace_size(&self->net, d->batch, "batch_size");
    if (ws == (size_t)-1)
        return NULL;
    /* the kernel adds each step's sums to the rows in order, so an epoch split
     * over several calls sums as it would in one */
    fo_stats *per_epoch = PyMem_Calloc(epochs ? (size_t)epochs : 1, sizeof(fo_stats));
    double *per_acc = PyMem_Calloc(epochs && n_acc ? (size_t)epochs * n_acc : 1, sizeof(double));
    if (per_epoch == NULL || per_acc == NULL) {
        PyMem_Free(per_epoch);
        PyMem_Free(per_acc);
        return PyErr_NoMemory();
    }
    for (npy_intp e = 0; e < epochs; e++) {
        const double *row = (const double *)PyArray_GETPTR2(stats, e, 0);
        per_epoch[e] = (fo_stats){.loss = row[0], .sse = row[1], .sae = row[2], .penalty = row[3]};
        for (size_t k = 0; k < n_acc; k++)
            per_acc[(size_t)e * n_acc + k] = row[4 + k];
    }
    fo_opt o;
    held_refs held;
    if (step_begin(self, &o, (size_t)n_steps, &held) < 0) { /* the lock is held from here */
        PyMem_Free(per_epoch);
        PyMem_Free(per_acc);
        return NULL;
    }
    o.lr = lrp;
    o.n_lr = (size_t)n_lr;
    PyArrayObject *params = self->params, *grads = self->grads, *rng_a = self->rng;
    int owned;
    void *work = work_take(self, ws, &owned);
    if (work == NULL) {
        step_end(&held);
        PyMem_Free(per_epoch);
        PyMem_Free(per_acc);
        return NULL;
    }
    b->busy = 1;
    fo_rng rng;
    memcpy(rng.s, PyArray_DATA(rng_a), sizeof rng.s);
    d->rng = &rng;
    fo_report rep;
    py_ctl p;
    release_gil(&p, 3.0 * (double)n_steps * (double)d->batch * (double)self->net.n_params);
    if (self->typenum == NPY_FLOAT32)
        rep = fo_net_train_f32(PyArray_DATA(params), PyArray_DATA(grads), &o, d, &self->net,
                               (size_t)n_steps, work, per_epoch, per_acc, &b->loss_start, &p.ctl);
    else
        rep = fo_net_train_f64(PyArray_DATA(params), PyArray_DATA(grads), &o, d, &self->net,
                               (size_t)n_steps, work, per_epoch, per_acc, &b->loss_start, &p.ctl);
    const int stopped = take_gil(&p);
    d->rng = NULL;
    memcpy(PyArray_DATA(rng_a), rng.s, sizeof rng.s);
    b->busy = 0;
    work_give(self, work, owned);
    step_end(&held);
    for (npy_intp e = 0; e < epochs; e++) {
        double *row = (double *)PyArray_GETPTR2(stats, e, 0);
        row[0] = per_epoch[e].loss;
        row[1] = per_epoch[e].sse;
        row[2] = per_epoch[e].sae;
        row[3] = per_epoch[e].penalty;
        for (size_t k = 0; k < n_acc; k++)
            row[4 + k] = per_acc[(size_t)e * n_acc + k];
    }
    PyMem_Free(per_epoch);
    PyMem_Free(per_acc);
    if (stopped < 0)
        return NULL;
    return Py_BuildValue("(nLid)", (Py_ssize_t)rep.done, (long long)rep.bad_step, rep.bad, rep.loss);
}

static PyMethodDef net_methods[] = {
    {"views", (PyCFunction)(void (*)(void))net_views, METH_VARARGS | METH_KEYWORDS, views_doc},
    {"bind", (PyCFunction)net_bind, METH_VARARGS, bind_doc},
    {"unbind", (PyCFunction)net_unbind, METH_NOARGS, "unbind(): forget the bound buffers and optimizer"},
    {"forward", (PyCFunction)(void (*)(void))net_forward_m, METH_FASTCALL, forward_doc},
    {"gradients", (PyCFunction)(void (*)(void))net_gradients_m, METH_FASTCALL, gradients_doc},
    {"evaluate", (PyCFunction)(void (*)(void))net_evaluate_m, METH_FASTCALL, evaluate_doc},
    {"train_on_batch", (PyCFunction)(void (*)(void))net_train_on_batch, METH_FASTCALL,
     train_on_batch_doc},
    {"batches", (PyCFunction)net_batches, METH_VARARGS, batches_doc},
    {"train", (PyCFunction)net_train, METH_VARARGS, train_doc},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef net_getset[] = {
    {"n_params", (getter)net_get_n_params, NULL, "number of parameters (the flat buffer's length)", NULL},
    {"units", (getter)net_get_units, NULL, "(input features, units of each layer)", NULL},
    {"layout", (getter)net_get_layout, NULL,
     "((offset, shape) of every kernel and bias in the flat buffer, Keras order)", NULL},
    {"chunk_rows", (getter)net_get_chunk_rows, NULL, "rows a batch is run through the layers at a time",
     NULL},
    {"bound", (getter)net_get_bound, NULL, "whether bind() gave it buffers and an optimizer", NULL},
    {"loss", (getter)net_get_loss, (setter)net_set_loss,
     "the loss code (LOSS_MSE, ...) the batch loss and its gradient use; set a code or fo.losses' "
     "c_spec (code, reduction, from_logits, label_smoothing, delta)", NULL},
    {"ycols", (getter)net_get_ycols, NULL, "columns of y: 1 (class indices) for sparse CE, else the outputs",
     NULL},
    {"metrics", (getter)net_get_metrics, (setter)net_set_metrics,
     "the metrics ((kind, threshold, k), ...) summed per batch in C", NULL},
    {"n_acc", (getter)net_get_n_acc, NULL, "doubles of the metrics' sums", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject NetType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "fastopt._core.Network",
    .tp_basicsize = sizeof(NetObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = net_doc,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)net_init,
    .tp_dealloc = (destructor)net_dealloc,
    .tp_traverse = (traverseproc)net_traverse,
    .tp_clear = (inquiry)net_clear,
    .tp_methods = net_methods,
    .tp_getset = net_getset,
};

/* ---- Batches ---- */

static int batches_traverse(BatchesObject *b, visitproc visit, void *arg)
{
    Py_VISIT(b->net);
    Py_VISIT(b->x);
    Py_VISIT(b->y);
    Py_VISIT(b->sw);
    Py_VISIT(b->perm);
    return 0;
}

static int batches_clear(BatchesObject *b)
{
    Py_CLEAR(b->net);
    Py_CLEAR(b->x);
    Py_CLEAR(b->y);
    Py_CLEAR(b->sw);
    Py_CLEAR(b->perm);
    return 0;
}

static void batches_dealloc(BatchesObject *b)
{
    PyObject_GC_UnTrack(b);
    batches_clear(b);
    PyObject_GC_Del(b);
}

static PyObject *batches_get(BatchesObject *b, void *which)
{
    switch ((int)(intptr_t)which) {
    case 0:
        return PyLong_FromSize_t(b->data.n);
    case 1:
        return PyLong_FromSize_t(b->data.batch);
    case 2:
        return PyLong_FromSize_t(b->data.steps);
    default:
        return PyLong_FromSize_t(b->data.pos);
    }
}

static PyGetSetDef batches_getset[] = {
    {"n", (getter)batches_get, NULL, "samples", (void *)0},
    {"batch_size", (getter)batches_get, NULL, "rows per batch (the last may have fewer)", (void *)1},
    {"steps", (getter)batches_get, NULL, "batches per epoch", (void *)2},
    {"pos", (getter)batches_get, NULL, "the batch of the epoch the next step takes", (void *)3},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject BatchesType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "fastopt._core.Batches",
    .tp_basicsize = sizeof(BatchesObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A data set walked in mini-batches by Network.train (made by Network.batches).",
    .tp_dealloc = (destructor)batches_dealloc,
    .tp_traverse = (traverseproc)batches_traverse,
    .tp_clear = (inquiry)batches_clear,
    .tp_getset = batches_getset,
};

/* ------------------------------------------------------------------ */
/* ModelBase: the C base of fastopt.models.Sequential                  */
/* ------------------------------------------------------------------ */

/* 0 sends every ModelBase call to the Python thorough path (tests force each path) */
static int model_fast_enabled = 1;
static PyObject *str_net, *str_variables, *str_cg_thorough;

/* self._compute_gradients(*args, **kwargs): the thorough path, with the call's
 * own arguments, so that its messages are those of a Python method */
static PyObject *call_thorough(PyObject *self, PyObject *name, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *small[8], **argv = small;
    if (1 + nargs + nkw > (Py_ssize_t)(sizeof small / sizeof *small) &&
        !(argv = PyMem_Malloc((size_t)(1 + nargs + nkw) * sizeof *argv)))
        return PyErr_NoMemory();
    argv[0] = self;
    for (Py_ssize_t i = 0; i < nargs + nkw; i++)
        argv[1 + i] = args[i];
    PyObject *r = PyObject_VectorcallMethod(name, argv, (size_t)(1 + nargs), kwnames);
    if (argv != small)
        PyMem_Free(argv);
    return r;
}

PyDoc_STRVAR(compute_gradients_doc,
             "compute_gradients($self, x, y, sample_weight=None)\n--\n\n"
             "``loss, grads`` of the whole batch ``x, y`` (the loss of ``train_on_batch``),\n"
             "the grads shaped like ``trainable_variables`` and read-only: the articles'\n"
             "GradientTape step is ``opt.apply_gradients(zip(grads, model.trainable_variables))``.\n\n"
             "Arrays that need no conversion go straight to C (the fast path, no Python\n"
             "frame); anything else is converted or refused by the thorough path, with the\n"
             "same results.  A result nothing holds any more is written again by a later\n"
             "call instead of allocating new arrays.");

static PyObject *modelbase_compute_gradients(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                             PyObject *kwnames)
{
    if (model_fast_enabled && kwnames == NULL && (nargs == 2 || (nargs == 3 && args[2] == Py_None))) {
        PyObject *net = PyObject_GetAttr(self, str_net);
        if (net != NULL && Py_TYPE(net) == &NetType) {
            PyObject *argv[4] = {args[0], args[1], Py_None, Py_True};
            PyObject *r = net_gradients_m((NetObject *)net, argv, 4);
            Py_DECREF(net);
            if (r != Py_NotImplemented)
                return r; /* the result, or an error the fast path may raise (an interrupt) */
            Py_DECREF(r);
        } else {
            Py_XDECREF(net);
            PyErr_Clear(); /* no network (not built): the thorough path says so */
        }
    }
    /* the thorough path is a private method: name this one in an argument error */
    static const char *const names[] = {"x", "y", "sample_weight"};
    const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "compute_gradients() takes x, y and sample_weight (%zd arguments given)",
                     nargs + nkw);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        int known = 0;
        for (size_t j = 0; j < 3 && !known; j++)
            known = PyUnicode_CompareWithASCIIString(k, names[j]) == 0;
        if (!known) {
            PyErr_Format(PyExc_TypeError, "compute_gradients() got an unexpected keyword argument %R "
                                          "(it takes x, y, sample_weight)", k);
            return NULL;
        }
    }
    return call_thorough(self, str_cg_thorough, args, nargs, kwnames);
}

static PyObject *modelbase_trainable_variables(PyObject *self, void *closure)
{
    PyObject *v = PyObject_GetAttr(self, str_variables);
    if (v == NULL)
        return NULL;
    /* a fresh list each call, as Keras */
    PyObject *r = PyList_CheckExact(v) ? PyList_GetSlice(v, 0, PY_SSIZE_T_MAX) : PySequence_List(v);
    Py_DECREF(v);
    return r;
}

PyDoc_STRVAR(model_fast_path_doc,
             "model_fast_path(enabled=None) -> the previous setting; False sends\n"
             "ModelBase's methods through the thorough path (fastopt.models.use_fast_path)");

static PyObject *py_model_fast_path(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return fast_path_switch(&model_fast_enabled, "model_fast_path", args, nargs);
}

static PyMethodDef modelbase_methods[] = {
    {"compute_gradients", (PyCFunction)(void (*)(void))modelbase_compute_gradients,
     METH_FASTCALL | METH_KEYWORDS, compute_gradients_doc},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef modelbase_getset[] = {
    {"trainable_variables", (getter)modelbase_trainable_variables, NULL,
     "The live kernel and bias arrays (views into the flat buffer), Keras order; a\n"
     "fresh list each call, as Keras.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject ModelBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "fastopt._core.ModelBase",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The C base of fastopt.models.Sequential: the per-step calls' fast paths\n"
              "(compute_gradients, trainable_variables), called without a Python frame.\n"
              "They read the instance's _net (a Network) and _variables (a list), and\n"
              "send anything unusual to the Python thorough path.",
    .tp_methods = modelbase_methods,
    .tp_getset = modelbase_getset,
    .tp_new = PyType_GenericNew,
};

int fo_net_add_types(PyObject *module)
{
    if (!(str_hyper = PyUnicode_InternFromString("_hyper")) ||
        !(str_kind = PyUnicode_InternFromString("_kind")) ||
        !(str_step = PyUnicode_InternFromString("_step")) ||
        !(str_lock = PyUnicode_InternFromString("_lock")) ||
        !(str_net = PyUnicode_InternFromString("_net")) ||
        !(str_variables = PyUnicode_InternFromString("_variables")) ||
        !(str_cg_thorough = PyUnicode_InternFromString("_compute_gradients")))
        return -1;
    if (PyType_Ready(&NetType) < 0 || PyType_Ready(&BatchesType) < 0 || PyType_Ready(&ModelBaseType) < 0)
        return -1;
#if PY_VERSION_HEX >= 0x030D0000
    if (main_ident_init() < 0)
        return -1;
#endif
    if (PyModule_AddObjectRef(module, "Network", (PyObject *)&NetType) < 0 ||
        PyModule_AddObjectRef(module, "Batches", (PyObject *)&BatchesType) < 0 ||
        PyModule_AddObjectRef(module, "ModelBase", (PyObject *)&ModelBaseType) < 0)
        return -1;
    return PyModule_AddIntConstant(module, "LOSS_MSE", FO_LOSS_MSE);
}

/* ------------------------------------------------------------------ */
/* module-level wrappers: the spec and buffers given at each call      */
/* ------------------------------------------------------------------ */

static PyObject *py_net_sizes(PyObject *self, PyObject *args)
{
    PyObject *spec, *B_o;
    long long B;
    fo_net net;
    if (!PyArg_ParseTuple(args, "OO", &spec, &B_o) || parse_net(spec, &net) < 0 ||
        parse_int(B_o, "batch rows", LLONG_MIN, PY_SSIZE_T_MAX, &B) < 0)
        return NULL;
    if (B < 0) {
        PyErr_SetString(PyExc_ValueError, "batch rows must be >= 0");
        return NULL;
    }
    const size_t ws = workspace_size(&net, (size_t)B, "batch rows");
    if (ws == (size_t)-1)
        return NULL;
    return Py_BuildValue("nn", (Py_ssize_t)net.n_params, (Py_ssize_t)ws);
}

/* what every wrapper shares: the network, its dtype, params and x */
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
    a->params = exact_array(params_o, "params", a->typenum, 0, (npy_intp)a->net.n_params);
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
    const size_t need = workspace_size(&a->net, rows, "work");
    if (need == (size_t)-1)
        return NULL;
    PyArrayObject *work = exact_array(wo, "work", a->typenum, 1, -1);
    if (work && PyArray_SIZE(work) < (npy_intp)need) {
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
    py_ctl p;
    release_gil(&p, (double)B * (double)net->n_params);
    if (na.typenum == NPY_FLOAT32)
        fo_net_forward_f32(PyArray_DATA(out), PyArray_DATA(x), PyArray_DATA(na.params), net, B,
                           PyArray_DATA(work), &p.ctl);
    else
        fo_net_forward_f64(PyArray_DATA(out), PyArray_DATA(x), PyArray_DATA(na.params), net, B,
                           PyArray_DATA(work), &p.ctl);
    if (take_gil(&p) < 0)
        return NULL;
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
    py_ctl p;
    release_gil(&p, 3.0 * (double)B * (double)net->n_params);
    if (na.typenum == NPY_FLOAT32)
        fo_net_gradients_f32(PyArray_DATA(g), PyArray_DATA(x), PyArray_DATA(y), NULL,
                             PyArray_DATA(na.params), net, B, PyArray_DATA(work), &st, NULL, NULL,
                             &p.ctl);
    else
        fo_net_gradients_f64(PyArray_DATA(g), PyArray_DATA(x), PyArray_DATA(y), NULL,
                             PyArray_DATA(na.params), net, B, PyArray_DATA(work), &st, NULL, NULL,
                             &p.ctl);
    if (take_gil(&p) < 0)
        return NULL;
    return stats_tuple(&st);
}

PyDoc_STRVAR(train_epoch_doc,
             "train_epoch(params, grads, slots, kind, hyper, lr, iteration, x, y, batch_size,\n"
             "            spec, perm, rng_state, shuffle, work, epochs=1, stats=None)\n"
             "    -> (steps, loss*n, sse, sae, penalty*n)\n\n"
             "Epochs of mini-batch training in C.  lr is a float64 array with one learning\n"
             "rate per step (of every epoch), or one for all.  params and the slots are\n"
             "updated in place.  The sums returned are over all epochs; stats, a float64\n"
             "(epochs, 4) array, receives each epoch's (loss*n, sse, sae, penalty*n).\n"
             "work holds fo_net_workspace(min(batch_size, n)) elements.");

static PyObject *py_train_epoch(PyObject *self, PyObject *args)
{
    PyObject *po, *go, *slots_o, *hyper_o, *lro, *xo, *yo, *spec, *permo, *rngo, *wo;
    PyObject *kind_o, *iteration_o, *batch_o, *epochs_o = NULL;
    int kind, shuffle;
    long long iteration, batch, epochs = 1;
    PyObject *stats_o = Py_None;
    if (!PyArg_ParseTuple(args, "OOO!OOOOOOOOOOpO|OO", &po, &go, &PyTuple_Type, &slots_o, &kind_o,
                          &hyper_o, &lro, &iteration_o, &xo, &yo, &batch_o, &spec, &permo, &rngo,
                          &shuffle, &wo, &epochs_o, &stats_o) ||
        parse_code(kind_o, "kind", FO_N_OPTIM, &kind) < 0 ||
        parse_int(iteration_o, "iteration", LLONG_MIN, LLONG_MAX, &iteration) < 0 ||
        parse_int(batch_o, "batch_size", LLONG_MIN, PY_SSIZE_T_MAX, &batch) < 0 ||
        (epochs_o && parse_int(epochs_o, "epochs", LLONG_MIN, PY_SSIZE_T_MAX, &epochs) < 0))
        return NULL;
    if (epochs < 1) {
        PyErr_Format(PyExc_ValueError, "epochs must be >= 1, got %lld", epochs);
        return NULL;
    }
    net_args na;
    fo_optim_hyper h;
    if (net_common(spec, po, xo, &na) < 0 || check_kind(kind) < 0 || parse_hyper(hyper_o, &h) < 0)
        return NULL;
    if (iteration < 0 || iteration > FO_MAX_STEP) {
        PyErr_Format(PyExc_ValueError, "iteration must be in [0, 2**53], got %lld", iteration);
        return NULL;
    }
    h.iteration = iteration;
    const fo_net *net = &na.net;
    const int tn = na.typenum;
    if (!PyArray_ISWRITEABLE(na.params)) {
        PyErr_SetString(PyExc_ValueError, "params is read-only but is written in place");
        return NULL;
    }
    if (batch < 1) {
        PyErr_Format(PyExc_ValueError, "batch_size must be >= 1, got %lld", batch);
        return NULL;
    }
    PyArrayObject *x = na.x;
    const npy_intp n = na.rows;
    PyArrayObject *y = exact_2d(yo, "y", tn, 0, n, (npy_intp)net->units[net->n_layers]);
    PyArrayObject *g = y ? exact_array(go, "grads", tn, 1, PyArray_SIZE(na.params)) : NULL;
    PyArrayObject *perm = g ? exact_array(permo, "perm", NPY_INT64, 1, n) : NULL;
    PyArrayObject *rng = perm ? exact_array(rngo, "rng_state", NPY_UINT64, 1, 4) : NULL;
    PyArrayObject *lr = rng ? exact_array(lro, "lr", NPY_FLOAT64, 0, -1) : NULL;
    /* the kernel splits its workspace for batches of min(batch_size, n) rows */
    const size_t rows = (size_t)(batch < n ? batch : (n > 0 ? n : 1));
    PyArrayObject *work = lr ? work_array(wo, &na, rows) : NULL;
    if (!work)
        return NULL;
    const npy_intp steps = n == 0 ? 0 : (n + batch - 1) / batch;
    if (PyArray_SIZE(lr) != 1 && (steps > PY_SSIZE_T_MAX / epochs || PyArray_SIZE(lr) != steps * epochs)) {
        PyErr_Format(PyExc_ValueError, "lr must have 1 or %zd (steps x epochs) entries, got %zd",
                     (Py_ssize_t)(steps * epochs), PyArray_SIZE(lr));
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
    fo_opt o = {kind, h, {NULL}, NULL, NULL, 0};
    PyObject *slot_items[FO_MAX_SLOTS];
    if (parse_slot_tuple(slots_o, "slots", slot_items) < 0)
        return NULL;
    int na_ = 6;
    for (int k = 0; k < FO_MAX_SLOTS; k++) {
        if (!used[k])
            continue;
        const char *sn = slot_name(k);
        PyArrayObject *s = exact_array(slot_items[k], sn, tn, 1, PyArray_SIZE(na.params));
        if (!s)
            return NULL;
        o.slot[k] = PyArray_DATA(s);
        arrs[na_] = s;
        names[na_++] = sn;
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
    if (shuffle && n > 1 && rng_nonzero(rng) < 0)
        return NULL;
    o.lr = lrp;
    o.n_lr = (size_t)PyArray_SIZE(lr);
    fo_stats *per_epoch = PyMem_Calloc((size_t)epochs + 1, sizeof(fo_stats));
    if (!per_epoch)
        return PyErr_NoMemory();
    fo_report rep = {0, -1, FO_OK, NAN};
    fo_rng state;
    memcpy(state.s, PyArray_DATA(rng), sizeof state.s);
    int stopped = 0;
    if (n > 0) {
        fo_data d = {PyArray_DATA(x), PyArray_DATA(y), NULL, (size_t)n, rows, (size_t)steps, shuffle,
                     PyArray_DATA(perm), &state, 0};
        double start = NAN;
        py_ctl p;
        release_gil(&p, 3.0 * (double)(steps * epochs) * (double)rows * (double)net->n_params);
        if (tn == NPY_FLOAT32)
            rep = fo_net_train_f32(PyArray_DATA(na.params), PyArray_DATA(g), &o, &d, net,
                                   (size_t)(steps * epochs), PyArray_DATA(work), per_epoch, NULL, &start,
                                   &p.ctl);
        else
            rep = fo_net_train_f64(PyArray_DATA(na.params), PyArray_DATA(g), &o, &d, net,
                                   (size_t)(steps * epochs), PyArray_DATA(work), per_epoch, NULL, &start,
                                   &p.ctl);
        stopped = take_gil(&p);
    }
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
    PyMem_Free(per_epoch);
    if (stopped < 0)
        return NULL;
    return Py_BuildValue("ndddd", (Py_ssize_t)rep.done, total.loss, total.sse, total.sae, total.penalty);
}

static PyObject *py_rng_seed(PyObject *self, PyObject *args)
{
    PyObject *so, *seed_o;
    if (!PyArg_ParseTuple(args, "OO", &so, &seed_o))
        return NULL;
    if (PyBool_Check(seed_o) || !PyLong_Check(seed_o)) {
        PyErr_Format(PyExc_TypeError, "seed must be an int, got %.100s", Py_TYPE(seed_o)->tp_name);
        return NULL;
    }
    const unsigned long long seed = PyLong_AsUnsignedLongLong(seed_o);
    if (seed == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "seed must be in [0, 2**64), got %R", seed_o);
        return NULL;
    }
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
    if (!s || rng_nonzero(s) < 0)
        return NULL;
    fo_rng r;
    memcpy(r.s, PyArray_DATA(s), sizeof r.s);
    fo_shuffle(PyArray_DATA(p), (size_t)PyArray_SIZE(p), &r);
    memcpy(PyArray_DATA(s), r.s, sizeof r.s);
    Py_RETURN_NONE;
}

PyMethodDef fo_net_methods[] = {
    {"model_fast_path", (PyCFunction)(void (*)(void))py_model_fast_path, METH_FASTCALL, model_fast_path_doc},
    {"net_sizes", py_net_sizes, METH_VARARGS,
     "net_sizes(spec, batch_rows) -> (number of parameters, workspace elements)"},
    {"net_forward", py_net_forward, METH_VARARGS, net_forward_doc},
    {"net_gradients", py_net_gradients, METH_VARARGS, net_gradients_doc},
    {"train_epoch", py_train_epoch, METH_VARARGS, train_epoch_doc},
    {"rng_seed", py_rng_seed, METH_VARARGS, "rng_seed(state, seed): seed a uint64[4] xoshiro256** state"},
    {"shuffle", py_shuffle, METH_VARARGS, "shuffle(perm, state): Fisher-Yates shuffle of an int64 array"},
    {NULL, NULL, 0, NULL}};
