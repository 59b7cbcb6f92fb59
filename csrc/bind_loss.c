/*
 * bind_loss.c - bindings of the loss kernels (the loss of a batch and its
 * gradient, the fused activation + loss form, the target check) and of the
 * metrics' per-batch sums, plus the table of codes the Python layer reads.
 * Every argument is checked (TypeError/ValueError naming it) before anything
 * is written; the kernels run with the GIL released.
 */
#include "binding.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- one {float32, float64} table per entry point ---- */
typedef double (*loss_fn)(void *, void *, const void *, const void *, const void *, size_t, size_t,
                          const fo_loss_spec *);
static const loss_fn loss_table[2] = {(loss_fn)fo_loss_f32, (loss_fn)fo_loss_f64};

typedef double (*act_loss_fn)(void *, void *, const void *, const void *, const void *, const void *,
                              size_t, size_t, int, double, const fo_loss_spec *);
static const act_loss_fn act_loss_table[2] = {(act_loss_fn)fo_act_loss_f32,
                                              (act_loss_fn)fo_act_loss_f64};

typedef size_t (*check_targets_fn)(const void *, size_t, size_t, size_t, int, int);
static const check_targets_fn check_targets_table[2] = {(check_targets_fn)fo_loss_check_targets_f32,
                                                        (check_targets_fn)fo_loss_check_targets_f64};

typedef size_t (*check_weights_fn)(const void *, size_t);
static const check_weights_fn check_weights_table[2] = {(check_weights_fn)fo_check_weights_f32,
                                                        (check_weights_fn)fo_check_weights_f64};

typedef void (*metrics_fn)(double *, const fo_metric_spec *, size_t, const void *, const void *,
                           size_t, const void *, size_t, size_t);
static const metrics_fn metrics_table[2] = {(metrics_fn)fo_metrics_update_f32,
                                            (metrics_fn)fo_metrics_update_f64};

/* the value of element i of a C-contiguous float32/float64 array, for messages */
static double element(PyArrayObject *a, size_t i)
{
    return PyArray_TYPE(a) == NPY_FLOAT32 ? (double)((const float *)PyArray_DATA(a))[i]
                                          : ((const double *)PyArray_DATA(a))[i];
}

/* a ValueError whose message is formatted by snprintf (PyErr_Format has no %g) */
static void value_error(const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    PyErr_SetString(PyExc_ValueError, msg);
}

/* sample_weight: None, or `n` finite weights >= 0 of the call's dtype; *w is NULL for None */
static int weights_arg(PyObject *o, int typenum, npy_intp n, PyArrayObject **w)
{
    *w = NULL;
    if (o == Py_None)
        return 0;
    if (!(*w = exact_array(o, "sample_weight", typenum, 0, n)))
        return -1;
    size_t bad;
    const int dt = dtype_code(typenum);
    Py_BEGIN_ALLOW_THREADS
    bad = check_weights_table[dt](PyArray_DATA(*w), (size_t)n);
    Py_END_ALLOW_THREADS
    if (bad < (size_t)n) {
        value_error("sample_weight[%zu] is %g; sample weights must be finite and >= 0", bad,
                    element(*w, bad));
        return -1;
    }
    return 0;
}

/* y_true for a loss of `kind` against a (B, C) prediction: (B, C), or for
 * SCCE (B,) or (B, 1) class indices, which are checked (always: the kernel
 * indexes with them); strict also checks CCE rows and BCE targets */
static PyArrayObject *targets_arg(PyObject *o, int typenum, int kind, npy_intp B, npy_intp C,
                                  int strict)
{
    PyArrayObject *y;
    npy_intp cols = C;
    if (kind == FO_LOSS_SCCE) {
        if (!(y = exact_array(o, "y_true", typenum, 0, -1)))
            return NULL;
        if (!((PyArray_NDIM(y) == 1 && PyArray_DIM(y, 0) == B) ||
              (PyArray_NDIM(y) == 2 && PyArray_DIM(y, 0) == B && PyArray_DIM(y, 1) == 1))) {
            PyErr_Format(PyExc_ValueError,
                         "y_true must hold %zd class indices, shape (%zd,) or (%zd, 1), for "
                         "sparse_categorical_crossentropy",
                         B, B, B);
            return NULL;
        }
        cols = 1;
    } else if (!(y = exact_2d(o, "y_true", typenum, 0, B, C))) {
        return NULL;
    }
    size_t bad;
    const int dt = dtype_code(typenum);
    Py_BEGIN_ALLOW_THREADS
    bad = check_targets_table[dt](PyArray_DATA(y), (size_t)B, (size_t)cols, (size_t)C, kind, strict);
    Py_END_ALLOW_THREADS
    if (bad < (size_t)B) {
        if (kind == FO_LOSS_SCCE)
            value_error("y_true[%zu] is %g, not a class index in [0, %zd) (y_pred has %zd "
                        "classes)",
                        bad, element(y, bad), (Py_ssize_t)C, (Py_ssize_t)C);
        else if (kind == FO_LOSS_CCE)
            PyErr_Format(PyExc_ValueError,
                         "y_true row %zu is not a distribution over the %zd classes (entries >= 0 "
                         "summing to 1): categorical_crossentropy takes one-hot or soft labels",
                         bad, C);
        else
            PyErr_Format(PyExc_ValueError,
                         "y_true row %zu has a target outside [0, 1] for binary_crossentropy", bad);
        return NULL;
    }
    return y;
}

/* the loss's constants, each checked; ValueError naming the keyword */
/* reduction_o, ls_o and delta_o may be NULL: 0 (sum over batch size), 0.0 and 1.0 */
static int loss_spec(PyObject *kind_o, PyObject *reduction_o, int from_logits, PyObject *ls_o,
                     PyObject *delta_o, int typenum, fo_loss_spec *s)
{
    int reduction = 0;
    double label_smoothing = 0, delta = 1;
    memset(s, 0, sizeof *s);
    if (parse_code(kind_o, "kind", FO_N_LOSS, &s->kind) < 0 ||
        (reduction_o && parse_code(reduction_o, "reduction", FO_N_REDUCE, &reduction) < 0) ||
        (ls_o && parse_real(ls_o, "label_smoothing", &label_smoothing) < 0) ||
        (delta_o && parse_real(delta_o, "delta", &delta) < 0))
        return -1;
    if (!(label_smoothing >= 0 && label_smoothing <= 1)) {
        value_error("label_smoothing must be in [0, 1], got %g", label_smoothing);
        return -1;
    }
    if (!(delta > 0) || !finite_in_dtype(delta, typenum) ||
        (typenum == NPY_FLOAT32 && !((float)delta > 0))) {
        value_error("delta must be > 0 and finite in the arrays' dtype, got %g", delta);
        return -1;
    }
    s->reduction = reduction;
    s->from_logits = from_logits;
    s->label_smoothing = label_smoothing;
    s->delta = delta;
    return 0;
}

/* the outputs of a loss call: grad (B, C) and values (B,), each optional,
 * sharing no memory with each other or with the inputs */
static int loss_outputs(PyObject *go, PyObject *vo, int typenum, npy_intp B, npy_intp C,
                        PyArrayObject **g, PyArrayObject **v, PyArrayObject **inputs,
                        const char **input_names, int n_in)
{
    *g = *v = NULL;
    if (go != Py_None && !(*g = exact_2d(go, "grad", typenum, 1, B, C)))
        return -1;
    if (vo != Py_None && !(*v = exact_array(vo, "values", typenum, 1, B)))
        return -1;
    PyArrayObject *arrs[8] = {*g, *v};
    const char *names[8] = {"grad", "values"};
    for (int i = 0; i < n_in; i++) {
        arrs[2 + i] = inputs[i];
        names[2 + i] = input_names[i];
    }
    return check_disjoint(arrs, names, 2, 2 + n_in);
}

PyDoc_STRVAR(loss_doc,
             "loss(kind, y_true, y_pred, sample_weight=None, grad=None, values=None, reduction=0,\n"
             "     from_logits=False, label_smoothing=0.0, delta=1.0, strict=False) -> float\n\n"
             "The loss of a batch, y_pred (B, C), reduced (Keras' reduction codes); grad\n"
             "(B, C) receives d loss / d y_pred and values (B,) the weighted per-sample\n"
             "losses.  Class indices of sparse_categorical_crossentropy are always checked;\n"
             "strict also checks one-hot rows (CCE) and [0, 1] targets (BCE).");

static PyObject *py_loss(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"kind", "y_true", "y_pred", "sample_weight", "grad", "values",
                             "reduction", "from_logits", "label_smoothing", "delta", "strict", NULL};
    PyObject *kind_o, *yo, *po, *wo = Py_None, *go = Py_None, *vo = Py_None;
    PyObject *reduction = NULL, *ls = NULL, *delta = NULL;
    int from_logits = 0, strict = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|OOOOpOOp", kwlist, &kind_o, &yo, &po, &wo,
                                     &go, &vo, &reduction, &from_logits, &ls, &delta, &strict))
        return NULL;
    int typenum = float_typenum(po, "y_pred");
    fo_loss_spec spec;
    if (typenum < 0 || loss_spec(kind_o, reduction, from_logits, ls, delta, typenum, &spec) < 0)
        return NULL;
    PyArrayObject *p = exact_2d(po, "y_pred", typenum, 0, -1, -1);
    if (!p)
        return NULL;
    const npy_intp B = PyArray_DIM(p, 0), C = PyArray_DIM(p, 1);
    PyArrayObject *y = targets_arg(yo, typenum, spec.kind, B, C, strict), *w, *g, *v;
    if (!y || weights_arg(wo, typenum, B, &w) < 0)
        return NULL;
    PyArrayObject *ins[] = {p, y, w};
    const char *in_names[] = {"y_pred", "y_true", "sample_weight"};
    if (loss_outputs(go, vo, typenum, B, C, &g, &v, ins, in_names, 3) < 0)
        return NULL;
    double l;
    const int dt = dtype_code(typenum);
    Py_BEGIN_ALLOW_THREADS
    l = loss_table[dt](g ? PyArray_DATA(g) : NULL, v ? PyArray_DATA(v) : NULL, PyArray_DATA(p),
                       PyArray_DATA(y), w ? PyArray_DATA(w) : NULL, (size_t)B, (size_t)C, &spec);
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(l);
}

PyDoc_STRVAR(act_loss_doc,
             "act_loss(kind, y_true, z, a, activation, act_param=None, sample_weight=None,\n"
             "         grad=None, values=None, reduction=0, from_logits=False,\n"
             "         label_smoothing=0.0, delta=1.0) -> float\n\n"
             "The loss of a = activation(z) (the last layer's output, z its pre-activation)\n"
             "with grad (B, C) = d loss / d z: sigmoid + binary_crossentropy and softmax +\n"
             "(sparse_)categorical_crossentropy are computed from the logits z in one stable\n"
             "form; any other pair is the loss of a followed by the activation's backward.");

static PyObject *py_act_loss(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"kind", "y_true", "z", "a", "activation", "act_param", "sample_weight",
                             "grad", "values", "reduction", "from_logits", "label_smoothing",
                             "delta", NULL};
    PyObject *kind_o, *yo, *zo, *ao, *act_o, *param_o = Py_None, *wo = Py_None, *go = Py_None,
                                                      *vo = Py_None;
    PyObject *reduction = NULL, *ls = NULL, *delta = NULL;
    int from_logits = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO|OOOOOpOO", kwlist, &kind_o, &yo, &zo, &ao,
                                     &act_o, &param_o, &wo, &go, &vo, &reduction, &from_logits, &ls,
                                     &delta))
        return NULL;
    int typenum = float_typenum(zo, "z"), act;
    double act_param;
    fo_loss_spec spec;
    if (typenum < 0 || loss_spec(kind_o, reduction, from_logits, ls, delta, typenum, &spec) < 0 ||
        parse_activation(act_o, param_o, typenum, &act, &act_param) < 0)
        return NULL;
    PyArrayObject *z = exact_2d(zo, "z", typenum, 0, -1, -1);
    if (!z)
        return NULL;
    const npy_intp B = PyArray_DIM(z, 0), C = PyArray_DIM(z, 1);
    PyArrayObject *a = exact_2d(ao, "a", typenum, 0, B, C);
    PyArrayObject *y = a ? targets_arg(yo, typenum, spec.kind, B, C, 0) : NULL, *w, *g, *v;
    if (!y || weights_arg(wo, typenum, B, &w) < 0)
        return NULL;
    PyArrayObject *ins[] = {z, a, y, w};
    const char *in_names[] = {"z", "a", "y_true", "sample_weight"};
    if (loss_outputs(go, vo, typenum, B, C, &g, &v, ins, in_names, 4) < 0)
        return NULL;
    double l;
    const int dt = dtype_code(typenum);
    Py_BEGIN_ALLOW_THREADS
    l = act_loss_table[dt](g ? PyArray_DATA(g) : NULL, v ? PyArray_DATA(v) : NULL, PyArray_DATA(z),
                           PyArray_DATA(a), PyArray_DATA(y), w ? PyArray_DATA(w) : NULL, (size_t)B,
                           (size_t)C, act, act_param, &spec);
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(l);
}

PyDoc_STRVAR(check_targets_doc,
             "check_targets(kind, y_true, n_classes, strict=True)\n\n"
             "Raise ValueError naming y_true unless every row is a target of the loss `kind`\n"
             "for a model with n_classes outputs: class indices in [0, n_classes) for\n"
             "sparse_categorical_crossentropy; with strict, rows of entries >= 0 summing to\n"
             "1 for categorical_crossentropy and targets in [0, 1] for binary_crossentropy.");

static PyObject *py_check_targets(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"kind", "y_true", "n_classes", "strict", NULL};
    PyObject *kind_o, *yo, *C_o;
    long long C;
    int strict = 1, kind;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|p", kwlist, &kind_o, &yo, &C_o, &strict))
        return NULL;
    if (parse_code(kind_o, "kind", FO_N_LOSS, &kind) < 0 ||
        parse_int(C_o, "n_classes", 1, PY_SSIZE_T_MAX, &C) < 0)
        return NULL;
    int typenum = float_typenum(yo, "y_true");
    if (typenum < 0)
        return NULL;
    PyArrayObject *y = exact_array(yo, "y_true", typenum, 0, -1);
    if (!y)
        return NULL;
    if (PyArray_NDIM(y) < 1 || PyArray_NDIM(y) > 2) {
        PyErr_Format(PyExc_ValueError, "y_true must be 1-d or 2-d, got %d-d", PyArray_NDIM(y));
        return NULL;
    }
    if (!targets_arg(yo, typenum, kind, PyArray_DIM(y, 0), C, strict))
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(metrics_update_doc,
             "metrics_update(acc, metrics, y_true, y_pred, sample_weight=None)\n\n"
             "Add one batch to the float64 accumulators acc of the metrics, a sequence of\n"
             "(kind, threshold, k), in one pass over the rows of y_pred (B, C).  y_true is\n"
             "(B, C), or (B,)/(B, 1) class indices for sparse_categorical_accuracy.");


static PyObject *py_metrics_update(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"acc", "metrics", "y_true", "y_pred", "sample_weight", NULL};
    PyObject *acc_o, *ms_o, *yo, *po, *wo = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO|O", kwlist, &acc_o, &ms_o, &yo, &po, &wo))
        return NULL;
    int typenum = float_typenum(po, "y_pred");
    PyArrayObject *p = typenum < 0 ? NULL : exact_2d(po, "y_pred", typenum, 0, -1, -1);
    if (!p)
        return NULL;
    const npy_intp B = PyArray_DIM(p, 0), C = PyArray_DIM(p, 1);
    PyArrayObject *y = exact_array(yo, "y_true", typenum, 0, -1), *w;
    if (!y)
        return NULL;
    npy_intp ycols;
    if (PyArray_NDIM(y) == 1 && PyArray_DIM(y, 0) == B)
        ycols = 1;
    else if (PyArray_NDIM(y) == 2 && PyArray_DIM(y, 0) == B &&
             (PyArray_DIM(y, 1) == 1 || PyArray_DIM(y, 1) == C))
        ycols = PyArray_DIM(y, 1);
    else {
        PyErr_Format(PyExc_ValueError, "y_true must have shape (%zd, %zd), (%zd, 1) or (%zd,)", B, C,
                     B, B);
        return NULL;
    }
    if (weights_arg(wo, typenum, B, &w) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(ms_o, "metrics must be a sequence of (kind, threshold, k)");
    if (!seq)
        return NULL;
    fo_metric_spec specs[FO_MAX_METRICS];
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    size_t need = 0;
    int ok = n <= FO_MAX_METRICS;
    if (!ok)
        PyErr_Format(PyExc_ValueError, "metrics: at most %d per call, got %zd", FO_MAX_METRICS, n);
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(seq, i), *kind_o, *thr_o, *k_o;
        Py_ssize_t k;
        if (!PyTuple_Check(t) || !PyArg_ParseTuple(t, "OOO;metrics entries must be (kind, threshold, k)",
                                                   &kind_o, &thr_o, &k_o)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "metrics entries must be (kind, threshold, k)");
            ok = 0;
            break;
        }
        memset(&specs[i], 0, sizeof specs[i]);
        if (parse_code(kind_o, "metrics kind", FO_N_METRIC, &specs[i].kind) < 0 ||
            parse_real(thr_o, "threshold", &specs[i].threshold) < 0) {
            ok = 0;
            break;
        }
        if (!isfinite(specs[i].threshold)) {
            PyErr_SetString(PyExc_ValueError, "threshold must be finite");
            ok = 0;
            break;
        }
        long long kk;
        if (parse_int(k_o, "k", 1, PY_SSIZE_T_MAX, &kk) < 0) {
            ok = 0;
            break;
        }
        k = (Py_ssize_t)kk;
        specs[i].k = (size_t)k;
        const int sparse = specs[i].kind == FO_METRIC_SPARSE_CATEGORICAL_ACCURACY;
        if (sparse ? ycols != 1 : ycols != C) {
            PyErr_Format(PyExc_ValueError,
                         "y_true must have shape (%zd, %zd) for metric kind %d (got %zd columns)", B,
                         sparse ? (npy_intp)1 : C, specs[i].kind, ycols);
            ok = 0;
            break;
        }
        need += fo_metric_acc_size(&specs[i], (size_t)C);
    }
    Py_DECREF(seq);
    if (!ok)
        return NULL;
    PyArrayObject *acc = exact_array(acc_o, "acc", NPY_FLOAT64, 1, (npy_intp)need);
    if (!acc)
        return NULL;
    PyArrayObject *arrs[] = {acc, p, y, w};
    const char *names[] = {"acc", "y_pred", "y_true", "sample_weight"};
    if (check_disjoint(arrs, names, 1, 4) < 0)
        return NULL;
    const int dt = dtype_code(typenum);
    Py_BEGIN_ALLOW_THREADS
    metrics_table[dt](PyArray_DATA(acc), specs, (size_t)n, PyArray_DATA(p), PyArray_DATA(y),
                      (size_t)ycols, w ? PyArray_DATA(w) : NULL, (size_t)B, (size_t)C);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* name -> code tables for the Python layer */
static int add_codes(PyObject *d, const char *table, const char *const *names, int n)
{
    PyObject *t = PyDict_New();
    if (!t)
        return -1;
    for (int i = 0; i < n; i++) {
        PyObject *v = PyLong_FromLong(i);
        if (!v || PyDict_SetItemString(t, names[i], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(t);
            return -1;
        }
        Py_DECREF(v);
    }
    int r = PyDict_SetItemString(d, table, t);
    Py_DECREF(t);
    return r;
}

static PyObject *py_codes(PyObject *self, PyObject *unused)
{
    static const char *const acts[FO_N_ACT] = {
        "linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "gelu", "gelu_tanh",
        "silu", "softplus", "softsign", "hard_sigmoid", "exponential"};
    static const char *const losses[FO_N_LOSS] = {
        "mean_squared_error", "mean_absolute_error", "huber", "log_cosh", "binary_crossentropy",
        "categorical_crossentropy", "sparse_categorical_crossentropy"};
    static const char *const reductions[FO_N_REDUCE] = {"sum_over_batch_size", "sum",
                                                        "mean_with_sample_weight", "none"};
    static const char *const metrics[FO_N_METRIC] = {
        "mean_squared_error", "mean_absolute_error", "root_mean_squared_error", "accuracy",
        "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
        "top_k_categorical_accuracy", "r2_score"};
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (add_codes(d, "activations", acts, FO_N_ACT) < 0 ||
        add_codes(d, "losses", losses, FO_N_LOSS) < 0 ||
        add_codes(d, "reductions", reductions, FO_N_REDUCE) < 0 ||
        add_codes(d, "metrics", metrics, FO_N_METRIC) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

PyMethodDef fo_loss_methods[] = {
    {"loss", (PyCFunction)(void (*)(void))py_loss, METH_VARARGS | METH_KEYWORDS, loss_doc},
    {"act_loss", (PyCFunction)(void (*)(void))py_act_loss, METH_VARARGS | METH_KEYWORDS,
     act_loss_doc},
    {"check_targets", (PyCFunction)(void (*)(void))py_check_targets, METH_VARARGS | METH_KEYWORDS,
     check_targets_doc},
    {"metrics_update", (PyCFunction)(void (*)(void))py_metrics_update,
     METH_VARARGS | METH_KEYWORDS, metrics_update_doc},
    {"codes", py_codes, METH_NOARGS,
     "codes() -> {'activations': {name: code}, 'losses': ..., 'reductions': ..., 'metrics': ...}"},
    {NULL, NULL, 0, NULL}};
