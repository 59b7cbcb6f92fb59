/*
 * bind_bench.c - bindings of the benchmark helpers (bench.c): the memory
 * floor of an optimizer step, and which CPU features and kernel clone this
 * machine uses.  Not used by fastopt itself.
 */
#include "binding.h"

#define FO_STREAM_MAX_ARRAYS 8

/* the arrays of one stream call into arrs[]: a sequence of 1-d ndarrays of one
 * float dtype and length, C-contiguous, aligned, writeable when `writable`;
 * returns how many, or -1 with the error set */
static Py_ssize_t stream_arrays(PyObject *seq, const char *name, int writable, PyArrayObject **arrs,
                                int *typenum, npy_intp *n)
{
    PyObject *fast = PySequence_Fast(seq, "stream's arrays must be sequences of ndarrays");
    if (!fast)
        return -1;
    Py_ssize_t k = PySequence_Fast_GET_SIZE(fast);
    if (k > FO_STREAM_MAX_ARRAYS) {
        PyErr_Format(PyExc_ValueError, "%s: at most %d arrays", name, FO_STREAM_MAX_ARRAYS);
        k = -1;
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(fast, i);
        if ((*typenum < 0 && (*typenum = float_typenum(o, name)) < 0) ||
            !(arrs[i] = exact_array(o, name, *typenum, writable, *n))) {
            k = -1;
            break;
        }
        *n = PyArray_SIZE(arrs[i]);
    }
    Py_DECREF(fast); /* the arrays stay alive: the caller's sequences hold them */
    return k;
}

PyDoc_STRVAR(stream_doc,
             "stream(read, written, threads, scale=0.0)\n\n"
             "One pass over the arrays on `threads` threads, split as an optimizer step splits a\n"
             "variable: every array of `read` is read, every array of `written` is read and\n"
             "written in place (written[k] += scale * sum(read)), so the call moves the bytes an\n"
             "optimizer step moves, with next to no arithmetic.  All arrays 1-d, of one float\n"
             "dtype and length, C-contiguous and distinct.  A benchmark yardstick.");

static PyObject *py_stream(PyObject *self, PyObject *args)
{
    PyObject *ro, *wo, *threads_o, *scale_o = NULL;
    long long threads;
    double scale = 0.0;
    if (!PyArg_ParseTuple(args, "OOO|O", &ro, &wo, &threads_o, &scale_o) ||
        parse_int(threads_o, "threads", 1, INT_MAX, &threads) < 0 ||
        (scale_o && parse_real(scale_o, "scale", &scale) < 0))
        return NULL;
    PyArrayObject *arrs[2 * FO_STREAM_MAX_ARRAYS];
    const char *names[2 * FO_STREAM_MAX_ARRAYS];
    void *ptr[2 * FO_STREAM_MAX_ARRAYS];
    int tn = -1;
    npy_intp n = -1;
    const Py_ssize_t nw = stream_arrays(wo, "written", 1, arrs, &tn, &n);
    const Py_ssize_t nr = nw < 0 ? -1 : stream_arrays(ro, "read", 0, arrs + nw, &tn, &n);
    if (nr < 0)
        return NULL;
    for (Py_ssize_t i = 0; i < nw + nr; i++) {
        names[i] = i < nw ? "written" : "read";
        ptr[i] = PyArray_DATA(arrs[i]);
    }
    if (check_disjoint(arrs, names, (int)nw, (int)(nw + nr)) < 0)
        return NULL;
    if (n <= 0)
        Py_RETURN_NONE;
    Py_BEGIN_ALLOW_THREADS
    fo_stream(tn == NPY_FLOAT32 ? FO_F32 : FO_F64, ptr, (size_t)nw, (const void *const *)(ptr + nw),
              (size_t)nr, (size_t)n, threads, scale);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_cpu_features(PyObject *self, PyObject *unused)
{
    static const char *names[] = {"avx512f", "avx2", "fma", "avx", "sse4.2"};
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const int v = fo_cpu_supports(names[i]);
        PyObject *o = v < 0 ? Py_None : PyBool_FromLong(v);
        if (v < 0)
            Py_INCREF(o);
        if (PyDict_SetItemString(d, names[i], o) < 0) {
            Py_DECREF(o);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(o);
    }
    return d;
}

static PyObject *py_kernel_clone(PyObject *self, PyObject *unused)
{
    return PyUnicode_FromString(fo_kernel_clone());
}

PyMethodDef fo_bench_methods[] = {
    {"stream", py_stream, METH_VARARGS, stream_doc},
    {"cpu_features", py_cpu_features, METH_NOARGS,
     "cpu_features() -> {feature: bool} for avx512f, avx2, fma, avx, sse4.2 (None where the\n"
     "build cannot tell, off x86)"},
    {"kernel_clone", py_kernel_clone, METH_NOARGS,
     "kernel_clone() -> 'avx512f', 'avx2' or 'default': the clone fastopt's vectorized kernels\n"
     "run on this CPU (the target_clones resolver's choice, or the one forced at build time)"},
    {NULL, NULL, 0, NULL}};
