/*
 * bind_net.c - bindings of the network: sizes, forward, gradients, the training
 * loop, and the seeded generator it shuffles with.
 */
#include "binding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    static const char *slot_names[FO_MAX_SLOTS] = {"slots[0]", "slots[1]", "slots[2]",
                                                   "slots[3]", "slots[4]", "slots[5]"};
    void *slot[FO_MAX_SLOTS] = {NULL};
    PyObject *slot_items[FO_MAX_SLOTS];
    if (parse_slot_tuple(slots_o, "slots", slot_items) < 0)
        return NULL;
    int na_ = 6;
    for (int k = 0; k < FO_MAX_SLOTS; k++) {
        if (!used[k])
            continue;
        PyArrayObject *s = exact_array(slot_items[k], slot_names[k], tn, 1,
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

PyMethodDef fo_net_methods[] = {
    {"net_sizes", py_net_sizes, METH_VARARGS,
     "net_sizes(spec, batch_rows) -> (number of parameters, workspace elements)"},
    {"net_forward", py_net_forward, METH_VARARGS, net_forward_doc},
    {"net_gradients", py_net_gradients, METH_VARARGS, net_gradients_doc},
    {"train_epoch", py_train_epoch, METH_VARARGS, train_epoch_doc},
    {"rng_seed", py_rng_seed, METH_VARARGS, "rng_seed(state, seed): seed a uint64[4] xoshiro256** state"},
    {"shuffle", py_shuffle, METH_VARARGS, "shuffle(perm, state): Fisher-Yates shuffle of an int64 array"},
    {NULL, NULL, 0, NULL}};
