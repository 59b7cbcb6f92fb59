/*
 * module.c - fastopt._core's module init: imports NumPy's C API and joins the
 * method tables of the binding files (bind_*.c), each of which parses and
 * checks its arguments, releases the GIL around its kernel and raises
 * TypeError/ValueError naming the argument on bad input.
 */
#define FO_BINDING_MODULE
#include "binding.h"

/* the tables of every binding file, joined into one at init */
static PyMethodDef *const tables[] = {fo_optim_methods, fo_dense_methods, fo_net_methods,
                                      fo_linear_methods, fo_loss_methods, fo_bench_methods,
                                      fo_surface_methods};
static PyMethodDef methods[64];

static int join_tables(void)
{
    size_t n = 0;
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++) {
        for (const PyMethodDef *m = tables[t]; m->ml_name; m++) {
            if (n + 1 >= sizeof methods / sizeof *methods) {
                PyErr_SetString(PyExc_SystemError, "fastopt._core: too many methods");
                return -1;
            }
            methods[n++] = *m;
        }
    }
    methods[n] = (PyMethodDef){NULL, NULL, 0, NULL};
    return 0;
}

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_core",
                                       "fastopt's C kernels (see fastopt.reference for their twins)",
                                       -1, methods};

PyMODINIT_FUNC PyInit__core(void)
{
    import_array();
    if (join_tables() < 0)
        return NULL;
    PyObject *np = PyImport_ImportModule("numpy");
    if (!np)
        return NULL;
    np_shares_memory = PyObject_GetAttrString(np, "shares_memory");
    PyObject *exc = np_shares_memory ? PyObject_GetAttrString(np, "exceptions") : NULL;
    np_too_hard = exc ? PyObject_GetAttrString(exc, "TooHardError") : NULL;
    Py_XDECREF(exc);
    Py_DECREF(np);
    if (!np_shares_memory || !np_too_hard)
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
    if (fo_net_add_types(m) < 0 || fo_optim_add_types(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#ifdef FO_HAVE_BLAS
    PyModule_AddIntConstant(m, "HAVE_BLAS", 1);
#else
    PyModule_AddIntConstant(m, "HAVE_BLAS", 0);
#endif
    PyModule_AddIntConstant(m, "SGD", FO_SGD);
    PyModule_AddIntConstant(m, "ADAGRAD", FO_ADAGRAD);
    PyModule_AddIntConstant(m, "RMSPROP", FO_RMSPROP);
    PyModule_AddIntConstant(m, "ADAM", FO_ADAM);
    PyModule_AddIntConstant(m, "MAX_SLOTS", FO_MAX_SLOTS);
    PyModule_AddIntConstant(m, "LINEAR", FO_LINEAR);
    PyModule_AddIntConstant(m, "RELU", FO_RELU);
    PyModule_AddIntConstant(m, "SIGMOID", FO_SIGMOID);
    PyModule_AddIntConstant(m, "TANH", FO_TANH);
    return m;
}
