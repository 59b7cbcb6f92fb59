/*
 * binding.h - what the binding files share: CPython and NumPy, and the
 * argument checks every binding runs before it touches an array.
 *
 * Only the binding files (bind_*.c, module.c) include this header; the kernels
 * (fastopt.h and the *_impl.h templates) never see Python.h.  module.c imports
 * NumPy's C API; the other files reach it through PY_ARRAY_UNIQUE_SYMBOL.
 */
#ifndef FASTOPT_BINDING_H
#define FASTOPT_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef NPY_NO_DEPRECATED_API
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#endif
#define PY_ARRAY_UNIQUE_SYMBOL fastopt_ARRAY_API
#ifndef FO_BINDING_MODULE
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "fastopt.h"

/* ---- bind_checks.c: argument checks, each naming the argument it refuses ---- */

/* numpy.shares_memory, for strided overlap, and the numpy.exceptions.TooHardError
 * it raises past its work bound (set by module init) */
extern PyObject *np_shares_memory;
extern PyObject *np_too_hard;
/* the work bound of the overlap checks: elements sorted, or NumPy's max_work */
#define FO_OVERLAP_MAX_WORK ((size_t)1 << 20)

/* step counts (iterations) are integers in [0, FO_MAX_STEP]: exact in a double */
#define FO_MAX_STEP ((int64_t)1 << 53)

/* FO_F32 / FO_F64 for NPY_FLOAT32 / NPY_FLOAT64, else -1 */
int dtype_code(int typenum);
/* an array exactly of `typenum`, C-contiguous, aligned, native, writeable when
 * `writable`, with `size` elements (any when size < 0); borrowed, or NULL with
 * TypeError/ValueError naming `name` */
PyArrayObject *exact_array(PyObject *o, const char *name, int typenum, int writable, npy_intp size);
/* the same, 2-d, with the given shape (-1: any) */
PyArrayObject *exact_2d(PyObject *o, const char *name, int typenum, int writable, npy_intp rows,
                        npy_intp cols);
/* NPY_FLOAT32 or NPY_FLOAT64 from the array that fixes a call's dtype, else -1 */
int float_typenum(PyObject *o, const char *name);
/* the byte range [lo, hi) an array's elements lie in */
void extent(PyArrayObject *a, char **lo, char **hi);
/* 1 if a and b share memory, 0 if not, -2 if undecided within the work bound
 * (treat as shared), -1 on error */
int overlaps(PyArrayObject *a, PyArrayObject *b);
/* 1 if two elements of an array with these dims/strides share a byte, 0 if
 * not, -1 if undecided within max_work elements (exact, as NumPy's mem_overlap) */
int fo_internal_overlap(int nd, const npy_intp *dims, const npy_intp *strides, npy_intp itemsize,
                        size_t max_work);
/* fail unless arrs[0..n_out) share no memory with any other of arrs[0..n) */
int check_disjoint(PyArrayObject **arrs, const char **names, int n_out, int n);
/* an activation code the training loop runs (every one: it keeps z where fo_act_needs_z) */
int check_act(int act);
int check_kind(long long kind);
/* a slot tuple of FO_KIND_SLOTS or FO_MAX_SLOTS entries into items (borrowed, None padded) */
int parse_slot_tuple(PyObject *t, const char *name, PyObject *items[FO_MAX_SLOTS]);
/* the optimizer's constant hyperparameters from the tuple the Python layer caches
 * (Optimizer._hyper), every entry range-checked */
int parse_hyper(PyObject *t, fo_optim_hyper *h);

/* a code in [0, n) from a Python int, checked before any narrowing; TypeError/ValueError naming `name` */
int parse_code(PyObject *o, const char *name, int n, int *code);
/* a Python int (not a bool) in [lo, hi], checked before any narrowing; TypeError/ValueError naming `name` */
int parse_int(PyObject *o, const char *name, long long lo, long long hi, long long *v);
/* a Python real number (not a bool) as double; TypeError naming `name` */
int parse_real(PyObject *o, const char *name, double *v);
/* name(enabled=None) -> the previous value of *flag, set to bool(enabled)
 * unless None: the switches that force a fast or thorough path (for tests) */
PyObject *fast_path_switch(int *flag, const char *name, PyObject *const *args, Py_ssize_t nargs);
/* 1 if v is finite, and still so when rounded to float32 for NPY_FLOAT32 */
int finite_in_dtype(double v, int typenum);
/* any activation code (FO_N_ACT) and its parameter: None (or NULL) gives Keras' default;
 * ValueError naming `activation` or `act_param` */
int parse_activation(PyObject *code_o, PyObject *param_o, int typenum, int *act, double *param);
/* 0 if out is exactly in (same data, shape and strides: an in-place call) or shares no memory with it */
int check_same_or_disjoint(PyArrayObject *out, const char *out_name, PyArrayObject *in,
                           const char *in_name);

/* ---- the method tables of each binding file, joined by module.c ---- */
extern PyMethodDef fo_optim_methods[];  /* bind_optim.c */
extern PyMethodDef fo_dense_methods[];  /* bind_dense.c */
extern PyMethodDef fo_net_methods[];    /* bind_net.c */
extern PyMethodDef fo_linear_methods[]; /* bind_linear.c */
extern PyMethodDef fo_loss_methods[];   /* bind_loss.c */
extern PyMethodDef fo_bench_methods[];  /* bind_bench.c */
extern PyMethodDef fo_surface_methods[]; /* bind_surface.c */
/* bind_net.c: adds the types Network, Batches and ModelBase to the module */
int fo_net_add_types(PyObject *module);
/* bind_optim.c: adds the type OptimizerBase */
int fo_optim_add_types(PyObject *module);

#endif /* FASTOPT_BINDING_H */
